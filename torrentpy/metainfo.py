"""Parse .torrent files (BEP 3, 12, 19, 27, 47, hybrid BEP 52) and magnet links (BEP 9)
into frozen dataclasses.

Path policy — a torrent's file names are untrusted input and must never reach
outside the download directory or be unusable on disk:

| component                          | decision                                               |
|------------------------------------|--------------------------------------------------------|
| `..`                               | rejected: it can only be an attempt to escape           |
| `.` or empty                       | rejected in `name`; dropped inside a file's path        |
| absolute (`/etc`) or contains `/` `\\` | safe rename: separators become `_`, so it stays one name |
| contains NUL                       | rejected: no file system can store it                   |
| longer than 255 bytes (UTF-8)      | safe rename: shortened, extension kept                  |
| two files mapping to the same path, or a file inside another file | rejected         |
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import gc
import hashlib
import itertools
import os
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, cast

from torrentpy import bencoding
from torrentpy._core.filelist import plain_files
from torrentpy.errors import BencodeError, MetainfoError

# Larger pieces than this exist in no client's creation options; a bigger value
# is a corrupt or hostile file and would make us allocate absurd piece buffers.
MAX_PIECE_LENGTH = 256 * 1024 * 1024
# The longest name most file systems (ext4, NTFS, APFS) accept, in bytes.
MAX_COMPONENT_BYTES = 255
# Bounds what one .torrent can make us create on disk and track in memory.
MAX_FILES = 1_000_000
MAX_TOTAL_LENGTH = 1 << 50


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of the torrent, laid out in the concatenated payload at `offset`."""

    path: tuple[str, ...]  # components under the download directory, torrent name first
    length: int
    offset: int
    padding: bool = False
    attr: str = ""

    @property
    def relpath(self) -> str:
        return os.path.join(*self.path)


@dataclass(frozen=True)
class Metainfo:
    info_hash: bytes  # v1: SHA-1 of the exact `info` bytes
    name: str
    piece_length: int
    pieces: bytes  # concatenated 20-byte SHA-1 digests
    files: tuple[FileEntry, ...]
    total_length: int
    multi_file: bool
    private: bool = False
    trackers: tuple[tuple[str, ...], ...] = ()  # BEP 12 tiers
    web_seeds: tuple[str, ...] = ()
    comment: str | None = None
    created_by: str | None = None
    creation_date: int | None = None
    hybrid: bool = False
    info_bytes: bytes = field(default=b"", repr=False)

    @property
    def info_hash_hex(self) -> str:
        return self.info_hash.hex()

    @property
    def num_pieces(self) -> int:
        return len(self.pieces) // 20

    def piece_hash(self, index: int) -> bytes:
        return self.pieces[index * 20 : index * 20 + 20]

    def piece_size(self, index: int) -> int:
        if index == self.num_pieces - 1:
            return self.total_length - index * self.piece_length
        return self.piece_length

    @cached_property
    def payload_length(self) -> int:
        """Bytes of real data, padding files excluded."""
        return sum(f.length for f in self.files if not f.padding)

    def announce_urls(self) -> list[str]:
        return [url for tier in self.trackers for url in tier]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (what `torrentpy info --json` prints)."""
        return {
            "name": self.name,
            "info_hash": self.info_hash_hex,
            "total_size": self.total_length,
            "piece_length": self.piece_length,
            "piece_count": self.num_pieces,
            "private": self.private,
            "hybrid": self.hybrid,
            "trackers": [list(t) for t in self.trackers],
            "web_seeds": list(self.web_seeds),
            "created_by": self.created_by,
            "comment": self.comment,
            "creation_date": self.creation_date,
            "files": [
                {"path": "/".join(f.path), "size": f.length}
                for f in self.files
                if not f.padding
            ],
        }


@dataclass(frozen=True)
class Magnet:
    info_hash: bytes
    display_name: str | None = None
    trackers: tuple[tuple[str, ...], ...] = ()
    peers: tuple[tuple[str, int], ...] = ()  # x.pe
    web_seeds: tuple[str, ...] = ()
    select_only: tuple[int, ...] | None = None  # BEP 53 so=: 0-based indices of the info dict's files

    @property
    def info_hash_hex(self) -> str:
        return self.info_hash.hex()

    @property
    def name(self) -> str:
        return self.display_name or self.info_hash_hex

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.display_name,
            "info_hash": self.info_hash_hex,
            "trackers": [list(t) for t in self.trackers],
            "peers": [f"{h}:{p}" for h, p in self.peers],
            "web_seeds": list(self.web_seeds),
        }


# --- text fields ------------------------------------------------------------


def _text(value: Any, what: str) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise MetainfoError(f"{what} must be a string")


def _optional_text(meta: dict[bytes, Any], key: bytes) -> str | None:
    value = meta.get(key)
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else None


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MetainfoError(f"{what} must be an integer")
    return value


# --- paths ------------------------------------------------------------------

_SEPARATORS = re.compile(r"[/\\]")


def _shorten(component: str) -> str:
    encoded = component.encode("utf-8")
    if len(encoded) <= MAX_COMPONENT_BYTES:
        return component
    stem, ext = os.path.splitext(component)
    ext_bytes = ext.encode("utf-8")
    if len(ext_bytes) > 32:  # not a real extension; don't keep it
        stem, ext_bytes = component, b""
    # A short digest of the full name keeps two long names that share a prefix apart.
    tag = "~" + hashlib.sha1(encoded).hexdigest()[:8]
    room = MAX_COMPONENT_BYTES - len(ext_bytes) - len(tag)
    head = stem.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    return head + tag + ext_bytes.decode("utf-8")


def sanitize_component(component: str, *, where: str) -> str | None:
    """Return the on-disk form of one path component, None to drop it, or raise."""
    if "\x00" in component:
        raise MetainfoError(f"{where} contains a NUL character")
    if component == "..":
        raise MetainfoError(f"{where} contains '..', which would escape the download directory")
    if component in ("", "."):
        return None
    renamed = _SEPARATORS.sub("_", component)
    if renamed in ("..", "."):
        raise MetainfoError(f"{where} contains '..', which would escape the download directory")
    return _shorten(renamed)


def _name_of(info: dict[bytes, Any]) -> str:
    raw = info.get(b"name.utf-8", info.get(b"name"))
    if raw is None:
        raise MetainfoError("torrent has no name")
    name = sanitize_component(_text(raw, "name"), where="torrent name")
    if name is None:
        raise MetainfoError("torrent name is empty")
    return name


# What a raw path component becomes on disk (None: dropped). Big torrents repeat folder names
# thousands of times, and each rule below costs more than a dictionary lookup.
_Components = dict[bytes, "str | None"]
_UNSEEN = object()


# A component every rule in the table above leaves as it is: short, no separator or NUL, not "." or "..".
_PLAIN = re.compile(rb"(?!\.\.?\Z)[^/\\\x00]{1,%d}\Z" % MAX_COMPONENT_BYTES)


def _plain(part: object) -> str | None:
    """`part` as text when the path policy has nothing to say about it (most names), else None."""
    if type(part) is not bytes or _PLAIN.match(part) is None:
        return None
    try:
        return part.decode("utf-8")
    except UnicodeDecodeError:  # replaced characters may lengthen it: the full rules decide
        return None


def _file_path(entry: dict[bytes, Any], index: int, name: str, known: _Components) -> tuple[str, ...]:
    raw = entry.get(b"path.utf-8", entry.get(b"path"))
    if not isinstance(raw, list) or not raw:
        raise MetainfoError(f"file {index} has no path")
    parts = [name]
    for part in raw:
        cached = known.get(part, _UNSEEN) if type(part) is bytes else _UNSEEN
        if cached is _UNSEEN:
            clean = _plain(part)
            if clean is None:
                where = f"path of file {index}"
                clean = sanitize_component(_text(part, where), where=where)
            if type(part) is bytes:
                known[part] = clean
        else:
            clean = cast("str | None", cached)
        if clean is not None:
            parts.append(clean)
    if len(parts) == 1:
        raise MetainfoError(f"path of file {index} is empty")
    return tuple(parts)


def _is_padding(attr: str, path: tuple[str, ...]) -> bool:
    # Older BitComet torrents mark padding by name only.
    return "p" in attr or path[-1].startswith("_____padding_file_")


def _check_unique(files: list[FileEntry]) -> None:
    paths = [f.path for f in files if not f.padding]
    seen = set(paths)
    if len(seen) < len(paths):  # name the first repeat in file order
        seen.clear()
        for path in paths:
            if path in seen:
                raise MetainfoError(f"two files share the path {'/'.join(path)!r}")
            seen.add(path)
    # Every folder a file sits in, from the few distinct parent folders.
    folders = {parent[:i] for parent in {path[:-1] for path in paths} for i in range(1, len(parent) + 1)}
    if seen.isdisjoint(folders):
        return
    # Name the first clash in file order, as users read the list.
    for path in paths:
        for i in range(1, len(path)):
            if path[:i] in seen:
                raise MetainfoError(f"file {'/'.join(path[:i])!r} is also used as a folder")


# --- torrents ---------------------------------------------------------------


def _parse_files(info: dict[bytes, Any], name: str) -> tuple[list[FileEntry], bool]:
    has_length = b"length" in info
    has_files = b"files" in info
    if has_length and has_files:
        raise MetainfoError("torrent has both 'length' and 'files'")
    if has_length:
        length = _int(info[b"length"], "file length")
        if length < 0:
            raise MetainfoError("file length is negative")
        return [FileEntry(path=(name,), length=length, offset=0)], False
    if not has_files:
        raise MetainfoError("torrent has neither 'length' nor 'files'")
    raw_files = info[b"files"]
    if not isinstance(raw_files, list) or not raw_files:
        raise MetainfoError("'files' must be a non-empty list")
    if len(raw_files) > MAX_FILES:
        raise MetainfoError(f"torrent lists more than {MAX_FILES} files")
    known: _Components = {}
    # Ordinary files in C; the first file any rule applies to, and all after it, go through the rules.
    files, offset = plain_files(raw_files, name, FileEntry, known, MAX_TOTAL_LENGTH)
    for i, entry in enumerate(itertools.islice(raw_files, len(files), None), len(files)):
        if not isinstance(entry, dict):
            raise MetainfoError(f"file {i} is not a dictionary")
        raw_length = entry.get(b"length")
        # The message's f-string only when it is needed.
        length = raw_length if type(raw_length) is int else _int(raw_length, f"length of file {i}")
        if length < 0:
            raise MetainfoError(f"length of file {i} is negative")
        path = _file_path(entry, i, name, known)
        attr_raw = entry.get(b"attr", b"")
        attr = attr_raw.decode("ascii", errors="replace") if isinstance(attr_raw, bytes) and attr_raw else ""
        files.append(FileEntry(path, length, offset, _is_padding(attr, path), attr))
        offset += length
        if offset > MAX_TOTAL_LENGTH:
            raise MetainfoError("torrent is impossibly large")
    _check_unique(files)
    return files, True


def _parse_trackers(meta: dict[bytes, Any]) -> tuple[tuple[str, ...], ...]:
    tiers: list[tuple[str, ...]] = []
    seen: set[str] = set()
    announce_list = meta.get(b"announce-list")
    if isinstance(announce_list, list):
        for tier in announce_list:
            if not isinstance(tier, list):
                continue
            urls = []
            for url in tier:
                if isinstance(url, bytes):
                    text = url.decode("utf-8", errors="replace").strip()
                    if text and text not in seen:
                        seen.add(text)
                        urls.append(text)
            if urls:
                tiers.append(tuple(urls))
    # BEP 12: announce is ignored when announce-list is present and usable.
    announce = meta.get(b"announce")
    if not tiers and isinstance(announce, bytes) and announce.strip():
        tiers.append((announce.decode("utf-8", errors="replace").strip(),))
    return tuple(tiers)


def _parse_web_seeds(meta: dict[bytes, Any]) -> tuple[str, ...]:
    raw = meta.get(b"url-list")
    items = raw if isinstance(raw, list) else [raw] if raw is not None else []
    return tuple(u.decode("utf-8", errors="replace") for u in items if isinstance(u, bytes) and u)


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cycle collector while a torrent is parsed: decoding makes a tree of containers (no
    cycles to find), and for 100,000 files the collector's repeated passes over them cost as much as
    the parsing itself."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_torrent(data: bytes) -> Metainfo:
    """Parse the bytes of a .torrent file."""
    with _no_cycle_collection():
        return _parse_torrent(data)


def _parse_torrent(data: bytes) -> Metainfo:
    try:
        meta, spans = bencoding.decode_dict_with_spans(data)
    except BencodeError as exc:
        raise MetainfoError(f"not a valid .torrent file ({exc})") from None
    info = meta.get(b"info")
    if not isinstance(info, dict):
        raise MetainfoError("torrent has no 'info' dictionary")
    start, end = spans[b"info"]
    info_bytes = bytes(data[start:end])

    version = info.get(b"meta version")
    pieces = info.get(b"pieces")
    if version == 2 and pieces is None:
        raise MetainfoError("BitTorrent v2-only torrents are not supported yet")
    hybrid = version == 2 and b"file tree" in info

    piece_length = _int(info.get(b"piece length"), "piece length")
    if piece_length <= 0:
        raise MetainfoError("piece length must be positive")
    if piece_length > MAX_PIECE_LENGTH:
        raise MetainfoError(f"piece length {piece_length} is absurdly large")
    if not isinstance(pieces, bytes):
        raise MetainfoError("torrent has no piece hashes")
    if len(pieces) % 20:
        raise MetainfoError("piece hashes are not a multiple of 20 bytes")

    name = _name_of(info)
    files, multi = _parse_files(info, name)
    total = files[-1].offset + files[-1].length  # offsets are running sums
    if total == 0:
        raise MetainfoError("torrent holds no data")
    expected = (total + piece_length - 1) // piece_length
    if len(pieces) // 20 != expected:
        raise MetainfoError(
            f"torrent has {len(pieces) // 20} piece hashes but its size needs {expected}"
        )
    private = info.get(b"private") == 1
    creation = meta.get(b"creation date")
    return Metainfo(
        info_hash=hashlib.sha1(info_bytes).digest(),
        name=name,
        piece_length=piece_length,
        pieces=pieces,
        files=tuple(files),
        total_length=total,
        multi_file=multi,
        private=private,
        trackers=_parse_trackers(meta),
        web_seeds=_parse_web_seeds(meta),
        comment=_optional_text(meta, b"comment.utf-8") or _optional_text(meta, b"comment"),
        created_by=_optional_text(meta, b"created by"),
        creation_date=creation if isinstance(creation, int) and not isinstance(creation, bool) else None,
        hybrid=hybrid,
        info_bytes=info_bytes,
    )


def parse_info_dict(info_bytes: bytes, *, trackers: tuple[tuple[str, ...], ...] = ()) -> Metainfo:
    """Build Metainfo from a bare `info` dictionary, as fetched from peers with BEP 9."""
    wrapped = b"d4:info" + bytes(info_bytes) + b"e"
    return dataclasses.replace(parse_torrent(wrapped), trackers=trackers)


# --- magnets ----------------------------------------------------------------


def _parse_btih(value: str) -> bytes:
    if len(value) == 40:
        try:
            return binascii.unhexlify(value)
        except ValueError:  # binascii.Error, or non-ASCII text
            pass
    elif len(value) == 32:
        try:
            return base64.b32decode(value.upper())
        except ValueError:  # binascii.Error, or non-ASCII text
            pass
    raise MetainfoError(f"magnet link has an invalid info-hash: {value[:64]!r}")


def _parse_peer(value: str) -> tuple[str, int] | None:
    host, sep, port = value.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        return None
    return host.strip("[]"), int(port)


def parse_magnet(uri: str) -> Magnet:
    """Parse a magnet URI (BEP 9); fetching the metadata is the engine's job."""
    if not uri.startswith("magnet:?"):
        raise MetainfoError("not a magnet link (it must start with 'magnet:?')")
    params = urllib.parse.parse_qsl(uri[len("magnet:?"):], keep_blank_values=True)
    info_hash = None
    has_v2 = False
    name = None
    trackers: list[str] = []
    peers: list[tuple[str, int]] = []
    web_seeds: list[str] = []
    select_only: list[int] | None = None
    for key, value in params:
        if key == "xt" or key.startswith("xt."):
            if value.lower().startswith("urn:btih:"):
                info_hash = info_hash or _parse_btih(value[9:])
            elif value.lower().startswith("urn:btmh:"):
                has_v2 = True
        elif key == "dn":
            name = value
        elif key == "tr" or key.startswith("tr."):
            if value and value not in trackers:
                trackers.append(value)
        elif key == "x.pe":
            peer = _parse_peer(value)
            if peer:
                peers.append(peer)
        elif key == "ws":
            web_seeds.append(value)
        elif key == "so":
            try:
                select_only = (select_only or []) + parse_file_ranges(value, base=0)
            except ValueError:
                pass  # as libtorrent does: a bad selection is no reason to refuse the link
    if info_hash is None:
        if has_v2:
            raise MetainfoError("BitTorrent v2-only magnet links are not supported yet")
        raise MetainfoError("magnet link has no BitTorrent info-hash (xt=urn:btih:…)")
    # Each tr is its own tier: libtorrent and Transmission announce to all of them.
    return Magnet(
        info_hash=info_hash,
        display_name=name,
        trackers=tuple((t,) for t in trackers),
        peers=tuple(peers),
        web_seeds=tuple(web_seeds),
        select_only=tuple(select_only) if select_only is not None else None,
    )


# A range like 1-1000000000 in --only or so= must not build a billion-element list.
MAX_FILE_RANGE_SPAN = 1 << 20


def parse_file_ranges(text: str, *, base: int) -> list[int]:
    """``"1,3-5"`` → [1, 3, 4, 5] minus ``base`` (1 for ``add --only``, 0 for BEP 53's so=).
    ValueError, one line, on anything else: empty parts, reversed or huge ranges, numbers below ``base``."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        lo_s, dash, hi_s = part.partition("-")
        if not all(d.isascii() and d.isdigit() for d in ((lo_s, hi_s) if dash else (lo_s,))):
            raise ValueError(f"{part!r} is not a file number or a range like 3-5")
        lo = int(lo_s)
        hi = int(hi_s) if dash else lo
        if lo < base or hi < lo:
            raise ValueError(f"{part!r} is not a file number or a range like 3-5 (files count from {base})")
        if hi - lo >= MAX_FILE_RANGE_SPAN:
            raise ValueError(f"{part!r} is too large a range")
        out.extend(range(lo - base, hi - base + 1))
        if len(out) > MAX_FILE_RANGE_SPAN:
            raise ValueError("too many file numbers")
    return out


# Refuse to read anything bigger as a .torrent: bencoding's own input limit.
MAX_TORRENT_FILE_BYTES = bencoding.MAX_INPUT_BYTES


def load(source: str) -> Metainfo | Magnet:
    """A .torrent path, or a magnet URI, or a bare 40-hex / 32-base32 info-hash."""
    if source.startswith("magnet:"):
        return parse_magnet(source)
    if re.fullmatch(r"[0-9a-fA-F]{40}|[A-Za-z2-7]{32}", source) and not os.path.exists(source):
        return Magnet(info_hash=_parse_btih(source))
    try:
        size = os.path.getsize(source)
        if size > MAX_TORRENT_FILE_BYTES:
            raise MetainfoError(f"{source}: {size} bytes is too large for a .torrent file")
        with open(source, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise MetainfoError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise MetainfoError(f"{source}: is a folder, not a .torrent file") from None
    except OSError as exc:
        raise MetainfoError(f"{source}: cannot read ({exc.strerror})") from None
    try:
        return parse_torrent(data)
    except MetainfoError as exc:
        raise MetainfoError(f"{source}: {exc}") from None
