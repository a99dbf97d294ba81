"""The SHA-1 core when malloc fails: a MemoryError, never a "mismatch" (a good piece counted as bad would be
fetched again and its senders banned) nor a RuntimeError that reads like a libcrypto bug.

libfiu's preload makes malloc fail inside a child interpreter, from just before the call to just after it."""

from __future__ import annotations

import os
import subprocess
import sys

from torrentpy import selfexec

FIU_POSIX_PRELOAD = "/usr/lib/fiu/fiu_posix_preload.so"

SCRIPT = """
import ctypes
from torrentpy._core import sha1, verify_piece
fiu = ctypes.CDLL("libfiu.so.0")
fiu.fiu_init(0)
data = b"x" * 4096
want = sha1(data)
for call in (lambda: sha1(data), lambda: verify_piece(data, want)):
    fiu.fiu_enable(b"libc/mm/malloc", 1, None, 0)
    try:
        result = repr(call())
    except Exception as exc:
        result = repr(exc)
    fiu.fiu_disable(b"libc/mm/malloc")
    print(result)
"""


def test_sha1_without_memory_is_a_memory_error() -> None:
    assert os.path.exists(FIU_POSIX_PRELOAD), "libfiu is missing: apt-get install fiu-utils (Makefile DEBS)"
    env = {**selfexec.environment(), "LD_PRELOAD": FIU_POSIX_PRELOAD}
    proc = subprocess.run([sys.executable, "-P", "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["MemoryError('no memory for a SHA-1 context')"] * 2, proc.stdout
