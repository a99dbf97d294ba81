cdef class Bitfield:
    cdef unsigned char* _bits
    cdef Py_ssize_t _nbits
    cdef Py_ssize_t _nbytes
    cdef Py_ssize_t _count
    cdef bint get_c(self, Py_ssize_t index) noexcept nogil
    cdef void set_c(self, Py_ssize_t index) noexcept nogil
    cdef void clear_c(self, Py_ssize_t index) noexcept nogil
    cdef Py_ssize_t _check(self, Py_ssize_t index) except -1
    cdef Bitfield _same_size(self, Bitfield other)


cdef class Availability:
    cdef unsigned int* _counts
    cdef Py_ssize_t _n
    cdef Py_ssize_t _peers
    cdef Bitfield _fits(self, Bitfield bf)
