"""Real small filesystems for disk-error tests: a tmpfs mounted in the test's temp folder.

`tmpfs(name, size_bytes, read_only=False)` mounts one and returns its path; `remount(path, …)`
changes its size or makes it read-only. Every mount is unmounted at teardown. Mounting needs root
(or CAP_SYS_ADMIN): where it is refused the test fails and says so — a disk-full test that cannot
fill a disk has tested nothing, so it must not pass or skip quietly.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

Mount = Callable[..., Path]


def _mount(args: list[str], what: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        pytest.fail(f"cannot {what} (these tests mount a real tmpfs: run them as root or with "
                    f"CAP_SYS_ADMIN): {proc.stderr.strip() or proc.returncode}", pytrace=False)


def remount(path: Path, *, size_bytes: int | None = None, read_only: bool | None = None) -> None:
    opts = ["remount"]
    if size_bytes is not None:
        opts.append(f"size={size_bytes}")
    if read_only is not None:
        opts.append("ro" if read_only else "rw")
    _mount(["-o", ",".join(opts), str(path)], f"remount {path} ({','.join(opts)})")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Mount]:
    mounted: list[Path] = []

    def mount(name: str, size_bytes: int, *, read_only: bool = False) -> Path:
        path = tmp_path / name
        path.mkdir()
        opts = f"size={size_bytes},mode=0755" + (",ro" if read_only else "")
        _mount(["-t", "tmpfs", "-o", opts, "tmpfs", str(path)], f"mount a {size_bytes}-byte tmpfs at {path}")
        mounted.append(path)
        return path

    yield mount
    problems = []
    for path in reversed(mounted):
        proc = subprocess.run(["umount", str(path)], capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            problems.append(f"umount {path}: {proc.stderr.strip()}")
            # Still busy (a process we failed to stop?): detach it so no mount outlives the test.
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)
    assert not problems, problems
