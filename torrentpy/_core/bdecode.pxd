cdef class Decoder:
    cdef bytes data
    cdef const unsigned char* buf
    cdef Py_ssize_t size
    cdef readonly Py_ssize_t max_tokens
    cdef Py_ssize_t tokens_left
    cdef int max_depth
    cdef list keys
    cdef object _number(self, Py_ssize_t start, Py_ssize_t stop)
    cdef object _int(self, Py_ssize_t f, Py_ssize_t* end)
    cdef object _string(self, Py_ssize_t f, Py_ssize_t* end, bint key)
    cdef bytes _kept_key(self, const char* start, Py_ssize_t length)
    cdef object _value(self, Py_ssize_t f, Py_ssize_t* end, int depth)
