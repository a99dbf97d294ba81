"""Transmission's web client, served from where Transmission reads it (TRANSMISSION_WEB_HOME, else
Debian's /usr/share/transmission/web); torrentpy keeps no copy of it."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.interop.peers.base import LOOPBACK
from tests.rpc.daemon_process import DaemonProcess

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]


def get(daemon: DaemonProcess, path: str) -> tuple[int, bytes, str]:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{daemon.rpc_port}{path}", timeout=20) as resp:
        return resp.status, resp.read(), resp.url


def test_the_web_home_is_served_and_nothing_outside_it(daemon_factory, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "web"
    (home / "javascript").mkdir(parents=True)
    (home / "index.html").write_text("<html>the web client</html>")
    (home / "javascript" / "app.js").write_text("var x = 1;")
    (tmp_path / "secret.txt").write_text("not for the web")
    monkeypatch.setenv("TRANSMISSION_WEB_HOME", str(home))
    daemon = daemon_factory()
    status, body, url = get(daemon, "/")
    assert status == 200 and body == b"<html>the web client</html>" and url.endswith("/transmission/web/")
    assert get(daemon, "/transmission/web/javascript/app.js")[1] == b"var x = 1;"
    for path in ("/transmission/web/../../secret.txt", "/transmission/web/%2e%2e/secret.txt"):
        with pytest.raises(urllib.error.HTTPError) as err:
            get(daemon, path)
        assert err.value.code in (403, 404)


def test_debian_s_web_client_is_served(daemon_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRANSMISSION_WEB_HOME", raising=False)
    daemon = daemon_factory()
    status, body, _ = get(daemon, "/transmission/web/")
    assert status == 200 and b"Transmission" in body
