"""A torrent's lifecycle states.

A `StrEnum`, so snapshots, `--json` records and the dashboard keep reading plain strings."""

from __future__ import annotations

from enum import StrEnum


class TorrentState(StrEnum):
    METADATA = "metadata"  # a magnet's info dictionary is being fetched from peers
    CHECKING = "checking"  # files opened, pieces on disk being verified (or read from the resume file)
    DOWNLOADING = "downloading"
    SEEDING = "seeding"  # every piece verified; serving until the seeding goal is met
    FINISHED = "finished"  # the goal was met and every accepted request served: nothing more to do
    ERROR = "error"  # stopped with a message a user can act on; verified pieces are kept
    PAUSED = "paused"  # shown by snapshots while paused; the torrent keeps its lifecycle state underneath
