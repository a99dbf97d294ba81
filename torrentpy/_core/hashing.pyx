# cython: language_level=3, boundscheck=False, wraparound=False
"""SHA-1 of pieces through OpenSSL's libcrypto, with the GIL released.

hashlib already drops the GIL for large buffers; this module earns its place by
hashing many pieces per call, spread over all cores with OpenMP, and by comparing
digests without building Python objects per piece."""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cython.parallel cimport prange
from libc.string cimport memcmp

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


def verify_pieces(const unsigned char[::1] data not None, Py_ssize_t piece_length,
                  const unsigned char[::1] expected not None, int threads=0) -> list[bool]:
    """Check consecutive pieces of `data` against concatenated 20-byte digests;
    one bool per piece. The number of pieces is len(expected) // 20 and must cover `data`."""
    if piece_length <= 0:
        raise ValueError("piece_length must be positive")
    if expected.shape[0] % 20:
        raise ValueError("expected digests must be a multiple of 20 bytes")
    cdef Py_ssize_t length = data.shape[0]
    cdef Py_ssize_t count = expected.shape[0] // 20
    if (length + piece_length - 1) // piece_length != count:
        raise ValueError("data does not hold exactly one slice per expected digest")
    cdef bytearray matches = bytearray(count)
    cdef unsigned char[::1] ok = matches
    cdef Py_ssize_t i, start, size
    cdef int nthreads = _threads(threads)
    if count == 0:
        return []
    with nogil:
        for i in prange(count, num_threads=nthreads, schedule="dynamic"):
            start = i * piece_length
            size = piece_length if start + piece_length <= length else length - start
            ok[i] = _check(&data[start], size, &expected[i * 20])
    return _results(matches)


# _check's answers beyond 0 (mismatch) and 1 (match).
cdef enum:
    CHECK_NO_MEMORY = 2
    CHECK_FAILED = 3


cdef unsigned char _check(const unsigned char* data, size_t size, const unsigned char* want) noexcept nogil:
    cdef unsigned char digest[20]
    cdef int rc = sha1_into(data, size, digest)
    if rc != 0:
        return CHECK_NO_MEMORY if rc == NO_MEMORY else CHECK_FAILED
    return memcmp(digest, want, 20) == 0


cdef list _results(bytearray matches):
    if CHECK_NO_MEMORY in matches:
        _raise_for(NO_MEMORY)
    if CHECK_FAILED in matches:
        _raise_for(LIBCRYPTO_FAILED)
    return [bool(v) for v in matches]


def verify_many(object buffers not None, const unsigned char[::1] expected not None, int threads=0) -> list[bool]:
    """Check separate piece buffers (one per 20-byte digest in `expected`) in parallel."""
    buffers = list(buffers)
    cdef Py_ssize_t count = len(buffers)
    if expected.shape[0] != count * 20:
        raise ValueError("need one 20-byte digest per buffer")
    if count == 0:
        return []
    # Keep the buffer views alive while the GIL is released.
    cdef list views = [b if isinstance(b, bytes) else memoryview(b).cast("B") for b in buffers]
    cdef Py_ssize_t i
    cdef const unsigned char[::1] view
    cdef size_t* sizes = NULL
    cdef const unsigned char** ptrs = NULL
    sizes = <size_t*> PyMem_Malloc(count * sizeof(size_t))
    ptrs = <const unsigned char**> PyMem_Malloc(count * sizeof(void*))
    cdef bytearray matches = bytearray(count)
    cdef unsigned char[::1] ok = matches
    cdef int nthreads = _threads(threads)
    cdef list keep = []
    try:
        if sizes == NULL or ptrs == NULL:
            raise MemoryError()
        for i in range(count):
            view = views[i]
            keep.append(view)
            sizes[i] = view.shape[0]
            ptrs[i] = &view[0] if view.shape[0] else <const unsigned char*> b""
        with nogil:
            for i in prange(count, num_threads=nthreads, schedule="dynamic"):
                ok[i] = _check(ptrs[i], sizes[i], &expected[i * 20])
    finally:
        PyMem_Free(sizes)
        PyMem_Free(ptrs)
    return _results(matches)
