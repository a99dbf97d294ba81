"""Fuzz target for tracker responses: HTTP announce and scrape bodies (protocol/tracker_http.py) and UDP
answers to a client exchange (protocol/tracker_udp.py). Only TrackerFailure / BadTrackerResponse may be
raised; what is accepted is within the named limits (peer count, ports, intervals, one printable line).

Byte 0 picks the case: 0 HTTP announce, 1 HTTP scrape, 2 UDP announce over IPv4, 3 over IPv6,
4 UDP scrape. For UDP, bytes 1..2 give the length of the first datagram (the answer to our connect);
the rest is the second (the answer to the announce or scrape). The transaction id the client chose is
written into each datagram at bytes 4..8, as a real tracker echoes it.

    .venv/bin/python fuzz/run.py tracker [-max_total_time=60]
"""

from __future__ import annotations

import ipaddress

from torrentpy.protocol import tracker_udp as udp
from torrentpy.protocol.tracker_http import (
    MAX_FAILURE_REASON_CHARS,
    MAX_INTERVAL_S,
    MAX_PEERS,
    MAX_SCRAPE_ENTRIES,
    AnnounceRequest,
    AnnounceResponse,
    BadTrackerResponse,
    ScrapeStats,
    TrackerFailure,
    parse_announce_response,
    parse_scrape_response,
)

REQUEST = AnnounceRequest(info_hash=b"\x11" * 20, peer_id=b"-TP0001-fuzzfuzzfuzz", port=6881,
                          uploaded=0, downloaded=0, left=100)
SCRAPE_HASHES = [b"\x11" * 20, b"\x22" * 20]


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 5, data[1:]
    try:
        if mode == 0:
            _check_announce(parse_announce_response(body))
        elif mode == 1:
            stats = parse_scrape_response(body)
            assert len(stats) <= MAX_SCRAPE_ENTRIES
            for info_hash, s in stats.items():
                assert len(info_hash) == 20
                _check_stats(s)
        else:
            _udp(mode, body)
    except TrackerFailure as exc:
        _check_text(exc.reason)
    except BadTrackerResponse as exc:
        assert "\n" not in str(exc)


def _check_text(text: str) -> None:
    assert len(text) <= MAX_FAILURE_REASON_CHARS
    assert "\n" not in text and not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in text), repr(text)


def _check_stats(s: ScrapeStats) -> None:
    assert s.complete >= 0 and s.downloaded >= 0 and s.incomplete >= 0


def _check_announce(r: AnnounceResponse) -> None:
    assert 0 <= r.interval_s <= MAX_INTERVAL_S
    assert r.min_interval_s is None or 0 <= r.min_interval_s <= MAX_INTERVAL_S
    assert len(r.peers) <= MAX_PEERS and len(set(r.peers)) == len(r.peers)
    for host, port in r.peers:
        addr = ipaddress.ip_address(host)
        assert str(addr) == host and 0 < port <= 0xFFFF
    assert r.complete is None or r.complete >= 0
    assert r.incomplete is None or r.incomplete >= 0
    if r.warning is not None:
        _check_text(r.warning)
    assert r.tracker_id is None or 0 < len(r.tracker_id) <= 256


def _with_tid(datagram: bytes, client_datagram: bytes) -> bytes:
    if len(datagram) < 8:
        return datagram
    return datagram[:4] + client_datagram[12:16] + datagram[8:]


def _udp(mode: int, body: bytes) -> None:
    client = udp.UdpTrackerClient(ipv6=mode == 3)
    if mode == 4:
        client.begin_scrape(SCRAPE_HASHES)
    else:
        client.begin_announce(REQUEST)
    first_len = int.from_bytes(body[:2], "big")
    first, second = body[2 : 2 + first_len], body[2 + first_len :]
    sent = client.next_datagram(now=0.0)
    answer = client.receive_datagram(_with_tid(first, sent), now=0.0)
    if answer is not udp.UdpTrackerClient.CONNECTED:
        # Only a valid connect answer gets us further; anything else is ignored (None) or raised.
        assert answer is None
        return
    assert client.is_connected(1.0)
    sent = client.next_datagram(now=1.0)
    answer = client.receive_datagram(_with_tid(second, sent), now=1.0)
    if answer is None:
        return
    if mode == 4:
        assert isinstance(answer, dict) and list(answer) == SCRAPE_HASHES
        for s in answer.values():
            _check_stats(s)
    else:
        assert isinstance(answer, AnnounceResponse)
        _check_announce(answer)
        for host, _ in answer.peers:
            assert ipaddress.ip_address(host).version == (6 if mode == 3 else 4)
