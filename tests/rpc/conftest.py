from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.conftest import (  # noqa: F401  (fixtures used by these tests)
    libtorrent_peer,
    payload_factory,
    peer_registry,
    torrent_factory,
    transmission_peer,
)
from tests.interop.test_dashboard_pty import pty_terminal  # noqa: F401  (a fixture)
from tests.rpc.daemon_process import DaemonProcess


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """``daemon_factory(**kwargs)`` starts `torrentpy daemon`; every one is stopped (by its PID) at teardown."""
    started: list[DaemonProcess] = []

    def make(**kwargs: Any) -> DaemonProcess:
        kwargs.setdefault("download_dir", tmp_path / "downloads")
        kwargs.setdefault("state_dir", tmp_path / "state")
        daemon = DaemonProcess(tmp_path / f"daemon{len(started)}", **kwargs)
        started.append(daemon)
        return daemon.start()

    yield make
    for daemon in started:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.stop()

