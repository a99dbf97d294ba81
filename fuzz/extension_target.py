"""Fuzz target for the BEP 10 extension payloads (protocol/extension.py): the extended handshake,
BEP 9 ut_metadata and BEP 11 ut_pex. Byte 0 picks the parser (0 handshake, 1 ut_metadata, 2 PEX), the
rest is the payload after the extended id. Parsers raise ExtensionError or return values within the
named limits, and what they return re-encodes to a payload that parses back to the same thing.

    .venv/bin/python fuzz/run.py extension [-max_total_time=60]
"""

from __future__ import annotations

import ipaddress

from torrentpy.protocol import extension
from torrentpy.protocol.events import MetadataData, MetadataReject, MetadataRequest

# What we would advertise as our own metadata size, so requests are checked against it.
OUR_METADATA_SIZE = 40_000


def test_one_input(data: bytes) -> None:
    if not data:
        return
    kind, payload = data[0] % 3, data[1:]
    try:
        if kind == 0:
            _handshake(payload)
        elif kind == 1:
            _metadata(payload, data[0] & 4 != 0)
        else:
            _pex(payload)
    except extension.ExtensionError as exc:
        assert "\n" not in str(exc)


def _handshake(payload: bytes) -> None:
    raw, info = extension.parse_extended_handshake(payload)
    assert isinstance(raw, dict)
    assert all(0 <= i <= 255 for i in info.extensions.values())
    assert info.metadata_size is None or 0 < info.metadata_size <= extension.MAX_METADATA_SIZE
    assert info.listen_port is None or 0 < info.listen_port <= 0xFFFF
    assert info.client is None or len(info.client) <= extension.MAX_CLIENT_NAME_CHARS
    assert info.request_queue is None or 0 < info.request_queue <= extension.MAX_REQUEST_QUEUE
    again = extension.encode_extended_handshake(info.extensions, info.metadata_size)
    _, reparsed = extension.parse_extended_handshake(again)
    assert reparsed.extensions == info.extensions and reparsed.metadata_size == info.metadata_size


def _metadata(payload: bytes, known_peer_size: bool) -> None:
    peer_size = OUR_METADATA_SIZE if known_peer_size else None
    message = extension.parse_metadata_message(
        payload, our_metadata_size=OUR_METADATA_SIZE, peer_metadata_size=peer_size
    )
    if message is None:
        return
    if isinstance(message, MetadataRequest):
        assert 0 <= message.piece < extension.metadata_piece_count(OUR_METADATA_SIZE)
        again = extension.encode_metadata_request(message.piece)
    elif isinstance(message, MetadataReject):
        again = extension.encode_metadata_reject(message.piece)
    else:
        assert isinstance(message, MetadataData)
        assert 0 < message.total_size <= extension.MAX_METADATA_SIZE
        assert peer_size is None or message.total_size == peer_size
        assert len(message.data) == extension.metadata_piece_length(message.piece, message.total_size)
        again = extension.encode_metadata_data(message.piece, message.total_size, message.data)
    assert extension.parse_metadata_message(
        again, our_metadata_size=OUR_METADATA_SIZE, peer_metadata_size=peer_size
    ) == message


def _pex(payload: bytes) -> None:
    pex = extension.parse_pex(payload)
    assert len(pex.added) <= extension.MAX_PEX_PEERS and len(pex.dropped) <= extension.MAX_PEX_PEERS
    for host, port in [*pex.added, *pex.dropped]:
        ipaddress.ip_address(host)
        assert 0 < port <= 0xFFFF
    again = extension.parse_pex(extension.encode_pex(pex.added, pex.dropped))
    assert again == pex, (again, pex)
