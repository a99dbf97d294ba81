"""Fuzz target for the tracker HTTP/1.1 response parser (protocol/http1.py): whatever the bytes, fed whole
or in arbitrary splits, the parser gives the same result (status, headers, body, or the same error), only
BadHttpResponse is ever raised, and memory stays bounded: the decoded body never exceeds the cap (a gzip
bomb stops there) and the parser's buffer never holds more than a head's worth beyond what was just fed.

Byte 0 seeds the split points; byte 1 picks how the stream ends (bit 0: the server closes the connection
after it). The rest is the response as the server sends it.

    .venv/bin/python fuzz/run.py http1 [-max_total_time=60]
"""

from __future__ import annotations

import random
from typing import Any

from torrentpy.protocol.http1 import MAX_HEAD_BYTES, BadHttpResponse, HttpResponseParser

# Small, so that a short compressed body can be a bomb: every seed larger than this once inflated
# must stop with ResponseTooLarge, having produced no more than the cap.
MAX_BODY = 4096


def _parse(chunks: list[bytes], eof: bool) -> tuple[Any, ...]:
    parser = HttpResponseParser(MAX_BODY)
    try:
        for chunk in chunks:
            parser.feed(chunk)
            _check_bounds(parser, len(chunk))
        if eof:
            parser.feed_eof()
    except BadHttpResponse as exc:
        _check_bounds(parser, 0)
        return ("error", type(exc).__name__, str(exc))
    if not parser.done:
        return ("waiting",)
    return ("done", parser.status, parser.reason, tuple(parser.headers.items()), parser.body)


def _check_bounds(parser: HttpResponseParser, fed: int) -> None:
    # The inflater is asked for one byte beyond the cap: that byte is how it knows the body is too large.
    assert len(parser._body) <= MAX_BODY + 1, f"decoded body {len(parser._body)} bytes > cap {MAX_BODY}"
    assert parser._wire_bytes <= MAX_BODY + fed
    # Everything the parser keeps: at most a head (or a chunk line) in progress, plus the bytes after the
    # end of the response that arrived with its last piece (ignored, and never more than one feed).
    assert len(parser._buf) <= MAX_HEAD_BYTES + fed, f"buffer of {len(parser._buf)} bytes"


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    rng = random.Random(data[0])
    eof = bool(data[1] & 1)
    stream = data[2:]
    whole = _parse([stream], eof)
    cuts = sorted(rng.sample(range(1, len(stream)), min(len(stream) - 1, rng.randrange(1, 12)))) \
        if len(stream) > 1 else []
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    split = _parse(pieces, eof)
    assert split == whole, f"split {cuts} gives {split!r:.300}, whole gives {whole!r:.300}"
    bytewise = _parse([stream[i : i + 1] for i in range(len(stream))], eof) if len(stream) <= 2048 else whole
    assert bytewise == whole, f"byte by byte gives {bytewise!r:.300}, whole gives {whole!r:.300}"
    if whole[0] == "done":
        assert not 100 <= whole[1] < 200, "an interim answer taken as the response"
        assert len(whole[4]) <= MAX_BODY
        assert all(c >= " " for c in whole[2]), "reason phrase with control characters"
