"""UDP tracker protocol (BEP 15), sans-I/O: both the client exchange and the server-side codecs.

The client side is a small state machine, ``UdpTrackerClient``: the caller owns the socket and the clock,
asks ``next_datagram(now)`` what to send, feeds answers to ``receive_datagram(data, now)`` and waits
``retry_timeout_s(n)`` between retransmissions.
"""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass

from torrentpy.protocol.tracker_http import (
    MAX_INTERVAL_S,
    MAX_PEERS,
    AnnounceRequest,
    AnnounceResponse,
    BadTrackerResponse,
    ScrapeStats,
    TrackerError,
    TrackerFailure,
    clean_text,
    decode_compact_peers,
)

__all__ = [
    "CONNECTION_ID_LIFETIME_S",
    "MAX_DATAGRAM_BYTES",
    "MAX_RETRIES",
    "MAX_SCRAPE_HASHES",
    "PROTOCOL_ID",
    "BadUdpRequest",
    "UdpAnnounceRequest",
    "UdpConnectRequest",
    "UdpScrapeRequest",
    "UdpTrackerClient",
    "encode_announce_response",
    "encode_connect_response",
    "encode_error",
    "encode_scrape_response",
    "parse_request",
    "retry_timeout_s",
]

PROTOCOL_ID = 0x41727101980
ACTION_CONNECT, ACTION_ANNOUNCE, ACTION_SCRAPE, ACTION_ERROR = 0, 1, 2, 3
EVENT_CODES = {"": 0, "completed": 1, "started": 2, "stopped": 3}
EVENT_NAMES = {code: name for name, code in EVENT_CODES.items()}

# BEP 15: a client may use a connection id for one minute after receiving it.
CONNECTION_ID_LIFETIME_S = 60.0
# BEP 15: retransmit after 15 * 2^n seconds, n = 0..8 (3840 s), then give up.
MAX_RETRIES = 8
# A UDP payload cannot exceed 65507 bytes on IPv4; bigger reads can only be garbage.
MAX_DATAGRAM_BYTES = 65535
# BEP 15: "up to about 74 torrents can be scraped at once" (a full scrape answer fits one MTU-ish datagram).
MAX_SCRAPE_HASHES = 74

_HEADER = struct.Struct(">ii")  # action, transaction id
_CONNECT_REQ = struct.Struct(">qii")
_CONNECT_RESP = struct.Struct(">iiq")
_ANNOUNCE_REQ = struct.Struct(">qii20s20sqqqiIIiH")
_ANNOUNCE_RESP_HEAD = struct.Struct(">iiiii")
_SCRAPE_ENTRY = struct.Struct(">iii")


def retry_timeout_s(n: int, scale: float = 1.0) -> float:
    """Seconds to wait for an answer to the n-th transmission (n from 0); ``scale`` shrinks it for tests."""
    if not 0 <= n <= MAX_RETRIES:
        raise ValueError(f"retry number {n} outside 0..{MAX_RETRIES}")
    return 15.0 * (2**n) * scale


def _new_transaction_id() -> int:
    return secrets.randbits(32) - 2**31


class UdpTrackerClient:
    """One UDP tracker's client-side state: the connection id with its expiry and the pending request.

    ``receive_datagram`` returns the final answer (AnnounceResponse or scrape stats), ``CONNECTED``
    when a connect answer arrived (send ``next_datagram`` again at once), or None for a stray datagram.
    """

    CONNECTED = object()

    def __init__(self, ipv6: bool = False) -> None:
        self.ipv6 = ipv6
        self.connection_id: int | None = None
        self._connection_expires_at = 0.0
        self._announce: AnnounceRequest | None = None
        self._scrape: list[bytes] | None = None
        self._tid: int | None = None
        self._awaiting: int | None = None

    def is_connected(self, now: float) -> bool:
        return self.connection_id is not None and now < self._connection_expires_at

    def begin_announce(self, req: AnnounceRequest) -> None:
        self._announce, self._scrape = req, None

    def begin_scrape(self, info_hashes: list[bytes]) -> None:
        if not 0 < len(info_hashes) <= MAX_SCRAPE_HASHES:
            raise ValueError(f"scrape needs 1..{MAX_SCRAPE_HASHES} info-hashes")
        self._announce, self._scrape = None, list(info_hashes)

    def next_datagram(self, now: float) -> bytes:
        """The datagram to (re)send now: a connect while the connection id is missing or stale."""
        if self._announce is None and self._scrape is None:
            raise RuntimeError("no request pending")
        self._tid = _new_transaction_id()
        if not self.is_connected(now):
            self.connection_id = None
            self._awaiting = ACTION_CONNECT
            return _CONNECT_REQ.pack(PROTOCOL_ID, ACTION_CONNECT, self._tid)
        assert self.connection_id is not None
        if self._announce is not None:
            r = self._announce
            self._awaiting = ACTION_ANNOUNCE
            return _ANNOUNCE_REQ.pack(
                self.connection_id, ACTION_ANNOUNCE, self._tid, r.info_hash, r.peer_id,
                max(0, r.downloaded), max(0, r.left), max(0, r.uploaded), EVENT_CODES[r.event],
                0,  # ip: let the tracker use the source address
                r.key & 0xFFFFFFFF, min(r.numwant, 2**31 - 1) if r.numwant >= 0 else -1, r.port,
            )
        assert self._scrape is not None
        self._awaiting = ACTION_SCRAPE
        return struct.pack(">qii", self.connection_id, ACTION_SCRAPE, self._tid) + b"".join(self._scrape)

    def receive_datagram(
        self, data: bytes, now: float
    ) -> AnnounceResponse | dict[bytes, ScrapeStats] | object | None:
        if len(data) < _HEADER.size or self._tid is None:
            return None
        action, tid = _HEADER.unpack_from(data)
        if tid != self._tid:
            return None  # a late answer to an earlier transmission, or spoofed: ignore
        if action == ACTION_ERROR:
            self._finish()
            raise TrackerFailure(clean_text(data[8:]) or "tracker reported an error")
        if action != self._awaiting:
            self._finish()
            raise BadTrackerResponse(f"tracker answered action {action}, expected {self._awaiting}")
        if action == ACTION_CONNECT:
            if len(data) < _CONNECT_RESP.size:
                self._finish()
                raise BadTrackerResponse("truncated connect response")
            self.connection_id = _CONNECT_RESP.unpack_from(data)[2]
            self._connection_expires_at = now + CONNECTION_ID_LIFETIME_S
            self._tid = None
            return self.CONNECTED
        if action == ACTION_ANNOUNCE:
            return self._parse_announce(data)
        return self._parse_scrape(data)

    def _finish(self) -> None:
        self._tid = self._awaiting = None
        self._announce = self._scrape = None

    def _parse_announce(self, data: bytes) -> AnnounceResponse:
        if len(data) < _ANNOUNCE_RESP_HEAD.size:
            self._finish()
            raise BadTrackerResponse(f"truncated announce response ({len(data)} bytes)")
        _, _, interval, leechers, seeders = _ANNOUNCE_RESP_HEAD.unpack_from(data)
        blob = data[_ANNOUNCE_RESP_HEAD.size :]
        size = 18 if self.ipv6 else 6
        # Some trackers pad; ignore a trailing partial record rather than rejecting the whole answer.
        blob = blob[: (len(blob) // size) * size][: size * MAX_PEERS]
        self._finish()
        return AnnounceResponse(
            interval_s=max(0, min(interval, MAX_INTERVAL_S)),
            peers=list(dict.fromkeys(decode_compact_peers(blob, ipv6=self.ipv6))),
            complete=max(0, seeders),
            incomplete=max(0, leechers),
        )

    def _parse_scrape(self, data: bytes) -> dict[bytes, ScrapeStats]:
        hashes = self._scrape or []
        body = data[_HEADER.size :]
        if len(body) < _SCRAPE_ENTRY.size * len(hashes):
            self._finish()
            raise BadTrackerResponse("truncated scrape response")
        out = {}
        for i, h in enumerate(hashes):
            seeders, completed, leechers = _SCRAPE_ENTRY.unpack_from(body, i * _SCRAPE_ENTRY.size)
            out[h] = ScrapeStats(complete=max(0, seeders), downloaded=max(0, completed),
                                 incomplete=max(0, leechers))
        self._finish()
        return out


# --- Server side --------------------------------------------------------------------------------------


class BadUdpRequest(TrackerError):
    """A datagram that is not a valid BEP 15 request."""

    def __init__(self, message: str, transaction_id: int | None = None) -> None:
        self.transaction_id = transaction_id
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class UdpConnectRequest:
    transaction_id: int


@dataclass(frozen=True, slots=True)
class UdpAnnounceRequest:
    connection_id: int
    transaction_id: int
    info_hash: bytes
    peer_id: bytes
    downloaded: int
    left: int
    uploaded: int
    event: str
    key: int
    numwant: int
    port: int


@dataclass(frozen=True, slots=True)
class UdpScrapeRequest:
    connection_id: int
    transaction_id: int
    info_hashes: list[bytes]


def parse_request(data: bytes) -> UdpConnectRequest | UdpAnnounceRequest | UdpScrapeRequest:
    if len(data) < 16:
        raise BadUdpRequest("datagram too short")
    if len(data) > MAX_DATAGRAM_BYTES:
        raise BadUdpRequest("datagram too long")
    connection_id, action, tid = struct.unpack_from(">qii", data)
    if action == ACTION_CONNECT:
        if connection_id != PROTOCOL_ID:
            raise BadUdpRequest("wrong protocol id", tid)
        return UdpConnectRequest(tid)
    if action == ACTION_ANNOUNCE:
        if len(data) < _ANNOUNCE_REQ.size:
            raise BadUdpRequest("truncated announce request", tid)
        (_, _, _, info_hash, peer_id, downloaded, left, uploaded, event, _ip, key, numwant,
         port) = _ANNOUNCE_REQ.unpack_from(data)
        if event not in EVENT_NAMES:
            raise BadUdpRequest(f"unknown event {event}", tid)
        return UdpAnnounceRequest(connection_id, tid, info_hash, peer_id, downloaded, left, uploaded,
                                  EVENT_NAMES[event], key, numwant, port)
    if action == ACTION_SCRAPE:
        body = data[16:]
        if not body or len(body) % 20 or len(body) // 20 > MAX_SCRAPE_HASHES:
            raise BadUdpRequest("scrape request needs 1..74 info-hashes", tid)
        return UdpScrapeRequest(connection_id, tid, [body[i : i + 20] for i in range(0, len(body), 20)])
    raise BadUdpRequest(f"unknown action {action}", tid)


def encode_connect_response(transaction_id: int, connection_id: int) -> bytes:
    return _CONNECT_RESP.pack(ACTION_CONNECT, transaction_id, connection_id)


def encode_announce_response(
    transaction_id: int, interval_s: int, leechers: int, seeders: int, compact_peers: bytes
) -> bytes:
    clamp = 2**31 - 1
    return _ANNOUNCE_RESP_HEAD.pack(
        ACTION_ANNOUNCE, transaction_id, min(interval_s, clamp), min(leechers, clamp), min(seeders, clamp)
    ) + compact_peers


def encode_scrape_response(transaction_id: int, stats: list[ScrapeStats]) -> bytes:
    clamp = 2**31 - 1
    return _HEADER.pack(ACTION_SCRAPE, transaction_id) + b"".join(
        _SCRAPE_ENTRY.pack(min(s.complete, clamp), min(s.downloaded, clamp), min(s.incomplete, clamp))
        for s in stats
    )


def encode_error(transaction_id: int, message: str) -> bytes:
    return _HEADER.pack(ACTION_ERROR, transaction_id) + message.encode()[:512]
