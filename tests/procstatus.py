"""A process's /proc/PID/status, for the tests and benchmarks that measure memory."""

from __future__ import annotations


def status_bytes(pid: int | str, field: str) -> int:
    """A kB field of /proc/PID/status ("VmRSS", "VmSize", …) in bytes. ProcessLookupError when the
    process is gone, or is a zombie (which has no memory fields)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        raise ProcessLookupError(pid) from None
    raise ProcessLookupError(pid)
