"""The choice dialogs of the memory mechanisms: a host's page-sharing mode, the data
center's salting level, a VM's balloon driver. Each builds a ChoiceDialog from the
action's context."""

from __future__ import annotations

from app.console.screens.choice_dialog import Choice, ChoiceDialog
from app.console.view import ActionContext
from engine import Snapshot
from engine.commands import SetBalloonDriver, SetSalting, SetSharing
from engine.units import format_bytes

SHARING_MODES = (
    ("esx", "esx  ESX: random scan, hash table with hints"),
    ("ksm", "ksm  Linux KSM: stable and unstable trees, full scans"),
    ("off", "off  no scanning (shared pages stay shared)"),
)

SALTING = (
    (0, "0  salts ignored: every VM may share with every other"),
    (1, "1  equal salt only (default salt: the tenant): tenants apart"),
    (2, "2  explicit salts only: each VM shares only with itself (VMware)"),
)


def sharing_dialog(ctx: ActionContext) -> ChoiceDialog:
    host = ctx.host or ctx.snapshot.hosts[0].id

    def about(snap: Snapshot) -> str:
        h = snap.host(host)
        return (f"{h.id} now: {h.sharing_mode}, saving {format_bytes(h.shared_saved_bytes)} "
                f"({h.pages_sharing:,} pages sharing {h.pages_shared:,} frames), hashing "
                f"{h.pages_hashed_per_s:,.0f} pages/s. Sharing frees memory for nothing but "
                "CPU time: scanning, compares, and a copy on every write to a shared page.")

    modes = [m for m, _ in SHARING_MODES]
    current = ctx.snapshot.host(host).sharing_mode
    return ChoiceDialog(
        ctx.snapshot, ctx.preview, title=f"Page sharing on {host}", about=about,
        choices=[Choice(label, SetSharing(host=host, mode=mode),  # type: ignore[arg-type]
                        f"{host} switches to {mode} at the next tick")
                 for mode, label in SHARING_MODES],
        current=modes.index(current) if current in modes else 0, host=host)


def salting_dialog(ctx: ActionContext) -> ChoiceDialog:
    level = ctx.spec.policy.sharing.share_force_salting

    def about(snap: Snapshot) -> str:
        return (f"Salting keeps tenants' pages apart (a security option: no side channel "
                f"through shared pages), at the cost of the memory that cross-VM sharing "
                f"saves. The scenario starts at level {level}; the data center now saves "
                f"{format_bytes(sum(h.shared_saved_bytes for h in snap.hosts))} by sharing.")

    return ChoiceDialog(
        ctx.snapshot, ctx.preview, title="Page-sharing salting (all hosts)", about=about,
        choices=[Choice(label, SetSalting(level=n),  # type: ignore[arg-type]
                        f"salting level {n} from the next tick") for n, label in SALTING],
        current=level)


def driver_dialog(ctx: ActionContext) -> ChoiceDialog:
    vm = ctx.vm or ""

    def about(snap: Snapshot) -> str:
        v = snap.vm(vm)
        state = "enabled" if v.balloon_driver else "disabled"
        return (f"{vm}'s balloon driver is {state}; its balloon holds "
                f"{format_bytes(v.balloon_bytes)}. Without a driver only hypervisor "
                "swapping can take memory back from it: blunt, slow, and double paging.")

    enabled = ctx.snapshot.vm(vm).balloon_driver
    return ChoiceDialog(
        ctx.snapshot, ctx.preview, title=f"Balloon driver of {vm}", about=about,
        choices=[Choice("enabled   the guest gives memory back by ballooning",
                        SetBalloonDriver(vm=vm, enabled=True), f"{vm}'s driver is on"),
                 Choice("disabled  only swapping can reclaim from this VM",
                        SetBalloonDriver(vm=vm, enabled=False), f"{vm}'s driver is off")],
        current=0 if enabled else 1, vm=vm)
