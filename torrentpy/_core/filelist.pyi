from typing import Any, TypeVar

T = TypeVar("T")

def plain_files(
    raw_files: list[Any], name: str, entry_type: type[T], known: dict[bytes, Any], max_total: int
) -> tuple[list[T], int]: ...
