"""torrentpy as people install it: a fresh venv, a plain (not editable) `pip install .` of the checkout,
then the installed `torrentpy demo` run from inside the checkout (where an uncompiled `torrentpy/` folder
sits in the working directory) and from somewhere else."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Building the Cython core and installing the dependencies from pip's cache takes about a minute here;
# the bound is for a hung pip on a loaded 2-core machine, not a speed claim.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(900)]


def _copy_checkout(dest: Path) -> Path:
    """The checkout's files (tracked or new, not ignored) without the build artefacts of its own
    editable install, so the copy is what a fresh clone holds and building it leaves ROOT alone."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _clean_env(**extra: str) -> dict[str, str]:
    # Nothing of this test process's own torrentpy (PYTHONPATH, an active venv) may leak into the child.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    env.update(extra, COLUMNS="120", NO_COLOR="1")
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the copied checkout, the venv's bin folder) after `pip install .` into a fresh venv."""
    base = tmp_path_factory.mktemp("install")
    checkout = _copy_checkout(base / "torrentpy-src")
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    log = base / "pip.log"
    with open(log, "wb") as fh:
        done = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                               "."], cwd=checkout, stdout=fh, stderr=subprocess.STDOUT,
                              env=_clean_env())
    assert done.returncode == 0, log.read_text(errors="replace")[-4000:]
    assert not list((checkout / "torrentpy" / "_core").glob("*.so")), "pip install . built the core in place"
    return checkout, bin_dir


@pytest.mark.parametrize("where", ["inside the checkout", "another folder"])
def test_installed_demo_runs_and_verifies(installed: tuple[Path, Path], tmp_path: Path, where: str) -> None:
    checkout, bin_dir = installed
    cwd = checkout if where == "inside the checkout" else tmp_path
    assert (cwd / "torrentpy").is_dir() == (where == "inside the checkout")
    done = subprocess.run([str(bin_dir / "torrentpy"), "demo", "--no-tui", "--size", "16M"], cwd=cwd,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300,
                          env=_clean_env(TMPDIR=str(tmp_path), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}"))
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert re.search(r"verified: all \d+ pieces match", done.stdout), out
    assert "Traceback" not in out, out
    assert not list(tmp_path.glob("torrentpy-demo-*")), "the demo left its folder behind"


def test_the_test_venv_is_not_the_installed_one(installed: tuple[Path, Path]) -> None:
    """The demo above must have run the fresh install, not this test process's torrentpy."""
    _, bin_dir = installed
    where = subprocess.run([str(bin_dir / "python"), "-P", "-c", "import torrentpy, sys; print(torrentpy.__file__)"],
                           capture_output=True, text=True, check=True, cwd=bin_dir, env=_clean_env()).stdout.strip()
    assert Path(where).is_relative_to(bin_dir.parent), where
    assert Path(sys.prefix) != bin_dir.parent


def test_installed_package_holds_every_module(installed: tuple[Path, Path], tmp_path: Path) -> None:
    """Every module of the source tree imports from the installed package (run from an unrelated folder),
    so a subpackage left out of the build cannot hide behind the editable install the other tests use."""
    _, bin_dir = installed
    names = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / "torrentpy").rglob("*.py")
        if path.name != "__main__.py"  # importing it runs the command line
    )
    assert "torrentpy.rpc.server" in names and "torrentpy.daemon" in names
    script = ("import importlib, sys\n"
              "bad = []\n"
              "for name in sys.argv[1:]:\n"
              "    try:\n"
              "        importlib.import_module(name)\n"
              "    except Exception as exc:\n"
              "        bad.append(f'{name}: {exc!r}')\n"
              "print('\\n'.join(bad)); sys.exit(1 if bad else 0)\n")
    done = subprocess.run([str(bin_dir / "python"), "-P", "-c", script, *names], cwd=tmp_path,
                          capture_output=True, text=True, env=_clean_env())
    assert done.returncode == 0, done.stdout + done.stderr
    daemon_help = subprocess.run([str(bin_dir / "torrentpy"), "daemon", "--help"], cwd=tmp_path,
                                 capture_output=True, text=True, env=_clean_env())
    assert daemon_help.returncode == 0 and "--rpc-port" in daemon_help.stdout, daemon_help.stderr
