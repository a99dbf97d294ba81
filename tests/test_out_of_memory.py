"""A MemoryError outside every torrent: the command says so in one line (exit 1), and one in an event-loop
callback is one warning, not a traceback, while the loop runs on."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

import torrentpy.cli as cli
from torrentpy.errors import out_of_memory_message
from torrentpy.net.loop import run


def test_the_command_says_out_of_memory_in_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    def no_memory(args: Any) -> int:
        raise MemoryError

    monkeypatch.setattr(cli, "cmd_info", no_memory)
    assert cli.main(["info", str(tmp_path / "x.torrent")]) == cli.EXIT_ERROR
    out, err = capsys.readouterr()
    assert out == "" and err == f"torrentpy: error: {out_of_memory_message()}\n"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_callback_out_of_memory_is_one_warning_and_the_loop_runs_on(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _Lines()
    logger = logging.getLogger("torrentpy")
    logger.addHandler(lines)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    ran: list[str] = []

    def no_memory() -> None:
        raise MemoryError

    async def main() -> str:
        loop = asyncio.get_running_loop()
        loop.call_soon(no_memory)
        await asyncio.sleep(0.01)
        loop.call_soon(ran.append, "after")
        await asyncio.sleep(0.01)
        return "done"

    try:
        assert run(main()) == "done"
    finally:
        logger.removeHandler(lines)
        logger.setLevel(old_level)
    assert ran == ["after"]
    warnings = [r for r in lines.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].getMessage().startswith("out of memory: ")
    assert warnings[0].exc_info is None  # the traceback only at DEBUG, for --log-file
    assert "Traceback" not in capsys.readouterr().err
