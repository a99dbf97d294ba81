# cython: language_level=3, boundscheck=False, wraparound=False
"""SHA-1 of pieces through OpenSSL's libcrypto, with the GIL released.

hashlib already drops the GIL for large buffers; this module earns its place by
hashing many pieces per call, spread over all cores with OpenMP, and by checking pieces
straight from their files (SpanCheck) without building Python objects per piece."""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cython.parallel cimport parallel, prange
from libc.errno cimport EINTR, errno
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memset

cdef extern from "openssl/evp.h" nogil:
    ctypedef struct EVP_MD
    ctypedef struct EVP_MD_CTX
    ctypedef struct OSSL_LIB_CTX
    EVP_MD* EVP_MD_fetch(OSSL_LIB_CTX* ctx, const char* algorithm, const char* properties)
    EVP_MD_CTX* EVP_MD_CTX_new()
    void EVP_MD_CTX_free(EVP_MD_CTX* ctx)
    int EVP_DigestInit_ex2(EVP_MD_CTX* ctx, const EVP_MD* type, void* params)
    int EVP_DigestUpdate(EVP_MD_CTX* ctx, const void* d, size_t cnt)
    int EVP_DigestFinal_ex(EVP_MD_CTX* ctx, unsigned char* md, unsigned int* s)

cdef extern from "omp.h" nogil:
    int omp_get_max_threads()

DIGEST_SIZE = 20

# Fetched once: an implicit fetch per call (EVP_sha1()) takes a lock inside
# OpenSSL 3 that threads hashing in parallel would contend on.
cdef const EVP_MD* _SHA1 = EVP_MD_fetch(NULL, b"SHA1", NULL)
if _SHA1 == NULL:
    raise ImportError("OpenSSL libcrypto provides no SHA1 implementation")


# What sha1_into and _check say besides success: a context could not be allocated (out of memory, raised
# as MemoryError), or libcrypto failed otherwise. Never a "mismatch": a good piece must not count as bad
# (it would be fetched again, and its senders banned) because memory ran short while it was hashed.
cdef enum:
    NO_MEMORY = -1
    LIBCRYPTO_FAILED = -2


cdef int sha1_into(const unsigned char* data, size_t length, unsigned char* out) noexcept nogil:
    """Hash `length` bytes into the 20 bytes at `out`; 0 on success, else NO_MEMORY or LIBCRYPTO_FAILED."""
    cdef EVP_MD_CTX* ctx = EVP_MD_CTX_new()
    cdef unsigned int size = 0
    cdef int ok
    if ctx == NULL:
        return NO_MEMORY
    ok = EVP_DigestInit_ex2(ctx, _SHA1, NULL)
    if ok == 1:
        ok = EVP_DigestUpdate(ctx, data, length)
    if ok == 1:
        ok = EVP_DigestFinal_ex(ctx, out, &size)
    EVP_MD_CTX_free(ctx)
    return 0 if ok == 1 else LIBCRYPTO_FAILED


cdef int _raise_for(int rc) except -1:
    if rc == NO_MEMORY:
        raise MemoryError("no memory for a SHA-1 context")
    raise RuntimeError("libcrypto failed to compute SHA-1")


cdef int _threads(int requested) noexcept nogil:
    if requested > 0:
        return requested
    return omp_get_max_threads()


def sha1(const unsigned char[::1] data not None) -> bytes:
    """SHA-1 digest of one buffer (bytes, bytearray, memoryview, mmap)."""
    cdef unsigned char out[20]
    cdef int rc
    with nogil:
        rc = sha1_into(&data[0] if data.shape[0] else NULL, data.shape[0], out)
    if rc != 0:
        _raise_for(rc)
    return out[:20]


def verify_piece(const unsigned char[::1] data not None, const unsigned char[::1] expected not None) -> bool:
    """True when the SHA-1 of `data` equals the 20-byte `expected` digest."""
    cdef unsigned char out[20]
    cdef int rc
    if expected.shape[0] != 20:
        raise ValueError("expected digest must be 20 bytes")
    with nogil:
        rc = sha1_into(&data[0] if data.shape[0] else NULL, data.shape[0], out)
    if rc != 0:
        _raise_for(rc)
    return memcmp(out, &expected[0], 20) == 0


def hash_pieces(const unsigned char[::1] data not None, Py_ssize_t piece_length, int threads=0) -> bytes:
    """Digests of consecutive `piece_length` slices of `data` (the last may be short),
    concatenated, hashed on `threads` cores (0: all)."""
    if piece_length <= 0:
        raise ValueError("piece_length must be positive")
    cdef Py_ssize_t length = data.shape[0]
    cdef Py_ssize_t count = (length + piece_length - 1) // piece_length
    cdef bytearray out = bytearray(count * 20)
    cdef unsigned char[::1] digests = out
    cdef Py_ssize_t i, start, size
    cdef int failures = 0
    cdef int no_memory = 0
    cdef int rc
    cdef int nthreads = _threads(threads)
    if count == 0:
        return b""
    with nogil:
        for i in prange(count, num_threads=nthreads, schedule="dynamic"):
            start = i * piece_length
            size = piece_length if start + piece_length <= length else length - start
            rc = sha1_into(&data[start], size, &digests[i * 20])
            if rc != 0:
                failures += 1
                if rc == NO_MEMORY:
                    no_memory += 1
    if failures:
        _raise_for(NO_MEMORY if no_memory else LIBCRYPTO_FAILED)
    return bytes(out)


# A piece check's answers beyond 0 (mismatch) and 1 (match).
cdef enum:
    CHECK_NO_MEMORY = 2
    CHECK_FAILED = 3


cdef list _results(bytearray matches):
    if CHECK_NO_MEMORY in matches:
        _raise_for(NO_MEMORY)
    if CHECK_FAILED in matches:
        _raise_for(LIBCRYPTO_FAILED)
    return [bool(v) for v in matches]


cdef extern from "unistd.h" nogil:
    ssize_t pread(int fd, void* buf, size_t count, long long offset)

cdef extern from "fcntl.h" nogil:
    int posix_fadvise(int fd, long long offset, long long length, int advice)
    int POSIX_FADV_WILLNEED

cdef extern from *:
    """
    static inline void tp_add_ll(long long* p, long long v) { __atomic_add_fetch(p, v, __ATOMIC_RELAXED); }
    static inline long long tp_load_ll(long long* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
    static inline int tp_load_int(int* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
    static inline void tp_store_int(int* p, int v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
    """
    void tp_add_ll(long long* p, long long v) noexcept nogil
    long long tp_load_ll(long long* p) noexcept nogil
    int tp_load_int(int* p) noexcept nogil
    void tp_store_int(int* p, int v) noexcept nogil

# Each thread reads a piece through a buffer of this size, small enough to stay in its core's L2
# cache while SHA-1 reads it back (256 KiB measured as fast as 1 MiB, and faster than 128 KiB).
cdef enum:
    CHUNK = 256 * 1024

# _check_piece's answer besides CHECK_NO_MEMORY / CHECK_FAILED: the piece could not be read whole.
cdef enum:
    CHECK_SHORT = 4

cdef class SpanCheck:
    """Check pieces read from open files in one parallel pass, GIL released.

    A piece is spans[piece_starts[i]:piece_starts[i + 1]]; a span is (descriptor index, offset, length),
    index -1 meaning that many zero bytes (padding), so a piece may cross files. Every thread pulls the
    next piece from one counter until none is left: there is no wait between batches for the slowest
    thread, so on a shared machine a thread that loses its core for a while does not stall the other.
    Each thread reads through its own small buffer with pread (a piece that cannot be read whole, say a
    file truncated meanwhile, simply fails), and asks the kernel to read ahead `ahead` pieces. SHA-1 is
    OpenSSL's (SHA-NI where the CPU has it).
    `run` blocks (call it from a worker thread); `done` and `cancel` are for other threads meanwhile.
    The descriptors must stay open until `run` returns."""

    cdef int* _fds
    cdef Py_ssize_t _nfds
    cdef const long long[::1] _starts
    cdef const int[::1] _which
    cdef const long long[::1] _offsets
    cdef const long long[::1] _lengths
    cdef const unsigned char[::1] _expected
    cdef bytearray _matches
    cdef Py_ssize_t _count
    cdef long long _done
    cdef int _cancelled
    cdef int _running

    def __cinit__(self) -> None:
        self._fds = NULL

    def __init__(self, fds not None, piece_starts not None, span_files not None, span_offsets not None,
                 span_lengths not None, expected not None) -> None:
        cdef Py_ssize_t i, nspans
        cdef list fd_list = [int(fd) for fd in fds]
        self._starts = piece_starts
        self._which = span_files
        self._offsets = span_offsets
        self._lengths = span_lengths
        self._expected = expected
        self._count = self._starts.shape[0] - 1
        nspans = self._which.shape[0]
        if self._count < 0 or self._expected.shape[0] != self._count * 20:
            raise ValueError("need piece_starts of pieces + 1 entries and one 20-byte digest per piece")
        if self._offsets.shape[0] != nspans or self._lengths.shape[0] != nspans:
            raise ValueError("span arrays differ in length")
        if self._starts[0] != 0 or self._starts[self._count] != nspans:
            raise ValueError("piece_starts must run from 0 to the number of spans")
        for i in range(self._count):
            if self._starts[i + 1] < self._starts[i]:
                raise ValueError("piece_starts must not decrease")
        self._nfds = len(fd_list)
        for i in range(nspans):
            if self._offsets[i] < 0 or self._lengths[i] < 0 or not -1 <= self._which[i] < self._nfds:
                raise ValueError(f"span {i} is invalid")
        self._fds = <int*> PyMem_Malloc((self._nfds + 1) * sizeof(int))
        if self._fds == NULL:
            raise MemoryError()
        for i in range(self._nfds):
            if fd_list[i] < 0:
                raise ValueError("descriptors must not be negative")
            self._fds[i] = fd_list[i]
        self._matches = bytearray(self._count)

    def __dealloc__(self) -> None:
        PyMem_Free(self._fds)

    @property
    def done(self) -> int:
        """Pieces checked so far (safe to read while `run` works in another thread)."""
        return tp_load_ll(&self._done)

    def cancel(self) -> None:
        """Make `run` stop after the pieces its threads are checking now."""
        tp_store_int(&self._cancelled, 1)

    @property
    def cancelled(self) -> bool:
        return tp_load_int(&self._cancelled) != 0

    def run(self, int threads=0, Py_ssize_t ahead=0) -> list[bool]:
        """Check every piece; one bool per piece (False also for pieces skipped after `cancel`)."""
        if self._running:
            raise RuntimeError("run() is already checking")
        cdef unsigned char[::1] ok = self._matches
        cdef Py_ssize_t i, k
        cdef unsigned char* buf
        cdef int nthreads = _threads(threads)
        if self._count == 0:
            return []
        self._running = 1
        try:
            with nogil:  # the pieces before the first read-ahead inside the loop reaches
                for k in range(min(ahead, self._count)):
                    self._read_ahead(k)
            with nogil, parallel(num_threads=nthreads):
                buf = <unsigned char*> malloc(CHUNK)
                for i in prange(self._count, schedule="dynamic"):
                    if buf == NULL:
                        ok[i] = CHECK_NO_MEMORY
                    elif tp_load_int(&self._cancelled):
                        ok[i] = 0
                    else:
                        if ahead > 0 and i + ahead < self._count:
                            self._read_ahead(i + ahead)
                        ok[i] = self._check_piece(i, buf)
                        tp_add_ll(&self._done, 1)
                free(buf)
        finally:
            self._running = 0
        for i in range(self._count):
            if ok[i] == CHECK_SHORT:
                ok[i] = 0
        return _results(self._matches)

    cdef unsigned char _check_piece(self, Py_ssize_t piece, unsigned char* buf) noexcept nogil:
        cdef EVP_MD_CTX* ctx = EVP_MD_CTX_new()
        cdef unsigned char digest[20]
        cdef unsigned int size = 0
        cdef int good
        cdef Py_ssize_t s
        cdef long long left, offset
        cdef ssize_t got
        cdef int fd
        if ctx == NULL:
            return CHECK_NO_MEMORY
        good = EVP_DigestInit_ex2(ctx, _SHA1, NULL)
        s = self._starts[piece]
        while good == 1 and s < self._starts[piece + 1]:
            left = self._lengths[s]
            offset = self._offsets[s]
            fd = self._fds[self._which[s]] if self._which[s] >= 0 else -1
            if fd < 0:
                memset(buf, 0, CHUNK if left > CHUNK else left)
            while good == 1 and left > 0:
                if fd < 0:
                    got = CHUNK if left > CHUNK else left
                else:
                    got = pread(fd, buf, CHUNK if left > CHUNK else left, offset)
                    if got < 0 and errno == EINTR:
                        continue
                    if got <= 0:  # end of file (truncated meanwhile) or an I/O error: the piece fails
                        EVP_MD_CTX_free(ctx)
                        return CHECK_SHORT
                good = EVP_DigestUpdate(ctx, buf, <size_t> got)
                left -= got
                offset += got
            s += 1
        if good == 1:
            good = EVP_DigestFinal_ex(ctx, digest, &size)
        EVP_MD_CTX_free(ctx)
        if good != 1:
            return CHECK_FAILED
        return memcmp(digest, &self._expected[piece * 20], 20) == 0

    cdef void _read_ahead(self, Py_ssize_t piece) noexcept nogil:
        """Ask the kernel to start reading the piece's spans (advice only: errors are ignored)."""
        cdef Py_ssize_t s
        for s in range(self._starts[piece], self._starts[piece + 1]):
            if self._which[s] >= 0 and self._lengths[s] > 0:
                posix_fadvise(self._fds[self._which[s]], self._offsets[s], self._lengths[s], POSIX_FADV_WILLNEED)
