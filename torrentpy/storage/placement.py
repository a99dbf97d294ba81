"""Data one folder off from where torrentpy looks for it.

A multi-file torrent's files live in a folder named after the torrent *inside* the folder a user passes.
Passing that folder itself (`verify album.torrent album`, `add album.torrent -o album`) finds nothing, so
verify reports 0 pieces good and add downloads everything again into `album/album/`. Likewise a
single-file torrent's file passed where its folder belongs. This spots both and says what to pass.
"""

from __future__ import annotations

import os

from torrentpy.metainfo import Metainfo
from torrentpy.peer_id import printable
from torrentpy.storage.paths import stat_file


def _parent(folder: str) -> str:
    return os.path.dirname(os.path.normpath(folder)) or "."


def misplaced_hint(meta: Metainfo, folder: str) -> str | None:
    """One line saying which folder to pass, or None when nothing looks misplaced.

    It speaks only when no file of the torrent is where it belongs and at least one file of the right
    size sits one level up from there (directly in `folder`): then the right place holds nothing, so
    nothing it says can hide data that was found.
    """
    files = [f for f in meta.files if not f.padding]
    if not files:
        return None
    name = files[0].path[0]
    given = os.path.basename(os.path.normpath(folder))
    if len(files[0].path) == 1:  # single file: the data's own path given as the folder
        if os.path.isfile(folder) and given == name:
            return f"{folder} is the torrent's file itself: pass the folder that holds it ({_parent(folder)})"
        return None
    if not os.path.isdir(folder) or any(stat_file(folder, f.path) is not None for f in files):
        return None
    for f in files:
        st = stat_file(folder, f.path[1:])
        if st is not None and st.st_size == f.length:
            if given == name:
                return f"{folder} is the torrent's own folder: pass the folder that holds it ({_parent(folder)})"
            return (f"{folder} holds the torrent's files directly, but they belong in a folder named "
                    f"{printable(name)!r} inside the folder you pass")
    return None
