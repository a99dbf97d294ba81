"""Restarting a session over many torrents rewrites no resume file that still holds (each rewrite costs two
fsyncs: minutes for 10,000 torrents), and still rewrites the ones that changed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.engine.many import running, session_for, tiny_torrents
from torrentpy.engine import disk
from torrentpy.metainfo import Metainfo
from torrentpy.storage.resume import resume_path, resume_state

pytestmark = pytest.mark.timeout(120)

COUNT = 200


def count_saves(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    saved: list[str] = []
    real = disk.save_resume

    def counting(meta: Metainfo, root: Any, *args: Any, **kwargs: Any) -> None:
        saved.append(meta.name)
        real(meta, root, *args, **kwargs)

    monkeypatch.setattr(disk, "save_resume", counting)
    return saved


async def test_a_restart_rewrites_only_the_resume_files_that_changed(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    metas = tiny_torrents(tmp_path, COUNT)
    saves = count_saves(monkeypatch)
    async with running(session_for(tmp_path), metas):
        pass
    assert len(saves) == COUNT  # the first start has no resume file: each torrent saves one
    assert all(os.path.exists(resume_path(m, tmp_path)) for m in metas)

    # One torrent's data changed behind our back (its pieces are hashed again and the record rewritten);
    # one's resume file is damaged (a full check, and a new file).
    touched, damaged = metas[7], metas[11]
    os.utime(tmp_path / touched.name, ns=(1, 1))
    Path(resume_path(damaged, tmp_path)).write_bytes(b"d8:versioni1ee")
    saves.clear()
    async with running(session_for(tmp_path), metas) as startup_s:
        pass
    assert sorted(saves) == sorted([touched.name, damaged.name]), saves
    assert startup_s < 60
    for meta in (touched, damaged):
        state = resume_state(meta, tmp_path)
        assert state is not None and state.have.count() == meta.num_pieces and not state.changed_files

    saves.clear()
    async with running(session_for(tmp_path), metas):
        pass
    assert saves == []


async def test_an_incomplete_torrent_is_not_rewritten_either(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    metas = tiny_torrents(tmp_path, 3)
    missing = metas[1]
    (tmp_path / missing.name).unlink()  # nothing to seed: it waits for peers, downloading
    session = session_for(tmp_path)
    for meta in metas:
        session.add(meta)
    saves = count_saves(monkeypatch)

    async def started(session: Any) -> None:
        import asyncio

        task = asyncio.ensure_future(session.run())
        for _ in range(500):
            if all(t.started for t in session.torrents.values()):
                break
            await asyncio.sleep(0.02)
        assert session.torrents[missing.info_hash].state == "downloading"
        session.request_stop()
        await task

    await started(session)
    assert sorted(saves) == sorted(m.name for m in metas)
    saves.clear()
    again = session_for(tmp_path)
    for meta in metas:
        again.add(meta)
    await started(again)
    assert saves == []
