# cython: language_level=3, boundscheck=False, wraparound=False
"""RC4 for Message Stream Encryption (protocol/mse.py).

A peer that selects RC4 has every byte of the connection go through here, both ways, so it is compiled;
the GIL is released for buffers of a block or more. A cipher object is a stream position: it must only
be used from one thread at a time (the event loop's)."""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc

# Below this the work takes less time than giving the GIL up and getting it back.
DEF NOGIL_BYTES = 16384


cdef class RC4:
    """One direction of an RC4 stream: `apply` encrypts (and decrypts: it is an XOR with the key stream)."""

    # Words, not bytes: byte loads and stores into the same few cache lines stall on partial writes;
    # the 32-bit table ran about 1.5x faster here.
    cdef unsigned int s[256]
    cdef unsigned int i
    cdef unsigned int j

    def __cinit__(self, const unsigned char[::1] key not None, Py_ssize_t discard=1024):
        cdef Py_ssize_t n = key.shape[0]
        cdef int k
        cdef unsigned int j = 0, t
        if n < 1 or n > 256:
            raise ValueError(f"an RC4 key is 1 to 256 bytes, not {n}")
        if discard < 0:
            raise ValueError("discard must not be negative")
        for k in range(256):
            self.s[k] = k
        for k in range(256):
            j = (j + self.s[k] + key[k % n]) & 0xFF
            t = self.s[k]
            self.s[k] = self.s[j]
            self.s[j] = t
        self.i = 0
        self.j = 0
        self._skip(discard)

    cdef void _skip(self, Py_ssize_t n) noexcept nogil:
        cdef unsigned int i = self.i, j = self.j, t
        cdef Py_ssize_t k
        for k in range(n):
            i = (i + 1) & 0xFF
            t = self.s[i]
            j = (j + t) & 0xFF
            self.s[i] = self.s[j]
            self.s[j] = t
        self.i = i
        self.j = j

    cdef void _xor(self, const unsigned char* src, unsigned char* dst, Py_ssize_t n) noexcept nogil:
        cdef unsigned int i = self.i, j = self.j, t, u
        cdef unsigned int* s = self.s
        cdef Py_ssize_t k
        for k in range(n):
            i = (i + 1) & 0xFF
            t = s[i]
            j = (j + t) & 0xFF
            u = s[j]
            s[i] = u
            s[j] = t
            dst[k] = src[k] ^ <unsigned char>s[(t + u) & 0xFF]
        self.i = i
        self.j = j

    def apply(self, const unsigned char[::1] data not None) -> bytes:
        """The next len(data) bytes of the stream XORed into a new bytes object; `data` is not touched."""
        cdef Py_ssize_t n = data.shape[0]
        out = PyBytes_FromStringAndSize(NULL, n)
        cdef unsigned char* dst = <unsigned char*>PyBytes_AS_STRING(out)
        if n == 0:
            return out
        if n >= NOGIL_BYTES:
            with nogil:
                self._xor(&data[0], dst, n)
        else:
            self._xor(&data[0], dst, n)
        return out

    def apply_inplace(self, unsigned char[::1] buf not None) -> None:
        """XOR the next len(buf) bytes of the stream into `buf` (a receive buffer we own)."""
        cdef Py_ssize_t n = buf.shape[0]
        if n == 0:
            return
        if n >= NOGIL_BYTES:
            with nogil:
                self._xor(&buf[0], &buf[0], n)
        else:
            self._xor(&buf[0], &buf[0], n)

    def apply_chunks(self, chunks) -> bytes:
        """The chunks (bytes, bytearrays, memoryviews: a message header and the block views of a send batch)
        encrypted into one new bytes object, with the GIL released once for the whole batch."""
        cdef list items = list(chunks)
        cdef Py_ssize_t count = len(items), got = 0, total = 0, k, pos = 0
        cdef Py_buffer* views = <Py_buffer*>PyMem_Malloc(max(count, 1) * sizeof(Py_buffer))
        cdef unsigned char* dst
        if views == NULL:
            raise MemoryError()
        try:
            for k in range(count):
                PyObject_GetBuffer(items[k], &views[k], PyBUF_SIMPLE)
                got += 1
                total += views[k].len
            out = PyBytes_FromStringAndSize(NULL, total)
            dst = <unsigned char*>PyBytes_AS_STRING(out)
            if total >= NOGIL_BYTES:
                with nogil:
                    for k in range(count):
                        self._xor(<const unsigned char*>views[k].buf, dst + pos, views[k].len)
                        pos += views[k].len
            else:
                for k in range(count):
                    self._xor(<const unsigned char*>views[k].buf, dst + pos, views[k].len)
                    pos += views[k].len
            return out
        finally:
            for k in range(got):
                PyBuffer_Release(&views[k])
            PyMem_Free(views)
