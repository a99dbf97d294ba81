"""The session's encryption policy (MSE/PE, protocol/mse.py) and the index that lets an encrypted
handshake find its torrent.

The three modes are Transmission's (its RPC's `encryption` values); what each does:

| mode | our dials | a peer's dial | a peer that offers both methods gets |
|---|---|---|---|
| tolerated (default) | plain BitTorrent handshake | plain or encrypted | plaintext after the handshake |
| preferred | encrypted, RC4 only; if that fails, once more in plaintext | plain or encrypted | RC4 |
| required | encrypted, RC4 only | encrypted, RC4 only | RC4 |

tolerated is the default because it is the cheapest on both ends: no Diffie-Hellman and no extra round
trip on our dials, and no RC4 over the payload when a peer (libtorrent by default) offers plaintext. A
peer that starts an encrypted handshake (libtorrent's and Transmission's default) still gets one at once,
and one that requires encryption can still reach us; only dialling such a peer takes preferred or required.
"""

from __future__ import annotations

from dataclasses import dataclass

from torrentpy.protocol.mse import (
    CRYPTO_PLAINTEXT,
    CRYPTO_RC4,
    MseInitiator,
    MseResponder,
    skey_hash,
)
from torrentpy.protocol.peer import PeerConnection

MODES = ("tolerated", "preferred", "required")
DEFAULT_MODE = "tolerated"


@dataclass(frozen=True)
class Policy:
    dial_encrypted: bool  # our dials start with the encrypted handshake
    retry_plain: bool  # an encrypted dial that fails before it finishes is made again in plaintext
    provide: int  # the methods our encrypted dials offer
    select: tuple[int, ...]  # the methods we take from a peer that dials us encrypted, best first
    accept_plain: bool  # a peer may dial us with a plain BitTorrent handshake


POLICIES = {
    "tolerated": Policy(False, False, CRYPTO_RC4 | CRYPTO_PLAINTEXT, (CRYPTO_PLAINTEXT, CRYPTO_RC4), True),
    "preferred": Policy(True, True, CRYPTO_RC4, (CRYPTO_RC4, CRYPTO_PLAINTEXT), True),
    "required": Policy(True, False, CRYPTO_RC4, (CRYPTO_RC4,), False),
}


class Encryption:
    """The mode (changeable while running: new connections follow it) and HASH('req2', info-hash) of
    every torrent in the session, so a responder finds the torrent a peer names without hashing them all."""

    def __init__(self, mode: str = DEFAULT_MODE) -> None:
        self.mode = DEFAULT_MODE
        self.set_mode(mode)
        self._skeys: dict[bytes, bytes] = {}

    @property
    def policy(self) -> Policy:
        return POLICIES[self.mode]

    def set_mode(self, mode: str) -> None:
        if mode not in POLICIES:
            raise ValueError(f"encryption must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode

    def add_torrent(self, info_hash: bytes) -> None:
        self._skeys[skey_hash(info_hash)] = info_hash

    def remove_torrent(self, info_hash: bytes) -> None:
        self._skeys.pop(skey_hash(info_hash), None)

    def lookup(self, req2: bytes) -> bytes | None:
        return self._skeys.get(req2)

    def responder(self) -> MseResponder:
        """For an accepted connection: tells a plain handshake from an encrypted one and answers either."""
        policy = self.policy
        return MseResponder(self.lookup, select=policy.select, accept_plain=policy.accept_plain)

    def initiator(self, conn: PeerConnection, *, encrypted: bool | None = None) -> MseInitiator | None:
        """For a dial: the encrypted handshake carrying `conn`'s BitTorrent handshake, or None to dial in
        plaintext (the mode says which unless `encrypted` does)."""
        policy = self.policy
        if not (policy.dial_encrypted if encrypted is None else encrypted):
            return None
        assert conn.info_hash is not None
        return MseInitiator(conn.info_hash, conn.initiate(), provide=policy.provide)
