"""Fuzz target for the daemon's Transmission RPC (rpc/server.py, rpc/methods.py, daemon.py): arbitrary
request bodies through the real aiohttp handler of /transmission/rpc, against a Daemon whose session is
not running (so nothing touches the network) and whose folders are in a temporary jail.

Invariants: every answer is HTTP 200 with a JSON object carrying a string `result` and an object
`arguments` (Transmission's shape), the tag echoed; no method fails with an internal error (a method
must refuse what it cannot use with a message, not an exception); nothing is written or deleted outside
the jail, and inside it only under the state folder and the download folders the requests named.

Byte 0 bit 0: the body is taken as it is; else the rest is JSON whose absolute paths are moved into the
jail before the request is sent (so that a fuzzed "download-dir": "/etc" lands in <jail>/etc, never in
/etc), and whose http(s) URLs are pointed at a closed loopback port (no fetch leaves the machine).
The daemon is made afresh every `RESET_EVERY` inputs, or when it holds too many torrents.

    .venv/bin/python fuzz/run.py rpc [-max_total_time=60]
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import tempfile
from typing import Any

from aiohttp.test_utils import make_mocked_request

from torrentpy.daemon import Daemon
from torrentpy.engine.session import Session, SessionConfig
from torrentpy.rpc.server import RPC_PATH, SESSION_HEADER, RpcOptions, build_app

RESET_EVERY = 500
MAX_TORRENTS = 12
CLOSED_URL = "http://127.0.0.1:9/x.torrent"  # the discard port: nothing listens, the fetch fails at once

_TOP = tempfile.mkdtemp(prefix="torrentpy-fuzz-rpc-")
atexit.register(shutil.rmtree, _TOP, True)
JAIL = os.path.join(_TOP, "jail")
CANARY = os.path.join(_TOP, "canary")
STATE = os.path.join(JAIL, "state")
DOWNLOADS = os.path.join(JAIL, "downloads")


class _Payload:
    """Just what `Request.read` asks of a body stream."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def set_read_chunk_size(self, size: int) -> None:
        pass

    async def readany(self) -> bytes:
        data, self._data = self._data, b""
        return data


class _Harness:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.inputs = 0
        self.daemon: Daemon | None = None
        self.handler: Any = None
        self.allowed: set[str] = set()

    def reset(self) -> None:
        if self.daemon is not None:
            self.daemon.session.executor.shutdown(wait=True)
        shutil.rmtree(_TOP, ignore_errors=True)
        os.makedirs(DOWNLOADS)
        with open(CANARY, "w") as fh:
            fh.write("canary")
        session = Session(SessionConfig(save_dir=DOWNLOADS, seed_ratio=None, keep_running=True, dht=False))
        self.daemon = Daemon.open(session, STATE, DOWNLOADS)
        app = build_app(self.daemon, RpcOptions())
        route = next(r for r in app.router.routes() if r.resource is not None and r.resource.canonical == RPC_PATH)
        self.handler = route.handler
        self.allowed = {STATE, DOWNLOADS}

    def post(self, body: bytes) -> tuple[int, bytes]:
        assert self.daemon is not None
        request = make_mocked_request("POST", RPC_PATH, headers={SESSION_HEADER: self.daemon.session_id},
                                      payload=_Payload(body))
        response = self.loop.run_until_complete(self.handler(request))
        return response.status, response.body


_H = _Harness()


def _jailed(value: Any, named: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _jailed(v, named) for k, v in value.items()}
    if isinstance(value, list):
        return [_jailed(v, named) for v in value]
    if isinstance(value, str):
        if value.lower().startswith(("http://", "https://")):
            return CLOSED_URL
        if value.startswith("/"):
            path = JAIL + os.path.normpath(value)
            named.add(path)
            return path
    return value


def _inside(path: str, folders: set[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") or f.startswith(path + "/") for f in folders)


def _check_the_disk() -> None:
    assert sorted(os.listdir(_TOP)) == ["canary", "jail"], f"written beside the jail: {os.listdir(_TOP)}"
    with open(CANARY) as fh:
        assert fh.read() == "canary"
    for root, dirs, files in os.walk(JAIL):
        for name in dirs + files:
            path = os.path.join(root, name)
            assert _inside(path, _H.allowed), f"{path} is outside every folder the requests named"


def test_one_input(data: bytes) -> None:
    if not data:
        return
    if _H.daemon is None or _H.inputs % RESET_EVERY == 0 or len(_H.daemon.records) > MAX_TORRENTS:
        _H.reset()
    _H.inputs += 1
    body = data[1:]
    tag: Any = None
    if not data[0] & 1:
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return
        named: set[str] = set()
        request = _jailed(request, named)
        _H.allowed |= named
        try:
            body = json.dumps(request).encode()
        except (ValueError, RecursionError):
            return  # NaN is fine for json; a lone surrogate or deep nesting is not worth a request
        if isinstance(request, dict):
            tag = request.get("tag")
    elif b"/" in body or b"http" in body.lower():
        return  # a raw body naming a path or a URL could reach outside the jail: only jailed bodies may
    status, raw = _H.post(body)
    assert status == 200, status
    answer = json.loads(raw)
    assert isinstance(answer, dict) and isinstance(answer.get("result"), str), answer
    assert isinstance(answer.get("arguments"), dict), answer
    assert not answer["result"].startswith("internal error"), answer["result"]
    if tag is not None and tag == tag:  # NaN is no tag to compare
        assert answer.get("tag") == tag
    _check_the_disk()
