"""Fuzz target for torrentpy.bencoding: any input either decodes or raises BencodeError, and
whatever decodes re-encodes to a value that decodes the same (and to the same bytes if canonical);
the prefix decoder and the span decoder agree with the plain one.

    .venv/bin/python fuzz/run.py bencode [-max_total_time=60]
"""

from __future__ import annotations

from typing import Any

from torrentpy import bencoding
from torrentpy.errors import BencodeError


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
        # A value followed by anything is still that value to the prefix decoder, which must stop
        # exactly where the value ends.
        assert bencoding.decode_prefix(data + b"i0e") == (value, len(data))
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

