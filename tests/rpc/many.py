"""Thousands of tiny torrents in a daemon's state folder, as `torrentpy daemon` finds them when it restarts:
for tests/rpc/test_many_torrents.py and bench/test_many_torrents_bench.py.

The torrents are made by torrentpy's own create code, in-process, with their data in the download folder
(so they seed), and recorded as Daemon.add records them; writing the records directly (no fsync) keeps
the setup of 10,000 torrents to seconds."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from torrentpy.creation import create_torrent
from torrentpy.engine.statedir import SUFFIX, TorrentRecord
from torrentpy.metainfo import Metainfo, parse_torrent

PIECE_LENGTH = 16384
PAYLOAD_BYTES = 256
# transmission-remote -l asks for these: what a front end lists every few seconds.
LIST_FIELDS = ["id", "name", "status", "error", "errorString", "eta", "isFinished", "leftUntilDone",
               "peersGettingFromUs", "peersSendingToUs", "rateDownload", "rateUpload", "sizeWhenDone",
               "uploadRatio"]
STATUS_SEED = 6


def make_torrents(folder: Path, count: int, *, first: int = 0) -> list[Metainfo]:
    """`count` single-piece torrents whose data is in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    metas = []
    for i in range(first, first + count):
        path = folder / f"t{i:05d}.bin"
        path.write_bytes(i.to_bytes(4, "big") * (PAYLOAD_BYTES // 4))
        metas.append(parse_torrent(create_torrent(str(path), piece_length=PIECE_LENGTH, creation_date=0)))
    return metas


def record_torrents(state_dir: Path, metas: list[Metainfo], save_dir: Path, *, first_id: int = 1) -> None:
    """Record each torrent in the state folder, numbered from `first_id` in order."""
    state_dir.mkdir(parents=True, exist_ok=True)
    now = int(time.time())
    for n, meta in enumerate(metas):
        record = TorrentRecord(info_hash=meta.info_hash, id=first_id + n, name=meta.name, save_dir=str(save_dir),
                               added_at=now, info=meta.info_bytes, trackers=meta.trackers)
        (state_dir / (meta.info_hash_hex + SUFFIX)).write_bytes(record.encode())


def write_session_settings(state_dir: Path, **settings: Any) -> None:
    """The daemon's session file (daemon.SessionSettings), e.g. a short recently_active_s for a test."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "session.json").write_text(json.dumps(settings))
