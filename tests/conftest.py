"""Fixtures every test directory may use."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.interop.peers.base import free_port as _free_port
from tests.tmpfs import tmpfs  # noqa: F401 (a fixture: a real small filesystem, for disk-error tests)


def pytest_configure(config: pytest.Config) -> None:
    # Also declared in pyproject.toml; repeated so running a single file from elsewhere stays strict.
    config.addinivalue_line("markers", "interop: runs real peer clients")


@pytest.fixture
def free_port() -> Callable[..., int]:
    """Call it for a 127.0.0.1 port that is free for TCP and UDP and not handed out before."""
    return _free_port
