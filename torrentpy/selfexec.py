"""Start torrentpy in a child process that imports the very torrentpy this process imported.

`python -m torrentpy` alone is not enough: `-m` puts the child's working directory first on sys.path,
so started inside a source checkout (a `torrentpy/` folder with no compiled core) it would import
that instead of the installed package, and fail.
"""

from __future__ import annotations

import os
import site
import sys
from collections.abc import Mapping

import torrentpy


def package_parent() -> str:
    """The sys.path entry this process found `torrentpy` in."""
    return os.path.dirname(os.path.dirname(os.path.abspath(torrentpy.__file__)))


def command(*args: str) -> list[str]:
    """argv for `python -m torrentpy ARGS` with the working directory kept off sys.path (-P)."""
    return [sys.executable, "-P", "-m", "torrentpy", *args]


def environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: our environment) with our package's location first on PYTHONPATH.

    A site-packages folder is left alone: the child's interpreter finds it there anyway, and putting
    it on PYTHONPATH would rank it above the standard library.
    """
    env = dict(os.environ if base is None else base)
    here = package_parent()
    site_dirs = {os.path.abspath(d) for d in [*site.getsitepackages(), site.getusersitepackages()]}
    if here not in site_dirs:
        rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and os.path.abspath(p) != here]
        env["PYTHONPATH"] = os.pathsep.join([here, *rest])
    return env
