"""The files panel's cursor (`[`/`]`) and `w` (wanted ↔ skipped), through handle_key and the renderer."""

from __future__ import annotations

import dataclasses
import io

from rich.console import Console

from tests.tui.snapshots import make_session, make_torrent
from torrentpy.engine.snapshot import FileSnapshot, SessionSnapshot
from torrentpy.tui.dashboard import Dashboard, ViewState
from torrentpy.tui.live import handle_key

A = "aa" * 20


class FileController:
    """Keeps each file's wanted flag, as the engine would, and records the calls."""

    def __init__(self, count: int) -> None:
        self.wanted = [True] * count
        self.calls: list[tuple[str, int, bool]] = []

    def snapshot(self) -> SessionSnapshot:
        files = tuple(FileSnapshot(path=f"dir/f{i}.bin", size=1 << 20, done=0, wanted=w)
                      for i, w in enumerate(self.wanted))
        return make_session(dataclasses.replace(make_torrent(info_hash_hex=A), files=files))

    def pause(self, info_hash_hex: str) -> None: ...

    def resume(self, info_hash_hex: str) -> None: ...

    def request_stop(self) -> None: ...

    def set_file_wanted(self, info_hash_hex: str, index: int, wanted: bool) -> None:
        self.calls.append((info_hash_hex, index, wanted))
        self.wanted[index] = wanted


def press(keys: str, controller: FileController, view: ViewState) -> None:
    for key in keys:
        handle_key(key, controller, controller.snapshot(), view)


def render(snapshot: SessionSnapshot, view: ViewState, height: int = 24) -> str:
    console = Console(file=io.StringIO(), width=100, height=height, color_system=None, legacy_windows=False)
    console.print(Dashboard(snapshot, view))
    return console.file.getvalue()  # type: ignore[attr-defined]


def row(text: str, path: str) -> str:
    return next(line for line in text.splitlines() if path in line)


def test_cursor_and_toggle_in_the_files_panel() -> None:
    controller = FileController(3)
    view = ViewState(can_toggle_files=True)
    press("w", controller, view)  # not in the files panel: nothing happens
    assert controller.calls == []
    view.panel = "files"
    press("]]]w", controller, view)  # the cursor stops at the last file
    assert controller.calls == [(A, 2, False)]
    press("[w", controller, view)
    assert controller.calls[-1] == (A, 1, False)
    press("]w", controller, view)  # wanted again
    assert controller.calls[-1] == (A, 2, True)
    assert controller.wanted == [True, False, True]
    text = render(controller.snapshot(), view)
    assert "skip" in row(text, "dir/f1.bin") and "norm" in row(text, "dir/f0.bin")
    assert "get/skip" in text and "[ ]" in text  # the footer offers the keys in the files panel
    view.panel = "pieces"
    assert "get/skip" not in render(controller.snapshot(), view)


def test_a_controller_without_file_choice_offers_no_keys() -> None:
    controller = FileController(2)
    view = ViewState(panel="files")
    press("w", controller, view)
    assert "get/skip" not in render(controller.snapshot(), view)


def test_the_cursor_stays_in_the_window_shown() -> None:
    controller = FileController(100)
    view = ViewState(can_toggle_files=True, panel="files")
    press("]" * 60 + "w", controller, view)
    assert controller.calls == [(A, 60, False)]
    text = render(controller.snapshot(), view)
    assert "skip" in row(text, "dir/f60.bin")
    assert "dir/f0.bin" not in text
