"""`torrentpy` as a user runs it: help, info, create, verify, and one-line errors."""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import torrentpy
from tests.tmpfs import Mount
from torrentpy.metainfo import Metainfo, load

HASH = bytes(range(20))


# The installed console script, as people run it.
TORRENTPY = Path(sys.executable).with_name("torrentpy")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.run([str(TORRENTPY), *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0, proc
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("torrentpy: ")
    return lines[0]


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    root = tmp_path / "data" / "album"
    rng = random.Random(5)
    for rel, size in {"one.bin": 100_000, "sub/two.bin": 50_000, "sub/empty": 0, "three.txt": 777}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rng.randbytes(size))
    return root


@pytest.fixture
def made(payload: Path, tmp_path: Path) -> Path:
    out = tmp_path / "album.torrent"
    proc = run("create", str(payload), "-o", str(out), "--piece-size", "16K", "-t", "http://127.0.0.1:1/a",
               "-t", "udp://127.0.0.1:2", "-w", "http://127.0.0.1:3/", "--comment", "hello there",
               "--private")
    assert proc.returncode == 0, proc.stderr
    assert "info-hash" in proc.stdout
    return out


def test_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"torrentpy {torrentpy.__version__}"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_top_level_help(flag: str) -> None:
    proc = run(flag)
    assert proc.returncode == 0
    for command in ("info", "create", "verify", "add"):
        assert command in proc.stdout


@pytest.mark.parametrize("command", ["info", "create", "verify", "add", "tracker"])
def test_command_help(command: str) -> None:
    proc = run(command, "-h")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: torrentpy {command}")


def test_no_command_prints_help_and_fails() -> None:
    proc = run()
    assert proc.returncode != 0
    assert "usage: torrentpy" in proc.stdout + proc.stderr


def test_create_writes_a_parsable_torrent(made: Path, payload: Path) -> None:
    meta = load(str(made))
    assert isinstance(meta, Metainfo)
    assert meta.name == "album" and meta.piece_length == 16384 and meta.private
    assert meta.trackers == (("http://127.0.0.1:1/a",), ("udp://127.0.0.1:2",))
    assert meta.web_seeds == ("http://127.0.0.1:3/",)
    assert meta.comment == "hello there"
    order = ["one.bin", "sub/empty", "sub/two.bin", "three.txt"]
    order.sort(key=lambda r: tuple(r.split("/")))
    blob = b"".join((payload / r).read_bytes() for r in order)
    want = b"".join(hashlib.sha1(blob[i : i + 16384]).digest() for i in range(0, len(blob), 16384))
    assert meta.pieces == want


def test_info_human(made: Path) -> None:
    meta = load(str(made))
    assert isinstance(meta, Metainfo)
    proc = run("info", str(made))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for needle in ("album", meta.info_hash_hex, "150,777 bytes", "10 × 16.0 KiB", "Private:     yes",
                   "tier 1: http://127.0.0.1:1/a", "tier 2: udp://127.0.0.1:2", "http://127.0.0.1:3/",
                   "hello there", "torrentpy/", "one.bin", "two.bin", "three.txt", "sub/"):
        assert needle in out, (needle, out)


def test_info_json(made: Path) -> None:
    meta = load(str(made))
    assert isinstance(meta, Metainfo)
    proc = run("info", "--json", str(made))
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["name"] == "album"
    assert d["info_hash"] == meta.info_hash_hex
    assert d["total_size"] == 150_777
    assert d["piece_length"] == 16384
    assert d["piece_count"] == 10
    assert d["private"] is True
    assert d["hybrid"] is False
    assert d["trackers"] == [["http://127.0.0.1:1/a"], ["udp://127.0.0.1:2"]]
    assert d["web_seeds"] == ["http://127.0.0.1:3/"]
    assert d["comment"] == "hello there"
    assert d["created_by"].startswith("torrentpy/")
    assert isinstance(d["creation_date"], int)
    assert d["files"] == [
        {"path": "album/one.bin", "size": 100_000},
        {"path": "album/sub/empty", "size": 0},
        {"path": "album/sub/two.bin", "size": 50_000},
        {"path": "album/three.txt", "size": 777},
    ]


def test_info_magnet() -> None:
    uri = f"magnet:?xt=urn:btih:{HASH.hex()}&dn=thing&tr=udp://127.0.0.1:9&x.pe=127.0.0.1:7"
    proc = run("info", uri)
    assert proc.returncode == 0, proc.stderr
    assert HASH.hex() in proc.stdout and "thing" in proc.stdout and "127.0.0.1:7" in proc.stdout
    d = json.loads(run("info", "--json", uri).stdout)
    assert d["info_hash"] == HASH.hex() and d["name"] == "thing" and d["trackers"] == [["udp://127.0.0.1:9"]]


def test_create_then_verify(made: Path, payload: Path) -> None:
    proc = run("verify", str(made), str(payload.parent))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "10/10" in proc.stdout and "complete" in proc.stdout
    d = json.loads(run("verify", "--json", str(made), str(payload.parent)).stdout)
    assert d["complete"] is True and d["good_pieces"] == d["total_pieces"] == 10


def test_verify_corrupt_byte_names_the_file(made: Path, payload: Path) -> None:
    target = payload / "one.bin"  # byte 50,000 lies in piece 3, which holds only one.bin
    data = bytearray(target.read_bytes())
    data[50_000] ^= 0xFF
    target.write_bytes(bytes(data))
    proc = run("verify", str(made), str(payload.parent))
    assert proc.returncode not in (0, None), proc.stdout
    assert "Traceback" not in proc.stderr
    assert "9/10" in proc.stdout
    incomplete = [line for line in proc.stdout.splitlines() if "incomplete:" in line]
    assert len(incomplete) == 1 and "one.bin" in incomplete[0]
    d = json.loads(run("verify", "--json", str(made), str(payload.parent)).stdout)
    assert d["complete"] is False
    assert [f["path"] for f in d["files"] if not f["complete"]] == ["album/one.bin"]


def test_verify_missing_file(made: Path, payload: Path) -> None:
    (payload / "sub" / "two.bin").unlink()
    proc = run("verify", str(made), str(payload.parent))
    assert proc.returncode != 0
    assert "two.bin" in proc.stdout


def test_create_refuses_to_overwrite(made: Path, payload: Path) -> None:
    one_line_error(run("create", str(payload), "-o", str(made)))
    proc = run("create", str(payload), "-o", str(made), "-f")
    assert proc.returncode == 0, proc.stderr


def test_create_default_output_name(payload: Path, tmp_path: Path) -> None:
    proc = run("create", str(payload), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "album.torrent").is_file()


@pytest.fixture
def garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.torrent"
    path.write_bytes(b"\x00\x01 definitely not bencoding")
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["info", "{tmp}/missing.torrent"],
        ["info", "{garbage}"],
        ["info", "{tmp}"],
        ["info", "magnet:?xt=urn:btih:nothex"],
        ["info", "magnet:?dn=no-hash"],
        ["info", "magnet:?xt=urn:btih:" + "é" * 32],
        ["info", "magnet:?xt=urn:btih:a%0Ab"],
        ["info", "--no-such-option", "x"],
        ["--no-such-option"],
        ["frobnicate"],
        ["info"],
        ["verify", "{garbage}", "{tmp}"],
        ["verify", "{tmp}/missing.torrent", "{tmp}"],
        ["verify", f"magnet:?xt=urn:btih:{HASH.hex()}", "{tmp}"],
        ["create", "{tmp}/missing-folder"],
        ["create", "{tmp}", "--piece-size", "banana"],
        ["create", "{tmp}", "--piece-size", "1000"],
    ],
)
def test_bad_input_is_one_line(argv: list[str], tmp_path: Path, garbage: Path) -> None:
    (tmp_path / "somefile").write_bytes(b"x")
    args = [a.format(tmp=tmp_path, garbage=garbage) for a in argv]
    one_line_error(run(*args, cwd=tmp_path))


def test_verify_missing_folder(made: Path, tmp_path: Path) -> None:
    line = one_line_error(run("verify", str(made), str(tmp_path / "nowhere")))
    assert "nowhere" in line


# --- errors found before anything starts -------------------------------------------


def test_create_without_a_tracker_warns_that_only_the_dht_finds_peers(payload: Path, tmp_path: Path) -> None:
    proc = run("create", str(payload), "-o", str(tmp_path / "lonely.torrent"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "torrentpy: warning: no tracker (-t URL): peers can find each other only on the DHT or when given "
        "their addresses (torrentpy add --peer IP:PORT)"]
    assert (tmp_path / "lonely.torrent").is_file()


def test_create_private_without_a_tracker_warns_that_nobody_can_find_it(payload: Path, tmp_path: Path) -> None:
    proc = run("create", str(payload), "--private", "-o", str(tmp_path / "lonely.torrent"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "torrentpy: warning: no tracker (-t URL) for a private torrent: nobody can find peers for it unless "
        "given their addresses (torrentpy add --peer IP:PORT)"]


def test_create_into_a_missing_folder_is_an_io_error(payload: Path, tmp_path: Path) -> None:
    out = tmp_path / "nowhere" / "x.torrent"
    proc = run("create", str(payload), "-o", str(out), "-t", "http://127.0.0.1:1/a")
    assert proc.returncode == 1
    assert one_line_error(proc) == f"torrentpy: error: cannot write {out}: there is no folder {out.parent}"


def test_add_into_a_file_says_so(made: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    proc = run("add", str(made), "-o", "notes.txt", "--no-tui", cwd=tmp_path)
    assert proc.returncode == 1
    assert one_line_error(proc) == f"torrentpy: error: {tmp_path}/notes.txt is a file, not a folder"
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_add_into_a_read_only_folder_fails_at_once(made: Path, tmpfs: Mount) -> None:
    disk = tmpfs("ro", 1 << 20, read_only=True)
    proc = run("add", str(made), "--no-tui", cwd=disk)  # the default folder: here
    assert proc.returncode == 1
    assert one_line_error(proc) == f"torrentpy: error: cannot write to {disk}: read-only file system"
    assert proc.stdout == "", "it started before refusing"


def test_max_peers_zero_is_refused(made: Path, tmp_path: Path) -> None:
    proc = run("add", str(made), "--max-peers", "0", "--no-tui", cwd=tmp_path)
    assert proc.returncode == 2
    assert one_line_error(proc) == "torrentpy: error: --max-peers must be at least 1"


def test_a_taken_listen_port_is_named(made: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run("add", str(made), "--bind", "127.0.0.1", "--listen-port", str(port), "--no-tui", cwd=tmp_path)
    assert proc.returncode == 2
    assert one_line_error(proc) == f"torrentpy: error: cannot listen on 127.0.0.1:{port}: address already in use"
