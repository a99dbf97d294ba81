"""Hostile or broken RPC requests, each answered as Transmission answers it; the daemon keeps serving."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.rpc.daemon_process import TORRENTPY, DaemonProcess

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

SID = "X-Transmission-Session-Id"


def test_the_session_id_handshake(daemon_factory) -> None:
    daemon: DaemonProcess = daemon_factory()
    body = json.dumps({"method": "session-get"}).encode()
    status, headers, _ = daemon.post(body, session_id="")
    assert status == 409 and len(headers[SID]) >= 32
    status, headers2, _ = daemon.post(body, session_id="not-the-id")
    assert status == 409 and headers2[SID] == headers[SID]
    status, _, reply = daemon.post(body, session_id=headers[SID])
    assert status == 200 and json.loads(reply)["arguments"]["rpc-version"] == 16


def test_bad_requests_get_transmission_s_answers(daemon_factory) -> None:
    daemon: DaemonProcess = daemon_factory()
    daemon.call("session-get")  # learn the session id
    for raw, result in ((b"{not json", "no method name"), (b"[1, 2]", "no method name"),
                        (b'{"method": 7}', "no method name"),
                        (b'{"method": "torrent-explode", "tag": 5}', "method name not recognized")):
        status, _, reply = daemon.post(raw)
        assert status == 200, raw
        assert json.loads(reply)["result"] == result, (raw, reply)
    answer = daemon.call("torrent-get", {"fields": ["id", "noSuchField"], "ids": [99, "zz", True]}, tag=77)
    assert answer == {"arguments": {"torrents": []}, "result": "success", "tag": 77}
    assert daemon.call("torrent-get", {})["result"] == "no fields specified"
    bad_add = daemon.call("torrent-add", {"metainfo": "bm90IGEgdG9ycmVudA=="})
    assert bad_add["result"] == "invalid or corrupt torrent file"
    missing = daemon.call("torrent-add", {"filename": "/nonexistent.torrent"})
    assert missing["result"] == "invalid or corrupt torrent file"
    assert daemon.call("free-space", {"path": "relative"})["result"] == "directory path is not absolute"
    assert daemon.call("session-set", {"utp-enabled": True})["result"].startswith("not supported")
    # The DHT runs (public torrents only) and says so; it is switched when the daemon starts, not here.
    assert daemon.call("session-get", {"fields": ["dht-enabled"]})["arguments"]["dht-enabled"] is True
    assert daemon.call("session-set", {"dht-enabled": False})["result"].startswith("dht-enabled is chosen")
    port_test = daemon.call("port-test")
    assert port_test["result"] != "success" and "port-is-open" not in port_test["arguments"]
    assert daemon.call("session-stats")["result"] == "success"  # still serving


def test_a_huge_body_is_refused_unread(daemon_factory) -> None:
    daemon: DaemonProcess = daemon_factory()
    daemon.call("session-get")
    status, _, _ = daemon.post(b'{"method": "torrent-add", "arguments": {"metainfo": "' + b"A" * (17 << 20) + b'"}}')
    assert status == 413
    assert daemon.call("session-get")["result"] == "success"


def test_a_foreign_host_header_is_refused_dns_rebinding(daemon_factory) -> None:
    daemon: DaemonProcess = daemon_factory()
    daemon.call("session-get")
    for host in ("evil.example", "localhost.evil.example"):
        status, _, reply = daemon.post(b'{"method": "session-get"}', headers={"Host": host})
        assert status == 421 and b"421" in reply, host
    for host in (f"localhost:{daemon.rpc_port}", f"127.0.0.1:{daemon.rpc_port}", "[::1]:9091"):
        status, _, _ = daemon.post(b'{"method": "session-get"}', headers={"Host": host})
        assert status == 200, host


def test_basic_auth(daemon_factory) -> None:
    daemon: DaemonProcess = daemon_factory(auth=("alice", "s3cret"))
    body = b'{"method": "session-get"}'
    for creds in (("", ""), ("alice", "wrong"), ("bob", "s3cret")):
        status, headers, _ = daemon.post(body, auth=creds)
        assert status == 401 and headers.get("WWW-Authenticate", "").startswith("Basic"), creds
    status, headers, _ = daemon.post(body, session_id="")
    assert status == 409
    # With a password, any Host is let through (the rebinding page cannot know the password).
    status, _, _ = daemon.post(body, session_id=headers[SID], headers={"Host": "nas.example"})
    assert status == 200
    proc = subprocess.run(["transmission-remote", daemon.address, "-n", "alice:wrong", "-l"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "401" in proc.stderr + proc.stdout
    proc = subprocess.run(["transmission-remote", daemon.address, "-n", "alice:s3cret", "-l"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


def test_a_non_loopback_rpc_needs_a_password(tmp_path) -> None:
    proc = subprocess.run([str(TORRENTPY), "daemon", "--rpc-bind", "0.0.0.0", "--state-dir", str(tmp_path / "s")],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "--rpc-password" in proc.stderr
    assert not (tmp_path / "s").exists()
