"""The swarm simulator's findings, as tests: a flash crowd completes, super-seeding saves the seeder's
upload, and choking holds each peer to its slots. Each swarm runs once per module (see the fixtures);
`pytest -s` prints their reports."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.sim.swarm import SwarmConfig, SwarmResult, simulate

pytestmark = pytest.mark.timeout(300)

FLASH_CROWD = SwarmConfig(leechers=200, pieces=256)
# Super-seeding is for a seeder whose upload is the bottleneck: it switches on under an upload limit. The
# baseline seeder has no limit, but its links are as fast, so with its slots + 1 unchoked it can reach
# the same rate.
LIMITED = SwarmConfig(leechers=30, pieces=256)
SEEDER_LIMIT_BPS = (LIMITED.unchoke_slots + 1) * LIMITED.link.rate_bps


@pytest.fixture(scope="module")
def flash_crowd() -> SwarmResult:
    result = simulate(FLASH_CROWD)
    print(result.report())
    return result


@pytest.fixture(scope="module")
def seeding_pair() -> tuple[SwarmResult, SwarmResult]:
    plain = simulate(LIMITED)
    superseed = simulate(replace(LIMITED, seeder_upload_bps=SEEDER_LIMIT_BPS))
    print(plain.report())
    print(superseed.report())
    return plain, superseed


def test_flash_crowd_of_200_completes(flash_crowd: SwarmResult) -> None:
    assert flash_crowd.completed == FLASH_CROWD.leechers, flash_crowd.report()
    # Every byte left the seeder at least once; few were fetched twice (endgame duplicates only).
    assert flash_crowd.seeder_ratio >= 1.0
    assert flash_crowd.downloaded <= 1.1 * flash_crowd.payload * FLASH_CROWD.leechers


def test_super_seeding_sends_each_piece_about_once(seeding_pair: tuple[SwarmResult, SwarmResult]) -> None:
    plain, superseed = seeding_pair
    assert plain.completed == superseed.completed == LIMITED.leechers
    assert 1.0 <= superseed.seeder_ratio < 1.2, superseed.report()
    assert superseed.seeder_ratio < plain.seeder_ratio - 0.5, (plain.report(), superseed.report())


def test_choking_keeps_unchoke_slots(flash_crowd: SwarmResult,
                                     seeding_pair: tuple[SwarmResult, SwarmResult]) -> None:
    for result in (flash_crowd, *seeding_pair):
        slots = result.config.unchoke_slots
        # Seeding, the optimistic slot is one more regular one: never more than slots + 1 unchoked;
        # leechers have the regular slots plus one optimistic unchoke.
        assert max(s.unchoked for s in result.seeder_unchokes) <= slots + 1, result.report()
        assert result.leecher_max_unchoked <= slots + 1, result.report()
    # The slots are used: through the super-seeded run (long enough for rechokes), whenever more peers
    # want data than there are slots, at least the configured number are unchoked.
    superseed = seeding_pair[1]
    start = superseed.seeder_unchokes[0].at
    busy = [s for s in superseed.seeder_unchokes if s.interested > slots and s.at >= start + 1]
    assert len(busy) >= 5 and all(s.unchoked >= slots for s in busy), superseed.report()


def test_runs_are_reproducible() -> None:
    config = SwarmConfig(leechers=12, pieces=64, seed=7)
    first, second = simulate(config), simulate(config)
    assert first.completed == config.leechers
    assert first.completion_s == second.completion_s
    assert (first.seeder_uploaded, first.uploaded, first.downloaded) == \
        (second.seeder_uploaded, second.uploaded, second.downloaded)
    other = simulate(replace(config, seed=8))
    assert other.completion_s != first.completion_s  # the seed matters: the runs are not trivially equal
