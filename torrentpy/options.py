"""The command line's options: each command's arguments, added to its sub-parser only when that command
runs (or help lists it), and the argument types they parse with."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from torrentpy.errors import UsageError
from torrentpy.metainfo import parse_file_ranges
from torrentpy.units import parse_rate


def rate_arg(text: str) -> int:
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def only_arg(text: str) -> list[int]:
    """--only 1,3-5: file numbers from 1, in the torrent's order (`info --json`, the files panel)."""
    try:
        return parse_file_ranges(text, base=1)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def peer_arg(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise UsageError(f"invalid peer {text!r}: use IP:PORT")
    return host.strip("[]"), int(port)


def dht_node_arg(text: str) -> str:
    from torrentpy.net.dht import parse_host_port

    try:
        parse_host_port(text)
    except ValueError:
        raise UsageError(f"invalid DHT node {text!r}: use HOST:PORT") from None
    return text


class _SeedRatio(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        try:
            namespace.seed_ratio = float(values)
        except ValueError:
            raise UsageError(f"invalid --seed-ratio {values!r}: use a number such as 1.0") from None
        namespace.seed_ratio_given = True


def args_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help=".torrent file or magnet URI")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--files", action="store_true", help="list every file (default: a summary of large torrents)")


def args_create(p: argparse.ArgumentParser) -> None:
    p.add_argument("path")
    p.add_argument("-t", "--tracker", action="append", default=[], metavar="URL",
                   help="tracker URL; repeat for more tiers (BEP 12)")
    p.add_argument("-w", "--webseed", action="append", default=[], metavar="URL", help="web seed URL (BEP 19)")
    p.add_argument("--piece-size", default="auto", help="auto, or bytes such as 262144, 256K, 1M")
    p.add_argument("--private", action="store_true", help="set the private flag (BEP 27)")
    p.add_argument("--comment")
    p.add_argument("-o", "--output", metavar="OUT.torrent")
    p.add_argument("-f", "--force", action="store_true", help="overwrite OUT.torrent")


def args_verify(p: argparse.ArgumentParser) -> None:
    p.add_argument("torrent")
    p.add_argument("dir")
    p.add_argument("--json", action="store_true")


def args_add(p: argparse.ArgumentParser) -> None:
    p.add_argument("sources", nargs="+", metavar="SOURCE", help=".torrent file or magnet URI")
    p.add_argument("-o", "--output-dir", default=".", metavar="DIR", help="where files go (default: here)")
    p.add_argument("--listen-port", type=int, metavar="N", help="default 6881, or the next free port")
    p.add_argument("--bind", default="0.0.0.0", metavar="ADDR", help="address to listen on")
    p.add_argument("--seed-ratio", action=_SeedRatio, default=1.0, metavar="R",
                   help="stop seeding after uploading R × the size (default 1.0; 0 = exit when done)")
    p.add_argument("--seed-time", type=float, metavar="MINUTES", help="seed for this long after completing")
    p.add_argument("--seed-forever", action="store_true", help="seed until stopped")
    p.add_argument("--max-peers", type=int, default=50, metavar="N", help="connections per torrent")
    p.add_argument("--max-download-rate", metavar="RATE", help="e.g. 500K, 2M, 1.5MiB (per second)")
    p.add_argument("--max-upload-rate", metavar="RATE", help="e.g. 500K, 2M, 1.5MiB (per second)")
    p.add_argument("--unchoke-slots", type=int, default=4, metavar="N", help="peers uploaded to at once")
    p.add_argument("--peer", action="append", type=peer_arg, default=[], metavar="IP:PORT",
                   help="also connect to this peer")
    # Mainline DHT (BEP 5)
    p.add_argument("--no-dht", action="store_true", help="do not use the DHT (never used for private torrents)")
    encryption_option(p, default="tolerated")
    p.add_argument("--dht-bootstrap", action="append", type=dht_node_arg, metavar="HOST:PORT",
                   help="bootstrap the DHT from this node instead of the well-known routers (repeatable)")
    p.add_argument("--dht-state", metavar="FILE",
                   help="DHT node id and routing table (default $XDG_STATE_HOME/torrentpy/dht.dat)")
    p.add_argument("--no-tui", action="store_true", help="plain progress lines instead of the dashboard")
    p.add_argument("--json", action="store_true", help="JSON lines: events and periodic stats")
    p.add_argument("--log-file", metavar="FILE", help="write a debug log (connections, bans, errors) here")
    p.add_argument("--interval", type=float, default=5.0, help=argparse.SUPPRESS)
    # Peer exchange (BEP 11): seconds between our PEX messages to a peer. The spec's minute by default;
    # shorter only for tests among torrentpy peers (libtorrent drops a peer sending it more often).
    p.add_argument("--pex-interval", type=float, default=60.0, help=argparse.SUPPRESS)
    p.add_argument("--only", type=only_arg, metavar="FILES",
                   help="download only these files, e.g. 1,3-5 (numbered from 1 in the torrent's order)")
    p.add_argument("--sequential", action="store_true",
                   help="download pieces in order, to play media while it downloads")
    p.set_defaults(seed_ratio_given=False)


def args_tracker(p: argparse.ArgumentParser) -> None:
    p.add_argument("--http-port", type=int, default=6969, metavar="N")
    p.add_argument("--udp-port", type=int, default=6969, metavar="N")
    p.add_argument("--bind", default="0.0.0.0", metavar="ADDR")


def args_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", default="256M", metavar="SIZE", help="payload size, e.g. 32M, 1G (default 256M)")
    p.add_argument("--peers", type=int, default=3, metavar="N", help="seeding processes (default 3)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (payload, torrent, logs)")
    p.add_argument("--rate", metavar="RATE", help="limit the download, e.g. 8M, to watch it (default: none)")
    p.add_argument("--no-tui", action="store_true", help="plain progress lines instead of the dashboard")
    p.add_argument("--dht", action="store_true",
                   help="no tracker: peers meet over the demo's own DHT on 127.0.0.1 (never the public one)")


def args_daemon(p: argparse.ArgumentParser) -> None:
    p.add_argument("--download-dir", default=".", metavar="DIR", help="where new torrents' files go (default: here)")
    p.add_argument("--state-dir", default=os.path.join(os.path.expanduser("~"), ".local", "state", "torrentpy"),
                   metavar="DIR", help="where the list of torrents and settings is kept")
    p.add_argument("--rpc-bind", default="127.0.0.1", metavar="ADDR",
                   help="address of the RPC (default 127.0.0.1; any other needs --rpc-password)")
    p.add_argument("--rpc-port", type=int, default=9091, metavar="N", help="RPC port (default 9091)")
    p.add_argument("--rpc-username", metavar="U", help="HTTP basic auth user")
    p.add_argument("--rpc-password", metavar="P", help="HTTP basic auth password")
    p.add_argument("--rpc-host", action="append", default=[], metavar="NAME",
                   help="also accept this Host header name (default: IP addresses and localhost only)")
    p.add_argument("--listen-port", type=int, metavar="N", help="peer port: default 6881, or the next free port")
    p.add_argument("--bind", default="0.0.0.0", metavar="ADDR", help="address to listen for peers on")
    p.add_argument("--log-file", metavar="FILE", help="log here instead of to stderr")
    p.add_argument("--no-dht", action="store_true", help="do not use the DHT (never used for private torrents)")
    encryption_option(p, default=None)


def args_dashboard(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rpc", default="http://127.0.0.1:9091/transmission/rpc", metavar="URL",
                   help="the daemon's RPC (default http://127.0.0.1:9091/transmission/rpc; user:pass@ allowed)")
    p.add_argument("--rpc-username", metavar="U", help="HTTP basic auth user")
    p.add_argument("--rpc-password", metavar="P", help="HTTP basic auth password")


def encryption_option(p: argparse.ArgumentParser, *, default: str | None) -> None:
    saved = " (default: as last set, else tolerated)" if default is None else " (default tolerated)"
    p.add_argument("--encryption", choices=("tolerated", "preferred", "required"), default=default,
                   help="peer encryption (MSE/PE): tolerated dials in plaintext and accepts both; preferred "
                        "dials encrypted first; required refuses plaintext peers" + saved)


# Each command's options are added only when that command runs (or help lists them): building all of
# them cost milliseconds of every start.
COMMANDS: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None]], ...] = (
    ("info", "show what a .torrent file or magnet link holds", args_info),
    ("create", "make a .torrent from a file or folder", args_create),
    ("verify", "hash-check downloaded data against a .torrent", args_verify),
    ("add", "download (and seed) torrents", args_add),
    ("tracker", "run a small HTTP + UDP tracker", args_tracker),
    ("demo", "download a generated payload from local seeders, with the dashboard", args_demo),
    ("daemon", "run in the background, driven over Transmission's RPC (transmission-remote …)", args_daemon),
    ("dashboard", "the live dashboard of a running daemon (torrentpy's or Transmission's)", args_dashboard),
)
