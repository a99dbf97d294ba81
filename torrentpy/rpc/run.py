"""`torrentpy daemon`: a session that runs until SIGTERM/SIGINT, its torrents driven over the RPC."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass

from torrentpy.daemon import Daemon
from torrentpy.engine.session import Session, SessionConfig
from torrentpy.errors import StorageError, UsageError
from torrentpy.rpc.server import RpcOptions, is_loopback, start_rpc

log = logging.getLogger("torrentpy")
QUEUE_INTERVAL_S = 1.0


@dataclass
class DaemonOptions:
    download_dir: str
    state_dir: str
    rpc: RpcOptions
    listen_port: int | None = None
    bind: str = "0.0.0.0"
    dht: bool = True  # public torrents only (BEP 27), as for `add`
    encryption: str | None = None  # None: what session-set last chose (saved), else tolerated


def check_options(options: DaemonOptions) -> None:
    rpc = options.rpc
    if not is_loopback(rpc.bind) and not rpc.password:
        raise UsageError(f"--rpc-bind {rpc.bind} is reachable from other machines: set --rpc-password too")
    if bool(rpc.username) != bool(rpc.password):
        raise UsageError("--rpc-username and --rpc-password go together")
    if not 0 <= rpc.port < 65536:
        raise UsageError("--rpc-port must be between 0 and 65535")


async def run_daemon(options: DaemonOptions) -> int:
    """Run until a signal (or session-close); returns the exit status (0 for SIGTERM: a service's stop)."""
    from torrentpy.tui.run import stop_on_signals

    config = SessionConfig(save_dir=options.download_dir, listen_port=options.listen_port, bind=options.bind,
                           seed_ratio=None, keep_running=True, dht=options.dht)
    session = Session(config)
    try:
        daemon = Daemon.open(session, options.state_dir, os.path.abspath(options.download_dir),
                             encryption=options.encryption)
    except (StorageError, OSError) as exc:
        raise UsageError(f"state folder {options.state_dir}: {exc}") from None
    await session.listen()
    runner = await start_rpc(daemon, options.rpc)
    port = runner.addresses[0][1] if runner.addresses else options.rpc.port
    log.info("torrentpy daemon: RPC on http://%s:%s/transmission/rpc, peers on port %d, %d torrents%s",
             options.rpc.bind, port, session.listen_port, len(session.torrents),
             f" ({len(daemon.state.problems)} state problems: see above)" if daemon.state.problems else "")
    stop_on_signals(session)
    queue = asyncio.ensure_future(_keep_queue(daemon))
    try:
        await session.run()
    finally:
        queue.cancel()
        await runner.cleanup()
        daemon.close()
    return 130 if session.stop_signal == signal.SIGINT else 0


async def _keep_queue(daemon: Daemon) -> None:
    # A download that completes frees its slot (and takes a seed slot): the queue hears within a second.
    # A bug in one pass must not end queueing for the daemon's life (an unobserved task fails silently):
    # it is logged, and the next second tries again.
    while True:
        await asyncio.sleep(QUEUE_INTERVAL_S)
        try:
            daemon.apply_queue()
        except Exception:
            log.exception("queue pass failed")
