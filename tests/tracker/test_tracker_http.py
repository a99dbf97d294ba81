from typing import Any
from urllib.parse import parse_qs, unquote_to_bytes, urlsplit

import bencodepy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrentpy.errors import TorrentError
from torrentpy.protocol.tracker_http import (
    MAX_PEERS,
    MAX_RESPONSE_BYTES,
    AnnounceRequest,
    BadTrackerResponse,
    TrackerError,
    TrackerFailure,
    build_announce_url,
    build_scrape_url,
    decode_compact_peers,
    encode_compact_peers,
    parse_announce_response,
    parse_scrape_response,
    scrape_url_for,
)

INFO_HASH = bytes(range(0, 256, 13))[:20].ljust(20, b"\xff")
PEER_ID = b"-TP0001-" + b"\x00 &%=+?#\xfe\x7fz/"


def req(**kw: Any) -> AnnounceRequest:
    base: dict[str, Any] = dict(info_hash=INFO_HASH, peer_id=PEER_ID, port=6881, uploaded=1, downloaded=2,
                                left=3, event="started", numwant=30, key=0xDEADBEEF)
    base.update(kw)
    return AnnounceRequest(**base)


def raw_params(url: str) -> dict[str, bytes]:
    return {k: unquote_to_bytes(v) for k, _, v in (p.partition("=") for p in urlsplit(url).query.split("&"))}


def test_announce_url_encodes_binary_exactly():
    url = build_announce_url("http://127.0.0.1:6969/announce", req())
    params = raw_params(url)
    assert params["info_hash"] == INFO_HASH
    assert params["peer_id"] == PEER_ID
    assert params["port"] == b"6881" and params["left"] == b"3" and params["event"] == b"started"
    assert params["compact"] == b"1" and params["numwant"] == b"30" and params["key"] == b"DEADBEEF"
    # Only unreserved characters may appear unescaped, or a server would decode them differently.
    query = urlsplit(url).query
    for part in query.split("&"):
        value = part.partition("=")[2]
        assert all(c.isalnum() or c in "-._~%" for c in value), part


def test_announce_url_keeps_existing_query_and_adds_trackerid():
    url = build_announce_url("http://t.example:80/ann?passkey=abc#frag", req(event=""), tracker_id=b"x y")
    assert url.startswith("http://t.example:80/ann?passkey=abc&info_hash=")
    assert "#" not in url
    params = raw_params(url)
    assert params["trackerid"] == b"x y"
    assert "event" not in params


def test_announce_url_non_compact():
    qs = parse_qs(urlsplit(build_announce_url("http://h/a", req(compact=False))).query)
    assert qs["compact"] == ["0"] and "no_peer_id" not in qs


def test_request_validation():
    with pytest.raises(ValueError):
        req(info_hash=b"short")
    with pytest.raises(ValueError):
        req(event="paused")
    with pytest.raises(TrackerError):
        build_announce_url("udp://h:1/announce", req())


def test_scrape_url_convention():
    assert scrape_url_for("http://h:1/announce") == "http://h:1/scrape"
    assert scrape_url_for("http://h:1/x/announce.php?pk=1") == "http://h:1/x/scrape.php?pk=1"
    assert scrape_url_for("http://h:1/a") is None
    url = build_scrape_url("http://h:1/scrape", [b"\x01" * 20, b"\x02" * 20])
    assert url.count("info_hash=") == 2


def enc(d) -> bytes:
    return bencodepy.encode(d)


def test_compact_ipv4_and_ipv6_peers():
    v4, v6 = encode_compact_peers([("127.0.0.1", 6881), ("10.0.0.2", 51413), ("::1", 7000)])
    assert len(v4) == 12 and len(v6) == 18
    body = enc({b"interval": 1800, b"min interval": 900, b"complete": 2, b"incomplete": 5,
                b"peers": v4, b"peers6": v6, b"tracker id": b"tid", b"warning message": b"be\x1b[31mware"})
    r = parse_announce_response(body)
    assert r.interval_s == 1800 and r.min_interval_s == 900
    assert r.peers == [("127.0.0.1", 6881), ("10.0.0.2", 51413), ("::1", 7000)]
    assert (r.complete, r.incomplete) == (2, 5)
    assert r.tracker_id == b"tid"
    assert r.warning is not None and "\x1b" not in r.warning and r.warning.startswith("be")


def test_dictionary_peers_and_port_zero_dropped():
    body = enc({b"interval": 60, b"peers": [
        {b"ip": b"127.0.0.2", b"port": 1, b"peer id": b"a" * 20},
        {b"ip": b"127.0.0.3", b"port": 0},
        {b"ip": b"::ffff:127.0.0.4", b"port": 5},
        {b"ip": b"tracker.example", b"port": 5},
        {b"ip": b"[::1]", b"port": 9},
    ]})
    r = parse_announce_response(body)
    assert r.peers == [("127.0.0.2", 1), ("127.0.0.4", 5), ("::1", 9)]
    assert r.complete is None and r.incomplete is None and r.warning is None and r.min_interval_s is None


def test_compact_port_zero_dropped_and_duplicates_merged():
    blob = bytes([127, 0, 0, 1, 0, 0, 127, 0, 0, 1, 0, 80, 127, 0, 0, 1, 0, 80])
    assert parse_announce_response(enc({b"interval": 1, b"peers": blob})).peers == [("127.0.0.1", 80)]


def test_failure_reason_surfaces_clean_text():
    with pytest.raises(TrackerFailure) as info:
        parse_announce_response(b"d14:failure reason23:torrent\nnot\x07 registerede")
    assert info.value.reason == "torrent not  registered"
    assert isinstance(info.value, TorrentError)
    long_reason = enc({b"failure reason": b"x" * 10_000})
    with pytest.raises(TrackerFailure) as info:
        parse_announce_response(long_reason)
    assert len(str(info.value)) <= 300


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"", "empty"),
        (b"<html>502 Bad Gateway</html>", "not valid bencoding"),
        (b"i42e", "not a dictionary"),
        (b"d8:intervali10e5:peers5:abcdee", "not a multiple of 6"),
        (b"d8:intervali10e6:peers617:aaaaaaaaaaaaaaaaae", "not a multiple of 18"),
        (b"d8:intervali10e5:peersi3ee", "neither a string nor a list"),
        (b"d8:interval2:10e", "not an integer"),
        (b"d5:peers0:e", "no 'interval'"),
        (b"d8:intervali10e5:peersli1eee", "not a dictionary"),
        (b"d8:intervali10e5:peersld2:ipi1e4:porti1eeee", "valid 'ip'"),
        (b"d8:intervali10e6:peers6i1ee", "'peers6' is not a string"),
        (b"l" * 100_000, "not valid bencoding"),
        (b"d8:intervali10e5:peers0:", "not valid bencoding"),
    ],
)
def test_hostile_responses_raise_bad_response(body, needle):
    with pytest.raises(BadTrackerResponse) as info:
        parse_announce_response(body)
    assert needle in str(info.value)


def test_oversized_response_rejected():
    body = enc({b"interval": 10, b"peers": b"\x7f\x00\x00\x01\x00\x01" * (MAX_RESPONSE_BYTES // 6 + 1)})
    with pytest.raises(BadTrackerResponse, match="larger than"):
        parse_announce_response(body)


def test_peer_count_is_bounded():
    blob = b"".join(bytes([10, i >> 8 & 255, i & 255, 1, 0, 1]) for i in range(MAX_PEERS + 500))
    assert len(parse_announce_response(enc({b"interval": 10, b"peers": blob})).peers) == MAX_PEERS


def test_huge_interval_clamped_and_negative_counts_floor():
    r = parse_announce_response(enc({b"interval": 10**30, b"complete": -5, b"peers": b""}))
    assert r.interval_s == 7 * 24 * 3600 and r.complete == 0


def test_decode_compact_peers_roundtrip():
    peers = [("1.2.3.4", 1), ("255.255.255.255", 65535)]
    v4, v6 = encode_compact_peers([*peers, ("not an ip", 3)])
    assert v6 == b"" and decode_compact_peers(v4, ipv6=False) == peers


def test_scrape_parse():
    h = b"\x01" * 20
    out = parse_scrape_response(enc({b"files": {h: {b"complete": 3, b"downloaded": 7, b"incomplete": 1}}}))
    assert out[h].complete == 3 and out[h].downloaded == 7 and out[h].incomplete == 1
    with pytest.raises(BadTrackerResponse):
        parse_scrape_response(enc({b"files": {b"short": {}}}))
    with pytest.raises(BadTrackerResponse):
        parse_scrape_response(enc({b"files": 3}))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_never_crash(data):
    try:
        parse_announce_response(data)
    except TrackerError:
        pass


bvalues = st.recursive(
    st.integers(-(2**70), 2**70) | st.binary(max_size=40),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from([b"interval", b"peers", b"peers6", b"ip", b"port", b"min interval",
                                       b"complete", b"failure reason", b"warning message", b"tracker id"]),
                      children, max_size=5),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from([b"interval", b"peers", b"peers6", b"min interval", b"complete",
                                        b"incomplete", b"failure reason", b"warning message",
                                        b"tracker id"]), bvalues, max_size=8))
def test_fuzz_structured_responses_never_crash(d):
    try:
        r = parse_announce_response(enc(d))
    except TrackerError:
        return
    assert all(0 < port <= 65535 for _, port in r.peers)
