"""MSE handshakes built by hand from the spec's formulas, apart from protocol/mse.py's state machine, so a
test can make one wrong in exactly one way (too much padding, a bad constant, a method not offered)."""

from __future__ import annotations

import hashlib
import random

from torrentpy._core import RC4
from torrentpy.protocol.mse import P

VC = bytes(8)


def sha1(*parts: bytes) -> bytes:
    return hashlib.sha1(b"".join(parts)).digest()


def handshake_bytes(info_hash: bytes, peer_id: bytes = b"-XX0000-handbuilt...") -> bytes:
    return b"\x13BitTorrent protocol" + bytes(8) + info_hash + peer_id


class _Side:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.x = self.rng.getrandbits(160) | 1 << 159
        self.public = pow(2, self.x, P).to_bytes(96, "big")

    def secret(self, peer_public: bytes) -> bytes:
        return pow(int.from_bytes(peer_public[:96], "big"), self.x, P).to_bytes(96, "big")


class HandA(_Side):
    """The initiator: first() is Ya and PadA; second(Yb) the sync hash, the SKEY hash and the encrypted rest."""

    def __init__(self, info_hash: bytes, *, ia: bytes, pad_a: int = 0, pad_c: int = 0, vc: bytes = VC,
                 provide: int = 3, seed: int = 7) -> None:
        super().__init__(seed)
        self.info_hash, self.ia, self.vc, self.provide = info_hash, ia, vc, provide
        self.pad_a, self.pad_c = pad_a, pad_c
        self.enc: RC4 | None = None

    def first(self) -> bytes:
        return self.public + self.rng.randbytes(self.pad_a)

    def key_b(self, yb: bytes) -> bytes:
        return sha1(b"keyB", self.secret(yb), self.info_hash)

    def second(self, yb: bytes) -> bytes:
        s = self.secret(yb)
        self.enc = RC4(sha1(b"keyA", s, self.info_hash))
        skey = bytes(x ^ y for x, y in zip(sha1(b"req2", self.info_hash), sha1(b"req3", s), strict=True))
        pad_c = self.rng.randbytes(self.pad_c)
        plain = (self.vc + self.provide.to_bytes(4, "big") + len(pad_c).to_bytes(2, "big") + pad_c
                 + len(self.ia).to_bytes(2, "big") + self.ia)
        return sha1(b"req1", s) + skey + self.enc.apply(plain)

    def encrypt(self, data: bytes) -> bytes:
        assert self.enc is not None, "second() first"
        return self.enc.apply(data)


class HandB(_Side):
    """The responder: key() is Yb and PadB; reply(Ya) the encrypted VC, crypto_select and PadD."""

    def __init__(self, seed: int = 11) -> None:
        super().__init__(seed)

    def key(self, pad_b: int = 0) -> bytes:
        return self.public + self.rng.randbytes(pad_b)

    def reply(self, ya: bytes, info_hash: bytes, *, select: int, pad_d: int = 0) -> bytes:
        enc = RC4(sha1(b"keyB", self.secret(ya), info_hash))
        return enc.apply(VC + select.to_bytes(4, "big") + pad_d.to_bytes(2, "big") + self.rng.randbytes(pad_d))
