"""Fixtures shared by the in-process engine tests: a manual clock and an in-memory network."""

from __future__ import annotations

import pytest

from tests.engine.harness import ManualClock
from tests.engine.memnet import Network


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def net() -> Network:
    return Network()
