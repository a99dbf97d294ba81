cdef int sha1_into(const unsigned char* data, size_t length, unsigned char* out) noexcept nogil
