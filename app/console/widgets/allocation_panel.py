"""One VM's allocation and reclamation: its target against what it holds, balloon, swap,
guest paging, the active-memory estimate beside the truth, and what it gets done."""

from __future__ import annotations

from rich.text import Text

from app.console.format import mini_bar, percent, rate_text
from app.console.widgets import LABEL_W, Panel, row_text, update_text
from engine import VMView
from engine.units import format_bytes


def _fraction_row(label: str, fraction: float, note: str, width: int) -> Text:
    bar = max(3, min(10, width - LABEL_W - 7))  # narrow columns get a shorter bar
    text = Text(f"{label:<{LABEL_W}}{mini_bar(fraction, bar)} {percent(fraction):>6}")
    if text.cell_len + 2 + len(note) <= width:
        text.append(f"  {note}", style="dim")
    return text


def allocation_text(vm: VMView, width: int = 80) -> Text:
    over = vm.resident_bytes - vm.target_bytes
    rows = [
        row_text("target", format_bytes(vm.target_bytes),
                 f"{format_bytes(over)} over" if vm.running and over > 0 else "policy",
                 width=width),
        row_text("resident", format_bytes(vm.resident_bytes), width=width),
        row_text("balloon", format_bytes(vm.balloon_bytes),
                 f"→ {format_bytes(vm.balloon_target_bytes)}"
                 + ("" if vm.balloon_driver else ", NO DRIVER"),
                 "dark_orange" if vm.balloon_bytes else "", width),
        row_text("swapped", format_bytes(vm.swapped_bytes), "on disk",
                 "red3" if vm.swapped_bytes else "", width),
        row_text("swap-ins", f"{rate_text(vm.swapins_per_s)}/s", "stalls",
                 "red3" if vm.swapins_per_s else "", width),
        row_text("guest paged", format_bytes(vm.guest_swapped_bytes), "to its own disk",
                 width=width),
        row_text("guest faults", f"{rate_text(vm.guest_faults_per_s)}/s", "balloon's cost",
                 "dark_orange" if vm.guest_faults_per_s else "", width),
        row_text("ρ", f"{vm.rho:.4g}", "lowest loses memory", width=width),
        _fraction_row("active est.", vm.active_estimate, "sampled", width),
        _fraction_row("active true", vm.active_true, "touched", width),
        row_text("throughput", f"{rate_text(vm.throughput_per_s)}/s",
                 f"cache hits {percent(vm.file_hit_ratio)}", width=width),
        row_text("blocked", "BLOCKED" if vm.blocked else "no", "over target, low state",
                 "bold red" if vm.blocked else "", width),
        row_text("double paging", f"{vm.double_paging:,}", f"{vm.pops:,} balloon pops",
                 width=width),
        row_text("bounce copies", f"{rate_text(vm.bounces_per_s)}/s", f"{vm.remaps:,} remaps",
                 width=width),
    ]
    return Text("\n").join(rows)


class AllocationPanel(Panel):
    _vm: VMView | None = None

    def show(self, vm: VMView) -> None:
        self._vm = vm
        self.rerender()

    def rerender(self) -> None:
        if self._vm is not None:
            update_text(self, allocation_text(self._vm, self.panel_width()))
