"""Making untrusted text safe to put on a terminal.

Torrent names and paths come from whoever made the .torrent, tracker messages and client names from
strangers; all of them reach the screen, so ``printable`` returns text with no control characters, escape
sequences or bidi overrides.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 and C1 controls, DEL, lone surrogates (undecodable bytes of a path read with surrogateescape), line
# and paragraph separators, and the bidi embedding/override/isolate/mark characters that can make text
# display in an order other than the one it is stored in.
_UNSAFE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape_char(match: re.Match[str]) -> str:
    cp = ord(match.group())
    if cp < 0x100:
        return f"\\x{cp:02x}"
    if 0xDC80 <= cp <= 0xDCFF:  # surrogateescape stand-in for the raw byte cp - 0xDC00
        return f"\\x{cp - 0xDC00:02x}"
    return f"\\u{cp:04x}"


def printable(text: str) -> str:
    """``text`` with every control character, ESC, DEL and bidi control replaced by a visible escape.

    An escape sequence such as ``"\\x1b[2J"`` becomes the harmless literal text ``\\x1b[2J``; nothing in
    the result can move the cursor, change colours or reorder what follows it.
    """
    if _UNSAFE_RE.search(text) is None:
        return text
    return _UNSAFE_RE.sub(_escape_char, text)
