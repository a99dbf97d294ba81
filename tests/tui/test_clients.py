import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from torrentpy.clients import client_name
from torrentpy.text import printable


def pid(prefix: bytes) -> bytes:
    return prefix + b"x" * (20 - len(prefix))


@pytest.mark.parametrize(
    ("peer_id", "expected"),
    [
        # Real ids of the clients the interop tests run, as they send them.
        (b"-LT2010-", "libtorrent 2.0.1"),
        (b"-LT20B0-", "libtorrent 2.0.11"),
        (b"-LT2110-", "libtorrent 2.1.1"),
        (b"-LT1234-", "libtorrent 1.2.3.4"),
        (b"-lt0D80-", "libTorrent (rTorrent) 0.13.8"),
        (b"-TR3000-", "Transmission 3.00"),
        (b"-TR2940-", "Transmission 2.94"),
        (b"-TR111Z-", "Transmission 1.11+"),
        (b"-TR0072-", "Transmission 0.72"),
        (b"-TR0006-", "Transmission 0.6"),
        (b"-TR4050-", "Transmission 4.0.5"),
        (b"-TR410B-", "Transmission 4.1.0 beta"),
        (b"-qB4520-", "qBittorrent 4.5.2"),
        (b"A2-1-36-0-", "aria2 1.36.0"),
        (b"A2-1-9-2-", "aria2 1.9.2"),
        (b"-DE211s-", "Deluge 2.1.1"),
        (b"-DE13F0-", "Deluge 1.3.15"),
        (b"-UT355W-", "µTorrent 3.5.5"),
        (b"-UT3550W", "µTorrent 3.5.50"),
        (b"-UM1820-", "µTorrent Mac 1.8.2"),
        (b"-BT7A0B-", "BitTorrent 7.10.0 beta"),
        (b"-AZ5770-", "Vuze 5.7.7.0"),
        (b"-BI3610-", "BiglyBT 3.6.1.0"),
        (b"-BC0180-", "BitComet 1.80"),
        (b"-TX1000-", "Tixati 1.0.0"),
        (b"TIX0283-", "Tixati 2.83"),
        (b"-FD6200-", "Free Download Manager 6.2.0"),
        (b"-WW0109-", "WebTorrent 1.9"),
        (b"-KT5100-", "KTorrent 5.1.0"),
        (b"-KT22R1-", "KTorrent 2.2 rc 1"),
        (b"-TP0100-", "torrentpy 0.1.0"),
        (b"-XL0012-", "Xunlei 0.0.1.2"),
        (b"-SD0100-", "Thunder 0.1.0.0"),
        (b"M4-3-6--", "BitTorrent 4.3.6"),
        (b"M7-10-3-", "BitTorrent 7.10.3"),
        (b"T03I-----", "BitTornado 0.3.18"),
        (b"S58B-----", "Shad0w 5.8.11"),
        (b"A310-----", "ABC 3.1.0"),
        (b"-ZZ1230-", "ZZ 1.2.3"),  # an unlisted Azureus-style client keeps its code
    ],
)
def test_known_clients(peer_id: bytes, expected: str) -> None:
    assert client_name(pid(peer_id)) == expected


def test_libtorrent_python_binding_peer_id_decodes() -> None:
    import libtorrent as lt

    fingerprint = lt.generate_fingerprint("LT", 2, 0, 11, 0).encode()
    assert fingerprint == b"-LT20B0-"
    assert client_name(pid(fingerprint)) == "libtorrent 2.0.11"


def test_exbc_bitcomet_and_bitlord() -> None:
    assert client_name(b"exbc\x00\x38" + b"x" * 14) == "BitComet 0.56"
    assert client_name(b"exbc\x00\x38LORD" + b"x" * 10) == "BitLord 0.56"


def test_unknown_and_empty() -> None:
    assert client_name(b"") == "unknown"
    assert client_name(b"\x00" * 20) == "unknown"
    assert client_name(pid(b"hello-world")) == "hello-worldxxxxxxxxx"


@pytest.mark.parametrize(
    "hostile",
    [
        b"\x1b[2J\x1b[H-owned-\x00\x00\x00\x00",
        b"line1\nline2\r\x07\x08\x7fabc",
        b"-\x1b[31m-LT2010-xxxxxx",
        "\u202eevil\u2066".encode() + b"\x9b\x9d",
        bytes(range(128, 148)),
    ],
)
def test_hostile_ids_are_shown_safely(hostile: bytes) -> None:
    name = client_name(hostile)
    assert all(0x20 <= ord(c) < 0x7F for c in name), name
    assert "\\x1b" in name or "\\x" in name


def test_unknown_id_escapes_every_non_printable_byte() -> None:
    raw = b"ab\x1b[2J\ncd\xff" + b"z" * 10
    assert client_name(raw) == "ab\\x1b[2J\\x0acd\\xff" + "z" * 10


def test_only_the_first_twenty_bytes_count() -> None:
    assert client_name(pid(b"-TR3000-") + b"\x1b" * 1000) == "Transmission 3.00"
    assert len(client_name(b"\xff" * 5000)) == 20 * 4


@given(st.binary(max_size=40))
def test_any_bytes_give_printable_text(raw: bytes) -> None:
    name = client_name(raw)
    assert name
    assert printable(name) == name
    assert "\x1b" not in name and "\n" not in name


SAFE = set(string.printable) - set("\t\n\r\x0b\x0c")


def test_printable_escapes_controls_and_bidi() -> None:
    text = "a\x1b[2Jb\x1b]0;title\x07c\nd\te\x7ff\x9bg\u202eh\u2066i\u200fj\u2028k"
    out = printable(text)
    assert all(c in SAFE for c in out), out
    assert out == ("a\\x1b[2Jb\\x1b]0;title\\x07c\\x0ad\\x09e\\x7ff\\x9bg\\u202eh\\u2066i\\u200fj\\u2028k")


def test_printable_keeps_ordinary_unicode() -> None:
    text = "Ubuntu 24.04 — Ελληνικά 日本語 😀 µTorrent"
    assert printable(text) is text or printable(text) == text


def test_printable_shows_surrogate_escaped_bytes_as_the_byte() -> None:
    text = b"caf\xe9.txt".decode("utf-8", "surrogateescape")
    assert printable(text) == "caf\\xe9.txt"
    printable(text).encode("utf-8")  # would raise on a lone surrogate


@given(st.text(max_size=60))
def test_printable_never_leaves_a_control_character(text: str) -> None:
    out = printable(text)
    for c in out:
        cp = ord(c)
        assert cp >= 0x20 and not (0x7F <= cp <= 0x9F)
        assert not (0xD800 <= cp <= 0xDFFF)
        assert c not in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
