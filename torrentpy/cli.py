"""The `torrentpy` command: add, create, info, verify, tracker, demo."""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from torrentpy import __version__
from torrentpy.engine import alerts
from torrentpy.errors import TorrentError, UsageError, out_of_memory_message
from torrentpy.metainfo import Magnet, Metainfo, load
from torrentpy.options import COMMANDS, rate_arg
from torrentpy.storage.placement import misplaced_hint
from torrentpy.text import printable
from torrentpy.units import format_size, parse_size

# rich (≈ 60 ms of imports) is loaded by the commands that draw with it, not by `add --no-tui` on its
# way to the first request.
if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, like every other error
        raise UsageError(f"{message} (see `{self.prog} -h`)")


def _stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _with_progress(description: str, work: Callable[[Callable[[int], None], Callable[[int], None]], Any]) -> Any:
    """Run `work(advance, set_total)` under a rich progress bar on a terminal, plainly otherwise."""
    console = _stderr_console()
    if not console.is_terminal:
        return work(lambda _n: None, lambda _t: None)
    from torrentpy.tui.progress import transfer_progress

    with transfer_progress(console) as bar:
        task = bar.add_task(description, total=None)
        return work(lambda n: bar.advance(task, n), lambda t: bar.update(task, total=t))


# --- info -------------------------------------------------------------------


# Without --files, a torrent with more files than fit on a screen shows this many and a count of the rest.
SUMMARY_FILES = 20


def _print_files(console: Console, meta: Metainfo, everything: bool) -> None:
    from torrentpy.tui.filetree import payload_files, tree_lines

    files = payload_files(meta)
    # The whole tree when it fits on the screen (or is asked for), else its first files and a count.
    shown = files if everything or len(files) <= max(console.height - 15, SUMMARY_FILES) else files[:SUMMARY_FILES]
    lines = tree_lines(meta, shown, dim=console.is_terminal and not console.no_color)
    if len(shown) < len(files):
        lines.append(f"… and {len(files) - len(shown):,} more files (use --files)")
    console.file.write("\n".join(lines) + "\n")


def cmd_info(args: argparse.Namespace) -> int:
    meta = load(args.source)
    if args.json:
        import json

        print(json.dumps(meta.to_dict(), ensure_ascii=False))
        return EXIT_OK
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    rows: list[tuple[str, str]] = []
    if isinstance(meta, Magnet):
        rows += [("Name", printable(meta.display_name or "(unknown until metadata is fetched)")),
                 ("Info-hash", meta.info_hash_hex)]
        rows += [("Peers", ", ".join(f"{h}:{p}" for h, p in meta.peers) or "none")]
    else:
        rows += [
            ("Name", printable(meta.name)),
            ("Info-hash", meta.info_hash_hex + ("  (v1 part of a hybrid v1+v2 torrent)" if meta.hybrid else "")),
            ("Total size", f"{format_size(meta.payload_length)} ({meta.payload_length:,} bytes)"),
            ("Pieces", f"{meta.num_pieces:,} × {format_size(meta.piece_length)}"),
            ("Private", "yes" if meta.private else "no"),
        ]
    tiers = meta.trackers
    if not tiers:
        rows.append(("Trackers", "none"))
    for i, tier in enumerate(tiers, 1):
        rows.append(("Trackers" if i == 1 else "", f"tier {i}: " + ", ".join(printable(u) for u in tier)))
    if meta.web_seeds:
        rows.append(("Web seeds", ", ".join(printable(u) for u in meta.web_seeds)))
    if isinstance(meta, Metainfo):
        if meta.created_by:
            rows.append(("Created by", printable(meta.created_by)))
        if meta.comment:
            rows.append(("Comment", printable(meta.comment)))
        if meta.creation_date is not None:
            try:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(meta.creation_date))
            except (OverflowError, OSError, ValueError):
                stamp = str(meta.creation_date)
            rows.append(("Created", stamp))
    for label, value in rows:
        console.print(f"[bold]{label + ':' if label else '':<12}[/] {escape(value)}")
    if isinstance(meta, Metainfo):
        console.print("[bold]Files:[/]")
        _print_files(console, meta, args.files)
    return EXIT_OK


# --- create -----------------------------------------------------------------


def _piece_size(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        return parse_size(text)
    except ValueError:
        raise UsageError(f"invalid piece size {text!r}: use auto, a number of bytes, or e.g. 256K, 1M") from None


def cmd_create(args: argparse.Namespace) -> int:
    from torrentpy.creation import create_torrent

    out = args.output or os.path.basename(os.path.abspath(args.path).rstrip(os.sep)) + ".torrent"
    if os.path.exists(out) and not args.force:
        raise UsageError(f"{out} already exists (use -f to overwrite)")
    out_dir = os.path.dirname(out) or "."
    if not os.path.isdir(out_dir):  # said before hashing, which can take minutes
        raise TorrentError(f"cannot write {out}: {out_dir} is not a folder" if os.path.exists(out_dir)
                           else f"cannot write {out}: there is no folder {out_dir}")
    data = _with_progress(
        "hashing",
        lambda advance, set_total: create_torrent(
            args.path,
            trackers=[[t] for t in args.tracker],
            web_seeds=args.webseed,
            piece_length=_piece_size(args.piece_size),
            private=args.private,
            comment=args.comment,
            progress=advance,
            on_total=set_total,
        ),
    )
    tmp = out + ".part"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, out)
    except OSError as exc:
        raise TorrentError(f"cannot write {out}: {exc.strerror}") from None
    meta = load(out)
    assert isinstance(meta, Metainfo)
    if not meta.trackers:
        # Worth saying before the file is shared: without a tracker only the DHT (public torrents, BEP 27)
        # or addresses given by hand bring peers together.
        if meta.private:
            print("torrentpy: warning: no tracker (-t URL) for a private torrent: nobody can find peers for it "
                  "unless given their addresses (torrentpy add --peer IP:PORT)", file=sys.stderr)
        else:
            print("torrentpy: warning: no tracker (-t URL): peers can find each other only on the DHT or "
                  "when given their addresses (torrentpy add --peer IP:PORT)", file=sys.stderr)
    print(f"created {out}: {meta.name}, {format_size(meta.total_length)}, "
          f"{meta.num_pieces} pieces of {format_size(meta.piece_length)}, info-hash {meta.info_hash_hex}")
    return EXIT_OK


# --- verify -----------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    from torrentpy.storage.checker import verify

    meta = load(args.torrent)
    if not isinstance(meta, Metainfo):
        raise UsageError("verify needs a .torrent file, not a magnet link")
    hint = misplaced_hint(meta, args.dir)
    if hint is not None and not args.json:
        # Nothing is where torrentpy looks, so the report would only say 0 pieces good.
        print(f"torrentpy: {hint}", file=sys.stderr)
        return EXIT_INCOMPLETE
    if not os.path.isdir(args.dir):
        raise UsageError(f"{args.dir}: no such folder")

    def work(advance: Callable[[int], None], set_total: Callable[[int], None]) -> Any:
        set_total(meta.total_length)
        done = [0]

        def on_pieces(n: int) -> None:
            advance(min(meta.total_length, n * meta.piece_length) - done[0])
            done[0] = min(meta.total_length, n * meta.piece_length)

        return verify(meta, args.dir, progress=on_pieces)

    report = _with_progress("verifying", work)
    incomplete = [f for f in report.files if not f[3]]
    if args.json:
        import json

        print(json.dumps({
            "name": meta.name,
            "info_hash": meta.info_hash_hex,
            "complete": report.complete,
            "good_pieces": report.good_pieces,
            "total_pieces": report.total_pieces,
            "files": [{"path": p, "size": s, "done": d, "complete": c} for p, s, d, c in report.files],
            **({"hint": hint} if hint is not None else {}),
        }, ensure_ascii=False))
    else:
        print(f"{printable(meta.name)}: {report.good_pieces}/{report.total_pieces} pieces good"
              f" ({100.0 * report.good_pieces / max(1, report.total_pieces):.1f}%)")
        for path, size, done, _ in incomplete:
            print(f"  incomplete: {printable(path)} ({format_size(done)} of {format_size(size)})")
        print("complete" if report.complete else f"{len(incomplete)} file(s) incomplete")
    return EXIT_OK if report.complete else EXIT_INCOMPLETE


# --- add --------------------------------------------------------------------

# Not "error": the run's last line says it (once), and the progress lines carry it meanwhile.
_PLAIN_EVENTS = (alerts.TrackerError, alerts.TrackerWarning, alerts.PeerBanned, alerts.Completed, alerts.Finished,
                 alerts.MetadataReceived, alerts.Checking)


def _show_alert(alert: alerts.Alert) -> None:
    """Under --no-tui, the alerts worth a line of their own on stderr."""
    if isinstance(alert, _PLAIN_EVENTS):
        detail = getattr(alert, "message", None) or getattr(alert, "reason", None) or ""
        print(f"{printable(alert.torrent)}: {alert.kind.replace('_', ' ')}"
              + (f": {printable(str(detail))}" if detail else ""), file=sys.stderr, flush=True)


def _check_only(args: argparse.Namespace, sources: list[Metainfo | Magnet]) -> None:
    """--only names files of one torrent; a magnet's are checked once its metadata arrives."""
    if args.only is None:
        return
    if len(sources) != 1:
        raise UsageError("--only selects files of one torrent: give a single SOURCE")
    source = sources[0]
    if isinstance(source, Metainfo):
        from torrentpy.tui.filetree import payload_files

        count = len(payload_files(source))
        bad = [i + 1 for i in args.only if i >= count]
        if bad:
            raise UsageError(f"--only: there is no file {bad[0]}: {printable(source.name)} has {count} "
                             f"file{'s' if count != 1 else ''}")


def _session_config(args: argparse.Namespace) -> Any:
    from torrentpy.engine.session import SessionConfig

    if args.seed_forever:
        ratio, seed_time = None, None
    else:
        ratio = args.seed_ratio
        seed_time = args.seed_time * 60.0 if args.seed_time is not None else None
        if seed_time is not None and args.seed_ratio_given is False:
            ratio = None  # --seed-time alone means "seed for that long", not "or until ratio 1"
    if ratio is not None and ratio < 0:
        raise UsageError("--seed-ratio must not be negative")
    return SessionConfig(
        save_dir=args.output_dir,
        listen_port=args.listen_port,
        bind=args.bind,
        max_peers=args.max_peers,
        max_download_rate_bps=rate_arg(args.max_download_rate) if args.max_download_rate else 0,
        max_upload_rate_bps=rate_arg(args.max_upload_rate) if args.max_upload_rate else 0,
        seed_ratio=ratio,
        seed_time_s=seed_time,
        unchoke_slots=args.unchoke_slots,
        dht=not args.no_dht,
        dht_bootstrap=args.dht_bootstrap,
        dht_state_path=args.dht_state,
        pex_interval_s=_pex_interval(args.pex_interval),
        encryption=args.encryption,
    )


def _pex_interval(seconds: float) -> float:
    if not seconds > 0:
        raise UsageError("--pex-interval must be more than 0 seconds")
    return seconds


async def _run_session(args: argparse.Namespace, sources: list[Metainfo | Magnet]) -> int:
    from torrentpy.engine.session import Session

    _configure_logging(args.log_file, quiet=not args.no_tui and not args.json and sys.stderr.isatty())
    session = Session(_session_config(args))
    try:
        return await _show_session(args, session, sources)
    finally:
        if not args.json:
            # Every way out (done, q, Ctrl-C, SIGTERM, an error) leaves a line per torrent on stdout;
            # the dashboard has left the alternate screen by now, so this lands in the scrollback.
            from torrentpy.tui.plain import format_summary_line

            for snap in session.snapshot().torrents:
                print(format_summary_line(snap), flush=True)


async def _show_session(args: argparse.Namespace, session: Any, sources: list[Metainfo | Magnet]) -> int:
    from torrentpy.net.loop import end_gc_pause
    from torrentpy.tui.run import choose_ui, run_session

    session.after_start.append(end_gc_pause)
    for source in sources:
        torrent = session.add(source)
        torrent.add_candidates(args.peer)
        if getattr(args, "only", None) is not None:
            torrent.selection.only(args.only)
        if getattr(args, "sequential", False):
            torrent.sequential = True
    await session.listen()
    ui = choose_ui(tui=not args.no_tui, json=args.json)
    if ui == "plain":
        session.listeners.append(_show_alert)
    await run_session(session, ui, interval_s=args.interval)
    if session.stop_signal is not None:
        import signal

        return EXIT_INTERRUPTED if session.stop_signal == signal.SIGINT else 128 + session.stop_signal
    if any(t.state == "error" for t in session.torrents.values()):
        for t in session.torrents.values():
            if t.error:
                print(f"torrentpy: error: {printable(t.name)}: {printable(t.error)}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _configure_logging(log_file: str | None, *, quiet: bool) -> None:
    """Engine diagnostics (why a peer was closed, banned …) go to --log-file. Without one, warnings go
    to stderr, except under the dashboard, which would paint over them."""
    import logging

    logger = logging.getLogger("torrentpy")
    logger.propagate = False
    if log_file:
        handler: logging.Handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.setLevel(logging.DEBUG)
    elif quiet:
        handler = logging.NullHandler()
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("torrentpy: %(levelname)s: %(message)s"))
        logger.setLevel(logging.WARNING)
    logger.addHandler(handler)


def cmd_add(args: argparse.Namespace) -> int:
    from torrentpy.net.loop import run

    sources = [load(s) for s in args.sources]
    seen: set[bytes] = set()
    for source in sources:
        if source.info_hash in seen:
            raise UsageError(f"{source.name} was given twice")
        seen.add(source.info_hash)
        hint = misplaced_hint(source, args.output_dir) if isinstance(source, Metainfo) else None
        if hint is not None:  # else it would download everything again beside the data it has
            raise UsageError(hint)
    if args.listen_port is not None and not 0 <= args.listen_port < 65536:
        raise UsageError("--listen-port must be between 0 and 65535")
    if args.max_peers < 1:
        raise UsageError("--max-peers must be at least 1")
    _check_only(args, sources)
    _check_folder(args.output_dir, [s for s in sources if isinstance(s, Metainfo)])
    return run(_run_session(args, sources))


def _check_folder(folder: str, metas: list[Metainfo]) -> None:
    """Before anyone hears from us: the folder must take files (else exit 1); a disk too small for
    the torrents is only a warning, since a partial download is a legitimate thing to want."""
    from torrentpy.storage.folder import prepare_folder, short_space_warning, space_for

    prepare_folder(folder)
    try:
        warning = short_space_warning(space_for(metas, folder), folder)
    except OSError:  # statvfs is not offered everywhere (some FUSE mounts): nothing to warn about
        return
    if warning:
        print(f"torrentpy: warning: {warning}", file=sys.stderr)


# --- tracker ----------------------------------------------------------------


async def _serve_tracker(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from torrentpy.tracker.server import run_forever

    task = asyncio.ensure_future(run_forever(args.http_port, args.udp_port, args.bind))
    stopped_by: list[int] = []

    def stop(signum: int) -> None:
        stopped_by.append(signum)
        task.cancel()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    try:
        await task
    except asyncio.CancelledError:
        if not stopped_by:
            raise
    # SIGTERM is how a service is asked to stop: a clean stop, so 0; Ctrl-C keeps the shell's 130.
    return EXIT_INTERRUPTED if stopped_by and stopped_by[0] == signal.SIGINT else EXIT_OK


def cmd_tracker(args: argparse.Namespace) -> int:
    from torrentpy.net.loop import run

    for name in ("http_port", "udp_port"):
        if not 0 <= getattr(args, name) < 65536:
            raise UsageError(f"--{name.replace('_', '-')} must be between 0 and 65535")
    return run(_serve_tracker(args))


# --- demo -------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from torrentpy.demo import DemoOptions, run_demo

    try:
        size = parse_size(args.size)
    except ValueError:
        raise UsageError(f"invalid --size {args.size!r}: use bytes or e.g. 32M, 1G") from None
    rate = rate_arg(args.rate) if args.rate else 0
    return run_demo(DemoOptions(size_bytes=size, peers=args.peers, keep=args.keep, tui=not args.no_tui,
                                download_rate_bps=rate, dht=args.dht))


# --- daemon -----------------------------------------------------------------


def cmd_daemon(args: argparse.Namespace) -> int:
    import logging

    from torrentpy.net.loop import run
    from torrentpy.rpc.run import DaemonOptions, check_options, run_daemon
    from torrentpy.rpc.server import RpcOptions, web_home

    options = DaemonOptions(
        download_dir=args.download_dir, state_dir=args.state_dir, listen_port=args.listen_port, bind=args.bind,
        dht=not args.no_dht, encryption=args.encryption,
        rpc=RpcOptions(bind=args.rpc_bind, port=args.rpc_port, username=args.rpc_username,
                       password=args.rpc_password, host_allow=args.rpc_host, web_home=web_home()),
    )
    check_options(options)
    _configure_logging(args.log_file, quiet=False)
    logging.getLogger("torrentpy").setLevel(logging.INFO)  # a service's log says what it did
    return run(run_daemon(options))


# --- dashboard (attached to a daemon over the RPC) -------------------------------------


def cmd_dashboard(args: argparse.Namespace) -> int:
    from torrentpy.net.loop import run
    from torrentpy.rpc.remote import run_remote_dashboard

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the dashboard needs a terminal (use transmission-remote -l for a list)")
    return run(run_remote_dashboard(args.rpc, args.rpc_username, args.rpc_password))


# --- parser -----------------------------------------------------------------


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or one with just the command `only`: a name that is no command (a typo, -h) gets the
    whole parser, whose error or help lists them all."""
    parser = _Parser(prog="torrentpy", description="A fast BitTorrent client.")
    parser.add_argument("--version", action="version", version=f"torrentpy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, help_text, add_args in COMMANDS:
        if only is None or name == only:
            p = sub.add_parser(name, help=help_text)
            add_args(p)
            p.set_defaults(func=_command(name))
    return parser


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    # Looked up when the parser is built, so a test's monkeypatched cmd_* is the one that runs.
    return {"info": cmd_info, "create": cmd_create, "verify": cmd_verify, "add": cmd_add, "tracker": cmd_tracker,
            "demo": cmd_demo, "daemon": cmd_daemon, "dashboard": cmd_dashboard}[name]


def main(argv: Sequence[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else list(argv)
    command = args_in[0] if args_in and any(args_in[0] == c[0] for c in COMMANDS) else None
    # No collections while the start-up's imports and objects are made (about 45 of them, ~8 ms, in
    # `add`'s way to its first request): `add` lets the collector run again once its first requests are out
    # (net.loop.end_gc_pause), every other command at once.
    gc.disable()
    parser = build_parser(command)
    try:
        args = parser.parse_args(args_in)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_USAGE
        if args.func is not cmd_add:
            gc.enable()
        return int(args.func(args))
    except UsageError as exc:
        print(f"torrentpy: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TorrentError as exc:
        print(f"torrentpy: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("torrentpy: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR
    except MemoryError:
        # Outside every torrent (a torrent stops with a line of its own); `add` has saved each resume file.
        print(f"torrentpy: error: {out_of_memory_message()}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"torrentpy: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        gc.enable()
