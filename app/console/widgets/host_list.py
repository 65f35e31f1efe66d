"""Hosts grouped by switch (rack), one line each: state, memory bar, overcommit, NIC."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option, OptionDoesNotExist

from app.console.format import STATE_STYLES, stacked_bar
from engine import HostView
from engine.units import format_bytes

MIN_BAR = 10


def host_line(host: HostView, width: int) -> Text:
    """'h1 high ▕bar▏ 1.25x free 460MiB NIC 25%' in `width` cells (words, glyphs, colour).

    The bar takes what the words leave; on a narrow pane free memory and NIC use go first.
    """
    head = Text(f"{host.id:<8.8} ")
    if host.up:
        head.append(f"{host.state:<4} ", style=STATE_STYLES.get(host.state, ""))
    else:
        head.append("DOWN ", style="bold red")
    nic = (host.nic_used_bytes_per_s / host.nic_capacity_bytes_per_s
           if host.nic_capacity_bytes_per_s else 0.0)
    tail = [Text(f" {host.overcommit_ratio:4.2f}x",
                 style="bold" if host.overcommit_ratio > 1 else ""),
            Text(f" free {format_bytes(host.free_bytes):>9}"),
            Text(f" NIC {nic * 100:3.0f}%")]
    out = [("balloon", host.balloon_bytes), ("swapped", host.swapped_bytes)]
    outside = any(n for _, n in out)
    while len(tail) > 1 and width - head.cell_len - sum(t.cell_len for t in tail) - 2 < (
            MIN_BAR * (2 if outside else 1)):
        tail.pop()
    bar = max(width - head.cell_len - sum(t.cell_len for t in tail) - 2, MIN_BAR)
    inside_width = bar // 2 if outside else bar
    text = head
    text.append("▕")
    text.append_text(stacked_bar([("private", host.private_bytes),
                                  ("shared", host.shared_bytes),
                                  ("free", host.free_bytes)], host.memory_bytes, inside_width))
    text.append("▏")
    if outside:
        # Memory the VMs own outside RAM, on the same scale as the RAM bar.
        text.append_text(stacked_bar(out, host.memory_bytes, bar - inside_width))
    for part in tail:
        text.append_text(part)
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


class HostList(OptionList):
    DEFAULT_CSS = """
    HostList { height: 1fr; border: none; padding: 0; }
    """

    class HostSelected(Message):
        def __init__(self, host: str) -> None:
            super().__init__()
            self.host = host

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._host_views: tuple[HostView, ...] = ()
        self._host_lines: dict[str, Text] = {}
        self._rack_layout: tuple[tuple[str | None, tuple[str, ...]], ...] = ()
        self._host_bar_width = 0

    def _line_width(self) -> int:
        """The width of a host line (the name is historical: the bar takes the rest)."""
        return max(30, min(self.scrollable_content_region.width - 1, 110))

    def show(self, hosts: tuple[HostView, ...]) -> None:
        self._host_views = hosts
        groups: dict[str | None, list[str]] = {}
        for h in hosts:
            groups.setdefault(h.switch, []).append(h.id)
        layout = tuple((sw, tuple(ids)) for sw, ids in groups.items())
        width = self._line_width()
        if layout != self._rack_layout or width != self._host_bar_width:
            self._rebuild(layout, width)
            return
        for h in hosts:
            line = host_line(h, width)
            if line != self._host_lines.get(h.id):
                self._host_lines[h.id] = line
                self.replace_option_prompt(f"host:{h.id}", line)

    def _rebuild(self, layout: tuple[tuple[str | None, tuple[str, ...]], ...],
                 width: int) -> None:
        self._rack_layout, self._host_bar_width = layout, width
        by_id = {h.id: h for h in self._host_views}
        highlighted = self.highlighted_option.id if self.highlighted_option else None
        options: list[Option] = []
        for switch, ids in layout:
            title = f"── {switch or 'no switch'} ({len(ids)} host{'s' * (len(ids) != 1)}) "
            options.append(Option(Text(title, style="bold"), id=f"switch:{switch}",
                                  disabled=True))
            for host_id in ids:
                self._host_lines[host_id] = host_line(by_id[host_id], width)
                options.append(Option(self._host_lines[host_id], id=f"host:{host_id}"))
        self.set_options(options)
        first_host = next((o.id for o in options if not o.disabled), None)
        for option_id in (highlighted, first_host):
            if option_id is None:
                continue
            try:
                self.highlighted = self.get_option_index(option_id)
                break
            except OptionDoesNotExist:
                continue

    def on_resize(self) -> None:
        if self._host_views and self._line_width() != self._host_bar_width:
            self._rebuild(self._rack_layout, self._line_width())

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        option_id = event.option.id or ""
        if option_id.startswith("host:"):
            self.post_message(self.HostSelected(option_id.removeprefix("host:")))

    @property
    def highlighted_host(self) -> str | None:
        option = self.highlighted_option
        if option is None or not (option.id or "").startswith("host:"):
            return None
        return (option.id or "").removeprefix("host:")
