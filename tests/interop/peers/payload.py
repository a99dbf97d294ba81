"""Deterministic test payloads and .torrent files made by independent creators (libtorrent, mktorrent)."""

from __future__ import annotations

import hashlib
import random
import subprocess
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import libtorrent as lt

MiB = 1024 * 1024
# Bytes compared per read when checking a downloaded copy; bounded so an 8 MiB file is not held twice.
_COMPARE_CHUNK_BYTES = 1 * MiB

PayloadSpec = int | Mapping[str, int]


@dataclass(frozen=True)
class Payload:
    """Files on disk that a torrent describes.

    ``root`` is what a torrent is made from (the file itself, or the top directory of a multi-file
    torrent); ``save_dir`` is its parent, the "save path" a seeding client is given.
    """

    root: Path
    files: dict[str, int]  # path relative to save_dir, "/"-separated, in torrent order -> size
    single_file: bool

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def save_dir(self) -> Path:
        return self.root.parent

    @property
    def total_size(self) -> int:
        return sum(self.files.values())

    def differences(self, other_save_dir: Path) -> list[str]:
        """Why the copy under ``other_save_dir`` is not byte-identical to this payload ([] if it is)."""
        problems: list[str] = []
        for rel, size in self.files.items():
            mine, theirs = self.save_dir / rel, Path(other_save_dir) / rel
            if not theirs.is_file():
                problems.append(f"{rel}: missing")
                continue
            if theirs.stat().st_size != size:
                problems.append(f"{rel}: size {theirs.stat().st_size} != {size}")
                continue
            with open(mine, "rb") as a, open(theirs, "rb") as b:
                offset = 0
                while chunk := a.read(_COMPARE_CHUNK_BYTES):
                    if chunk != b.read(len(chunk)):
                        problems.append(f"{rel}: differs in the {len(chunk)} bytes at offset {offset}")
                        break
                    offset += len(chunk)
        return problems

    def sha1_of(self, rel: str) -> str:
        return hashlib.sha1((self.save_dir / rel).read_bytes()).hexdigest()


def _file_bytes(seed: int, rel: str, size: int) -> bytes:
    # crc32 rather than hash(): str hashing is salted per process, and payloads must repeat across runs.
    return random.Random(seed * 1_000_003 + zlib.crc32(rel.encode())).randbytes(size)


def make_payload(base_dir: Path, spec: PayloadSpec, name: str = "payload", seed: int = 1) -> Payload:
    """Write pseudo-random files under ``base_dir``; the same (spec, name, seed) gives the same bytes.

    ``spec`` is a size in bytes (one file called ``name``) or a mapping of "/"-separated relative
    paths to sizes (a directory called ``name``; nested paths and zero sizes allowed).
    """
    base_dir = Path(base_dir)
    base_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(spec, int):
        root = base_dir / name
        root.write_bytes(_file_bytes(seed, name, spec))
        return Payload(root=root, files={name: spec}, single_file=True)
    root = base_dir / name
    files: dict[str, int] = {}
    for rel in sorted(spec):  # torrent order: both creators below list files sorted by path
        size = spec[rel]
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_file_bytes(seed, rel, size))
        files[f"{name}/{rel}"] = size
    return Payload(root=root, files=files, single_file=False)


def multi_file_spec(piece_length: int) -> dict[str, int]:
    """A layout with a piece spanning three files, an empty file between them, and nested folders.

    Sorted (torrent) order: a.bin | b/c.bin | b/d/e.bin | b/d/empty.txt | f.bin. Piece 2 holds the tail
    of a.bin, all of b/c.bin (100 bytes) and the head of b/d/e.bin; the empty file sits at a piece's
    middle; the last piece is short.
    """
    p = piece_length
    return {
        "a.bin": 2 * p + p // 2,
        "b/c.bin": 100,
        "b/d/empty.txt": 0,
        "b/d/e.bin": 3 * p + 1234,
        "f.bin": p // 3,
    }


def make_torrent_libtorrent(
    path: Path, piece_length: int, trackers: Sequence[str], out: Path, private: bool = False
) -> Path:
    """A v1-only .torrent for the file or directory ``path``, made by libtorrent.create_torrent."""
    path = Path(path)
    if path.is_file():
        entries = [lt.create_file_entry(path.name, path.stat().st_size)]
    else:
        entries = [
            lt.create_file_entry(f"{path.name}/{file.relative_to(path).as_posix()}", file.stat().st_size)
            for file in sorted(p for p in path.rglob("*") if p.is_file())
        ]
    ct = lt.create_torrent(entries, piece_length, lt.create_torrent.v1_only)
    for tier, url in enumerate(trackers):
        ct.add_tracker(url, tier)
    ct.set_priv(private)
    ct.set_creator("torrentpy interop tests")
    lt.set_piece_hashes(ct, str(path.parent))
    out = Path(out)
    out.write_bytes(lt.bencode(ct.generate()))
    return out


def make_torrent_mktorrent(path: Path, piece_length: int, trackers: Sequence[str], out: Path) -> Path:
    """A .torrent for ``path`` made by Debian's mktorrent (an independent implementation)."""
    log2 = piece_length.bit_length() - 1
    if 1 << log2 != piece_length:
        raise ValueError(f"mktorrent needs a power-of-two piece length, not {piece_length}")
    out = Path(out)
    out.unlink(missing_ok=True)  # mktorrent refuses to overwrite
    argv = ["mktorrent", "-d", "-l", str(log2), "-o", str(out)]
    if trackers:
        argv += ["-a", ",".join(trackers[:1])]
        for url in trackers[1:]:
            argv += ["-a", url]
    argv.append(str(path))
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return out


def info_hash_libtorrent(torrent_path: Path) -> bytes:
    """The v1 info-hash (20 bytes) libtorrent computes for a .torrent file."""
    ti = lt.torrent_info(str(torrent_path))
    return bytes(ti.info_hashes().v1.to_bytes())
