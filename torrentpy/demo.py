"""`torrentpy demo`: a whole swarm on loopback, downloaded under the dashboard, with nothing else installed.

The steps: write a random payload into a temporary folder, hash it into a .torrent, start the built-in
tracker, start N seeders (each a separate ``python -P -m torrentpy add … --seed-forever`` process, so they run
on their own cores), download in this process, print a summary, verify what arrived, then stop the seeders
by PID and remove everything (unless ``--keep``). Ctrl-C, SIGTERM or ``q`` at any step stops it all and
cleans up just the same.

Exit status: 0 when the download completed and verified, or when the user pressed ``q`` (quitting is not an
error); 1 when something failed (a seeder died, verification failed); 130 on Ctrl-C, 143 on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

from torrentpy import selfexec
from torrentpy.errors import UsageError
from torrentpy.tui import terminal
from torrentpy.tui.progress import transfer_progress
from torrentpy.units import format_rate, format_size

__all__ = ["DemoOptions", "run_demo"]

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

MiB = 1024 * 1024
# Smallest payload worth a swarm: below this every seeder would hold a handful of pieces.
MIN_DEMO_BYTES = 1 * MiB
# The demo writes this much to a temporary folder (twice: seed copy and download); 8 GiB is already a lot.
MAX_DEMO_BYTES = 8 * 1024 * MiB
# Each seeder is a Python process with its own event loop; beyond this a laptop just thrashes.
MAX_DEMO_PEERS = 16
# Random bytes are produced and written this much at a time (keeps memory flat, progress smooth).
GENERATE_CHUNK_BYTES = 4 * MiB
# Seeders trust the resume file the demo writes, so they start in well under a second; this is generous.
SEEDER_READY_TIMEOUT_S = 60.0
# How long a seeder gets to exit after SIGTERM before it is killed.
SEEDER_STOP_TIMEOUT_S = 5.0
# With --dht, how often the demo's own DHT node looks the torrent up while waiting for the seeders.
DHT_ASK_INTERVAL_S = 1.0
# Lines of a dead seeder's log shown to explain why it died.
LOG_TAIL_LINES = 15
PAYLOAD_NAME = "torrentpy-demo"


@dataclass
class DemoOptions:
    size_bytes: int = 256 * MiB
    peers: int = 3
    keep: bool = False
    tui: bool = True  # the live dashboard when stdout and stdin are terminals; plain lines otherwise
    # The download's rate limit; 0 = unlimited. A limit makes the demo last long enough to watch. (It is
    # put on the downloader, not the seeders: an upload limit switches a seed to super-seeding.)
    download_rate_bps: int = 0
    refresh_hz: float = 4.0
    # No tracker at all: the seeders and the downloader find each other over a DHT of their own on
    # 127.0.0.1, bootstrapped only from a node the demo runs (never the public routers).
    dht: bool = False


class _Cancelled(Exception):
    """Raised inside worker threads when the demo is being stopped."""


@dataclass
class _Seeder:
    index: int
    port: int
    log_path: str
    process: subprocess.Popen[bytes]

    def log_tail(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                return "".join(fh.readlines()[-LOG_TAIL_LINES:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(SEEDER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class _Run:
    """Everything the demo made, so one `finally` can undo it whichever step was interrupted."""

    options: DemoOptions
    out: Console
    err: Console
    work_dir: str | None = None
    seeders: list[_Seeder] = field(default_factory=list)
    tracker: Any = None
    dht: Any = None  # net.dht.DhtService: the loopback DHT's bootstrap node, with --dht
    cancel: threading.Event = field(default_factory=threading.Event)
    signum: int | None = None
    quit_pressed: bool = False


def _payload_sizes(total: int) -> list[tuple[str, int]]:
    """A couple of files of uneven sizes, so pieces straddle file boundaries."""
    notes = min(64 * 1024, total // 16)
    video = total * 5 // 8
    return [("video.bin", video), (os.path.join("extras", "samples.bin"), total - video - notes),
            ("notes.txt", notes)]


def _generate(root: str, total: int, run: _Run, advance: Callable[[int], None]) -> None:
    # A seeded PRNG is several times faster than os.urandom and just as incompressible for a demo.
    rng = random.Random(int.from_bytes(os.urandom(8), "big"))
    for rel, size in _payload_sizes(total):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            left = size
            while left:
                if run.cancel.is_set():
                    raise _Cancelled
                n = min(GENERATE_CHUNK_BYTES, left)
                fh.write(rng.randbytes(n))
                left -= n
                advance(n)


async def _in_thread(run: _Run, work: Callable[[], T]) -> T:
    """Run blocking work off the loop; if we are cancelled meanwhile, tell it to stop and wait for it,
    so nothing is still writing into the folder that cleanup is about to remove."""
    future = asyncio.get_running_loop().run_in_executor(None, work)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        run.cancel.set()
        with contextlib.suppress(BaseException):
            await future
        raise


async def _with_bar(run: _Run, description: str, total: int,
                    work: Callable[[Callable[[int], None]], T]) -> T:
    """`work(advance)` in a thread under a progress bar (a plain line when stderr is not a terminal)."""

    def checked(advance: Callable[[int], None]) -> Callable[[int], None]:
        def step(n: int) -> None:
            if run.cancel.is_set():
                raise _Cancelled
            advance(n)
        return step

    if not run.err.is_terminal:
        print(f"{description} ({format_size(total)})…", file=sys.stderr, flush=True)
        return await _in_thread(run, lambda: work(checked(lambda _n: None)))
    with transfer_progress(run.err, label_width=22) as bar:
        task = bar.add_task(description, total=total)
        return await _in_thread(run, lambda: work(checked(lambda n: bar.advance(task, n))))


def _free_ports(count: int) -> list[int]:
    """Ports the kernel says are free now; all sockets are held until every port is picked so the
    seeders get distinct ones (another program could still take one before a seeder binds it)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent() -> None:
    """In the child before exec: if the demo is killed outright (SIGKILL), the seeders get SIGTERM
    instead of seeding on as orphans. Linux only; elsewhere the demo's own cleanup has to do."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _start_seeder(run: _Run, index: int, port: int, torrent_path: str, seed_dir: str) -> _Seeder:
    assert run.work_dir is not None
    log_path = os.path.join(run.work_dir, f"seeder{index}.log")
    # The demo's swarm is its own: no public DHT routers, and no loopback nodes in the user's DHT state.
    dht = ["--dht-bootstrap", f"127.0.0.1:{run.dht.port}",
           "--dht-state", os.path.join(run.work_dir, f"dht-seeder{index}.dat")] if run.dht else ["--no-dht"]
    argv = selfexec.command("add", torrent_path, "-o", seed_dir, "--seed-forever",
                            "--bind", "127.0.0.1", "--listen-port", str(port), "--json", "--interval", "5", *dht)
    with open(log_path, "wb") as log:
        # A session of its own: Ctrl-C in the terminal reaches only the demo, which stops seeders in order.
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   env=selfexec.environment(),
                                   start_new_session=True, preexec_fn=_die_with_parent)
    seeder = _Seeder(index, port, log_path, process)
    run.seeders.append(seeder)
    return seeder


async def _wait_seeders(run: _Run, info_hash: bytes) -> None:
    """Until every seeder has announced itself complete to our tracker, or with --dht until a DHT
    lookup finds every seeder (then a leecher will find it)."""
    deadline = time.monotonic() + SEEDER_READY_TIMEOUT_S
    found: set[tuple[str, int]] = set()
    asked_at = -DHT_ASK_INTERVAL_S
    while True:
        for seeder in run.seeders:
            if seeder.process.poll() is not None:
                raise _DemoFailed(f"seeder {seeder.index} exited with status {seeder.process.returncode}:\n"
                                  + seeder.log_tail())
        if run.dht is not None:
            if time.monotonic() - asked_at >= DHT_ASK_INTERVAL_S:
                # A fresh lookup each time (port 0: look, never announce): seeders announce as they start.
                run.dht.track(info_hash, 0, lambda _ih, peers: found.update(peers))
                asked_at = time.monotonic()
            ready = {port for _ip, port in found}
        else:
            peers = run.tracker.registry.peers(info_hash)
            ready = {port for (_ip, port), entry in peers.items() if entry.left == 0}
        if all(s.port in ready for s in run.seeders):
            if run.dht is not None:
                run.dht.untrack(info_hash)
            return
        if time.monotonic() > deadline:
            late = [str(s.index) for s in run.seeders if s.port not in ready]
            raise _DemoFailed(f"seeder(s) {', '.join(late)} did not announce within "
                              f"{SEEDER_READY_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.1)


class _DemoFailed(Exception):
    pass


@contextlib.contextmanager
def _quit_key(run: _Run, task: asyncio.Task[Any]) -> Iterator[None]:
    """While the dashboard is not up yet, `q` on a terminal cancels the demo (as Ctrl-C does)."""
    fd = terminal.stdin_fd()
    if fd is None or not os.isatty(fd) or not run.options.tui:
        yield
        return

    def on_data(data: bytes) -> None:
        if b"q" in data or b"Q" in data:
            run.quit_pressed = True
            task.cancel()

    with terminal.cbreak(fd), terminal.reading(fd, on_data):
        yield


async def _download(run: _Run, meta: Any, download_dir: str) -> tuple[Any, float | None]:
    """Download in this process; returns (torrent, seconds from start to completion or None)."""
    from torrentpy.engine import alerts
    from torrentpy.engine.session import Session, SessionConfig
    from torrentpy.tui.run import choose_ui, run_session

    dht: dict[str, Any] = {"dht": False}
    if run.dht is not None and run.work_dir is not None:
        # Every node here is on 127.0.0.1: one address, so no per-address limit on our side.
        dht = {"dht": True, "dht_bootstrap": [f"127.0.0.1:{run.dht.port}"], "dht_rate_limit": False,
               "dht_state_path": os.path.join(run.work_dir, "dht-downloader.dat")}
    session = Session(SessionConfig(save_dir=download_dir, bind="127.0.0.1", listen_port=_free_ports(1)[0],
                                    seed_ratio=0.0, max_download_rate_bps=run.options.download_rate_bps,
                                    **dht))
    torrent = session.add(meta)
    await session.listen()
    started = time.monotonic()
    completed_at: list[float] = []

    def on_alert(alert: alerts.Alert) -> None:
        if isinstance(alert, alerts.Completed) and not completed_at:
            completed_at.append(time.monotonic())
        elif isinstance(alert, (alerts.Failed, alerts.TrackerError, alerts.PeerBanned, alerts.HashFailed)):
            detail = getattr(alert, "message", None) or getattr(alert, "reason", None) or getattr(alert, "piece", "")
            if ui != "dashboard":
                print(f"{alert.kind.replace('_', ' ')}: {detail}", file=sys.stderr, flush=True)

    session.listeners.append(on_alert)
    ui = choose_ui(tui=run.options.tui)
    try:
        await run_session(session, ui, interval_s=1.0, refresh_hz=run.options.refresh_hz)
    finally:
        _install_signals(run, asyncio.current_task())  # run_session pointed SIGINT and SIGTERM at the session
    if session.stop_signal is not None:
        run.signum = session.stop_signal
    elif not torrent.complete:
        run.quit_pressed = True
    return torrent, (completed_at[0] - started) if completed_at else None


def _install_signals(run: _Run, task: asyncio.Task[Any] | None) -> None:
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if run.signum is None:
            run.signum = signum
        run.cancel.set()
        if task is not None:
            task.cancel()

    # SIGHUP too: a closed terminal must not leave seeders and a temporary folder behind.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, on_signal, signum)


def _summary(run: _Run, torrent: Any, elapsed_s: float | None) -> Table:
    ports = {s.port: s.index for s in run.seeders}
    table = Table(title="bytes received per peer", title_justify="left", show_edge=False)
    table.add_column("peer")
    table.add_column("address")
    table.add_column("client")
    table.add_column("received", justify="right")
    table.add_column("share", justify="right")
    totals = torrent.peer_totals()
    received = sum(down for _client, down, _up in totals.values()) or 1
    for (ip, port), (client, down, _up) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        label = f"seeder {ports[port]}" if port in ports else "other"
        table.add_row(label, f"{ip}:{port}", client or "?", format_size(down),
                      f"{100.0 * down / received:.0f}%")
    return table


async def _main(run: _Run) -> int:
    from torrentpy._core import Bitfield
    from torrentpy.creation import create_torrent
    from torrentpy.metainfo import parse_torrent
    from torrentpy.storage.checker import verify
    from torrentpy.storage.resume import save_resume
    from torrentpy.tracker.server import serve

    opts = run.options
    task = asyncio.current_task()
    assert task is not None
    _install_signals(run, task)
    run.work_dir = tempfile.mkdtemp(prefix="torrentpy-demo-")
    seed_dir = os.path.join(run.work_dir, "seed")
    download_dir = os.path.join(run.work_dir, "download")
    payload = os.path.join(seed_dir, PAYLOAD_NAME)
    torrent_path = os.path.join(run.work_dir, f"{PAYLOAD_NAME}.torrent")
    out = run.out
    out.print(f"[bold]torrentpy demo[/]: {format_size(opts.size_bytes)} from {opts.peers} seeder"
              f"{'s' if opts.peers != 1 else ''} on 127.0.0.1, in {run.work_dir}")
    with _quit_key(run, task):
        await _with_bar(run, "generating payload", opts.size_bytes,
                        lambda advance: _generate(payload, opts.size_bytes, run, advance))
        trackers: list[list[str]] = []
        if opts.dht:
            from pathlib import Path

            from torrentpy.net.dht import DhtService

            run.dht = DhtService(bind="127.0.0.1", port=0, bootstrap=[], rate_limit=False,
                                 state_path=Path(run.work_dir, "dht-bootstrap.dat"))
            await run.dht.start()
            out.print(f"no tracker: a DHT bootstrap node on 127.0.0.1:{run.dht.port} (loopback only)")
        else:
            run.tracker = await serve(http_port=0, udp_port=0, bind="127.0.0.1")
            out.print(f"tracker: {run.tracker.http_url}  {run.tracker.udp_url}")
            trackers = [[run.tracker.http_url]]
        data = await _with_bar(run, "hashing pieces", opts.size_bytes,
                               lambda advance: create_torrent(payload, trackers=trackers,
                                                              comment="torrentpy demo", progress=advance))
        with open(torrent_path, "wb") as fh:
            fh.write(data)
        meta = parse_torrent(data)
        # The seeders share one copy and trust this resume file instead of each hashing it again.
        save_resume(meta, seed_dir, Bitfield.full(meta.num_pieces))
        for index, port in enumerate(_free_ports(opts.peers), 1):
            _start_seeder(run, index, port, torrent_path, seed_dir)
        await _wait_seeders(run, meta.info_hash)
    out.print(f"{opts.peers} seeder{'s' if opts.peers != 1 else ''} ready (pids "
              f"{', '.join(str(s.process.pid) for s in run.seeders)}); downloading "
              f"{meta.num_pieces} pieces of {format_size(meta.piece_length)}")
    torrent, elapsed_s = await _download(run, meta, download_dir)
    if run.signum is not None or elapsed_s is None:
        why = "interrupted" if run.signum is not None else "stopped (q)"
        out.print(f"{why} at {100.0 * torrent.snapshot(time.monotonic()).progress:.1f}%")
        return EXIT_INTERRUPTED if run.signum == signal.SIGINT else \
            (128 + run.signum if run.signum is not None else EXIT_OK)
    rate = opts.size_bytes / max(elapsed_s, 1e-6)
    out.print(f"[bold green]downloaded[/] {format_size(opts.size_bytes)} in {elapsed_s:.2f} s, "
              f"average {format_rate(rate)}")
    out.print(_summary(run, torrent, elapsed_s))
    received = sum(down for _client, down, _up in torrent.peer_totals().values())
    if received > opts.size_bytes:
        out.print(f"received {format_size(received)} in all: {format_size(received - opts.size_bytes)} more "
                  "than the payload (blocks that arrived twice near the end, or pieces fetched again)")

    def verify_all(advance: Callable[[int], None]) -> Any:
        done = [0]

        def on_pieces(pieces: int) -> None:  # the checker reports pieces verified so far
            now = min(opts.size_bytes, pieces * meta.piece_length)
            advance(now - done[0])
            done[0] = now

        return verify(meta, download_dir, progress=on_pieces)

    report = await _with_bar(run, "verifying download", opts.size_bytes, verify_all)
    if not report.complete:
        out.print(f"[bold red]verification failed[/]: {report.good_pieces}/{report.total_pieces} pieces good")
        return EXIT_FAILED
    out.print(f"verified: all {report.total_pieces} pieces match the torrent's hashes")
    return EXIT_OK


async def _cleanup(run: _Run) -> None:
    loop = asyncio.get_running_loop()

    def stop_all() -> None:
        for seeder in run.seeders:
            seeder.stop()

    await loop.run_in_executor(None, stop_all)
    if run.tracker is not None:
        await run.tracker.close()
    if run.dht is not None:
        await run.dht.close()


def _remove(run: _Run) -> None:
    if run.work_dir is None:
        return
    if run.options.keep:
        run.out.print(f"kept {run.work_dir}")
    else:
        shutil.rmtree(run.work_dir, ignore_errors=True)


async def _run(run: _Run) -> int:
    try:
        try:
            return await _main(run)
        finally:
            await asyncio.shield(_cleanup(run))
    except asyncio.CancelledError:
        if run.signum is None and not run.quit_pressed:
            raise
        run.out.print("stopped" if run.signum is None else "interrupted")
        return EXIT_OK if run.signum is None else \
            (EXIT_INTERRUPTED if run.signum == signal.SIGINT else 128 + run.signum)
    except (_DemoFailed, _Cancelled) as exc:
        run.out.print(f"[bold red]demo failed[/]: {exc}")
        return EXIT_FAILED


def run_demo(options: DemoOptions) -> int:
    """Run the demo to the end (or until stopped); the exit status is described in the module docstring."""
    from torrentpy.net.loop import run as run_loop

    if options.peers < 1 or options.peers > MAX_DEMO_PEERS:
        raise UsageError(f"--peers must be between 1 and {MAX_DEMO_PEERS}")
    if not MIN_DEMO_BYTES <= options.size_bytes <= MAX_DEMO_BYTES:
        raise UsageError(f"--size must be between {format_size(MIN_DEMO_BYTES)} and "
                         f"{format_size(MAX_DEMO_BYTES)}")
    run = _Run(options, Console(highlight=False, soft_wrap=True), Console(stderr=True, highlight=False))
    try:
        return run_loop(_run(run))
    finally:
        for seeder in run.seeders:  # normally already stopped; this covers a crash of the loop itself
            seeder.stop()
        _remove(run)
