"""Inputs the fuzz targets found crashing a parser, kept as regression tests (see fuzz/README.md)."""

from __future__ import annotations

import pytest

from torrentpy.errors import UsageError
from torrentpy.metainfo import parse_magnet
from torrentpy.options import peer_arg as _peer_arg

HASH = "0102030405060708090a0b0c0d0e0f1011121314"


@pytest.mark.parametrize("port", ["696\u00b9", "\u0663\u0663", "\u00b2"])
def test_magnet_peer_with_a_non_ascii_digit_port_is_ignored(port: str) -> None:
    """fuzz/metainfo_target.py: `str.isdigit()` is true for '¹' (and int() takes Arabic-Indic digits), so
    an x.pe port like '696¹' escaped as a ValueError instead of being skipped like any bad peer."""
    magnet = parse_magnet(f"magnet:?xt=urn:btih:{HASH}&x.pe=127.0.0.1:{port}&x.pe=127.0.0.1:6881")
    assert magnet.peers == (("127.0.0.1", 6881),)


def test_peer_option_with_a_non_ascii_digit_port_is_a_usage_error() -> None:
    """The same check in `--peer IP:PORT` parsing: a one-line usage error, not a traceback."""
    with pytest.raises(UsageError, match="use IP:PORT"):
        _peer_arg("127.0.0.1:6\u00b9")


@pytest.mark.parametrize("url", ["udp://127.0.0.1:tp://127.0.0.1/seed", "udp://127.0.0.1:99999/announce"])
def test_udp_tracker_with_a_port_that_is_no_number_is_a_tracker_error(url: str) -> None:
    """fuzz/rpc_target.py: a magnet's `tr=udp://127.0.0.1:tp://…` made urlsplit's `.port` raise ValueError
    while the torrent was built, so torrent-add answered "internal error" after the daemon had already
    recorded the torrent. The tracker is now refused like any malformed one, and the torrent keeps going."""
    from torrentpy.errors import TrackerError
    from torrentpy.net.tracker import tracker_for_url

    with pytest.raises(TrackerError, match=r"bad tracker URL|not a UDP tracker URL"):
        tracker_for_url(url, lambda: None)


def test_rpc_session_set_refuses_numbers_json_cannot_fit() -> None:
    """The rpc fuzz target's find: 1001e400 parses as infinity, and int(infinity) raised OverflowError."""
    import asyncio

    from torrentpy.rpc.methods import RpcError, session_set

    class Settings:
        speed_limit_down_kbps = 0

    class FakeDaemon:
        settings = Settings()

    for bad in (float("inf"), float("nan"), 1e400, 2**40, -1, True):
        with pytest.raises(RpcError, match="invalid value for 'speed-limit-down'"):
            asyncio.run(session_set(FakeDaemon(), {"speed-limit-down": bad}))  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["http://[::1/announce", "udp://[fe80::1:6969", "http://host:port/announce"])
def test_a_tracker_url_urlsplit_refuses_is_a_tracker_error(url: str) -> None:
    """The rpc fuzz target's find: a magnet's tr= with an unclosed IPv6 bracket made urlsplit raise ValueError
    while the torrent was built, so torrent-add answered an internal error."""
    from torrentpy.errors import TrackerError
    from torrentpy.net.tracker import tracker_for_url

    with pytest.raises(TrackerError, match="bad tracker URL"):
        tracker_for_url(url, lambda: None)
