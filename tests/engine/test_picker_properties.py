"""Random event sequences against the picker's promises."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from torrentpy._core import Bitfield
from torrentpy.engine.picker import Block, PiecePicker

PEERS = ["a", "b", "c", "d"]

op = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(PEERS), st.integers(0, 2**12 - 1)),
    st.tuples(st.just("have"), st.sampled_from(PEERS), st.integers(0, 11)),
    st.tuples(st.just("pick"), st.sampled_from(PEERS), st.integers(0, 9)),
    st.tuples(st.just("block"), st.sampled_from(PEERS), st.integers(0, 50)),
    st.tuples(st.just("stray"), st.sampled_from(PEERS), st.integers(0, 12 * 3 - 1)),
    st.tuples(st.just("reject"), st.sampled_from(PEERS), st.integers(0, 50)),
    st.tuples(st.just("timeout"), st.sampled_from(PEERS), st.integers(0, 50)),
    st.tuples(st.just("remove"), st.sampled_from(PEERS), st.just(0)),
    st.tuples(st.just("hash"), st.booleans(), st.integers(0, 11)),
)


def _bitfield(mask: int, n: int) -> Bitfield:
    return Bitfield.from_string("".join("1" if mask >> i & 1 else "0" for i in range(n)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2**12 - 1), min_size=4, max_size=4), st.lists(op, max_size=120),
       st.integers(0, 2**32))
def test_no_duplicate_requests_outside_endgame(masks: list[int], ops: list[tuple], seed: int) -> None:
    # 12 pieces of 3 blocks of 10 bytes; the last piece is 25 bytes (3 blocks, the last one 5).
    p = PiecePicker(12, 30, 11 * 30 + 25, block_size=10, rng=random.Random(seed), random_first=2)
    for key, mask in zip(PEERS, masks, strict=True):
        p.add_peer(key, _bitfield(mask, 12))
    now = 0.0
    for kind, who, arg in ops:
        now += 1.0
        connected = who in p.peers() if isinstance(who, str) else False
        if kind == "add":
            p.add_peer(who, _bitfield(arg, 12))
        elif kind == "have" and connected:
            p.peer_have(who, arg)
        elif kind == "pick" and connected:
            before = {(k, blk) for k in p.peers() for blk in p.outstanding(k)}
            mine_before = set(p.outstanding(who))
            picked = p.pick(who, arg, now=now)
            assert len(picked) <= arg
            assert len(set(picked)) == len(picked)
            assert not set(picked) & mine_before
            held_elsewhere = [blk for blk in picked if any(blk == b for _k, b in before)]
            if held_elsewhere:
                assert p.in_endgame()
            for blk in picked:
                assert p.peer_bitfield(who).get(blk.index)
                assert not p.have.get(blk.index)
        elif kind in ("block", "reject", "timeout") and connected:
            mine = p.outstanding(who)
            if mine:
                blk = mine[arg % len(mine)]
                if kind == "block":
                    res = p.on_block(who, blk)
                    assert not res.duplicate and not res.unrequested
                    assert all(k != who for k, _b in res.cancel)
                elif kind == "reject":
                    assert p.on_reject(who, blk)
                else:
                    assert p.on_timeout(who, blk)
        elif kind == "stray":
            index, b = divmod(arg, 3)
            begin = b * 10
            blk = Block(index, begin, min(10, p.piece_size(index) - begin))
            p.on_block(who, blk)
        elif kind == "remove":
            p.remove_peer(who)
        elif kind == "hash":
            waiting = p.pieces_awaiting_hash()
            if waiting:
                index = waiting[arg % len(waiting)]
                if who:
                    p.piece_passed(index)
                else:
                    p.piece_failed(index)
        p.check_invariants()
        copies = Counter(blk for k in p.peers() for blk in p.outstanding(k))
        if not p.in_endgame():
            assert all(n == 1 for n in copies.values())
        assert all(n <= p.endgame_copies for n in copies.values())
        assert p.left_bytes() == sum(p.piece_size(i) for i in range(12) if not p.have.get(i))


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 20),
    st.integers(1, 5),
    st.integers(1, 4),
    st.integers(1, 12),
    st.integers(0, 2**32),
)
def test_every_block_is_eventually_received(num_pieces: int, blocks: int, num_peers: int, depth: int,
                                            seed: int) -> None:
    rng = random.Random(seed)
    last_len = rng.randint(1, blocks * 8)
    p = PiecePicker(num_pieces, blocks * 8, (num_pieces - 1) * blocks * 8 + last_len, block_size=8,
                    rng=random.Random(seed), random_first=rng.randint(0, 4))
    keys = [f"p{i}" for i in range(num_peers)]
    for k in keys:
        p.add_peer(k, Bitfield.full(num_pieces))
    failures_left = 3
    received = 0
    for step in range(10_000):
        if p.done():
            break
        k = rng.choice(keys)
        p.pick(k, depth - len(p.outstanding(k)), now=step)
        mine = p.outstanding(k)
        rng.shuffle(mine)
        for blk in mine[: rng.randint(0, len(mine))]:
            r = rng.random()
            if r < 0.1:
                p.on_reject(k, blk)
                continue
            if r < 0.15:
                p.on_timeout(k, blk)
            res = p.on_block(k, blk)
            received += not res.duplicate
            if res.piece_complete:
                if failures_left and rng.random() < 0.2:
                    failures_left -= 1
                    assert k in p.piece_failed(blk.index)
                else:
                    p.piece_passed(blk.index)
        p.check_invariants()
    assert p.done()
    assert p.left_bytes() == 0
    assert received >= num_pieces * blocks - (blocks - -(-last_len // 8))
