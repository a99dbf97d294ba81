"""Write the committed seed corpora under fuzz/corpus/ from real data (run from the repository root):

    .venv/bin/python -m fuzz.make_corpus

torrents made by libtorrent and mktorrent, the answers torrentpy's built-in tracker really gives,
the requests torrentpy's tracker clients really send, a resume file as torrentpy saves it. The wire
captures of real libtorrent and aria2 seeders come from tests/interop/test_wire_capture.py
(TORRENTPY_RECORD_CORPUS=1); this script adds their magnet-mode and split variants.
Deterministic: the same tools give the same files.
"""

from __future__ import annotations

import dataclasses
import struct
import tempfile
from pathlib import Path

from aiohttp.test_utils import make_mocked_request

from fuzz import resume_target, tracker_server_target
from fuzz.run import corpus_dir
from tests.interop.peers.payload import make_payload, make_torrent_libtorrent, make_torrent_mktorrent
from torrentpy import bencoding
from torrentpy._core import Bitfield
from torrentpy.metainfo import parse_torrent
from torrentpy.protocol import extension
from torrentpy.protocol import tracker_udp as udp
from torrentpy.protocol.tracker_http import AnnounceRequest, build_announce_url, build_scrape_url
from torrentpy.storage.resume import resume_path, save_resume

PIECE = 16384


def _write(target: str, name: str, data: bytes) -> None:
    path = corpus_dir(target)
    path.mkdir(parents=True, exist_ok=True)
    (path / name).write_bytes(data)


def torrents(work: Path) -> list[bytes]:
    single = make_payload(work / "single", 3 * PIECE + 1000, name="single.bin")
    multi = make_payload(work / "multi", {"a.txt": 20000, "sub/b.bin": 9000, "sub/deeper/c": 1, "empty": 0},
                         name="multi")
    out = []
    trackers = ["http://127.0.0.1:6969/announce", "udp://127.0.0.1:6969/announce"]
    for payload, label in ((single, "single"), (multi, "multi")):
        for maker in ("libtorrent", "mktorrent"):
            make = make_torrent_libtorrent if maker == "libtorrent" else make_torrent_mktorrent
            # mktorrent's smallest piece is 32 KiB.
            piece = PIECE if maker == "libtorrent" else 2 * PIECE
            raw = make(payload.root, piece, trackers, work / f"{label}-{maker}.torrent").read_bytes()
            _write("metainfo", f"{maker}-{label}.torrent", raw)
            _write("metainfo", f"{maker}-{label}.info", b"info:" + parse_torrent(raw).info_bytes)
            _write("bencode", f"{maker}-{label}.torrent", raw)
            out.append(raw)
    meta = parse_torrent(out[0])
    _write("metainfo", "magnet-full.txt", (
        f"magnet:?xt=urn:btih:{meta.info_hash_hex}&dn=single.bin&tr=udp%3A%2F%2F127.0.0.1%3A6969"
        "&x.pe=127.0.0.1:6881&x.pe=[::1]:6881&ws=http://127.0.0.1/seed").encode())
    _write("metainfo", "magnet-base32.txt", b"magnet:?xt=urn:btih:AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT&xt=urn:btmh:1220ab")
    return out


def tracker_answers() -> None:
    """Real answers of the built-in tracker (tracker/server.py), and real requests of our clients."""
    server = tracker_server_target._SERVER
    req = AnnounceRequest(info_hash=b"\x11" * 20, peer_id=b"-TP0001-abcdefghijkl", port=6881,
                          uploaded=0, downloaded=0, left=100, event="started")
    for i, compact in enumerate((True, False)):
        for port in (6881, 6882, 6883):
            url = build_announce_url("http://127.0.0.1:6969/announce",
                                     dataclasses.replace(req, port=port, compact=compact))
            query = url.split("?", 1)[1]
            _write("tracker_server", f"announce-{i}-{port}.txt", b"\x00" + query.encode())
            response = tracker_server_target._run(server._handle_announce(
                make_mocked_request("GET", f"/announce?{query}", transport=tracker_server_target._Transport())))
            _write("tracker", f"http-announce-{'compact' if compact else 'dict'}.bin", b"\x00" + response.body)
            _write("bencode", f"http-announce-{'compact' if compact else 'dict'}.bin", response.body)
    query = build_scrape_url("http://127.0.0.1:6969/scrape", [b"\x11" * 20, b"\x22" * 20]).split("?", 1)[1]
    _write("tracker_server", "scrape.txt", b"\x01" + query.encode())
    response = tracker_server_target._run(server._handle_scrape(
        make_mocked_request("GET", f"/scrape?{query}", transport=tracker_server_target._Transport())))
    _write("tracker", "http-scrape.bin", b"\x01" + response.body)
    _write("tracker", "http-failure.bin", b"\x00" + bencoding.encode({b"failure reason": b"unregistered torrent"}))
    _write("tracker", "http-peers6.bin", b"\x00" + bencoding.encode(
        {b"interval": 1800, b"peers": b"", b"peers6": bytes(15) + b"\x01\x1a\xe1", b"warning message": b"hi"}))

    # UDP: our client's real datagrams for the server, the server's real answers for the client.
    for mode, addr, ipv6 in ((2, tracker_server_target._ADDR4, False), (3, tracker_server_target._ADDR6, True)):
        client = udp.UdpTrackerClient(ipv6=ipv6)
        client.begin_announce(req)
        connect = client.next_datagram(0.0)
        connected = server.handle_datagram(connect, addr, ipv6)
        assert connected is not None
        _write("tracker_server", f"udp-connect-{mode}.bin", bytes([mode]) + connect)
        client.receive_datagram(connected, 0.0)
        announce = client.next_datagram(1.0)
        answer = server.handle_datagram(announce, addr, ipv6)
        assert answer is not None
        _write("tracker_server", f"udp-announce-{mode}.bin", bytes([mode]) + announce)
        _write("tracker", f"udp-announce-{mode}.bin",
               bytes([mode]) + struct.pack(">H", len(connected)) + connected + answer)
    client = udp.UdpTrackerClient()
    client.begin_scrape([b"\x11" * 20, b"\x22" * 20])
    connect = client.next_datagram(0.0)
    connected = server.handle_datagram(connect, tracker_server_target._ADDR4, False)
    assert connected is not None
    client.receive_datagram(connected, 0.0)
    scrape = client.next_datagram(1.0)
    answer = server.handle_datagram(scrape, tracker_server_target._ADDR4, False)
    assert answer is not None
    _write("tracker_server", "udp-scrape.bin", b"\x02" + scrape)
    _write("tracker", "udp-scrape.bin", b"\x04" + struct.pack(">H", len(connected)) + connected + answer)


def resume_files() -> None:
    meta, root = resume_target.META, resume_target.ROOT
    for bits in ("101", "111", "000"):
        save_resume(meta, root, Bitfield.from_string(bits))
        raw = Path(resume_path(meta, root)).read_bytes()
        _write("resume", f"saved-{bits}.bin", b"\x00" + raw)
        record = bencoding.decode(raw)
        del record[b"sha1"]
        _write("resume", f"record-{bits}.bin", b"\x01" + bencoding.encode(record))


def peer_variants() -> None:
    """The recorded seeder captures replayed as a magnet link's connection (size known only later)."""
    for capture in sorted(corpus_dir("peer").glob("*-seeder.bin")):
        raw = capture.read_bytes()
        _write("peer", capture.name.replace("-seeder", "-seeder-magnet"), bytes([raw[0] | 4]) + raw[1:])
        _write("peer", capture.name.replace("-seeder", "-seeder-head"), raw[:16 + 400])


def core_seeds() -> None:
    _write("core", "bitfield-10.bin", b"\x00\x00\x0a" + Bitfield.from_string("1011000001").to_bytes())
    _write("core", "bitfield-64.bin", b"\x00\x00\x40" + bytes([0xFF, 0, 0xAA, 0x55, 1, 2, 3, 0x80]))
    _write("core", "verify-3.bin", b"\x01\x03piece one\x00piece two\x00\x00")
    _write("core", "verify-mismatch.bin", b"\x07\x05abc\x00def\x00ghi")


def extension_seeds() -> None:
    """ut_metadata and PEX payloads as torrentpy's encoders write them (byte 0 picks the parser)."""
    info = parse_torrent((corpus_dir("metainfo") / "libtorrent-multi.torrent").read_bytes()).info_bytes
    _write("extension", "metadata-request.bin", b"\x01" + extension.encode_metadata_request(0))
    _write("extension", "metadata-data.bin", b"\x01" + extension.encode_metadata_data(0, len(info), info))
    _write("extension", "metadata-reject.bin", b"\x01" + extension.encode_metadata_reject(2))
    _write("extension", "pex.bin", b"\x02" + extension.encode_pex(
        [("127.0.0.1", 6881), ("::1", 6882), ("10.0.0.1", 51413)], [("127.0.0.2", 6881)]))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        torrents(Path(tmp))
    tracker_answers()
    resume_files()
    peer_variants()
    core_seeds()
    extension_seeds()


if __name__ == "__main__":
    main()
