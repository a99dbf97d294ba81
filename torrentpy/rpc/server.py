"""The HTTP side of the Transmission RPC: /transmission/rpc, and Transmission's web client when installed.

Checks run in Transmission's order: basic auth (401), the Host header (421: DNS rebinding,
CVE-2018-5702), the X-Transmission-Session-Id handshake (409 carrying the id, against cross-site
requests), then the JSON request. Bodies are bounded. Errors inside a method are answered in the
`result` string and never take the daemon down.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from torrentpy.errors import TorrentError, out_of_memory_message
from torrentpy.rpc.methods import METHODS, RpcError

if TYPE_CHECKING:
    from torrentpy.daemon import Daemon

log = logging.getLogger("torrentpy")

__all__ = ["MAX_BODY_BYTES", "RpcOptions", "build_app", "start_rpc", "web_home"]

RPC_PATH = "/transmission/rpc"
WEB_PATH = "/transmission/web/"
SESSION_HEADER = "X-Transmission-Session-Id"
# A torrent-add carries a whole .torrent in base64 (4/3 of its size); 10 MiB .torrent files are rare
# even for huge torrents. Anything larger is refused with 413 before it is read into memory.
MAX_BODY_BYTES = 16 * 1024 * 1024
DEBIAN_WEB_HOME = "/usr/share/transmission/web"


@dataclass
class RpcOptions:
    bind: str = "127.0.0.1"
    port: int = 9091
    username: str | None = None
    password: str | None = None
    # Host names accepted in the Host header besides IP literals and localhost.
    host_allow: list[str] = field(default_factory=list)
    web_home: str | None = None


def web_home() -> str | None:
    """Transmission's web client: $TRANSMISSION_WEB_HOME as Transmission reads it, else Debian's."""
    for candidate in (os.environ.get("TRANSMISSION_WEB_HOME"), DEBIAN_WEB_HOME):
        if candidate and os.path.isfile(os.path.join(candidate, "index.html")):
            return candidate
    return None


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _host_allowed(options: RpcOptions, host_header: str | None) -> bool:
    if options.password:
        return True  # as Transmission: a rebinding page cannot pass the password it does not know
    if not host_header:
        return False
    host = host_header.strip()
    if host.startswith("["):  # [::1]:9091
        host = host[1:host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    host = host.rstrip(".").lower()
    try:
        ipaddress.ip_address(host)
        return True  # an address literal cannot be rebound
    except ValueError:
        pass
    return host == "localhost" or host in (h.lower() for h in options.host_allow)


def _authorized(options: RpcOptions, header: str | None) -> bool:
    if not options.password:
        return True
    if not header or not header.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    ok_user = hmac.compare_digest(user.encode(), (options.username or "").encode())
    ok_password = hmac.compare_digest(password.encode(), options.password.encode())
    return ok_user and ok_password


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json", charset="UTF-8")


def build_app(daemon: Daemon, options: RpcOptions) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)

    @web.middleware
    async def gate(request: web.Request, handler: Any) -> web.StreamResponse:
        if not _authorized(options, request.headers.get("Authorization")):
            return web.Response(status=401, text="<h1>401: Unauthorized</h1>Unauthorized User",
                                content_type="text/html",
                                headers={"WWW-Authenticate": 'Basic realm="Transmission"'})
        if request.path.startswith(RPC_PATH) and not _host_allowed(options, request.headers.get("Host")):
            return web.Response(status=421, content_type="text/html", text=(
                "<h1>421: Misdirected Request</h1><p>Transmission received your request, but the hostname "
                "was unrecognized.</p><p>To fix this, choose one of the following options:<ul><li>Enable "
                "password authentication, then any hostname is allowed.</li><li>Add the hostname you want "
                "to use to the allow-list (--rpc-host).</li></ul></p>"))
        return await handler(request)

    app.middlewares.append(gate)

    async def rpc(request: web.Request) -> web.StreamResponse:
        if request.headers.get(SESSION_HEADER) != daemon.session_id:
            return web.Response(status=409, content_type="text/html", headers={SESSION_HEADER: daemon.session_id},
                                text=f"<h1>409: Conflict</h1><p>Your request had an invalid session-id header."
                                     f"</p><p><code>{SESSION_HEADER}: {daemon.session_id}</code></p>")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413, text="request body too large")
        try:
            body = json.loads(raw) if raw else {}
        except (ValueError, UnicodeDecodeError):
            body = {}  # Transmission parses nothing from it, so there is no method to run
        if not isinstance(body, dict):
            body = {}
        return _json(await dispatch(daemon, body))

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently(WEB_PATH)

    app.router.add_route("*", RPC_PATH, rpc)
    app.router.add_route("*", RPC_PATH + "/", rpc)  # transmission-remote's own spelling
    home = options.web_home
    if home is not None:
        async def index(request: web.Request) -> web.StreamResponse:
            return web.FileResponse(os.path.join(home, "index.html"))

        app.router.add_get("/", redirect)
        app.router.add_get("/transmission/web", redirect)
        app.router.add_get(WEB_PATH, index)
        # aiohttp's static route refuses paths leaving the folder and, without follow_symlinks, symlinks.
        app.router.add_static(WEB_PATH, home, follow_symlinks=False)
    return app


async def dispatch(daemon: Daemon, body: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {"arguments": {}, "result": "success"}
    if "tag" in body:
        response["tag"] = body["tag"]  # transmission-remote picks how to print a reply by its tag
    method = body.get("method")
    args = body.get("arguments", {})
    if not isinstance(args, dict):
        args = {}
    if not isinstance(method, str):
        response["result"] = "no method name"
        return response
    handler = METHODS.get(method)
    if handler is None:
        response["result"] = "method name not recognized"
        return response
    try:
        response["arguments"] = await handler(daemon, args)
    except RpcError as exc:
        response["result"] = str(exc)
    except TorrentError as exc:
        response["result"] = str(exc)
    except MemoryError:  # the daemon runs on: the client may ask again once memory is back
        response["result"] = out_of_memory_message()
    except Exception as exc:  # a bug in one method must not stop the daemon; the client hears of it
        log.error("rpc: %s failed", method, exc_info=exc)
        response["result"] = f"internal error: {exc!r}"
    return response


async def start_rpc(daemon: Daemon, options: RpcOptions) -> web.AppRunner:
    """Serve the RPC (and the web client) until the returned runner is cleaned up."""
    runner = web.AppRunner(build_app(daemon, options), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, options.bind, options.port, reuse_address=True)
    await site.start()
    return runner
