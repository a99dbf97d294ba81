"""Storage: the piece↔file map, disk I/O off the event loop, hash checking and resume state.

The only package that touches the download's files."""

from torrentpy.storage.checker import (
    FileStatus,
    VerifyReport,
    check_pieces,
    check_pieces_async,
    present_pieces,
    verify,
)
from torrentpy.storage.files import Storage
from torrentpy.storage.layout import Layout, Segment
from torrentpy.storage.resume import (
    ResumeState,
    load_resume,
    remove_resume,
    resume_candidates,
    resume_path,
    resume_state,
    save_resume,
)

__all__ = [
    "FileStatus",
    "Layout",
    "ResumeState",
    "Segment",
    "Storage",
    "VerifyReport",
    "check_pieces",
    "check_pieces_async",
    "load_resume",
    "present_pieces",
    "remove_resume",
    "resume_candidates",
    "resume_path",
    "resume_state",
    "save_resume",
    "verify",
]
