"""The atheris fuzz targets in fuzz/: every committed seed runs through its target in-process, each target
runs under atheris for a short fixed budget on its committed corpus (so the harnesses cannot rot), and
each target's invariants are shown to fire on a deliberately broken parser.

`make fuzz` runs them for longer; see fuzz/README.md."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from fuzz.run import FUZZ_DIR, ROOT, TARGETS, corpus_dir

# Per target in CI: libFuzzer stops at whichever comes first. A fixed seed and run count make a clean
# run repeatable; the time cap keeps the whole file within a minute on a loaded machine.
CI_RUNS = int(os.environ.get("FUZZ_CI_RUNS", "20000"))
CI_SECONDS = int(os.environ.get("FUZZ_CI_SECONDS", "4"))


def _target(name: str) -> ModuleType:
    return importlib.import_module(f"fuzz.{name}_target")


@pytest.mark.parametrize("name", TARGETS)
def test_committed_seeds_hold_the_invariants(name: str) -> None:
    seeds = sorted(p for p in corpus_dir(name).iterdir() if p.is_file())
    assert seeds, f"fuzz/corpus/{name} has no seeds"
    target = _target(name)
    for seed in seeds:
        target.test_one_input(seed.read_bytes())


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", TARGETS)
def test_target_runs_under_atheris(name: str, tmp_path: Path) -> None:
    # New inputs go to tmp_path (libFuzzer writes into the first corpus directory), never to the committed one.
    argv = [sys.executable, str(FUZZ_DIR / "run.py"), name, f"-runs={CI_RUNS}", f"-max_total_time={CI_SECONDS}",
            "-seed=1", "-timeout=20", "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/",
            str(tmp_path), str(corpus_dir(name))]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=110, env=env)
    tail = "\n".join(proc.stderr.splitlines()[-40:])
    assert proc.returncode == 0, f"fuzz target {name} failed:\n{tail}"
    done = [line for line in proc.stderr.splitlines() if line.startswith("Done ")]
    assert done and int(done[-1].split()[1]) > len(list(corpus_dir(name).iterdir())), tail
    assert not list(tmp_path.glob("crash-*"))


def test_list_names_every_target_file() -> None:
    files = {p.name.removesuffix("_target.py") for p in FUZZ_DIR.glob("*_target.py")}
    assert files == set(TARGETS)


# --- the invariants fire -------------------------------------------------------------------------


def test_bencode_target_catches_a_lenient_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """The canonical-bytes check must fire if the decoder took `i 3e` as 3."""
    from torrentpy import bencoding

    real = bencoding.decode
    monkeypatch.setattr(bencoding, "decode",
                        lambda data, **kw: 3 if bytes(data) == b"i 3e" else real(data, **kw))
    with pytest.raises(AssertionError, match="non-canonical"):
        _target("bencode").test_one_input(b"i 3e")


def test_metainfo_target_catches_an_unsafe_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The path checks must fire if a '..' component got through."""
    from torrentpy import metainfo

    monkeypatch.setattr(metainfo, "sanitize_component", lambda component, *, where: component or None)
    info = (b"d5:filesld6:lengthi10000e4:pathl1:a5:b.txteed6:lengthi10000e4:pathl2:..1:cee"
            b"e4:name3:dir12:piece lengthi16384e6:pieces40:" + b"\x01" * 40 + b"e")
    with pytest.raises(AssertionError, match=r"unsafe path component '\.\.'"):
        _target("metainfo").test_one_input(b"d4:info" + info + b"e")


def test_peer_target_catches_events_that_depend_on_the_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection that lost the last byte of one-byte reads would give different events per split."""
    from torrentpy.protocol.peer import PeerConnection

    real = PeerConnection.receive_data
    monkeypatch.setattr(PeerConnection, "receive_data",
                        lambda self, data: real(self, data) if len(data) != 1 else None)
    capture = (corpus_dir("peer") / "libtorrent-seeder-head.bin").read_bytes()
    with pytest.raises(AssertionError, match="split"):
        _target("peer").test_one_input(capture)


def test_peer_target_catches_an_unbounded_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the length check were gone, a 4 GiB length prefix would make us wait for (and hold) it all."""
    from torrentpy.protocol import peer

    capture = (corpus_dir("peer") / "libtorrent-seeder-head.bin").read_bytes()
    hostile = capture[:16 + 68] + b"\xff\xff\xff\xf0\x63" + bytes(2_000_000)  # an unknown id
    _target("peer").test_one_input(hostile)  # the real connection refuses the length at once
    monkeypatch.setattr(peer.PeerConnection, "_set_size", _unbounded(peer.PeerConnection._set_size))
    with pytest.raises(AssertionError):
        _target("peer").test_one_input(hostile)


def _unbounded(real):  # type: ignore[no-untyped-def]
    def set_size(self, *args):  # type: ignore[no-untyped-def]
        real(self, *args)
        self._max_message_length = 2**32

    return set_size


def test_tracker_target_catches_control_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    from torrentpy.protocol import tracker_http

    body = b"\x00d14:failure reason9:bad\x1b[2Jxxe"
    _target("tracker").test_one_input(body)
    monkeypatch.setattr(tracker_http, "clean_text", lambda raw: raw.decode("latin-1"))
    with pytest.raises(AssertionError):
        _target("tracker").test_one_input(body)


def test_resume_target_catches_trust_in_a_changed_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """A record whose file sizes do not match the disk must not vouch for those files' pieces."""
    from torrentpy.storage import resume

    seed = (corpus_dir("resume") / "record-111.bin").read_bytes()
    wrong_size = seed.replace(b"i20000e", b"i20001e", 1)
    target = _target("resume")
    target.test_one_input(wrong_size)
    trusting = lambda meta, root: (resume._read_record(meta, root) or (None,))[0]  # noqa: E731
    monkeypatch.setattr(target, "load_resume", trusting)
    with pytest.raises(AssertionError, match="changed file"):
        target.test_one_input(wrong_size)


def test_http1_target_catches_an_unbounded_gzip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inflating without the output cap would hold the whole bomb (1 MiB from 1 KiB) in memory."""
    from torrentpy.protocol.http1 import HttpResponseParser

    def inflate_it_all(self, n):  # type: ignore[no-untyped-def]
        data = bytes(self._buf[:n])
        del self._buf[:n]
        self._wire_bytes += n
        self._body += self._inflate.decompress(data) if self._inflate is not None else data

    bomb = (corpus_dir("http1") / "gzip-bomb.bin").read_bytes()
    _target("http1").test_one_input(bomb)
    monkeypatch.setattr(HttpResponseParser, "_take_body", inflate_it_all)
    with pytest.raises(AssertionError, match="decoded body"):
        _target("http1").test_one_input(bomb)


def test_dht_target_catches_an_answer_to_garbage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answering a malformed datagram (say, with error 203) would make the node a reflector."""
    from torrentpy.dht.node import DhtNode
    from torrentpy.protocol import krpc

    garbage = b"\x00\x05\x00\x06d1:t2e"
    _target("dht").test_one_input(garbage)
    real = DhtNode.receive

    def answers_everything(self, data, addr, now):  # type: ignore[no-untyped-def]
        if krpc.decode(data) is None:
            self.outbox.append((krpc.encode_error(b"??", krpc.ERROR_PROTOCOL, "malformed"), addr))
        real(self, data, addr, now)

    monkeypatch.setattr(DhtNode, "receive", answers_everything)
    with pytest.raises(AssertionError, match="malformed datagram was answered"):
        _target("dht").test_one_input(garbage)


def test_rpc_target_catches_an_unchecked_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    """A method that used `files-wanted` unchecked would fail with an internal error, not a message."""
    from torrentpy.rpc import methods

    target = _target("rpc")
    add = (corpus_dir("rpc") / "add-metainfo.json").read_bytes()
    bad = b'\x00{"method": "torrent-set", "arguments": {"ids": [1], "files-wanted": ["x"]}}'
    target._H.daemon = None  # a fresh daemon
    target.test_one_input(add)
    target.test_one_input(bad)
    monkeypatch.setattr(methods, "_int_list", lambda args, key: args.get(key, []))
    with pytest.raises(AssertionError, match="internal error"):
        target.test_one_input(bad)


def test_mse_target_catches_an_unbounded_sync_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """A responder that kept looking for HASH('req1', S) past the spec's window would hold all it is sent."""
    from torrentpy.protocol.mse import MseResponder

    garbage = (corpus_dir("mse") / "key-then-garbage.bin").read_bytes()
    _target("mse").test_one_input(garbage)

    def _await_req1(self):  # type: ignore[no-untyped-def]
        at = self._buf.find(self._req1)
        if at < 0:
            return False
        del self._buf[: at + 20]
        self._step = self._await_skey
        return True

    monkeypatch.setattr(MseResponder, "_await_req1", _await_req1)
    with pytest.raises(AssertionError, match="_await_req1"):
        _target("mse").test_one_input(garbage)


def test_mse_target_catches_an_unchecked_verification_constant(monkeypatch: pytest.MonkeyPatch) -> None:
    from torrentpy.protocol import mse

    bad_vc = (corpus_dir("mse") / "responder-bad-vc.bin").read_bytes()
    _target("mse").test_one_input(bad_vc)
    monkeypatch.setattr(mse, "VC", b"\x01" + bytes(7))  # the responder now takes this input's constant
    with pytest.raises(AssertionError):
        _target("mse").test_one_input(bad_vc)
