"""A live frame re-lays the screen out only when a widget's size may change: a panel whose
digits change keeps its layout, one that gains a line or outgrows its width does not; the
event log's growing line count moves its scrollbars, not the screen's layout."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import Static

from app.console.widgets import _may_resize, update_text
from app.console.widgets.event_log import EventLog


class _Panels(App[None]):
    CSS = """
    #fixed { width: 20; height: auto; }
    #auto { width: auto; height: auto; }
    EventLog { height: 5; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="fixed")
        yield Static(id="auto")
        yield EventLog(id="log")


def test_a_panel_is_laid_out_again_only_when_its_size_may_change() -> None:
    async def run() -> None:
        app = _Panels()
        async with app.run_test(size=(60, 20)) as pilot:
            fixed = app.query_one("#fixed", Static)
            auto = app.query_one("#auto", Static)
            await pilot.pause()
            assert fixed.content_region.width == 20
            # Sized across by its container: digits that change keep it.
            assert not _may_resize(fixed, "used 9 MB\nfree 1 MB", "used 10 MB\nfree 0 MB")
            assert not _may_resize(fixed, "a\nb", "a\nb")
            # A line more, or a line past the width (it would wrap), and it may change.
            assert _may_resize(fixed, "used 9 MB", "used 9 MB\nfree 1 MB")
            assert _may_resize(fixed, "used 9 MB", "x" * 21)
            assert _may_resize(fixed, "x" * 21, "used 9 MB")
            # Sized across by its text: any line of another length changes it.
            assert _may_resize(auto, "used 9 MB", "used 10 MB")
            assert not _may_resize(auto, "used 9 MB", "used 8 MB")

            update_text(fixed, Text("used 9 MB"))
            await pilot.pause()
            assert fixed.size.height == 1
            update_text(fixed, Text("used 10 MB\nfree 0 MB"))  # a line more: laid out
            await pilot.pause()
            assert fixed.size.height == 2
            update_text(fixed, Text("used 11 MB\nfree 1 MB"))
            await pilot.pause()
            assert fixed.size.height == 2
            assert "used 11 MB" in str(fixed.render())

    asyncio.run(run())


def test_the_event_log_scrolls_as_it_grows_without_a_layout() -> None:
    async def run() -> None:
        app = _Panels()
        async with app.run_test(size=(60, 20)) as pilot:
            log = app.query_one(EventLog)
            await pilot.pause()
            layouts = {"n": 0}
            real_refresh = log.refresh

            def counting(*args: object, layout: bool = False, **kwargs: object) -> object:
                layouts["n"] += int(layout)
                return real_refresh(*args, layout=layout, **kwargs)

            for i in range(12):
                log.write(Text(f"event {i}"))
                await pilot.pause()
            assert log.virtual_size.height == len(log.lines) == 12
            assert log.max_scroll_y == 12 - log.scrollable_content_region.height
            assert log.scroll_y == log.max_scroll_y  # it follows the newest line
            assert log.show_vertical_scrollbar
            log.refresh = counting  # type: ignore[method-assign]
            for i in range(3):
                log.write(Text(f"one more {i}"))
                await pilot.pause()
            assert log.virtual_size.height == 15 and log.scroll_y == log.max_scroll_y
            assert layouts["n"] == 0  # the scrollbar was there: nothing to lay out

    asyncio.run(run())
