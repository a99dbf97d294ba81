"""session-get's `encryption` is the daemon's real mode; session-set (and transmission-remote -er/-ep/-et)
changes it for the next connection, and it is kept across restarts unless --encryption says otherwise."""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest

from tests.interop.peers.base import LOOPBACK, wait_for
from tests.interop.peers.payload import MiB, info_hash_libtorrent
from tests.protocol.mse_wire import handshake_bytes
from tests.rpc.daemon_process import DaemonProcess

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

REMOTE = shutil.which("transmission-remote")
if REMOTE is None:
    pytest.fail("transmission-remote is missing: `make test` installs Debian's transmission-cli", pytrace=False)


def mode(daemon: DaemonProcess) -> str:
    answer = daemon.call("session-get", {"fields": ["encryption"]})
    assert answer["result"] == "success", answer
    return str(answer["arguments"]["encryption"])


def answers_plain_handshake(daemon: DaemonProcess, info_hash: bytes) -> bool:
    """Dial the daemon's peer port with a plain BitTorrent handshake: does its own come back?"""
    with socket.create_connection((LOOPBACK, daemon.peer_port), timeout=5) as sock:
        sock.sendall(handshake_bytes(info_hash))
        got = b""
        try:
            while len(got) < 48 and (chunk := sock.recv(48 - len(got))):
                got += chunk
        except ConnectionResetError:
            pass
    return got[:20] == b"\x13BitTorrent protocol" and got[28:48] == info_hash


def test_encryption_setting_is_real_and_kept(daemon_factory, payload_factory, torrent_factory) -> None:
    payload = payload_factory(1 * MiB, name="e.bin")
    torrent = torrent_factory(payload, piece_length=64 * 1024)
    info_hash = info_hash_libtorrent(torrent)
    daemon: DaemonProcess = daemon_factory()
    assert mode(daemon) == "tolerated"
    assert daemon.call("torrent-add", {"filename": str(torrent)})["result"] == "success"
    wait_for(lambda: answers_plain_handshake(daemon, info_hash), 15, 0.2, "the torrent to take peers")

    subprocess.run([str(REMOTE), daemon.address, "-er"], check=True, capture_output=True, timeout=30)
    assert mode(daemon) == "required"
    assert not answers_plain_handshake(daemon, info_hash)  # refused from the next connection on

    bad = daemon.call("session-set", {"encryption": "sometimes"})
    assert bad["result"] != "success" and "tolerated, preferred, required" in bad["result"]
    assert mode(daemon) == "required"
    assert daemon.stop() == 0

    again = daemon_factory()  # the same state folder
    assert mode(again) == "required"
    assert not answers_plain_handshake(again, info_hash)
    assert again.stop() == 0

    told = daemon_factory(extra=("--encryption", "preferred"))  # the command line wins over the saved mode
    assert mode(told) == "preferred"
    wait_for(lambda: answers_plain_handshake(told, info_hash), 15, 0.2, "a plain handshake to be answered")
