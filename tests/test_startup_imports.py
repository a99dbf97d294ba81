"""`torrentpy add` on its way to the first request: what it has imported and built by the time the first
REQUEST is written, in a real `python -m torrentpy add` process (issue 11: the first request within
0.15 s of the process's start).

The process runs a driver that wraps `PeerConnection.send_request`: at its first call it records the
modules loaded and the TLS contexts made so far, and a second later (the start-up over) whether the
DHT has started and the collector runs again."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.startup_probe import start_probe

DRIVER = r"""
import gc, runpy, ssl, sys
contexts = []
_new = ssl.SSLContext.__new__
def counted(cls, *args, **kwargs):
    contexts.append(cls.__name__)
    return _new(cls, *args, **kwargs)
ssl.SSLContext.__new__ = counted

from torrentpy.protocol import outbound
send_request = outbound.MessageBuilder.send_request
report = {}
def write(path=sys.argv[1]):
    with open(path, "w") as fh:
        fh.write(repr(report))
def later():
    import os, signal
    report["dht_module_later"] = "torrentpy.net.dht" in sys.modules
    report["gc_enabled_later"] = gc.isenabled()
    write()
    os.kill(os.getpid(), signal.SIGTERM)
def first(self, *args):
    if not report:
        import asyncio
        report["modules"] = sorted(sys.modules)
        report["tls_contexts"] = list(contexts)
        report["gc_enabled"] = gc.isenabled()
        asyncio.get_running_loop().call_later(1.0, later)
    return send_request(self, *args)
outbound.MessageBuilder.send_request = first
sys.argv = ["torrentpy", *sys.argv[2:]]
runpy.run_module("torrentpy", run_name="__main__", alter_sys=True)
"""

# Not needed before the first request of `add --no-tui` with default options: the dashboard and rich
# (drawn only on a terminal), JSON (--json, info and verify only), aiohttp (https:// trackers only),
# the DHT (started after the first requests).
LATER = ("rich", "json", "aiohttp", "torrentpy.tui.live", "torrentpy.tui.dashboard",
         "torrentpy.net.dht", "torrentpy.dht.node", "torrentpy.protocol.krpc")


def _first_request_report(tmp_path: Path, *, tracker: bool) -> dict[str, object]:
    one, torrent, seeder = start_probe(tmp_path, tracker)
    try:
        out = tmp_path / "report.txt"
        save = tmp_path / "save"
        save.mkdir()
        argv = [sys.executable, "-P", "-c", DRIVER, str(out), "add", str(torrent), "-o", str(save), "--no-tui",
                "--bind", "127.0.0.1", "--seed-ratio", "0"]
        if one is None:
            argv += ["--peer", f"127.0.0.1:{seeder.port}"]
        env = {**os.environ, "TORRENTPY_DHT_BOOTSTRAP": "", "TORRENTPY_DHT_STATE": str(tmp_path / "dht.dat"),
               "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        seeder.wait()
        assert out.exists(), proc.stderr
        report: dict[str, object] = ast.literal_eval(out.read_text())
        # Written by the DHT when the session closes: it had started.
        report["dht_state_saved"] = (tmp_path / "dht.dat").exists()
        return report
    finally:
        if one is not None:
            one.close()


@pytest.mark.parametrize("tracker", [False, True], ids=["peer", "http-tracker"])
def test_the_first_request_goes_out_before_the_heavy_parts_load(tmp_path: Path, tracker: bool) -> None:
    report = _first_request_report(tmp_path, tracker=tracker)
    modules = set(report["modules"])  # type: ignore[call-overload]
    assert "torrentpy.engine.session" in modules  # the wrapper saw the real thing
    loaded = [name for name in LATER if name in modules or any(m.startswith(name + ".") for m in modules)]
    assert loaded == []
    assert report["tls_contexts"] == []  # no TLS until an https:// tracker is contacted
    assert report["gc_enabled"] is False  # the collector is paused for the start-up …
    # … and once it is over the DHT has started (it is on by default) and the collector runs again.
    assert report["dht_module_later"] is True and report["dht_state_saved"] is True
    assert report["gc_enabled_later"] is True
