"""Screens whose `on_mount` does nothing once the app has begun to shut down.

Quitting the console just as a dialog opens (its key, then ctrl+q, or the terminal closing)
removes the dialog's widgets before Textual delivers the dialog's Mount. Its `on_mount`
then looked up a widget that was gone, and the NoMatches ended the app with a traceback
instead of a clean exit (tests/app/test_console_quit_race.py opens each screen that way).
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
            if not self.app.is_running:  # shutting down: the screen's widgets are going
                return
            handler(self)

        cls.on_mount = on_mount  # type: ignore[attr-defined]
