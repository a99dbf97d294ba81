"""One bounded HTTP/1.1 GET over an asyncio stream, for `http://` tracker announces and scrapes.

aiohttp costs more to import than the rest of the start-up together (it builds TLS contexts at import),
and a plain-HTTP tracker needs none of it: one request, `Connection: close`, an answer parsed by
protocol/http1.py. Redirects are not followed (the caller sees the 3xx status) and no proxy from the
environment is used, as with the aiohttp session it replaces for `http://`.
"""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import unquote, urlsplit

from torrentpy.protocol.http1 import HttpResponseParser, build_get

__all__ = ["HttpAnswer", "http_get"]

READ_SIZE = 64 * 1024


class HttpAnswer:
    """Status, reason phrase and decoded body of one response."""

    __slots__ = ("body", "reason", "status")

    def __init__(self, status: int, reason: str, body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.body = body


async def http_get(url: str, *, headers: dict[str, str], timeout_s: float, max_body_bytes: int) -> HttpAnswer:
    """GET ``url`` (``http://`` only, its escapes sent byte for byte) within ``timeout_s`` in all.

    Raises TimeoutError, OSError (connect or socket errors, naming the address), or BadHttpResponse
    (protocol/http1.py: malformed, or ResponseTooLarge beyond ``max_body_bytes``); ValueError for a URL
    that is not ``http://host[:port]/…``.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise ValueError(f"not an http:// URL with a host: {url[:200]!r}")
    host, port = parts.hostname, parts.port or 80  # .port raises ValueError when out of range
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    wanted = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate", "Connection": "close", **headers}
    if parts.username is not None:
        # Credentials in the announce URL are sent as basic auth (aiohttp did the same).
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        wanted["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    request = build_get(target, parts.netloc.rpartition("@")[2], wanted)
    parser = HttpResponseParser(max_body_bytes)
    async with asyncio.timeout(timeout_s):
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=READ_SIZE)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot connect to {host}:{port} ({exc.strerror or exc})") from None
        try:
            writer.write(request)
            while not parser.done:
                data = await reader.read(READ_SIZE)
                if not data:
                    parser.feed_eof()
                    break
                parser.feed(data)
        finally:
            # The answer is complete or we gave up on it: nothing else will be read from this socket.
            writer.transport.abort()
    return HttpAnswer(parser.status, parser.reason, parser.body)
