"""Message Stream Encryption (MSE, also "Protocol Encryption"): the obfuscated handshake Vuze/Azureus
specified and libtorrent, Transmission, aria2 and qBittorrent speak, as a sans-I/O state machine.

    A→B  Ya, PadA
    B→A  Yb, PadB
    A→B  HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
         ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
    B→A  ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(payload)
    A→B  ENCRYPT2(payload)

Y is a 768-bit Diffie-Hellman public key (G = 2, the spec's prime P), S the shared secret, SKEY the
torrent's info-hash, HASH SHA-1, VC eight zero bytes. ENCRYPT is RC4 keyed with HASH('keyA', S, SKEY)
from A (HASH('keyB', …) from B) with the first 1024 bytes of key stream dropped; ENCRYPT2 is that same
stream when RC4 is selected (0x02) and nothing at all when plaintext is (0x01). IA, the initial
payload, carries A's BitTorrent handshake and is always RC4.

`MseInitiator` (A) and `MseResponder` (B) take bytes with `receive_data()`, which returns the bytes to
send. When `result` is set the handshake is over: the method chosen, the ciphers of the stream, and
`payload`, the BitTorrent stream's first bytes (IA and anything after it), already decrypted. A peer's
malformed or hostile input sets `error` (a one-line reason) instead; nothing it sends raises. Every
wait is bounded: padding by 512 bytes, the sync markers searched for within the spec's windows, IA by
its 16-bit length.
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torrentpy._core import RC4

P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD"
    "3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563",
    16,
)
G = 2
KEY_BYTES = 96  # a public key or the secret, big-endian, zero-padded
# The spec: at least 128 bits, 160 recommended; more buys nothing against a 768-bit group.
PRIVATE_KEY_BITS = 160
VC = bytes(8)
CRYPTO_PLAINTEXT = 0x01
CRYPTO_RC4 = 0x02
METHOD_NONE = 0  # no MSE: the peer began with a plain BitTorrent handshake (MseResponder only)
# PadA, PadB, PadC and PadD are each at most this long (the spec's limit; every client keeps to it).
MAX_PAD = 512
# The responder looks for HASH('req1', S) at most PadA's 512 bytes after Ya: 96 + 512 + 20 = 628 bytes
# into the stream. The initiator looks for ENCRYPT(VC) at most PadB's 512 bytes after Yb.
SYNC_WINDOW = MAX_PAD + 20
VC_WINDOW = MAX_PAD + 8
MAX_IA = 0xFFFF  # len(IA) is 16 bits
PROTOCOL_HEADER = b"\x13BitTorrent protocol"

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


def _sha1(*parts: bytes) -> bytes:
    return hashlib.sha1(b"".join(parts)).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def skey_hash(info_hash: bytes) -> bytes:
    """HASH('req2', SKEY): what a responder indexes its torrents by to find the one a peer asks for."""
    return _sha1(b"req2", info_hash)


def method_name(method: int) -> str:
    return {CRYPTO_RC4: "rc4", CRYPTO_PLAINTEXT: "plaintext"}.get(method, "none")


@dataclass(frozen=True)
class MseResult:
    """A finished handshake. With RC4, `encryptor` continues our side's stream and `decryptor` the
    peer's; with plaintext (or no MSE) both are None and the stream goes on unencrypted."""

    method: int  # CRYPTO_RC4, CRYPTO_PLAINTEXT, or METHOD_NONE (the peer sent a plain handshake)
    info_hash: bytes | None  # SKEY: the torrent the handshake named (None without MSE)
    encryptor: RC4 | None
    decryptor: RC4 | None
    payload: bytes  # the BitTorrent stream's first bytes, decrypted

    @property
    def encrypted_handshake(self) -> bool:
        return self.method != METHOD_NONE


class _Handshake:
    """What both roles share: the DH key pair, the receive buffer, the step loop."""

    def __init__(self, rng: random.Random | None, pad_max: int) -> None:
        if not 0 <= pad_max <= MAX_PAD:
            raise ValueError(f"pad_max must be in 0..{MAX_PAD}")
        self._rng = rng or random.SystemRandom()
        self._pad_max = pad_max
        self._x = 0  # the private key, made when first needed: a plain handshake never pays for one
        self._buf = bytearray()
        self._out: list[bytes] = []
        self._step: Callable[[], bool] = self._no_step
        self.result: MseResult | None = None
        self.error: str | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None

    @property
    def buffered_bytes(self) -> int:
        """Received bytes not consumed yet (bounded by the state's need: see the module docstring)."""
        return len(self._buf)

    def receive_data(self, data: bytes | bytearray | memoryview) -> bytes:
        """Take bytes from the peer; return the bytes to send it now (maybe none)."""
        if self.done:
            raise RuntimeError("the handshake is over: feed the stream to the BitTorrent connection")
        self._buf += data
        while not self.done and self._step():
            pass
        out = b"".join(self._out)
        self._out.clear()
        return out

    def _no_step(self) -> bool:
        return False

    def _fail(self, reason: str) -> bool:
        self.error = reason
        self._buf = bytearray()
        return False

    def _pad(self) -> bytes:
        return self._rng.randbytes(self._rng.randint(0, self._pad_max))

    def _public_key(self) -> bytes:
        if not self._x:
            # The top bit set, so the exponent always has its full length. A modular exponentiation costs
            # about 0.4 ms here, two per handshake.
            self._x = self._rng.getrandbits(PRIVATE_KEY_BITS) | (1 << (PRIVATE_KEY_BITS - 1))
        return pow(G, self._x, P).to_bytes(KEY_BYTES, "big")

    def _secret(self, peer_key: bytes | bytearray) -> bytes | None:
        y = int.from_bytes(peer_key, "big")
        # 0, 1 and P-1 (and anything not below P) would make the secret one an eavesdropper knows.
        if not 1 < y < P - 1:
            return None
        assert self._x, "our key is made before the peer's is used"
        return pow(y, self._x, P).to_bytes(KEY_BYTES, "big")

    def _finish(self, method: int, info_hash: bytes | None, enc: RC4 | None, dec: RC4 | None,
                head: bytes = b"") -> bool:
        rest = bytes(self._buf)
        self._buf = bytearray()
        if method == CRYPTO_RC4:
            assert dec is not None
            rest = dec.apply(rest)
        else:
            enc = dec = None
        self.result = MseResult(method, info_hash, enc, dec, head + rest)
        return False


class MseInitiator(_Handshake):
    """Side A: we dialled. `initial_payload` (IA) is our BitTorrent handshake; `provide` the methods we
    accept (CRYPTO_RC4 | CRYPTO_PLAINTEXT), of which the peer picks one."""

    def __init__(self, info_hash: bytes, initial_payload: bytes, *, provide: int = CRYPTO_RC4 | CRYPTO_PLAINTEXT,
                 rng: random.Random | None = None, pad_max: int = MAX_PAD) -> None:
        if len(info_hash) != 20:
            raise ValueError("info_hash must be 20 bytes")
        if len(initial_payload) > MAX_IA:
            raise ValueError(f"the initial payload is at most {MAX_IA} bytes")
        if provide not in (CRYPTO_PLAINTEXT, CRYPTO_RC4, CRYPTO_PLAINTEXT | CRYPTO_RC4):
            raise ValueError("provide must be CRYPTO_PLAINTEXT, CRYPTO_RC4 or both")
        super().__init__(rng, pad_max)
        self.info_hash = bytes(info_hash)
        self._ia = bytes(initial_payload)
        self.provide = provide
        self._enc: RC4 | None = None
        self._dec: RC4 | None = None
        self._sync = b""  # ENCRYPT(VC) as it appears in B's stream
        self._method = 0
        self._pad_d = 0
        self._started = False
        self._step = self._await_yb

    def start(self) -> bytes:
        """Our first bytes: Ya and PadA."""
        if self._started:
            raise RuntimeError("start() was called already")
        self._started = True
        return self._public_key() + self._pad()

    def _await_yb(self) -> bool:
        if not self._started:
            raise RuntimeError("start() first: the peer's key is answered with ours")
        if len(self._buf) < KEY_BYTES:
            return False
        secret = self._secret(self._buf[:KEY_BYTES])
        if secret is None:
            return self._fail("the peer's Diffie-Hellman key is degenerate")
        del self._buf[:KEY_BYTES]
        skey = self.info_hash
        self._enc = RC4(_sha1(b"keyA", secret, skey))
        self._dec = RC4(_sha1(b"keyB", secret, skey))
        pad_c = self._pad()
        plain = b"".join((VC, _U32.pack(self.provide), _U16.pack(len(pad_c)), pad_c, _U16.pack(len(self._ia)),
                          self._ia))
        self._out.append(_sha1(b"req1", secret) + _xor(skey_hash(skey), _sha1(b"req3", secret))
                         + self._enc.apply(plain))
        # The decryptor is now past VC, where B's ENCRYPT(VC, …) leaves it.
        self._sync = self._dec.apply(VC)
        self._step = self._await_vc
        return True

    def _await_vc(self) -> bool:
        at = self._buf.find(self._sync, 0, VC_WINDOW)
        if at < 0:
            if len(self._buf) >= VC_WINDOW:
                return self._fail(f"no verification constant within {MAX_PAD} bytes of padding")
            return False
        del self._buf[: at + len(VC)]
        self._step = self._await_select
        return True

    def _await_select(self) -> bool:
        if len(self._buf) < 6:
            return False
        assert self._dec is not None
        plain = self._dec.apply(self._buf[:6])
        del self._buf[:6]
        select = _U32.unpack_from(plain)[0]
        self._pad_d = _U16.unpack_from(plain, 4)[0]
        if select not in (CRYPTO_PLAINTEXT, CRYPTO_RC4) or not select & self.provide:
            return self._fail(f"the peer selected crypto method {select:#x}, not one we offered")
        if self._pad_d > MAX_PAD:
            return self._fail(f"PadD of {self._pad_d} bytes exceeds {MAX_PAD}")
        self._method = select
        self._step = self._await_pad_d
        return True

    def _await_pad_d(self) -> bool:
        if len(self._buf) < self._pad_d:
            return False
        assert self._dec is not None
        self._dec.apply(self._buf[: self._pad_d])  # read past it: the key stream must advance
        del self._buf[: self._pad_d]
        return self._finish(self._method, self.info_hash, self._enc, self._dec)


class MseResponder(_Handshake):
    """Side B: the peer dialled us. `lookup` maps HASH('req2', SKEY) (see `skey_hash`) to the info-hash of a
    torrent we serve, or None. `select` lists the methods we accept, best first. A stream that begins
    with a plain BitTorrent handshake finishes at once with METHOD_NONE when `accept_plain` is set, and
    is refused otherwise."""

    def __init__(self, lookup: Callable[[bytes], bytes | None], *,
                 select: Sequence[int] = (CRYPTO_PLAINTEXT, CRYPTO_RC4), accept_plain: bool = True,
                 rng: random.Random | None = None, pad_max: int = MAX_PAD) -> None:
        if not select or any(m not in (CRYPTO_PLAINTEXT, CRYPTO_RC4) for m in select):
            raise ValueError("select must list CRYPTO_PLAINTEXT and/or CRYPTO_RC4")
        super().__init__(rng, pad_max)
        self._lookup = lookup
        self.select = tuple(select)
        self.accept_plain = accept_plain
        self._req1 = b""
        self._req3 = b""
        self._secret_key = b""
        self._info_hash = b""
        self._enc: RC4 | None = None
        self._dec: RC4 | None = None
        self._method = 0
        self._pad_c = 0
        self._ia_len = 0
        self._step = self._sniff

    def _sniff(self) -> bool:
        n = min(len(self._buf), len(PROTOCOL_HEADER))
        if self._buf[:n] != PROTOCOL_HEADER[:n]:
            self._step = self._await_ya
            return True
        if n < len(PROTOCOL_HEADER):
            return False
        if not self.accept_plain:
            return self._fail("the peer sent a plaintext handshake and encryption is required")
        return self._finish(METHOD_NONE, None, None, None)

    def _await_ya(self) -> bool:
        if len(self._buf) < KEY_BYTES:
            return False
        public = self._public_key()
        secret = self._secret(self._buf[:KEY_BYTES])
        if secret is None:
            return self._fail("the peer's Diffie-Hellman key is degenerate")
        del self._buf[:KEY_BYTES]
        self._secret_key = secret
        self._req1 = _sha1(b"req1", secret)
        self._req3 = _sha1(b"req3", secret)
        self._out.append(public + self._pad())
        self._step = self._await_req1
        return True

    def _await_req1(self) -> bool:
        at = self._buf.find(self._req1, 0, SYNC_WINDOW)
        if at < 0:
            if len(self._buf) >= SYNC_WINDOW:
                return self._fail(f"no synchronisation hash within {MAX_PAD} bytes of padding")
            return False
        del self._buf[: at + len(self._req1)]
        self._step = self._await_skey
        return True

    def _await_skey(self) -> bool:
        # HASH('req2', SKEY) xor HASH('req3', S), then ENCRYPT(VC, crypto_provide, len(PadC)).
        if len(self._buf) < 20 + 8 + 4 + 2:
            return False
        info_hash = self._lookup(_xor(bytes(self._buf[:20]), self._req3))
        if info_hash is None:
            return self._fail("encrypted handshake for a torrent we do not serve")
        self._info_hash = info_hash
        secret = self._secret_key
        self._dec = RC4(_sha1(b"keyA", secret, info_hash))
        self._enc = RC4(_sha1(b"keyB", secret, info_hash))
        plain = self._dec.apply(self._buf[20:34])
        del self._buf[:34]
        if plain[:8] != VC:
            return self._fail("bad verification constant")
        provide = _U32.unpack_from(plain, 8)[0]
        self._pad_c = _U16.unpack_from(plain, 12)[0]
        if self._pad_c > MAX_PAD:
            return self._fail(f"PadC of {self._pad_c} bytes exceeds {MAX_PAD}")
        self._method = next((m for m in self.select if provide & m), 0)
        if not self._method:
            offered = " and ".join(method_name(m) for m in (CRYPTO_PLAINTEXT, CRYPTO_RC4) if provide & m)
            return self._fail(f"the peer offers {offered or 'no crypto method'}, which we do not accept")
        pad_d = self._pad()
        self._out.append(self._enc.apply(VC + _U32.pack(self._method) + _U16.pack(len(pad_d)) + pad_d))
        self._step = self._await_pad_c
        return True

    def _await_pad_c(self) -> bool:
        if len(self._buf) < self._pad_c + 2:
            return False
        assert self._dec is not None
        plain = self._dec.apply(self._buf[: self._pad_c + 2])
        del self._buf[: self._pad_c + 2]
        self._ia_len = _U16.unpack_from(plain, self._pad_c)[0]
        self._step = self._await_ia
        return True

    def _await_ia(self) -> bool:
        if len(self._buf) < self._ia_len:
            return False
        assert self._dec is not None
        ia = self._dec.apply(self._buf[: self._ia_len])  # RC4 whatever was selected
        del self._buf[: self._ia_len]
        return self._finish(self._method, self._info_hash, self._enc, self._dec, ia)
