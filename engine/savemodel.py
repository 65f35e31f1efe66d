"""The schema of a save's plain data (engine/persistence.py `to_plain`), with ranges.

A save is input like a scenario: an edited or damaged one must be refused with the field
named, never crash the engine later. Every key of the world's dict has a type and a
finite range here. The money ledger and a migration's record follow their dataclasses
(engine/state_tables.py `Money`, engine/migration/model.py `Round`), so a
field added there is checked too: a number gets a generic finite range, a field of
another type fails tests/engine/test_ranges.py until it is given one here.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, create_model, model_validator

from engine.commands import Command
from engine.migration.model import MAX_ROUNDS_KEPT, Round
from engine.ranges import MAX_SEED, MAX_TICKS, Range
from engine.rng import STREAM_NAMES
from engine.scenario import ScenarioSpec
from engine.spec import VMSpec
from engine.spec_types import Count, Frozen, Ident, Line, Signed
from engine.state import UNIQUE_CONTENT_BASE
from engine.state_tables import Money
from engine.world import HISTORY_TICKS

# 2: pages.touched holds the code of the last sampling period a page was touched in
# (memory/recency.py), not one bit per period; older saves are converted on load.
# 3: the shared frames' keys are two arrays, the shared frames (ascending) and their keys
# (FRAME_KEY_FRAMES, FRAME_KEY_KEYS), not sharing.frame_key's one key per frame (0 = not
# shared), which older saves hold and loading converts; and KSM's scan ticks are saved as
# held in memory, KSM_SCANNED (tick + 1, 0 never), not sharing.ksm_scanned_at (the tick,
# -1 never): a save, digest or fork no longer makes a converted copy (0.5 GiB).
# 4: `vm_specs` holds only the VMs whose spec is not the scenario's own (changed by a
# command, or added since), at the indices `vm_specs_at` gives; the others are the
# scenario's as it expands them. The big data center's 100,000 VMs took 75 MB of TOML.
# 5: arrays the build need not write are held and saved as offsets whose zero is the new
# world's value: pages.written_before (the tick of a page's last write + 1, 0 never)
# replaces pages.written_at (the tick, -1 never), and FREE_STACK_DELTA (each free-stack
# slot's frame minus the slot) frames.free_stack (the frames); loading converts both.
SCHEMA_VERSION = 5
FREE_STACK_DELTA = "frames.free_stack_delta"  # int32 per frame slot
FRAME_KEY_FRAMES = "sharing.frame_key_frames"  # int32, strictly increasing
FRAME_KEY_KEYS = "sharing.frame_key_keys"  # uint64, nonzero, one per frame above
KSM_SCANNED = "sharing.ksm_scanned"  # int32 per page: tick of its last KSM scan + 1, 0 never
MAX_ITEMS = 1_000_000  # VMs, migrations, pending commands in one save

Int64 = Annotated[int, Range(-1, 2**63 - 1, "int")]  # -1: the engine's "none yet"
U128 = Annotated[int, Range(0, 2**128 - 1, "int")]
Threshold = Annotated[float, Range(0.0, 1.0, lo_open=True, hi_open=True)]

_SCALARS: dict[str, Any] = {"float": Signed, "int": Int64, "bool": bool, "str": Line}


def _from_dataclass(cls: type, name: str, special: dict[str, Any],
                    skip: tuple[str, ...] = ()) -> type[BaseModel]:
    """A frozen model with one field per dataclass field: numbers get a generic finite
    range unless `special` gives a type; missing keys take the dataclass default (older
    saves load). A field of an unknown type becomes Any, which the range test flags."""
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = special.get(f.name, _SCALARS.get(str(f.type), Any))
        if f.default is not dataclasses.MISSING:
            fields[f.name] = (tp, f.default)
        else:
            fields[f.name] = (tp, ...)
    return create_model(name, __base__=Frozen, **fields)


MoneyPlain = _from_dataclass(Money, "MoneyPlain", {
    "migration_bytes": Annotated[int, Range(0, 2**63 - 1, "int")]})
RoundPlain = _from_dataclass(Round, "RoundPlain", {})


class MigrationsPlain(Frozen):
    """The migration table's plain part (engine/migration/model.py `to_plain`): its row
    count, each row's end reason and kept rounds, the arenas' live sizes. The columns and
    the arenas are arrays (engine/savecheck.py)."""

    n: Annotated[int, Range(0, MAX_ITEMS, "int")]
    reasons: list[Line] = Field(max_length=MAX_ITEMS)
    rounds: list[Annotated[list[RoundPlain], Field(max_length=MAX_ROUNDS_KEPT)]] = Field(  # type: ignore[valid-type]
        max_length=MAX_ITEMS)
    live: tuple[Count, Count, Count, Count]

    @model_validator(mode="after")
    def _rows(self) -> MigrationsPlain:
        if len(self.reasons) != self.n or len(self.rounds) != self.n:
            raise ValueError(f"{self.n} migrations but {len(self.reasons)} reasons and "
                             f"{len(self.rounds)} round lists")
        return self


# A save from before the table: one record per migration, read by
# engine/migration/model.py `from_old_saves` (which refuses one still running).
LegacyRound = Annotated[dict[Ident, Signed], Field(max_length=50)]
LegacyValue = bool | Signed | Line | Annotated[list[LegacyRound], Field(max_length=MAX_ITEMS)]
LegacyMigration = Annotated[dict[Ident, LegacyValue], Field(max_length=200)]


class StreamPlain(Frozen):
    """A PCG64 generator's state (numbers as strings: TOML integers are 64-bit)."""

    state: U128
    inc: U128
    has_uint32: Literal[0, 1]
    uinteger: Annotated[int, Range(0, 2**32 - 1, "int")]


class StreamsPlain(Frozen):
    seed: Annotated[int, Range(0, MAX_SEED, "int")]
    streams: dict[Ident, StreamPlain]

    @model_validator(mode="before")
    @classmethod
    def _layout(cls, data: Any) -> Any:
        # The engine writes {"seed": s, "content": {...}, ...}: one key per stream.
        if not isinstance(data, dict) or "streams" in data:
            return data
        return {"seed": data.get("seed"), "streams": {k: v for k, v in data.items()
                                                      if k != "seed"}}

    @model_validator(mode="after")
    def _known(self) -> StreamsPlain:
        unknown = sorted(set(self.streams) - set(STREAM_NAMES))
        if unknown:
            raise ValueError(f"unknown random streams {unknown}; expected some of "
                             f"{', '.join(STREAM_NAMES)}")
        return self


class SaveMeta(Frozen):
    """The world's plain data in a save (the TOML's [world] table)."""

    schema_version: Annotated[int, Range(1, SCHEMA_VERSION, "int")]
    scenario: ScenarioSpec
    vm_specs: list[VMSpec] = Field(max_length=MAX_ITEMS)
    # Which VMs vm_specs holds (schema 4); absent, it holds every VM (older saves).
    vm_specs_at: Annotated[list[Count], Field(max_length=MAX_ITEMS)] | None = None
    _all_vm_specs: list[VMSpec] = PrivateAttr(default_factory=list)
    tick: Annotated[int, Range(0, MAX_TICKS, "int")]
    next_unique_content: Annotated[int, Range(UNIQUE_CONTENT_BASE, 2**64 - 1, "int")]
    money: MoneyPlain  # type: ignore[valid-type]
    streams: StreamsPlain
    pending: list[Command] = Field(max_length=MAX_ITEMS)
    timeline_next: Count
    history: dict[Ident, Annotated[list[Signed], Field(max_length=HISTORY_TICKS)]] = Field(
        max_length=1000)
    objective_verdicts: list[tuple[Count, Signed, bool]] = Field(max_length=MAX_ITEMS)
    sharing_salting: Literal[0, 1, 2]
    reclaim_thresholds: tuple[Threshold, Threshold, Threshold, Threshold]
    reclaim_realloc: bool
    migrations: MigrationsPlain | Annotated[list[LegacyMigration], Field(max_length=MAX_ITEMS)]

    @model_validator(mode="after")
    def _consistent(self) -> SaveMeta:
        if self.timeline_next > len(self.scenario.timeline):
            raise ValueError(f"timeline_next {self.timeline_next} is past the timeline's "
                             f"{len(self.scenario.timeline)} entries")
        n_obj = len(self.scenario.objectives)
        for i, _value, _ok in self.objective_verdicts:
            if i >= n_obj:
                raise ValueError(f"objective_verdicts names objective {i} of {n_obj}")
        high, soft, hard, low = self.reclaim_thresholds
        if not high > soft > hard > low:
            raise ValueError("reclaim_thresholds must decrease: high > soft > hard > low")
        scenario_vms = self.scenario.all_vms()
        every = expand_vm_specs(scenario_vms, self.vm_specs, self.vm_specs_at)
        ids = [v.id for v in every]
        if len(set(ids)) != len(ids):
            raise ValueError("vm_specs: duplicate VM ids")
        if [v.id for v in scenario_vms] != ids[:len(scenario_vms)] or any(
                a.memory != b.memory for a, b in zip(scenario_vms, every, strict=False)):
            raise ValueError("vm_specs: the first VMs must be the scenario's, in order")
        self._all_vm_specs = every
        return self

    def all_vm_specs(self) -> list[VMSpec]:
        """Every VM's spec, the scenario's own ones included (expand_vm_specs)."""
        return self._all_vm_specs


def expand_vm_specs(scenario_vms: list[VMSpec], specs: list[VMSpec],
                    at: list[int] | None) -> list[VMSpec]:
    """Every VM's spec from a save's `vm_specs` and `vm_specs_at`: the scenario's VMs with
    those at `at` replaced, then the VMs added since (at the indices after them, each
    once). Without `at` (saves before schema 4), `specs` are every VM's."""
    if at is None:
        return list(specs)
    if len(at) != len(specs):
        raise ValueError(f"vm_specs_at: one index per VM in vm_specs expected, got {len(at)} "
                         f"for {len(specs)}")
    if any(b <= a for a, b in zip(at, at[1:], strict=False)):
        raise ValueError("vm_specs_at: indices must ascend, each once")
    n = len(scenario_vms)
    added = [i for i in at if i >= n]
    if added != list(range(n, n + len(added))):
        raise ValueError(f"vm_specs_at: VMs added after the scenario's {n} must follow them")
    every = list(scenario_vms)
    for i, spec in zip(at, specs, strict=True):
        if i < n:
            every[i] = spec
        else:
            every.append(spec)
    return every


class SaveHeader(Frozen):
    """The TOML's [overcommit_save] table: which sidecar holds the arrays, and its hash."""

    sidecar: Annotated[str, Field(max_length=255, pattern=r"^[A-Za-z0-9_.-]+\.arrays\.npz$")]
    sidecar_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    save_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")] | None = None  # older saves
    scenario: Line = ""
    tick: Annotated[int, Range(0, MAX_TICKS, "int")] = 0

    @model_validator(mode="after")
    def _plain_name(self) -> SaveHeader:
        if self.sidecar.startswith("."):
            raise ValueError("sidecar: expected a file name in the save's folder")
        return self


__all__ = ["FRAME_KEY_FRAMES", "FRAME_KEY_KEYS", "KSM_SCANNED", "SCHEMA_VERSION", "SaveHeader",
           "SaveMeta"]
