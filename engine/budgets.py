"""World-wide budgets: what the engine can hold in memory and do in one tick.

Field ranges (engine/ranges.py) bound each number; these bound their products. The page
and frame arrays cost about 40 bytes per guest page and machine frame (the 100-host,
1,000-VM benchmark, 131 M pages and 105 M frames, takes 4.3 GiB); a tick allocates
arrays over every page touch and every page scanned. A scenario over a budget is refused
at load with a message saying what to change; a command that would cross one (a load
spike, a new VM) is rejected with its reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.pagescale import REFERENCE_PAGE_BYTES, per_simulated_page
from engine.spec import SharingPolicy, VMSpec, WorkloadSpec
from engine.units import format_bytes

if TYPE_CHECKING:
    from engine.world import World

MAX_PAGES = 2**28  # guest pages of all VMs: about 2x the benchmark data center
MAX_FRAMES = 2**28  # machine frames of all hosts (frame ids are int32)
MIN_HOST_FRAMES = 16
MAX_TOUCHES_PER_TICK = 2**23  # page reads, writes, file reads and I/Os of all VMs
MAX_SCAN_PER_TICK = 2**23  # pages the sharing scanners look at in one tick


def pages_problem(n_pages: int, page_size: int) -> str | None:
    if n_pages <= MAX_PAGES:
        return None
    return (f"the VMs would need {n_pages:,} guest pages of {format_bytes(page_size)} "
            f"(at most {MAX_PAGES:,} fit the engine's memory); choose a larger "
            "scenario.page_size or fewer or smaller VMs")


def frames_problem(n_frames: int, page_size: int) -> str | None:
    if n_frames <= MAX_FRAMES:
        return None
    return (f"the hosts would need {n_frames:,} machine frames of {format_bytes(page_size)} "
            f"(at most {MAX_FRAMES:,}); choose a larger scenario.page_size")


def workload_touches_per_s(wl: WorkloadSpec) -> float:
    if wl.kind == "idle":
        return 0.0
    return wl.reads_per_s + wl.writes_per_s + wl.file_reads_per_s + wl.io_pages_per_s


def touches_problem(per_s: float, tick_s: float) -> str | None:
    per_tick = per_s * tick_s
    if per_tick <= MAX_TOUCHES_PER_TICK:
        return None
    return (f"the workloads would touch {per_tick:,.0f} pages per tick (at most "
            f"{MAX_TOUCHES_PER_TICK:,}: {MAX_TOUCHES_PER_TICK / tick_s:,.0f} per second at "
            "this tick); lower the rates or scenario.tick_s")


def scan_per_tick(policy: SharingPolicy, vm_pages: Iterable[int], n_hosts: int,
                  tick_s: float, page_size: int = REFERENCE_PAGE_BYTES) -> float:
    """An upper bound of the pages the scanners may visit in a tick, whatever the mode a
    command later switches a host to: ESX by rate or whole VMs, and KSM. The rates count
    4 KiB pages (engine/pagescale.py): coarse pages scan fewer pages for the same bytes."""
    pages = list(vm_pages)
    esx_rate = min(policy.pages_per_s_per_vm * len(pages), policy.pages_per_s_per_host * n_hosts)
    whole_vm = sum(pages) / policy.whole_vm_period
    ksm = policy.ksm_pages_to_scan / policy.ksm_sleep * n_hosts
    fine = max(per_simulated_page(esx_rate, page_size), per_simulated_page(ksm, page_size))
    return max(fine, whole_vm) * tick_s


def scan_problem(per_tick: float) -> str | None:
    if per_tick <= MAX_SCAN_PER_TICK:
        return None
    return (f"page sharing could scan {per_tick:,.0f} pages per tick (at most "
            f"{MAX_SCAN_PER_TICK:,}); lower its rates or scenario.tick_s")


def vm_touches_per_s(vms_arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Each defined VM's page touches per second at full demand (the state's columns)."""
    return np.asarray(vms_arrays["reads_per_s"] + vms_arrays["writes_per_s"]
                      + vms_arrays["file_reads_per_s"] + vms_arrays["io_pages_per_s"])


def command_problem(world: World, cmd: Any) -> str | None:
    """A command that would take the world past a budget: a placement (its pages, its
    touches) or a load spike (its touches per tick)."""
    from engine.commands import PlaceVM, SetWorkload

    state = world.state
    if isinstance(cmd, PlaceVM):
        total = float(vm_touches_per_s(state.vms.arrays).sum())
        return new_vm_problem(cmd.vm, state.page_size, len(state.pages), total, state.tick_s)
    if isinstance(cmd, SetWorkload) and cmd.vm in state.vms.ids:
        v = state.vms.index(cmd.vm)
        rates = vm_touches_per_s(state.vms.arrays)
        columns = ("reads_per_s", "writes_per_s", "file_reads_per_s")
        change = sum(getattr(cmd, c) - float(state.vms[c][v]) for c in columns
                     if getattr(cmd, c) is not None)
        return touches_problem(float(rates.sum()) + change, state.tick_s)
    return None


def new_vm_problem(spec: VMSpec, page_size: int, n_pages_now: int,
                   touches_per_s_now: float, tick_s: float) -> str | None:
    """A VM defined at run time (a placement): pages and per-tick work still fit."""
    n = spec.memory // page_size
    if n < 1:
        return (f"{spec.id}'s memory {format_bytes(spec.memory)} is less than one page "
                f"({format_bytes(page_size)})")
    return pages_problem(n_pages_now + n, page_size) or touches_problem(
        touches_per_s_now + workload_touches_per_s(spec.workload), tick_s)
