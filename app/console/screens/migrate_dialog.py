"""Live-migrate a running VM: every destination with its free memory and the engine's
admission verdict, the mode (pre-copy, post-copy, hybrid), the algorithm (Xen's dynamic
rate or QEMU's bandwidth and downtime limit), a rate cap and the options; what to expect,
then the verdict, before confirming."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.widgets import Checkbox, DataTable, Input, Label, Select, Static

from app.console.format import STATE_STYLES, duration, migrate_options, rate_text
from app.console.parsing import InputProblem, parse_duration, parse_rate_text
from app.console.screens.dialog import Dialog, safe_preview
from app.console.view import ActionContext
from app.console.widgets.fit_table import FitTable, update_row
from app.console.widgets.key_bar import KeyBar
from app.console.widgets.verdict_line import VerdictLine, verdict_text
from engine.commands import Migrate, Verdict
from engine.spec import MigrationPolicy
from engine.units import (
    format_bytes,
    format_rate,
)

MODES = (("pre-copy", "precopy"), ("post-copy", "postcopy"), ("hybrid", "hybrid"))
ALGORITHMS = (("xen (dynamic rate)", "xen"), ("qemu (bandwidth)", "qemu"))
OPTIONS = (("auto_converge", "auto-converge"), ("xbzrle", "XBZRLE"),
           ("prepaging", "pre-paging"), ("stun", "stun"), ("pml", "PML"),
           ("free_page_hints", "free-page hints"))

OPTION_HELP = {
    "auto_converge": "QEMU: throttle the vCPUs (20 %, +10 % a step) while it does not converge",
    "xbzrle": "QEMU: send re-sent pages as deltas against a 64 MiB cache",
    "prepaging": "post-copy: push pages around each fault first (bubbling)",
    "stun": "pause the processes that dirty faster than the copy (Clark's paravirtual stun)",
    "pml": "hardware dirty logging: one exit per 512 writes instead of one each",
    "free_page_hints": "the guest reports its free pages, which are not sent",
}


def expectation(cmd: Migrate, policy: MigrationPolicy, configured: int, resident: int,
                src: str) -> str:
    """What the migration will roughly do, from the policy's numbers."""
    xen = cmd.algorithm == "xen"
    top = cmd.max_rate or (policy.xen_max_rate if xen else policy.qemu_max_bandwidth)
    if cmd.mode == "postcopy":
        cap = (cmd.max_postcopy_rate if cmd.max_postcopy_rate is not None
               else policy.max_postcopy_bandwidth)
        pace = f"at up to {format_rate(cap)}" if cap > 0 else "as fast as the path allows"
        return (f"{cmd.vm} pauses a few ms and resumes on {cmd.to}; every touch of a page "
                f"still on {src} is a network fault (a stall) until {src} has pushed all "
                f"{format_bytes(resident)} {pace}. If either host or "
                "the link fails before that, the VM is lost.")
    first = min(policy.xen_min_rate, top) if xen else top
    size = configured if xen else resident  # QEMU sends zero pages as headers
    plan = (f"Round 1 sends {format_bytes(size)} at up to {format_rate(first)}: at least "
            f"{duration(size / first)}; ")
    if cmd.mode == "hybrid":
        plan += "then post-copy pulls what was dirtied meanwhile."
    elif xen:
        plan += (f"then rounds of the pages dirtied meanwhile, faster up to "
                 f"{format_rate(top)}, and a stop-and-copy of the rest (the downtime).")
    else:
        limit = cmd.downtime_limit or policy.qemu_downtime_limit
        plan += (f"passes repeat until what is left fits in {duration(limit)} "
                 "(the downtime limit)"
                 + (", throttling the vCPUs if it does not converge." if cmd.auto_converge
                    else "; a busy VM may never converge (auto-converge throttles it)."))
    return plan + f" Its traffic shares {src}'s NIC with the VMs' service."


class MigrateDialog(Dialog):
    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                Binding("ctrl+g", "migrate", "Migrate", show=True)]

    REUSABLE = True  # the App keeps one and hands it the next VM (see reuse)

    def __init__(self, ctx: ActionContext) -> None:
        super().__init__(ctx.snapshot, ctx.vm, ctx.preview, live=ctx.live)
        self._take(ctx)

    def _take(self, ctx: ActionContext) -> None:
        self.snapshot, self.live, self.vm, self.preview = (ctx.snapshot, ctx.live, ctx.vm,
                                                           ctx.preview)
        self.vm_id = ctx.vm or ""
        self.policy = ctx.spec.policy.migration
        self.wws = ctx.wws(self.vm_id) if self.vm_id in self.snapshot.vms.ids else {}
        self.verdicts: dict[str, Verdict] = {}
        self.command: Migrate | None = None
        self.problem: str | None = None
        self.echo = ""
        self.rejections = 0

    def reuse(self, ctx: ActionContext) -> None:
        """Open again, for another VM (or the same one in a newer world), as new: its
        fields back to their defaults. Composing this dialog's two dozen widgets is most
        of what opening it costs (100 ms on the 1,000-VM world); they are kept."""
        self._take(ctx)
        if not self.is_mounted:
            return
        self.query_one("#migrate-title", Static).update(self.title_text())
        self.query_one("#migrate-summary", Static).update(self.vm_summary())
        self.query_one("#migrate-wws", Static).update(self.wws_text())
        # Back to the defaults quietly: each change would ask the engine again.
        with self.prevent(Select.Changed, Input.Changed, Checkbox.Changed):
            self.query_one("#migrate-mode", Select).value = "precopy"
            self.query_one("#migrate-algorithm", Select).value = "xen"
            self._options = ("precopy", "xen")
            for selector in ("#migrate-rate", "#migrate-downtime"):
                self.query_one(selector, Input).value = ""
            for key, _ in OPTIONS:
                self.query_one(f"#migrate-{key}", Checkbox).value = key == "prepaging"
        self.query_one(VerdictLine).remove_class("-refused")
        table = self.query_one(DataTable)
        if [str(k.value) for k in table.rows] != [h.id for h in self.snapshot.hosts]:
            table.clear()  # another world's hosts
        self._first_show(table)

    def title_text(self) -> str:
        vm = self.snapshot.vm(self.vm_id)
        return f"Migrate {vm.id}" + (f" from {vm.host}" if vm.host else "")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide", id="migrate-dialog"):
            yield Static(self.title_text(), classes="dialog--title", id="migrate-title")
            yield Static(self.vm_summary(), classes="dialog--body", id="migrate-summary")
            yield Static(self.wws_text(), classes="dialog--body", id="migrate-wws")
            yield FitTable(flexible="verdict", id="migrate-hosts")
            with Horizontal(classes="dialog--field"):
                yield Label("Mode")
                yield Select(MODES, value="precopy", allow_blank=False, compact=True,
                             id="migrate-mode")
                yield Label("Algorithm")
                yield Select(ALGORITHMS, value="xen", allow_blank=False, compact=True,
                             id="migrate-algorithm")
            with Horizontal(classes="dialog--field"):
                yield Label("Max rate")
                yield Input(placeholder=f"policy {format_rate(self.policy.xen_max_rate)}",
                            id="migrate-rate", compact=True)
                yield Label("Downtime ≤")
                limit = duration(self.policy.qemu_downtime_limit)
                yield Input(placeholder=f"qemu {limit}", id="migrate-downtime", compact=True)
            with Grid(id="migrate-options"):
                for key, label in OPTIONS:
                    yield Checkbox(label, value=key == "prepaging", compact=True,
                                   id=f"migrate-{key}", tooltip=OPTION_HELP[key])
            yield Static(id="migrate-plan", classes="dialog--body -hint")
            yield VerdictLine()
            yield Static("Enter (on the hosts or a field) or ctrl+g: migrate to the highlighted "
                         "host   Tab: options   Space: toggle   Esc: cancel",
                         classes="dialog--keys")
        yield KeyBar()

    def wws_text(self) -> str:
        vm = self.snapshot.vm(self.vm_id)
        resident = f"resident {format_bytes(vm.resident_bytes)} of " \
                   f"{format_bytes(vm.configured_bytes)}"
        if not self.wws:
            return resident.capitalize()
        parts = [f"{rate_text(n)} in {w}" for w, n in self.wws.items()
                 if w in ("1s", "10s", "60s", "600s")]
        return f"Pages written (WWS): {', '.join(parts)}; {resident}."

    def on_mount(self) -> None:
        table = self.query_one(FitTable)
        for key, label, width in (("host", "Destination", 11), ("state", "State", 5),
                                  ("free", "Free", 9), ("ratio", "Overcommit", 13),
                                  ("verdict", "Engine says", 58)):
            table.add_column(label, key=key, width=width)
        self.call_after_refresh(table.fit)
        self._first_show(table)

    def _first_show(self, table: DataTable[Any]) -> None:
        """Every destination's verdict; the cursor on the first that accepts."""
        self.refresh_verdict()
        current = self.snapshot.vm(self.vm_id).host
        best = next((h for h, v in self.verdicts.items() if v.ok), None) or next(
            (h.id for h in self.snapshot.hosts if h.id != current), None)
        if best is not None:
            table.move_cursor(row=table.get_row_index(best), animate=False)
        table.focus()

    # -- the command ---------------------------------------------------------------
    def _value(self, selector: str) -> str:
        return self.query_one(selector, Input).value.strip()

    def build(self, host: str) -> Migrate:
        """The command for `host`; sets self.problem when a field does not parse."""
        self.problem = None
        mode = self.query_one("#migrate-mode", Select).value
        algorithm = self.query_one("#migrate-algorithm", Select).value
        options = {key: self.query_one(f"#migrate-{key}", Checkbox).value for key, _ in OPTIONS}
        max_rate = downtime = None
        echoes = []
        try:
            if self._value("#migrate-rate"):
                max_rate, echo = parse_rate_text(self._value("#migrate-rate"), "max rate")
                echoes.append(f"max rate {echo}")
        except InputProblem as err:
            self.problem = str(err)
        try:
            if self._value("#migrate-downtime"):
                downtime, echo = parse_duration(self._value("#migrate-downtime"),
                                                "downtime limit")
                echoes.append(f"downtime limit {echo}")
        except InputProblem as err:
            self.problem = str(err)
        self.echo = "; ".join(echoes)
        # A post-copy has no iterative phase: its rate field caps the post-copy stream
        # (QEMU's max-postcopy-bandwidth); otherwise it caps the pre-copy rounds.
        rates = ({"max_postcopy_rate": max_rate} if mode == "postcopy"
                 else {"max_rate": max_rate})
        return Migrate.model_validate(
            {"vm": self.vm_id, "to": host, "mode": mode, "algorithm": algorithm,
             "downtime_limit": downtime, **rates, **options})

    def refresh_verdict(self) -> None:
        table = self.query_one(DataTable)
        if not table.columns:  # a Select announced its value before on_mount
            return
        configured = self.snapshot.vm(self.vm_id).configured_bytes
        base = self.build(self.snapshot.hosts[0].id if self.snapshot.hosts else "")
        for host in self.snapshot.hosts:
            # The fields parse once; each destination is the same command to another host.
            verdict = safe_preview(self.preview, base.model_copy(update={"to": host.id}))
            self.verdicts[host.id] = verdict
            after = (host.configured_vm_bytes + configured) / host.memory_bytes \
                if host.memory_bytes else 0.0
            state = Text(host.state, style=STATE_STYLES.get(host.state, "")) if host.up \
                else Text("DOWN", style="bold red")
            cells = (Text(host.id), state, Text(format_bytes(host.free_bytes), justify="right"),
                     Text(f"{host.overcommit_ratio:.2f}x → {after:.2f}x"),
                     verdict_text(verdict))
            update_row(table, host.id, ("host", "state", "free", "ratio", "verdict"), cells)
        qemu = self.query_one("#migrate-algorithm", Select).value == "qemu"
        postcopy = self.query_one("#migrate-mode", Select).value == "postcopy"
        self.query_one("#migrate-downtime", Input).disabled = not qemu
        policy_rate = (self.policy.max_postcopy_bandwidth if postcopy else
                       self.policy.qemu_max_bandwidth if qemu else self.policy.xen_max_rate)
        self.query_one("#migrate-rate", Input).placeholder = (
            "policy " + format_rate(policy_rate) if policy_rate > 0 else "unlimited")
        self._show_highlighted()

    def _highlighted_host(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def _show_highlighted(self) -> None:
        host = self._highlighted_host()
        if host is None:
            return
        self.command = self.build(host)
        vm = self.snapshot.vm(self.vm_id)
        self.query_one("#migrate-plan", Static).update(expectation(
            self.command, self.policy, vm.configured_bytes, vm.resident_bytes,
            vm.host or "its host"))
        line = self.query_one(VerdictLine)
        if self.problem is not None:
            line.show(None, problem=self.problem)
            return
        line.show(self.verdicts.get(host), f"{self.vm_id} starts migrating to {host} at the "
                  f"next tick ({migrate_options(self.command)})", echo=self.echo)

    # -- events --------------------------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_highlighted()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_migrate()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        # The Selects announce their first values after on_mount: nothing changed then.
        options = (self.query_one("#migrate-mode", Select).value,
                   self.query_one("#migrate-algorithm", Select).value)
        if options != self._options:
            self._options = options
            self.refresh_verdict()

    _options: tuple[object, object] = ("precopy", "xen")

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self.refresh_verdict()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.refresh_verdict()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_migrate()

    def action_migrate(self) -> None:
        host = self._highlighted_host()
        if host is None:
            return
        self.refresh_verdict()
        verdict = None if self.problem is not None else self.verdicts.get(host)
        self.confirm(self.command, verdict)
