"""Hosts grouped by switch (rack): state, memory bar, overcommit, free, NIC; and while there
is room, a second line per host with its page sharing and reclamation."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option, OptionDoesNotExist

from app.console.format import SEGMENTS, STATE_STYLES, rate_text, stacked_bar
from engine import HostView
from engine.units import format_bytes

MIN_BAR = 10
TWO_LINES_SHARE = 0.4  # two lines per host while they fit in this share of the screen


def memory_bar(host: HostView, width: int) -> Text:
    """`width` cells: ▕RAM: private, shared, free▏ then what the VMs were promised beyond
    RAM (╌), where their ballooned and swapped memory sits: guest memory without frames.

    Both parts use one scale (the larger of RAM and the promised memory), so the length of
    the part after ▏ shows the overcommitment.
    """
    outside = [("balloon", host.balloon_bytes), ("swapped", host.swapped_bytes)]
    out_bytes = host.balloon_bytes + host.swapped_bytes
    scale = max(host.memory_bytes, host.configured_vm_bytes, host.memory_bytes + out_bytes)
    inner = width - 2
    ram = inner if scale <= 0 else max(MIN_BAR - 2, round(inner * host.memory_bytes / scale))
    ram = min(ram, inner)
    text = Text("▕")
    text.append_text(stacked_bar([("private", host.private_bytes),
                                  ("shared", host.shared_bytes),
                                  ("free", host.free_bytes)], host.memory_bytes, ram))
    text.append("▏")
    rest = inner - ram
    if rest > 0:
        drawn = stacked_bar(outside, scale - host.memory_bytes, rest, pad=False)
        text.append_text(drawn)
        glyph, style = SEGMENTS["promised"]
        text.append(glyph * (rest - drawn.cell_len), style=style)
    return text


def host_line(host: HostView, width: int, saved: bool = True) -> Text:
    """'h1 high ▕bar▏╌╌ 1.25x free 460MiB saved 4MiB NIC 25%' in `width` cells.

    The bar takes what the words leave; on a narrow pane NIC use, the memory saved by
    sharing and free memory go first (`saved=False` leaves it to the host's second line).
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
            Text(f" free {format_bytes(host.free_bytes):>9}")]
    if saved:
        tail.append(Text(f" saved {format_bytes(host.shared_saved_bytes):>9}"))
    tail.append(Text(f" NIC {nic * 100:3.0f}%"))
    while len(tail) > 1 and width - head.cell_len - sum(t.cell_len for t in tail) < MIN_BAR:
        tail.pop()
    text = head
    text.append_text(memory_bar(host, max(width - head.cell_len - sum(t.cell_len for t in tail),
                                          MIN_BAR)))
    for part in tail:
        text.append_text(part)
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def sharing_line(host: HostView, width: int) -> Text:
    """The host's second line: page sharing and reclamation at a glance."""
    text = Text(" " * 9)
    text.append(f"{host.sharing_mode:<4} ", style="medium_purple2" if host.sharing_mode != "off"
                else "dim")
    text.append(f"saved {format_bytes(host.shared_saved_bytes)}", style="bold")
    text.append(f" · hash {rate_text(host.pages_hashed_per_s)}/s"
                f" · COW {rate_text(host.cow_breaks_per_s)}/s"
                f" · tax {host.idle_tax:.0%}")
    if host.balloon_bytes:
        text.append(f" · balloon {format_bytes(host.balloon_bytes)}", style="dark_orange")
    if host.swapped_bytes or host.swapins_per_s or host.swapouts_per_s:
        text.append(f" · swap {format_bytes(host.swapped_bytes)} "
                    f"in {rate_text(host.swapins_per_s)}/s out "
                    f"{rate_text(host.swapouts_per_s)}/s", style="red3")
    text.truncate(width, overflow="ellipsis")
    text.no_wrap = True
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
        self._shape: tuple[int, bool] = (0, False)  # line width, two lines per host
        self._shown: dict[str, HostView] = {}  # the view each host's line was drawn from
        self._stale: set[str] = set()  # hosts whose line is out of date (off screen)
        self._option_hosts: list[str | None] = []  # per option: its host (None: a rack)

    def on_mount(self) -> None:
        self.watch(self, "scroll_y", self._draw_visible, init=False)

    def _wanted_shape(self, layout: tuple[tuple[str | None, tuple[str, ...]], ...]
                      ) -> tuple[int, bool]:
        """Line width, and whether each host gets its second (sharing) line: only while
        all of them fit in a share of the screen, so a big data center stays one line each."""
        width = max(30, min(self.scrollable_content_region.width - 1, 110))
        rows = sum(1 + 2 * len(ids) for _, ids in layout)
        return width, rows <= self.screen.size.height * TWO_LINES_SHARE

    def _prompt(self, host: HostView) -> Text:
        width, two_lines = self._shape
        line = host_line(host, width, saved=not two_lines)
        if two_lines:
            line = Text("\n").join([line, sharing_line(host, width)])
        return line

    def show(self, hosts: tuple[HostView, ...]) -> None:
        self._host_views = hosts
        groups: dict[str | None, list[str]] = {}
        for h in hosts:
            groups.setdefault(h.switch, []).append(h.id)
        layout = tuple((sw, tuple(ids)) for sw, ids in groups.items())
        shape = self._wanted_shape(layout)
        if layout != self._rack_layout or shape != self._shape:
            self._rebuild(layout, shape)
            return
        # Only hosts that changed, and of those only the ones on screen, get a new line
        # now: the others when they scroll into view. 100 host lines cost a frame.
        self._stale |= {h.id for h in hosts if self._shown.get(h.id) != h}
        self._draw_visible()

    def _draw_visible(self) -> None:
        if not self._stale:
            return
        by_id = {h.id: h for h in self._host_views}
        lines_per_option = 2 if self._shape[1] else 1
        top = int(self.scroll_y) // lines_per_option
        bottom = top + self.size.height // lines_per_option + 2
        for host_id in self._option_hosts[max(top - 2, 0):bottom]:
            if host_id is None or host_id not in self._stale or host_id not in by_id:
                continue
            self._stale.discard(host_id)
            view = by_id[host_id]
            self._shown[host_id] = view
            line = self._prompt(view)
            if line != self._host_lines.get(host_id):
                self._host_lines[host_id] = line
                self.replace_option_prompt(f"host:{host_id}", line)

    def _rebuild(self, layout: tuple[tuple[str | None, tuple[str, ...]], ...],
                 shape: tuple[int, bool]) -> None:
        self._rack_layout, self._shape = layout, shape
        by_id = {h.id: h for h in self._host_views}
        highlighted = self.highlighted_option.id if self.highlighted_option else None
        options: list[Option] = []
        self._option_hosts = []
        # Lines are drawn for the hosts on screen only (_draw_visible, below); the others
        # show just their name, on as many lines as a drawn host takes, until they scroll
        # into view. A resize (the side pane shown or hidden) would otherwise redraw every
        # host: 100 lines, 16 ms.
        self._host_lines.clear()
        self._shown.clear()
        self._stale = set()  # set_options scrolls to the top: nothing to draw until it is done
        undrawn_tail = "\n" if shape[1] else ""  # the second line, when hosts have one
        for switch, ids in layout:
            title = f"── {switch or 'no switch'} ({len(ids)} host{'s' * (len(ids) != 1)}) "
            options.append(Option(Text(title, style="bold"), id=f"switch:{switch}",
                                  disabled=True))
            self._option_hosts.append(None)
            for host_id in ids:
                options.append(Option(Text(host_id + undrawn_tail), id=f"host:{host_id}"))
                self._option_hosts.append(host_id)
        self.set_options(options)
        self._stale = set(by_id)
        first_host = next((o.id for o in options if not o.disabled), None)
        for option_id in (highlighted, first_host):
            if option_id is None:
                continue
            try:
                self.highlighted = self.get_option_index(option_id)
                break
            except OptionDoesNotExist:
                continue
        self._draw_visible()

    def on_resize(self) -> None:
        if self._host_views:
            shape = self._wanted_shape(self._rack_layout)
            if shape != self._shape:
                self._rebuild(self._rack_layout, shape)
            else:
                self._draw_visible()  # a taller list shows hosts not drawn yet

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
