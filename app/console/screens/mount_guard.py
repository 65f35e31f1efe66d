"""Screens whose `on_mount` does nothing once the app has begun to shut down, or once
the screen itself is being taken down.

Quitting the console just as a dialog opens (its key, then ctrl+q, or the terminal closing)
removes the dialog's widgets before Textual delivers the dialog's Mount. Its `on_mount`
then looked up a widget that was gone, and the NoMatches ended the app with a traceback
instead of a clean exit (tests/app/test_console_quit_race.py opens each screen that way).
A screen popped as it opens does the same: a level started while the level select is
still mounting (campaign_play.start_level pops it) removed its options first, and the
level select's `on_mount` failed so on a loaded machine (CI, 2026-12-07).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


class MountGuard:
    """Mixed into a Screen: each subclass's own `on_mount` is skipped once the app has
    begun to shut down (it is no longer running: its screens are being taken down)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handler: Callable[[Any], None] | None = cls.__dict__.get("on_mount")
        if handler is None:
            return

        @functools.wraps(handler)  # Textual counts the handler's parameters through this
        def on_mount(self: Any) -> None:
            if not self.app.is_running or _taken_down(self):  # its widgets are going
                return
            handler(self)

        cls.on_mount = on_mount  # type: ignore[attr-defined]


def _taken_down(screen: Any) -> bool:
    """Whether the screen is off the app's tree, or closing or being pruned (Textual's
    own flags for a node on its way out, as its `display` reads them)."""
    return not screen.is_attached or any(
        getattr(screen, flag, False) for flag in ("_closing", "_closed", "_pruning"))
