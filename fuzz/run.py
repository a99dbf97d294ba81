"""Run one fuzz target under atheris (libFuzzer, coverage-guided).

    .venv/bin/python fuzz/run.py TARGET [libFuzzer flags] [corpus dirs]
    .venv/bin/python fuzz/run.py bencode -max_total_time=600
    .venv/bin/python fuzz/run.py --list

TARGET is a module `fuzz/<TARGET>_target.py` defining `test_one_input(data: bytes)`. The target and all
of torrentpy are imported under atheris's instrumentation, so coverage of torrentpy's Python code (not of
the Cython core's C) guides the mutations.

With no corpus directory given, new inputs go to `.fuzz/corpus/TARGET` (not committed) and the committed
seeds in `fuzz/corpus/TARGET` are read too; crashes are written to `.fuzz/crashes/`. libFuzzer always
writes new inputs into the *first* corpus directory, so the committed one is never first.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parent
ROOT = FUZZ_DIR.parent
TARGETS = ("bencode", "metainfo", "peer", "extension", "tracker", "tracker_server", "resume", "core",
           "http1", "dht", "rpc", "mse")
# Targets whose input is mostly bencoding, decoded by C code atheris does not instrument: a dictionary of
# its tokens and key names stands in for the comparisons the fuzzer cannot see.
_BENCODED = ("bencode", "metainfo", "extension", "tracker", "resume", "dht")
# JSON targets: the method names and argument keys the fuzzer could not guess.
_DICTS = {**{t: "bencode.dict" for t in _BENCODED}, "rpc": "rpc.dict"}


def corpus_dir(target: str) -> Path:
    return FUZZ_DIR / "corpus" / target


def _argv(target: str, args: list[str]) -> list[str]:
    flags = [a for a in args if a.startswith("-")]
    dirs = [a for a in args if not a.startswith("-")]
    work = ROOT / ".fuzz"
    if not dirs:
        (work / "corpus" / target).mkdir(parents=True, exist_ok=True)
        dirs = [str(work / "corpus" / target), str(corpus_dir(target))]
    if not any(f.startswith("-artifact_prefix=") for f in flags):
        (work / "crashes").mkdir(parents=True, exist_ok=True)
        flags.append(f"-artifact_prefix={work / 'crashes'}/{target}-")
    if target in _DICTS and not any(f.startswith("-dict=") for f in flags):
        flags.append(f"-dict={FUZZ_DIR / _DICTS[target]}")
    return [sys.argv[0], *flags, *dirs]


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(2)
    if sys.argv[1] == "--list":
        print("\n".join(TARGETS))
        return
    target = sys.argv[1]
    if target not in TARGETS:
        sys.exit(f"unknown target {target!r}; known: {', '.join(TARGETS)}")

    import atheris

    sys.path.insert(0, str(FUZZ_DIR))
    with atheris.instrument_imports(include=["torrentpy", f"{target}_target"]):
        module = importlib.import_module(f"{target}_target")
    atheris.Setup(_argv(target, sys.argv[2:]), module.test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
