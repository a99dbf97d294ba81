"""torrentpy against independent implementations: libtorrent 2.1 and Debian's mktorrent.

Torrents each side makes must load on the other with the same info-hash, pieces and files, and
`torrentpy verify` must judge every piece as libtorrent's own hash check does."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libtorrent as lt
import pytest

from torrentpy.metainfo import Metainfo, load, parse_torrent
from torrentpy.storage.checker import verify

pytestmark = [pytest.mark.interop, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PIECE = 16 * 1024
# Piece 2 spans three files (a.bin tail, c.bin, e.bin head); an empty file sits between two others;
# the last piece is short.
LAYOUT = {"a.bin": 2 * PIECE + PIECE // 2, "b/c.bin": 100, "b/d/empty.txt": 0, "b/d/e.bin": 3 * PIECE + 1234,
          "f.bin": PIECE // 3, "g/h/i.dat": 5 * PIECE}


def _payload(base: Path, single: bool = False) -> Path:
    rng = random.Random(42)
    if single:
        path = base / "single.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(7 * PIECE + 99))
        return path
    root = base / "multi"
    for rel, size in LAYOUT.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rng.randbytes(size))
    return root


def _torrentpy_create(path: Path, out: Path, *extra: str) -> Path:
    proc = subprocess.run([sys.executable, "-m", "torrentpy", "create", str(path), "-o", str(out),
                           "--piece-size", str(PIECE), *extra], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


def _lt_create(path: Path, out: Path, flags: Any = None) -> Path:
    """`flags=None` is libtorrent's default: a hybrid v1+v2 torrent with padding files."""
    entries = lt.list_files(str(path))
    ct = lt.create_torrent(entries, PIECE) if flags is None else lt.create_torrent(entries, PIECE, flags)
    ct.add_tracker("http://127.0.0.1:1/announce", 0)
    lt.set_piece_hashes(ct, str(path.parent))
    out.write_bytes(lt.bencode(ct.generate()))
    return out


def _mktorrent(path: Path, out: Path) -> Path:
    # mktorrent's smallest piece is 2^15 bytes.
    subprocess.run(["mktorrent", "-d", "-l", str((2 * PIECE).bit_length() - 1), "-a", "http://127.0.0.1:1/announce",
                    "-o", str(out), str(path)], check=True, capture_output=True, timeout=60)
    return out


def _lt_view(ti: Any) -> dict[str, Any]:
    fs = ti.files()
    return {
        "info_hash": bytes(ti.info_hashes().v1.to_bytes()),
        "num_pieces": ti.num_pieces(),
        "piece_length": ti.piece_length(),
        "total": ti.total_size(),
        "files": [(fs.file_path(i).replace(os.sep, "/"), fs.file_size(i)) for i in range(fs.num_files())
                  if not fs.file_flags(i) & fs.flag_pad_file],
    }


def _our_view(meta: Metainfo) -> dict[str, Any]:
    return {
        "info_hash": meta.info_hash,
        "num_pieces": meta.num_pieces,
        "piece_length": meta.piece_length,
        "total": meta.total_length,
        "files": [("/".join(f.path), f.length) for f in meta.files if not f.padding],
    }


@pytest.mark.parametrize("single", [False, True], ids=["folder", "single-file"])
def test_torrentpy_torrents_load_in_libtorrent(tmp_path: Path, single: bool) -> None:
    path = _payload(tmp_path / "data", single)
    out = _torrentpy_create(path, tmp_path / "ours.torrent", "-t", "http://127.0.0.1:1/a", "--private")
    ti = lt.torrent_info(str(out))
    meta = load(str(out))
    assert isinstance(meta, Metainfo)
    assert _lt_view(ti) == _our_view(meta)
    assert ti.priv()
    assert [t.url for t in ti.trackers()] == ["http://127.0.0.1:1/a"]
    for i in range(meta.num_pieces):
        assert bytes(ti.hash_for_piece(i)) == meta.piece_hash(i)


MAKERS: dict[str, Callable[[Path, Path], Path]] = {
    "libtorrent-v1": lambda p, o: _lt_create(p, o, lt.create_torrent.v1_only),
    "libtorrent-hybrid": lambda p, o: _lt_create(p, o),
    "mktorrent": _mktorrent,
}


@pytest.mark.parametrize("single", [False, True], ids=["folder", "single-file"])
@pytest.mark.parametrize("maker", list(MAKERS))
def test_foreign_torrents_parse_in_torrentpy(tmp_path: Path, maker: str, single: bool) -> None:
    path = _payload(tmp_path / "data", single)
    out = MAKERS[maker](path, tmp_path / f"{maker}.torrent")
    ti = lt.torrent_info(str(out))
    meta = parse_torrent(out.read_bytes())
    assert _lt_view(ti) == _our_view(meta)
    assert meta.hybrid == (maker == "libtorrent-hybrid" and ti.info_hashes().has_v2())
    assert meta.announce_urls() == ["http://127.0.0.1:1/announce"]
    # The data on disk is what these torrents describe: torrentpy's checker must agree.
    assert verify(meta, path.parent).complete


def _lt_session(port: int) -> Any:
    settings = {
        "listen_interfaces": f"127.0.0.1:{port}",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        "enable_ip_notifier": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "alert_mask": lt.alert.category_t.status_notification | lt.alert.category_t.error_notification,
    }
    return lt.session(settings)


def _lt_check(torrent: Path, save_path: Path, port: int, timeout_s: float = 60.0) -> list[bool]:
    """Pieces libtorrent finds good when it hash-checks `save_path` for `torrent`."""
    ses = _lt_session(port)
    try:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(str(torrent))
        atp.save_path = str(save_path)
        # Not auto-managed and paused after the check: it must only look at the files, never download.
        atp.flags = lt.torrent_flags.stop_when_ready
        handle = ses.add_torrent(atp)
        deadline = time.monotonic() + timeout_s
        while True:
            for alert in ses.pop_alerts():
                if isinstance(alert, lt.torrent_checked_alert):
                    return list(handle.status().pieces)
                if isinstance(alert, lt.torrent_error_alert):
                    raise AssertionError(f"libtorrent: {alert.message()}")
            if time.monotonic() > deadline:
                raise TimeoutError("libtorrent did not finish checking")
            ses.wait_for_alert(200)
    finally:
        del ses


def _flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))


def _damage(root: Path) -> None:
    _flip(root / "a.bin", 10)  # piece 0
    _flip(root / "b" / "c.bin", 50)  # piece 2, which spans three files
    _flip(root / "g" / "h" / "i.dat", 5 * PIECE - 1)  # the short last piece
    # A file cut short: the pieces it no longer covers are missing, not merely wrong.
    e = root / "b" / "d" / "e.bin"
    e.write_bytes(e.read_bytes()[: 2 * PIECE])


@pytest.mark.parametrize("maker", ["torrentpy", "libtorrent-hybrid"])
def test_verify_agrees_with_libtorrent_piece_by_piece(tmp_path: Path, maker: str,
                                                      free_port: Callable[[], int]) -> None:
    root = _payload(tmp_path / "data")
    if maker == "torrentpy":
        torrent = _torrentpy_create(root, tmp_path / "t.torrent")
    else:
        torrent = MAKERS[maker](root, tmp_path / "t.torrent")
    meta = load(str(torrent))
    assert isinstance(meta, Metainfo)
    _damage(root)

    theirs = _lt_check(torrent, root.parent, free_port())
    report = verify(meta, root.parent)
    ours = [report.have[i] for i in range(meta.num_pieces)]
    assert len(theirs) == meta.num_pieces
    assert ours == theirs
    assert 0 < sum(ours) < meta.num_pieces  # the damage did break some pieces and spared others

    argv = [sys.executable, "-m", "torrentpy", "verify", "--json", str(torrent), str(root.parent)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    summary = json.loads(proc.stdout)
    assert summary["good_pieces"] == sum(theirs)
    broken = {f["path"] for f in summary["files"] if not f["complete"]}
    assert {"multi/a.bin", "multi/b/c.bin", "multi/b/d/e.bin", "multi/g/h/i.dat"} <= broken


def test_verify_agrees_with_libtorrent_on_intact_data(tmp_path: Path, free_port: Callable[[], int]) -> None:
    root = _payload(tmp_path / "data")
    torrent = _mktorrent(root, tmp_path / "mk.torrent")
    meta = load(str(torrent))
    assert isinstance(meta, Metainfo)
    theirs = _lt_check(torrent, root.parent, free_port())
    assert all(theirs) and len(theirs) == meta.num_pieces
    assert verify(meta, root.parent).good_pieces == meta.num_pieces
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert lt.torrent_info(str(torrent)).num_pieces() == meta.num_pieces
