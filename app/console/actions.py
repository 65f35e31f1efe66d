"""Operator actions as data: key, title, help, which VM they aim at, and their dialog.

The App builds its bindings, the command palette and the help screen from `ACTIONS`, so a
new engine mechanism (migration, balloon targets...) adds one entry and one dialog here.
Only actions the engine can carry out today are listed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from textual.screen import ModalScreen

from app.console.screens.place_dialog import PlaceDialog
from app.console.screens.stop_dialog import StopDialog
from app.console.screens.value_dialog import ValueDialog
from app.console.view import Preview
from engine import Command, Snapshot


@dataclass(frozen=True)
class ActionContext:
    snapshot: Snapshot
    vm: str
    preview: Preview


@dataclass(frozen=True)
class OperatorAction:
    name: str
    key: str
    label: str  # short, for the footer
    title: str
    help: str  # two or three lines: what it does, its effect on profit and SLA
    target: Literal["queued", "any"]  # queued: a customer request waiting for a host
    dialog: Callable[[ActionContext], ModalScreen[Command | None]]


ACTIONS: tuple[OperatorAction, ...] = (
    OperatorAction(
        "place", "p", "Place", "Place a waiting VM",
        "Power on a customer request from the queue on a host you pick. It bills its price "
        "per hour from the next tick (revenue), but its pages take host frames: on a crowded "
        "host VMs stall, and stalled work is not paid (service level).",
        "queued", lambda c: PlaceDialog(c.snapshot, c.vm, c.preview)),
    OperatorAction(
        "stop", "x", "Stop", "Stop a VM",
        "Power off a running VM. Its frames return to the host's free pool, relieving its "
        "neighbours' stalls, but the customer stops paying and objectives that count "
        "running VMs may fail.",
        "any", lambda c: StopDialog(c.snapshot, c.vm, c.preview)),
    OperatorAction(
        "shares", "s", "Shares", "Set memory shares",
        "A VM's proportional claim on memory when its host is short (ESX shares). More "
        "shares protect this VM's service level at its neighbours' expense; shares cost "
        "nothing themselves.",
        "any", lambda c: ValueDialog(c.snapshot, c.vm, "shares", c.preview)),
    OperatorAction(
        "min", "m", "Min", "Set minimum (reservation)",
        "Memory guaranteed to the VM. Reservations on a host may not add up to more than "
        "its memory, so a large min protects this VM's service level but can block "
        "placing more paying VMs there.",
        "any", lambda c: ValueDialog(c.snapshot, c.vm, "min", c.preview)),
    OperatorAction(
        "max", "M", "Max", "Set maximum",
        "The most memory the VM is entitled to (between its min and its configured size). "
        "A lower max frees memory for neighbours on a crowded host; too low and this VM "
        "stalls and earns less.",
        "any", lambda c: ValueDialog(c.snapshot, c.vm, "max", c.preview)),
)

ACTIONS_BY_NAME = {a.name: a for a in ACTIONS}


def default_target(action: OperatorAction, snap: Snapshot, selected: str | None) -> str | None:
    """The VM an action aims at: the selection, or for placing, the first waiting request."""
    vms = {v.id: v for v in snap.vms}
    if action.target == "queued":
        if selected in vms and not vms[selected].running:
            return selected
        return next((v.id for v in snap.vms if not v.running), None)
    return selected if selected in vms else None
