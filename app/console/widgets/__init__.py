"""The console's widgets, one per module; each takes data via `show(...)`."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import Static


def update_text(widget: Static, text: Text | str) -> None:
    """Update a Static only if its text changed, and re-layout only if its size may change.

    A layout pass repaints the whole screen; at one refresh per tick that is most of the
    cost of a frame, and most refreshes only change digits. A widget sized by its
    container across and by its lines down keeps its size while it has as many lines and
    every line, old and new, fits its width (none wraps); one sized by its text (width
    auto) keeps it while every line keeps its length.
    """
    old = getattr(widget, "_shown_text", None)
    if old == text:
        return
    plain_old = old.plain if isinstance(old, Text) else old
    plain_new = text.plain if isinstance(text, Text) else text
    widget._shown_text = text  # type: ignore[attr-defined]
    widget.update(text, layout=plain_old is None or _may_resize(widget, plain_old, plain_new))


def _may_resize(widget: Static, old: str, new: str) -> bool:
    old_lines, new_lines = old.split("\n"), new.split("\n")
    if len(old_lines) != len(new_lines):
        return True
    old_w, new_w = [cell_len(x) for x in old_lines], [cell_len(x) for x in new_lines]
    if old_w == new_w:
        return False
    width = widget.styles.width
    room = widget.content_region.width
    if (width is not None and width.is_auto) or room <= 0:
        return True
    return max(old_w) > room or max(new_w) > room


LABEL_W, VALUE_W = 15, 10


def row_text(label: str, value: str, note: str = "", style: str = "",
             width: int = 80) -> Text:
    """'label      value  note' for the detail panels; the note (dim) only if it fits, and
    the label shortened when the panel is narrower than a label and a value."""
    label_w = LABEL_W if width >= LABEL_W + VALUE_W else max(width - VALUE_W, 6)
    text = Text(f"{label:<{label_w}.{label_w}}")
    text.append(f"{value:>{VALUE_W}}", style=style)
    if note and label_w + VALUE_W + 2 + len(note) <= width:
        text.append(f"  {note}", style="dim")
    return text


class Panel(Static):
    """A Static that re-renders its text to its width (notes drop out when narrow)."""

    DEFAULT_CSS = """
    Panel { height: auto; }
    """

    def panel_width(self) -> int:
        return self.size.width or 80

    def on_resize(self) -> None:
        self.rerender()

    def rerender(self) -> None:  # overridden
        pass
