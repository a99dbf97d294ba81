from __future__ import annotations

import random
from collections import Counter

import pytest

from tests.engine.dsl import BS, bits, block, blocks_of, deliver, peer, picker, picture, pieces_of
from torrentpy.engine.picker import STALE_REQUEST_S, Block, BlockResult, PiecePicker
from torrentpy.engine.requests import queue_depth

ALL7 = "1111111"


# ---- rarest first ---------------------------------------------------------------------------------


def test_picks_lowest_availability_among_missing() -> None:
    p = picker("2223333", have="1010100")
    a = peer(p, "a", ALL7)
    assert pieces_of(p.pick(a, 1, now=0)) == [1]


def test_rarest_first_order_over_whole_torrent() -> None:
    p = picker("4179253", blocks=1)
    a = peer(p, "a", ALL7)
    assert pieces_of(p.pick(a, 7, now=0)) == [1, 4, 6, 0, 5, 2, 3]


def test_only_pieces_the_peer_has_and_we_lack() -> None:
    p = picker("1111111", have="1100000")
    a = peer(p, "a", "1101001")
    picked = p.pick(a, 100, now=0)
    assert sorted(pieces_of(picked)) == [3, 6]
    assert len(picked) == 8


def test_rarity_is_ranked_again_after_availability_changes() -> None:
    for seed in range(10):
        p = picker("1111", blocks=1, seed=seed)
        a = peer(p, "a", "1111")
        first = pieces_of(p.pick(a, 1, now=0))[0]
        rare = max(i for i in range(4) if i != first)
        peer(p, "c", "".join("0" if i == rare else "1" for i in range(4)))
        # Rankings are reused for up to a second; later picks see the new availability.
        assert pieces_of(p.pick(a, 1, now=5)) == [rare]


def test_equal_availability_tie_is_random() -> None:
    seen = Counter()
    for seed in range(60):
        p = picker("1111112", seed=seed)
        a = peer(p, "a", ALL7)
        seen[pieces_of(p.pick(a, 1, now=0))[0]] += 1
    assert set(seen) == {0, 1, 2, 3, 4, 5}  # never the common piece 6, and not always the same one


def test_random_first_pieces_ignore_rarity() -> None:
    firsts = set()
    for seed in range(40):
        p = picker("1999999", random_first=4, seed=seed)
        a = peer(p, "a", ALL7)
        firsts.add(pieces_of(p.pick(a, 1, now=0))[0])
    assert len(firsts) > 3  # piece 0 is rarest, yet the first pick is spread over the torrent


def test_rarest_first_once_random_first_pieces_are_in() -> None:
    for seed in range(10):
        p = picker("1999999", have="0001111", random_first=4, seed=seed)
        a = peer(p, "a", ALL7)
        assert pieces_of(p.pick(a, 1, now=0)) == [0]


# ---- partial pieces -------------------------------------------------------------------------------


def test_partial_pieces_are_finished_first_most_complete_first() -> None:
    p = picker("1111111", partial="..3.1..")
    a = peer(p, "a", ALL7)
    assert blocks_of(p.pick(a, 5, now=0)) == [(2, 2), (2, 3), (4, 1), (4, 2), (4, 3)]
    # Next come fresh pieces.
    assert pieces_of(p.pick(a, 1, now=0))[0] not in (2, 4)


def test_partial_piece_the_peer_lacks_is_skipped() -> None:
    p = picker("1111111", partial="..3....")
    a = peer(p, "a", "1100000")
    assert 2 not in pieces_of(p.pick(a, 8, now=0))


def test_a_peer_continues_its_own_piece() -> None:
    p = picker("1111111")
    a = peer(p, "a", ALL7)
    first = p.pick(a, 2, now=0)
    deliver(p, a, first)
    assert pieces_of(p.pick(a, 2, now=0)) == pieces_of(first)


def test_other_peers_start_their_own_pieces_before_sharing() -> None:
    p = picker("1111111")
    a, b = peer(p, "a", ALL7), peer(p, "b", ALL7)
    pa = p.pick(a, 2, now=0)
    pb = p.pick(b, 2, now=0)
    assert set(pieces_of(pa)).isdisjoint(pieces_of(pb))
    assert picture(p).count("p") == 2


def test_blocks_are_shared_only_when_nothing_else_is_left() -> None:
    p = picker("1000000")
    a, b = peer(p, "a", "1000000"), peer(p, "b", "1000000")
    assert blocks_of(p.pick(a, 2, now=0)) == [(0, 0), (0, 1)]
    assert blocks_of(p.pick(b, 4, now=0)) == [(0, 2), (0, 3)]
    assert p.block_map(0) == "rrrr"


def test_past_max_partial_peers_share_pieces_before_starting_new_ones() -> None:
    # Fifty seeders each starting a piece of their own would hold fifty piece buffers at once.
    p = picker("1111111", max_partial=2)
    a, b, c = peer(p, "a", ALL7), peer(p, "b", ALL7), peer(p, "c", ALL7)
    pa, pb = p.pick(a, 2, now=0), p.pick(b, 2, now=0)
    assert len(set(pieces_of(pa)) | set(pieces_of(pb))) == 2  # under the bound: a piece each
    pc = p.pick(c, 4, now=0)
    assert set(pieces_of(pc)) <= set(pieces_of(pa)) | set(pieces_of(pb))  # at it: shares both
    assert picture(p).count("p") == 2
    # Nothing left to share: the bound holds, and the peer waits for a piece to finish.
    assert p.at_capacity() and p.pick(c, 4, now=0) == [] and picture(p).count("p") == 2
    done = pieces_of(pa)[0]
    for blk in [b for b in pa + pb + pc if b.index == done]:
        p.on_block(next(k for k in (a, b, c) if blk in p.outstanding(k)), blk)
    p.piece_passed(done)
    assert not p.at_capacity() and len(set(pieces_of(p.pick(c, 4, now=0)))) == 1
    p.check_invariants()


def test_pieces_no_connected_peer_can_finish_do_not_hold_the_bound() -> None:
    p = picker("1111111", max_partial=2)
    a = peer(p, "a", ALL7)
    taken = p.pick(a, 8, now=0)  # two pieces, every block asked of a
    x, y = pieces_of(taken)
    for index in (x, y):
        p.on_block(a, next(blk for blk in taken if blk.index == index))
    b = peer(p, "b", "".join("0" if i in (x, y) else "1" for i in range(7)))
    assert p.at_capacity() and p.pick(b, 4, now=0) == []
    p.remove_peer(a)  # x and y are orphans now, and b lacks both: they must not stop it forever
    assert not p.at_capacity()
    got = p.pick(b, 4, now=0)
    assert len(got) == 4 and not {x, y} & set(pieces_of(got))
    p.check_invariants()


# ---- no duplicates, endgame -----------------------------------------------------------------------


def test_no_block_is_requested_twice_outside_endgame() -> None:
    p = picker("3333333")
    keys = [peer(p, k, ALL7) for k in "abc"]
    seen: dict[Block, str] = {}
    turn = 0
    while len(seen) < 28:
        assert not p.in_endgame()
        k = keys[turn % 3]
        turn += 1
        for blk in p.pick(k, 1, now=0):
            assert blk not in seen
            seen[blk] = k
    assert p.in_endgame()
    # From now on copies are handed out, always of a block another peer holds.
    for k in keys:
        for blk in p.pick(k, 1, now=0):
            assert seen[blk] != k


def test_endgame_duplicates_and_cancels() -> None:
    p = picker("1", blocks=4)
    a, b, c = peer(p, "a", "1"), peer(p, "b", "1"), peer(p, "c", "1")
    assert len(p.pick(a, 4, now=0)) == 4
    assert p.in_endgame()
    assert p.pick(a, 4, now=1) == []  # never a second copy to the same peer
    dup = p.pick(b, 4, now=1)
    assert blocks_of(dup) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert p.block_map(0) == "2222"
    assert p.pick(c, 4, now=1) == []  # at most two copies of each block
    result = p.on_block(b, block(p, 0, 0))
    assert result.cancel == ((a, block(p, 0, 0)),) and not result.duplicate and not result.unrequested
    assert block(p, 0, 0) not in p.outstanding(a)
    late = p.on_block(a, block(p, 0, 0))  # a answered before our CANCEL reached it
    assert late.duplicate and not late.unrequested
    assert p.block_map(0) == "x222"


def test_endgame_prefers_blocks_with_fewest_copies_then_oldest() -> None:
    p = picker("11", blocks=2)
    a, b, c = peer(p, "a", "11"), peer(p, "b", "11"), peer(p, "c", "11")
    p.pick(a, 2, now=5)  # piece x
    p.pick(b, 2, now=1)  # piece y, asked earlier
    older = pieces_of(p.outstanding(b))[0]
    got = p.pick(c, 1, now=9)
    assert blocks_of(got) == [(older, 0)]
    got = p.pick(c, 4, now=9)
    assert len(got) == 3


def test_endgame_scan_skipped_until_a_block_is_released() -> None:
    p = picker("1", blocks=4)
    a, b, c = peer(p, "a", "1"), peer(p, "b", "1"), peer(p, "c", "1")
    p.pick(a, 4, now=0)
    p.pick(b, 4, now=0)
    assert p.pick(c, 4, now=1) == []  # every block has its two copies
    assert p.pick(c, 4, now=2) == []  # (not scanned again: nothing moved)
    p.on_reject(b, block(p, 0, 2))  # b gives one back: c may race a for it now
    assert blocks_of(p.pick(c, 4, now=3)) == [(0, 2)]
    p.remove_peer(a)  # a leaves: its blocks drop to one copy each
    assert sorted(blocks_of(p.pick(c, 4, now=4))) == [(0, 0), (0, 1), (0, 3)]
    p.check_invariants()


def test_endgame_not_entered_while_some_piece_is_unrequested() -> None:
    p = picker("11", blocks=2)
    a = peer(p, "a", "10")
    p.pick(a, 10, now=0)
    assert not p.in_endgame()  # piece 1 is missing and nobody asked for it
    b = peer(p, "b", "10")
    assert p.pick(b, 10, now=0) == []


# ---- reject, timeout, peers leaving ---------------------------------------------------------------


def test_rejected_block_is_requested_again() -> None:
    p = picker("1")
    a, b = peer(p, "a", "1"), peer(p, "b", "1")
    p.pick(a, 4, now=0)
    assert p.on_reject(a, block(p, 0, 1))
    assert not p.on_reject(a, block(p, 0, 1))  # already gone
    assert not p.in_endgame()
    # The freed block first; after it everything is requested, so endgame copies follow.
    assert blocks_of(p.pick(b, 4, now=0)) == [(0, 1), (0, 0), (0, 2), (0, 3)]


def test_timed_out_requests_are_listed_oldest_first_and_become_requestable() -> None:
    p = picker("1")
    a, b = peer(p, "a", "1"), peer(p, "b", "1")
    first = p.pick(a, 2, now=0.0)
    second = p.pick(a, 2, now=3.0)
    assert p.timed_out(4.0, 5.0) == []
    assert p.timed_out(5.0, 5.0) == [(a, blk) for blk in first]
    assert p.timed_out(9.0, 5.0) == [(a, blk) for blk in first + second]
    for _key, blk in p.timed_out(5.0, 5.0):
        assert p.on_timeout(a, blk)
    assert p.requested_at(a, first[0]) is None
    assert p.timed_out(8.0, 5.0) == [(a, blk) for blk in second]
    again = p.pick(b, 2, now=6.0)
    assert again == first
    late = p.on_block(a, first[0])  # the slow peer delivers after all
    assert not late.unrequested and not late.duplicate
    assert late.cancel == ((b, first[0]),)


def test_peer_leaving_releases_its_blocks() -> None:
    p = picker("1111")
    a, b = peer(p, "a", "1111"), peer(p, "b", "1111")
    picked = p.pick(a, 3, now=0)
    deliver(p, a, picked[:1])
    released = p.remove_peer(a)
    assert sorted(released) == sorted(picked[1:])
    assert p.outstanding(a) == []
    # The abandoned partial piece is finished first, then the rest.
    assert blocks_of(p.pick(b, 3, now=1)) == [(picked[0].index, 1), (picked[0].index, 2),
                                               (picked[0].index, 3)]
    assert p.availability.counts() == [2, 2, 2, 2]


def test_untouched_piece_returns_to_pool_when_its_peer_leaves() -> None:
    p = picker("1")
    a = peer(p, "a", "1")
    p.pick(a, 2, now=0)
    assert p.downloading_pieces() == {0}
    p.remove_peer(a)
    assert p.downloading_pieces() == set()
    assert picture(p) == "."


# ---- block arrival, hashing -----------------------------------------------------------------------


def test_piece_complete_then_passed() -> None:
    p = picker("11")
    a = peer(p, "a", "11")
    blocks = p.pick(a, 4, now=0)
    results = [p.on_block(a, blk) for blk in blocks]
    assert [r.piece_complete for r in results] == [False, False, False, True]
    assert picture(p).count("*") == 1
    assert p.pieces_awaiting_hash() == [blocks[0].index]
    assert p.left_bytes() == 2 * 4 * BS
    p.piece_passed(blocks[0].index)
    assert p.left_bytes() == 4 * BS and not p.done()
    deliver(p, a, p.pick(a, 4, now=0))
    assert p.done() and p.left_bytes() == 0 and picture(p) == "HH"
    assert p.pick(a, 4, now=0) == [] and not p.in_endgame()


def test_piece_failed_is_downloaded_again_and_names_contributors() -> None:
    p = picker("1")
    a, b = peer(p, "a", "1"), peer(p, "b", "1")
    pa = p.pick(a, 2, now=0)
    pb = p.pick(b, 2, now=0)
    p.on_block(a, pa[0])
    p.on_block(a, pa[1])
    p.on_block(b, pb[0])
    assert p.on_block(b, pb[1]).piece_complete
    assert p.piece_failed(0) == {a, b}
    assert picture(p) == "."
    assert blocks_of(p.pick(a, 4, now=1)) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert p.piece_failed(0) == set()  # nothing received yet, nobody to blame


def test_duplicate_and_unrequested_blocks() -> None:
    p = picker("11")
    a, b = peer(p, "a", "11"), peer(p, "b", "11")
    blk = p.pick(a, 1, now=0)[0]
    assert p.on_block(a, blk) == BlockResult()  # requested and new: nothing to report
    again = p.on_block(a, blk)
    assert again.duplicate and again.unrequested
    other = block(p, 1 - blk.index, 0)
    gift = p.on_block(b, other)  # never asked, but we lack it: keep it
    assert gift.unrequested and not gift.duplicate
    assert p.block_map(other.index) == "x..."
    assert (other.index, 0) not in blocks_of(p.pick(b, 8, now=0))


def test_block_geometry_is_checked() -> None:
    p = picker("11")
    peer(p, "a", "11")
    bad_blocks = (Block(2, 0, BS), Block(0, 5, BS), Block(0, 4 * BS, BS), Block(0, 0, BS - 1),
                  Block(-1, 0, BS))
    for bad in bad_blocks:
        with pytest.raises(ValueError, match=r"^block (piece index|offset|length) "):
            p.on_block("a", bad)


def test_last_piece_and_last_block_are_shorter() -> None:
    # 3 pieces of 4 blocks; the last piece is 40 bytes = 16 + 16 + 8.
    p = picker("111", last_piece_length=40)
    assert p.total_length == 2 * 64 + 40
    assert p.blocks_in_piece(2) == 3 and p.piece_size(2) == 40
    a = peer(p, "a", "001")
    assert p.pick(a, 10, now=0) == [Block(2, 0, 16), Block(2, 16, 16), Block(2, 32, 8)]
    with pytest.raises(ValueError, match="block length 16 is wrong for piece 2"):
        p.on_block(a, Block(2, 32, 16))
    assert deliver(p, a, [Block(2, 0, 16), Block(2, 16, 16), Block(2, 32, 8)]) == [2]
    assert p.left_bytes() == 128


def test_last_piece_of_single_block() -> None:
    p = picker("11", blocks=4, last_piece_length=1)
    assert p.blocks_in_piece(1) == 1
    a = peer(p, "a", "01")
    assert p.pick(a, 4, now=0) == [Block(1, 0, 1)]


def test_bad_geometry_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit 2 pieces"):
        PiecePicker(2, 64, 129)
    with pytest.raises(ValueError, match="does not fit 2 pieces"):
        PiecePicker(2, 64, 64)
    with pytest.raises(ValueError, match="must be positive"):
        PiecePicker(2, 0, 0)


def test_interest_and_have_messages() -> None:
    p = picker("1100", have="1100")
    a = peer(p, "a", "1100")
    assert not p.is_interesting(p.peer_bitfield(a))
    assert p.pick(a, 4, now=0) == []
    assert not p.peer_have(a, 0)
    assert p.peer_have(a, 3)
    assert p.is_interesting(p.peer_bitfield(a))
    assert p.availability.counts() == [2, 2, 0, 1]
    assert pieces_of(p.pick(a, 4, now=0)) == [3]


def test_bitfield_replaced_keeps_availability_exact() -> None:
    p = picker("0000")
    p.add_peer("a")
    p.peer_have("a", 1)
    p.add_peer("a", bits("1010"))
    assert p.availability.counts() == [1, 0, 1, 0]
    p.remove_peer("a")
    assert p.availability.counts() == [0, 0, 0, 0]


def test_resume_with_have_bitfield() -> None:
    p = PiecePicker(4, 64, 256, block_size=16, have=bits("1011"))
    assert p.left_bytes() == 64
    p.add_peer("a", bits("1111"))
    assert pieces_of(p.pick("a", 10, now=0)) == [1]


# ---- queue depth ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate_bps", "expected"),
    [
        (0, 4),
        (-5, 4),
        (16384, 4),  # 2 s of 16 KiB/s is 2 blocks: the floor keeps the pipe from draining
        (16384 * 10, 20),
        (1_000_000, 123),  # ceil(2e6 / 16384)
        (100 * 2**20, 500),
        (float("inf"), 500),
    ],
)
def test_queue_depth(rate_bps: float, expected: int) -> None:
    assert queue_depth(rate_bps) == expected


def test_queue_depth_options() -> None:
    assert queue_depth(1_000_000, target_s=1.0, block_size=10_000) == 100
    assert queue_depth(10, min_depth=1) == 1
    assert queue_depth(10**9, max_depth=64) == 64


def test_whole_download_with_random_first_then_rarest() -> None:
    rng = random.Random(7)
    p = picker("5" * 20, random_first=4, seed=3)
    keys = [peer(p, f"p{i}", "1" * 20) for i in range(3)]
    rounds = 0
    while not p.done():
        rounds += 1
        assert rounds < 1000
        for k in keys:
            got = p.pick(k, 3, now=rounds)
            rng.shuffle(got)
            deliver(p, k, got)
        p.check_invariants()
    assert p.left_bytes() == 0


def test_one_pick_starts_no_more_pieces_than_the_bound_allows() -> None:
    p = picker("1111111", max_partial=3)
    a = peer(p, "a", ALL7)
    assert len(set(pieces_of(p.pick(a, 28, now=0)))) == 3 and p.at_capacity()
    p.check_invariants()


def test_at_the_bound_a_peer_races_blocks_a_slow_peer_has_held_too_long() -> None:
    p = picker("1111111", max_partial=2)
    slow, fast = peer(p, "slow", ALL7), peer(p, "fast", ALL7)
    held = p.pick(slow, 8, now=0)  # every block of the two pieces the bound allows
    assert len(set(pieces_of(held))) == 2 and p.at_capacity()
    assert p.pick(fast, 4, now=STALE_REQUEST_S - 0.5) == []  # not yet: the slow peer may still answer
    raced = p.pick(fast, 3, now=STALE_REQUEST_S)
    assert len(raced) == 3 and set(raced) <= set(held)
    assert sorted(p.pick(fast, 8, now=STALE_REQUEST_S)) == sorted(b for b in held if b not in raced)  # once each
    result = p.on_block(fast, raced[0])
    assert result.cancel == ((slow, raced[0]),) and not result.unrequested
    p.check_invariants()
