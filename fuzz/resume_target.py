"""Fuzz target for resume files (storage/resume.py): whatever lies in `.torrentpy/<hash>.resume`, loading
returns None or a bitfield of the torrent's size, never raises; a piece is trusted only if the record
names it and every file holding it is unchanged on disk.

Byte 0 even: the rest is the whole file, as found. Byte 0 odd: the rest is the record without its
checksum; the target adds the right `sha1` (when it decodes as a dict) so the fuzzer gets past the
checksum into the field checks.

    .venv/bin/python fuzz/run.py resume [-max_total_time=60]
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile

from torrentpy import bencoding
from torrentpy.errors import BencodeError
from torrentpy.metainfo import parse_torrent
from torrentpy.storage.layout import Layout
from torrentpy.storage.resume import load_resume, resume_path, resume_state

_PIECE = 16384
# Two files, three pieces, the middle piece spanning both: file a holds pieces 0-1, b holds 1-2.
_INFO = (b"d5:filesld6:lengthi20000e4:pathl1:aeed6:lengthi20000e4:pathl1:beee4:name3:dir"
         b"12:piece lengthi16384e6:pieces60:" + bytes(60) + b"e")
META = parse_torrent(b"d4:info" + _INFO + b"e")
LAYOUT = Layout(META)

# The download folder is made once (data files with fixed times) and the resume file rewritten per input.
ROOT = tempfile.mkdtemp(prefix="torrentpy-fuzz-resume-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
atexit.register(shutil.rmtree, ROOT, True)
os.makedirs(os.path.join(ROOT, "dir"))
os.makedirs(os.path.join(ROOT, ".torrentpy"))
for _name in ("a", "b"):
    _path = os.path.join(ROOT, "dir", _name)
    with open(_path, "wb") as _fh:
        _fh.write(bytes(20000))
    os.utime(_path, ns=(1_000_000_000, 1_000_000_000))
STATS = [[20000, 1_000_000_000], [20000, 1_000_000_000]]
PATH = resume_path(META, ROOT)


def _with_checksum(record: bytes) -> bytes:
    try:
        value = bencoding.decode(record)
    except BencodeError:
        return record
    if not isinstance(value, dict):
        return record
    value.pop(b"sha1", None)
    value[b"sha1"] = hashlib.sha1(bencoding.encode(value)).digest()
    return bencoding.encode(value)


def _record(data: bytes) -> dict[bytes, object] | None:
    try:
        value = bencoding.decode(data)
    except BencodeError:
        return None
    return value if isinstance(value, dict) else None


def test_one_input(data: bytes) -> None:
    if not data:
        return
    content = _with_checksum(data[1:]) if data[0] & 1 else data[1:]
    with open(PATH, "wb") as fh:
        fh.write(content)
    have = load_resume(META, ROOT)
    state = resume_state(META, ROOT)
    record = _record(content)
    if state is None:
        assert have is None, "load_resume trusts a record resume_state refused"
        return
    assert record is not None and record[b"info_hash"] == META.info_hash
    assert len(state.saved_have) == META.num_pieces and record[b"bitfield"] == state.saved_have.to_bytes()
    files = record[b"files"]
    assert isinstance(files, list)
    for piece in state.have:
        assert state.saved_have[piece]
        for index in LAYOUT.files_of_piece(piece):
            assert files[index] == STATS[index], f"piece {piece} trusted though file {index} differs"
    if have is not None:
        assert have == state.saved_have and have == state.have, "pieces trusted on a changed file"
