"""The request-queue policy (engine.requests), alone and beside the picker it feeds."""

from __future__ import annotations

import pytest

from tests.engine.dsl import blocks_of, peer, picker
from torrentpy.engine.requests import (
    ENDGAME_QUEUE,
    MIN_QUEUE,
    MIN_SHARED_QUEUE,
    OUTSTANDING_BUDGET_BYTES,
    REMEASURE_S,
    SNUB_TIMEOUT_S,
    RequestPlan,
    is_snubbing,
    plan_requests,
)

BS = 16 * 1024


def want(outstanding: int, rate_bps: float = 0.0, *, endgame: bool = False) -> int:
    return plan_requests(outstanding, rate_bps, 0.0, endgame=endgame, block_size=BS).want


# ---- how many ---------------------------------------------------------------------------------------


def test_unknown_rate_fills_the_minimum_queue() -> None:
    assert plan_requests(0, 0.0, 5.0, endgame=False, block_size=BS) == RequestPlan(
        want=MIN_QUEUE, refill_below=MIN_QUEUE - MIN_QUEUE // 4, until=5.0 + REMEASURE_S)


@pytest.mark.parametrize(("outstanding", "expected"), [
    (0, 64), (47, 17), (48, 16),  # a quarter of the queue is free: top it up
    (49, 0), (63, 0), (64, 0), (200, 0),  # less than a quarter: wait and send a larger batch
])
def test_top_up_in_batches(outstanding: int, expected: int) -> None:
    assert want(outstanding) == expected


def test_depth_follows_the_rate() -> None:
    # Two seconds of blocks at the measured rate.
    assert want(0, 100 * BS) == 200
    plan = plan_requests(0, 100 * BS, 0.0, endgame=False, block_size=BS)
    assert plan.refill_below == 150
    assert want(0, 10_000 * BS) == 500  # capped


def test_many_peers_share_a_budget_of_requests_by_rate() -> None:
    budget = OUTSTANDING_BUDGET_BYTES // BS
    fast = 10_000 * BS  # alone it would get the 500 cap
    assert plan_requests(0, fast, 0.0, endgame=False, block_size=BS).want == 500
    # One of fifty equal peers: its fiftieth of the budget, however fast it is.
    assert plan_requests(0, fast, 0.0, endgame=False, block_size=BS, share=1 / 50).want == -(-budget // 50)
    # A new peer (no rate yet) still gets a floor to start from.
    assert plan_requests(0, 0.0, 0.0, endgame=False, block_size=BS, share=0.0).want == MIN_SHARED_QUEUE
    # A large share never raises the depth above what the rate asks for.
    assert plan_requests(0, 100 * BS, 0.0, endgame=False, block_size=BS, share=0.9).want == 200


@pytest.mark.parametrize(("outstanding", "expected"), [(0, ENDGAME_QUEUE), (1, 3), (3, 1), (4, 0), (60, 0)])
def test_endgame_keeps_queues_short(outstanding: int, expected: int) -> None:
    assert want(outstanding, 100 * BS, endgame=True) == expected


def test_endgame_duplicates_go_to_a_peer_with_nothing_in_flight() -> None:
    p = picker("1", blocks=4)
    a, b = peer(p, "a", "1"), peer(p, "b", "1")
    assert len(p.pick(a, want(p.outstanding_count(a)), now=0)) == 4
    assert p.in_endgame()
    endgame = p.in_endgame()
    assert want(p.outstanding_count(a), endgame=endgame) == 0  # a's queue is full
    n = want(p.outstanding_count(b), endgame=endgame)
    assert n == ENDGAME_QUEUE
    assert blocks_of(p.pick(b, n, now=1)) == [(0, 0), (0, 1), (0, 2), (0, 3)]  # all copies of a's blocks
    assert p.block_map(0) == "2222"


# ---- snubbing ---------------------------------------------------------------------------------------


def snubbing(now: float, outstanding: int = 1, *, block: float = 0.0, unchoked: float = 0.0,
             connected: float = 0.0) -> bool:
    return is_snubbing(now, outstanding=outstanding, last_block_at=block, unchoked_us_at=unchoked,
                       connected_at=connected)


def test_snubbing_after_the_timeout_with_requests_out() -> None:
    assert not snubbing(SNUB_TIMEOUT_S)
    assert snubbing(SNUB_TIMEOUT_S + 0.1)


def test_no_requests_out_is_not_snubbing() -> None:
    assert not snubbing(10 * SNUB_TIMEOUT_S, outstanding=0)


@pytest.mark.parametrize("latest", ["block", "unchoked", "connected"])
def test_the_clock_starts_at_the_latest_sign_of_life(latest: str) -> None:
    at = {"block": 0.0, "unchoked": 0.0, "connected": 0.0, latest: 100.0}
    for now, expected in ((100.0 + SNUB_TIMEOUT_S, False), (100.0 + SNUB_TIMEOUT_S + 1, True)):
        assert snubbing(now, block=at["block"], unchoked=at["unchoked"], connected=at["connected"]) is expected
