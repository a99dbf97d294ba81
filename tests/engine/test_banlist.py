"""Smart ban told as stories, one fact a line:

    piece 3 failed: A sent 0,1; B sent 2*      (blocks by number; * marks a corrupt copy)
    piece 3 passed                              (the good copy arrived, from anyone)

`story` returns the bans each line decided, as "B!: reason" (proven) or "B?: reason" (strikes only)."""

from __future__ import annotations

import pytest

from torrentpy.engine.banlist import BanList

BS = 4  # bytes per block: offsets are block numbers times four


def addr(name: str) -> tuple[str, int]:
    return (name, 6881)


def good(index: int, block: int) -> bytes:
    return bytes([index, block, 0, 0])


def bad(index: int, block: int) -> bytes:
    return bytes([index, block, 0xFF, 0xFF])


def story(text: str, bans: BanList | None = None, *, blocks: int = 4) -> list[str]:
    bl = bans if bans is not None else BanList(block_size=BS)
    out: list[str] = []
    for line in filter(None, (ln.strip() for ln in text.splitlines())):
        head, _, rest = line.partition(":")
        _, index_s, verb = head.split()
        index = int(index_s)
        if verb == "failed":
            data = bytearray(b"".join(good(index, b) for b in range(blocks)))
            sources: dict[int, tuple[str, int]] = {}
            for part in rest.split(";"):
                name, _, nums = part.split()
                for num in nums.split(","):
                    b = int(num.rstrip("*"))
                    if num.endswith("*"):
                        data[b * BS : (b + 1) * BS] = bad(index, b)
                    sources[b * BS] = addr(name)
            decided = bl.piece_failed(index, data, sources, set(sources.values()))
        else:
            assert verb == "passed"
            decided = bl.piece_passed(index, b"".join(good(index, b) for b in range(blocks)))
        out += [f"{b.addr[0]}{'!' if b.proven else '?'}: {b.reason}" for b in decided]
    return out


def test_one_contributor_is_banned_at_once() -> None:
    bl = BanList(block_size=BS)
    assert story("piece 3 failed: A sent 0,1,2,3*", bl) == ["A!: sent corrupt data for piece 3"]
    assert bl.strikes == {} and bl.suspects == {}  # nothing left to find out


def test_the_peer_whose_block_differs_is_banned_when_the_piece_passes() -> None:
    assert story("""
        piece 3 failed: A sent 0,1; B sent 2*,3
        piece 3 passed
    """) == ["B!: sent a corrupt block of piece 3"]


def test_honest_contributors_get_a_strike_and_nothing_more() -> None:
    bl = BanList(block_size=BS)
    assert story("""
        piece 1 failed: A sent 0*; B sent 1,2,3
        piece 1 passed
    """, bl) == ["A!: sent a corrupt block of piece 1"]
    assert bl.strikes == {addr("A"): 1, addr("B"): 1}
    assert 1 not in bl.suspects


def test_a_pass_without_a_failure_bans_nobody() -> None:
    assert story("piece 0 passed") == []
    assert story("""
        piece 2 failed: A sent 0; B sent 1*,2,3
        piece 5 passed
    """) == []  # another piece: piece 2's suspects wait for piece 2


def test_each_corrupt_block_is_reported() -> None:
    assert story("""
        piece 0 failed: A sent 0*,2*; B sent 1,3
        piece 0 passed
    """) == ["A!: sent a corrupt block of piece 0", "A!: sent a corrupt block of piece 0"]


def test_suspects_are_judged_once() -> None:
    assert story("""
        piece 4 failed: A sent 0*; B sent 1,2,3
        piece 4 passed
        piece 4 passed
    """) == ["A!: sent a corrupt block of piece 4"]


def test_strikes_ban_a_peer_in_too_many_failed_pieces() -> None:
    bans = story("""
        piece 0 failed: A sent 0*; B sent 1,2,3
        piece 1 failed: A sent 0*; C sent 1,2,3
        piece 2 failed: A sent 0*; B sent 1,2,3
    """)
    assert bans == ["A?: involved in 3 failed pieces"]  # B has two strikes, C one


@pytest.mark.parametrize("max_strikes", [1, 2, 5])
def test_strike_limit(max_strikes: int) -> None:
    bl = BanList(block_size=BS, max_strikes=max_strikes)
    fails = [story(f"piece {i} failed: A sent 0; B sent 1*", bl) for i in range(max_strikes)]
    assert fails[:-1] == [[]] * (max_strikes - 1)
    assert sorted(fails[-1]) == [f"{n}?: involved in {max_strikes} failed pieces" for n in "AB"]


def test_a_strike_ban_repeats_for_every_further_failure() -> None:
    bl = BanList(block_size=BS, max_strikes=1)
    story("piece 0 failed: A sent 0; B sent 1*", bl)
    assert sorted(story("piece 1 failed: A sent 0; B sent 1*", bl)) == [
        "A?: involved in 2 failed pieces", "B?: involved in 2 failed pieces"]


def test_short_last_block() -> None:
    bl = BanList(block_size=BS)
    sources = {0: addr("A"), 4: addr("B")}
    bl.piece_failed(7, b"\x01\x02\x03\x04\x05\x06", sources, {addr("A"), addr("B")})
    bans = bl.piece_passed(7, b"\x01\x02\x03\x04\x05\x07")
    assert [b.addr for b in bans] == [addr("B")]


def test_ban_covers_every_name_of_a_peer() -> None:
    bl = BanList()
    bl.ban(("10.0.0.1", 50000), b"-XX0001-abcdefghijkl", ("10.0.0.1", 6881))
    assert ("10.0.0.1", 50000) in bl and ("10.0.0.1", 6881) in bl
    assert bl.is_banned_identity(b"-XX0001-abcdefghijkl", None)  # same client, any address
    assert bl.is_banned_identity(None, ("10.0.0.1", 6881))  # dialled back in from a fresh port
    assert not bl.is_banned_identity(b"-XX0001-otherpeer000", ("10.0.0.1", 6882))
    assert not bl.is_banned_identity(None, None)


def test_ban_without_peer_id_or_listen_port() -> None:
    bl = BanList()
    bl.ban(("10.0.0.2", 6881))
    assert bl.banned == {("10.0.0.2", 6881)} and bl.banned_ids == set()


def test_add_tells_whether_the_address_is_new() -> None:
    bl = BanList()
    assert bl.add(("10.0.0.3", 1)) is True
    assert bl.add(("10.0.0.3", 1)) is False
    assert ("10.0.0.3", 1) in bl
