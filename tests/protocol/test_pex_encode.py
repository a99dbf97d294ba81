"""BEP 11 messages as we send them: flags, IPv6 keys, and what a receiver makes of them."""

from __future__ import annotations

from tests.protocol.link import handshaken
from torrentpy import bencoding
from torrentpy.protocol.events import PexPeers
from torrentpy.protocol.extension import (
    PEX_CONNECTABLE,
    PEX_HOLEPUNCH,
    PEX_SEED,
    encode_pex,
    parse_pex,
)


def test_flags_follow_added_entries_per_family() -> None:
    added = [("10.0.0.1", 6881), ("2001:db8::1", 51413), ("10.0.0.2", 6882)]
    flags = [PEX_CONNECTABLE | PEX_SEED, PEX_HOLEPUNCH, 0]
    raw = bencoding.decode(encode_pex(added, [("10.0.0.9", 9), ("::1", 7)], flags))
    assert raw[b"added"] == bytes([10, 0, 0, 1, 0x1A, 0xE1, 10, 0, 0, 2, 0x1A, 0xE2])
    assert raw[b"added.f"] == bytes([PEX_CONNECTABLE | PEX_SEED, 0])
    assert len(raw[b"added6"]) == 18 and raw[b"added6"].endswith((51413).to_bytes(2, "big"))
    assert raw[b"added6.f"] == bytes([PEX_HOLEPUNCH])
    assert raw[b"dropped"] == bytes([10, 0, 0, 9, 0, 9])
    assert len(raw[b"dropped6"]) == 18


def test_without_flags_every_entry_gets_a_zero_flag_byte() -> None:
    raw = bencoding.decode(encode_pex([("10.0.0.1", 1), ("10.0.0.2", 2)], []))
    assert raw[b"added.f"] == b"\0\0" and raw[b"added6"] == b"" and raw[b"added6.f"] == b""


def test_what_we_send_parses_back() -> None:
    added = [("10.0.0.1", 6881), ("2001:db8::1", 51413)]
    assert parse_pex(encode_pex(added, [("10.0.0.3", 3)], [PEX_SEED, 0])) == PexPeers(
        added=added, dropped=[("10.0.0.3", 3)]
    )


def test_send_pex_with_flags_over_a_connection() -> None:
    link = handshaken()
    link.to_a(link.b.send_extended_handshake())
    link.to_b(link.a.send_extended_handshake())
    message = link.a.send_pex([("10.0.0.1", 6881)], [], [PEX_CONNECTABLE])
    assert bencoding.decode(message[6:])[b"added.f"] == bytes([PEX_CONNECTABLE])
    assert link.to_b(message) == [PexPeers(added=[("10.0.0.1", 6881)], dropped=[])]
