"""Peer-id → client name.

Peer ids come from strangers and reach the screen, so every name returned here is free of control
characters and escape sequences (untrusted text in general goes through ``torrentpy.text.printable``).

Encodings follow the conventions the clients themselves use (BEP 20 and the per-client tables that
libtorrent's ``identify_client`` and Transmission's ``clients.cc`` keep):

* Azureus style ``-XXabcd-``: two-letter client code, four version characters. Most clients write one
  version part per character (``0-9``, then ``A-Z`` for 10..35, as libtorrent's ``-LT20B0-`` = 2.0.11).
  Transmission, µTorrent, BitComet, Deluge, KTorrent and WebTorrent each bend that rule; see
  ``_FORMATTERS``.
* Shad0w style ``T03I-----``: a client letter, up to five version characters, then ``---``.
* Mainline style ``M4-3-6--`` / ``M7-10-3-``: letter, then dash-separated decimal parts.
* aria2 ``A2-1-36-0-``: ``A2-`` then dash-separated decimal parts.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["client_name"]

# A peer id is exactly 20 bytes on the wire; anything past that is not part of it, and bounding the input
# keeps the escaped form of a hostile value short.
MAX_PEER_ID_BYTES = 20

_VERSION_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Shad0w-style ids also allow '.' and '-' as digits 62 and 63.
_SHADOW_CHARS = _VERSION_CHARS + ".-"


def _digit(ch: int) -> int | None:
    """One version character → its value (0-9, A-Z = 10..35, a-z = 36..61) or None."""
    if ch >= 128:
        return None
    index = _VERSION_CHARS.find(chr(ch))
    return index if index >= 0 else None


def _digits(raw: bytes) -> list[int] | None:
    values = [_digit(ch) for ch in raw]
    if any(v is None for v in values):
        return None
    return [v for v in values if v is not None]


def _decimal(raw: bytes) -> int | None:
    return int(raw) if raw.isdigit() else None


# Formatters take the whole (≤ 20 byte) id and return the version text, or None when the version
# characters do not follow the client's scheme (the name alone is shown then).
_Formatter = Callable[[bytes], str | None]


def _three(pid: bytes) -> str | None:
    d = _digits(pid[3:6])
    return None if d is None else f"{d[0]}.{d[1]}.{d[2]}"


def _four(pid: bytes) -> str | None:
    d = _digits(pid[3:7])
    return None if d is None else f"{d[0]}.{d[1]}.{d[2]}.{d[3]}"


def _three_plus_tag(pid: bytes) -> str | None:
    # libtorrent's fingerprint: major.minor.revision, with the fourth (tag) part shown only when set.
    d = _digits(pid[3:7])
    if d is None:
        return None
    text = f"{d[0]}.{d[1]}.{d[2]}"
    return f"{text}.{d[3]}" if d[3] else text


def _two_major_two_minor(pid: bytes) -> str | None:
    major, minor = _decimal(pid[3:5]), _decimal(pid[5:7])
    return None if major is None or minor is None else f"{major}.{minor:02d}"


def _webtorrent(pid: bytes) -> str | None:
    # WebTorrent writes major and minor as two decimal digits each: 1.9.x → -WW0109-.
    major, minor = _decimal(pid[3:5]), _decimal(pid[5:7])
    return None if major is None or minor is None else f"{major}.{minor}"


_MNEMONIC = {ord("b"): " beta", ord("B"): " beta", ord("d"): " debug", ord("x"): " dev", ord("X"): " dev",
             ord("Z"): " dev"}


def _utorrent(pid: bytes) -> str | None:
    # µTorrent: hex major, minor, patch and a release letter; longer patch numbers take the place of the
    # trailing dash (-UT3550W…), so the id is not strictly Azureus style.
    try:
        major, minor = int(pid[3:4], 16), int(pid[4:5], 16)
        if pid[7:8] == b"-":
            patch, flag = int(pid[5:6], 16), pid[6]
        else:
            patch, flag = int(pid[5:7]), pid[7]
    except (ValueError, IndexError):
        return None
    return f"{major}.{minor}.{patch}{_MNEMONIC.get(flag, '')}"


def _transmission(pid: bytes) -> str | None:
    raw = pid[3:7]
    if raw[:3] == b"000":  # -TR0006- is 0.6
        return f"0.{chr(raw[3])}" if raw[3:4].isdigit() else None
    if raw[:2] == b"00":  # -TR0072- is 0.72
        minor = _decimal(raw[2:4])
        return None if minor is None else f"0.{minor:02d}"
    if raw[:1] in (b"1", b"2", b"3"):  # -TR111Z- is 1.11+, -TR3000- is 3.00
        minor = _decimal(raw[1:3])
        if minor is None or not raw[:1].isdigit():
            return None
        return f"{chr(raw[0])}.{minor:02d}{'+' if raw[3:4] in (b'Z', b'X') else ''}"
    # 4.x and later: -TR405Z- is 4.0.5 (dev), -TR410B- 4.1.0 (beta), -TR4060- 4.0.6.
    d = _digits(raw[:3])
    if d is None:
        return None
    return f"{d[0]}.{d[1]}.{d[2]}{_MNEMONIC.get(raw[3], '')}"


_DELUGE_TAGS = {ord("s"): "", ord("a"): " alpha", ord("b"): " beta", ord("r"): " rc", ord("D"): " dev"}


def _deluge(pid: bytes) -> str | None:
    # Deluge 2 marks the release kind in the last character (-DE211s- = 2.1.1 stable); 1.x used a digit.
    d = _digits(pid[3:6])
    if d is None:
        return None
    base = f"{d[0]}.{d[1]}.{d[2]}"
    tag = pid[6]
    if tag in _DELUGE_TAGS:
        return base + _DELUGE_TAGS[tag]
    t = _digit(tag)
    return base if not t else f"{base}.{t}"


def _ktorrent(pid: bytes) -> str | None:
    # -KT22D1- is 2.2 dev 1, -KT22R1- 2.2 RC 1, otherwise three plain parts.
    d = _digits(pid[3:5] + pid[6:7])
    if d is None:
        return None
    kind = pid[5:6]
    if kind == b"D":
        return f"{d[0]}.{d[1]} dev {d[2]}"
    if kind == b"R":
        return f"{d[0]}.{d[1]} rc {d[2]}"
    return _three(pid)


_AZUREUS: dict[bytes, tuple[str, _Formatter]] = {
    b"AZ": ("Vuze", _four),
    b"BC": ("BitComet", _two_major_two_minor),
    b"BI": ("BiglyBT", _four),
    b"BT": ("BitTorrent", _utorrent),
    b"DE": ("Deluge", _deluge),
    b"FD": ("Free Download Manager", _three),
    b"FW": ("FrostWire", _three),
    b"KT": ("KTorrent", _ktorrent),
    b"LT": ("libtorrent", _three_plus_tag),
    b"lt": ("libTorrent (rTorrent)", _three),
    b"MO": ("MonoTorrent", _four),
    b"PI": ("PicoTorrent", _three),
    b"qB": ("qBittorrent", _three),
    b"SD": ("Thunder", _four),
    b"TP": ("torrentpy", _three_plus_tag),
    b"TR": ("Transmission", _transmission),
    b"TX": ("Tixati", _three_plus_tag),
    b"UE": ("µTorrent Embedded", _utorrent),
    b"UM": ("µTorrent Mac", _utorrent),
    b"UT": ("µTorrent", _utorrent),
    b"UW": ("µTorrent Web", _utorrent),
    b"WW": ("WebTorrent", _webtorrent),
    b"XL": ("Xunlei", _four),
}

_SHADOW = {
    ord("A"): "ABC",
    ord("O"): "Osprey Permaseed",
    ord("Q"): "BTQueue",
    ord("R"): "Tribler",
    ord("S"): "Shad0w",
    ord("T"): "BitTornado",
    ord("U"): "UPnP NAT Bit Torrent",
}

_MAINLINE = {ord("M"): "BitTorrent", ord("Q"): "Queen Bee"}
_MAINLINE_RE = re.compile(rb"([MQ])(\d{1,3})-(\d{1,3})-(\d{1,3})-")
_ARIA2_RE = re.compile(rb"A2-(\d{1,3})-(\d{1,3})-(\d{1,3})-")
_AZ_CODE_RE = re.compile(rb"-[0-9A-Za-z~]{2}")


def _azureus(pid: bytes) -> str | None:
    code = pid[1:3]
    entry = _AZUREUS.get(code)
    if entry is not None:
        name, formatter = entry
        version = formatter(pid)
        return f"{name} {version}" if version else name
    if pid[7:8] != b"-" or _AZ_CODE_RE.fullmatch(pid[:3]) is None:
        return None
    # An unlisted client that follows the convention: show its code and version like libtorrent does.
    version = _three_plus_tag(pid)
    code_text = code.decode("ascii")
    return f"{code_text} {version}" if version else None


def _shadow(pid: bytes) -> str | None:
    name = _SHADOW.get(pid[0])
    if name is None or pid[6:9] != b"---":
        return None
    chars = pid[1:6].rstrip(b"-")
    if not chars:
        return None
    parts = []
    for ch in chars:
        value = _SHADOW_CHARS.find(chr(ch)) if ch < 128 else -1
        if value < 0:
            return None
        parts.append(str(value))
    return f"{name} {'.'.join(parts)}"


def _escape_bytes(raw: bytes) -> str:
    return "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in raw)


def client_name(peer_id: bytes) -> str:
    """A human name for the client that sent ``peer_id``, e.g. ``b"-TR3000-…"`` → ``"Transmission 3.00"``.

    Unknown ids come back as their bytes with printable ASCII kept and every other byte as ``\\xNN``, so
    the result never holds a control character whatever the peer sent.
    """
    pid = bytes(peer_id[:MAX_PEER_ID_BYTES])
    if not pid.strip(b"\x00"):
        return "unknown"
    name: str | None = None
    if pid[:1] == b"-" and len(pid) >= 8:
        if pid[1:3] in (b"UT", b"UM", b"UE", b"UW", b"BT") or pid[7:8] == b"-":
            name = _azureus(pid)
    elif pid.startswith(b"A2-"):
        m = _ARIA2_RE.match(pid)
        name = f"aria2 {int(m[1])}.{int(m[2])}.{int(m[3])}" if m else "aria2"
    elif pid.startswith(b"TIX") and len(pid) >= 7:
        version = _two_major_two_minor(pid)
        name = f"Tixati {version}" if version else "Tixati"
    elif pid.startswith(b"exbc") and len(pid) >= 6:
        # Pre-0.59 BitComet: two raw bytes, major and two-digit minor; BitLord adds "LORD" after them.
        label = "BitLord" if pid[6:10] == b"LORD" else "BitComet"
        name = f"{label} {pid[4]}.{pid[5]:02d}"
    elif len(pid) >= 9:
        m = _MAINLINE_RE.match(pid)
        if m is not None:
            name = f"{_MAINLINE[m[1][0]]} {int(m[2])}.{int(m[3])}.{int(m[4])}"
        else:
            name = _shadow(pid)
    if name is None:
        name = _escape_bytes(pid.rstrip(b"\x00"))
    return name
