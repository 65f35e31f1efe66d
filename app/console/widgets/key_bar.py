"""The footer: the keys that work here, on one line that always fits.

Textual's Footer builds a widget per key and rebuilds them all on every focus change,
which made opening a screen take most of a second; this renders one Text. The keys of a
binding group share one label (`s/m/M Alloc`). When the line is longer than the
terminal, the entries of lowest priority drop out first; Help (`?`) and Quit always stay,
at the right. A click on a key presses it.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widgets import Static

PINNED = ("help", "quit", "confirm_quit")  # always shown, at the end
# Lower numbers stay longest on a narrow terminal; unlisted labels get DEFAULT_PRIORITY.
PRIORITY = {"Place": 1, "Migrate": 1, "Alloc": 2, "Reclaim": 2, "Fail": 3, "SLA": 3,
            "Back": 1, "Cancel": 1, "Stop": 4, "Host": 4, "Spike": 5, "Pane": 2}
DEFAULT_PRIORITY = 3
KEY_STYLE = "bold orange1"  # Textual's accent colour, as its Footer shows keys


@dataclass
class Entry:
    keys: list[tuple[str, str]]  # (key to press, as shown)
    label: str
    enabled: bool
    priority: int
    pinned: bool


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar { height: 1; dock: bottom; background: $footer-background; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._spans: list[tuple[int, int, str]] = []  # (start, end, key) for clicks
        self._kept: list[Entry] = []

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.call_after_refresh(self.redraw)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        if self.is_attached and screen is self.screen:
            self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def entries(self) -> list[Entry]:
        groups: dict[str, Entry] = {}
        out: list[Entry] = []
        seen_actions: set[str] = set()
        for _, binding, enabled, _tip in self.screen.active_bindings.values():
            if not binding.show or binding.action in seen_actions:
                continue
            seen_actions.add(binding.action)
            key = binding.key.split(",")[0].strip()
            shown = self.app.get_key_display(binding)
            label = binding.group.description if binding.group else binding.description
            if binding.group is not None and label in groups:
                groups[label].keys.append((key, shown))
                groups[label].enabled |= enabled
                continue
            pinned = binding.action in PINNED
            entry = Entry([(key, shown)], label, enabled,
                          PRIORITY.get(label, DEFAULT_PRIORITY), pinned)
            if binding.group is not None:
                groups[label] = entry
            out.append(entry)
        return [e for e in out if not e.pinned] + [e for e in out if e.pinned]

    def redraw(self) -> None:
        if not self.is_attached:
            return
        entries = self.entries()
        width = max(self.size.width, 20)  # the content width, inside the padding
        kept = list(entries)
        gap = 2 if _length(kept, 2) <= width else 1  # a tighter line before dropping keys
        while _length(kept, gap) > width:
            droppable = [e for e in kept if not e.pinned]
            if not droppable:
                break
            worst = max(range(len(droppable)),
                        key=lambda i: (droppable[i].priority, i))
            kept.remove(droppable[worst])
        self._kept = kept
        text, self._spans = Text(no_wrap=True, overflow="ellipsis"), []
        for i, entry in enumerate(kept):
            if i:
                text.append(" " * gap)
            for j, (key, shown) in enumerate(entry.keys):
                if j:
                    text.append("/", style="dim")
                start = len(text)
                text.append(shown, style=KEY_STYLE if entry.enabled else "dim")
                self._spans.append((start, len(text), key))
            text.append(f" {entry.label}", style="" if entry.enabled else "dim")
        self.update(text)

    def shown_labels(self) -> list[str]:
        """What the bar shows now (for tests): the labels, in order."""
        return [e.label for e in self._kept]

    def on_click(self, event: events.Click) -> None:
        x = event.x - 1  # the left padding
        for start, end, key in self._spans:
            if start <= x < end:
                event.stop()
                self.app.simulate_key(key)
                return


def _length(entries: list[Entry], gap: int) -> int:
    if not entries:
        return 0
    keys = sum(len(shown) + 1 for e in entries for _, shown in e.keys) - 1 * len(entries)
    labels = sum(1 + len(e.label) for e in entries)
    return keys + labels + gap * (len(entries) - 1)
