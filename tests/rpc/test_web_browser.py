"""A real browser: headless Chromium opens Transmission's web client served by `torrentpy daemon`, adds a
torrent by URL through its Open dialog (the .torrent served by a local http.server), and the page's DOM
shows the torrent listed, then progressing, then complete; screenshots are saved in the test's tmp_path.
The DOM is read, not the pixels.
"""

from __future__ import annotations

import asyncio
import functools
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.interop.peers.base import LOOPBACK
from tests.interop.peers.payload import MiB
from tests.rpc.browser import CHROMIUM, Browser
from tests.rpc.daemon_process import DaemonProcess

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]

if CHROMIUM is None:
    pytest.fail("chromium is missing: `make test` installs Debian's chromium", pytrace=False)

# The torrent's row in Transmission 3.00's list (torrent-row.js): its name and "X of Y (Z%)" details.
ROW = """(() => {
  for (const li of document.querySelectorAll('#torrent_list li.torrent')) {
    const name = li.querySelector('.torrent_name');
    if (name && name.textContent === %s) {
      const details = li.querySelector('.torrent_progress_details');
      const peers = li.querySelector('.torrent_peer_details');
      return {details: details ? details.textContent : '', peers: peers ? peers.textContent : ''};
    }
  }
  return null;
})()"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1, and its URL."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    server = ThreadingHTTPServer((LOOPBACK, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://{LOOPBACK}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(10)


def percent(details: str) -> float | None:
    m = re.search(r"\((\d+(?:\.\d+)?)%\)", details)
    return float(m.group(1)) if m else None


async def drive(daemon: DaemonProcess, url: str, name: str, seeder, tmp_path: Path) -> list[str]:
    browser = Browser(tmp_path / "chromium")
    seen: list[str] = []
    try:
        await browser.open(f"http://{LOOPBACK}:{daemon.rpc_port}/transmission/web/")
        # The client has loaded its session (session-get) once its toolbar and list exist.
        # The client has its session (session-get filled the download folder) once this holds.
        await browser.wait_for("typeof transmission !== 'undefined' && !!document.getElementById('torrent_list') "
                               "&& document.getElementById('download-dir').value !== ''", what="the web client")
        # An alert() would block the page (and every DevTools call after it): keep its text instead.
        await browser.evaluate("window.__alerts = []; window.alert = (m) => window.__alerts.push(String(m))")
        await browser.evaluate("document.getElementById('toolbar-open').click()")
        await browser.wait_for("getComputedStyle(document.getElementById('upload_container')).display !== 'none'",
                               what="the Open dialog")
        await browser.send("Page.bringToFront")
        await browser.evaluate("document.getElementById('torrent_upload_url').focus()")
        await browser.type_text(url)
        typed = await browser.evaluate("document.getElementById('torrent_upload_url').value")
        assert typed == url, f"typing into the URL field gave {typed!r}"
        await browser.evaluate("document.getElementById('upload_confirm_button').click()")

        try:
            row = await browser.wait_for(ROW % repr(name), timeout_s=30, what=f"{name} in the list")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the page's alerts: {await browser.evaluate('window.__alerts')}") from None
        seen.append(row["details"])
        seeder.add_peer(LOOPBACK, daemon.peer_port)  # the .torrent names no tracker: the seeder dials
        shot = False
        for _ in range(240):
            row = await browser.evaluate(ROW % repr(name))
            if row and row["details"] not in seen:
                seen.append(row["details"])
            done = percent(row["details"]) if row else None
            if done is not None and 0 < done < 100 and not shot:
                await browser.screenshot(tmp_path / "web-ui-progressing.png")
                shot = True
            if row and "Seeding" in row["peers"]:
                break
            await asyncio.sleep(0.25)
        await browser.screenshot(tmp_path / "web-ui-done.png")
        assert shot, f"the page never showed the download in progress: {seen}"
        return seen
    finally:
        await browser.close()


def test_chromium_adds_a_torrent_by_url_and_watches_it_progress(daemon_factory, payload_factory, torrent_factory,
                                                                libtorrent_peer, served, tmp_path: Path) -> None:
    folder, base = served
    payload = payload_factory(6 * MiB, name="movie.bin")
    torrent = torrent_factory(payload, piece_length=64 * 1024)
    (folder / "movie.torrent").write_bytes(torrent.read_bytes())
    seeder = libtorrent_peer(torrent, payload.save_dir, True)
    seeder.wait_seeding(20)
    daemon = daemon_factory()
    # Slow enough for the page (it polls every few seconds) to show it between 0 and 100 %.
    answer = daemon.call("session-set", {"speed-limit-down": 500, "speed-limit-down-enabled": True})
    assert answer["result"] == "success"

    seen = asyncio.run(drive(daemon, f"{base}/movie.torrent", "movie.bin", seeder, tmp_path))
    percents = [p for p in map(percent, seen) if p is not None]
    assert percents == sorted(percents) and any(0 < p < 100 for p in percents), seen
    (row,) = daemon.torrents("name", "percentDone", "status")
    assert row["name"] == "movie.bin" and row["percentDone"] == 1.0 and row["status"] == 6
    assert payload.differences(daemon.download_dir) == []
    assert (tmp_path / "web-ui-progressing.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "web-ui-done.png").stat().st_size > 1000
