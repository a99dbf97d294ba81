"""Fuzz target for torrentpy.bencoding: any input either decodes or raises BencodeError, and
whatever decodes re-encodes to a value that decodes the same (and to the same bytes if canonical).

    python fuzz/bencode_target.py [-max_total_time=60] [corpus_dir]   # needs atheris
"""

from __future__ import annotations

import sys
from typing import Any

from torrentpy import bencoding
from torrentpy.errors import BencodeError

# Small real-looking documents for mutation: a torrent skeleton, a tracker reply, a BEP 10 handshake.
SEEDS: list[bytes] = [
    b"d8:announce22:http://127.0.0.1:1/ann4:infod6:lengthi5e4:name1:x12:piece lengthi16384e"
    b"6:pieces20:aaaaaaaaaaaaaaaaaaaaee",
    b"d8:completei3e10:incompletei1e8:intervali1800e5:peers6:\x7f\x00\x00\x01\x1a\xe1e",
    b"d1:md11:ut_metadatai1e6:ut_pexi2ee13:metadata_sizei31235e1:pi6881e1:v6:cliente",
    b"li-1ei0ei12345678901234567890el0:dee4:spame",
]


def test_one_input(data: bytes) -> None:
    try:
        value = bencoding.decode(data)
    except BencodeError:
        value = None
    else:
        encoded = bencoding.encode(value)
        assert bencoding.decode(encoded) == value
        # Only dictionaries can be written more than one way (key order, duplicate keys): anything
        # else decoded from non-canonical bytes means the parser accepted what BEP 3 forbids.
        sorted_keys, has_dict = _dict_shape(value)
        if not has_dict or (sorted_keys and len(encoded) == len(data)):
            assert encoded == data, "accepted a non-canonical encoding"
    try:
        top, spans = bencoding.decode_dict_with_spans(data)
    except BencodeError:
        return
    assert top == value, "decode and decode_dict_with_spans disagree"
    for key, (start, end) in spans.items():
        assert bencoding.decode(data[start:end]) == top[key]


def _dict_shape(value: Any) -> tuple[bool, bool]:
    """(every dict's keys are in sorted order as decoded, there is a dict at all)."""
    if isinstance(value, dict):
        keys = list(value)
        ok, seen = keys == sorted(keys), True
        children = value.values()
    elif isinstance(value, list):
        ok, seen, children = True, False, value
    else:
        return True, False
    for child in children:
        child_ok, child_seen = _dict_shape(child)
        ok, seen = ok and child_ok, seen or child_seen
    return ok, seen


def main() -> None:
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
