"""`Y`: the what-if branches side by side (profit, SLA, downtime...), and which to go on in.

The App brings every branch to the current branch's time first (headless, in a thread)
and reports progress; then it hands the screen one `BranchSummary` per branch. The screen
never touches a simulation: choosing a branch dismisses it with the branch's name, and
dropping one posts `DropRequested` for the App to carry out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter

from rich import box
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Static

from app.console.format import clock_text, describe_command, metric_text, money
from app.console.widgets.key_bar import KeyBar
from engine import Command, Snapshot
from engine.units import format_bytes

BEST = " ★"  # the better value of a row; colour only helps
SHOWN_COMMANDS = 6  # per branch; earlier ones are counted


@dataclass(frozen=True)
class BranchSummary:
    name: str
    snapshot: Snapshot
    current: bool  # the branch the console is in
    parent: str | None  # the branch it was forked from (None: the first world)
    forked_at_s: float | None
    commands: tuple[tuple[float, Command], ...]  # accepted since the branch forked


@dataclass(frozen=True)
class Metric:
    label: str
    value: Callable[[Snapshot], float]
    text: Callable[[Snapshot], str]
    better: int  # +1 higher is better, -1 lower is better, 0 neither


def _contracted(snap: Snapshot) -> list[float]:
    """Average service of every VM that has run (a queued VM has no service yet)."""
    return [v.service_level_avg for v in snap.vms if v.status != "queued"]


def service_mean(snap: Snapshot) -> float:
    levels = _contracted(snap)
    return sum(levels) / len(levels) if levels else 1.0


def service_worst(snap: Snapshot) -> float:
    return min(_contracted(snap), default=1.0)


def worst_vm(snap: Snapshot) -> str:
    ran = [v for v in snap.vms if v.status != "queued"]
    return min(ran, key=lambda v: v.service_level_avg).id if ran else "—"


def downtime_s(snap: Snapshot) -> float:
    return sum(v.lost_s.get("downtime", 0.0) for v in snap.vms)


def _objectives(status: str) -> Callable[[Snapshot], float]:
    return lambda snap: float(sum(o["status"] == status for o in snap.objectives))


def _running(snap: Snapshot) -> float:
    return float(sum(v.running for v in snap.vms))


def _sum(field: str) -> Callable[[Snapshot], float]:
    return lambda snap: float(sum(getattr(v, field) for v in snap.vms))


def _count(value: Callable[[Snapshot], float]) -> Callable[[Snapshot], str]:
    return lambda snap: f"{value(snap):,.0f}"


def _service(value: Callable[[Snapshot], float]) -> Callable[[Snapshot], str]:
    return lambda snap: metric_text("service_level", value(snap))


def _bytes(value: Callable[[Snapshot], float]) -> Callable[[Snapshot], str]:
    return lambda snap: format_bytes(value(snap))


def _money(value: Callable[[Snapshot], float]) -> Callable[[Snapshot], str]:
    return lambda snap: money(value(snap))


_profit, _revenue, _costs, _penalties = (attrgetter(name) for name in
                                         ("profit", "revenue", "costs", "penalties"))

METRICS: tuple[Metric, ...] = (
    Metric("profit", _profit, _money(_profit), +1),
    Metric("revenue", _revenue, _money(_revenue), +1),
    Metric("costs", _costs, _money(_costs), -1),
    Metric("penalties", _penalties, _money(_penalties), -1),
    Metric("service, mean", service_mean, _service(service_mean), +1),
    Metric("service, worst", service_worst, _service(service_worst), +1),
    Metric("  worst VM", lambda s: 0.0, worst_vm, 0),
    Metric("SLA breaches", _sum("sla_breaches"), _count(_sum("sla_breaches")), -1),
    Metric("downtime", downtime_s, lambda s: metric_text("downtime_s", downtime_s(s)), -1),
    Metric("swapped", _sum("swapped_bytes"), _bytes(_sum("swapped_bytes")), -1),
    Metric("ballooned", _sum("balloon_bytes"), _bytes(_sum("balloon_bytes")), -1),
    Metric("running VMs", _running, lambda s: f"{_running(s):.0f}/{len(s.vms)}", +1),
    Metric("objectives met", _objectives("met"), _count(_objectives("met")), +1),
    Metric("  failed", _objectives("failed"), _count(_objectives("failed")), -1),
    Metric("  open", _objectives("pending"), _count(_objectives("pending")), 0),
)


def best_of(values: Sequence[float], texts: Sequence[str], better: int) -> set[int]:
    """Indexes of the better values of a row: none when there is nothing to choose, and
    values that read the same as the best one share its star."""
    if better == 0 or len(set(texts)) < 2:
        return set()
    best = max(range(len(values)), key=lambda i: values[i] * better)
    return {i for i, text in enumerate(texts) if text == texts[best]}


def branch_header(s: BranchSummary, selected: bool) -> Text:
    text = Text(s.name, style="bold reverse" if selected else "bold")
    if s.current:
        text.append(" (here)", style="bold")
    return text


def compare_table(summaries: Sequence[BranchSummary], selected: str | None) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=False, show_edge=False)
    table.add_column("", style="bold", no_wrap=True, min_width=14)
    for s in summaries:
        table.add_column(branch_header(s, s.name == selected), justify="right",
                         overflow="fold")
    now = next((s.snapshot.time_s for s in summaries if s.current), None)
    times = []
    for s in summaries:
        snap = s.snapshot
        cell = Text(clock_text(snap.time_s, snap.tick_s))
        if now is not None and snap.time_s > now + 1e-9:
            cell.append(" ahead", style="bold yellow")
        times.append(cell)
    table.add_row("time", *times)
    table.add_row("forked from", *(
        Text("first world", style="dim") if s.parent is None
        else Text(f"{s.parent} {clock_text(s.forked_at_s or 0.0, s.snapshot.tick_s)}")
        for s in summaries))
    for metric in METRICS:
        values = [metric.value(s.snapshot) for s in summaries]
        texts = [metric.text(s.snapshot) for s in summaries]
        best = best_of(values, texts, metric.better)
        cells = [Text(text + BEST, style="bold green") if i in best else Text(text)
                 for i, text in enumerate(texts)]
        table.add_row(metric.label, *cells)
    return table


def commands_text(summaries: Sequence[BranchSummary]) -> Text:
    text = Text("Your commands since each branch forked", style="bold")
    for s in summaries:
        text.append(f"\n{s.name}  ", style="bold")
        if not s.commands:
            text.append("none", style="dim")
            continue
        shown = s.commands[-SHOWN_COMMANDS:]
        if len(s.commands) > len(shown):
            text.append(f"… {len(s.commands) - len(shown)} earlier\n   ", style="dim")
        text.append("\n   ".join(f"{clock_text(t, s.snapshot.tick_s)} {describe_command(c)}"
                                  for t, c in shown))
    return text


class CompareScreen(ModalScreen[str | None]):
    """Dismissed with the name of the branch to go on in, or None."""

    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("enter", "choose", "Continue in it", show=True),
        Binding("left", "move(-1)", "Previous", show=False),
        Binding("right", "move(1)", "Next", show=False),
        Binding("x,delete", "drop", "Drop it", show=True),
        *(Binding(f"{i},{name.lower()}", f"choose('{name}')", f"Continue in {name}",
                  show=False) for i, name in enumerate("ABCD", 1)),
        # The clock waits while the branches are compared at one time.
        Binding("space,full_stop,n", "hold_clock", "Clock", show=False),
    ]

    class DropRequested(Message):
        def __init__(self, branch: str) -> None:
            super().__init__()
            self.branch = branch

    def __init__(self, names: Sequence[str], time_s: float, tick_s: float) -> None:
        super().__init__()
        self.names = list(names)
        self.time_s, self.tick_s = time_s, tick_s
        self.summaries: list[BranchSummary] = []
        self.selected: str | None = None
        self._armed: str | None = None  # the branch a first `x` asked to drop

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog -wide", id="compare"):
            yield Static("What if: the branches side by side", classes="dialog--title")
            yield Static(self._catching_up_text(0, 0), id="compare-note",
                         classes="dialog--body")
            yield Static(id="compare-table")
            yield Static(id="compare-commands", classes="dialog--body")
            yield Static("←/→ choose · Enter or 1-4/a-d: continue in that branch · x: drop "
                         "it · Esc: back", classes="dialog--keys")
        yield KeyBar()

    def _catching_up_text(self, done: int, total: int) -> str:
        when = clock_text(self.time_s, self.tick_s)
        if len(self.names) < 2:
            return f"Only one branch so far, at {when}. Press y (outside) to fork it."
        share = f" {done}/{total} ticks ({done / total:.0%})" if total else ""
        return (f"Bringing the other branches to {when} (each runs its own timeline and "
                f"commands, nothing new)…{share}")

    # -- attributes down (from the App) -----------------------------------------------
    def show_progress(self, done: int, total: int) -> None:
        self.query_one("#compare-note", Static).update(self._catching_up_text(done, total))

    def show_branches(self, summaries: Sequence[BranchSummary]) -> None:
        self.summaries = list(summaries)
        names = [s.name for s in self.summaries]
        if self.selected not in names:
            current = next((s.name for s in self.summaries if s.current), None)
            self.selected = current or (names[0] if names else None)
        self._redraw()

    def _redraw(self) -> None:
        summaries = self.summaries
        here = next((s for s in summaries if s.current), None)
        note = Text()
        if here is not None:
            when = clock_text(here.snapshot.time_s, here.snapshot.tick_s)
            note.append(f"All branches at {when} unless marked ahead; ★ marks the better "
                        f"value. You are in {here.name}.")
        if len(summaries) < 2:
            note = Text(self._catching_up_text(0, 0))
        self.query_one("#compare-note", Static).update(note)
        self.query_one("#compare-table", Static).update(compare_table(summaries,
                                                                      self.selected))
        self.query_one("#compare-commands", Static).update(commands_text(summaries))

    # -- keys -------------------------------------------------------------------------
    def _ready(self) -> bool:
        if not self.summaries:
            self.notify("Still bringing the branches to the same time…", severity="warning")
        return bool(self.summaries)

    def action_move(self, step: int) -> None:
        names = [s.name for s in self.summaries]
        if not names:
            return
        i = names.index(self.selected) if self.selected in names else 0
        self.selected = names[(i + step) % len(names)]
        self._armed = None
        self._redraw()

    def action_choose(self, name: str | None = None) -> None:
        if not self._ready():
            return
        name = name or self.selected
        if name not in [s.name for s in self.summaries]:
            self.notify(f"There is no branch {name}", severity="warning")
            return
        self.dismiss(name)

    def action_drop(self) -> None:
        if not self._ready() or self.selected is None:
            return
        if any(s.current and s.name == self.selected for s in self.summaries):
            self.notify(f"You are in {self.selected}: continue in another branch to drop it",
                        severity="warning")
            return
        if self._armed != self.selected:
            self._armed = self.selected
            self.notify(f"Press x again to drop branch {self.selected} (it cannot be undone)")
            return
        self._armed = None
        self.post_message(self.DropRequested(self.selected))

    def action_hold_clock(self) -> None:
        self.notify("The clock waits while you compare: Esc first", severity="warning")

    def action_close(self) -> None:
        self.dismiss(None)
