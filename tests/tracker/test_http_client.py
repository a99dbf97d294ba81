"""net/http.py and HttpTracker over it, against raw loopback servers that misbehave on purpose."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from torrentpy.net.http import http_get
from torrentpy.net.tracker import HttpTracker
from torrentpy.protocol.http1 import BadHttpResponse, ResponseTooLarge
from torrentpy.protocol.tracker_http import MAX_RESPONSE_BYTES, AnnounceRequest, BadTrackerResponse, TrackerError

ANSWER = b"d8:intervali1800e5:peers6:\x7f\x00\x00\x01\x1a\xe1e"
Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """A loopback TCP server running ``serve`` per connection; keeps every request head it read."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.url = ""

    async def start(self, serve: Serve) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                self.requests.append(await reader.readuntil(b"\r\n\r\n"))
                await serve(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/announce"


@pytest.fixture
async def raw() -> AsyncIterator[RawServer]:
    server = RawServer()
    yield server
    server.server.close()


def answer(head: bytes, body: bytes = b"") -> Serve:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head + body)
        await writer.drain()
    return serve


def req() -> AnnounceRequest:
    return AnnounceRequest(b"\x00\xff" * 10, b"-TP0001-\x00 &%=+?#\xfe\x7fz/", 6881, 0, 0, 100, "started")


async def no_session() -> None:
    raise AssertionError("an http:// tracker must not create an aiohttp session")


async def test_announce_goes_out_byte_for_byte_without_aiohttp(raw):
    await raw.start(answer(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(ANSWER), ANSWER))
    resp = await HttpTracker(raw.url, no_session).announce(req())  # type: ignore[arg-type]
    assert resp.peers == [("127.0.0.1", 6881)]
    head = raw.requests[0].decode("latin-1")
    assert head.startswith("GET /announce?info_hash=%00%FF%00%FF")
    assert "peer_id=-TP0001-%00%20%26%25%3D%2B%3F%23%FE%7Fz%2F" in head
    host = raw.url.split("/")[2]
    assert f"\r\nHost: {host}\r\n" in head and "\r\nUser-Agent: torrentpy/" in head
    assert "\r\nAccept-Encoding: gzip, deflate\r\n" in head and "\r\nConnection: close\r\n" in head


async def test_gzip_chunked_answer(raw):
    packed = gzip.compress(ANSWER)
    body = b"%x\r\n" % len(packed) + packed + b"\r\n0\r\n\r\n"
    await raw.start(answer(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", body))
    resp = await HttpTracker(raw.url, no_session).announce(req())  # type: ignore[arg-type]
    assert resp.interval_s == 1800


async def test_credentials_in_the_url_become_basic_auth(raw):
    await raw.start(answer(b"HTTP/1.1 200 OK\r\n\r\n", ANSWER))
    got = await http_get(raw.url.replace("//", "//us%40r:pw@"), headers={}, timeout_s=5, max_body_bytes=1000)
    assert got.body == ANSWER
    assert b"\r\nAuthorization: Basic dXNAcjpwdw==\r\n" in raw.requests[0]  # "us@r:pw"
    assert b"us%40r" not in raw.requests[0]


@pytest.mark.parametrize(
    ("head", "body", "error", "match"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_RESPONSE_BYTES + 1), b"", BadTrackerResponse,
         "larger than"),
        (b"HTTP/1.1 200 OK\r\n\r\n", b"x" * (MAX_RESPONSE_BYTES + 1), BadTrackerResponse, "larger than"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", b"", BadTrackerResponse, "bad HTTP answer: not an HTTP response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b"d8:inter", BadTrackerResponse, "closed in the middle"),
        (b"HTTP/1.1 301 Moved\r\nLocation: http://elsewhere.invalid/\r\nContent-Length: 0\r\n\r\n", b"", TrackerError,
         "HTTP 301 Moved"),
    ],
)
async def test_malformed_or_oversized_answers_fail_clearly(raw, head, body, error, match):
    await raw.start(answer(head, body))
    with pytest.raises(error, match=match):
        await HttpTracker(raw.url, no_session).announce(req())  # type: ignore[arg-type]
    assert len(raw.requests) == 1  # a redirect is not followed


async def test_slow_servers_time_out(raw):
    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(100):  # a byte every 50 ms: never idle long, never done within the timeout
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.05)

    await raw.start(drip)
    started = time.monotonic()
    with pytest.raises(TrackerError, match="timed out"):
        await HttpTracker(raw.url, no_session, 0.4).announce(req())  # type: ignore[arg-type]
    assert time.monotonic() - started < 2.0


async def test_silent_server_times_out_and_answer_without_end_waits_for_close(raw):
    async def head_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\n\r\n" + ANSWER)  # no length: the body ends when we close
        await asyncio.sleep(5)

    await raw.start(head_only)
    with pytest.raises(TimeoutError):
        await http_get(raw.url, headers={}, timeout_s=0.3, max_body_bytes=1000)


async def test_refused_and_bad_urls():
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(TrackerError, match=f"cannot connect to 127.0.0.1:{port}"):
        await HttpTracker(f"http://127.0.0.1:{port}/announce", no_session).announce(req())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an http"):
        await http_get("https://127.0.0.1/", headers={}, timeout_s=1, max_body_bytes=10)
    with pytest.raises(TrackerError):
        await HttpTracker("http://127.0.0.1:99999/announce", no_session).announce(req())  # type: ignore[arg-type]


async def test_parser_errors_reach_callers_of_http_get(raw):
    await raw.start(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"))
    with pytest.raises(ResponseTooLarge):
        await http_get(raw.url, headers={}, timeout_s=5, max_body_bytes=10)
    with pytest.raises(BadHttpResponse):
        await http_get(raw.url, headers={}, timeout_s=5, max_body_bytes=100)  # closed after the head


async def test_https_goes_through_the_aiohttp_session(raw):
    import aiohttp

    await raw.start(answer(b"HTTP/1.1 200 OK\r\n\r\n", ANSWER))  # plain HTTP where TLS is expected
    asked = []
    async with aiohttp.ClientSession() as session:
        async def get_session() -> aiohttp.ClientSession:
            asked.append(1)
            return session

        with pytest.raises(TrackerError) as info:
            await HttpTracker(raw.url.replace("http:", "https:"), get_session, 5).announce(req())
    assert asked == [1] and str(info.value)  # the TLS failure is reported, not raised as a crash
