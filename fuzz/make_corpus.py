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
import zlib
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


def http1_seeds() -> None:
    """Real answers of the built-in tracker as aiohttp writes them on the wire (read back over loopback),
    and the same bodies reframed the ways other trackers send them: chunked, gzip, after a 100 Continue,
    until the connection closes; plus a gzip bomb (1 MiB of zeros in about 1 KiB)."""
    import asyncio
    import gzip
    import socket

    from aiohttp import web

    async def capture() -> list[bytes]:
        server = tracker_server_target._SERVER
        app = web.Application()
        app.router.add_get("/announce", server._handle_announce)
        app.router.add_get("/scrape", server._handle_scrape)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        req = AnnounceRequest(info_hash=b"\x11" * 20, peer_id=b"-TP0001-abcdefghijkl", port=6881,
                              uploaded=0, downloaded=0, left=100, event="started")
        targets = [build_announce_url("http://x/announce", req).split("x", 1)[1],
                   build_scrape_url("http://x/scrape", [b"\x11" * 20]).split("x", 1)[1], "/announce?bad"]
        out = []
        for target in targets:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, family=socket.AF_INET)
            writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            out.append(await reader.read())
            writer.close()
        await runner.cleanup()
        return out

    answers = asyncio.run(capture())
    for name, raw in zip(("announce", "scrape", "failure"), answers, strict=True):
        _write("http1", f"aiohttp-{name}.bin", b"\x00\x01" + raw)
    head, _, body = answers[0].partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + 50]), body[i : i + 50]) for i in range(0, len(body), 50))
    _write("http1", "chunked.bin", b"\x01\x00" + status + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
           + b"0\r\nX-Trailer: 1\r\n\r\n")
    packed = gzip.compress(body, mtime=0)
    _write("http1", "gzip.bin", b"\x02\x00" + status + b"\r\nContent-Encoding: gzip\r\nContent-Length: "
           + str(len(packed)).encode() + b"\r\n\r\n" + packed)
    _write("http1", "continue-until-eof.bin", b"\x03\x01HTTP/1.1 100 Continue\r\n\r\n" + status
           + b"\nContent-Encoding: deflate\n\n" + zlib.compress(body))
    bomb = gzip.compress(bytes(1 << 20), mtime=0)
    _write("http1", "gzip-bomb.bin", b"\x04\x00" + status + b"\r\nContent-Encoding: gzip\r\nTransfer-Encoding: "
           b"chunked\r\n\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(bomb), bomb))


def krpc_seeds() -> None:
    """KRPC as real libtorrent DHT nodes send it, recorded on loopback: three nodes of
    tests/interop/peers/lt_dht.py (127.0.0.2-4) answer our ping, find_node, get_peers and announce_peer,
    and query us back. Each seed for the `dht` target is records of (flags, address, length, datagram):
    the answers are fed as answers to the node's own pending queries, the queries as from strangers."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    from torrentpy.protocol import krpc

    port = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.2", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        status = Path(tmp) / "status.json"
        proc = subprocess.Popen([sys.executable, "-m", "tests.interop.peers.lt_dht", "--nodes", "3",
                                 "--base-port", str(port), "--status-file", str(status)])
        got: list[bytes] = []
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(0.5)
            our_id, info_hash = bytes(range(20)), b"\x5a" * 20
            time.sleep(3.0)
            token = b""
            for round_ in range(6):
                for i in range(3):
                    addr = (f"127.0.0.{i + 2}", port)
                    tid = bytes([round_, i])
                    sock.sendto(krpc.ping(tid, our_id), addr)
                    sock.sendto(krpc.find_node(tid, our_id, info_hash), addr)
                    sock.sendto(krpc.get_peers(tid, our_id, info_hash), addr)
                    if token:
                        sock.sendto(krpc.announce_peer(tid, our_id, info_hash, 6881, token), addr)
                deadline = time.monotonic() + 1.0
                while time.monotonic() < deadline:
                    try:
                        data, _ = sock.recvfrom(4096)
                    except TimeoutError:
                        continue
                    got.append(data)
                    msg = krpc.decode(data)
                    if isinstance(msg, krpc.Response) and msg.token:
                        token = msg.token
            sock.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    seen: dict[str, bytes] = {}
    for data in got:
        msg = krpc.decode(data)
        kind = type(msg).__name__ if msg is not None else "malformed"
        if isinstance(msg, krpc.Response):
            kind += "-nodes" if msg.nodes else ""
            kind += "-values" if msg.values else ""
            kind += "-token" if msg.token else ""
        seen.setdefault(kind, data)
    assert seen, "libtorrent's DHT nodes answered nothing"
    for kind, data in sorted(seen.items()):
        _write("dht", f"libtorrent-{kind.lower()}.bin", _dht_record(data, reply=isinstance(
            krpc.decode(data), krpc.Response | krpc.ErrorReply), src=2))
    # One longer session: every recorded answer as answers to our queries, every query from 8 addresses.
    session = b"".join(_dht_record(d, reply=isinstance(krpc.decode(d), krpc.Response | krpc.ErrorReply),
                                   src=17 * n % 256, step=n % 3) for n, d in enumerate(got[:40]))
    _write("dht", "libtorrent-session.bin", session)


def _dht_record(datagram: bytes, *, reply: bool, src: int, step: int = 0) -> bytes:
    return bytes([int(reply) | step << 1, src]) + struct.pack(">H", len(datagram)) + datagram


def dht_codec_seeds() -> None:
    """Queries of every kind as torrentpy's codec writes them, from strangers, with a clock that runs."""
    from torrentpy.protocol import krpc

    peer_id, info_hash = b"\x77" * 20, b"\x5a" * 20
    queries = [krpc.ping(b"aa", peer_id), krpc.find_node(b"ab", peer_id, info_hash),
               krpc.get_peers(b"ac", peer_id, info_hash),
               krpc.announce_peer(b"ad", peer_id, info_hash, 6881, b"12345678", implied_port=True),
               krpc.encode_query(b"ae", "vote", {b"id": peer_id}, read_only=True),
               krpc.encode_error(b"af", krpc.ERROR_PROTOCOL, "bad token")]
    _write("dht", "codec-queries.bin", b"".join(_dht_record(q, reply=False, src=n * 37 % 256, step=n % 2)
                                                for n, q in enumerate(queries)))
    nodes = [krpc.Node(bytes([n]) * 20, (f"10.1.0.{n}", 6881)) for n in range(1, 9)]
    answer = krpc.encode_response(b"zz", peer_id, nodes=nodes, values=[("10.2.0.1", 6881)], token=b"tok")
    _write("dht", "codec-answer.bin", _dht_record(answer, reply=True, src=0) + b"\x0e\x00\x00\x00")


def rpc_seeds() -> None:
    """Requests as Transmission front ends send them (transmission-remote's methods and arguments), one
    torrent-add of a real torrent made by libtorrent (base64 metainfo), one of a magnet link."""
    import base64
    import json

    torrent = (corpus_dir("metainfo") / "libtorrent-multi.torrent").read_bytes()
    magnet = (corpus_dir("metainfo") / "magnet-full.txt").read_text()
    requests: dict[str, dict[str, object]] = {
        "session-get": {"method": "session-get", "tag": 1},
        "session-set": {"method": "session-set", "arguments": {"speed-limit-down": 100,
                        "speed-limit-down-enabled": True, "download-dir": "/downloads/new"}},
        "session-stats": {"method": "session-stats"},
        "free-space": {"method": "free-space", "arguments": {"path": "/downloads"}},
        "add-metainfo": {"method": "torrent-add", "arguments": {"metainfo": base64.b64encode(torrent).decode(),
                         "download-dir": "/downloads/other", "paused": True, "files-unwanted": [1]}},
        "add-magnet": {"method": "torrent-add", "arguments": {"filename": magnet, "paused": True}},
        "torrent-get": {"method": "torrent-get", "arguments": {"fields": ["id", "name", "files", "fileStats",
                        "priorities", "wanted", "downloadDir", "status", "trackerStats", "peers"],
                        "ids": "recently-active", "format": "table"}, "tag": 7},
        "torrent-set": {"method": "torrent-set", "arguments": {"ids": [1], "files-wanted": [0],
                        "priority-high": [], "peer-limit": 20, "labels": ["a"], "seedRatioMode": 1,
                        "seedRatioLimit": 1.5}},
        "set-location": {"method": "torrent-set-location", "arguments": {"ids": [1], "location": "/moved",
                         "move": True}},
        "verify": {"method": "torrent-verify", "arguments": {"ids": [1]}},
        "remove": {"method": "torrent-remove", "arguments": {"ids": [1], "delete-local-data": True}},
        "queue": {"method": "queue-move-top", "arguments": {"ids": [1, 2]}},
    }
    for name, request in requests.items():
        _write("rpc", f"{name}.json", b"\x00" + json.dumps(request).encode())
    _write("rpc", "raw-not-json.bin", b"\x01{not json")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        torrents(Path(tmp))
    tracker_answers()
    resume_files()
    peer_variants()
    core_seeds()
    extension_seeds()
    http1_seeds()
    krpc_seeds()
    dht_codec_seeds()
    rpc_seeds()


if __name__ == "__main__":
    main()
