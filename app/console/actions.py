"""Operator actions as data: key, title, help, what they aim at, and their dialog.

The App builds its bindings, the command palette and the help screen from `ACTIONS`, so a
new engine mechanism adds one entry and one dialog here. Only actions the engine can carry
out today are listed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from textual.screen import ModalScreen

from app.console.live import LiveData
from app.console.screens.confirm_dialog import cancel_dialog, postcopy_dialog
from app.console.screens.failure_dialogs import host_power_dialog, link_dialog
from app.console.screens.idle_tax_dialog import IdleTaxDialog
from app.console.screens.mechanism_choices import driver_dialog, salting_dialog, sharing_dialog
from app.console.screens.migrate_dialog import MigrateDialog
from app.console.screens.place_dialog import PlaceDialog
from app.console.screens.stop_dialog import StopDialog
from app.console.screens.target_dialog import TargetDialog
from app.console.screens.value_dialog import ValueDialog
from app.console.screens.workload_dialog import WorkloadDialog
from app.console.view import ActionContext
from engine import Command, Snapshot
from engine.snapshot import STATUSES
from engine.spec import WorkloadSpec

# What an action aims at: a VM waiting for a host (queued or stopped), any VM, a running
# VM, a VM in a pre-copy migration, a host, or the whole data center.
Target = Literal["placeable", "vm", "running", "migrating", "host", "global"]


@dataclass(frozen=True)
class OperatorAction:
    name: str
    key: str
    label: str  # short, for the footer
    title: str
    help: str  # two or three lines: what it does, its effect on profit and SLA
    target: Target
    dialog: Callable[[ActionContext], ModalScreen[Command | None]]
    group: str = ""  # footer: actions of one group share one label
    footer: bool = True  # False: only in the help, the palette and where it applies


def _vm(c: ActionContext) -> str:
    return c.vm or ""


def _scenario_workload(c: ActionContext) -> WorkloadSpec | None:
    return next((v.workload for v in c.spec.all_vms() if v.id == c.vm), None)


ACTIONS: tuple[OperatorAction, ...] = (
    OperatorAction(
        "place", "p", "Place", "Place a waiting VM",
        "Power on a customer request from the queue (or a stopped VM) on a host you pick. It "
        "bills its price per hour from the next tick, but its pages take host frames: on a "
        "crowded host VMs stall, and stalled work is not paid (service level).",
        "placeable", lambda c: PlaceDialog(c.snapshot, _vm(c), c.preview)),
    OperatorAction(
        "stop", "x", "Stop", "Stop a VM",
        "Power off a running VM. Its frames return to the host's free pool, relieving its "
        "neighbours' stalls, but the customer stops paying and objectives that count "
        "running VMs may fail.",
        "vm", lambda c: StopDialog(c.snapshot, _vm(c), c.preview)),
    OperatorAction(
        "shares", "s", "Shares", "Set memory shares",
        "A VM's proportional claim on memory when its host is short (ESX shares). More "
        "shares protect this VM's service level at its neighbours' expense; shares cost "
        "nothing themselves.",
        "vm", lambda c: ValueDialog(c.snapshot, _vm(c), "shares", c.preview), "alloc"),
    OperatorAction(
        "min", "m", "Min", "Set minimum (reservation)",
        "Memory guaranteed to the VM. Reservations on a host may not add up to more than "
        "its memory, so a large min protects this VM's service level but can block "
        "placing more paying VMs there.",
        "vm", lambda c: ValueDialog(c.snapshot, _vm(c), "min", c.preview), "alloc"),
    OperatorAction(
        "max", "M", "Max", "Set maximum",
        "The most memory the VM is entitled to (between its min and its configured size). "
        "A lower max frees memory for neighbours on a crowded host; too low and this VM "
        "stalls and earns less.",
        "vm", lambda c: ValueDialog(c.snapshot, _vm(c), "max", c.preview), "alloc"),
    OperatorAction(
        "balloon", "b", "Balloon", "Set a balloon target",
        "Force how much memory the VM's balloon driver takes from its guest (empty: back to "
        "the policy). The guest gives up its free pages first, then pages out its coldest "
        "ones to its own disk: cheap when it has slack, guest faults and a lower service "
        "level when it has none.",
        "vm", lambda c: TargetDialog(c.snapshot, _vm(c), "balloon", c.preview), "reclaim"),
    OperatorAction(
        "swap", "w", "Swap", "Set a swap target",
        "Force how much of the VM the hypervisor swaps to disk (empty: back to the policy). "
        "Blunt and slow: pages are picked at random, hot ones too, each touch stalls for a "
        "disk read, and the guest may page out what is already swapped (double paging).",
        "vm", lambda c: TargetDialog(c.snapshot, _vm(c), "swap", c.preview), "reclaim"),
    OperatorAction(
        "driver", "d", "Driver", "Turn the balloon driver on or off",
        "A VM without a balloon driver can only be reclaimed by swapping. Turning it off "
        "shields this guest from ballooning, but when its host runs short it is swapped "
        "instead, which hurts its service level more.",
        "vm", driver_dialog, "reclaim"),
    OperatorAction(
        "tax", "t", "Tax", "Set the idle memory tax",
        "The idle memory tax (τ) charges idle pages more when memory is revoked, so it moves "
        "memory from idle VMs to active ones on a crowded host (ESX default 75 %). Active "
        "VMs stall less and earn more; idle ones lose memory they were not using.",
        "host", lambda c: IdleTaxDialog(c.snapshot, c.host, c.preview), "host"),
    OperatorAction(
        "sharing", "h", "Sharing", "Switch a host's page sharing",
        "Content-based page sharing (esx) or KSM (ksm) finds identical pages and keeps one "
        "copy: memory saved for free, paid in CPU time (hashing, compares) and a copy on "
        "every write to a shared page (COW break). Off saves the CPU and saves no memory.",
        "host", sharing_dialog, "host"),
    OperatorAction(
        "salting", "z", "Salting", "Set page-sharing salting",
        "Salting stops VMs of different tenants (level 1) or different VMs (level 2) from "
        "sharing pages, closing a side channel between customers; the memory that "
        "cross-VM sharing saved must then come from somewhere else.",
        "global", salting_dialog, "host"),
    OperatorAction(
        "load", "l", "Spike", "Load spike: change a VM's demand",
        "Change a running VM's reads and writes per second and its working set, as a "
        "customer's rush hour would. A larger working set needs more resident memory; on "
        "a crowded host it stalls, and stalled work is not paid.",
        "vm", lambda c: WorkloadDialog(c.snapshot, _vm(c), c.preview,
                                       _scenario_workload(c))),
    OperatorAction(
        "migrate", "g", "Migrate", "Live-migrate a VM",
        "Move a running VM to another host while it runs (pre-copy, post-copy or hybrid). "
        "It frees memory on a crowded host without stopping anyone, but the copy shares "
        "the NICs with service traffic, costs network money, and pauses the VM briefly "
        "(the downtime); post-copy stalls it on every page still at the source.",
        "running", MigrateDialog, "migrate"),
    OperatorAction(
        "cancel_migration", "G", "Cancel", "Cancel a pre-copy migration",
        "Stop a pre-copy that does not converge: the VM stays at its source and keeps "
        "running; the bytes already sent are wasted. A post-copy cannot go back.",
        "migrating", cancel_dialog, "migrate", footer=False),
    OperatorAction(
        "postcopy", "P", "Post-copy", "Switch a pre-copy to post-copy",
        "End a pre-copy at once: the VM resumes at the destination after a few ms and "
        "pulls the pages it still lacks (network faults stall it). It always finishes, but "
        "a failure of either host or the link before the last page arrives loses the VM.",
        "migrating", postcopy_dialog, "migrate", footer=False),
    OperatorAction(
        "host_power", "f", "Host", "Fail a host or bring it back",
        "A failure drill: a failed host takes its VMs down with it (lost: no revenue, SLA "
        "breaches and penalties) and stops the migrations through it. Bringing it back "
        "gives an empty host to place VMs on again.",
        "host", host_power_dialog, "faults"),
    OperatorAction(
        "link", "k", "Link", "Take a network link down or up",
        "Cut or restore a link between a host and its switch (or between switches). "
        "Migrations without a path fail, a post-copy in flight loses its VM, and service "
        "traffic must find another path.",
        "global", link_dialog, "faults"),
)

ACTIONS_BY_NAME = {a.name: a for a in ACTIONS}


def placeable(snap: Snapshot) -> list[str]:
    """VMs waiting for a host: queued, stopped or lost (from the columns: no rows built)."""
    waiting = np.flatnonzero(snap.columns["status_code"] != STATUSES.index("running"))
    return [snap.vms.ids[i] for i in waiting.tolist()]


def default_target(action: OperatorAction, snap: Snapshot, vm: str | None,
                   host: str | None, live: LiveData | None = None
                   ) -> tuple[str | None, str | None] | None:
    """(vm, host) an action aims at from the current selection, or None if it has none:
    placing takes the selected VM if it waits for a host, else the first that does;
    cancelling a migration takes the selected VM's, else the first pre-copy running."""
    vms = snap.vms
    if action.target == "running":
        return (vm, None) if vm in vms and snap.vm(vm).running else None
    if action.target == "migrating":
        moving = sorted((live or LiveData()).precopying())
        if vm in moving:
            return vm, None
        return (moving[0], None) if moving else None
    if action.target == "placeable":
        if vm in vms and snap.vm(vm).status in ("queued", "stopped", "lost"):
            return vm, None
        waiting = placeable(snap)
        return (waiting[0], None) if waiting else None
    if action.target == "vm":
        return (vm, None) if vm in vms else None
    if action.target == "host":
        hosts = [h.id for h in snap.hosts]
        if host in hosts:
            return None, host
        return (None, hosts[0]) if hosts else None
    return None, None


def missing_target_message(action: OperatorAction) -> str:
    if action.target == "placeable":
        return "No VM is waiting for a host (queued or stopped)."
    if action.target == "host":
        return "There is no host."
    if action.target == "running":
        return "Select a running VM first (VM table, arrows)."
    if action.target == "migrating":
        return "No pre-copy migration is running (g starts one)."
    return "Select a VM first (VM table, arrows)."
