"""Fuzz target for torrentpy.metainfo: any .torrent bytes either parse into a Metainfo whose paths are
safe and whose numbers add up, or raise MetainfoError; magnet links likewise.

    python fuzz/metainfo_target.py [-max_total_time=60] [corpus_dir]   # needs atheris
"""

from __future__ import annotations

import hashlib
import sys

from torrentpy.errors import MetainfoError
from torrentpy.metainfo import MAX_COMPONENT_BYTES, parse_magnet, parse_torrent


def _torrent(info: bytes, extra: bytes = b"") -> bytes:
    return b"d8:announce22:http://127.0.0.1:1/ann" + extra + b"4:info" + info + b"e"


_PIECES = b"6:pieces40:" + b"\x01" * 40
SEEDS: list[bytes] = [
    _torrent(b"d6:lengthi20000e4:name5:a.bin12:piece lengthi16384e" + _PIECES + b"e"),
    _torrent(b"d5:filesld6:lengthi10000e4:pathl1:a5:b.txteed6:lengthi10000e4:pathl2:..1:cee"
             b"e4:name3:dir12:piece lengthi16384e" + _PIECES + b"7:privatei1ee",
             b"13:announce-listll3:u:1el3:u:2ee"),
    _torrent(b"d5:filesld4:attr1:p6:lengthi5e4:pathl4:.pad1:5eed6:lengthi20000e4:pathl1:xeee"
             b"4:name1:n12:meta versioni2e12:piece lengthi16384e" + _PIECES + b"e"),
    b"magnet:?xt=urn:btih:000102030405060708090a0b0c0d0e0f10111213&dn=x&tr=udp://127.0.0.1:1&x.pe=127.0.0.1:2",
    b"magnet:?xt=urn:btih:AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT&xt=urn:btmh:1220ab",
]


def test_one_input(data: bytes) -> None:
    if data.startswith(b"magnet:"):
        _magnet(data.decode("latin-1"))
        return
    try:
        meta = parse_torrent(data)
    except MetainfoError as exc:
        assert "\n" not in str(exc)
        return
    assert meta.info_hash == hashlib.sha1(meta.info_bytes).digest()
    assert meta.info_bytes in data
    assert meta.piece_length > 0 and meta.total_length > 0
    assert meta.num_pieces == -(-meta.total_length // meta.piece_length)
    assert sum(f.length for f in meta.files) == meta.total_length
    offset = 0
    for f in meta.files:
        assert f.offset == offset and f.length >= 0
        offset += f.length
        assert f.path[0] == meta.name
        for part in f.path:
            assert part not in ("", ".", ".."), f"unsafe path component {part!r} in {f.path}"
            assert "/" not in part and "\\" not in part and "\x00" not in part, f"unsafe path component {part!r}"
            assert len(part.encode("utf-8")) <= MAX_COMPONENT_BYTES
    real = [f.path for f in meta.files if not f.padding]
    assert len(set(real)) == len(real)
    meta.to_dict()


def _magnet(uri: str) -> None:
    try:
        magnet = parse_magnet(uri)
    except MetainfoError as exc:
        assert "\n" not in str(exc)
        return
    assert len(magnet.info_hash) == 20
    magnet.to_dict()


def main() -> None:
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
