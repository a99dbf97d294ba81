"""BEP 27: a private torrent neither offers ut_pex nor acts on PEX a peer sends anyway.

A real in-process Session on loopback; the other side is a raw TCP peer speaking through our own
sans-IO PeerConnection, so every byte torrentpy sends is checked as it is on the wire.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from torrentpy.creation import create_torrent
from torrentpy.engine.session import Session, SessionConfig
from torrentpy.engine.torrent import Torrent
from torrentpy.metainfo import parse_torrent
from torrentpy.protocol import PeerConnection, make_peer_id, wire
from torrentpy.protocol import events as ev
from torrentpy.protocol.extension import DEFAULT_EXTENSIONS, UT_METADATA, UT_PEX, encode_pex

# A peer address only this PEX message names: if it turns up among the candidates, PEX was acted on.
PEX_ADDR = ("127.0.0.1", 7777)
# Generous: every step is one loopback round trip; the bound only stops a hung test.
STEP_TIMEOUT_S = 10.0


async def _next_event(conn: PeerConnection, reader: asyncio.StreamReader, kind: type[ev.Event]) -> ev.Event:
    while True:
        while (event := conn.next_event()) is not None:
            if isinstance(event, kind):
                return event
        data = await reader.read(65536)
        assert data, f"torrentpy closed the connection before sending {kind.__name__}"
        conn.receive_data(data)


async def _exchange(tmp_path: Path, private: bool) -> tuple[dict[bytes, object], Torrent]:
    """Handshake with a fresh session, send it a PEX message under the default ut_pex id, then a
    metadata request: its answer proves the PEX message before it has been handled."""
    (tmp_path / "data.bin").write_bytes(bytes(range(256)) * 256)
    meta = parse_torrent(create_torrent(str(tmp_path / "data.bin"), private=private))
    session = Session(SessionConfig(save_dir=str(tmp_path / "dl"), listen_port=0, bind="127.0.0.1"))
    torrent = session.add(meta)
    await session.listen()
    running = asyncio.ensure_future(session.run())
    writer = None
    try:
        # Peers are turned away until the (empty) download folder has been checked.
        async def serving() -> None:
            while not torrent.wants_peers():
                await asyncio.sleep(0.01)

        await asyncio.wait_for(serving(), STEP_TIMEOUT_S)
        ours = PeerConnection(info_hash=meta.info_hash, peer_id=make_peer_id(), num_pieces=meta.num_pieces,
                              piece_length=meta.piece_length, total_length=meta.total_length, initiator=True,
                              extensions={UT_METADATA: 3, UT_PEX: 4})
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", session.listen_port), STEP_TIMEOUT_S)
        writer.write(ours.initiate())
        await asyncio.wait_for(_next_event(ours, reader, ev.HandshakeComplete), STEP_TIMEOUT_S)
        hs = await asyncio.wait_for(_next_event(ours, reader, ev.ExtendedHandshake), STEP_TIMEOUT_S)
        assert isinstance(hs, ev.ExtendedHandshake)
        offered = hs.data[b"m"]
        assert isinstance(offered, dict)
        writer.write(ours.send_extended_handshake())
        # The id a peer would use for ut_pex had we offered it: a hostile peer sends it regardless.
        writer.write(wire.extended(DEFAULT_EXTENSIONS[UT_PEX], encode_pex([PEX_ADDR], [])))
        writer.write(ours.send_metadata_request(0))
        await writer.drain()
        await asyncio.wait_for(_next_event(ours, reader, ev.MetadataData), STEP_TIMEOUT_S)
        return offered, torrent
    finally:
        if writer is not None:
            writer.close()
        session.request_stop()
        await asyncio.wait_for(running, STEP_TIMEOUT_S)


@pytest.mark.timeout(60)
def test_private_torrent_offers_no_pex_and_ignores_it(tmp_path: Path) -> None:
    offered, torrent = asyncio.run(_exchange(tmp_path, private=True))
    assert UT_PEX.encode() not in offered and UT_METADATA.encode() in offered
    assert PEX_ADDR not in torrent.candidates


@pytest.mark.timeout(60)
def test_public_torrent_offers_pex_and_uses_it(tmp_path: Path) -> None:
    # The same exchange on a public torrent: shows the private test above could fail.
    offered, torrent = asyncio.run(_exchange(tmp_path, private=False))
    assert offered[UT_PEX.encode()] == DEFAULT_EXTENSIONS[UT_PEX]
    assert PEX_ADDR in torrent.candidates
