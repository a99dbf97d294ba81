"""The atheris fuzz targets, run without atheris over random and mutated inputs: they must import,
and no input may raise anything but the parsers' own one-line errors or break an invariant."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

FUZZ_DIR = Path(__file__).resolve().parents[1] / "fuzz"
ITERATIONS = 3000


def _load(name: str) -> ModuleType:
    if str(FUZZ_DIR) not in sys.path:
        sys.path.insert(0, str(FUZZ_DIR))  # the targets run as scripts from fuzz/; mutate.py is beside them
    spec = importlib.util.spec_from_file_location(f"fuzz_{name}", FUZZ_DIR / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("target", ["bencode_target", "metainfo_target"])
def test_target_survives_random_inputs(target: str) -> None:
    module = _load(target)
    mutate = _load("mutate")
    assert callable(module.main)
    ran = mutate.run(module.test_one_input, module.SEEDS, ITERATIONS, rng_seed=1)
    assert ran == ITERATIONS + len(module.SEEDS)


def test_bencode_target_catches_a_lenient_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """The target's canonical-bytes check must fire if the decoder took `i 3e` as 3."""
    module = _load("bencode_target")
    from torrentpy import bencoding

    real = bencoding.decode
    monkeypatch.setattr(bencoding, "decode",
                        lambda data, **kw: 3 if bytes(data) == b"i 3e" else real(data, **kw))
    with pytest.raises(AssertionError, match="non-canonical"):
        module.test_one_input(b"i 3e")


def test_metainfo_target_catches_an_unsafe_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The target's path checks must fire if a '..' component got through."""
    module = _load("metainfo_target")
    from torrentpy import metainfo

    monkeypatch.setattr(metainfo, "sanitize_component", lambda component, *, where: component or None)
    # SEEDS[1] has a file at dir/../c: the '..' check itself must be what fires, not some other invariant.
    with pytest.raises(AssertionError, match=r"unsafe path component '\.\.'"):
        module.test_one_input(module.SEEDS[1])


def test_seeds_are_valid() -> None:
    from torrentpy.bencoding import decode
    from torrentpy.metainfo import parse_magnet, parse_torrent

    for seed in _load("bencode_target").SEEDS:
        decode(seed)
    seeds = _load("metainfo_target").SEEDS
    parse_torrent(seeds[0])
    parse_magnet(seeds[3].decode())
