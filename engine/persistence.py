"""World <-> plain data for saves: a TOML-able dict plus named numpy arrays.

No file I/O here (the app writes files). The dict carries a schema version. Loading
trusts nothing: the dict is validated by its schema (engine/savemodel.py: a key added to
`to_plain` needs its field there), the arrays by engine/savecheck.py, and the rebuilt
world by the engine's invariant check; the first problem is an InputError naming it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from engine import invariants
from engine.commands import command_to_plain, parse_command
from engine.crosscheck import check_scenario
from engine.errors import InputError
from engine.hashtable import FrameKeys, HintTable, U64Map
from engine.memory import overhead, recency
from engine.migration.model import MigrationTable, table_of
from engine.migration.model import from_old_saves as old_migrations
from engine.network import build_topology
from engine.rng import Streams
from engine.savecheck import check_arrays
from engine.savemodel import (
    FRAME_KEY_FRAMES,
    FRAME_KEY_KEYS,
    FREE_STACK_DELTA,
    KSM_SCANNED,
    SCHEMA_VERSION,
    MigrationsPlain,
    SaveMeta,
    expand_vm_specs,
)
from engine.scenario import ScenarioSpec, first_error
from engine.spec import VMSpec
from engine.state import VM_ARRAY_DTYPES, VM_ARRAY_SHAPES, Frames, Hosts, Pages, State, VMs
from engine.state_tables import (
    HOST_RECLAIM_ARRAYS,
    HOST_SHARING_ARRAYS,
    Money,
    Overhead,
    Reclaim,
    Sharing,
)
from engine.vmlife import build_hosts
from engine.workloads import schedule
from engine.world import HISTORY_TICKS, World

Arrays = dict[str, npt.NDArray[Any]]


def to_plain(world: World) -> tuple[dict[str, Any], Arrays]:
    state = world.state
    money = state.money
    meta: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "scenario": world.spec.model_dump(mode="json", exclude_none=True),
        **_vm_specs(world),
        "tick": state.tick,
        "next_unique_content": str(state.next_unique_content),
        "money": asdict(money),
        "streams": world.streams.to_plain(),
        "pending": [command_to_plain(c) for c in world.pending],
        "timeline_next": world.timeline_next,
        "history": {k: list(v) for k, v in world.history.items()},
        "objective_verdicts": [[i, v, ok] for i, (v, ok) in world.objective_verdicts.items()],
        "sharing_salting": state.sharing.salting,
        "reclaim_thresholds": list(state.reclaim.thresholds),
        "reclaim_realloc": state.reclaim.realloc,
    }
    arrays: Arrays = {f"pages.{k}": v for k, v in state.pages.arrays().items()}
    arrays.update({f"frames.{k}": v for k, v in state.frames.arrays().items()})
    arrays.update({f"vms.{k}": v for k, v in state.vms.arrays.items()})
    arrays["hosts.free_count"] = state.hosts.free_count
    arrays["hosts.free_low"] = state.hosts.free_low
    arrays["hosts.up"] = state.hosts.up
    arrays["net.vm"] = state.vm_net_bytes_per_s
    arrays["net.nic"] = state.nic_used_bytes_per_s
    arrays["net.link_up"] = world.topology.link_up
    arrays["net.link_capacity"] = world.topology.link_capacity_bytes_per_s
    sharing = state.sharing
    for name in ("stable", "hints", "unstable"):
        arrays.update(getattr(sharing, name).to_arrays(f"sharing.{name}"))
    # The shared frames (ascending) and their keys, not a key per frame: a dense array
    # would be n_frames uint64 (0.74 GiB on the data center) for a percent of them.
    # int32, as every frame id in a save (pages.frame, frames.refcount's index).
    keyed, keys = sharing.frame_keys.items()
    arrays[FRAME_KEY_FRAMES] = keyed.astype(np.int32)
    arrays[FRAME_KEY_KEYS] = keys
    arrays.update({f"sharing.hosts.{k}": v for k, v in sharing.hosts.items()})
    arrays.update({f"reclaim.hosts.{k}": v for k, v in state.reclaim.hosts.items()})
    meta["migrations"], mig_arrays = table_of(state).to_plain()
    arrays.update(mig_arrays)
    if sharing.ksm_scanned_at is not None:
        arrays[KSM_SCANNED] = sharing.ksm_scanned_at  # as held: tick + 1, 0 never
    if sharing.ksm_unstable is not None:
        arrays["sharing.ksm_unstable"] = sharing.ksm_unstable
    if sharing.ksm_age is not None:
        arrays["sharing.ksm_age"] = sharing.ksm_age
    arrays["overhead.frames"] = state.overhead.frames
    arrays["overhead.reserved"] = state.overhead.reserved
    return meta, arrays


def _scanned_at(arrays: Arrays) -> npt.NDArray[np.int32] | None:
    """KSM's per-page scan ticks as memory holds them (tick + 1, 0 never); saves before
    schema 3 hold the tick, -1 never."""
    if KSM_SCANNED in arrays:
        return arrays[KSM_SCANNED].astype(np.int32, copy=False)
    saved = arrays.get("sharing.ksm_scanned_at")
    return None if saved is None else saved.astype(np.int32) + np.int32(1)


def _vm_specs(world: World) -> dict[str, Any]:
    """The specs of the VMs that are not the scenario's own (schema 4, savemodel.py): a
    command changed them, or they were added since. Specs built from the scenario are its
    own objects, so most are told apart without comparing them."""
    own, specs = world.spec.all_vms(), world.state.vms.specs
    at = [i for i, spec in enumerate(specs)
          if i >= len(own) or (spec is not own[i] and spec != own[i])]
    return {"vm_specs": [specs[i].model_dump(mode="json", exclude_none=True) for i in at],
            "vm_specs_at": at}


def check_meta(meta: dict[str, Any], source: str = "<save>") -> SaveMeta:
    """The save's plain data validated: schema version, every field's type and range, the
    scenario's cross-checks. Raises InputError naming the first problem."""
    version = meta.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InputError(source, "world.schema_version",
                         f"expected a schema version (1 to {SCHEMA_VERSION}), got {version!r}")
    if version > SCHEMA_VERSION:
        raise InputError(source, "world.schema_version",
                         f"written by a newer Overcommit (schema {version}; this one reads "
                         f"up to {SCHEMA_VERSION})")
    try:
        model = SaveMeta.model_validate(meta)
    except ValidationError as err:
        path, msg = first_error(err)
        raise InputError(source, f"world.{path}", msg) from None
    except RecursionError:
        raise InputError(source, "world", "nested too deeply") from None
    try:
        check_scenario(model.scenario, source)
    except InputError as err:
        raise InputError(source, f"world.scenario.{err.path}", err.expected) from None
    return model


def array_bytes_bound(model: SaveMeta) -> int:
    """The most bytes a save's arrays may unpack to: its pages, frames, tables and
    migrations at generous sizes (each page and frame costs about 40 bytes, tables a few
    slots per entry)."""
    page = model.scenario.scenario.page_size
    vm_specs = model.all_vm_specs()
    pages = sum(v.memory // page for v in vm_specs)
    frames = sum(h.memory // page for h in model.scenario.all_hosts())
    plain: Any = model.migrations
    count = plain.n if isinstance(plain, MigrationsPlain) else len(plain)
    running = min(count, len(vm_specs))  # page arenas hold running migrations only
    return 256 * (pages + frames) + 64 * pages * running + 64 * 1024**2


def from_plain(meta: dict[str, Any], arrays: Arrays, source: str = "<save>",
               model: SaveMeta | None = None, verify: bool = True) -> World:
    """A world from a save's plain data and arrays, or InputError naming the first thing
    wrong with them (`model`: the data already validated by check_meta). `verify=False`
    is for a blob this process just made (a console fork): it skips the schema, the array
    checks and the invariant check, which cost far more than the copy itself."""
    if not verify:
        try:
            spec = ScenarioSpec.model_validate(meta["scenario"])
            return _rebuild(meta, arrays, spec, expand_vm_specs(
                spec.all_vms(), [VMSpec.model_validate(v) for v in meta["vm_specs"]],
                meta.get("vm_specs_at")))
        except (KeyError, ValueError, TypeError, IndexError) as err:
            raise InputError(source, "(contents)", f"damaged save: {err}") from None
    if model is None:
        model = check_meta(meta, source)
    try:
        check_arrays(model, arrays)
        world = _rebuild(meta, arrays, model.scenario, model.all_vm_specs())
    except InputError:
        raise
    except (KeyError, ValueError, TypeError, IndexError, AttributeError, OverflowError) as err:
        raise InputError(source, "(contents)", f"damaged save: {err}") from None
    try:
        problems = invariants.check(world.state)
    except (ValueError, TypeError, IndexError) as err:
        problems = [f"{type(err).__name__}: {err}"]
    if problems:
        raise InputError(source, "(invariants)", "the saved world breaks the engine's "
                         f"invariants: {problems[0]}")
    return world


def _rebuild(meta: dict[str, Any], arrays: Arrays, spec: ScenarioSpec,
             vm_specs: list[VMSpec]) -> World:
    """The world of a save's plain data and arrays, its scenario and every VM's spec
    validated already."""
    hosts: Hosts = build_hosts(spec)
    hosts.free_count = arrays["hosts.free_count"].astype(np.int64)
    hosts.free_low = arrays["hosts.free_low"].astype(np.int64)
    hosts.up = arrays["hosts.up"].astype(np.bool_)
    fields = {k.removeprefix("pages."): v for k, v in arrays.items() if k.startswith("pages.")}
    period_n = recency.period_ticks(spec.policy.memory.sample_period, spec.scenario.tick_s)
    period = recency.period_of(int(meta["tick"]), period_n)
    if "touched" not in fields:  # saves from before the per-period touch bits
        accessed = fields.pop("accessed").astype(np.bool_)
        before = fields.pop("accessed_prev", np.zeros_like(accessed)).astype(np.bool_)
        fields["touched"] = np.where(accessed, recency.code(period), np.where(
            before, recency.code(period - 1), 0)).astype(np.uint8)
    elif int(meta.get("schema_version", SCHEMA_VERSION)) < 2:  # bits, not period codes
        fields["touched"] = recency.from_bits(fields["touched"].astype(np.uint8), period)
    old_form = int(meta.get("schema_version", SCHEMA_VERSION)) < 5
    if old_form:  # the tick of the last write, -1 never
        fields["written_before"] = fields.pop("written_at") + np.int32(1)
    pages = Pages.from_arrays(fields)
    frames = Frames(refcount=arrays["frames.refcount"],
                    free_stack_delta=_free_stack_delta(arrays, old_form))
    vm_arrays = {name: arrays[f"vms.{name}"].astype(dtype)
                 for name, dtype in VM_ARRAY_DTYPES.items() if f"vms.{name}" in arrays}
    old_save = "vms.overhead_pages" not in arrays
    if old_save:
        vm_arrays = _added_since(vm_arrays, len(vm_specs))
    vms = VMs([v.id for v in vm_specs], vm_specs, vm_arrays)
    if len(pages) != int(vm_arrays["n_pages"].sum()) or frames.refcount.size != int(
            hosts.n_frames.sum()):
        raise ValueError("array sizes do not match the scenario")
    state = State(
        page_size=spec.scenario.page_size,
        tick_s=spec.scenario.tick_s,
        pages=pages,
        frames=frames,
        hosts=hosts,
        vms=vms,
        tick=int(meta["tick"]),
        next_unique_content=int(meta["next_unique_content"]),
        money=Money(**meta["money"]),
        nic_used_bytes_per_s=arrays["net.nic"],
        vm_net_bytes_per_s=arrays["net.vm"],
        layout_seed=int(meta["streams"]["seed"]),
    )
    if old_save:  # overhead not backed yet: the boot phase takes the frames when free
        overhead.define(state, spec.policy.memory, range(len(vm_specs)))
    else:
        state.overhead = Overhead(arrays["overhead.frames"].astype(np.int32),
                                  arrays["overhead.reserved"].astype(np.int32))
    schedule.rebuild(state)
    state.sharing = Sharing(
        stable=U64Map.from_arrays(arrays, "sharing.stable"),
        hints=_hints(spec, hosts, arrays),
        unstable=U64Map.from_arrays(arrays, "sharing.unstable"),
        frame_keys=_frame_keys(meta, arrays, int(hosts.n_frames.sum())),
        # Counters added later start at zero in older saves.
        hosts={k: arrays.get(f"sharing.hosts.{k}", np.zeros(len(hosts), np.int64))
               for k in HOST_SHARING_ARRAYS},
        salting=int(meta["sharing_salting"]),
        ksm_scanned_at=_scanned_at(arrays),
        ksm_unstable=arrays.get("sharing.ksm_unstable"),
        ksm_age=arrays.get("sharing.ksm_age"),
    )
    state.reclaim = Reclaim(
        hosts={k: arrays[f"reclaim.hosts.{k}"].astype(dtype)
               for k, dtype in HOST_RECLAIM_ARRAYS.items()},
        thresholds=[float(x) for x in meta["reclaim_thresholds"]],
        realloc=bool(meta["reclaim_realloc"]),
    )
    recency.set_period(state, period)
    saved = meta["migrations"]
    state.migrations = (old_migrations(saved) if isinstance(saved, list)
                        else MigrationTable.from_plain(saved, arrays))
    topology = build_topology(spec)
    topology.link_up[:] = arrays["net.link_up"]
    topology.link_capacity_bytes_per_s[:] = arrays["net.link_capacity"]
    world = World(spec=spec, state=state, streams=Streams.from_plain(meta["streams"]),
                  topology=topology)
    world.pending = [parse_command(c) for c in meta["pending"]]
    world.timeline_next = int(meta["timeline_next"])
    world.history = {k: deque(v, maxlen=HISTORY_TICKS) for k, v in meta["history"].items()}
    world.objective_verdicts = {int(i): (float(v), bool(ok))
                                for i, v, ok in meta["objective_verdicts"]}
    return world


def _free_stack_delta(arrays: Arrays, old_form: bool) -> npt.NDArray[np.int32]:
    """The free stacks as memory holds them (each slot's frame minus the slot); saves
    before schema 5 hold the frames themselves."""
    if not old_form:
        return arrays[FREE_STACK_DELTA]
    frames = arrays["frames.free_stack"]
    return frames - np.arange(frames.size, dtype=np.int32)


def _frame_keys(meta: dict[str, Any], arrays: Arrays, n_frames: int) -> FrameKeys:
    """The shared frames' keys; saves of schema 2 and older hold one key per frame."""
    if int(meta.get("schema_version", SCHEMA_VERSION)) < 3:
        return FrameKeys.from_dense(arrays["sharing.frame_key"].astype(np.uint64))
    return FrameKeys.from_items(n_frames, arrays[FRAME_KEY_FRAMES].astype(np.int64),
                                arrays[FRAME_KEY_KEYS].astype(np.uint64))


def _hints(spec: ScenarioSpec, hosts: Hosts, arrays: Arrays) -> HintTable:
    """The saved hint table; saves from before it had a fixed size start with an empty one
    (hints are only a cache of what the scanner saw: the scan finds them again)."""
    if "sharing.hints.entry" in arrays:
        return HintTable.from_arrays(arrays, "sharing.hints")
    slots = np.ceil(hosts.n_frames * spec.policy.sharing.hint_table).astype(np.int64)
    return HintTable(slots)


def _added_since(vm_arrays: Arrays, n: int) -> Arrays:
    """A save from before boots, overhead frames and schedules: the VM arrays added since
    start as for VMs that have booted and run their workload from the start."""
    out = dict(vm_arrays)
    for name, dtype in VM_ARRAY_DTYPES.items():
        if name not in out:
            out[name] = np.zeros((n, *VM_ARRAY_SHAPES.get(name, ())), dtype)
    out["overhead_dst"][:] = -1
    out["phase_t0_s"][:] = np.where(out["host"] >= 0, 0.0, -1.0)
    return out
