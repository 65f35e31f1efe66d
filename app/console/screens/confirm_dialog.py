"""Confirm one command (cancel a migration, switch it to post-copy): what it will do,
the engine's verdict, Enter or y to apply."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from app.console.screens.dialog import Dialog, safe_preview
from app.console.view import ActionContext
from app.console.widgets.key_bar import KeyBar
from app.console.widgets.verdict_line import VerdictLine
from engine import Command
from engine.commands import CancelMigration, SwitchToPostcopy, Verdict
from engine.units import format_bytes


class ConfirmDialog(Dialog):
    BINDINGS = [Binding("escape,n", "cancel", "Cancel"),
                Binding("enter,y", "apply", "Apply")]

    verdict: Verdict | None = None

    def __init__(self, ctx: ActionContext, title: str, command: Command,
                 about: Callable[[ConfirmDialog], str], effect: str) -> None:
        super().__init__(ctx.snapshot, ctx.vm, ctx.preview, host=ctx.host, live=ctx.live)
        self.title_text = title
        self.command = command
        self.about = about
        self.effect = effect

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.title_text, classes="dialog--title")
            yield Static(id="confirm-about", classes="dialog--body")
            yield VerdictLine()
            yield Static("Enter/y: apply   Esc/n: cancel", classes="dialog--keys")
        yield KeyBar()

    def on_mount(self) -> None:
        self.refresh_verdict()

    def refresh_verdict(self) -> None:
        self.query_one("#confirm-about", Static).update(self.about(self))
        self.verdict = safe_preview(self.preview, self.command)
        self.query_one(VerdictLine).show(self.verdict, self.effect)

    def action_apply(self) -> None:
        self.confirm(self.command, self.verdict)


def _progress(dialog: ConfirmDialog) -> str:
    m = dialog.live.latest(dialog.vm or "")
    if m is None:
        return f"{dialog.vm} has no migration on screen."
    return (f"{m['vm']}: {m['src']} → {m['dst']} ({m['mode']}, {m['algorithm']}), "
            f"{m['status']}, round {max(len(m['rounds']), 1)}, "
            f"{format_bytes(m['transferred_bytes'])} sent, "
            f"{format_bytes(m['remaining_bytes'])} left.")


def cancel_dialog(ctx: ActionContext) -> ConfirmDialog:
    vm = ctx.vm or ""

    def about(d: ConfirmDialog) -> str:
        return (_progress(d) + f"\nCancelling keeps {vm} where it runs; what was sent is "
                "wasted (and billed as network traffic), dirty logging and any throttle stop.")

    return ConfirmDialog(ctx, f"Cancel the migration of {vm}?", CancelMigration(vm=vm),
                         about, f"the pre-copy of {vm} stops at the next tick")


def postcopy_dialog(ctx: ActionContext) -> ConfirmDialog:
    vm = ctx.vm or ""

    def about(d: ConfirmDialog) -> str:
        m = d.live.latest(vm)
        dst = m["dst"] if m else "the destination"
        src = m["src"] if m else "the source"
        return (_progress(d) + f"\nPost-copy ends the pre-copy at once: {vm} pauses a few "
                f"ms and resumes on {dst}; pages still on {src} are pulled on demand "
                f"(network faults stall it) and pushed. Until the last page arrives, a "
                f"failure of {src}, {dst} or the link loses the VM.")

    return ConfirmDialog(ctx, f"Switch {vm} to post-copy?", SwitchToPostcopy(vm=vm), about,
                         f"{vm} resumes on the destination at the next tick")
