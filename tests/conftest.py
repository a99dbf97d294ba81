"""Fixtures every test directory may use."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.interop.peers.base import free_port as _free_port
from tests.tmpfs import tmpfs  # noqa: F401 (a fixture: a real small filesystem, for disk-error tests)


def pytest_configure(config: pytest.Config) -> None:
    # Also declared in pyproject.toml; repeated so running a single file from elsewhere stays strict.
    config.addinivalue_line("markers", "interop: runs real peer clients")


@pytest.fixture(autouse=True)
def dht_stays_home(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test may reach the public DHT routers: bootstrap from nowhere unless a test says where, and keep
    the DHT state file (saved nodes are pinged at start) out of the user's home. Child processes inherit both."""
    monkeypatch.setenv("TORRENTPY_DHT_BOOTSTRAP", "")
    monkeypatch.setenv("TORRENTPY_DHT_STATE", str(tmp_path_factory.mktemp("dht-state") / "dht.dat"))


@pytest.fixture
def free_port() -> Callable[..., int]:
    """Call it for a 127.0.0.1 port that is free for TCP and UDP and not handed out before."""
    return _free_port
