"""An HTTP/1.1 response, sans-I/O: bytes in, status + headers + body out (for tracker GETs).

Just what a tracker answer needs: a status line, headers, a body framed by Content-Length, chunked
transfer coding or the end of the connection, and gzip/deflate content coding. Every part is bounded,
so a hostile server can make us wait (the caller's timeout) but not buffer without limit. The request
side is one line (`build_get`), since a tracker GET has no body.
"""

from __future__ import annotations

import re
import zlib

__all__ = ["BadHttpResponse", "HttpResponseParser", "ResponseTooLarge", "build_get"]

# A tracker's status line and headers fit in a few hundred bytes; 64 KiB is generous and bounds a server
# that never ends its head.
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
# A chunk-size line is a hex number and maybe an extension nobody uses; anything longer is garbage.
MAX_CHUNK_LINE_BYTES = 1024
# 1xx interim answers before the real one: a server that sends them forever is refused.
MAX_INTERIM_RESPONSES = 5

_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: (.*))?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
# 32 + MAX_WBITS: zlib reads a gzip or a zlib header, whichever comes (servers send both for "deflate").
_AUTO_WBITS = 32 + zlib.MAX_WBITS

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_EOF, _DONE = range(8)


class BadHttpResponse(ValueError):
    """The server's answer is not HTTP/1.x we can read (the text says what was wrong)."""


class ResponseTooLarge(BadHttpResponse):
    """The body (as sent, or once decompressed) is larger than the parser's ``max_body_bytes``."""


def build_get(target: str, host: str, headers: dict[str, str]) -> bytes:
    """The request bytes of ``GET target`` (``target`` already percent-encoded: sent byte for byte)."""
    if any(c in target for c in "\r\n ") or any(c in host for c in "\r\n "):
        raise BadHttpResponse("request target or host contains whitespace")
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HttpResponseParser:
    """Feed it what the socket reads (`feed`, then `feed_eof` when the peer closes) until `done`.

    ``max_body_bytes`` bounds the body both as sent and as decoded. Raises BadHttpResponse on anything
    malformed (ResponseTooLarge for the size limit).
    """

    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes
        self.status = 0
        self.reason = ""
        self.headers: dict[str, str] = {}
        self._state = _HEAD
        self._buf = bytearray()
        self._interim = 0
        self._remaining = 0  # bytes left of the Content-Length or of the current chunk
        self._wire_bytes = 0
        self._body = bytearray()
        self._inflate: zlib._Decompress | None = None

    @property
    def done(self) -> bool:
        return self._state == _DONE

    @property
    def body(self) -> bytes:
        """The decoded body; complete once `done`."""
        return bytes(self._body)

    def feed(self, data: bytes) -> None:
        if self._state == _DONE:
            return  # bytes after the response (we asked for Connection: close) are not ours
        self._buf += data
        self._advance()

    def feed_eof(self) -> None:
        """The server closed the connection: the end of the body if it is framed that way, else an error."""
        if self._state == _UNTIL_EOF:
            self._finish()
        elif self._state != _DONE:
            where = "head" if self._state == _HEAD else "body"
            raise BadHttpResponse(f"connection closed in the middle of the response {where}")

    # --- internals ------------------------------------------------------------------------------

    def _advance(self) -> None:
        while self._state != _DONE:
            before = (self._state, len(self._buf))
            if self._state == _HEAD:
                self._parse_head()
            elif self._state == _LENGTH:
                take = min(self._remaining, len(self._buf))
                self._take_body(take)
                self._remaining -= take
                if self._remaining == 0:
                    self._finish()
            elif self._state == _CHUNK_SIZE:
                self._parse_chunk_size()
            elif self._state == _CHUNK_DATA:
                take = min(self._remaining, len(self._buf))
                self._take_body(take)
                self._remaining -= take
                if self._remaining == 0:
                    self._state = _CHUNK_END
            elif self._state == _CHUNK_END:
                line = self._line(MAX_CHUNK_LINE_BYTES, "chunk")
                if line is not None:
                    if line:
                        raise BadHttpResponse("chunk data is longer than its size")
                    self._state = _CHUNK_SIZE
            elif self._state == _TRAILERS:
                line = self._line(MAX_HEAD_BYTES, "trailer")
                if line is not None and not line:
                    self._finish()
            elif self._state == _UNTIL_EOF:
                self._take_body(len(self._buf))
            if (self._state, len(self._buf)) == before:
                return  # needs more bytes

    def _line(self, limit: int, what: str) -> bytes | None:
        """The next line without its (CR)LF, or None until one has arrived."""
        end = self._buf.find(b"\n", 0, limit + 1)
        if end < 0:
            if len(self._buf) > limit:
                raise BadHttpResponse(f"{what} line is longer than {limit} bytes")
            return None
        line = bytes(self._buf[:end]).rstrip(b"\r")
        del self._buf[: end + 1]
        return line

    def _parse_head(self) -> None:
        end = self._buf.find(b"\n\r\n", 0, MAX_HEAD_BYTES)
        end2 = self._buf.find(b"\n\n", 0, MAX_HEAD_BYTES)
        ends = [e + k for e, k in ((end, 3), (end2, 2)) if e >= 0]
        if not ends:
            if len(self._buf) >= MAX_HEAD_BYTES:
                raise BadHttpResponse(f"response head is longer than {MAX_HEAD_BYTES} bytes")
            # Garbage fails at once rather than when the server closes or the caller times out.
            start = bytes(self._buf[:5])
            if start != b"HTTP/"[: len(start)]:
                raise BadHttpResponse("not an HTTP response")
            return
        head = bytes(self._buf[: min(ends)])
        del self._buf[: min(ends)]
        lines = head.replace(b"\r\n", b"\n").split(b"\n")
        match = _STATUS_LINE.fullmatch(lines[0])
        if match is None:
            raise BadHttpResponse("not an HTTP response")
        status = int(match.group(1))
        headers: dict[str, str] = {}
        fields = [ln for ln in lines[1:] if ln]
        if len(fields) > MAX_HEADERS:
            raise BadHttpResponse(f"more than {MAX_HEADERS} response headers")
        for field in fields:
            name, sep, value = field.partition(b":")
            if not sep or _TOKEN.fullmatch(name) is None:
                raise BadHttpResponse("malformed response header")
            key = name.decode("ascii").lower()
            text = value.strip().decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        if 100 <= status < 200:
            self._interim += 1
            if self._interim > MAX_INTERIM_RESPONSES:
                raise BadHttpResponse("too many interim (1xx) responses")
            return  # the real response follows
        self.status = status
        self.reason = _CONTROL_CHARS.sub(" ", (match.group(2) or b"").decode("latin-1")).strip()[:100]
        self.headers = headers
        self._start_body()

    def _start_body(self) -> None:
        coding = self.headers.get("content-encoding", "identity").strip().lower()
        if coding in ("gzip", "x-gzip", "deflate"):
            self._inflate = zlib.decompressobj(_AUTO_WBITS)
        elif coding not in ("identity", ""):
            raise BadHttpResponse(f"unsupported content encoding {coding[:40]!r}")
        if self.status in (204, 304):
            self._finish()
            return
        transfer = self.headers.get("transfer-encoding")
        if transfer is not None:
            # Transfer-Encoding wins over Content-Length (RFC 9112 §6.3); trackers only ever use chunked.
            if transfer.strip().lower() != "chunked":
                raise BadHttpResponse(f"unsupported transfer encoding {transfer[:40]!r}")
            self._state = _CHUNK_SIZE
            return
        length = self.headers.get("content-length")
        if length is None:
            self._state = _UNTIL_EOF
            return
        values = {v.strip() for v in length.split(",")}
        if len(values) != 1 or not next(iter(values)).isdigit() or not next(iter(values)).isascii():
            raise BadHttpResponse("malformed Content-Length")
        self._remaining = int(next(iter(values)))
        if self._remaining > self.max_body_bytes:
            raise ResponseTooLarge(f"response body is larger than {self.max_body_bytes} bytes")
        if self._remaining == 0:
            self._finish()
        else:
            self._state = _LENGTH

    def _parse_chunk_size(self) -> None:
        line = self._line(MAX_CHUNK_LINE_BYTES, "chunk size")
        if line is None:
            return
        size = line.split(b";", 1)[0].strip()
        if not size or len(size) > 16 or any(c not in b"0123456789abcdefABCDEF" for c in size):
            raise BadHttpResponse("malformed chunk size")
        self._remaining = int(size, 16)
        if self._wire_bytes + self._remaining > self.max_body_bytes:
            raise ResponseTooLarge(f"response body is larger than {self.max_body_bytes} bytes")
        self._state = _CHUNK_DATA if self._remaining else _TRAILERS

    def _take_body(self, n: int) -> None:
        if n <= 0:
            return
        data = bytes(self._buf[:n])
        del self._buf[:n]
        self._wire_bytes += n
        if self._wire_bytes > self.max_body_bytes:
            raise ResponseTooLarge(f"response body is larger than {self.max_body_bytes} bytes")
        if self._inflate is not None:
            try:
                # One byte beyond the limit is enough to know it is too large (a zip bomb stops here).
                data = self._inflate.decompress(data, self.max_body_bytes + 1 - len(self._body))
            except zlib.error:
                raise BadHttpResponse("corrupt compressed body") from None
            if self._inflate.unconsumed_tail:
                raise ResponseTooLarge(f"response body is larger than {self.max_body_bytes} bytes")
        self._body += data
        if len(self._body) > self.max_body_bytes:
            raise ResponseTooLarge(f"response body is larger than {self.max_body_bytes} bytes")

    def _finish(self) -> None:
        if self._inflate is not None and self._wire_bytes and not self._inflate.eof:
            raise BadHttpResponse("compressed body ends early")
        self._state = _DONE
