"""VM life cycle: build the world from a spec, define, power on and power off VMs."""

from __future__ import annotations

import numpy as np

from engine.memory import frames as frame_alloc
from engine.memory.content import image_content, unique_content
from engine.rng import Streams
from engine.scenario import ScenarioSpec
from engine.spec import VMSpec
from engine.state import N_KIND, N_LOC, Frames, GuestKind, Hosts, Loc, Pages, State, VMs
from engine.state_tables import SHARING_MODES, Reclaim, Sharing


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


def build_state(spec: ScenarioSpec, streams: Streams) -> State:
    page_size = spec.scenario.page_size
    hosts = build_hosts(spec)
    n_frames = hosts.n_frames
    total_frames = int(n_frames.sum())
    if total_frames >= 2**31:
        raise ValueError("more than 2^31 machine frames: choose a larger page_size")
    frames = Frames(
        refcount=np.zeros(total_frames, np.int32),
        free_stack=frame_alloc.initial_free_stack(hosts),
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
    )
    state.reclaim.hosts["swap_capacity_pages"][:] = [h.swap_space // page_size
                                                     for h in hosts.specs]
    offset = 0
    for vm, n in zip(vm_specs, n_pages, strict=True):
        state.vms.append(vm, offset, n, page_size, price_per_hour(spec, vm), spec.policy.sla)
        offset += n
    state.vms["decompress_s"][:] = spec.policy.memory.decompress_cost
    state.vm_net_bytes_per_s = np.zeros(len(state.vms))
    for v, vm in enumerate(vm_specs):
        if vm.host is not None:
            start_vm(state, streams, v, hosts.index(vm.host))
    return state


def price_per_hour(scenario: ScenarioSpec, vm: VMSpec) -> float:
    if vm.price_per_hour is not None:
        return vm.price_per_hour
    return scenario.policy.economy.revenue_per_gib_hour * vm.memory / 1024**3


def define_vm(state: State, scenario: ScenarioSpec, spec: VMSpec) -> int:
    n = spec.memory // state.page_size
    offset = state.pages.extend(n)
    v = state.vms.append(spec, offset, n, state.page_size, price_per_hour(scenario, spec),
                         scenario.policy.sla)
    state.vms["decompress_s"][v] = scenario.policy.memory.decompress_cost
    scanned = state.sharing.ksm_scanned_at
    if scanned is not None:
        state.sharing.ksm_scanned_at = np.concatenate([scanned, np.full(n, -1, np.int32)])
    state.vm_net_bytes_per_s = np.append(state.vm_net_bytes_per_s, 0.0)
    return v


def start_vm(state: State, streams: Streams, v: int, h: int) -> int:
    """Power VM v on host h: the guest boots and touches part of its memory.

    Returns the number of pages made resident (fewer than asked when the host is short).
    """
    vms, p, spec = state.vms, state.pages, state.vms.specs[v]
    off, n = int(vms["page_offset"][v]), int(vms["n_pages"][v])
    vms["host"][v] = h
    vms["started"][v] = True
    vms["lost_vm"][v] = False
    mix = spec.content
    want = min(int(round(mix.resident * n)), int(vms["max_pages"][v]))
    if want == 0:
        return 0
    rng = streams["content"]
    chosen = off + rng.choice(n, size=want, replace=False).astype(np.int64)
    got = frame_alloc.allocate(state, np.full(want, h, np.int64))
    chosen = chosen[got >= 0]
    got = got[got >= 0]
    k = chosen.size
    n_zero = int(round(mix.zero * k))
    n_os = int(round(mix.os * k))
    n_app = min(int(round(mix.app * k)), k - n_zero - n_os) if spec.app else 0
    n_dup = min(int(round(mix.dup * k)), k - n_zero - n_os - n_app)
    n_priv = k - n_zero - n_os - n_app - n_dup
    distinct_dups = max(1, int(round(n_dup / mix.dup_copies)))
    dup_pool = image_content("dup", f"{spec.guest_os}/{spec.app or ''}", distinct_dups)
    content = np.concatenate([
        np.zeros(n_zero, np.uint64),
        image_content("os", spec.guest_os, n_os),
        image_content("app", spec.app or "", n_app),
        dup_pool[np.arange(n_dup) % distinct_dups],
        unique_content(state, n_priv),
    ])
    p.frame[chosen] = got
    p.location[chosen] = Loc.PRIVATE
    p.content[chosen] = content
    # Zeroed pages are what the guest keeps on its free list; OS, application and
    # duplicated pages are file-backed page cache it can drop; unique data is process
    # memory.
    cached = chosen[n_zero:k - n_priv]
    anon = chosen[k - n_priv:]
    p.guest_kind[cached] = GuestKind.CACHE
    p.guest_kind[anon] = GuestKind.ANON
    vms["loc_count"][v, Loc.UNTOUCHED] -= k
    vms["loc_count"][v, Loc.PRIVATE] += k
    vms["kind_count"][v, GuestKind.FREE] -= cached.size + anon.size
    vms["kind_count"][v, GuestKind.CACHE] += cached.size
    vms["kind_count"][v, GuestKind.ANON] += anon.size
    return k


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
    vms["host"][v] = -1
    vms["loc_count"][v] = np.zeros(N_LOC, np.int64)
    vms["loc_count"][v, Loc.UNTOUCHED] = sl.stop - sl.start
    vms["kind_count"][v] = np.zeros(N_KIND, np.int64)
    vms["kind_count"][v, GuestKind.FREE] = sl.stop - sl.start
    vms["guest_swapped_count"][v] = 0
    vms["zero_shared"][v] = 0
    vms["scan_credit"][v] = 0.0
    if state.sharing.ksm_scanned_at is not None:
        state.sharing.ksm_scanned_at[sl] = -1
    state.vm_net_bytes_per_s[v] = 0.0
