"""HTTP tracker protocol (BEP 3, compact peers BEP 23, IPv6 peers BEP 7), sans-I/O.

Builds announce/scrape URLs and parses bencoded responses; the shared announce types used by the UDP
protocol and the asyncio client live here too. Nothing here touches a socket or a clock.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_from_bytes, urlsplit, urlunsplit

from torrentpy import bencoding
from torrentpy.errors import BencodeError, TrackerError

__all__ = [
    "MAX_FAILURE_REASON_CHARS",
    "MAX_PEERS",
    "MAX_RESPONSE_BYTES",
    "AnnounceRequest",
    "AnnounceResponse",
    "BadTrackerResponse",
    "ScrapeStats",
    "TrackerError",
    "TrackerFailure",
    "build_announce_url",
    "build_scrape_url",
    "clean_text",
    "decode_compact_peers",
    "encode_compact_peers",
    "parse_announce_response",
    "parse_scrape_response",
    "scrape_url_for",
]

# A compact list of 200 peers is 1.2 KB; 2 MiB leaves room for huge dictionary-model lists while keeping
# a hostile tracker from making us buffer and bdecode an unbounded body.
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
# No client wants more than a few hundred peers per announce; anything beyond is dropped, not stored.
MAX_PEERS = 2000
# Failure and warning texts are shown on one dashboard line; longer texts are truncated.
MAX_FAILURE_REASON_CHARS = 300
# Scrape answers are per requested torrent; a tracker returning more entries than this is misbehaving.
MAX_SCRAPE_ENTRIES = 1000
# Intervals beyond a week are nonsense (or overflow attempts); clamp instead of trusting them.
MAX_INTERVAL_S = 7 * 24 * 3600

EVENTS = ("started", "completed", "stopped", "")

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


class TrackerFailure(TrackerError):
    """The tracker answered with a ``failure reason`` (or UDP action 3); ``reason`` holds its text."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class BadTrackerResponse(TrackerError):
    """The tracker's answer was malformed, oversized or of the wrong shape."""


@dataclass(frozen=True, slots=True)
class AnnounceRequest:
    info_hash: bytes
    peer_id: bytes
    port: int
    uploaded: int
    downloaded: int
    left: int
    event: str = ""
    numwant: int = 50
    key: int = 0
    compact: bool = True
    ip: str | None = None

    def __post_init__(self) -> None:
        if len(self.info_hash) != 20 or len(self.peer_id) != 20:
            raise ValueError("info_hash and peer_id must be 20 bytes")
        if self.event not in EVENTS:
            raise ValueError(f"unknown announce event {self.event!r}")
        # Port 0 would tell the swarm that nobody can reach us, and trackers refuse it.
        if not 0 < self.port <= 0xFFFF:
            raise ValueError(f"port {self.port} out of range")


@dataclass(frozen=True, slots=True)
class AnnounceResponse:
    interval_s: int
    min_interval_s: int | None = None
    peers: list[tuple[str, int]] = field(default_factory=list)
    complete: int | None = None
    incomplete: int | None = None
    warning: str | None = None
    tracker_id: bytes | None = None


@dataclass(frozen=True, slots=True)
class ScrapeStats:
    complete: int
    downloaded: int
    incomplete: int


def clean_text(raw: object) -> str:
    """Tracker-supplied text as one printable line (control characters would corrupt the dashboard)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else str(raw)
    text = _CONTROL_CHARS.sub(" ", text).strip()
    if len(text) > MAX_FAILURE_REASON_CHARS:
        text = text[: MAX_FAILURE_REASON_CHARS - 1] + "…"
    return text


# --- URLs ---------------------------------------------------------------------------------------------


def _with_query(base_url: str, params: list[tuple[str, str]]) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https"):
        raise TrackerError(f"not an HTTP tracker URL: {base_url!r}")
    extra = "&".join(f"{k}={v}" for k, v in params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    # The fragment never goes on the wire; drop it so it cannot swallow our parameters.
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def build_announce_url(base_url: str, req: AnnounceRequest, tracker_id: bytes | None = None) -> str:
    """The GET URL for one announce. Binary values are percent-encoded byte for byte."""
    params = [
        ("info_hash", quote_from_bytes(req.info_hash, safe="")),
        ("peer_id", quote_from_bytes(req.peer_id, safe="")),
        ("port", str(req.port)),
        ("uploaded", str(max(0, req.uploaded))),
        ("downloaded", str(max(0, req.downloaded))),
        ("left", str(max(0, req.left))),
        ("compact", "1" if req.compact else "0"),
        ("numwant", str(max(0, req.numwant))),
        ("key", f"{req.key & 0xFFFFFFFF:08X}"),
    ]
    if req.compact:
        params.append(("no_peer_id", "1"))
    if req.event:
        params.append(("event", req.event))
    if req.ip:
        params.append(("ip", quote_from_bytes(req.ip.encode(), safe="")))
    if tracker_id:
        params.append(("trackerid", quote_from_bytes(tracker_id, safe="")))
    return _with_query(base_url, params)


def scrape_url_for(announce_url: str) -> str | None:
    """The scrape URL by the usual convention (last path part ``announce…`` → ``scrape…``), else None."""
    parts = urlsplit(announce_url)
    head, _, last = parts.path.rpartition("/")
    if not last.startswith("announce"):
        return None
    path = f"{head}/scrape{last[len('announce'):]}"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def build_scrape_url(scrape_url: str, info_hashes: Iterable[bytes]) -> str:
    params = [("info_hash", quote_from_bytes(h, safe="")) for h in info_hashes]
    return _with_query(scrape_url, params)


# --- Peers ----------------------------------------------------------------------------------------------


def decode_compact_peers(blob: bytes, ipv6: bool) -> list[tuple[str, int]]:
    """BEP 23 (6 bytes per peer) or BEP 7 (18 bytes per peer); ports of 0 are dropped."""
    size = 18 if ipv6 else 6
    if len(blob) % size:
        raise BadTrackerResponse(
            f"compact {'peers6' if ipv6 else 'peers'} length {len(blob)} is not a multiple of {size}"
        )
    peers: list[tuple[str, int]] = []
    addr_cls = ipaddress.IPv6Address if ipv6 else ipaddress.IPv4Address
    for off in range(0, min(len(blob), size * MAX_PEERS), size):
        port = int.from_bytes(blob[off + size - 2 : off + size], "big")
        if port:
            peers.append((str(addr_cls(bytes(blob[off : off + size - 2]))), port))
    return peers


def encode_compact_peers(peers: Iterable[tuple[str, int]]) -> tuple[bytes, bytes]:
    """(IPv4 compact, IPv6 compact) encodings of ``peers``; unparsable addresses are skipped."""
    v4 = bytearray()
    v6 = bytearray()
    for ip, port in peers:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            continue
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        target = v4 if addr.version == 4 else v6
        target += addr.packed + (port & 0xFFFF).to_bytes(2, "big")
    return bytes(v4), bytes(v6)


def _dict_peers(items: list[Any]) -> list[tuple[str, int]]:
    peers: list[tuple[str, int]] = []
    for item in items[:MAX_PEERS]:
        if not isinstance(item, dict):
            raise BadTrackerResponse("peer list entry is not a dictionary")
        ip, port = item.get(b"ip"), item.get(b"port")
        if not isinstance(ip, bytes) or not isinstance(port, int) or isinstance(port, bool):
            raise BadTrackerResponse("peer entry lacks a valid 'ip' or 'port'")
        if not 0 < port <= 0xFFFF:
            continue
        try:
            addr = ipaddress.ip_address(ip.decode("ascii").strip("[]"))
        except (UnicodeDecodeError, ValueError):
            # Host names would need a DNS lookup the tracker chose for us; not worth the exposure.
            continue
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        peers.append((str(addr), port))
    return peers


def _dedupe(peers: list[tuple[str, int]]) -> list[tuple[str, int]]:
    return list(dict.fromkeys(peers))[:MAX_PEERS]


# --- Responses ----------------------------------------------------------------------------------------


def _decode_dict(body: bytes) -> dict[bytes, Any]:
    if len(body) > MAX_RESPONSE_BYTES:
        raise BadTrackerResponse(f"tracker response is larger than {MAX_RESPONSE_BYTES} bytes")
    if not body:
        raise BadTrackerResponse("tracker sent an empty response")
    try:
        value = bencoding.decode(body, max_bytes=MAX_RESPONSE_BYTES)
    except BencodeError as exc:
        raise BadTrackerResponse(f"tracker response is not valid bencoding ({exc})") from None
    if not isinstance(value, dict):
        raise BadTrackerResponse("tracker response is not a dictionary")
    failure = value.get(b"failure reason")
    if failure is not None:
        raise TrackerFailure(clean_text(failure) or "tracker reported a failure without a reason")
    return value


def _opt_int(d: dict[bytes, Any], key: bytes, hi: int = 2**63) -> int | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadTrackerResponse(f"'{key.decode()}' is not an integer")
    return max(0, min(value, hi))


def parse_announce_response(body: bytes) -> AnnounceResponse:
    """Parse an HTTP announce body. Raises TrackerFailure or BadTrackerResponse, nothing else."""
    d = _decode_dict(body)
    interval = _opt_int(d, b"interval", MAX_INTERVAL_S)
    if interval is None:
        raise BadTrackerResponse("tracker response has no 'interval'")
    min_interval = _opt_int(d, b"min interval", MAX_INTERVAL_S)

    peers: list[tuple[str, int]] = []
    raw = d.get(b"peers", b"")
    if isinstance(raw, bytes):
        peers += decode_compact_peers(raw, ipv6=False)
    elif isinstance(raw, list):
        peers += _dict_peers(raw)
    else:
        raise BadTrackerResponse("'peers' is neither a string nor a list")
    raw6 = d.get(b"peers6")
    if raw6 is not None:
        if not isinstance(raw6, bytes):
            raise BadTrackerResponse("'peers6' is not a string")
        peers += decode_compact_peers(raw6, ipv6=True)

    warning = d.get(b"warning message")
    tracker_id = d.get(b"tracker id")
    return AnnounceResponse(
        interval_s=interval,
        min_interval_s=min_interval,
        peers=_dedupe(peers),
        complete=_opt_int(d, b"complete"),
        incomplete=_opt_int(d, b"incomplete"),
        warning=clean_text(warning) if isinstance(warning, bytes) and warning else None,
        tracker_id=tracker_id if isinstance(tracker_id, bytes) and 0 < len(tracker_id) <= 256 else None,
    )


def parse_scrape_response(body: bytes) -> dict[bytes, ScrapeStats]:
    d = _decode_dict(body)
    files = d.get(b"files", {})
    if not isinstance(files, dict):
        raise BadTrackerResponse("'files' is not a dictionary")
    if len(files) > MAX_SCRAPE_ENTRIES:
        raise BadTrackerResponse(f"scrape answer has more than {MAX_SCRAPE_ENTRIES} entries")
    out: dict[bytes, ScrapeStats] = {}
    for info_hash, stats in files.items():
        if len(info_hash) != 20 or not isinstance(stats, dict):
            raise BadTrackerResponse("malformed scrape entry")
        out[info_hash] = ScrapeStats(
            complete=_opt_int(stats, b"complete") or 0,
            downloaded=_opt_int(stats, b"downloaded") or 0,
            incomplete=_opt_int(stats, b"incomplete") or 0,
        )
    return out
