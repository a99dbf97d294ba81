import random

import pytest

from torrentpy.tracker.registry import MAX_NUMWANT, RegistryFull, SwarmRegistry

H = b"\x42" * 20


def pid(n: int) -> bytes:
    return f"-TP0001-{n:012d}".encode()


def reg(**kw) -> SwarmRegistry:
    return SwarmRegistry(interval_s=100, rng=random.Random(1), **kw)


def test_announcer_is_excluded_and_others_returned():
    r = reg()
    first = r.announce(H, "127.0.0.1", 1001, pid(1), 10, "started", 50, now=0)
    assert first.peers == [] and (first.complete, first.incomplete) == (0, 1)
    second = r.announce(H, "127.0.0.1", 1002, pid(2), 0, "started", 50, now=1)
    assert [(ip, port) for ip, port, _ in second.peers] == [("127.0.0.1", 1001)]
    assert second.peers[0][2] == pid(1)
    assert (second.complete, second.incomplete) == (1, 1)


def test_numwant_limits_and_random_choice():
    r = reg()
    for i in range(300):
        r.announce(H, "127.0.0.1", 2000 + i, pid(i), 5, "started", 0, now=0)
    got = r.announce(H, "127.0.0.1", 2000, pid(0), 5, "", 10, now=1)
    assert len(got.peers) == 10 and ("127.0.0.1", 2000) not in [(ip, p) for ip, p, _ in got.peers]
    assert len(r.announce(H, "127.0.0.1", 2000, pid(0), 5, "", 10_000, now=1).peers) == MAX_NUMWANT
    assert len(r.announce(H, "127.0.0.1", 2000, pid(0), 5, "", -1, now=1).peers) == 50
    a = {p for p in r.announce(H, "127.0.0.1", 2000, pid(0), 5, "", 20, now=1).peers}
    b = {p for p in r.announce(H, "127.0.0.1", 2000, pid(0), 5, "", 20, now=1).peers}
    assert a != b


def test_stopped_removes_peer_and_empty_swarm():
    r = reg()
    r.announce(H, "127.0.0.1", 1, pid(1), 10, "started", 50, now=0)
    r.announce(H, "127.0.0.1", 2, pid(2), 10, "started", 50, now=0)
    stopped = r.announce(H, "127.0.0.1", 1, pid(1), 10, "stopped", 50, now=1)
    assert stopped.peers == []
    assert list(r.peers(H)) == [("127.0.0.1", 2)]
    r.announce(H, "127.0.0.1", 2, pid(2), 10, "stopped", 50, now=1)
    assert r.info_hashes() == []
    assert r.announce(b"\x01" * 20, "127.0.0.1", 2, pid(2), 10, "stopped", 50, now=1).peers == []
    assert r.info_hashes() == []


def test_expiry_after_two_intervals():
    r = reg()
    r.announce(H, "127.0.0.1", 1, pid(1), 10, "started", 50, now=0)
    r.announce(H, "127.0.0.1", 2, pid(2), 10, "started", 50, now=150)
    assert r.expire(now=199) == 0
    assert r.expire(now=201) == 1
    assert list(r.peers(H)) == [("127.0.0.1", 2)]
    assert r.expire(now=400) == 1 and r.info_hashes() == []


def test_completed_counts_downloads_and_seeders():
    r = reg()
    r.announce(H, "127.0.0.1", 1, pid(1), 10, "started", 50, now=0)
    r.announce(H, "127.0.0.1", 1, pid(1), 0, "completed", 50, now=1)
    r.announce(H, "127.0.0.1", 1, pid(1), 0, "", 50, now=2)
    s = r.scrape(H, now=3)
    assert (s.complete, s.downloaded, s.incomplete) == (1, 1, 0)
    assert r.scrape(b"\x00" * 20, now=3).complete == 0


def test_limits():
    r = reg(max_swarms=2, max_peers_per_swarm=2)
    r.announce(b"\x01" * 20, "127.0.0.1", 1, pid(1), 1, "started", 5, now=0)
    r.announce(b"\x02" * 20, "127.0.0.1", 1, pid(1), 1, "started", 5, now=0)
    with pytest.raises(RegistryFull):
        r.announce(b"\x03" * 20, "127.0.0.1", 1, pid(1), 1, "started", 5, now=0)
    r.announce(b"\x01" * 20, "127.0.0.1", 2, pid(2), 1, "started", 5, now=0)
    with pytest.raises(RegistryFull):
        r.announce(b"\x01" * 20, "127.0.0.1", 3, pid(3), 1, "started", 5, now=0)
    # Room comes back once old swarms expire.
    r.announce(b"\x03" * 20, "127.0.0.1", 1, pid(1), 1, "started", 5, now=1000)
