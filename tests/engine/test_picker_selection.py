"""Selective, prioritised and sequential picking (engine/priority.py through the picker), in the picture
language of test_picker.py. Levels are one digit per piece: 0 skip, 1 low, 2 normal, 3 high."""

from __future__ import annotations

from tests.engine.dsl import bits, deliver, peer, picker, pieces_of
from torrentpy.engine.picker import PiecePicker


def levels(p: PiecePicker, picture: str) -> None:
    p.set_piece_levels(bytes(int(c) for c in picture))
    p.check_invariants()


def finish(p: PiecePicker, key: str, index: int) -> None:
    assert deliver(p, key, [b for b in p.outstanding(key) if b.index == index]) == [index]
    p.check_invariants()


def test_skipped_pieces_are_never_picked() -> None:
    p = picker("1111111", blocks=1)
    levels(p, "2202022")
    a = peer(p, "a", "1111111")
    assert sorted(pieces_of(p.pick(a, 100, now=0))) == [0, 1, 3, 5, 6]
    p.check_invariants()


def test_a_peer_with_only_skipped_pieces_is_not_interesting() -> None:
    p = picker("0000000")
    levels(p, "2202022")
    assert not p.is_interesting(bits("0010100"))
    assert p.is_interesting(bits("0010110"))
    b = peer(p, "b", "0000000")
    assert not p.peer_have(b, 2)
    assert p.peer_have(b, 3)


def test_done_when_the_wanted_pieces_are_in_and_left_counts_only_them() -> None:
    p = picker("1111", blocks=1, last_piece_length=5)  # pieces of 16 bytes, the last of 5
    levels(p, "2002")
    assert p.left_bytes() == 16 + 5
    assert p.wanted_bytes() == 21
    a = peer(p, "a", "1111")
    p.pick(a, 10, now=0)
    finish(p, "a", 0)
    assert not p.done() and p.left_bytes() == 5
    assert not p.in_endgame() or p.left_bytes() > 0
    finish(p, "a", 3)
    assert p.done() and p.left_bytes() == 0
    assert not p.in_endgame()
    assert p.pick(a, 10, now=1) == []
    # Wanting everything again undoes "done".
    levels(p, "2222")
    assert not p.done() and p.left_bytes() == 32
    assert sorted(pieces_of(p.pick(a, 10, now=2))) == [1, 2]


def test_a_skipped_piece_that_still_passes_does_not_count_against_what_is_left() -> None:
    p = picker("1111", blocks=1)
    levels(p, "2022")
    left = p.left_bytes()
    p.piece_passed(1)
    p.check_invariants()
    assert p.left_bytes() == left and p.have[1]


def test_a_piece_under_way_when_skipped_can_still_finish() -> None:
    p = picker("1111", partial="1...")
    levels(p, "0222")
    a = peer(p, "a", "1111")
    picked = p.pick(a, 3, now=0)
    assert pieces_of(picked) == [0]  # partial pieces first, as before: its bytes are half here
    p.check_invariants()


def test_higher_priority_first_rarest_first_within_a_priority() -> None:
    p = picker("55111111", blocks=1)
    levels(p, "33222211")
    a = peer(p, "a", "11111111")
    order = pieces_of(p.pick(a, 8, now=0))
    assert sorted(order[:2]) == [0, 1]  # common, but high
    assert sorted(order[2:6]) == [2, 3, 4, 5]
    assert sorted(order[6:]) == [6, 7]  # low comes last


def test_priority_picks_fall_through_to_the_next_level_in_one_call() -> None:
    p = picker("1111", blocks=2)
    levels(p, "1300")
    a = peer(p, "a", "1111")
    assert pieces_of(p.pick(a, 4, now=0)) == [1, 0]


def test_rarest_first_within_a_level() -> None:
    p = picker("4179253", blocks=1)
    levels(p, "2222222")  # uniform: the plain path
    a = peer(p, "a", "1111111")
    assert pieces_of(p.pick(a, 7, now=0)) == [1, 4, 6, 0, 5, 2, 3]
    p = picker("41792531", blocks=1)
    levels(p, "22222221")
    a = peer(p, "a", "11111111")
    assert pieces_of(p.pick(a, 8, now=0)) == [1, 4, 6, 0, 5, 2, 3, 7]


def test_sequential_starts_pieces_in_order_inside_the_window() -> None:
    p = picker("9" * 12, blocks=1, random_first=4)  # random-first is off in sequential mode
    p.sequential = True
    p.sequential_window = 4
    a = peer(p, "a", "1" * 12)
    assert pieces_of(p.pick(a, 10, now=0)) == [0, 1, 2, 3]
    assert p.pick(a, 10, now=0) == []  # the window is all under way: nothing past it
    finish(p, "a", 1)
    assert p.pick(a, 10, now=1) == []  # piece 0 is still missing: the window has not moved
    finish(p, "a", 0)
    assert pieces_of(p.pick(a, 10, now=2)) == [4, 5]


def test_sequential_skips_unwanted_pieces_and_ignores_priorities() -> None:
    p = picker("1" * 8, blocks=1)
    levels(p, "00213022")
    p.sequential = True
    p.sequential_window = 3
    a = peer(p, "a", "1" * 8)
    assert pieces_of(p.pick(a, 10, now=0)) == [2, 3, 4]


def test_sequential_a_peer_with_nothing_in_the_window_starts_later_pieces_in_order() -> None:
    p = picker("1" * 12, blocks=1)
    p.sequential = True
    p.sequential_window = 4
    b = peer(p, "b", "000000001101")
    assert pieces_of(p.pick(b, 2, now=0)) == [8, 9]
    # A peer that has a window piece someone else is fetching waits for the window instead.
    a = peer(p, "a", "1" * 12)
    assert pieces_of(p.pick(a, 4, now=0)) == [0, 1, 2, 3]
    c = peer(p, "c", "100000001111")
    assert pieces_of(p.pick(c, 4, now=0)) == []


def test_sequential_off_again_is_rarest_first() -> None:
    p = picker("9999991", blocks=1)
    p.sequential = True
    p.sequential = False
    a = peer(p, "a", "1111111")
    assert pieces_of(p.pick(a, 1, now=0)) == [6]
