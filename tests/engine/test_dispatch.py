"""The torrent's event table covers every event a peer connection can hand it."""

from __future__ import annotations

import inspect

from torrentpy.engine.dispatch import EVENT_HANDLERS
from torrentpy.protocol import events as ev

# Handled by the session before a torrent owns the link.
SESSION_ONLY = {ev.HandshakeInfoHash}


def _event_classes() -> set[type[ev.Event]]:
    return {c for _, c in inspect.getmembers(ev, inspect.isclass) if issubclass(c, ev.Event) and c is not ev.Event}


def test_every_event_after_the_handshake_has_a_handler() -> None:
    missing = _event_classes() - SESSION_ONLY - set(EVENT_HANDLERS)
    assert not missing, f"events a torrent cannot handle: {sorted(c.__name__ for c in missing)}"


def test_the_table_holds_only_events() -> None:
    assert all(issubclass(kind, ev.Event) for kind in EVENT_HANDLERS)
    assert not SESSION_ONLY & set(EVENT_HANDLERS)
