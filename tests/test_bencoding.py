"""Bounded bencoding: round trips, every malformed or hostile input becomes one BencodeError, exact spans."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrentpy import bencoding
from torrentpy.bencoding import decode, decode_dict_with_spans, encode
from torrentpy.errors import BencodeError, TorrentError

values = st.recursive(
    st.integers(min_value=-(2**70), max_value=2**70) | st.binary(max_size=40),
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.binary(max_size=12), children, max_size=6),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_round_trip(value: Any) -> None:
    data = encode(value)
    assert decode(data) == value
    assert decode(bytearray(data)) == value
    assert decode(memoryview(data)) == value
    # The encoding is canonical, so re-encoding the decoded value gives the same bytes.
    assert encode(decode(data)) == data


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.binary(max_size=12), values, min_size=1, max_size=8))
def test_spans_cover_exactly_each_value(value: dict[bytes, Any]) -> None:
    data = encode(value)
    decoded, spans = decode_dict_with_spans(data)
    assert decoded == value
    assert set(spans) == set(value)
    for key, (start, end) in spans.items():
        assert data[start:end] == encode(value[key])
        # The key's own encoding sits right before the value.
        key_encoding = str(len(key)).encode() + b":" + key
        assert data[start - len(key_encoding) : start] == key_encoding


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"i0e", 0),
        (b"i-1e", -1),
        (b"i42e", 42),
        (b"i123456789012345678901234567890e", 123456789012345678901234567890),
        (b"0:", b""),
        (b"4:spam", b"spam"),
        (b"le", []),
        (b"de", {}),
        (b"l4:spami42ee", [b"spam", 42]),
        (b"d3:bar4:spam3:fooi42ee", {b"bar": b"spam", b"foo": 42}),
        (b"d4:spaml1:a1:bee", {b"spam": [b"a", b"b"]}),
        (b"3:\x00\xff\n", b"\x00\xff\n"),
    ],
)
def test_known_values(data: bytes, value: Any) -> None:
    assert decode(data) == value
    assert encode(value) == data


def test_unsorted_dict_keys_still_decode() -> None:
    # Non-canonical but real: the info-hash is taken over the raw bytes, so we must not reject them.
    assert decode(b"d1:bi1e1:ai2ee") == {b"a": 2, b"b": 1}


BAD = {
    "empty": b"",
    "truncated int": b"i42",
    "truncated string": b"5:abc",
    "truncated string in list": b"l5:abce",
    "truncated list": b"l4:spam",
    "truncated dict": b"d3:foo",
    "dict missing value": b"d3:fooe",
    "unterminated nested": b"lli1ee",
    "trailing data": b"i1ei2e",
    "trailing byte after dict": b"dex",
    "negative zero": b"i-0e",
    "leading zero int": b"i03e",
    "leading zero negative": b"i-03e",
    "empty int": b"ie",
    "bare minus": b"i-e",
    "plus sign": b"i+3e",
    "space in int": b"i 3e",
    "underscore in int": b"i1_0e",
    "float": b"i1.5e",
    "leading zero length": b"03:abc",
    "negative string length": b"-3:abc",
    "negative length in list": b"l-3:abce",
    "space in length": b"3 :abc",
    "underscore in length": b"1_0:abcdefghij",
    "no colon": b"3abc",
    "unknown type": b"x",
    "int as dict key": b"di1ei2ee",
    "list as dict key": b"dlei1ee",
    "huge int": b"i" + b"9" * 10000 + b"e",
    "huge string length": b"99999999999999999999:abc",
    "lone e": b"e",
}


@pytest.mark.parametrize("data", BAD.values(), ids=list(BAD))
def test_malformed_input_is_bencode_error(data: bytes) -> None:
    with pytest.raises(BencodeError) as info:
        decode(data)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, TorrentError)


@pytest.mark.parametrize("data", [d for d in BAD.values() if d[:1] == b"d"] + [b"d", b"dx", b"d3:fooi1e"])
def test_malformed_dict_is_bencode_error_in_spans_too(data: bytes) -> None:
    with pytest.raises(BencodeError):
        decode_dict_with_spans(data)


@pytest.mark.parametrize("data", [b"i1e", b"le", b"4:spam", b"", b"ede"])
def test_spans_need_a_dictionary(data: bytes) -> None:
    with pytest.raises(BencodeError):
        decode_dict_with_spans(data)


def test_spans_trailing_data() -> None:
    with pytest.raises(BencodeError):
        decode_dict_with_spans(b"d1:ai1eei1e")


@pytest.mark.parametrize("value", ["text", None, 12, [b"a"], object()])
def test_non_bytes_input(value: Any) -> None:
    with pytest.raises(BencodeError):
        decode(value)
    with pytest.raises(BencodeError):
        decode_dict_with_spans(value)


@pytest.mark.parametrize("opener", [b"l", b"d1:a"])
def test_deep_nesting_10k_levels(opener: bytes) -> None:
    deep = opener * 10_000 + b"i1e" + b"e" * 10_000
    with pytest.raises(BencodeError):
        decode(deep)
    with pytest.raises(BencodeError):
        decode_dict_with_spans(b"d1:x" + deep + b"e")


def test_depth_limit_boundary() -> None:
    limit = bencoding.MAX_DEPTH
    ok = b"l" * limit + b"e" * limit
    decode(ok)
    with pytest.raises(BencodeError):
        decode(b"l" * (limit + 2) + b"e" * (limit + 2))
    with pytest.raises(BencodeError):
        decode(b"l" * 4 + b"e" * 4, max_depth=2)


def test_token_flood() -> None:
    flood = b"l" + b"i1e" * 1000 + b"e"
    assert len(decode(flood)) == 1000
    with pytest.raises(BencodeError, match="too many"):
        decode(flood, max_tokens=100)
    with pytest.raises(BencodeError, match="too many"):
        decode_dict_with_spans(b"d1:a" + flood + b"e", max_tokens=100)
    decode(flood, max_tokens=1001)  # the list itself plus 1000 ints


def test_input_size_limit() -> None:
    data = b"10:0123456789"
    assert decode(data, max_bytes=len(data)) == b"0123456789"
    with pytest.raises(BencodeError, match="limit"):
        decode(data, max_bytes=len(data) - 1)
    with pytest.raises(BencodeError, match="limit"):
        decode_dict_with_spans(b"d1:ai1ee", max_bytes=4)


def test_spans_of_a_torrent_like_dict() -> None:
    info = b"d6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces20:" + b"a" * 20 + b"e"
    data = b"d8:announce3:url4:info" + info + b"e"
    decoded, spans = decode_dict_with_spans(data)
    start, end = spans[b"info"]
    assert data[start:end] == info
    assert spans[b"announce"] == (data.index(b"3:url"), data.index(b"3:url") + 5)
    assert decoded[b"info"][b"length"] == 5


def test_spans_keep_non_canonical_bytes() -> None:
    info = b"d4:name1:x6:lengthi5ee"  # keys out of order: must be kept as they are
    data = b"d4:info" + info + b"e"
    _, spans = decode_dict_with_spans(data)
    assert data[slice(*spans[b"info"])] == info


def test_encode_errors() -> None:
    with pytest.raises(BencodeError):
        encode(1.5)
    with pytest.raises(BencodeError):
        encode({b"a": object()})


def test_decode_checked_dict_checks_the_digest_of_the_other_keys() -> None:
    import hashlib

    from torrentpy.bencoding import decode_checked_dict, encode

    body = {b"a": 1, b"list": [b"x", 2], b"z": b"end"}
    digest = hashlib.sha1(encode(body)).digest()
    data = encode({**body, b"sha1": digest})
    assert decode_checked_dict(data) == (body, True)
    for flip in range(len(data)):
        damaged = bytearray(data)
        damaged[flip] ^= 0x01
        try:
            value, intact = decode_checked_dict(bytes(damaged))
        except BencodeError:
            continue
        assert not intact, (flip, value)
    assert decode_checked_dict(encode(body)) == (body, False)  # no digest at all
    # Keys out of order (not what encode writes): checked against the canonical bencoding instead.
    unsorted = b"d1:zi3e4:sha120:" + hashlib.sha1(encode({b"z": 3, b"a": 1})).digest() + b"1:ai1ee"
    try:
        value, intact = decode_checked_dict(unsorted)
    except BencodeError:
        return  # the decoder refuses unsorted keys: nothing non-canonical gets this far
    assert (value, intact) == ({b"z": 3, b"a": 1}, True)
