"""What-if branches for the App: `y` forks the world, `Y` compares the branches.

A branch is a whole Simulation (a bit-identical clone: `Simulation.from_state(
sim.save_state())`) with its own EngineDriver, and it keeps its own console state: the
sparkline histories, the event archive (the log shows the branch's own events when you
switch to it) and the selected VM. At most four branches, A to D, and only as many as fit
a memory budget. Forking copies the world in a thread worker under the driver's lock, so
the engine never steps while it is copied; comparing first runs every other branch
headless (its own timeline and its own earlier commands, nothing new) up to the current
branch's time, in another thread worker. The clock pauses on fork, compare and switch.

OvercommitApp derives from Forking and provides its driver, log (`_note`), clock
(`_pause`), `_install` and `refresh_views`. Whatever replaces the world by other means
(loading a save, a campaign level) leaves the branches behind: they are dropped within a
second, and a fork or compare afterwards starts a new tree from the new world.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import App
from textual.worker import get_current_worker

from app.console.clock import Clock
from app.console.driver import EngineDriver
from app.console.format import clock_text
from app.console.history import Histories
from app.console.screens.compare_screen import BranchSummary, CompareScreen
from app.console.screens.overview import OverviewScreen
from engine import Command, Event, Simulation, Snapshot, persistence
from engine.commands import Verdict
from engine.units import format_bytes

BRANCH_NAMES = "ABCD"
# All branches' world state together: the 100 x 1,000 benchmark data center (4.25GiB a
# world) may fork once; the tutorial (46MiB) has room for all four.
BRANCH_BUDGET_BYTES = 12 * 2**30
MEMORY_HEADROOM = 0.8  # a new branch may take at most this share of the free memory
QUIET_FORK_BYTES = 256 * 2**20  # smaller worlds fork without a "copying..." notice
PROGRESS_S = 0.1  # how often the compare screen hears how the catching up goes
REPLAY_EVENTS = 200  # the log shows this many of a branch's events when you switch to it
PRUNE_S = 1.0  # how often to look whether the world was replaced under the branches


class BranchDriver(EngineDriver):
    """A branch's driver: also keeps the commands accepted in the branch, runs it headless
    up to a tick, measures and clones its world, all under the one lock."""

    def __init__(self, sim: Simulation, generation: int = 0,
                 lock: threading.Lock | None = None) -> None:
        super().__init__(sim, generation)
        if lock is not None:  # adopting a driver that a worker may still be using
            self._lock = lock
        self.commands: list[tuple[float, Command]] = []  # (time submitted, command)
        self.headless: list[Event] = []  # events of ticks run while out of sight

    @classmethod
    def adopt(cls, driver: EngineDriver) -> BranchDriver:
        """The same world, lock and generation, now a branch."""
        new = cls(driver.sim, driver.generation, driver._lock)
        new.tick_cost_s, new.snapshot_cost_s = driver.tick_cost_s, driver.snapshot_cost_s
        return new

    def submit(self, command: Command) -> Verdict:
        with self._lock:
            verdict = self._submit(command)
            if verdict.ok:
                self.commands.append((self.sim.time_s, command))
            return verdict

    def tick(self) -> int:
        with self._lock:
            return self.sim.tick

    def run_to(self, tick: int, cancelled: Callable[[], bool],
               ran: Callable[[], object]) -> None:
        """Step until the world reaches `tick` (never past it, even if two threads try)."""
        while not cancelled():
            with self._lock:
                if self.sim.tick >= tick:
                    return
                self.headless.extend(self.sim.step(1))
            ran()

    def take_headless(self) -> list[Event]:
        with self._lock:
            events, self.headless = self.headless, []
            return events

    def state_bytes(self) -> int:
        """What a clone of the world costs: the arrays a save or a clone copies."""
        with self._lock:
            return sum(a.nbytes for a in persistence.to_plain(self.sim.world)[1].values())

    def clone(self) -> Simulation:
        with self._lock:
            return Simulation.from_state(self.sim.save_state())


@dataclass(eq=False)
class Branch:
    name: str
    driver: BranchDriver
    parent: str | None = None  # forked from (None: the first world)
    forked_at_s: float | None = None
    state_bytes: int = 0
    # The console's state of the branch while another one is on screen.
    histories: Histories = field(default_factory=Histories)
    events: deque[tuple[int, Event]] = field(default_factory=deque)
    selected_vm: str | None = None


def available_memory() -> int | None:
    """The machine's available memory (Linux), or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class Forking(App[int]):
    """The App's what-if branches; OvercommitApp provides the hooks below."""

    driver: EngineDriver
    snapshot: Snapshot
    histories: Histories
    events: deque[tuple[int, Event]]
    selected_vm: str | None
    clock: Clock
    _event_seq: int
    _pending_log: list[Event]
    _steps_owed: int

    _tree: list[Branch] | None = None  # None until the first fork or compare
    _forking = False  # a clone is being made
    _last_generation = 0

    if TYPE_CHECKING:  # OvercommitApp defines these; declared here for the type checker
        def _note(self, kind: str, message: str, vm: str | None = None) -> None: ...

        def _pause(self) -> None: ...

        def _install(self, driver: EngineDriver) -> None: ...

        def _overview(self) -> OverviewScreen | None: ...

        def refresh_views(self) -> None: ...

    def on_mount(self) -> None:  # Textual calls every class's on_mount
        self.set_interval(PRUNE_S, self._drop_stale_branches)

    # -- the tree -----------------------------------------------------------------------
    def _branches(self) -> list[Branch]:
        """The branches, the console's world among them (a world installed by other means,
        such as a load, starts a new tree with itself as A)."""
        if self._tree is None or self._current_or_none() is None:
            driver = self.driver
            if not isinstance(driver, BranchDriver):
                driver = self.driver = BranchDriver.adopt(driver)
            self._tree = [Branch("A", driver, histories=self.histories, events=self.events,
                                 selected_vm=self.selected_vm)]
        return self._tree

    def _current_or_none(self) -> Branch | None:
        return next((b for b in self._tree or () if b.driver is self.driver), None)

    def _current(self) -> Branch:
        current = self._current_or_none()
        assert current is not None, "the console's world is one of the branches"
        return current

    def _drop_stale_branches(self) -> None:
        """Drop the branches of a world that was replaced (a load, a campaign level)."""
        tree = self._tree
        if tree is not None and self._current_or_none() is None:
            self._tree = None
            self.workers.cancel_group(self, "compare")
            if len(tree) > 1:
                gone = ", ".join(b.name for b in tree)
                self._note("branch", f"the branches of the previous world ({gone}) were "
                                     "dropped")

    def _fresh_generation(self) -> int:
        gens = [b.driver.generation for b in self._tree or ()]
        self._last_generation = max(self._last_generation, self.driver.generation, *gens) + 1
        return self._last_generation

    def _hold_clock(self) -> None:
        """Pause, and stop a stepping worker after its current tick."""
        self._pause()
        self.workers.cancel_group(self, "engine")
        self._steps_owed = 0
        self.refresh_views()

    def _stash(self, branch: Branch) -> None:
        branch.histories, branch.events = self.histories, self.events
        branch.selected_vm = self.selected_vm

    def _enter(self, branch: Branch) -> None:
        """Make the branch the console's world, with its own histories and archive."""
        branch.driver.generation = self._fresh_generation()
        self._install(branch.driver)
        self.histories = branch.histories
        self.histories.record(self.snapshot)
        self.events = branch.events
        self.selected_vm = branch.selected_vm

    # -- y: fork --------------------------------------------------------------------------
    def action_fork(self) -> None:
        if self._forking:
            self.notify("A fork is being made already", severity="warning")
            return
        tree = self._branches()
        if len(tree) >= len(BRANCH_NAMES):
            self._fork_refused(f"at most {len(BRANCH_NAMES)} branches ({BRANCH_NAMES[0]} to "
                               f"{BRANCH_NAMES[-1]}); drop one in the comparison (Y, then x)")
            return
        self._hold_clock()
        self._forking = True
        source = self._current()
        others = sum(b.state_bytes for b in tree if b is not source)
        self._fork_in_thread(source, others)

    @work(thread=True, exclusive=True, group="fork")
    def _fork_in_thread(self, source: Branch, others_bytes: int) -> None:
        size = source.driver.state_bytes()
        refusal = self._refusal(size, others_bytes, available_memory())
        if refusal is not None:
            self.call_later(self._fork_refused, refusal)
            return
        if size >= QUIET_FORK_BYTES:
            self.call_later(self.notify, f"Copying the world ({format_bytes(size)}) for the "
                                         "new branch…", title="Fork")
        try:
            sim = source.driver.clone()
        except MemoryError:
            self.call_later(self._fork_refused, "not enough memory to copy the world")
            return
        self.call_later(self._forked, source, sim, size)

    def _refusal(self, size: int, others: int, available: int | None) -> str | None:
        total = others + 2 * size  # the branches so far, this world and its copy
        if total > BRANCH_BUDGET_BYTES:
            return (f"the branches would take {format_bytes(total)}, over the "
                    f"{format_bytes(BRANCH_BUDGET_BYTES)} budget (this world is "
                    f"{format_bytes(size)}); drop a branch in the comparison (Y, then x)")
        if available is not None and size > MEMORY_HEADROOM * available:
            return (f"a copy takes {format_bytes(size)} and only {format_bytes(available)} "
                    "of memory is free")
        return None

    def _fork_refused(self, reason: str) -> None:
        self._forking = False
        self._note("branch", f"cannot fork: {reason}")
        self.notify(reason[:1].upper() + reason[1:], title="Cannot fork", severity="error")

    def _forked(self, source: Branch, sim: Simulation, size: int) -> None:
        self._forking = False
        tree = self._branches()
        if source not in tree or source is not self._current_or_none():
            self._note("branch", "the fork was dropped: the world changed while it was copied")
            return
        self._hold_clock()  # again: the clock may have been started while copying
        source.state_bytes = size
        if len(tree) == 1:  # the first fork: the first world's commands count from here
            source.driver.commands.clear()
        taken = {b.name for b in tree}
        name = next(n for n in BRANCH_NAMES if n not in taken)
        when = clock_text(sim.time_s, self.snapshot.tick_s)
        waits_at = clock_text(self.snapshot.time_s, self.snapshot.tick_s)
        # Noted before the switch, so that both branches' logs tell of the fork.
        self._note("branch", f"forked at {when}: now in branch {name}; {source.name} waits "
                             f"at {waits_at}; Y compares")
        self._stash(source)
        branch = Branch(name, BranchDriver(sim), source.name, sim.time_s, size,
                        self.histories.copy(),
                        deque(self.events, maxlen=self.events.maxlen), self.selected_vm)
        tree.append(branch)
        self._enter(branch)

    # -- Y: compare -----------------------------------------------------------------------
    def action_compare(self) -> None:
        if self._forking:
            self.notify("A fork is being made: compare once it is done", severity="warning")
            return
        tree = self._branches()
        self._hold_clock()
        current = self._current()
        screen = CompareScreen([b.name for b in tree], self.snapshot.time_s,
                               self.snapshot.tick_s)
        self.push_screen(screen, self._compare_closed)
        self._catch_up(screen, current, list(tree))

    @work(thread=True, exclusive=True, group="compare")
    def _catch_up(self, screen: CompareScreen, current: Branch, tree: list[Branch]) -> None:
        worker = get_current_worker()
        target = current.driver.tick()
        others = [b for b in tree if b is not current]
        total = sum(max(target - b.driver.tick(), 0) for b in others)
        done, last = 0, 0.0

        def ran() -> None:
            nonlocal done, last
            done += 1
            now = time.perf_counter()
            if now - last >= PROGRESS_S:
                last = now
                self.call_later(self._compare_progress, screen, done, total)

        for branch in others:
            branch.driver.run_to(target, lambda: worker.is_cancelled, ran)
        if worker.is_cancelled:
            return
        snapshots = [b.driver.snapshot() for b in tree]
        self.call_later(self._compared, screen, tree, snapshots)

    def _compare_progress(self, screen: CompareScreen, done: int, total: int) -> None:
        if screen.is_attached:
            screen.show_progress(done, total)

    def _archive_headless(self, branch: Branch) -> None:
        for event in branch.driver.take_headless():
            self._event_seq += 1
            branch.events.append((self._event_seq, event))

    def _compared(self, screen: CompareScreen, tree: list[Branch],
                  snapshots: list[Snapshot]) -> None:
        for branch in tree:
            if branch.driver is not self.driver:
                self._archive_headless(branch)
        if screen.is_attached and self._tree is not None:
            screen.show_branches([self._summary(b, s) for b, s in zip(tree, snapshots,
                                                                      strict=True)
                                  if b in self._tree])

    def _summary(self, branch: Branch, snap: Snapshot) -> BranchSummary:
        return BranchSummary(branch.name, snap, branch.driver is self.driver, branch.parent,
                             branch.forked_at_s, tuple(branch.driver.commands))

    @on(CompareScreen.DropRequested)
    def _drop_requested(self, message: CompareScreen.DropRequested) -> None:
        tree = self._tree or []
        branch = next((b for b in tree if b.name == message.branch), None)
        if branch is None or branch.driver is self.driver:
            return
        tree.remove(branch)
        self._note("branch", f"dropped branch {branch.name}")
        for shown in [s for s in self.screen_stack if isinstance(s, CompareScreen)]:
            shown.show_branches([s for s in shown.summaries if s.name != branch.name])

    def _compare_closed(self, choice: str | None) -> None:
        self.workers.cancel_group(self, "compare")
        branch = next((b for b in self._tree or () if b.name == choice), None)
        if branch is not None and branch.driver is not self.driver:
            self._switch(branch)

    def _switch(self, branch: Branch) -> None:
        self._hold_clock()
        current = self._current()
        self._stash(current)
        while len(self.screen_stack) > 1 and not isinstance(self.screen, OverviewScreen):
            self.pop_screen()
        self._archive_headless(branch)
        self._enter(branch)
        overview = self._overview()
        if overview is not None:  # the log tells the branch's own story
            overview.clear_log()
        self._pending_log = [event for _, event in list(self.events)[-REPLAY_EVENTS:]]
        waiting = [b.name for b in self._tree or () if b is not branch]
        self._note("branch", f"now in branch {branch.name} at "
                             f"{clock_text(self.snapshot.time_s, self.snapshot.tick_s)}; "
                             f"{', '.join(waiting)} wait{'s' if len(waiting) == 1 else ''}; "
                             "Y compares")
