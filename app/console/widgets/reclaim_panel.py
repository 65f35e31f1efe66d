"""A host's reclamation and allocation: memory state, idle tax, balloon, swapping, double
paging and I/O remapping, plus what its VMs counted."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from app.console.format import STATE_STYLES, rate_text
from app.console.widgets import Panel, row_text, update_text
from engine import HostView, VMView
from engine.units import format_bytes

STATE_MEANING = {"high": "sharing only", "soft": "balloon", "hard": "swap",
                 "low": "swap, block"}


def reclaim_text(host: HostView, vms: Sequence[VMView], width: int = 80) -> Text:
    change = host.balloon_change_bytes
    blocked = sum(1 for v in vms if v.blocked)
    swapping = host.swapins_per_s or host.swapouts_per_s
    rows = [
        row_text("state", host.state, STATE_MEANING.get(host.state, ""),
                 STATE_STYLES.get(host.state, ""), width),
        row_text("idle tax τ", f"{host.idle_tax:.0%}", "idle costs more", width=width),
        row_text("balloon", format_bytes(host.balloon_bytes),
                 f"{'+' if change >= 0 else '−'}{format_bytes(abs(change))}/tick",
                 "dark_orange" if host.balloon_bytes else "", width),
        row_text("swapped", format_bytes(host.swapped_bytes), "on disk",
                 "red3" if host.swapped_bytes else "", width),
        row_text("swap in/out/s",
                 f"{rate_text(host.swapins_per_s)}/{rate_text(host.swapouts_per_s)}",
                 "pages", "red3" if swapping else "", width),
        row_text("double paging", f"{host.double_paging:,}", "wasted I/O", width=width),
        row_text("blocked VMs", f"{blocked}", "low state", "bold red" if blocked else "",
                 width),
        row_text("stalled ops", f"{sum(v.stalled_ops for v in vms):,}", width=width),
        row_text("bounce copies", f"{rate_text(host.bounce_copies_per_s)}/s", "32-bit DMA",
                 width=width),
        row_text("remaps", f"{host.remaps:,}", "into low mem", width=width),
        row_text("low evictions", f"{host.low_evictions:,}", "cold pages up", width=width),
        row_text("low free", format_bytes(host.free_low_bytes), "DMA-reachable",
                 width=width),
    ]
    return Text("\n").join(rows)


class ReclaimPanel(Panel):
    _shown: tuple[HostView, Sequence[VMView]] | None = None

    def show(self, host: HostView, vms: Sequence[VMView]) -> None:
        self._shown = (host, vms)
        self.rerender()

    def rerender(self) -> None:
        if self._shown is not None:
            update_text(self, reclaim_text(*self._shown, width=self.panel_width()))
