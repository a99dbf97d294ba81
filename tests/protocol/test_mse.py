"""MSE/PE (protocol/mse.py): both roles against each other, in every byte split, and against handshakes
built by hand (tests/protocol/mse_wire.py) to be wrong in one way each."""

from __future__ import annotations

import random

import pytest

from tests.protocol.mse_wire import HandA, HandB, handshake_bytes
from torrentpy._core import RC4
from torrentpy.protocol import mse
from torrentpy.protocol.mse import (
    CRYPTO_PLAINTEXT,
    CRYPTO_RC4,
    KEY_BYTES,
    MAX_PAD,
    METHOD_NONE,
    MseInitiator,
    MseResponder,
    P,
)

INFO_HASH = bytes(range(20))
OTHER_HASH = bytes(range(1, 21))
HANDSHAKE = handshake_bytes(INFO_HASH)


def lookup(*hashes: bytes):  # type: ignore[no-untyped-def]
    return {mse.skey_hash(h): h for h in hashes}.get


class Extremes(random.Random):
    """Pads of exactly `pad` bytes (the rng picks pad lengths with randint(0, max))."""

    def __init__(self, seed: int, pad: int) -> None:
        super().__init__(seed)
        self.pad = pad

    def randint(self, a: int, b: int) -> int:
        return min(self.pad, b)


def pair(provide: int = CRYPTO_RC4 | CRYPTO_PLAINTEXT, select: tuple[int, ...] = (CRYPTO_PLAINTEXT, CRYPTO_RC4),
         seed: int = 1, pad: int | None = None) -> tuple[MseInitiator, MseResponder]:
    rng_a = Extremes(seed, pad) if pad is not None else random.Random(seed)
    rng_b = Extremes(seed + 1, pad) if pad is not None else random.Random(seed + 1)
    a = MseInitiator(INFO_HASH, HANDSHAKE, provide=provide, rng=rng_a)
    b = MseResponder(lookup(OTHER_HASH, INFO_HASH), select=select, rng=rng_b)
    return a, b


def run(a: MseInitiator, b: MseResponder, *, b_then: bytes = b"", split: int = 0) -> tuple[bytes, bytes]:
    """Play the handshake out; `b_then` is what B sends right after its side (ENCRYPT2 payload), `split`
    feeds every message in pieces of that size (0: whole). Returns all A→B and B→A bytes."""
    a_to_b = a.start()
    sent_ab, sent_ba = bytearray(a_to_b), bytearray()
    b_to_a = b""
    for _ in range(8):
        if a_to_b and not b.done:
            b_to_a += _feed(b, a_to_b, split)
            a_to_b = b""
            if b.result is not None and b_then:
                enc = b.result.encryptor
                b_to_a += enc.apply(b_then) if enc is not None else b_then
        if b_to_a and not a.done:
            sent_ba += b_to_a
            a_to_b = _feed(a, b_to_a, split)
            sent_ab += a_to_b
            b_to_a = b""
        if a.done and b.done:
            break
    return bytes(sent_ab), bytes(sent_ba)


STREAM_AFTER: dict[int, bytes] = {}  # id(side) → bytes that arrived in later pieces, after it finished


def _feed(side: mse._Handshake, data: bytes, split: int) -> bytes:
    if not split:
        return side.receive_data(data)
    out = b""
    for i in range(0, len(data), split):
        if side.done:
            # A link hands what follows to the BitTorrent connection; so does this.
            STREAM_AFTER[id(side)] = STREAM_AFTER.get(id(side), b"") + data[i:]
            break
        out += side.receive_data(data[i : i + split])
    return out


def stream_of(side: mse._Handshake) -> bytes:
    """The BitTorrent stream a side's link would see: the handshake's payload, then any later pieces (RC4
    decrypted by the result's decryptor, as the link does)."""
    assert side.result is not None
    later = STREAM_AFTER.pop(id(side), b"")
    dec = side.result.decryptor
    return side.result.payload + (dec.apply(later) if dec is not None else later)


@pytest.mark.parametrize(("provide", "select", "method"), [
    (CRYPTO_RC4 | CRYPTO_PLAINTEXT, (CRYPTO_PLAINTEXT, CRYPTO_RC4), CRYPTO_PLAINTEXT),
    (CRYPTO_RC4 | CRYPTO_PLAINTEXT, (CRYPTO_RC4, CRYPTO_PLAINTEXT), CRYPTO_RC4),
    (CRYPTO_RC4, (CRYPTO_PLAINTEXT, CRYPTO_RC4), CRYPTO_RC4),
    (CRYPTO_PLAINTEXT, (CRYPTO_RC4, CRYPTO_PLAINTEXT), CRYPTO_PLAINTEXT),
    (CRYPTO_RC4, (CRYPTO_RC4,), CRYPTO_RC4),
])
def test_roles_agree_and_the_stream_continues(provide: int, select: tuple[int, ...], method: int) -> None:
    a, b = pair(provide, select)
    run(a, b, b_then=b"B's handshake")
    assert a.error is None and b.error is None
    assert a.result is not None and b.result is not None
    assert a.result.method == b.result.method == method
    assert b.result.info_hash == a.result.info_hash == INFO_HASH
    assert b.result.payload == HANDSHAKE  # IA, decrypted
    assert a.result.payload == b"B's handshake"  # what came after PadD, decrypted when RC4
    if method == CRYPTO_RC4:
        # Each side's encryptor continues where the handshake left its stream; the other decrypts it.
        for sender, receiver in ((a.result, b.result), (b.result, a.result)):
            assert sender.encryptor is not None and receiver.decryptor is not None
            assert receiver.decryptor.apply(sender.encryptor.apply(b"piece data")) == b"piece data"
    else:
        assert a.result.encryptor is a.result.decryptor is b.result.encryptor is b.result.decryptor is None


def test_the_wire_is_not_plain() -> None:
    a, b = pair(CRYPTO_RC4, (CRYPTO_RC4,))
    a_to_b, b_to_a = run(a, b, b_then=HANDSHAKE)
    for wire in (a_to_b, b_to_a):
        assert b"BitTorrent protocol" not in wire and INFO_HASH not in wire


@pytest.mark.parametrize("split", [1, 2, 3, 7, 19, 20, 21, 95, 96, 97, 511])
def test_any_split_gives_the_same_result(split: int) -> None:
    whole_a, whole_b = pair(seed=5)
    run(whole_a, whole_b, b_then=b"after")
    a, b = pair(seed=5)
    run(a, b, b_then=b"after", split=split)
    assert a.result is not None and b.result is not None and whole_a.result is not None
    assert (a.result.method, stream_of(a), stream_of(b)) == (whole_a.result.method, b"after", HANDSHAKE)


def test_every_two_way_split_of_the_initiators_bytes() -> None:
    a = HandA(INFO_HASH, ia=HANDSHAKE, pad_a=40, pad_c=30, seed=9)
    first = a.first()
    # The same seed gives every responder below the same key, so one stream fits them all.
    stream = first + a.second(MseResponder(lookup(INFO_HASH), rng=random.Random(3)).receive_data(first)) + b"tail"
    for cut in range(1, len(stream)):
        b = MseResponder(lookup(INFO_HASH), rng=random.Random(3))
        b.receive_data(stream[:cut])
        later = stream[cut:]
        if not b.done:
            b.receive_data(later)
            later = b""
        assert b.result is not None, (cut, b.error)
        assert b.result.payload + later == HANDSHAKE + b"tail", cut


@pytest.mark.parametrize("pad", [0, MAX_PAD])
def test_padding_from_none_to_the_limit(pad: int) -> None:
    a, b = pair(pad=pad)
    run(a, b)
    assert a.result is not None and b.result is not None


def test_responder_waits_for_a_plain_handshake_byte_by_byte() -> None:
    b = MseResponder(lookup(INFO_HASH))
    for i in range(19):
        assert b.receive_data(HANDSHAKE[i : i + 1]) == b""
        assert not b.done
    b.receive_data(HANDSHAKE[19:])
    assert b.result is not None and b.result.method == METHOD_NONE and not b.result.encrypted_handshake
    assert b.result.payload == HANDSHAKE and b.result.info_hash is None


def test_a_plain_handshake_costs_no_key_pair() -> None:
    """Every accepted connection starts in a responder: making a DH key (~0.4 ms) only for encrypted ones."""
    b = MseResponder(lookup(INFO_HASH))
    b.receive_data(HANDSHAKE)
    assert b.result is not None and b._x == 0
    a = MseInitiator(INFO_HASH, HANDSHAKE)
    assert a._x == 0
    with pytest.raises(RuntimeError, match="start"):
        a.receive_data(bytes(KEY_BYTES))


def test_a_plain_handshake_is_refused_when_encryption_is_required() -> None:
    b = MseResponder(lookup(INFO_HASH), select=(CRYPTO_RC4,), accept_plain=False)
    b.receive_data(HANDSHAKE)
    assert b.result is None and b.error is not None and "encryption is required" in b.error


@pytest.mark.parametrize("same", [1, 11, 19])
def test_a_key_that_starts_like_the_protocol_header_is_still_a_key(same: int) -> None:
    """Ya is random: it may begin with the header's first bytes (1 in 256 begin with \x13)."""
    b = MseResponder(lookup(INFO_HASH), accept_plain=False, rng=random.Random(4))
    key = handshake_bytes(INFO_HASH)[:same] + b"\xff" + random.Random(5).randbytes(KEY_BYTES - same - 1)
    assert b.receive_data(key[:same]) == b"" and not b.done
    yb = b.receive_data(key[same:])
    assert len(yb) >= KEY_BYTES and b.error is None and not b.done  # answered with Yb: taken as a key


def test_unknown_info_hash() -> None:
    a = MseInitiator(OTHER_HASH, handshake_bytes(OTHER_HASH), rng=random.Random(1))
    b = MseResponder(lookup(INFO_HASH), rng=random.Random(2))
    run(a, b)
    assert b.error == "encrypted handshake for a torrent we do not serve"
    assert a.result is None


def test_bad_verification_constant() -> None:
    a = HandA(INFO_HASH, ia=HANDSHAKE, vc=b"\0\0\0\0\0\0\0\1")
    b = MseResponder(lookup(INFO_HASH), rng=random.Random(2))
    b.receive_data(a.second(b.receive_data(a.first())))
    assert b.error == "bad verification constant"


@pytest.mark.parametrize("where", ["A", "C"])
def test_too_much_padding_from_the_initiator(where: str) -> None:
    a = HandA(INFO_HASH, ia=HANDSHAKE, pad_a=MAX_PAD + 1 if where == "A" else 0,
              pad_c=MAX_PAD + 1 if where == "C" else 0)
    b = MseResponder(lookup(INFO_HASH), rng=random.Random(2))
    b.receive_data(a.second(b.receive_data(a.first())))
    assert b.error is not None
    assert ("no synchronisation hash" if where == "A" else "PadC of 513 bytes") in b.error


def test_sync_search_stops_at_the_window() -> None:
    """628 bytes in (Ya, 512 of padding, 20 of hash) without the marker: refused, nothing more buffered."""
    a = HandA(INFO_HASH, ia=HANDSHAKE)
    b = MseResponder(lookup(INFO_HASH), rng=random.Random(2))
    b.receive_data(a.first())
    b.receive_data(bytes(mse.SYNC_WINDOW - 1))
    assert not b.done and b.buffered_bytes == mse.SYNC_WINDOW - 1
    b.receive_data(b"\0")
    assert b.error is not None and b.buffered_bytes == 0


def test_vc_search_stops_at_the_window() -> None:
    a = MseInitiator(INFO_HASH, HANDSHAKE, rng=random.Random(1))
    a.start()
    hand_b = HandB()
    a.receive_data(hand_b.key())
    a.receive_data(bytes(mse.VC_WINDOW - 1))
    assert not a.done
    a.receive_data(b"\0")
    assert a.error is not None and "verification constant" in a.error


def _against_hand_b(provide: int, select: int, pad_d: int = 0, pad_b: int = 0) -> MseInitiator:
    a = MseInitiator(INFO_HASH, HANDSHAKE, provide=provide, rng=random.Random(1))
    ya = a.start()
    hand_b = HandB()
    assert a.receive_data(hand_b.key(pad_b))  # step 3 goes out as soon as Yb is in
    a.receive_data(hand_b.reply(ya, INFO_HASH, select=select, pad_d=pad_d) + b"stream")
    return a


def test_initiator_takes_a_hand_built_reply() -> None:
    a = _against_hand_b(CRYPTO_RC4 | CRYPTO_PLAINTEXT, CRYPTO_PLAINTEXT, pad_d=MAX_PAD, pad_b=MAX_PAD)
    assert a.result is not None and a.result.method == CRYPTO_PLAINTEXT and a.result.payload == b"stream"


def test_initiator_refuses_a_method_it_did_not_offer() -> None:
    a = _against_hand_b(CRYPTO_RC4, CRYPTO_PLAINTEXT)
    assert a.error is not None and "not one we offered" in a.error


@pytest.mark.parametrize("select", [0, 3, 4])
def test_initiator_refuses_a_select_that_is_not_one_method(select: int) -> None:
    a = _against_hand_b(CRYPTO_RC4 | CRYPTO_PLAINTEXT, select)
    assert a.error is not None and "not one we offered" in a.error


def test_initiator_refuses_too_much_pad_d() -> None:
    a = _against_hand_b(CRYPTO_RC4 | CRYPTO_PLAINTEXT, CRYPTO_PLAINTEXT, pad_d=MAX_PAD + 1)
    assert a.error == "PadD of 513 bytes exceeds 512"


def test_responder_refuses_when_no_offered_method_is_acceptable() -> None:
    a, b = pair(provide=CRYPTO_PLAINTEXT, select=(CRYPTO_RC4,))
    run(a, b)
    assert b.error is not None and "offers plaintext, which we do not accept" in b.error


@pytest.mark.parametrize("key", [0, 1, P - 1, P, 2**768 - 1])
def test_degenerate_keys_are_refused(key: int) -> None:
    b = MseResponder(lookup(INFO_HASH))
    b.receive_data(key.to_bytes(KEY_BYTES, "big"))
    assert b.error is not None and "degenerate" in b.error
    a = MseInitiator(INFO_HASH, HANDSHAKE)
    a.start()
    a.receive_data(key.to_bytes(KEY_BYTES, "big"))
    assert a.error is not None and "degenerate" in a.error


def test_an_empty_initial_payload_leaves_the_handshake_to_the_stream() -> None:
    a = HandA(INFO_HASH, ia=b"", pad_a=3, pad_c=0)
    b = MseResponder(lookup(INFO_HASH), select=(CRYPTO_RC4,), rng=random.Random(2))
    yb = b.receive_data(a.first())
    b.receive_data(a.second(yb) + a.encrypt(HANDSHAKE))
    assert b.result is not None and b.result.payload == HANDSHAKE


def test_the_done_handshake_takes_no_more_bytes() -> None:
    a, b = pair()
    run(a, b)
    with pytest.raises(RuntimeError):
        b.receive_data(b"x")
    with pytest.raises(RuntimeError):
        a.start()


def test_our_own_misuse_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        MseInitiator(b"short", HANDSHAKE)
    with pytest.raises(ValueError):
        MseInitiator(INFO_HASH, bytes(70_000))
    with pytest.raises(ValueError):
        MseInitiator(INFO_HASH, HANDSHAKE, provide=4)
    with pytest.raises(ValueError):
        MseResponder(lookup(INFO_HASH), select=())


def test_keys_follow_the_spec() -> None:
    """Cross-check with the spec's formulas computed by hand: B reads what A sent, A what B sent."""
    a = HandA(INFO_HASH, ia=HANDSHAKE, pad_a=0, pad_c=0)
    b = MseResponder(lookup(INFO_HASH), select=(CRYPTO_RC4,), rng=Extremes(2, 0))  # no PadB, no PadD
    yb = b.receive_data(a.first())
    assert len(yb) == KEY_BYTES
    reply = b.receive_data(a.second(yb) + a.encrypt(b"more"))
    assert b.result is not None and b.result.payload == HANDSHAKE + b"more"
    assert b.result.encryptor is not None
    plain = RC4(a.key_b(yb)).apply(reply + b.result.encryptor.apply(b"stream"))
    assert plain == bytes(8) + (2).to_bytes(4, "big") + bytes(2) + b"stream"
