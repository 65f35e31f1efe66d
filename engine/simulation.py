"""The Simulation facade: the one API the console, the CLI and tests use."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from engine import control, hugepages, invariants, kernels, persistence, series
from engine.commands import Accepted, Command, Rejected, Verdict, parse_command
from engine.errors import InputError
from engine.events import Event
from engine.hashtable import RegionMap
from engine.memory.boot import Progress
from engine.migration.report import migration_report
from engine.network import build_topology
from engine.pending import due_commands, projected
from engine.pipeline import TICK_PHASES
from engine.report import Snapshot, report, snapshot
from engine.rng import Streams
from engine.scenario import ScenarioSpec, format_loc, load_scenario
from engine.vmlife import build_state
from engine.world import World


class InvariantViolation(AssertionError):
    pass


class Simulation:
    def __init__(self, world: World, check: bool = False) -> None:
        self.world = world
        self.check = check
        # (tick, commands queued, timeline position) -> the world they will make
        self._projection: tuple[tuple[int, int, int], World] | None = None

    @classmethod
    def from_spec(cls, spec: ScenarioSpec, seed: int | None = None, check: bool = False,
                  progress: Progress | None = None) -> Simulation:
        """Build the world; `progress(done, total)`, if given, follows the VMs powered on
        (for a progress bar while a big world builds)."""
        streams = Streams(spec.scenario.seed if seed is None else seed)
        state = build_state(spec, streams, progress)
        world = World(spec=spec, state=state, streams=streams, topology=build_topology(spec))
        sim = cls(world, check)
        sim._check()
        return sim

    @classmethod
    def from_file(cls, path: str | Path, seed: int | None = None, check: bool = False,
                  progress: Progress | None = None) -> Simulation:
        return cls.from_spec(load_scenario(path), seed, check, progress)

    @classmethod
    def from_state(cls, blob: tuple[dict[str, Any], persistence.Arrays],
                   source: str = "<save>", check: bool = False,
                   verify: bool = False) -> Simulation:
        """A world from save_state()'s blob. In-memory blobs (a console fork) are trusted;
        give verify=True for one from elsewhere (app/savefile.py verifies every file)."""
        return cls(persistence.from_plain(blob[0], blob[1], source, verify=verify), check)

    # -- commands -------------------------------------------------------------------
    def submit(self, command: Command | dict[str, Any]) -> Verdict:
        """Check a command now; if accepted it applies at the start of the next tick."""
        if isinstance(command, dict):
            try:
                command = parse_command(command)
            except ValidationError as err:
                detail = err.errors(include_url=False)[0]
                msg = str(detail["msg"]).removeprefix("Value error, ")
                return Rejected(f"{format_loc(detail['loc'])}: {msg}")
        reason = control.check(self.judging_world(), command)
        if reason is not None:
            return Rejected(reason)
        self.world.pending.append(command)
        return Accepted()

    def preview(self, command: Command) -> Verdict:
        """What submit would answer, without queueing anything."""
        reason = control.check(self.judging_world(), command)
        return Accepted() if reason is None else Rejected(reason)

    def judging_world(self) -> World:
        """The world a new command is checked against: as it will be at the start of the
        next tick, once the timeline entries due then and the commands already queued
        have applied (engine/pending.py), since that is when the new one applies."""
        world = self.world
        if not world.pending and not due_commands(world):
            return world
        key = (world.state.tick, len(world.pending), world.timeline_next)
        if self._projection is None or self._projection[0] != key:
            self._projection = (key, projected(world))
        return self._projection[1]

    def pending(self) -> tuple[Command, ...]:
        """Commands accepted and waiting for the next tick."""
        return tuple(self.world.pending)

    # -- time -----------------------------------------------------------------------
    def step(self, n: int = 1) -> list[Event]:
        events: list[Event] = []
        for _ in range(n):
            self.world.events = []
            # A new world's first tick faults in much fresh memory: no huge-page collapse
            # beside it (only a world just built has one running).
            first = self.world.state.tick == 0
            with hugepages.hold() if first else contextlib.nullcontext(), kernels.settled():
                for _name, phase in TICK_PHASES:
                    phase(self.world)
            self.world.state.tick += 1
            events.extend(self.world.events)
            self._check()
        return events

    def _check(self) -> None:
        if self.check:
            problems = invariants.check(self.world.state)
            if problems:
                raise InvariantViolation(f"tick {self.world.state.tick}: " + "; ".join(problems))

    # -- views ----------------------------------------------------------------------
    @property
    def tick(self) -> int:
        return self.world.state.tick

    @property
    def time_s(self) -> float:
        return self.world.state.time_s

    @property
    def spec(self) -> ScenarioSpec:
        return self.world.spec

    def snapshot(self) -> Snapshot:
        return snapshot(self.world)

    def report(self) -> dict[str, Any]:
        return report(self.world)

    def series_sample(self) -> series.Sample:
        """The world now as time-series columns, gathered from the arrays (engine/series)."""
        return series.sample(self.world)

    def migrations(self) -> list[dict[str, Any]]:
        """Every migration so far, as report()["migrations"] has them (QEMU's counters)."""
        return [migration_report(self.world, m) for m in self.world.state.migrations]

    def save_state(self) -> tuple[dict[str, Any], persistence.Arrays]:
        """The world as plain data and arrays of its own: a copy that later ticks leave
        alone (a console fork, a checkpoint)."""
        meta, arrays = self.plain_state()
        return meta, {k: v.copy() for k, v in arrays.items()}

    def plain_state(self) -> tuple[dict[str, Any], persistence.Arrays]:
        """The world as plain data and arrays without copying them: many arrays are the
        world's own, so they are right only until the next step or command. For a
        writer that is done before then (app/savefile.py): a copy of the data center's
        arrays would be another 4 GiB."""
        return persistence.to_plain(self.world)

    def digest(self) -> str:
        """SHA-256 over everything that determines the future: arrays and scalars. The KSM
        trees count by their entries, not their slots: which slot an entry sits in follows
        the order keys went in, which the compiled and the numpy KSM pass make differently
        (memory/ksm_pass.py), as do the stable table's compiled and numpy rebuilds
        (hashtable.U64Map._rebuild), and no lookup's answer depends on it."""
        meta, arrays = persistence.to_plain(self.world)
        arrays = {name: a for name, a in arrays.items()
                  if not name.startswith(("sharing.stable.", "sharing.unstable."))}
        arrays.update(_tree_entries(self.world))
        h = hashlib.sha256()
        for name in sorted(arrays):
            h.update(name.encode())
            h.update(_raw_bytes(arrays[name]))
        for key in ("tick", "next_unique_content", "money", "streams", "timeline_next",
                    "migrations"):
            h.update(repr(meta[key]).encode())
        return h.hexdigest()


def _tree_entries(world: World) -> dict[str, npt.NDArray[Any]]:
    """The stable tree's entries by key, and the unstable trees' by host and key."""
    sharing = world.state.sharing
    keys, vals, aux = sharing.stable.items()
    order = np.argsort(keys)
    out = {"sharing.stable.entries": np.stack([keys[order], vals[order].astype(np.uint64),
                                               aux[order]])}
    unstable = sharing.unstable
    if isinstance(unstable, RegionMap):
        keys, vals, region = unstable.items_in()
    else:
        keys, vals, _ = unstable.items()
        region = np.zeros(keys.size, np.int64)
    order = np.lexsort((keys, region))
    out["sharing.unstable.entries"] = np.stack([region[order].astype(np.uint64), keys[order],
                                                vals[order].astype(np.uint64)])
    return out


def _raw_bytes(a: npt.NDArray[Any]) -> memoryview:
    """The bytes tobytes() would give, as a view of the array's memory: no copy of it
    (the page arrays are hundreds of MiB on a big world), unless it is not contiguous.
    A flat uint8 view works for any dtype (bool, structured) and shape (0-d, empty)."""
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8).data


__all__ = ["Simulation", "InvariantViolation", "InputError"]
