"""Fuzz target for torrentpy.metainfo: any .torrent bytes either parse into a Metainfo whose paths stay
inside the download folder, whose info-hash is the SHA-1 of the raw info bytes and whose numbers add up,
or raise MetainfoError; magnet links likewise. An input starting with `magnet:` is a magnet link; one
starting with `info:` is an info dictionary fetched for a magnet link (BEP 9): it is cut into metadata
pieces, assembled, hash-checked against the magnet's info-hash and parsed like a torrent.

    .venv/bin/python fuzz/run.py metainfo [-max_total_time=60]
"""

from __future__ import annotations

import hashlib
import os
import posixpath

from torrentpy.engine.metadata import METADATA_PIECE, MetadataAssembler
from torrentpy.errors import MetainfoError
from torrentpy.metainfo import MAX_COMPONENT_BYTES, Metainfo, parse_info_dict, parse_magnet, parse_torrent

# The download folder the paths are resolved against (nothing is created there).
ROOT = "/download/folder"
_PEER = ("127.0.0.1", 6881)


def test_one_input(data: bytes) -> None:
    if data.startswith(b"magnet:"):
        _magnet(data.decode("latin-1"))
    elif data.startswith(b"info:"):
        _fetched_info(data[5:])
    else:
        try:
            meta = parse_torrent(data)
        except MetainfoError as exc:
            assert "\n" not in str(exc)
            return
        assert meta.info_bytes in data
        check_metainfo(meta)


def check_metainfo(meta: Metainfo) -> None:
    """What every accepted torrent must satisfy, however it arrived."""
    assert meta.info_hash == hashlib.sha1(meta.info_bytes).digest()
    assert meta.piece_length > 0 and meta.total_length > 0
    assert meta.num_pieces == -(-meta.total_length // meta.piece_length)
    assert len(meta.pieces) == 20 * meta.num_pieces
    assert sum(f.length for f in meta.files) == meta.total_length
    offset = 0
    for f in meta.files:
        assert f.offset == offset and f.length >= 0
        offset += f.length
        assert f.path[0] == meta.name
        for part in f.path:
            assert part not in ("", ".", ".."), f"unsafe path component {part!r} in {f.path}"
            assert "/" not in part and "\\" not in part and "\x00" not in part, f"unsafe path component {part!r}"
            assert len(part.encode("utf-8")) <= MAX_COMPONENT_BYTES
        # The path as the OS would resolve it (no symlinks involved) stays strictly inside the folder.
        resolved = posixpath.normpath(posixpath.join(ROOT, *f.path))
        assert resolved.startswith(ROOT + "/"), f"{f.path} escapes the download folder"
        assert os.path.isabs(resolved)
    real = [f.path for f in meta.files if not f.padding]
    assert len(set(real)) == len(real)
    meta.to_dict()


def _magnet(uri: str) -> None:
    try:
        magnet = parse_magnet(uri)
    except MetainfoError as exc:
        assert "\n" not in str(exc)
        return
    assert len(magnet.info_hash) == 20
    for _host, port in magnet.peers:
        assert 0 < port <= 0xFFFF
    magnet.to_dict()


def _fetched_info(info: bytes) -> None:
    """The route a magnet link's metadata takes: only bytes whose SHA-1 is the info-hash are accepted,
    and what is accepted is exactly those bytes."""
    if not info:
        return
    info_hash = hashlib.sha1(info).digest()
    assembler = MetadataAssembler(info_hash)
    if not assembler.set_size(len(info)):
        return
    pieces = [info[i : i + METADATA_PIECE] for i in range(0, len(info), METADATA_PIECE)]
    # A peer that flips one byte is caught by the hash check, and the assembly starts over.
    tampered = bytes([pieces[-1][0] ^ 1]) + pieces[-1][1:]
    results = [assembler.received(_PEER, i, len(info), p) for i, p in enumerate([*pieces[:-1], tampered])]
    assert results[-1] is False and not any(results[:-1])
    assembler = MetadataAssembler(info_hash)
    assembler.set_size(len(info))
    results = [assembler.received(_PEER, i, len(info), p) for i, p in enumerate(pieces)]
    assert results[-1] == info and not any(results[:-1])
    try:
        meta = parse_info_dict(info)
    except MetainfoError as exc:
        assert "\n" not in str(exc)
        return
    assert meta.info_bytes == info and meta.info_hash == info_hash
    check_metainfo(meta)
