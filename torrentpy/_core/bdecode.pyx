# cython: language_level=3, boundscheck=False, wraparound=False
"""Bounded bencode decoding in C.

bencode.py's pure-Python decoder spent ~15 µs on each file of a big torrent (a dict, a list, two
strings and an int), 90 % of parsing it. This decoder keeps the exact rules and limits of
torrentpy.bencoding (canonical integers and lengths, depth and token budgets, the same messages);
that module decides what the caller sees."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcmp

from torrentpy.errors import BencodeError

# Depth is also bounded by the C stack, whatever limit a caller asks for: 1000 frames of this
# decoder are well under 1 MiB.
cdef int _STACK_DEPTH = 1000
# Up to 18 digits fit a long long; longer numbers go through Python's int (and its digit limit).
cdef int _FAST_DIGITS = 18
# Dictionary keys repeat (every file of a torrent has "length" and "path"): the first few distinct
# short keys are kept and handed out again, which saves an allocation and a hash per key.
cdef Py_ssize_t _KEPT_KEYS = 16
cdef Py_ssize_t _KEPT_KEY_BYTES = 32


class Malformed(ValueError):
    """The data ends early, or a value starts with a byte no bencoded value starts with, or a
    number has more digits than Python's int accepts. torrentpy.bencoding words it per entry point."""


cdef inline bint _digit(unsigned char c) noexcept nogil:
    return c >= 48 and c <= 57  # '0'..'9'


cdef class Decoder:
    """Decodes values out of one bytes object, sharing one token budget between calls."""

    def __init__(self, bytes data not None, Py_ssize_t max_tokens, int max_depth):
        self.data = data
        self.buf = <const unsigned char*><const char*>data
        self.size = len(data)
        self.max_tokens = max_tokens
        self.tokens_left = max_tokens
        self.max_depth = max_depth
        self.keys = []

    def value(self, Py_ssize_t pos, int depth=0):
        """The value starting at `pos` and the offset just past it."""
        cdef Py_ssize_t end = pos
        if pos < 0:
            raise Malformed()
        result = self._value(pos, &end, depth)
        return result, end

    def key(self, Py_ssize_t pos):
        """The dictionary key (a string) starting at `pos` and the offset just past it."""
        cdef Py_ssize_t end = pos
        if pos < 0:
            raise Malformed()
        result = self._string(pos, &end, True)
        return result, end

    cdef object _number(self, Py_ssize_t start, Py_ssize_t stop):
        cdef long long n = 0
        cdef Py_ssize_t p
        cdef bint negative = self.buf[start] == 45  # '-'
        if stop - start - negative > _FAST_DIGITS:
            try:
                return int(self.data[start:stop])
            except ValueError:  # more digits than sys.get_int_max_str_digits()
                raise Malformed() from None
        for p in range(start + negative, stop):
            n = n * 10 + (self.buf[p] - 48)
        return -n if negative else n

    cdef object _int(self, Py_ssize_t f, Py_ssize_t* end):
        # i(0|-?[1-9][0-9]*)e
        cdef const unsigned char* b = self.buf
        cdef Py_ssize_t p = f + 1
        cdef Py_ssize_t start = p
        if p < self.size and b[p] == 45:  # '-'
            p += 1
        if p < self.size and b[p] == 48 and p == start:  # '0', not '-0'
            p += 1
        elif p < self.size and _digit(b[p]) and b[p] != 48:
            while p < self.size and _digit(b[p]):
                p += 1
        else:
            raise BencodeError(f"invalid bencoding: bad integer at offset {f}")
        if p >= self.size or b[p] != 101:  # 'e'
            raise BencodeError(f"invalid bencoding: bad integer at offset {f}")
        value = self._number(start, p)
        end[0] = p + 1
        return value

    cdef object _string(self, Py_ssize_t f, Py_ssize_t* end, bint key):
        # (0|[1-9][0-9]*):
        cdef const unsigned char* b = self.buf
        cdef Py_ssize_t p = f
        cdef Py_ssize_t length = 0
        cdef Py_ssize_t q
        if p < self.size and b[p] == 48:
            p += 1
        elif p < self.size and _digit(b[p]):
            while p < self.size and _digit(b[p]):
                p += 1
        else:
            p = -1
        if p < 0 or p >= self.size or b[p] != 58:  # ':'
            if key:
                raise BencodeError(f"invalid bencoding: dict key at offset {f} is not a string")
            raise BencodeError(f"invalid bencoding: bad string length at offset {f}")
        if p - f > _FAST_DIGITS:
            if self._number(f, p) > self.size - (p + 1):
                raise BencodeError(f"invalid bencoding: string at offset {f} runs past the end of the data")
        for q in range(f, p):
            length = length * 10 + (b[q] - 48)
        if length > self.size - (p + 1):
            raise BencodeError(f"invalid bencoding: string at offset {f} runs past the end of the data")
        end[0] = p + 1 + length
        if key and length <= _KEPT_KEY_BYTES:
            return self._kept_key(<const char*>b + p + 1, length)
        return PyBytes_FromStringAndSize(<const char*>b + p + 1, length)

    cdef bytes _kept_key(self, const char* start, Py_ssize_t length):
        cdef bytes kept
        for kept in self.keys:
            if PyBytes_GET_SIZE(kept) == length and memcmp(PyBytes_AS_STRING(kept), start, length) == 0:
                return kept
        kept = PyBytes_FromStringAndSize(start, length)
        if len(self.keys) < _KEPT_KEYS:
            self.keys.append(kept)
        return kept

    cdef object _value(self, Py_ssize_t f, Py_ssize_t* end, int depth):
        cdef const unsigned char* b = self.buf
        cdef Py_ssize_t p
        cdef unsigned char c
        if f >= self.size:
            raise Malformed()
        c = b[f]
        if not (c == 105 or c == 108 or c == 100 or _digit(c)):  # 'i' 'l' 'd'
            raise Malformed()
        # Depth bounds nesting, not breadth: a flat list of millions of ints needs this budget.
        self.tokens_left -= 1
        if self.tokens_left < 0:
            raise BencodeError(f"bencoded data has too many elements (more than {self.max_tokens} tokens)")
        if c == 105:
            return self._int(f, end)
        if c != 108 and c != 100:
            return self._string(f, end, False)
        if depth > self.max_depth or depth > _STACK_DEPTH:
            raise BencodeError("invalid bencoding: nested deeper than the depth limit")
        p = f + 1
        if c == 108:
            items = []
            while p >= self.size or b[p] != 101:
                items.append(self._value(p, &p, depth + 1))
            end[0] = p + 1
            return items
        entries = {}
        while p >= self.size or b[p] != 101:
            k = self._string(p, &p, True)
            entries[k] = self._value(p, &p, depth + 1)
        end[0] = p + 1
        return entries
