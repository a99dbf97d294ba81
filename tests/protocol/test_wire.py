"""The stateless codec: exact bytes for every message and the handshake."""

import re

import pytest

from torrentpy._core import Bitfield
from torrentpy.protocol import wire


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (wire.keepalive(), b"\0\0\0\0"),
        (wire.choke(), b"\0\0\0\x01\x00"),
        (wire.unchoke(), b"\0\0\0\x01\x01"),
        (wire.interested(), b"\0\0\0\x01\x02"),
        (wire.not_interested(), b"\0\0\0\x01\x03"),
        (wire.have(0x01020304), b"\0\0\0\x05\x04\x01\x02\x03\x04"),
        (wire.bitfield(Bitfield.from_string("1010000011")), b"\0\0\0\x03\x05\xa0\xc0"),
        (wire.request(1, 16384, 16384), b"\0\0\0\x0d\x06\0\0\0\x01\0\0\x40\0\0\0\x40\0"),
        (wire.piece(2, 0, b"abc"), b"\0\0\0\x0c\x07\0\0\0\x02\0\0\0\0abc"),
        (wire.cancel(1, 0, 5), b"\0\0\0\x0d\x08\0\0\0\x01\0\0\0\0\0\0\0\x05"),
        (wire.port(6881), b"\0\0\0\x03\x09\x1a\xe1"),
        (wire.suggest(7), b"\0\0\0\x05\x0d\0\0\0\x07"),
        (wire.have_all(), b"\0\0\0\x01\x0e"),
        (wire.have_none(), b"\0\0\0\x01\x0f"),
        (wire.reject(1, 2, 3), b"\0\0\0\x0d\x10\0\0\0\x01\0\0\0\x02\0\0\0\x03"),
        (wire.allowed_fast(9), b"\0\0\0\x05\x11\0\0\0\x09"),
        (wire.extended(3, b"d1:ai1ee"), b"\0\0\0\x0a\x14\x03d1:ai1ee"),
    ],
)
def test_encoders_produce_spec_bytes(encoded: bytes, expected: bytes) -> None:
    assert encoded == expected


def test_piece_header_is_the_prefix_of_a_piece_message() -> None:
    block = bytes(range(256)) * 64
    header = wire.piece_header(5, 16384, len(block))
    assert len(header) == wire.PIECE_HEADER_LENGTH
    assert header + block == wire.piece(5, 16384, memoryview(block))


def test_handshake_round_trip_and_our_reserved_bits() -> None:
    info_hash, peer_id = bytes(range(20)), wire.make_peer_id()
    raw = wire.encode_handshake(info_hash, peer_id)
    assert len(raw) == wire.HANDSHAKE_LENGTH == 68
    assert raw[:20] == b"\x13BitTorrent protocol"
    hs = wire.parse_handshake(raw)
    assert (hs.info_hash, hs.peer_id) == (info_hash, peer_id)
    # extension protocol (byte 5, 0x10) and fast extension (byte 7, 0x04); never DHT (byte 7, 0x01)
    assert hs.reserved == b"\0\0\0\0\0\x10\0\x04"
    assert wire.reserved_supports_extensions(hs.reserved)
    assert wire.reserved_supports_fast(hs.reserved)
    assert not wire.reserved_supports_dht(hs.reserved)


def test_libtorrent_style_handshake() -> None:
    """libtorrent 2.x (bt_peer_connection::write_handshake) sets DHT 0x01, fast 0x04 and the v2-upgrade
    bit 0x10 in byte 7 and the extension bit 0x10 in byte 5; its peer id is `-LT2010-` + 12 bytes."""
    reserved = bytearray(8)
    reserved[7] |= 0x01
    reserved[5] |= 0x10
    reserved[7] |= 0x04
    reserved[7] |= 0x10
    peer_id = b"-LT2010-" + bytes([0xFF, 0x00, 0x80] * 4)
    raw = bytes([19]) + b"BitTorrent protocol" + bytes(reserved) + b"\xaa" * 20 + peer_id
    hs = wire.parse_handshake(raw)
    assert hs.peer_id == peer_id and hs.info_hash == b"\xaa" * 20
    assert wire.reserved_supports_extensions(hs.reserved)
    assert wire.reserved_supports_fast(hs.reserved)
    assert wire.reserved_supports_dht(hs.reserved)


def test_plain_bep3_handshake_supports_nothing() -> None:
    hs = wire.parse_handshake(b"\x13BitTorrent protocol" + bytes(8) + b"h" * 20 + b"p" * 20)
    assert not wire.reserved_supports_extensions(hs.reserved)
    assert not wire.reserved_supports_fast(hs.reserved)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x13BitTorrent protocoX" + bytes(48), "protocol string"),
        (b"\x12BitTorrent protocol" + bytes(48), "length is 18"),
        (b"\x13BitTorrent protocol" + bytes(47), "67 bytes"),
    ],
)
def test_parse_handshake_rejects_garbage(raw: bytes, reason: str) -> None:
    with pytest.raises(wire.WireError, match=reason):
        wire.parse_handshake(raw)


def test_protocol_prefix_check_works_on_partial_input() -> None:
    assert wire.check_protocol_prefix(b"\x13Bit") is None
    assert wire.check_protocol_prefix(b"\x13Bot") is not None
    assert wire.check_protocol_prefix(b"GET / HTTP/1.1") is not None


def test_make_peer_id_is_azureus_style_and_random() -> None:
    ids = {wire.make_peer_id() for _ in range(50)}
    assert len(ids) == 50
    for peer_id in ids:
        assert re.fullmatch(rb"-TP0100-[A-Za-z0-9]{12}", peer_id)
