"""VM life cycle: build the world from a spec, define, power on and power off VMs."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from engine import hugepages
from engine.memory import boot, kind_bits, ksm, overhead, stack_memory
from engine.memory import frames as frame_alloc
from engine.pagescale import fine_pages, per_simulated_page
from engine.rng import Streams
from engine.scenario import ScenarioSpec
from engine.spec import MemoryPolicy, VMSpec
from engine.state import N_KIND, N_LOC, Frames, GuestKind, Hosts, Loc, Pages, State, VMs
from engine.state_tables import SHARING_MODES, Reclaim, Sharing
from engine.workloads import schedule


def build_hosts(spec: ScenarioSpec) -> Hosts:
    page_size = spec.scenario.page_size
    host_specs = spec.all_hosts()
    n_frames = np.array([h.memory // page_size for h in host_specs], np.int64)
    low = np.array([min(h.low_memory, h.memory) // page_size for h in host_specs], np.int64)
    offsets = np.concatenate([[0], np.cumsum(n_frames)[:-1]]).astype(np.int64)
    return Hosts(
        ids=[h.id for h in host_specs],
        specs=host_specs,
        frame_offset=offsets,
        n_frames=n_frames,
        low_frames=low,
        free_count=n_frames.copy(),
        free_low=low.copy(),
        up=np.ones(len(host_specs), np.bool_),
        cpus=np.array([h.cpus for h in host_specs], np.float64),
        idle_w=np.array([h.idle_w for h in host_specs], np.float64),
        peak_w=np.array([h.peak_w for h in host_specs], np.float64),
        capital_per_hour=np.array([h.capital_per_hour for h in host_specs], np.float64),
        swap_latency_s=np.array([h.swap_latency for h in host_specs], np.float64),
        swap_disk_bytes_per_s=np.array([h.swap_disk for h in host_specs], np.float64),
    )


def build_state(spec: ScenarioSpec, streams: Streams,
                progress: boot.Progress | None = None) -> State:
    """The world at time 0: hosts, every VM defined, those with a host powered on.

    VMs are laid out in bulk (memory/boot.py); `progress(done, total)`, if given, is
    called as the VMs are powered on (total = VMs with a host), for a progress bar. A big
    world is built in small pages and given huge pages after (engine/hugepages.py).
    """
    n_pages = sum(vm.memory // spec.scenario.page_size for vm in spec.all_vms())
    small = hugepages.wanted(n_pages * np.dtype(np.uint64).itemsize)
    with hugepages.small_pages(small):
        state = _build_state(spec, streams, progress)
    if small:
        p, frames = state.pages, state.frames
        filled: list[npt.NDArray[Any]] = [p.content, p.frame, p.meta, frames.refcount]
        rest = [*p.arrays().values(), *frames.arrays().values(), state.sharing.hints.entry]
        hugepages.after_build(filled, [a for a in rest if not any(a is f for f in filled)])
    return state


def _build_state(spec: ScenarioSpec, streams: Streams,
                 progress: boot.Progress | None = None) -> State:
    page_size = spec.scenario.page_size
    hosts = build_hosts(spec)
    n_frames = hosts.n_frames
    total_frames = int(n_frames.sum())
    if total_frames >= 2**31:
        raise ValueError("more than 2^31 machine frames: choose a larger page_size")
    frames = Frames(
        refcount=np.zeros(total_frames, np.int32),
        free_stack_delta=frame_alloc.initial_free_stack(hosts),
    )
    vm_specs = spec.all_vms()
    n_pages = [vm.memory // page_size for vm in vm_specs]
    if sum(n_pages) >= 2**32:  # the hint table packs a guest page index into 32 bits
        raise ValueError("more than 2^32 guest pages: choose a larger page_size")
    policy = spec.policy.sharing
    modes = [SHARING_MODES.index(h.sharing or policy.mode) for h in hosts.specs]
    state = State(
        page_size=page_size,
        tick_s=spec.scenario.tick_s,
        pages=Pages.empty(int(sum(n_pages))),
        frames=frames,
        hosts=hosts,
        vms=VMs.empty(),
        nic_used_bytes_per_s=np.zeros(len(hosts)),
        sharing=Sharing.empty(total_frames, modes, policy.share_force_salting,
                              hint_slots=np.ceil(n_frames * policy.hint_table).astype(np.int64)),
        reclaim=Reclaim.empty(len(hosts), spec.policy.memory.idle_tax,
                              list(spec.policy.memory.thresholds)),
        layout_seed=streams.seed,
    )
    state.reclaim.hosts["swap_capacity_pages"][:] = [h.swap_space // page_size
                                                     for h in hosts.specs]
    offsets = np.concatenate([[0], np.cumsum(n_pages)[:-1]]).astype(np.int64).tolist()
    added = state.vms.extend(vm_specs, offsets, n_pages, page_size,
                             [price_per_hour(spec, vm) for vm in vm_specs], spec.policy.sla)
    _defined(state, spec, added)
    state.vm_net_bytes_per_s = np.zeros(len(state.vms))
    placed = [v for v, vm in enumerate(vm_specs) if vm.host is not None]
    host_index = {h: i for i, h in enumerate(hosts.ids)}
    boot.power_on(state, spec.policy.memory, np.array(placed, np.int64),
                  np.array([host_index[str(vm_specs[v].host)] for v in placed], np.int64),
                  0.0, progress)
    stack_memory.release_empty_slots(state)  # the frames the boot took
    return state


def _defined(state: State, spec: ScenarioSpec, added: range) -> None:
    """Per-VM tables beside the VM arrays: overhead slots, the workload schedule."""
    memory = spec.policy.memory
    state.vms["decompress_s"][added.start:added.stop] = (
        memory.decompress_cost * fine_pages(state.page_size))
    state.vms["balloon_rate"][added.start:added.stop] = per_simulated_page(
        memory.balloon_start_rate, state.page_size)
    overhead.define(state, spec.policy.memory, added)
    schedule.rebuild(state)


def price_per_hour(scenario: ScenarioSpec, vm: VMSpec) -> float:
    if vm.price_per_hour is not None:
        return vm.price_per_hour
    return scenario.policy.economy.revenue_per_gib_hour * vm.memory / 1024**3


def define_vm(state: State, scenario: ScenarioSpec, spec: VMSpec) -> int:
    n = spec.memory // state.page_size
    offset = state.pages.extend(n)
    v = state.vms.append(spec, offset, n, state.page_size, price_per_hour(scenario, spec),
                         scenario.policy.sla)
    _defined(state, scenario, range(v, v + 1))
    sharing = state.sharing
    if sharing.ksm_scanned_at is not None:
        sharing.ksm_scanned_at = np.concatenate([sharing.ksm_scanned_at,
                                                 np.zeros(n, np.int32)])
    if sharing.ksm_unstable is not None:
        sharing.ksm_unstable = np.concatenate([sharing.ksm_unstable, np.zeros(n, np.bool_)])
    if sharing.ksm_age is not None:
        sharing.ksm_age = np.concatenate([sharing.ksm_age, np.zeros(n, np.uint8)])
    state.vm_net_bytes_per_s = np.append(state.vm_net_bytes_per_s, 0.0)
    return v


def start_vm(state: State, policy: MemoryPolicy, v: int, h: int) -> int:
    """Power VM v on host h (memory/boot.py); returns the pages made resident at once."""
    return int(boot.power_on(state, policy, np.array([v]), np.array([h]), state.time_s)[0])


def stop_vm(state: State, v: int) -> None:
    """Power off: every frame the VM maps is released, its pages forget their content."""
    vms, p = state.vms, state.pages
    sl = slice(int(vms["page_offset"][v]), int(vms["page_offset"][v] + vms["n_pages"][v]))
    mapped = p.frame[sl]
    frame_alloc.release(state, mapped[mapped >= 0])
    h = int(vms["host"][v])
    state.reclaim.hosts["swapped_pages"][h] -= int(vms["loc_count"][v, Loc.SWAPPED])
    state.reclaim.hosts["compressed_pages"][h] -= int(vms["loc_count"][v, Loc.COMPRESSED])
    fresh = Pages.empty(sl.stop - sl.start)
    for name, arr in p.arrays().items():
        arr[sl] = getattr(fresh, name)
    kind_bits.refresh(state, sl.start, sl.stop)  # every page free
    overhead.release(state, v)
    ksm.forget(state, sl, h)
    vms["host"][v] = -1
    vms["booting"][v] = False
    vms["phase_t0_s"][v] = -1.0
    vms["loc_count"][v] = np.zeros(N_LOC, np.int64)
    vms["loc_count"][v, Loc.UNTOUCHED] = sl.stop - sl.start
    vms["kind_count"][v] = np.zeros(N_KIND, np.int64)
    vms["kind_count"][v, GuestKind.FREE] = sl.stop - sl.start
    vms["guest_swapped_count"][v] = 0
    vms["zero_shared"][v] = 0
    vms["scan_credit"][v] = 0.0
    state.vm_net_bytes_per_s[v] = 0.0
