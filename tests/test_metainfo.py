"""Metainfo and magnet parsing: every validation rule, every path-policy row, and libtorrent as referee."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

import libtorrent as lt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrentpy import metainfo
from torrentpy.bencoding import decode, encode
from torrentpy.errors import MetainfoError
from torrentpy.metainfo import (
    MAX_COMPONENT_BYTES,
    MAX_PIECE_LENGTH,
    FileEntry,
    Magnet,
    Metainfo,
    _plain,
    load,
    parse_info_dict,
    parse_magnet,
    parse_torrent,
    sanitize_component,
)

PIECE = 16384


def _pieces(total: int, piece_length: int = PIECE) -> bytes:
    count = -(-total // piece_length)
    return b"".join(hashlib.sha1(i.to_bytes(4, "big")).digest() for i in range(count))


def single(length: int = 40000, name: Any = b"file.bin", extra: dict[bytes, Any] | None = None,
           **info: Any) -> dict[bytes, Any]:
    out: dict[bytes, Any] = {b"name": name, b"piece length": PIECE, b"length": length,
                             b"pieces": _pieces(length)}
    out.update({k.encode(): v for k, v in info.items()})
    out.update(extra or {})
    return out


def multi(files: list[tuple[list[bytes], int]], name: bytes = b"folder", **info: Any) -> dict[bytes, Any]:
    total = sum(n for _, n in files)
    out: dict[bytes, Any] = {
        b"name": name,
        b"piece length": PIECE,
        b"files": [{b"length": n, b"path": p} for p, n in files],
        b"pieces": _pieces(total),
    }
    out.update(info)
    return out


_TOP_KEYS = {"announce_list": b"announce-list", "url_list": b"url-list", "creation_date": b"creation date",
             "created_by": b"created by"}


def torrent(info: Any, **top: Any) -> bytes:
    meta: dict[bytes, Any] = {b"info": info}
    meta.update({_TOP_KEYS.get(k, k.encode()): v for k, v in top.items()})
    return encode(meta)


def parse(info: Any, **top: Any) -> Metainfo:
    return parse_torrent(torrent(info, **top))


def rejects(info: Any, match: str, **top: Any) -> None:
    with pytest.raises(MetainfoError, match=match) as err:
        parse(info, **top)
    assert "\n" not in str(err.value)


# --- basic parsing ----------------------------------------------------------


def test_single_file() -> None:
    info = single(40000)
    data = torrent(info, announce=b"http://127.0.0.1:1/announce")
    meta = parse_torrent(data)
    assert meta.name == "file.bin"
    assert meta.piece_length == PIECE
    assert meta.num_pieces == 3
    assert meta.total_length == meta.payload_length == 40000
    assert not meta.multi_file
    assert meta.files[0].path == ("file.bin",) and meta.files[0].offset == 0
    assert meta.info_hash == hashlib.sha1(encode(info)).digest()
    assert meta.info_bytes == encode(info)
    assert meta.piece_size(0) == PIECE and meta.piece_size(2) == 40000 - 2 * PIECE
    assert meta.piece_hash(1) == info[b"pieces"][20:40]
    assert meta.trackers == (("http://127.0.0.1:1/announce",),)
    assert not meta.private and not meta.hybrid


def test_multi_file_offsets() -> None:
    meta = parse(multi([([b"a"], 10), ([b"sub", b"b"], 0), ([b"sub", b"c"], 20000)]))
    assert meta.multi_file
    assert [f.path for f in meta.files] == [("folder", "a"), ("folder", "sub", "b"), ("folder", "sub", "c")]
    assert [f.offset for f in meta.files] == [0, 10, 10]
    assert meta.total_length == 20010
    assert meta.files[2].relpath == os.path.join("folder", "sub", "c")


def test_parse_info_dict() -> None:
    info = encode(single(100))
    meta = parse_info_dict(info, trackers=(("udp://127.0.0.1:1",),))
    assert meta.info_hash == hashlib.sha1(info).digest()
    assert meta.trackers == (("udp://127.0.0.1:1",),)


# --- validation rules ---------------------------------------------------------


def test_pieces_not_multiple_of_20() -> None:
    rejects(single(100, pieces=_pieces(100) + b"x"), "multiple of 20")


@pytest.mark.parametrize("count", [0, 2, 4])
def test_piece_count_must_match_total(count: int) -> None:
    rejects(single(40000, pieces=b"\1" * 20 * count), "piece hashes but its size needs 3")


@pytest.mark.parametrize("piece_length", [0, -16384])
def test_piece_length_not_positive(piece_length: int) -> None:
    rejects(single(100, extra={b"piece length": piece_length}), "positive")


def test_piece_length_absurd() -> None:
    rejects(single(100, extra={b"piece length": MAX_PIECE_LENGTH * 2}), "absurdly large")
    rejects(single(100, extra={b"piece length": 1 << 62}), "absurdly large")


@pytest.mark.parametrize("value", [b"16384", [16384]])
def test_piece_length_not_an_integer(value: Any) -> None:
    rejects(single(100, extra={b"piece length": value}), "integer")


def test_missing_piece_length_and_pieces() -> None:
    info = single(100)
    del info[b"piece length"]
    rejects(info, "piece length")
    info = single(100)
    del info[b"pieces"]
    rejects(info, "no piece hashes")


def test_negative_file_length() -> None:
    rejects(single(-5, pieces=b""), "negative")
    rejects(multi([([b"a"], 10), ([b"b"], -1)]), "negative")


def test_missing_name() -> None:
    info = single(100)
    del info[b"name"]
    rejects(info, "no name")


def test_name_not_a_string() -> None:
    rejects(single(100, name=5), "name must be a string")


@pytest.mark.parametrize("info", [b"string", [1, 2], 5])
def test_info_not_a_dict(info: Any) -> None:
    rejects(info, "no 'info' dictionary")


def test_no_info_at_all() -> None:
    with pytest.raises(MetainfoError, match="no 'info'"):
        parse_torrent(encode({b"announce": b"x"}))


def test_both_length_and_files() -> None:
    info = multi([([b"a"], 100)])
    info[b"length"] = 100
    rejects(info, "both")


def test_neither_length_nor_files() -> None:
    info = single(100)
    del info[b"length"]
    rejects(info, "neither")


def test_empty_files_list() -> None:
    rejects(multi([], pieces=b""), "non-empty list")


def test_file_entry_malformed() -> None:
    info = multi([([b"a"], 100)])
    info[b"files"] = [b"not a dict"]
    rejects(info, "not a dictionary")
    info[b"files"] = [{b"length": 100}]
    rejects(info, "no path")
    info[b"files"] = [{b"length": 100, b"path": []}]
    rejects(info, "no path")
    info[b"files"] = [{b"length": b"100", b"path": [b"a"]}]
    rejects(info, "integer")


def test_all_files_empty() -> None:
    rejects(single(0, pieces=b""), "no data")


def test_not_bencoded() -> None:
    for data in (b"", b"hello", b"d4:info", b"i1e", b"d4:infoi1ee" + b"x"):
        with pytest.raises(MetainfoError):
            parse_torrent(data)


def test_v2_only_not_supported(tmp_path: Path) -> None:
    (tmp_path / "p").write_bytes(os.urandom(50000))
    ct = lt.create_torrent(lt.list_files(str(tmp_path / "p")), PIECE, lt.create_torrent.v2_only)
    lt.set_piece_hashes(ct, str(tmp_path))
    with pytest.raises(MetainfoError, match="v2-only torrents are not supported yet"):
        parse_torrent(lt.bencode(ct.generate()))


def _lt_hybrid(tmp_path: Path) -> tuple[bytes, Any]:
    root = tmp_path / "hybrid"
    (root / "sub").mkdir(parents=True)
    (root / "a.bin").write_bytes(os.urandom(100000))
    (root / "sub" / "b.bin").write_bytes(os.urandom(50000))
    (root / "z.txt").write_bytes(b"tail")
    ct = lt.create_torrent(lt.list_files(str(root)), PIECE)  # default flags: hybrid v1+v2
    lt.set_piece_hashes(ct, str(tmp_path))
    data = lt.bencode(ct.generate())
    return data, lt.torrent_info(data)


@pytest.mark.filterwarnings("ignore:files\\(\\) is deprecated:DeprecationWarning")
def test_hybrid_v1_v2_from_libtorrent(tmp_path: Path) -> None:
    data, ti = _lt_hybrid(tmp_path)
    assert ti.info_hashes().has_v2() and ti.info_hashes().has_v1()
    meta = parse_torrent(data)
    assert meta.hybrid
    assert meta.info_hash == bytes(ti.info_hashes().v1.to_bytes())
    assert meta.num_pieces == ti.num_pieces()
    assert meta.total_length == ti.total_size()
    fs = ti.files()
    assert [("/".join(f.path), f.length, f.padding) for f in meta.files] == [
        (fs.file_path(i).replace(os.sep, "/"), fs.file_size(i), bool(fs.file_flags(i) & fs.flag_pad_file))
        for i in range(fs.num_files())
    ]


def test_padding_files(tmp_path: Path) -> None:
    data, _ = _lt_hybrid(tmp_path)
    meta = parse_torrent(data)
    pads = [f for f in meta.files if f.padding]
    assert pads and all("p" in f.attr for f in pads)
    assert meta.payload_length == 100000 + 50000 + 4
    assert meta.total_length == meta.payload_length + sum(f.length for f in pads)
    listed = [f["path"] for f in meta.to_dict()["files"]]
    assert listed == ["hybrid/a.bin", "hybrid/sub/b.bin", "hybrid/z.txt"]


def test_padding_by_attr_and_by_bitcomet_name() -> None:
    info = multi([([b"a"], PIECE - 5), ([b".pad", b"5"], 5), ([b"_____padding_file_0"], 7), ([b"b"], 9)])
    info[b"files"][1][b"attr"] = b"p"
    meta = parse(info)
    assert [f.padding for f in meta.files] == [False, True, True, False]
    assert meta.payload_length == PIECE - 5 + 9


def test_padding_files_may_share_a_path() -> None:
    info = multi([([b"a"], 5), ([b".pad", b"7"], 7), ([b"b"], 5), ([b".pad", b"7"], 7)])
    for i in (1, 3):
        info[b"files"][i][b"attr"] = b"p"
    assert len(parse(info).files) == 4


def _raw_non_canonical() -> bytes:
    pieces = _pieces(40000)
    # Keys out of order ("pieces" before "name"): bencode.py would sort them on re-encoding.
    info = (b"d6:lengthi40000e6:pieces" + str(len(pieces)).encode() + b":" + pieces
            + b"4:name8:file.bin12:piece lengthi16384ee")
    return b"d4:info" + info + b"e"


def test_non_canonical_info_hash_is_over_exact_bytes() -> None:
    data = _raw_non_canonical()
    info_bytes = data[len(b"d4:info") : -1]
    meta = parse_torrent(data)
    assert meta.info_bytes == info_bytes
    assert meta.info_hash == hashlib.sha1(info_bytes).digest()
    canonical = encode(decode(info_bytes))
    assert canonical != info_bytes and meta.info_hash != hashlib.sha1(canonical).digest()
    ti = lt.torrent_info(data)
    assert meta.info_hash == bytes(ti.info_hashes().v1.to_bytes())


# --- optional fields ----------------------------------------------------------


def test_bep12_tiers() -> None:
    meta = parse(single(100), announce=b"http://ignored/", announce_list=[
        [b"http://a/1", b"http://a/2"], [b"udp://b/"], [], [b"http://a/1"], [b"  "], b"junk"])
    assert meta.trackers == (("http://a/1", "http://a/2"), ("udp://b/",))
    assert meta.announce_urls() == ["http://a/1", "http://a/2", "udp://b/"]


def test_announce_alone_and_announce_list_unusable() -> None:
    assert parse(single(100), announce=b"http://only/").trackers == (("http://only/",),)
    assert parse(single(100), announce=b"http://only/", announce_list=[[]]).trackers == (("http://only/",),)
    assert parse(single(100)).trackers == ()


def test_url_list_string_and_list() -> None:
    assert parse(single(100), url_list=b"http://seed/a").web_seeds == ("http://seed/a",)
    assert parse(single(100), url_list=[b"http://s1/", b"", b"http://s2/", 5]).web_seeds == (
        "http://s1/", "http://s2/")
    assert parse(single(100)).web_seeds == ()


def test_private() -> None:
    assert parse(single(100, private=1)).private
    assert not parse(single(100, private=0)).private
    assert not parse(single(100)).private


def test_utf8_variants_preferred() -> None:
    info = multi([([b"cp1252-\xe9"], 5)], name=b"n\xe9")
    info[b"name.utf-8"] = "naïve".encode()
    info[b"files"][0][b"path.utf-8"] = ["café.txt".encode()]
    meta = parse(info)
    assert meta.name == "naïve"
    assert meta.files[0].path == ("naïve", "café.txt")


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert parse(single(100, name=b"bad\xff")).name == "bad\ufffd"


def test_creation_date_comment_created_by() -> None:
    meta = parse(single(100), creation_date=1700000000, comment=b"hello", created_by=b"tool/1.0")
    assert meta.creation_date == 1700000000
    assert meta.comment == "hello"
    assert meta.created_by == "tool/1.0"
    meta = parse(single(100), comment=b"plain", **{"comment.utf-8": "ünïcode".encode()})
    assert meta.comment == "ünïcode"
    meta = parse(single(100), creation_date=b"yesterday")
    assert meta.creation_date is None and meta.comment is None and meta.created_by is None


def test_to_dict() -> None:
    meta = parse(multi([([b"a"], 5), ([b"b", b"c"], 7)], private=1), announce=b"http://t/", url_list=b"http://w/",
                 comment=b"c", created_by=b"me", creation_date=5)
    d = meta.to_dict()
    assert d == {
        "name": "folder", "info_hash": meta.info_hash.hex(), "total_size": 12, "piece_length": PIECE,
        "piece_count": 1, "private": True, "hybrid": False, "trackers": [["http://t/"]],
        "web_seeds": ["http://w/"], "created_by": "me", "comment": "c", "creation_date": 5,
        "files": [{"path": "folder/a", "size": 5}, {"path": "folder/b/c", "size": 7}],
    }


# --- path policy --------------------------------------------------------------


@pytest.mark.parametrize("path", [[b".."], [b"a", b"..", b"b"], [b"a", b".."]])
def test_dotdot_in_path_rejected(path: list[bytes]) -> None:
    rejects(multi([(path, 5)]), r"'\.\.'")


def test_dotdot_name_rejected() -> None:
    rejects(single(100, name=b".."), r"'\.\.'")
    info = multi([([b"x"], 5)], name=b"ok")
    info[b"name.utf-8"] = b".."
    rejects(info, r"'\.\.'")


def test_dot_and_empty_dropped_inside_path() -> None:
    meta = parse(multi([([b".", b"a", b"", b".", b"b"], 5)]))
    assert meta.files[0].path == ("folder", "a", "b")


def test_path_of_only_dots_rejected() -> None:
    rejects(multi([([b".", b""], 5)]), "empty")


@pytest.mark.parametrize("name", [b".", b""])
def test_dot_or_empty_name_rejected(name: bytes) -> None:
    rejects(single(100, name=name), "name is empty")
    rejects(multi([([b"a"], 5)], name=name), "name is empty")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [(b"/etc", "_etc"), (b"a/b", "a_b"), (b"a\\b", "a_b"), (b"C:\\x", "C:_x"), (b"/", "_"),
     (b"../x", ".._x")],
)
def test_separators_renamed(raw: bytes, clean: str) -> None:
    assert parse(multi([([raw], 5)])).files[0].path == ("folder", clean)
    assert parse(single(100, name=raw)).name == clean


@pytest.mark.parametrize("where", ["name", "path"])
def test_nul_rejected(where: str) -> None:
    if where == "name":
        rejects(single(100, name=b"a\x00b"), "NUL")
    else:
        rejects(multi([([b"ok", b"a\x00"], 5)]), "NUL")


def test_long_component_shortened() -> None:
    long_a = b"a" * 300 + b"-one.mkv"
    long_b = b"a" * 300 + b"-two.mkv"
    meta = parse(multi([([long_a], 5), ([long_b], 5), ([b"d" * 400, b"x"], 5)], name=b"n" * 1000))
    names = [f.path[1] for f in meta.files]
    assert all(len(n.encode()) <= MAX_COMPONENT_BYTES for n in names)
    assert len(meta.name.encode()) <= MAX_COMPONENT_BYTES
    assert names[0].endswith(".mkv") and names[1].endswith(".mkv")
    assert names[0] != names[1]
    assert names[0].startswith("a" * 100)


def test_long_multibyte_component_stays_valid_utf8() -> None:
    name = "é" * 200 + ".txt"  # 404 bytes
    meta = parse(single(100, name=name.encode()))
    assert len(meta.name.encode()) <= MAX_COMPONENT_BYTES
    assert meta.name.endswith(".txt")
    assert "\ufffd" not in meta.name


def test_component_of_exactly_255_bytes_kept() -> None:
    name = b"b" * 251 + b".bin"
    assert parse(single(100, name=name)).name == name.decode()


def test_duplicate_paths_rejected() -> None:
    rejects(multi([([b"a"], 5), ([b"a"], 5)]), "share the path")
    # Distinct in the torrent, the same after renaming a separator.
    rejects(multi([([b"a_b"], 5), ([b"a/b"], 5)]), "share the path")
    rejects(multi([([b"a", b"b"], 5), ([b"a", b".", b"b"], 5)]), "share the path")


def test_path_errors_stay_one_line() -> None:
    rejects(multi([([b"a\nb"], 5), ([b"a\nb"], 5)]), "share the path")
    rejects(multi([([b"x\r\ny"], 5), ([b"x\r\ny", b"z"], 5)]), "also used as a folder")


def test_file_versus_folder_clash_rejected() -> None:
    rejects(multi([([b"a"], 5), ([b"a", b"b"], 5)]), "also used as a folder")
    rejects(multi([([b"x", b"y", b"z"], 5), ([b"x", b"y"], 5)]), "also used as a folder")


def test_folder_clash_found_when_its_files_are_not_listed_together() -> None:
    # Folders are collected once per run of files in one folder; a folder seen again later still counts.
    files = [([b"a", b"b", b"c"], 5), ([b"x"], 5), ([b"a", b"b", b"d"], 5), ([b"a", b"b"], 5)]
    rejects(multi(files), "'folder/a/b' is also used as a folder")
    # With two clashes, the message names the one met first in file order.
    files = [([b"q"], 5), ([b"p", b"z"], 5), ([b"q", b"r"], 5), ([b"p"], 5)]
    rejects(multi(files), "'folder/p' is also used as a folder")


def test_clashes_found_among_100k_files() -> None:
    files = [([f"d{i // 100}".encode(), f"f{i}".encode()], 1) for i in range(100_000)]
    assert len(parse(multi(files)).files) == 100_000
    rejects(multi([*files, ([b"d7", b"f799"], 1)]), "share the path 'folder/d7/f799'")
    rejects(multi([*files, ([b"d999", b"f99999", b"x"], 1)]), "'folder/d999/f99999' is also used as a folder")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300) | st.sampled_from([b".", b"..", b"...", b"a" * 255, b"a" * 256, b"\xc3\xa9" * 128]))
def test_plain_components_are_what_the_policy_keeps_unchanged(raw: bytes) -> None:
    # The fast path for ordinary names must agree with the full path policy.
    plain = _plain(raw)
    if plain is not None:
        assert sanitize_component(raw.decode("utf-8", errors="replace"), where="x") == plain


# --- magnets ------------------------------------------------------------------

HASH = bytes(range(20))


def test_magnet_hex() -> None:
    m = parse_magnet(f"magnet:?xt=urn:btih:{HASH.hex()}")
    assert m.info_hash == HASH and m.display_name is None and m.trackers == () and m.peers == ()
    assert m.name == HASH.hex()
    assert parse_magnet(f"magnet:?xt=urn:btih:{HASH.hex().upper()}").info_hash == HASH


def test_magnet_base32() -> None:
    b32 = base64.b32encode(HASH).decode()
    assert parse_magnet(f"magnet:?xt=urn:btih:{b32}").info_hash == HASH
    assert parse_magnet(f"magnet:?xt=urn:btih:{b32.lower()}").info_hash == HASH


def test_magnet_fields() -> None:
    m = parse_magnet(
        f"magnet:?xt=urn:btih:{HASH.hex()}&dn=My%20File+name&tr=http%3A%2F%2F127.0.0.1%3A1%2Fa"
        "&tr=udp://127.0.0.1:2&tr=udp://127.0.0.1:2&x.pe=127.0.0.1:6881&x.pe=[::1]:51413&x.pe=nonsense"
        "&x.pe=127.0.0.1:0&ws=http://127.0.0.1/seed"
    )
    assert m.display_name == "My File name"
    assert m.name == "My File name"
    assert m.trackers == (("http://127.0.0.1:1/a",), ("udp://127.0.0.1:2",))
    assert m.peers == (("127.0.0.1", 6881), ("::1", 51413))
    assert m.web_seeds == ("http://127.0.0.1/seed",)
    assert m.to_dict()["peers"] == ["127.0.0.1:6881", "::1:51413"]


def test_magnet_with_btmh_and_btih_uses_btih() -> None:
    m = parse_magnet(f"magnet:?xt=urn:btmh:1220{'ab' * 32}&xt=urn:btih:{HASH.hex()}")
    assert m.info_hash == HASH


def test_magnet_btmh_only_not_supported() -> None:
    with pytest.raises(MetainfoError, match="not supported yet"):
        parse_magnet(f"magnet:?xt=urn:btmh:1220{'ab' * 32}&dn=x")


@pytest.mark.parametrize(
    "uri",
    [
        "magnet:?",
        "magnet:?dn=x",
        "magnet:?xt=urn:btih:",
        "magnet:?xt=urn:btih:1234",
        f"magnet:?xt=urn:btih:{'g' * 40}",
        f"magnet:?xt=urn:btih:{'1' * 32}",  # '1' is not in the base32 alphabet
        f"magnet:?xt=urn:btih:{HASH.hex()}00",
        "magnet:xt=urn:btih:" + HASH.hex(),
        "http://example.invalid/",
        "",
        "magnet:?%%%&&&==",
    ],
)
def test_magnet_garbage(uri: str) -> None:
    with pytest.raises(MetainfoError) as err:
        parse_magnet(uri)
    assert "\n" not in str(err.value)


# --- load() -------------------------------------------------------------------


def test_load_torrent_file_and_magnet(tmp_path: Path) -> None:
    path = tmp_path / "x.torrent"
    path.write_bytes(torrent(single(100)))
    assert isinstance(load(str(path)), Metainfo)
    assert isinstance(load(f"magnet:?xt=urn:btih:{HASH.hex()}"), Magnet)
    assert load(HASH.hex()).info_hash == HASH  # type: ignore[union-attr]
    assert load(base64.b32encode(HASH).decode()).info_hash == HASH  # type: ignore[union-attr]


def _load_error(source: str) -> str:
    with pytest.raises(MetainfoError) as err:
        load(source)
    message = str(err.value)
    assert "\n" not in message and message
    return message


def test_load_missing_file(tmp_path: Path) -> None:
    assert "no such file" in _load_error(str(tmp_path / "nope.torrent"))


def test_load_directory(tmp_path: Path) -> None:
    assert "folder" in _load_error(str(tmp_path))


def test_load_huge_file(tmp_path: Path) -> None:
    path = tmp_path / "huge.torrent"
    with open(path, "wb") as fh:
        fh.truncate(65 * 1024 * 1024)  # sparse: costs no disk
    assert "too large" in _load_error(str(path))


def test_load_not_bencoded(tmp_path: Path) -> None:
    path = tmp_path / "junk.torrent"
    path.write_bytes(b"this is not a torrent\n")
    message = _load_error(str(path))
    assert str(path) in message and "not a valid .torrent" in message


def test_load_invalid_torrent_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.torrent"
    path.write_bytes(torrent(single(100, name=b"..")))
    message = _load_error(str(path))
    assert message.startswith(str(path))


def test_load_unreadable_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root reads anything; a FIFO-free way to provoke an OSError is a path through a file.
        path = tmp_path / "file"
        path.write_bytes(b"x")
        assert _load_error(str(path / "child.torrent"))
        return
    path = tmp_path / "locked.torrent"
    path.write_bytes(torrent(single(100)))
    path.chmod(0)
    assert "cannot read" in _load_error(str(path))


# --- the compiled fast path for ordinary files ----------------------------------

_component = st.sampled_from([b"a", b"b", b".", b"..", b"", b"a/b", b"x\x00", b"\xff", "é".encode(), b"c" * 256,
                              b"_____padding_file_0", b"d.txt"]) | st.binary(min_size=1, max_size=6)
_file = st.fixed_dictionaries(
    {b"length": st.sampled_from([0, 1, 7, -1, True, b"1"]), b"path": st.lists(_component, max_size=3)},
    optional={b"attr": st.sampled_from([b"p", b"x", 5]), b"path.utf-8": st.lists(_component, max_size=2),
              b"md5sum": st.just(b"0" * 32)},
)


def _outcome(info: dict[bytes, Any]) -> Any:
    try:
        return metainfo._parse_files(info, "folder")
    except MetainfoError as exc:
        return str(exc)


@settings(max_examples=300, deadline=None)
@given(st.lists(_file, min_size=1, max_size=6))
def test_compiled_fast_path_agrees_with_the_rules(files: list[dict[bytes, Any]]) -> None:
    # The same file list with the C run of ordinary files and with every file through the Python
    # rules: the same entries, or the same message.
    info: dict[bytes, Any] = {b"files": files}
    fast = _outcome(info)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(metainfo, "plain_files", lambda *args: ([], 0))
        slow = _outcome(info)
    assert fast == slow


def test_compiled_fast_path_hands_over_to_the_rules_mid_list() -> None:
    files = [{b"length": 1, b"path": [b"a", b"b"]}, {b"length": 2, b"path": [b"c/d"]},
             {b"length": 3, b"path": [b"e"], b"attr": b"p"}, {b"length": 4, b"path": [b"f"]}]
    fast = _outcome({b"files": files})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(metainfo, "plain_files", lambda *args: ([], 0))
        assert _outcome({b"files": files}) == fast
    entries, _ = fast
    assert [(f.path, f.offset, f.padding) for f in entries] == [
        (("folder", "a", "b"), 0, False), (("folder", "c_d"), 1, False), (("folder", "e"), 3, True),
        (("folder", "f"), 6, False)]


def test_compiled_fast_path_builds_whole_entries() -> None:
    meta = parse(multi([([b"a", b"b.bin"], 5), ([b"c"], 7)]))
    assert meta.files == (FileEntry(("folder", "a", "b.bin"), 5, 0), FileEntry(("folder", "c"), 7, 5))
    assert [dataclasses.astuple(f) for f in meta.files] == [(("folder", "a", "b.bin"), 5, 0, False, ""),
                                                            (("folder", "c"), 7, 5, False, "")]


@pytest.mark.parametrize("lengths", [[5, 2**64], [2**49, 2**49, 2**49], [2**50, 1], [2**50]])
def test_compiled_fast_path_leaves_huge_lengths_to_the_rules(lengths: list[int]) -> None:
    files = [{b"length": n, b"path": [f"f{i}".encode()]} for i, n in enumerate(lengths)]
    fast = _outcome({b"files": files})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(metainfo, "plain_files", lambda *args: ([], 0))
        assert _outcome({b"files": files}) == fast
    assert fast == "torrent is impossibly large" or fast[0][-1].offset + lengths[-1] == sum(lengths)
