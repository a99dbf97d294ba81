"""Two PeerConnections talking over a fake link: the happy paths and our own misuse."""

import hashlib

import pytest

from torrentpy._core import Bitfield
from torrentpy.protocol import (
    AllowedFast,
    BitfieldReceived,
    Cancel,
    Choke,
    ExtendedHandshake,
    HandshakeComplete,
    HandshakeInfoHash,
    Have,
    Interested,
    KeepAlive,
    LocalProtocolError,
    MetadataData,
    MetadataReject,
    MetadataRequest,
    NotInterested,
    PexPeers,
    Piece,
    Port,
    ProtocolError,
    Reject,
    Request,
    Suggest,
    Unchoke,
    UnknownExtended,
    extension,
    wire,
)

from .link import INFO_HASH, NUM_PIECES, PIECE_LENGTH, TOTAL_LENGTH, Link, connection, drain, handshaken


def test_handshake_both_ways() -> None:
    a, b = connection(), connection(initiator=False)
    link = Link(a, b)
    assert link.to_b(a.initiate()) == [HandshakeComplete(a.our_peer_id, a.our_reserved)]
    assert link.to_a(b.initiate()) == [HandshakeComplete(b.our_peer_id, b.our_reserved)]
    for conn, other in ((a, b), (b, a)):
        assert conn.peer_id == other.our_peer_id
        assert conn.peer_reserved == other.our_reserved
        assert conn.supports_fast and conn.supports_extensions
        assert (conn.am_choking, conn.am_interested, conn.peer_choking, conn.peer_interested) == (
            True,
            False,
            True,
            False,
        )


def test_incoming_connection_learns_the_info_hash_first() -> None:
    a = connection()
    b = connection(info_hash=None, num_pieces=0, piece_length=0, total_length=0, initiator=False)
    b.receive_data(a.initiate() + wire.interested())
    assert b.next_event() == HandshakeInfoHash(INFO_HASH)
    assert b.next_event() is None  # paused until the listener decides
    with pytest.raises(LocalProtocolError):
        b.initiate()
    b.accept_info_hash(INFO_HASH, NUM_PIECES, PIECE_LENGTH, TOTAL_LENGTH)
    assert drain(b) == [HandshakeComplete(a.our_peer_id, a.our_reserved), Interested()]
    a.receive_data(b.initiate())
    assert drain(a) == [HandshakeComplete(b.our_peer_id, b.our_reserved)]


def test_bitfield_have_and_interest() -> None:
    link = handshaken()
    ours = Bitfield.from_string("1100000001")
    msg = link.b.send_bitfield(ours)
    assert msg == wire.bitfield(ours)
    (event,) = link.to_a(msg)
    assert isinstance(event, BitfieldReceived) and event.bitfield.to_bytes() == ours.to_bytes()
    assert link.to_a(link.b.send_have(5)) == [Have(5)]
    assert link.a.peer_bitfield is not None and link.a.peer_bitfield.missing() == [2, 3, 4, 6, 7, 8]
    # the event's bitfield is a snapshot: later HAVEs do not change it
    assert event.bitfield.missing() == [2, 3, 4, 5, 6, 7, 8]

    assert link.to_b(link.a.send_interested()) == [Interested()]
    assert link.a.am_interested and link.b.peer_interested
    assert link.to_a(link.b.send_unchoke()) == [Unchoke()]
    assert not link.b.am_choking and not link.a.peer_choking
    assert link.to_a(link.b.send_choke()) == [Choke()]
    assert link.a.peer_choking
    assert link.to_b(link.a.send_not_interested()) == [NotInterested()]
    assert not link.b.peer_interested


def test_haves_in_one_buffer() -> None:
    link = handshaken()
    link.to_a(link.b.send_bitfield(Bitfield(NUM_PIECES)))
    assert link.b.send_haves([]) == b""
    assert link.to_a(link.b.send_haves([3, 0, NUM_PIECES - 1])) == [Have(3), Have(0), Have(NUM_PIECES - 1)]
    for bad in ([1, NUM_PIECES], [-1, 2]):
        with pytest.raises(LocalProtocolError):
            link.b.send_haves(bad)


def test_request_piece_round_trip_including_the_short_last_piece() -> None:
    link = handshaken()
    link.to_a(link.b.send_bitfield(Bitfield.full(NUM_PIECES)))
    data = {i: hashlib.sha256(bytes([i])).digest() * (PIECE_LENGTH // 32) for i in range(NUM_PIECES)}
    data[NUM_PIECES - 1] = data[NUM_PIECES - 1][: TOTAL_LENGTH - (NUM_PIECES - 1) * PIECE_LENGTH]
    for index in (0, NUM_PIECES - 1):
        received = bytearray()
        size = len(data[index])
        for begin in range(0, size, 16384):
            length = min(16384, size - begin)
            assert link.to_b(link.a.send_request(index, begin, length)) == [Request(index, begin, length)]
            block = memoryview(data[index])[begin : begin + length]
            events = link.to_a(link.b.send_piece_header(index, begin, length) + bytes(block))
            assert events == [Piece(index, begin, bytes(block))]
            assert isinstance(events[0], Piece)
            received += events[0].data
        assert received == data[index]
    assert link.to_b(link.a.send_cancel(1, 0, 16384)) == [Cancel(1, 0, 16384)]


def test_fast_extension_have_all_reject_suggest_allowed_fast() -> None:
    link = handshaken()
    msg = link.b.send_bitfield(Bitfield.full(NUM_PIECES))
    assert msg == wire.have_all()
    (event,) = link.to_a(msg)
    assert isinstance(event, BitfieldReceived) and event.bitfield.all()
    assert link.to_a(link.b.send_allowed_fast(3)) == [AllowedFast(3)]
    assert link.to_a(link.b.send_suggest(4)) == [Suggest(4)]
    link.to_b(link.a.send_request(0, 0, 16384))
    assert link.to_a(link.b.send_reject(0, 0, 16384)) == [Reject(0, 0, 16384)]


def test_fast_extension_have_none() -> None:
    link = handshaken()
    assert link.a.send_bitfield(Bitfield(NUM_PIECES)) == wire.have_none()
    link2 = handshaken()
    (event,) = link2.to_b(link2.a.send_bitfield(Bitfield(NUM_PIECES)))
    assert isinstance(event, BitfieldReceived) and not event.bitfield.any()


def test_without_fast_extension_bitfield_is_sent_literally() -> None:
    a = connection()
    a.receive_data(b"\x13BitTorrent protocol" + bytes(8) + INFO_HASH + b"-XX0001-abcdefghijkl")
    assert isinstance(a.next_event(), HandshakeComplete)
    a.initiate()
    assert not a.supports_fast and not a.supports_extensions
    assert a.send_bitfield(Bitfield.full(NUM_PIECES)) == wire.bitfield(Bitfield.full(NUM_PIECES))
    with pytest.raises(LocalProtocolError, match="fast extension"):
        a.send_reject(0, 0, 16384)
    with pytest.raises(LocalProtocolError, match="extension protocol"):
        a.send_extended_handshake()


def test_extended_handshake_then_ut_metadata_exchange() -> None:
    info = b"d6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:" + bytes(20) + b"e"
    info = info + b"x" * (40000 - len(info))  # three metadata pieces: 16 KiB, 16 KiB, the rest
    seeder_ext = {"ut_metadata": 3, "ut_pex": 1}
    link = handshaken(metadata_size=len(info), extensions=seeder_ext)
    (hs,) = link.to_a(link.b.send_extended_handshake({"v": "torrentpy test", "p": 51413, "reqq": 250}))
    assert isinstance(hs, ExtendedHandshake)
    assert hs.data[b"m"] == {b"ut_metadata": 3, b"ut_pex": 1} and hs.data[b"metadata_size"] == len(info)
    assert link.a.peer_extensions == seeder_ext
    assert link.a.peer_metadata_size == len(info)
    assert (link.a.peer_listen_port, link.a.peer_client, link.a.peer_request_queue) == (
        51413,
        "torrentpy test",
        250,
    )
    (hs_b,) = link.to_b(link.a.send_extended_handshake())
    assert isinstance(hs_b, ExtendedHandshake) and link.b.peer_extensions == {"ut_metadata": 1, "ut_pex": 2}

    pieces = []
    for piece in range(extension.metadata_piece_count(len(info))):
        request = link.a.send_metadata_request(piece)
        assert request[5] == 3  # sent with the id the seeder advertised
        assert link.to_b(request) == [MetadataRequest(piece)]
        chunk = info[piece * 16384 : (piece + 1) * 16384]
        reply = link.b.send_metadata_data(piece, len(info), chunk)
        assert reply[5] == 1  # and answered with ours
        assert link.to_a(reply) == [MetadataData(piece, len(info), chunk)]
        pieces.append(chunk)
    assert b"".join(pieces) == info
    assert link.to_a(link.b.send_metadata_reject(0)) == [MetadataReject(0)]


def test_later_extended_handshake_updates_and_disables() -> None:
    link = handshaken(extensions={"ut_metadata": 3, "ut_pex": 1})
    link.to_a(link.b.send_extended_handshake())
    link.b.extensions = {"ut_pex": 0, "ut_metadata": 3}
    link.to_a(link.b.send_extended_handshake())
    assert link.a.peer_extensions == {"ut_metadata": 3}
    with pytest.raises(LocalProtocolError, match="ut_pex"):
        link.a.send_pex([], [])


def test_pex_round_trip() -> None:
    link = handshaken()
    link.to_a(link.b.send_extended_handshake())
    link.to_b(link.a.send_extended_handshake())
    added = [("127.0.0.1", 6881), ("::1", 51413)]
    dropped = [("127.0.0.2", 1)]
    assert link.to_b(link.a.send_pex(added, dropped)) == [PexPeers(added=added, dropped=dropped)]


def test_unadvertised_extended_message_is_reported_not_fatal() -> None:
    link = handshaken()
    assert link.to_a(wire.extended(77, b"hello")) == [UnknownExtended(77, b"hello")]
    assert link.a.closed_reason is None


def test_keepalive_port_and_unknown_ids_before_the_bitfield() -> None:
    link = handshaken()
    stream = (
        link.b.send_keepalive()
        + link.b.send_port(6881)
        + b"\0\0\0\x03\x15ab"  # id 21 (BEP 52 hash request): skipped
        + link.b.send_extended_handshake()
        + link.b.send_bitfield(Bitfield.from_string("1000000000"))
    )
    events = link.to_a(stream)
    assert events[:2] == [KeepAlive(), Port(6881)]
    assert isinstance(events[2], ExtendedHandshake)
    assert isinstance(events[3], BitfieldReceived)
    assert link.a.closed_reason is None


def test_have_without_bitfield_creates_one() -> None:
    link = handshaken()
    assert link.to_a(link.b.send_have(2)) == [Have(2)]
    assert link.a.peer_bitfield is not None and list(link.a.peer_bitfield) == [2]


def test_magnet_connection_defers_announcements_until_size_known() -> None:
    a = connection(num_pieces=0, piece_length=0, total_length=0)
    b = connection(initiator=False)
    a.receive_data(b.initiate())
    assert isinstance(a.next_event(), HandshakeComplete)
    a.receive_data(b.send_bitfield(Bitfield.from_string("1010000000")) + wire.have(9) + wire.interested())
    assert drain(a) == [Interested()]
    assert a.peer_bitfield is None
    a.set_torrent_size(NUM_PIECES, PIECE_LENGTH, TOTAL_LENGTH)
    (event,) = drain(a)
    assert isinstance(event, BitfieldReceived) and list(event.bitfield) == [0, 2, 9]
    assert a.peer_bitfield is not None and list(a.peer_bitfield) == [0, 2, 9]
    a.receive_data(wire.have(1))
    assert drain(a) == [Have(1)]
    with pytest.raises(LocalProtocolError):
        a.set_torrent_size(NUM_PIECES, PIECE_LENGTH, TOTAL_LENGTH)


def test_magnet_connection_with_have_all_before_size() -> None:
    a = connection(num_pieces=0, piece_length=0, total_length=0)
    a.receive_data(connection(initiator=False).initiate() + wire.have_all())
    assert [type(e) for e in drain(a)] == [HandshakeComplete]
    a.set_torrent_size(3, 16384, 40000)
    (event,) = drain(a)
    assert isinstance(event, BitfieldReceived) and event.bitfield.all() and len(event.bitfield) == 3


@pytest.mark.parametrize(
    ("announce", "reason"),
    [
        (wire.bitfield(b"\xff\xc0"), "bad bitfield"),  # right for 10 pieces, wrong for 3
        (wire.have(5), "past the last"),
    ],
)
def test_magnet_announcement_that_does_not_fit_is_one_protocol_error(announce: bytes, reason: str) -> None:
    a = connection(num_pieces=0, piece_length=0, total_length=0)
    a.receive_data(connection(initiator=False).initiate() + announce)
    drain(a)
    a.set_torrent_size(3, 16384, 40000)
    events = drain(a)
    assert len(events) == 1 and isinstance(events[0], ProtocolError) and reason in events[0].reason
    assert a.closed_reason == events[0].reason


def test_send_before_handshake_is_a_local_error() -> None:
    a = connection()
    with pytest.raises(LocalProtocolError, match="before the handshake"):
        a.send_interested()
    a.initiate()
    with pytest.raises(LocalProtocolError, match="already sent"):
        a.initiate()


def test_bitfield_after_other_messages_is_a_local_error() -> None:
    link = handshaken()
    link.a.send_interested()
    with pytest.raises(LocalProtocolError, match="bitfield"):
        link.a.send_bitfield(Bitfield(NUM_PIECES))


@pytest.mark.parametrize(
    ("args", "reason"),
    [((NUM_PIECES, 0, 16384), "piece 10"), ((0, 0, 0), "0 bytes"), ((NUM_PIECES - 1, 4096, 4096), "beyond")],
)
def test_bad_outgoing_request_is_a_local_error(args: tuple[int, int, int], reason: str) -> None:
    link = handshaken()
    with pytest.raises(LocalProtocolError, match=reason):
        link.a.send_request(*args)


def test_metadata_request_to_peer_without_ut_metadata() -> None:
    link = handshaken()
    with pytest.raises(LocalProtocolError, match="ut_metadata"):
        link.a.send_metadata_request(0)


def test_inconsistent_torrent_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="inconsistent"):
        connection(num_pieces=3, piece_length=16384, total_length=16384)
