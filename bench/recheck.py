"""Recheck speed: torrentpy's checker, libtorrent's check of an added torrent, and plain hashlib.

Each side runs in a fresh process over the same file, whose pages are in the page cache (it was just
written, and each side reads it in full before the timed runs start), and reports the seconds its check
took, from the call to the last piece. `python bench/recheck.py [MIB] [ROUNDS]` prints one JSON line.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PIECE = 1024 * 1024

TORRENTPY = """
import sys, time
from torrentpy.metainfo import load
from torrentpy.storage.checker import verify
meta = load(sys.argv[1])
start = time.monotonic()
report = verify(meta, sys.argv[2])
elapsed = time.monotonic() - start
assert report.complete, report.good_pieces
print(elapsed)
"""

# libtorrent's defaults (one hashing thread in 2.x), as a user gets them: the torrent is added over
# its complete files and checked; the clock runs from add_torrent to the end of the check.
LIBTORRENT = """
import sys, time
import libtorrent as lt
s = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                "enable_upnp": False, "enable_natpmp": False, "enable_ip_notifier": False})
p = lt.add_torrent_params()
p.ti = lt.torrent_info(sys.argv[1])
p.save_path = sys.argv[2]
start = time.monotonic()
h = s.add_torrent(p)
deadline = start + 600
while time.monotonic() < deadline:
    st = h.status()
    if st.is_seeding or st.errc.value():
        break
    time.sleep(0.002)
elapsed = time.monotonic() - start
assert st.is_seeding, st.errc.message()
print(elapsed)
"""

HASHLIB = """
import hashlib, os, sys, time
from torrentpy.metainfo import load
meta = load(sys.argv[1])
path = os.path.join(sys.argv[2], *meta.files[0].path)
start = time.monotonic()
good = 0
with open(path, "rb", buffering=0) as fh:
    buf = bytearray(meta.piece_length)
    for i in range(meta.num_pieces):
        n = fh.readinto(buf)
        good += hashlib.sha1(memoryview(buf)[:n]).digest() == meta.piece_hash(i)
elapsed = time.monotonic() - start
assert good == meta.num_pieces
print(elapsed)
"""

SIDES = {"torrentpy": TORRENTPY, "libtorrent": LIBTORRENT, "hashlib": HASHLIB}


def make_payload(folder: Path, mib: int) -> tuple[Path, Path]:
    """(torrent, save folder) for one file of `mib` MiB with distinct 1 MiB pieces."""
    save = folder / "save"
    data = save / "recheck.bin"
    data.parent.mkdir(parents=True, exist_ok=True)
    with open(data, "wb") as fh:
        chunk = bytearray(os.urandom(PIECE))
        for i in range(mib):
            chunk[:8] = i.to_bytes(8, "little")
            fh.write(chunk)
    torrent = folder / "recheck.torrent"
    subprocess.run([sys.executable, "-P", "-m", "torrentpy", "create", str(data), "--piece-size", str(PIECE),
                    "-o", str(torrent)], check=True, stdout=subprocess.DEVNULL)
    return torrent, save


def time_side(side: str, torrent: Path, save: Path) -> float:
    out = subprocess.run([sys.executable, "-P", "-c", SIDES[side], str(torrent), str(save)],
                         check=True, capture_output=True, text=True, timeout=600)
    return float(out.stdout.strip().splitlines()[-1])


def run(mib: int = 1024, rounds: int = 3) -> dict[str, float]:
    """Median seconds per side; sides alternate within each round so load swings hit all of them."""
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="recheck-bench-") as work:
        torrent, save = make_payload(Path(work), mib)
        time_side("hashlib", torrent, save)  # warm the page cache
        for _ in range(rounds):
            for side in SIDES:
                times[side].append(time_side(side, torrent, save))
    return {side: statistics.median(v) for side, v in times.items()}


if __name__ == "__main__":
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    result = run(mib, int(sys.argv[2]) if len(sys.argv) > 2 else 3)
    print(json.dumps({**result, "MB/s": {k: round(mib * PIECE / v / 1e6) for k, v in result.items()}}))
