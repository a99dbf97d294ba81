"""The Transmission RPC methods (rpc-spec, version 16), applied to a Daemon.

Each method takes the request's `arguments` and returns the response's; a failure the user should
read is raised as RpcError and becomes the response's `result` string, as Transmission reports it.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import shutil
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from torrentpy import __version__
from torrentpy.daemon import RECENTLY_ACTIVE_IDS
from torrentpy.engine.encryption import MODES
from torrentpy.engine.selection import SelectionError
from torrentpy.errors import TorrentError
from torrentpy.metainfo import MAX_TORRENT_FILE_BYTES, Magnet, Metainfo, load, parse_magnet, parse_torrent
from torrentpy.rpc.fields import known_fields, torrent_fields

if TYPE_CHECKING:
    from torrentpy.daemon import Daemon

__all__ = ["METHODS", "RPC_VERSION", "RpcError"]

RPC_VERSION = 16  # Transmission 3.00's
RPC_VERSION_MINIMUM = 1
# What session-get says: the Transmission version this speaks like, then who really answers.
VERSION_STRING = f"3.00 (torrentpy {__version__})"

Method = Callable[["Daemon", dict[str, Any]], Awaitable[dict[str, Any]]]


class RpcError(Exception):
    """The request failed; the message is the response's `result`."""


def _ids(daemon: Daemon, args: dict[str, Any]) -> list[bytes]:
    return daemon.resolve(args.get("ids"))


def _bool(args: dict[str, Any], key: str, default: bool) -> bool:
    value = args.get(key, default)
    return bool(value) if isinstance(value, bool | int) else default


def _count(value: Any) -> bool:
    """A number a setting may hold: JSON also brings booleans, NaN, infinities and 1e400."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
        and 0 <= value < 2**31


def _int_list(args: dict[str, Any], key: str) -> list[int]:
    value = args.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise RpcError(f"'{key}' must be a list of file indices")
    return value


# --- session ----------------------------------------------------------------


def session_arguments(daemon: Daemon) -> dict[str, Any]:
    s = daemon.settings
    session = daemon.session
    try:
        free = shutil.disk_usage(s.download_dir).free
    except OSError:
        free = -1
    # Features torrentpy has not got are reported off, as a Transmission with them switched off does.
    return {
        "version": VERSION_STRING, "rpc-version": RPC_VERSION, "rpc-version-minimum": RPC_VERSION_MINIMUM,
        "session-id": daemon.session_id,
        "config-dir": daemon.state.path, "download-dir": s.download_dir, "download-dir-free-space": free,
        "incomplete-dir": s.download_dir, "incomplete-dir-enabled": False,
        "peer-port": session.listen_port, "peer-port-random-on-start": False, "port-forwarding-enabled": False,
        "peer-limit-global": session.config.max_connections, "peer-limit-per-torrent": s.peer_limit_per_torrent,
        "speed-limit-down": s.speed_limit_down_kbps, "speed-limit-down-enabled": s.speed_limit_down_enabled,
        "speed-limit-up": s.speed_limit_up_kbps, "speed-limit-up-enabled": s.speed_limit_up_enabled,
        "alt-speed-enabled": False, "alt-speed-down": 50, "alt-speed-up": 50, "alt-speed-time-enabled": False,
        "alt-speed-time-begin": 540, "alt-speed-time-end": 1020, "alt-speed-time-day": 127,
        "seedRatioLimit": s.seed_ratio_limit, "seedRatioLimited": s.seed_ratio_limited,
        "idle-seeding-limit": s.idle_seeding_limit, "idle-seeding-limit-enabled": s.idle_seeding_limit_enabled,
        "start-added-torrents": s.start_added_torrents, "trash-original-torrent-files": False,
        "rename-partial-files": False, "cache-size-mb": 0,
        "dht-enabled": daemon.session.config.dht, "lpd-enabled": False, "pex-enabled": True, "utp-enabled": False,
        "encryption": session.encryption.mode,
        "blocklist-enabled": False, "blocklist-size": 0, "blocklist-url": "",
        "download-queue-enabled": s.download_queue_enabled, "download-queue-size": s.download_queue_size,
        "seed-queue-enabled": s.seed_queue_enabled, "seed-queue-size": s.seed_queue_size,
        "queue-stalled-enabled": False, "queue-stalled-minutes": 30,
        "script-torrent-done-enabled": False, "script-torrent-done-filename": "",
        "units": {"speed-units": ["kB/s", "MB/s", "GB/s", "TB/s"], "speed-bytes": 1000,
                  "size-units": ["kB", "MB", "GB", "TB"], "size-bytes": 1000,
                  "memory-units": ["KiB", "MiB", "GiB", "TiB"], "memory-bytes": 1024},
    }


async def session_get(daemon: Daemon, args: dict[str, Any]) -> dict[str, Any]:
    everything = session_arguments(daemon)
    fields = args.get("fields")
    if isinstance(fields, list) and fields:  # RPC 16: a front end may ask for a few
        return {k: v for k, v in everything.items() if k in fields}
    return everything


# session-set keys torrentpy applies, and the attribute of SessionSettings each one sets.
_SETTABLE = {
    "speed-limit-down": "speed_limit_down_kbps", "speed-limit-down-enabled": "speed_limit_down_enabled",
    "speed-limit-up": "speed_limit_up_kbps", "speed-limit-up-enabled": "speed_limit_up_enabled",
    "seedRatioLimit": "seed_ratio_limit", "seedRatioLimited": "seed_ratio_limited",
    "idle-seeding-limit": "idle_seeding_limit", "idle-seeding-limit-enabled": "idle_seeding_limit_enabled",
    "peer-limit-per-torrent": "peer_limit_per_torrent", "start-added-torrents": "start_added_torrents",
    "download-queue-enabled": "download_queue_enabled", "download-queue-size": "download_queue_size",
    "seed-queue-enabled": "seed_queue_enabled", "seed-queue-size": "seed_queue_size",
}
# Features torrentpy lacks: asking to switch one on is refused; switching it off is what it already is.
_ABSENT = ("lpd-enabled", "utp-enabled", "port-forwarding-enabled", "blocklist-enabled",
           "alt-speed-enabled", "alt-speed-time-enabled", "incomplete-dir-enabled",
           "queue-stalled-enabled", "script-torrent-done-enabled", "rename-partial-files")


async def session_set(daemon: Daemon, args: dict[str, Any]) -> dict[str, Any]:
    absent = [k for k in _ABSENT if args.get(k) is True]
    if absent:
        raise RpcError(f"not supported by torrentpy: {', '.join(absent)}")
    if "dht-enabled" in args and args["dht-enabled"] is not daemon.session.config.dht:
        raise RpcError("dht-enabled is chosen when the daemon starts (torrentpy daemon --no-dht)")
    if "encryption" in args:
        if args["encryption"] not in MODES:
            raise RpcError(f"'encryption' must be one of {', '.join(MODES)}")
        daemon.settings.encryption = args["encryption"]
    if "download-dir" in args:
        folder = args["download-dir"]
        if not isinstance(folder, str) or not os.path.isabs(folder):
            raise RpcError("download directory path is not absolute")
        daemon.settings.download_dir = folder
    for key, attr in _SETTABLE.items():
        if key in args:
            value = args[key]
            kind = type(getattr(daemon.settings, attr))
            if (kind is bool and not isinstance(value, bool)) or (kind in (int, float) and not _count(value)):
                raise RpcError(f"invalid value for '{key}'")
            setattr(daemon.settings, attr, kind(value))
    daemon.apply_limits()
    daemon.apply_queue()
    daemon.save_session()
    return {}


async def session_stats(daemon: Daemon, args: dict[str, Any]) -> dict[str, Any]:
    session = daemon.session
    now = session.now()
    # Sums over the torrents, not a snapshot of each: front ends ask for this on every refresh.
    down_rate = up_rate = 0.0
    paused = 0
    for t in session.torrents.values():
        down_rate += t.down.rate(now)
        up_rate += t.up.rate(now)
        paused += t.paused or t.state in ("finished", "error")
    down, up = daemon.totals()
    seconds = int(now - session.started_at)
    current = {"uploadedBytes": up, "downloadedBytes": down, "filesAdded": daemon.files_added,
               "sessionCount": 1, "secondsActive": seconds}
    base = daemon.settings.cumulative
    cumulative = {k: base.get(k, 0) + (v if k != "sessionCount" else 0) for k, v in current.items()}
    cumulative["sessionCount"] = base.get("sessionCount", 1)
    return {
        "activeTorrentCount": len(session.torrents) - paused, "pausedTorrentCount": paused,
        "torrentCount": len(session.torrents), "downloadSpeed": int(down_rate),
        "uploadSpeed": int(up_rate), "current-stats": current, "cumulative-stats": cumulative,
    }


async def session_close(daemon: Daemon, args: dict[str, Any]) -> dict[str, Any]:
    daemon.session.request_stop()
    return {}


async def free_space(daemon: Daemon, args: dict[str, Any]) -> dict[str, Any]:
    path = args.get("path")
    if not isinstance(path, str) or not os.path.isabs(path):
        raise RpcError("directory path is not absolute")
    try:
        free = shutil.disk_usage(path).free
    except OSError as exc:
        raise RpcError(exc.strerror or str(exc)) from None
    return {"path": path, "size-bytes": free}


async def port_test(daemon: Daemon, args: dict[str, Any]) -> dict[str, Any]:
    # Transmission asks a web service of its own project whether the port is reachable from outside;
    # torrentpy asks no outside service, so it cannot know, and says so rather than guess.
    raise RpcError("port-test is not supported: torrentpy does not ask an outside service to test its port")


# --- torrents ---------------------------------------------------------------


async def _read_source(daemon: Daemon, args: dict[str, Any]) -> Metainfo | Magnet:
    metainfo, filename = args.get("metainfo"), args.get("filename")
    try:
        if isinstance(metainfo, str) and metainfo:
            try:
                data = base64.b64decode(metainfo, validate=False)
            except (binascii.Error, ValueError):
                raise RpcError("invalid or corrupt torrent file") from None
            return parse_torrent(data)
        if not isinstance(filename, str) or not filename:
            raise RpcError("no filename or metainfo specified")
        if filename.startswith("magnet:"):
            return parse_magnet(filename)
        if filename.startswith(("http://", "https://")):
            return parse_torrent(await _fetch(daemon, filename))
        # A path on the daemon's machine, read with the daemon's own rights (load bounds its size).
        return load(filename)
    except TorrentError:
        raise RpcError("invalid or corrupt torrent file") from None


async def _fetch(daemon: Daemon, url: str) -> bytes:
    import aiohttp

    try:
        async with daemon.session.http_session().get(url, timeout=aiohttp.ClientTimeout(total=30)) as resp:
            if resp.status != 200:
                raise RpcError(f"gotMetadataFromURL: http error {resp.status}: {resp.reason}")
            data = await resp.content.read(MAX_TORRENT_FILE_BYTES + 1)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise RpcError(f"gotMetadataFromURL: {exc or type(exc).__name__}") from None
    if len(data) > MAX_TORRENT_FILE_BYTES:
        raise RpcError("invalid or corrupt torrent file")
    return data


async def torrent_add(daemon: Daemon, args: dict[str, Any]) -> dict[str, Any]:
    source = await _read_source(daemon, args)
    folder = args.get("download-dir")
    if folder is not None and (not isinstance(folder, str) or not os.path.isabs(folder)):
        raise RpcError("download directory path is not absolute")
    paused = args.get("paused")
    try:
        record, duplicate = daemon.add(source, save_dir=folder, paused=paused if isinstance(paused, bool) else None)
    except (TorrentError, OSError) as exc:
        raise RpcError(str(exc)) from None
    if not duplicate:
        torrent_settings: dict[str, Any] = {k: args[k] for k in ("files-wanted", "files-unwanted", "priority-high",
                                                  "priority-low", "priority-normal", "peer-limit") if k in args}
        if torrent_settings:
            await _apply_settings(daemon, record.info_hash, torrent_settings)
    key = "torrent-duplicate" if duplicate else "torrent-added"
    return {key: {"id": record.id, "name": record.name, "hashString": record.info_hash.hex()}}


async def torrent_get(daemon: Daemon, args: dict[str, Any]) -> dict[str, Any]:
    fields = args.get("fields")
    if not isinstance(fields, list) or not fields:
        raise RpcError("no fields specified")
    names = known_fields(fields)
    now = daemon.session.now()
    torrents = daemon.session.torrents
    rows = []
    # Only the torrents asked for, and of each only the fields asked for: "recently-active" or a few
    # ids cost what they return, not what the session holds.
    for info_hash in _ids(daemon, args):
        torrent = torrents.get(info_hash)
        if torrent is not None:
            rows.append(torrent_fields(daemon, torrent, daemon.record(info_hash), names, now))
    out: dict[str, Any]
    if args.get("format") == "table":
        header = names if rows else [f for f in fields if isinstance(f, str)]
        out = {"torrents": [header, *([r[n] for n in names] for r in rows)]}
    else:
        out = {"torrents": rows}
    if args.get("ids") in RECENTLY_ACTIVE_IDS:
        out["removed"] = daemon.recently_removed()
    return out


async def _apply_settings(daemon: Daemon, info_hash: bytes, args: dict[str, Any]) -> None:
    torrent = daemon.torrent(info_hash)
    store: dict[str, Any] = {}
    num_files = len(torrent.meta.files) if torrent.meta is not None else None
    real = [i for i, f in enumerate(torrent.meta.files) if not f.padding] if torrent.meta is not None else []

    def file_indices(key: str) -> list[int]:
        # RPC file numbers count the files a front end sees, as the engine's selection does (no padding).
        wanted = _int_list(args, key)
        if num_files is None and wanted:
            raise RpcError("the torrent's file list is not known yet (its metadata is being fetched)")
        if any(not 0 <= i < len(real) for i in wanted):
            raise RpcError("file index out of range")
        return wanted if wanted else list(range(len(real)))  # an empty list means every file

    try:
        for key, wanted_flag in (("files-wanted", True), ("files-unwanted", False)):
            if key in args:
                torrent.set_files_wanted(file_indices(key), wanted_flag)
        for key, prio in (("priority-high", 1), ("priority-normal", 0), ("priority-low", -1)):
            if key in args:
                torrent.set_files_priority(file_indices(key), prio)
    except SelectionError as exc:
        raise RpcError(str(exc)) from exc
    if "sequentialDownload" in args:  # Transmission 4.1's name for it
        torrent.sequential = bool(args["sequentialDownload"])
        store["sequentialDownload"] = torrent.sequential
    store.update(_limit_settings(args))
    for key in ("tracker-add", "trackerAdd", "trackerRemove", "trackerReplace", "trackerList"):
        if key in args:
            raise RpcError(f"changing trackers is not supported by torrentpy ({key})")
    if "peer-limit" in args:
        if not isinstance(args["peer-limit"], int) or args["peer-limit"] < 1:
            raise RpcError("invalid value for 'peer-limit'")
        store["peer-limit"] = args["peer-limit"]
    if "seedRatioMode" in args:
        if args["seedRatioMode"] not in (0, 1, 2):
            raise RpcError("invalid value for 'seedRatioMode'")
        store["seedRatioMode"] = args["seedRatioMode"]
    if "seedRatioLimit" in args:
        if not _count(args["seedRatioLimit"]):
            raise RpcError("invalid value for 'seedRatioLimit'")
        store["seedRatioLimit"] = float(args["seedRatioLimit"])
    if "labels" in args:
        labels = args["labels"]
        if not isinstance(labels, list) or not all(isinstance(x, str) and "," not in x for x in labels):
            raise RpcError("labels must be a list of strings without commas")
        store["labels"] = labels
    if any(k in args for k in ("files-wanted", "files-unwanted", "priority-high", "priority-normal",
                               "priority-low")) and torrent.selection.bound:
        # The whole choice, not the request: the resume file forgets an unwanted file's priority
        # (one level byte per file), and Transmission keeps it for when the file is wanted again.
        store["wanted"] = [int(w) for w in torrent.selection.wanted]
        store["priorities"] = list(torrent.selection.priority)
    daemon.set_torrent(info_hash, store)


# torrent-set's per-torrent limits (applied by daemon._apply_torrent_limits): speeds in kB/s, idle in minutes.
_LIMIT_FLAGS = ("downloadLimited", "uploadLimited", "honorsSessionLimits")
_LIMIT_NUMBERS = ("downloadLimit", "uploadLimit", "seedIdleLimit")


def _limit_settings(args: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _LIMIT_FLAGS:
        if key in args:
            if not isinstance(args[key], bool | int):
                raise RpcError(f"invalid value for '{key}'")
            out[key] = bool(args[key])
    for key in _LIMIT_NUMBERS:
        if key in args:
            value = args[key]
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < 2**31:
                raise RpcError(f"invalid value for '{key}'")
            out[key] = int(value)
    if "seedIdleMode" in args:
        if args["seedIdleMode"] not in (0, 1, 2) or isinstance(args["seedIdleMode"], bool):
            raise RpcError("invalid value for 'seedIdleMode'")
        out["seedIdleMode"] = args["seedIdleMode"]
    return out


async def torrent_set(daemon: Daemon, args: dict[str, Any]) -> dict[str, Any]:
    for info_hash in _ids(daemon, args):
        await _apply_settings(daemon, info_hash, args)
    return {}


async def torrent_start(daemon: Daemon, args: dict[str, Any]) -> dict[str, Any]:
    for info_hash in _ids(daemon, args):
        daemon.start(info_hash)
    return {}


async def torrent_start_now(daemon: Daemon, args: dict[str, Any]) -> dict[str, Any]:
    for info_hash in _ids(daemon, args):
        daemon.start(info_hash, now=True)
    return {}


def _queue_move(where: str) -> Method:
    async def method(daemon: Daemon, args: dict[str, Any]) -> dict[str, Any]:
        daemon.move_in_queue(_ids(daemon, args), where)
        return {}
    return method


async def torrent_stop(daemon: Daemon, args: dict[str, Any]) -> dict[str, Any]:
    for info_hash in _ids(daemon, args):
        daemon.stop(info_hash)
    return {}


async def torrent_verify(daemon: Daemon, args: dict[str, Any]) -> dict[str, Any]:
    for info_hash in _ids(daemon, args):
        await daemon.verify(info_hash)
    return {}


async def torrent_remove(daemon: Daemon, args: dict[str, Any]) -> dict[str, Any]:
    delete = _bool(args, "delete-local-data", False)
    for info_hash in _ids(daemon, args):
        try:
            await daemon.remove(info_hash, delete_data=delete)
        except TorrentError as exc:
            raise RpcError(str(exc)) from None
    return {}


async def torrent_set_location(daemon: Daemon, args: dict[str, Any]) -> dict[str, Any]:
    location = args.get("location")
    if not isinstance(location, str) or not os.path.isabs(location):
        raise RpcError("new location path is not absolute")
    move = _bool(args, "move", False)
    for info_hash in _ids(daemon, args):
        try:
            await daemon.set_location(info_hash, location, move=move)
        except (TorrentError, OSError) as exc:
            raise RpcError(str(exc)) from None
    return {}


def _unsupported(what: str) -> Method:
    async def method(daemon: Daemon, args: dict[str, Any]) -> dict[str, Any]:
        raise RpcError(f"{what} is not supported by torrentpy")
    return method


METHODS: dict[str, Method] = {
    "session-get": session_get,
    "session-set": session_set,
    "session-stats": session_stats,
    "session-close": session_close,
    "free-space": free_space,
    "port-test": port_test,
    "torrent-add": torrent_add,
    "torrent-get": torrent_get,
    "torrent-set": torrent_set,
    "torrent-start": torrent_start,
    "torrent-start-now": torrent_start_now,
    "torrent-stop": torrent_stop,
    "torrent-verify": torrent_verify,
    "torrent-remove": torrent_remove,
    "torrent-set-location": torrent_set_location,
    "torrent-reannounce": _unsupported("torrent-reannounce"),
    "torrent-rename-path": _unsupported("renaming files"),
    "blocklist-update": _unsupported("a blocklist"),
    "queue-move-top": _queue_move("top"),
    "queue-move-up": _queue_move("up"),
    "queue-move-down": _queue_move("down"),
    "queue-move-bottom": _queue_move("bottom"),
}
