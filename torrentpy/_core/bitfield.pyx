# cython: language_level=3, boundscheck=False, wraparound=False
"""Piece bitfields and the piece-availability counter the picker reads on every HAVE.

Bits are in wire order (BEP 3): piece 0 is the high bit of byte 0."""

from cpython.mem cimport PyMem_Calloc, PyMem_Free
from libc.stdint cimport uint64_t
from libc.string cimport memcmp, memcpy
import random as _random


cdef extern from *:
    int __builtin_popcount(unsigned int) nogil
    int __builtin_popcountll(unsigned long long) nogil


cdef Py_ssize_t _popcount(const unsigned char* data, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i = 0, total = 0
    cdef uint64_t word
    while i + 8 <= n:
        memcpy(&word, data + i, 8)
        total += __builtin_popcountll(word)
        i += 8
    while i < n:
        total += __builtin_popcount(data[i])
        i += 1
    return total


# Set operations work a 64-bit word at a time; a byte loop was slower than Python ints.
cdef enum:
    OP_AND = 0
    OP_OR = 1
    OP_ANDNOT = 2


cdef Py_ssize_t _combine(unsigned char* out, const unsigned char* a, const unsigned char* b,
                         Py_ssize_t n, int op) noexcept nogil:
    """out = a OP b over n bytes; returns the popcount of out."""
    cdef Py_ssize_t i = 0, total = 0
    cdef uint64_t x, y
    while i + 8 <= n:
        memcpy(&x, a + i, 8)
        memcpy(&y, b + i, 8)
        if op == OP_AND:
            x = x & y
        elif op == OP_OR:
            x = x | y
        else:
            x = x & ~y
        memcpy(out + i, &x, 8)
        total += __builtin_popcountll(x)
        i += 8
    while i < n:
        if op == OP_AND:
            out[i] = a[i] & b[i]
        elif op == OP_OR:
            out[i] = a[i] | b[i]
        else:
            out[i] = a[i] & ~b[i]
        total += __builtin_popcount(out[i])
        i += 1
    return total


cdef class Bitfield:
    """A fixed-size set of piece indexes."""

    def __cinit__(self, Py_ssize_t num_bits):
        if num_bits < 0:
            raise ValueError("bitfield size must not be negative")
        self._nbits = num_bits
        self._nbytes = (num_bits + 7) // 8
        self._count = 0
        # calloc(0) may return NULL; always allocate at least one byte.
        self._bits = <unsigned char*> PyMem_Calloc(self._nbytes if self._nbytes else 1, 1)
        if self._bits == NULL:
            raise MemoryError()

    def __dealloc__(self):
        PyMem_Free(self._bits)

    @classmethod
    def from_bytes(cls, const unsigned char[::1] data not None, Py_ssize_t num_bits) -> Bitfield:
        """Parse a wire-format bitfield for `num_bits` pieces. The length must be exactly
        ceil(num_bits / 8) and the spare bits in the last byte must be zero."""
        cdef Bitfield bf = Bitfield(num_bits)
        cdef unsigned char spare_mask
        if data.shape[0] != bf._nbytes:
            raise ValueError(f"bitfield is {data.shape[0]} bytes, expected {bf._nbytes} for {num_bits} pieces")
        if bf._nbytes:
            spare_mask = (1 << (bf._nbytes * 8 - num_bits)) - 1
            if data[bf._nbytes - 1] & spare_mask:
                raise ValueError("bitfield has spare bits set past the last piece")
            memcpy(bf._bits, &data[0], bf._nbytes)
        bf._count = _popcount(bf._bits, bf._nbytes)
        return bf

    @classmethod
    def full(cls, Py_ssize_t num_bits) -> Bitfield:
        cdef Bitfield bf = Bitfield(num_bits)
        cdef Py_ssize_t i
        for i in range(num_bits):
            bf.set_c(i)
        return bf

    def to_bytes(self) -> bytes:
        return self._bits[:self._nbytes]

    cdef bint get_c(self, Py_ssize_t index) noexcept nogil:
        return (self._bits[index >> 3] >> (7 - (index & 7))) & 1

    cdef void set_c(self, Py_ssize_t index) noexcept nogil:
        cdef unsigned char mask = 0x80 >> (index & 7)
        if not (self._bits[index >> 3] & mask):
            self._bits[index >> 3] |= mask
            self._count += 1

    cdef void clear_c(self, Py_ssize_t index) noexcept nogil:
        cdef unsigned char mask = 0x80 >> (index & 7)
        if self._bits[index >> 3] & mask:
            self._bits[index >> 3] &= ~mask
            self._count -= 1

    cdef Py_ssize_t _check(self, Py_ssize_t index) except -1:
        if index < 0 or index >= self._nbits:
            raise IndexError(f"piece index {index} out of range 0..{self._nbits - 1}")
        return index

    def __len__(self) -> int:
        return self._nbits

    def __getitem__(self, Py_ssize_t index) -> bool:
        return self.get_c(self._check(index))

    def get(self, Py_ssize_t index) -> bool:
        return self.get_c(self._check(index))

    def set(self, Py_ssize_t index) -> None:
        self.set_c(self._check(index))

    def clear(self, Py_ssize_t index) -> None:
        self.clear_c(self._check(index))

    def count(self) -> int:
        return self._count

    def all(self) -> bool:
        return self._count == self._nbits

    def any(self) -> bool:
        return self._count > 0

    def first_missing(self) -> int:
        """Index of the first clear bit, or -1 when every bit is set."""
        cdef Py_ssize_t i, b
        for i in range(self._nbytes):
            if self._bits[i] != 0xFF:
                for b in range(8):
                    if i * 8 + b >= self._nbits:
                        return -1
                    if not (self._bits[i] & (0x80 >> b)):
                        return i * 8 + b
        return -1

    def __iter__(self):
        """The indexes of set bits, ascending."""
        cdef Py_ssize_t i, b
        cdef list out = []
        for i in range(self._nbytes):
            if self._bits[i]:
                for b in range(8):
                    if self._bits[i] & (0x80 >> b):
                        out.append(i * 8 + b)
        return iter(out)

    def to_flags(self) -> bytes:
        """One byte per piece, 1 where the bit is set: what a piece map draws from."""
        cdef bytearray out = bytearray(self._nbits)
        cdef unsigned char[::1] view = out
        cdef Py_ssize_t i
        for i in range(self._nbits):
            view[i] = self.get_c(i)
        return bytes(out)

    def missing(self) -> list[int]:
        """The indexes of clear bits, ascending."""
        cdef Py_ssize_t i
        return [i for i in range(self._nbits) if not self.get_c(i)]

    cdef Bitfield _same_size(self, Bitfield other):
        if other is None or other._nbits != self._nbits:
            raise ValueError("bitfields differ in size")
        return Bitfield(self._nbits)

    def __and__(self, Bitfield other) -> Bitfield:
        cdef Bitfield out = self._same_size(other)
        out._count = _combine(out._bits, self._bits, other._bits, self._nbytes, OP_AND)
        return out

    def __or__(self, Bitfield other) -> Bitfield:
        cdef Bitfield out = self._same_size(other)
        out._count = _combine(out._bits, self._bits, other._bits, self._nbytes, OP_OR)
        return out

    def __sub__(self, Bitfield other) -> Bitfield:
        """Pieces in self but not in other: `theirs - mine` is what a peer can give us."""
        cdef Bitfield out = self._same_size(other)
        out._count = _combine(out._bits, self._bits, other._bits, self._nbytes, OP_ANDNOT)
        return out

    def __invert__(self) -> Bitfield:
        cdef Bitfield out = Bitfield(self._nbits)
        cdef Py_ssize_t i
        for i in range(self._nbytes):
            out._bits[i] = ~self._bits[i]
        if self._nbytes and self._nbits % 8:
            out._bits[self._nbytes - 1] &= <unsigned char> (0xFF << (8 - self._nbits % 8))
        out._count = self._nbits - self._count
        return out

    def has_any_missing_from(self, Bitfield mine) -> bool:
        """True when self holds a piece that `mine` lacks: whether to be interested
        in a peer, without allocating."""
        if mine is None or mine._nbits != self._nbits:
            raise ValueError("bitfields differ in size")
        cdef Py_ssize_t i = 0
        cdef uint64_t x, y
        while i + 8 <= self._nbytes:
            memcpy(&x, self._bits + i, 8)
            memcpy(&y, mine._bits + i, 8)
            if x & ~y:
                return True
            i += 8
        while i < self._nbytes:
            if self._bits[i] & ~mine._bits[i]:
                return True
            i += 1
        return False

    def copy(self) -> Bitfield:
        cdef Bitfield out = Bitfield(self._nbits)
        memcpy(out._bits, self._bits, self._nbytes)
        out._count = self._count
        return out

    def __eq__(self, other):
        if not isinstance(other, Bitfield):
            return NotImplemented
        cdef Bitfield o = other
        return o._nbits == self._nbits and memcmp(o._bits, self._bits, self._nbytes) == 0

    def __hash__(self):
        return hash((self._nbits, self.to_bytes()))

    def __repr__(self) -> str:
        if self._nbits <= 64:
            bits = "".join("1" if self.get_c(i) else "0" for i in range(self._nbits))
            return f"Bitfield('{bits}')"
        return f"Bitfield({self._count}/{self._nbits})"

    @classmethod
    def from_string(cls, str bits) -> Bitfield:
        """Bitfield('1100') style constructor for tests and debugging."""
        cdef Bitfield bf = Bitfield(len(bits))
        for i, ch in enumerate(bits):
            if ch == "1":
                bf.set_c(i)
            elif ch != "0":
                raise ValueError("bit strings hold only 0 and 1")
        return bf


cdef class Availability:
    """How many connected peers have each piece."""

    def __cinit__(self, Py_ssize_t num_pieces):
        if num_pieces < 0:
            raise ValueError("piece count must not be negative")
        self._n = num_pieces
        self._peers = 0
        self._counts = <unsigned int*> PyMem_Calloc(num_pieces if num_pieces else 1, sizeof(unsigned int))
        if self._counts == NULL:
            raise MemoryError()

    def __dealloc__(self):
        PyMem_Free(self._counts)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, Py_ssize_t index) -> int:
        if index < 0 or index >= self._n:
            raise IndexError("piece index out of range")
        return self._counts[index]

    cdef Bitfield _fits(self, Bitfield bf):
        if bf is None or bf._nbits != self._n:
            raise ValueError("bitfield size does not match the torrent")
        return bf

    def add_peer(self, Bitfield bf not None) -> None:
        """Count a newly connected peer's pieces."""
        self._fits(bf)
        cdef Py_ssize_t i
        for i in range(self._n):
            if bf.get_c(i):
                self._counts[i] += 1
        self._peers += 1

    def remove_peer(self, Bitfield bf not None) -> None:
        """Forget a departed peer's pieces (pass the bitfield it had when it left)."""
        self._fits(bf)
        cdef Py_ssize_t i
        for i in range(self._n):
            if bf.get_c(i) and self._counts[i]:
                self._counts[i] -= 1
        if self._peers:
            self._peers -= 1

    def increment(self, Py_ssize_t index) -> None:
        """A peer announced HAVE for `index`."""
        if index < 0 or index >= self._n:
            raise IndexError("piece index out of range")
        self._counts[index] += 1

    def decrement(self, Py_ssize_t index) -> None:
        if index < 0 or index >= self._n:
            raise IndexError("piece index out of range")
        if self._counts[index]:
            self._counts[index] -= 1

    @property
    def peers(self) -> int:
        return self._peers

    def min_available(self) -> int:
        """Lowest count over all pieces: how many full copies the swarm we see holds."""
        cdef Py_ssize_t i
        cdef unsigned int low
        if self._n == 0:
            return 0
        low = self._counts[0]
        for i in range(1, self._n):
            if self._counts[i] < low:
                low = self._counts[i]
        return low

    def rarest(self, Bitfield candidates not None, Py_ssize_t limit=-1, object rng=None) -> list[int]:
        """Pieces set in `candidates`, rarest first; ties are broken by a random
        rotation so peers don't all pile onto the same piece. At most `limit` (all if -1)."""
        self._fits(candidates)
        cdef Py_ssize_t n = self._n, i, j, start
        cdef unsigned int c, maxc = 0
        if candidates._count == 0 or limit == 0:
            return []
        for i in range(n):
            if candidates.get_c(i) and self._counts[i] > maxc:
                maxc = self._counts[i]
        start = (rng or _random).randrange(n) if n else 0
        cdef list buckets = [[] for _ in range(maxc + 1)]
        for j in range(n):
            i = (start + j) % n
            if candidates.get_c(i):
                (<list> buckets[self._counts[i]]).append(i)
        cdef list out = []
        for b in buckets:
            out.extend(b)
            if 0 <= limit <= len(out):
                return out[:limit]
        return out

    def bucket_index(self, Bitfield skip not None) -> tuple:
        """The pieces not in `skip`, bucketed by count: (buckets, level, pos) with buckets[c] the
        pieces of count c in index order, level[i] piece i's count (-1 when skipped) and pos[i] its
        place in its bucket. The picker's rarity index is built from this after a peer comes or goes."""
        self._fits(skip)
        cdef Py_ssize_t n = self._n, i
        cdef unsigned int c, maxc = 0
        for i in range(n):
            if self._counts[i] > maxc:
                maxc = self._counts[i]
        cdef list buckets = [[] for _ in range(maxc + 1)]
        cdef list level = [-1] * n
        cdef list pos = [0] * n
        cdef list bucket
        for i in range(n):
            if skip.get_c(i):
                continue
            c = self._counts[i]
            bucket = <list> buckets[c]
            level[i] = c
            pos[i] = len(bucket)
            bucket.append(i)
        return buckets, level, pos

    def clamped_bytes(self) -> bytes:
        """One byte per piece: its count, capped at 255 (for the dashboard's rarity colouring)."""
        cdef bytearray out = bytearray(self._n)
        cdef unsigned char[::1] view = out
        cdef Py_ssize_t i
        for i in range(self._n):
            view[i] = self._counts[i] if self._counts[i] < 255 else 255
        return bytes(out)

    def counts(self) -> list[int]:
        cdef Py_ssize_t i
        return [self._counts[i] for i in range(self._n)]
