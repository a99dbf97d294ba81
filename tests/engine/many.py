"""Many tiny torrents, complete on disk, in one in-process Session: for the idle-cost test and bench/."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from torrentpy.bencoding import encode
from torrentpy.engine.session import Session, SessionConfig
from torrentpy.metainfo import Metainfo, parse_torrent

PIECE_LENGTH = 16384


def tiny_torrents(folder: Path, count: int) -> list[Metainfo]:
    """`count` single-piece torrents with their data already in `folder` (hashed here, not by
    creation.create_torrent, whose thread pool per call would dominate at 10,000)."""
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)
    metas = []
    for i in range(count):
        data = i.to_bytes(4, "big") * 64
        name = f"t{i:05d}.bin"
        (folder / name).write_bytes(data)
        info = {b"name": name.encode(), b"piece length": PIECE_LENGTH, b"length": len(data),
                b"pieces": hashlib.sha1(data).digest()}
        metas.append(parse_torrent(encode({b"info": info})))
    return metas


def session_for(folder: Path, **config: object) -> Session:
    return Session(SessionConfig(save_dir=str(folder), listen_port=0, bind="127.0.0.1", dht=False,
                                 keep_running=True, **config))  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(session: Session, metas: list[Metainfo], timeout_s: float = 120.0) -> AsyncIterator[float]:
    """Run `session` with every torrent added until all are seeding; yields the start-up time."""
    started = time.perf_counter()
    for meta in metas:
        session.add(meta)
    task = asyncio.ensure_future(session.run())
    try:
        deadline = time.monotonic() + timeout_s
        while not all(t.started and t.state == "seeding" for t in session.torrents.values()):
            if task.done() or time.monotonic() > deadline:
                states = {t.state for t in session.torrents.values()}
                raise AssertionError(f"torrents did not all start seeding: {states}")
            await asyncio.sleep(0.05)
        yield time.perf_counter() - started
    finally:
        session.request_stop()
        await asyncio.wait_for(task, 60)
