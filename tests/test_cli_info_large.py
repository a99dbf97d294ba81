"""`torrentpy info` on a torrent of 100,000 files, run as people run it: the installed script, from a
temporary folder. The torrent is built as a dictionary; no file is created on disk."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from torrentpy.bencoding import encode

COUNT = 100_000
PIECE = 16 * 1024
SCRIPT = Path(sys.executable).with_name("torrentpy")


def _path(i: int) -> list[bytes]:
    return [f"dir{i // 1000:03d}".encode(), f"file{i:06d}.bin".encode()]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = [{b"length": 1, b"path": _path(i)} for i in range(COUNT)]
    pieces = b"".join(hashlib.sha1(i.to_bytes(4, "big")).digest() for i in range(-(-COUNT // PIECE)))
    info = {b"name": b"many", b"piece length": PIECE, b"files": files, b"pieces": pieces}
    out = tmp_path_factory.mktemp("big") / "many.torrent"
    out.write_bytes(encode({b"announce": b"http://127.0.0.1:1/announce", b"info": info}))
    return out


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # LINES: what rich takes for the screen height off a terminal (25 when unset).
    env = {**os.environ, "COLUMNS": "120", "LINES": "25", "NO_COLOR": "1"}
    # 20 s bounds a hung run only: a correct one takes about a second even on a loaded 2-core machine.
    proc = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=20, cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc


def test_info_summarises_a_huge_file_list(big: Path, tmp_path: Path) -> None:
    out = run("info", str(big), cwd=tmp_path).stdout
    lines = out.splitlines()
    assert "Name:        many" in lines
    assert "Total size:  97.7 KiB (100,000 bytes)" in lines
    tree = lines[lines.index("Files:") + 1 :]
    assert tree[0] == "many/"
    assert tree[1] == "└── dir000/"
    shown = [line for line in tree if line.endswith(".bin  1 B")]
    assert shown[0] == "    ├── file000000.bin  1 B"
    assert shown[-1] == "    └── file000019.bin  1 B"
    assert len(shown) == 20
    assert tree[-1] == f"… and {COUNT - 20:,} more files (use --files)"
    assert len(lines) < 60


def test_info_files_lists_every_file(big: Path, tmp_path: Path) -> None:
    out = run("info", "--files", str(big), cwd=tmp_path).stdout
    lines = out.splitlines()
    tree = lines[lines.index("Files:") + 1 :]
    assert tree[0] == "many/"
    folders = [line for line in tree if line.endswith("/")][1:]
    assert folders == [f"├── dir{d:03d}/" for d in range(99)] + ["└── dir099/"]
    names = [line.split("── ")[1] for line in tree if line.endswith("  1 B")]
    assert names == [f"file{i:06d}.bin  1 B" for i in range(COUNT)]
    assert tree.index("├── dir001/") == 1002  # the root, dir000/ and its 1,000 files come first
    assert tree[1001] == "│   └── file000999.bin  1 B"
    assert tree[-1] == "    └── file099999.bin  1 B"
    assert "more files" not in out


def test_info_json_lists_every_file(big: Path, tmp_path: Path) -> None:
    d = json.loads(run("info", "--json", str(big), cwd=tmp_path).stdout)
    assert d["name"] == "many" and d["total_size"] == COUNT
    assert len(d["files"]) == COUNT
    assert d["files"][12_345] == {"path": "many/dir012/file012345.bin", "size": 1}
    assert d["files"][-1] == {"path": "many/dir099/file099999.bin", "size": 1}


def test_small_torrent_shows_its_whole_tree(tmp_path: Path) -> None:
    files = [{b"length": 1, b"path": _path(i)} for i in range(15)]
    info = {b"name": b"few", b"piece length": PIECE, b"files": files,
            b"pieces": hashlib.sha1(b"x").digest()}
    torrent = tmp_path / "few.torrent"
    torrent.write_bytes(encode({b"info": info}))
    out = run("info", str(torrent), cwd=tmp_path).stdout
    assert "more files" not in out
    assert out.count(".bin  1 B") == 15
