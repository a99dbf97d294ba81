"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol, with aiohttp's websocket.

Only what a test of a web page needs: evaluate JavaScript in the page and get its value, type text as a
user would (Input.insertText), and take a screenshot. Chromium picks its own debugging port
(--remote-debugging-port=0) and writes it to DevToolsActivePort in its profile folder.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.interop.peers.base import LOOPBACK

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)

    async def open(self, url: str, timeout_s: float = 30.0) -> Browser:
        assert CHROMIUM is not None
        self.profile.mkdir(parents=True, exist_ok=True)
        # --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
        argv = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                f"--remote-debugging-address={LOOPBACK}", "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}", "--window-size=1280,800", url]
        with open(self.profile / "chromium.log", "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while not (active.exists() and active.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"chromium did not start: {self.log_tail()}")
            await asyncio.sleep(0.1)
        self.port = int(active.read_text().split()[0])
        self._http = aiohttp.ClientSession()
        page = None
        while page is None:
            async with self._http.get(f"http://{LOOPBACK}:{self.port}/json/list") as resp:
                targets = await resp.json()
            page = next((t for t in targets if t.get("type") == "page"), None)
            if page is None:
                if time.monotonic() > deadline:
                    raise AssertionError(f"chromium opened no page: {targets}")
                await asyncio.sleep(0.1)
        self._ws = await self._http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=64 * 1024 * 1024)
        return self

    def log_tail(self) -> str:
        log = self.profile / "chromium.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        assert self._ws is not None
        call_id = next(self._ids)
        await self._ws.send_str(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            msg = await asyncio.wait_for(self._ws.receive(), 30)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"DevTools connection: {msg.type} {msg.data!r}")
            reply = json.loads(msg.data)
            if reply.get("id") == call_id:  # anything else is an event nobody subscribed to
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                                 awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float = 30.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout_s
        value = None
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.25)
        raise AssertionError(f"the page never showed {what or expression} (last: {value!r})")

    async def type_text(self, text: str) -> None:
        await self.send("Input.insertText", text=text)

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
