"""Fuzz target for Message Stream Encryption (protocol/mse.py), above all the responder, which every
incoming connection goes through before anything else reads it.

A peer's bytes are random to a fuzzer only up to the Diffie-Hellman key: past it, every field is hidden
behind a hash or RC4 keyed by the shared secret. So the target builds the valid prefix itself, from the
spec's formulas, and lets the fuzzer choose what follows, encrypted the way a real peer would:

    byte 0        bits 0-1  stage: 0 the raw stream; 1 a valid public key, then raw bytes;
                            2 key, PadA, HASH('req1', S), the SKEY hash, then ENCRYPT(rest) (the fuzzer
                            writes VC, crypto_provide, len(PadC), PadC, len(IA), IA in clear)
                  bit 2     play the initiator instead: stage 2 is then key, PadB, ENCRYPT(rest)
                            (VC, crypto_select, len(PadD), PadD in clear)
                  bit 3     plaintext handshakes refused (responder)
                  bit 4     the responder prefers RC4
                  bit 5     the SKEY hash names a torrent the responder does not serve
    bytes 1..2    PadA / PadB length (mod 600: past the 512 allowed too)
    bytes 3..10   seed of the split points
    bytes 11..    the rest

Invariants: nothing raises; fed whole or in arbitrary splits the handshake sends the same bytes and ends
the same way; while waiting it holds less than its current step needs (never more than a window, a pad
or IA); a failed one holds nothing; and at stage 2 the outcome is the one a few lines of spec say.

    .venv/bin/python fuzz/run.py mse [-max_total_time=60]
"""

from __future__ import annotations

import hashlib
import random
import struct

from torrentpy._core import RC4
from torrentpy.protocol import mse

HEADER = 11
_HEAD = struct.Struct(">BHQ")
# The spec's numbers, written out here rather than read from the module under test.
KEY_BYTES = 96
MAX_PAD = 512
VC = bytes(8)
SYNC_WINDOW = MAX_PAD + 20  # from the end of Ya (628 bytes into the stream): PadA, then the hash
VC_WINDOW = MAX_PAD + 8
INFO_HASH = bytes(range(20))
OTHER_HASH = bytes(range(100, 120))
SERVED = {mse.skey_hash(INFO_HASH): INFO_HASH}
# The peer's fixed private key (the handshake under test draws its own from a seeded rng).
PEER_X = 0x1234_5678_9ABC_DEF0_1357_9BDF_2468_ACE0_FEDC_BA98 | 1 << 159
PEER_PUBLIC = pow(mse.G, PEER_X, mse.P).to_bytes(mse.KEY_BYTES, "big")
IA = b"\x13BitTorrent protocol" + bytes(8) + INFO_HASH + b"-FZ0000-fuzzfuzzfuzz"


def _sha1(*parts: bytes) -> bytes:
    return hashlib.sha1(b"".join(parts)).digest()


class Setup:
    def __init__(self, header: bytes, rest: bytes) -> None:
        flags, pad, self.seed = _HEAD.unpack(header)
        self.stage = flags & 3
        self.initiator = bool(flags & 4)
        self.accept_plain = not flags & 8
        self.select = (mse.CRYPTO_RC4, mse.CRYPTO_PLAINTEXT) if flags & 16 else (mse.CRYPTO_PLAINTEXT, mse.CRYPTO_RC4)
        self.wrong_torrent = bool(flags & 32)
        self.pad = pad % 600
        self.rest = rest
        self.secret = b""
        self.cipher = b""  # stage 2: `rest` as sent, all of it RC4 (so a plaintext stream after IA/PadD is noise)

    def handshake(self) -> mse.MseInitiator | mse.MseResponder:
        rng = random.Random(7)  # the same key pair for every run of this input
        if self.initiator:
            return mse.MseInitiator(INFO_HASH, IA, rng=rng)
        return mse.MseResponder(SERVED.get, select=self.select, accept_plain=self.accept_plain, rng=rng)

    def stream(self) -> bytes:
        """What the peer sends (after our first bytes, for an initiator)."""
        if self.stage == 0:
            return self.rest
        if self.stage == 1:
            return PEER_PUBLIC + self.rest
        ours = self.handshake()
        public = ours.start()[: mse.KEY_BYTES] if isinstance(ours, mse.MseInitiator) else \
            ours.receive_data(PEER_PUBLIC)[: mse.KEY_BYTES]
        self.secret = pow(int.from_bytes(public, "big"), PEER_X, mse.P).to_bytes(mse.KEY_BYTES, "big")
        pad = bytes(self.pad)
        if self.initiator:
            self.cipher = RC4(_sha1(b"keyB", self.secret, INFO_HASH)).apply(self.rest)
            return PEER_PUBLIC + pad + self.cipher
        skey = OTHER_HASH if self.wrong_torrent else INFO_HASH
        masked = bytes(x ^ y for x, y in zip(mse.skey_hash(skey), _sha1(b"req3", self.secret), strict=True))
        self.cipher = RC4(_sha1(b"keyA", self.secret, skey)).apply(self.rest)
        return PEER_PUBLIC + pad + _sha1(b"req1", self.secret) + masked + self.cipher


def _bound(hs: mse.MseInitiator | mse.MseResponder) -> int:
    """Less than this may be held while waiting in the current step (named by the step's method)."""
    step = hs._step.__name__
    return {"_sniff": 20, "_await_ya": KEY_BYTES, "_await_yb": KEY_BYTES, "_await_req1": SYNC_WINDOW,
            "_await_vc": VC_WINDOW, "_await_skey": 34, "_await_select": 6,
            "_await_pad_c": getattr(hs, "_pad_c", 0) + 2, "_await_pad_d": getattr(hs, "_pad_d", 0),
            "_await_ia": getattr(hs, "_ia_len", 0)}.get(step, 0)


def _play(setup: Setup, stream: bytes, sizes: random.Random | None) -> tuple[object, ...]:
    hs = setup.handshake()
    sent = hs.start() if isinstance(hs, mse.MseInitiator) else b""
    after = b""  # what arrived once it was done: the BitTorrent stream's, as a link hands it on
    pos = 0
    while pos < len(stream):
        size = len(stream) if sizes is None else sizes.choice((1, 1, 2, 7, 20, 96, 97, 500, 5000))
        piece = stream[pos : pos + size]
        pos += size
        if hs.done:
            after += piece
            continue
        sent += hs.receive_data(piece)
        if hs.error is not None:
            assert hs.buffered_bytes == 0, "a failed handshake holds bytes"
        elif not hs.done:
            assert hs.buffered_bytes < max(_bound(hs), 1), f"{hs.buffered_bytes} bytes held in {hs._step.__name__}"
    result = hs.result
    if result is None:
        return (sent, hs.error, None)
    dec = result.decryptor
    return (sent, None, result.method, result.info_hash, result.payload + (dec.apply(after) if dec else after))


def _model(setup: Setup, outcome: tuple[object, ...]) -> None:
    """Stage 2: the outcome the spec gives for the fields the fuzzer wrote in clear."""
    rest = setup.rest
    error, done = outcome[1], outcome[2] is not None
    if setup.pad > MAX_PAD:
        assert not done, "padding past 512 bytes was accepted"
        return
    if setup.initiator:
        if rest[:8] != VC or len(rest) < 14:
            assert not done
            return
        select, pad_d = struct.unpack_from(">IH", rest, 8)
        if select not in (1, 2) or pad_d > MAX_PAD:
            assert error is not None
        elif len(rest) >= 14 + pad_d:
            after = rest if select == mse.CRYPTO_RC4 else setup.cipher  # ENCRYPT2 is nothing for plaintext
            assert outcome[2] == select and outcome[4] == after[14 + pad_d :], outcome
        return
    if setup.wrong_torrent:
        assert error == "encrypted handshake for a torrent we do not serve" or len(rest) < 14, outcome
        return
    if len(rest) < 14:
        assert not done and error is None
        return
    if rest[:8] != VC:
        assert error == "bad verification constant"
        return
    provide, pad_c = struct.unpack_from(">IH", rest, 8)
    method = next((m for m in setup.select if provide & m), 0)
    if pad_c > MAX_PAD or not method:
        assert error is not None
        return
    if len(rest) < 16 + pad_c:
        assert not done
        return
    ia_len = struct.unpack_from(">H", rest, 14 + pad_c)[0]
    start = 16 + pad_c
    if len(rest) < start + ia_len:
        assert not done
        return
    assert outcome[2] == method and outcome[3] == INFO_HASH, outcome
    after = rest if method == mse.CRYPTO_RC4 else setup.cipher  # IA is RC4 either way, what follows may not be
    assert outcome[4] == rest[start : start + ia_len] + after[start + ia_len :], \
        "the stream after the handshake is not what the peer sent"


def test_one_input(data: bytes) -> None:
    if len(data) < HEADER:
        return
    setup = Setup(data[:HEADER], data[HEADER:])
    stream = setup.stream()
    whole = _play(setup, stream, None)
    split = _play(setup, stream, random.Random(setup.seed))
    assert split == whole, "the outcome depends on how the bytes were split"
    if setup.stage == 2:
        _model(setup, whole)
    elif setup.stage == 0 and not setup.initiator and stream[:20] == mse.PROTOCOL_HEADER:
        assert (whole[2] == mse.METHOD_NONE) if setup.accept_plain else (whole[1] is not None), whole
