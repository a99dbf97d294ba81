"""Builders for small torrents with known payloads, bencoded by hand so every layout is possible."""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path

from torrentpy.bencoding import encode
from torrentpy.metainfo import Metainfo, parse_torrent


@dataclass
class Built:
    meta: Metainfo
    contents: list[bytes]  # one per file in meta.files; padding files are zeros
    payload: bytes
    torrent: bytes  # the .torrent file's bytes

    def piece(self, index: int) -> bytes:
        pl = self.meta.piece_length
        return self.payload[index * pl : index * pl + self.meta.piece_size(index)]

    def write_files(self, root: Path, *, skip: tuple[int, ...] = ()) -> None:
        """Put the payload on disk the way a finished download would be (padding files left out)."""
        for i, f in enumerate(self.meta.files):
            if f.padding or i in skip:
                continue
            path = root.joinpath(*f.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.contents[i])


def build(
    files: list[tuple[str, int] | tuple[str, int, str]],
    piece_length: int,
    *,
    name: str = "t",
    seed: int = 1,
) -> Built:
    """files: ("dir/a.bin", length) or ("pad/0", length, "p") for a BEP 47 padding file.
    A single entry named "" makes a single-file torrent."""
    rng = random.Random(seed)
    contents = [
        bytes(f[1]) if len(f) == 3 and "p" in f[2] else rng.randbytes(f[1])  # type: ignore[misc]
        for f in files
    ]
    payload = b"".join(contents)
    pieces = b"".join(
        hashlib.sha1(payload[i : i + piece_length]).digest() for i in range(0, len(payload), piece_length)
    )
    info: dict[bytes, object] = {b"name": name.encode(), b"piece length": piece_length, b"pieces": pieces}
    if len(files) == 1 and files[0][0] == "":
        info[b"length"] = files[0][1]
    else:
        entries = []
        for f in files:
            entry: dict[bytes, object] = {b"length": f[1], b"path": [p.encode() for p in f[0].split("/")]}
            if len(f) == 3:
                entry[b"attr"] = f[2].encode()  # type: ignore[misc]
            entries.append(entry)
        info[b"files"] = entries
    torrent = encode({b"announce": b"http://127.0.0.1:1/announce", b"info": info})
    return Built(parse_torrent(torrent), contents, payload, torrent)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
