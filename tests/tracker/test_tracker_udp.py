import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrentpy.protocol import tracker_udp as udp
from torrentpy.protocol.tracker_http import (
    AnnounceRequest,
    AnnounceResponse,
    BadTrackerResponse,
    ScrapeStats,
    TrackerError,
    TrackerFailure,
    encode_compact_peers,
)

REQ = AnnounceRequest(info_hash=b"\xaa" * 20, peer_id=b"-TP0001-123456789012", port=6881, uploaded=10,
                      downloaded=20, left=30, event="started", numwant=25, key=0x01020304)


def connect(client: udp.UdpTrackerClient, now: float = 0.0, conn_id: int = 0x1122334455667788) -> None:
    dgram = client.next_datagram(now)
    proto, action, tid = struct.unpack(">qii", dgram)
    assert (proto, action, len(dgram)) == (udp.PROTOCOL_ID, 0, 16)
    answer = udp.encode_connect_response(tid, conn_id)
    assert client.receive_datagram(answer, now) is udp.UdpTrackerClient.CONNECTED


def test_retry_timeout_schedule():
    assert [udp.retry_timeout_s(n) for n in (0, 1, 2, 8)] == [15, 30, 60, 3840]
    assert udp.retry_timeout_s(3, scale=0.01) == pytest.approx(1.2)
    with pytest.raises(ValueError):
        udp.retry_timeout_s(9)


def test_connect_then_announce_roundtrip_through_server_codec():
    client = udp.UdpTrackerClient()
    client.begin_announce(REQ)
    connect(client)
    dgram = client.next_datagram(1.0)
    assert len(dgram) == 98
    parsed = udp.parse_request(dgram)
    assert isinstance(parsed, udp.UdpAnnounceRequest)
    assert parsed.connection_id == 0x1122334455667788
    assert (parsed.info_hash, parsed.peer_id, parsed.port) == (REQ.info_hash, REQ.peer_id, 6881)
    assert (parsed.uploaded, parsed.downloaded, parsed.left) == (10, 20, 30)
    assert (parsed.event, parsed.numwant, parsed.key) == ("started", 25, 0x01020304)
    v4, _ = encode_compact_peers([("127.0.0.1", 7000), ("127.0.0.2", 0)])
    answer = udp.encode_announce_response(parsed.transaction_id, 1800, 3, 4, v4)  # leechers 3, seeders 4
    resp = client.receive_datagram(answer, 1.0)
    assert isinstance(resp, AnnounceResponse)
    assert resp.peers == [("127.0.0.1", 7000)]
    assert (resp.interval_s, resp.complete, resp.incomplete) == (1800, 4, 3)


def test_ipv6_announce_response_uses_18_byte_records():
    client = udp.UdpTrackerClient(ipv6=True)
    client.begin_announce(REQ)
    connect(client)
    tid = struct.unpack_from(">qii", client.next_datagram(0))[2]
    _, v6 = encode_compact_peers([("::1", 9000), ("2001:db8::5", 1)])
    resp = client.receive_datagram(udp.encode_announce_response(tid, 60, 0, 0, v6 + b"\x00"), 0)
    assert isinstance(resp, AnnounceResponse)
    assert resp.peers == [("::1", 9000), ("2001:db8::5", 1)]


def test_connection_id_expires_after_60_seconds():
    client = udp.UdpTrackerClient()
    client.begin_announce(REQ)
    connect(client, now=100.0)
    assert client.is_connected(159.9)
    assert struct.unpack_from(">qi", client.next_datagram(159.9))[1] == 1  # announce
    assert not client.is_connected(160.0)
    assert struct.unpack_from(">qi", client.next_datagram(160.0)) == (udp.PROTOCOL_ID, 0)  # connect again


def test_transaction_id_mismatch_is_ignored():
    client = udp.UdpTrackerClient()
    client.begin_announce(REQ)
    tid = struct.unpack(">qii", client.next_datagram(0))[2]
    assert client.receive_datagram(udp.encode_connect_response(tid ^ 1, 5), 0) is None
    assert client.receive_datagram(b"\x00\x00", 0) is None
    assert client.connection_id is None
    assert client.receive_datagram(udp.encode_connect_response(tid, 5), 0) is udp.UdpTrackerClient.CONNECTED


def test_error_action_raises_failure_with_text():
    client = udp.UdpTrackerClient()
    client.begin_announce(REQ)
    tid = struct.unpack(">qii", client.next_datagram(0))[2]
    with pytest.raises(TrackerFailure, match="not authorized"):
        client.receive_datagram(udp.encode_error(tid, "torrent not authorized\r\n\x00"), 0)


def test_wrong_action_and_truncated_answers():
    client = udp.UdpTrackerClient()
    client.begin_announce(REQ)
    tid = struct.unpack(">qii", client.next_datagram(0))[2]
    with pytest.raises(BadTrackerResponse):
        client.receive_datagram(struct.pack(">ii", 1, tid) + bytes(12), 0)  # announce answer to a connect
    client.begin_announce(REQ)
    tid = struct.unpack(">qii", client.next_datagram(0))[2]
    with pytest.raises(BadTrackerResponse):
        client.receive_datagram(struct.pack(">ii", 0, tid) + b"\x01", 0)
    client.begin_announce(REQ)
    connect(client)
    tid = struct.unpack_from(">qii", client.next_datagram(0))[2]
    with pytest.raises(BadTrackerResponse):
        client.receive_datagram(struct.pack(">iii", 1, tid, 60), 0)


def test_scrape_roundtrip():
    client = udp.UdpTrackerClient()
    hashes = [b"\x01" * 20, b"\x02" * 20]
    client.begin_scrape(hashes)
    connect(client)
    parsed = udp.parse_request(client.next_datagram(0))
    assert isinstance(parsed, udp.UdpScrapeRequest) and parsed.info_hashes == hashes
    answer = udp.encode_scrape_response(parsed.transaction_id, [ScrapeStats(1, 2, 3), ScrapeStats(4, 5, 6)])
    expected = {hashes[0]: ScrapeStats(1, 2, 3), hashes[1]: ScrapeStats(4, 5, 6)}
    assert client.receive_datagram(answer, 0) == expected
    with pytest.raises(ValueError):
        client.begin_scrape([b"\x00" * 20] * 75)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 15,
        struct.pack(">qii", 1234, 0, 7),  # connect with a wrong protocol id
        struct.pack(">qii", 5, 1, 7) + b"\x00" * 20,  # truncated announce
        struct.pack(">qii", 5, 1, 7) + b"\x00" * 64 + struct.pack(">i", 9) + bytes(14),  # bad event
        struct.pack(">qii", 5, 2, 7) + b"\x00" * 21,  # scrape not a multiple of 20
        struct.pack(">qii", 5, 9, 7),  # unknown action
    ],
)
def test_server_side_parser_rejects_garbage(data):
    with pytest.raises(udp.BadUdpRequest):
        udp.parse_request(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_client_never_crashes(data):
    client = udp.UdpTrackerClient()
    client.begin_announce(REQ)
    tid = struct.unpack(">qii", client.next_datagram(0))[2]
    for payload in (data, struct.pack(">i", 0) + struct.pack(">i", tid) + data,
                    struct.pack(">ii", 3, tid) + data):
        try:
            client.receive_datagram(payload, 0)
        except TrackerError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_server_parser_never_crashes(data):
    try:
        udp.parse_request(data)
    except udp.BadUdpRequest:
        pass
