"""The compiled core. There is deliberately no pure-Python fallback: a missing build
must fail loudly, not run ten times slower."""

import os

# libgomp reads this once, when hashing's extension loads it. Its default lets a thread that waits for
# work at the end of a parallel batch spin on the CPU; on two cores shared with a seeder, a UI or other
# programs that spinning takes the core the other hashing thread needs: a 512 MiB recheck ran at
# 257 MB/s on two threads (slower than one) with spinning and 553 MB/s without. A user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

try:
    from torrentpy._core.bdecode import Decoder, Malformed
    from torrentpy._core.bitfield import Availability, Bitfield
    from torrentpy._core.filelist import plain_files
    from torrentpy._core.hashing import (
        SpanCheck,
        hash_pieces,
        sha1,
        verify_piece,
    )
    from torrentpy._core.rc4 import RC4
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "torrentpy's compiled core is missing or broken "
        f"({exc}). Build it with `pip install .` or `python setup.py build_ext --inplace` "
        "(needs a C compiler, Cython and OpenSSL headers: apt-get install gcc libssl-dev)."
    ) from exc

__all__ = ["RC4", "Availability", "Bitfield", "Decoder", "Malformed", "SpanCheck", "hash_pieces",
           "plain_files", "sha1", "verify_piece"]
