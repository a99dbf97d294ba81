"""The sans-I/O HTTP/1.1 response parser used for http:// trackers: framing, codings, every limit."""

from __future__ import annotations

import gzip
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrentpy.protocol.http1 import (
    MAX_HEAD_BYTES,
    BadHttpResponse,
    HttpResponseParser,
    ResponseTooLarge,
    build_get,
)

BODY = b"d8:intervali1800e5:peers6:\x7f\x00\x00\x01\x1a\xe1e"


def parse(raw: bytes, *, eof: bool = True, limit: int = 1 << 20, pieces: int = 1) -> HttpResponseParser:
    p = HttpResponseParser(limit)
    step = max(1, len(raw) // pieces)
    for i in range(0, len(raw), step):
        p.feed(raw[i : i + step])
    if eof:
        p.feed_eof()
    return p


def chunked(body: bytes, size: int = 7) -> bytes:
    out = b"".join(b"%x\r\n" % len(body[i : i + size]) + body[i : i + size] + b"\r\n"
                   for i in range(0, len(body), size))
    return out + b"0\r\n\r\n"


def test_request_line_keeps_escapes_and_refuses_injection():
    raw = build_get("/announce?info_hash=%00%FF%20", "tracker:6969", {"User-Agent": "t/1"})
    assert raw == b"GET /announce?info_hash=%00%FF%20 HTTP/1.1\r\nHost: tracker:6969\r\nUser-Agent: t/1\r\n\r\n"
    with pytest.raises(BadHttpResponse):
        build_get("/a b", "h", {})
    with pytest.raises(BadHttpResponse):
        build_get("/a", "h\r\nX: y", {})


@pytest.mark.parametrize("pieces", [1, 3, 1000])
def test_content_length_body(pieces):
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY + b"trailing junk"
    p = parse(raw, eof=False, pieces=pieces)
    assert p.done and (p.status, p.reason, p.body) == (200, "OK", BODY)


@pytest.mark.parametrize("pieces", [1, 5, 1000])
def test_chunked_body_with_extension_and_trailer(pieces):
    body = chunked(BODY).replace(b"\r\n", b";ext=1\r\n", 1)[:-2] + b"X-Trailer: 1\r\n\r\n"
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    p = parse(raw, eof=False, pieces=pieces)
    assert p.done and p.body == BODY


def test_body_until_close_and_bare_newlines():
    p = parse(b"HTTP/1.0 200 OK\nServer: x\n\n" + BODY, eof=False)
    assert not p.done
    p.feed_eof()
    assert p.done and p.body == BODY and p.headers["server"] == "x"


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_compressed_bodies_are_decoded(coding):
    packed = gzip.compress(BODY) if coding == "gzip" else zlib.compress(BODY)
    raw = b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nTransfer-Encoding: chunked\r\n\r\n" % coding.encode()
    p = parse(raw + chunked(packed, 5), eof=False, pieces=20)
    assert p.done and p.body == BODY


def test_interim_responses_are_skipped_and_status_errors_keep_their_body():
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope"
    p = parse(raw, eof=False)
    assert (p.status, p.reason, p.body) == (404, "Not Found", b"nope")
    assert parse(b"HTTP/1.1 204 No Content\r\n\r\n", eof=False).done


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"<html>hello</html>", "not an HTTP response"),
        (b"HTTP/2 200 OK\r\n\r\n", "not an HTTP response"),
        (b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n", "malformed response header"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "transfer encoding"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\n\r\n", "content encoding"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "longer than its size"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nabcd", "corrupt"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed in the middle of the response body"),
        (b"HTTP/1.1 200 O", "closed in the middle of the response head"),
    ],
)
def test_malformed_answers_are_named(raw, match):
    with pytest.raises(BadHttpResponse, match=match):
        parse(raw)


def test_every_size_is_bounded():
    with pytest.raises(ResponseTooLarge):  # announced too large: refused before any body byte
        parse(b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n", eof=False, limit=100)
    with pytest.raises(ResponseTooLarge):
        parse(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 101, eof=False, limit=100)
    with pytest.raises(ResponseTooLarge):
        parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"40\r\n" + b"x" * 64 + b"\r\n"
              + b"40\r\n", eof=False, limit=100)
    bomb = gzip.compress(bytes(10_000_000))  # ~10 KB that inflate to 10 MB: stopped at the limit
    with pytest.raises(ResponseTooLarge):
        parse(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n" + bomb, limit=100_000)
    with pytest.raises(BadHttpResponse, match="head is longer"):
        parse(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * (MAX_HEAD_BYTES // 6 + 1), eof=False)
    with pytest.raises(BadHttpResponse, match="more than"):
        parse(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", eof=False)
    with pytest.raises(BadHttpResponse, match="chunk size line"):
        parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + b"e" * 2000, eof=False)
    with pytest.raises(BadHttpResponse, match="interim"):
        parse(b"HTTP/1.1 100 Continue\r\n\r\n" * 6, eof=False)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(1, 50))
def test_arbitrary_bytes_only_ever_raise_bad_response(data, pieces):
    for raw in (data, b"HTTP/1.1 200 OK\r\n" + data):
        try:
            parse(raw, pieces=pieces, limit=1000)
        except BadHttpResponse:
            pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(1, 200), max_size=40), st.booleans())
def test_any_split_gives_the_same_answer(body, cuts, use_chunked):
    framing = (b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body, 97) if use_chunked
               else b"Content-Length: %d\r\n\r\n" % len(body) + body)
    raw = b"HTTP/1.1 200 OK\r\n" + framing
    p = HttpResponseParser(1 << 20)
    pos = 0
    for cut in cuts:
        p.feed(raw[pos : pos + cut])
        pos += cut
    p.feed(raw[pos:])
    assert p.done and p.body == body
