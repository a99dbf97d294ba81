"""The rich progress bar used by every long job outside the dashboard (hashing, checking, generating)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn


def transfer_progress(console: Console, *, label_width: int = 0) -> Progress:
    """A transient bar with bytes done, speed and time left; labels padded to `label_width`."""
    label = f"{{task.description:<{label_width}}}" if label_width else "{task.description}"
    return Progress(
        TextColumn(label),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
