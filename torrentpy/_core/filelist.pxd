cdef bint _plain_bytes(bytes part)
