# cython: language_level=3, boundscheck=False, wraparound=False
"""The common case of a torrent's file list, in C.

Almost every file of a real torrent has a length, a `path` of ordinary names and nothing else; the
path policy of torrentpy.metainfo leaves such a file as it is. This module builds FileEntry objects
for a run of such files without a Python frame per file and stops at the first file that needs
any rule (an odd name, `path.utf-8`, `attr`, a padding name, a bad length): metainfo goes on from
there with its full rules, so it alone decides what is rejected and with which message."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject_GenericSetAttr
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport memchr, memcmp

cdef extern from "Python.h":
    void PyObject_GC_UnTrack(void* op)

# The longest name most file systems accept, in bytes: longer ones are shortened by metainfo.
cdef Py_ssize_t _MAX_COMPONENT_BYTES = 255
cdef bytes _PADDING_PREFIX = b"_____padding_file_"


cdef bint _plain_bytes(bytes part):
    cdef const char* s = PyBytes_AS_STRING(part)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(part)
    if n == 0 or n > _MAX_COMPONENT_BYTES:
        return False
    if s[0] == 46 and (n == 1 or (n == 2 and s[1] == 46)):  # "." or ".."
        return False
    return memchr(s, 0, n) == NULL and memchr(s, 47, n) == NULL and memchr(s, 92, n) == NULL


def plain_files(list raw_files, str name, type entry_type, dict known, long long max_total):
    """FileEntry objects (`entry_type`) for the leading run of ordinary files, and the payload
    offset after them. `known` maps raw names to their text and is shared with the caller."""
    cdef list entries = []
    cdef list parts
    cdef Py_ssize_t i, k, count
    cdef long long offset = 0
    cdef long long size
    cdef const char* last
    new = entry_type.__new__
    for i in range(len(raw_files)):
        entry = raw_files[i]
        if type(entry) is not dict:
            break
        # Two keys, both found: nothing else (no `path.utf-8`, no `attr`) to look for.
        if len(<dict>entry) != 2 and (b"path.utf-8" in <dict>entry or b"attr" in <dict>entry):
            break
        length = (<dict>entry).get(b"length")
        raw_path = (<dict>entry).get(b"path")
        if type(length) is not int:
            break
        try:
            size = length
        except OverflowError:  # beyond 2**63: metainfo says the torrent is impossibly large
            break
        if size < 0 or size > max_total - offset:
            break
        if type(raw_path) is not list:
            break
        count = len(<list>raw_path)
        if count == 0:
            break
        parts = [name]
        for k in range(count):
            part = (<list>raw_path)[k]
            if type(part) is not bytes:
                break
            # Folder names repeat, file names mostly do not: only folders go through `known`.
            text = known.get(part) if k < count - 1 else None
            if text is None:
                if not _plain_bytes(<bytes>part):
                    break
                try:
                    text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(part), PyBytes_GET_SIZE(part), NULL)
                except UnicodeDecodeError:
                    break
                if k < count - 1:
                    known[part] = text
            parts.append(text)
        else:
            last = PyBytes_AS_STRING((<list>raw_path)[count - 1])
            if (PyBytes_GET_SIZE((<list>raw_path)[count - 1]) >= len(_PADDING_PREFIX)
                    and memcmp(last, PyBytes_AS_STRING(_PADDING_PREFIX), len(_PADDING_PREFIX)) == 0):
                break
            # The dataclass is frozen: set its fields as its own __init__ does, minus the frames.
            path = tuple(parts)
            obj = new(entry_type)
            PyObject_GenericSetAttr(obj, "path", path)
            PyObject_GenericSetAttr(obj, "length", length)
            PyObject_GenericSetAttr(obj, "offset", offset)
            PyObject_GenericSetAttr(obj, "padding", False)
            PyObject_GenericSetAttr(obj, "attr", "")
            # Neither can be part of a reference cycle (a frozen entry holding a tuple of strings,
            # ints and a bool), so the cycle collector need not walk 100,000 of them after parsing:
            # CPython untracks tuples and dicts of such values itself.
            PyObject_GC_UnTrack(<void*>path)
            PyObject_GC_UnTrack(<void*>obj)
            entries.append(obj)
            offset += size
            continue
        break
    return entries, offset
