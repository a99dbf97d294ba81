"""Factories for real peers on 127.0.0.1; every process a factory started is stopped at teardown.

def test_x(payload_factory, torrent_factory, libtorrent_peer, aria2_peer, tmp_path):
    payload = payload_factory(4 * MiB)
    torrent = torrent_factory(payload, piece_length=64 * 1024)
    seeder = libtorrent_peer(torrent, payload.save_dir, seed=True)
    leecher = aria2_peer(torrent, tmp_path / "got", seed=False)
    seeder.add_peer(*leecher.address)   # aria2 never dials: the other side connects to it
    leecher.wait_finished(30)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.interop.peers.aria2 import Aria2Peer
from tests.interop.peers.base import PeerProcess
from tests.interop.peers.libtorrent_peer import LibtorrentPeer
from tests.interop.peers.payload import (
    Payload,
    PayloadSpec,
    make_payload,
    make_torrent_libtorrent,
    make_torrent_mktorrent,
)
from tests.interop.peers.qbittorrent import QbittorrentPeer
from tests.interop.peers.transmission import TransmissionPeer


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    # Lets the peer fixtures know at teardown whether to print the clients' logs.
    setattr(item, f"_interop_report_{report.when}", report)
    return report


def _test_failed(request: pytest.FixtureRequest) -> bool:
    return any(
        getattr(getattr(request.node, f"_interop_report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )


class PeerRegistry:
    """Every peer the factories made, so teardown can stop them all by PID even after a failure."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.peers: list[PeerProcess] = []
        self._counter = itertools.count(1)

    def next_name(self, prefix: str) -> str:
        return f"{prefix}{next(self._counter)}"

    def stop_all(self) -> list[str]:
        problems = []
        for peer in reversed(self.peers):
            try:
                peer.stop()
            except Exception as err:  # keep stopping the others; report after
                problems.append(f"{peer.name}: stop failed: {err!r}")
                peer.kill9()
            if peer.process is not None and peer.process.is_running():
                problems.append(f"{peer.name}: pid {peer.process.pid} still running after stop")
        return problems


@pytest.fixture
def peer_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PeerRegistry]:
    registry = PeerRegistry(tmp_path / "peers")
    yield registry
    failed = _test_failed(request)
    problems = registry.stop_all()
    if failed:
        for peer in registry.peers:
            print(f"===== {peer.name} log tail =====\n{peer.log_tail()}")
    assert not problems, problems


@pytest.fixture
def payload_factory(tmp_path: Path) -> Callable[..., Payload]:
    """``payload_factory(spec, name="payload", seed=1) -> Payload`` in a fresh directory."""
    counter = itertools.count(1)

    def make(spec: PayloadSpec, name: str = "payload", seed: int = 1) -> Payload:
        return make_payload(tmp_path / f"payload{next(counter)}", spec, name=name, seed=seed)

    return make


@pytest.fixture
def torrent_factory(tmp_path: Path) -> Callable[..., Path]:
    """``torrent_factory(payload, piece_length=65536, trackers=(), creator="libtorrent"|"mktorrent")``."""
    counter = itertools.count(1)

    def make(
        payload: Payload,
        piece_length: int = 64 * 1024,
        trackers: Sequence[str] = (),
        creator: str = "libtorrent",
    ) -> Path:
        out = tmp_path / f"torrent{next(counter)}-{creator}.torrent"
        if creator == "libtorrent":
            return make_torrent_libtorrent(payload.root, piece_length, trackers, out)
        if creator == "mktorrent":
            return make_torrent_mktorrent(payload.root, piece_length, trackers, out)
        raise ValueError(f"unknown torrent creator {creator!r}")

    return make


def _factory(registry: PeerRegistry, cls: type[Any], prefix: str) -> Callable[..., Any]:
    def make(torrent: Path, save_dir: Path, seed: bool, *, start: bool = True, **kwargs: Any) -> Any:
        kwargs.setdefault("name", registry.next_name(prefix))
        peer = cls(registry.work_dir, torrent, save_dir, seed, **kwargs)
        registry.peers.append(peer)  # registered before start: a half-started peer is stopped too
        return peer.start() if start else peer

    return make


@pytest.fixture
def libtorrent_peer(peer_registry: PeerRegistry) -> Callable[..., LibtorrentPeer]:
    """``libtorrent_peer(torrent, save_dir, seed, *, port=None, peers=(), upload_limit_bps=0, …)``."""
    return _factory(peer_registry, LibtorrentPeer, "lt")


@pytest.fixture
def aria2_peer(peer_registry: PeerRegistry) -> Callable[..., Aria2Peer]:
    """``aria2_peer(torrent, save_dir, seed, *, port=None, trackers=None, keep_seeding=False, …)``."""
    return _factory(peer_registry, Aria2Peer, "aria2-")


@pytest.fixture
def transmission_peer(peer_registry: PeerRegistry) -> Callable[..., TransmissionPeer]:
    """``transmission_peer(torrent, save_dir, seed, *, port=None, upload_limit_bps=0, …)``."""
    return _factory(peer_registry, TransmissionPeer, "transmission")


@pytest.fixture
def qbittorrent_peer(peer_registry: PeerRegistry) -> Callable[..., QbittorrentPeer]:
    """``qbittorrent_peer(torrent, save_dir, seed, *, port=None, upload_limit_bps=0, …)``."""
    return _factory(peer_registry, QbittorrentPeer, "qbittorrent")


# Shared by every interop module: the real tracker and torrentpy itself as a peer process.
from tests.interop.opentracker import opentracker  # noqa: E402, F401
from tests.interop.peers.torrentpy_peer import TorrentpyPeer, torrentpy_factory  # noqa: E402


@pytest.fixture
def torrentpy_peer(peer_registry: PeerRegistry) -> Callable[..., TorrentpyPeer]:
    """``torrentpy_peer(torrent, save_dir, seed, *, port=None, peers=(), seed_ratio=None, extra_args=())``."""
    return torrentpy_factory(peer_registry)
