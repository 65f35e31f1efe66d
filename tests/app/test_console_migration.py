"""Pilot tests of live migration, failures and the SLA views: the migrate dialog with its
per-host verdicts, the live migration panel (rounds, downtime, post-copy faults),
cancelling and switching to post-copy, failing hosts and links, the SLA and money screen."""

from __future__ import annotations

from textual.widgets import DataTable, Input, Select

from app.console.live import Link
from app.console.palette import OperatorCommands
from app.console.screens.confirm_dialog import ConfirmDialog
from app.console.screens.failure_dialogs import HostPowerDialog, LinkDialog, cut_off
from app.console.screens.migrate_dialog import MigrateDialog
from app.console.screens.overview import OverviewScreen
from app.console.screens.sla_screen import SLAScreen
from app.console.screens.vm_detail import VMDetailScreen
from app.console.widgets.host_list import HostList
from app.console.widgets.migration_panel import MigrationPanel
from app.console.widgets.money_panel import MoneyPanel
from app.console.widgets.service_panel import ServicePanel
from app.console.widgets.verdict_line import VerdictLine
from app.console.widgets.vm_table import VMTable
from tests.app.test_console import (
    SIZE,
    log_text,
    make_app,
    pilot_test,
    select_vm,
    steps_settled,
    table_cell,
    text_of,
)
from tests.app.test_console_keys import press

MAX_TICKS = 120  # a Xen pre-copy of web1 (1 GiB, round 1 at 100 Mbit/s) takes ~90


async def step(pilot, n: int = 1) -> None:
    for _ in range(n):
        await pilot.press("full_stop")
    await steps_settled(pilot)


async def step_until(pilot, done, limit: int = MAX_TICKS) -> None:
    """Step a tick at a time (without pilot.press's idle waits) until done() holds."""
    for _ in range(limit):
        if done():
            break
        await press(pilot, "full_stop")
        await steps_settled(pilot)  # done() looks at the tick this step ran


def panel_text(app) -> str:
    return text_of(app.screen.query_one(MigrationPanel))


async def open_migrate(pilot, vm: str = "web1") -> MigrateDialog:
    await select_vm(pilot, vm)
    await pilot.press("g")
    await pilot.pause()
    dialog = pilot.app.screen
    assert isinstance(dialog, MigrateDialog) and dialog.vm == vm
    return dialog


async def migrate(pilot, vm: str = "web1", mode: str = "precopy",
                  algorithm: str = "xen", rate: str = "") -> None:
    """Open the dialog, pick the options, confirm on the highlighted (accepted) host."""
    dialog = await open_migrate(pilot, vm)
    dialog.query_one("#migrate-mode", Select).value = mode
    dialog.query_one("#migrate-algorithm", Select).value = algorithm
    dialog.query_one("#migrate-rate", Input).value = rate
    await pilot.pause()
    dialog.query_one("#migrate-hosts", DataTable).focus()
    await pilot.press("enter")
    await pilot.pause()
    assert not isinstance(pilot.app.screen, MigrateDialog)


@pilot_test
async def test_migrate_dialog_shows_a_verdict_per_destination() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        dialog = await open_migrate(pilot)
        hosts = dialog.query_one("#migrate-hosts", DataTable)
        assert "rejected" in table_cell(hosts, "h1", "verdict")
        assert "already runs on h1" in table_cell(hosts, "h1", "verdict")
        assert "accepted" in table_cell(hosts, "h2", "verdict")
        assert "MiB" in table_cell(hosts, "h2", "free")
        # The cursor starts on the host the engine accepts, and says what will happen.
        assert dialog._highlighted_host() == "h2"
        verdict = text_of(dialog.query_one(VerdictLine))
        assert "accepted" in verdict and "web1 starts migrating to h2" in verdict
        assert "Round 1 sends 1GiB at up to 100Mbit/s" in text_of(dialog.query_one("#migrate-plan"))
        # The current host cannot be confirmed.
        hosts.move_cursor(row=hosts.get_row_index("h1"))
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog and dialog.rejections == 1
        # A rate that does not parse is refused with the unit's message.
        rate = dialog.query_one("#migrate-rate", Input)
        rate.value = "fast"
        await pilot.pause()
        assert "max rate: expected a rate" in text_of(dialog.query_one(VerdictLine))
        rate.value = "200Mbit/s"
        dialog.query_one("#migrate-algorithm", Select).value = "qemu"
        dialog.query_one("#migrate-downtime", Input).value = "50ms"
        await pilot.pause()
        hosts.move_cursor(row=hosts.get_row_index("h2"))
        await pilot.pause()
        verdict = text_of(dialog.query_one(VerdictLine))
        assert "qemu, max 200Mbit/s, downtime ≤ 50 ms" in verdict
        assert "max rate = 200Mbit/s; downtime limit = 50 ms" in verdict  # read as typed
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen) and not app.live.migrations


@pilot_test
async def test_a_precopy_runs_its_rounds_then_is_done() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await migrate(pilot)
        assert "migrate web1 to h2 (precopy, xen): accepted" in log_text(app)
        await step(pilot, 3)
        panel = panel_text(app)
        assert "web1 h1 → h2" in panel and "PRE-COPY round 1" in panel
        assert "duration" in panel and "skipped" in panel and "WWS" in panel
        assert "migration web1 migrating h1 -> h2 (precopy, xen)" in log_text(app)
        await step_until(pilot, lambda: "PRE-COPY round 2" in panel_text(app))
        assert "  2 " in panel_text(app)  # the second round's row
        await step_until(pilot, lambda: "DONE" in panel_text(app))
        panel = panel_text(app)
        assert "✔ DONE" in panel
        assert "downtime" in panel and "ms" in panel
        rounds = app.live.latest("web1")["rounds"]
        assert len(rounds) >= 2 and f"{rounds[1]['pages_to_send']}" in panel
        assert "migrated web1 now runs on h2" in log_text(app)
        assert app.snapshot.vm("web1").host == "h2"
        # The VM's detail screen shows its migration in full, and the event.
        await select_vm(pilot, "web1")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, VMDetailScreen)
        assert app.screen.query_one("#detail-migration").display
        assert "✔ DONE" in panel_text(app) and "10m" in panel_text(app)


@pilot_test
async def test_a_postcopy_shows_network_and_minor_faults() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        # Capped (the rate field caps a post-copy's stream): a 5 s tick leaves pages to come.
        await migrate(pilot, mode="postcopy", rate="200Mbit/s")
        await step(pilot, 1)
        assert app.snapshot.vm("web1").host == "h2"  # it runs at the destination at once
        assert "post-copy web1 resumed on h2" in log_text(app)
        panel = panel_text(app)
        assert "POST-COPY" in panel and "network faults" in panel
        await step_until(pilot, lambda: "DONE" in panel_text(app))
        m = app.live.latest("web1")
        assert m["status"] == "done" and m["network_faults"] > 0
        panel = panel_text(app)
        assert f"network faults {m['network_faults']:,}" in panel
        assert "minor faults" in panel and "pushed" in panel
        assert "migrated web1's memory is all on h2" in log_text(app)


@pilot_test
async def test_cancel_a_precopy_keeps_the_vm_at_its_source() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("G")  # nothing to cancel yet
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
        await migrate(pilot)
        await step(pilot, 3)
        await pilot.press("G")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog) and dialog.vm == "web1"
        assert "accepted" in text_of(dialog.query_one(VerdictLine))
        assert "round 1" in text_of(dialog.query_one("#confirm-about"))
        await pilot.press("enter")
        await step(pilot)
        assert "mig stop migration of web1 stopped (cancelled); it keeps running on h1" \
            in log_text(app)
        assert "CANCELLED" in panel_text(app)
        assert app.snapshot.vm("web1").host == "h1"
        assert not app.live.migrating()


@pilot_test
async def test_switch_a_precopy_to_postcopy() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await migrate(pilot)
        await step(pilot, 3)
        await pilot.press("P")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert "resumes on h2" in text_of(app.screen.query_one("#confirm-about"))
        await pilot.press("y")
        await step(pilot)
        assert app.live.latest("web1")["status"] in ("postcopy", "done")
        assert app.snapshot.vm("web1").host == "h2"
        assert "post-copy web1 resumed on h2" in log_text(app)


@pilot_test
async def test_a_failed_host_loses_its_vms_and_comes_back_empty() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        hosts = app.screen.query_one(HostList)
        hosts.focus()
        hosts.highlighted = hosts.get_option_index("host:h2")
        await pilot.press("f")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, HostPowerDialog) and dialog.host == "h2"
        about = text_of(dialog.query_one("#choice-about"))
        assert "web2, batch1, desk2" in about and "lost" in about
        assert dialog._highlighted() == 1  # the cursor starts on "down"
        assert "h2 fails at the next tick" in text_of(dialog.query_one(VerdictLine))
        await pilot.press("enter")
        await step(pilot)
        log = log_text(app)
        assert "HOST DOWN h2 failed" in log
        for vm in ("web2", "batch1", "desk2"):
            assert f"VM LOST {vm} went down with h2" in log
            assert not app.snapshot.vm(vm).running
        assert not app.snapshot.host("h2").up
        await pilot.press("f")
        await pilot.pause()
        assert "is DOWN" in text_of(app.screen.query_one("#choice-about"))
        await pilot.press("enter")  # the cursor starts on "up" now
        await step(pilot)
        assert app.snapshot.host("h2").up and "host up h2 is back" in log_text(app)


@pilot_test
async def test_a_link_down_fails_the_migration_over_it() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await migrate(pilot)
        await step(pilot, 2)
        await pilot.press("k")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, LinkDialog)
        table = dialog.query_one(DataTable)
        labels = [table_cell(table, str(i), "choice") for i in range(table.row_count)]
        row = next(i for i, label in enumerate(labels) if "tor1–h2" in label)
        assert "→ take down" in labels[row]
        table.move_cursor(row=row)
        await pilot.pause()
        verdict = text_of(dialog.query_one(VerdictLine))
        assert "accepted" in verdict and "h2 loses gw, h1" in verdict
        await pilot.press("enter")
        await step(pilot)
        assert "MIG FAIL migration of web1 stopped (the network path between them is down)" \
            in log_text(app)
        assert "FAILED" in panel_text(app) and app.snapshot.vm("web1").host == "h1"
        await pilot.press("k")
        await pilot.pause()
        assert "Down now: tor1–h2" in text_of(app.screen.query_one("#choice-about"))


def test_cut_off_names_what_a_host_loses() -> None:
    links = (Link("tor1", "gw", True, 1e9, ("switch", "gateway")),
             Link("tor1", "h1", True, 1e8, ("switch", "host")),
             Link("tor1", "h2", True, 1e8, ("switch", "host")))
    assert cut_off(links, links[1]) == "h1 loses gw, h2"
    assert cut_off(links, links[0]) == "h1, h2 lose gw"  # the switch's uplink


@pilot_test
async def test_sla_screen_and_the_service_panel() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await step(pilot, 5)
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, SLAScreen)
        money = text_of(app.screen.query_one(MoneyPanel))
        for word in ("revenue", "power", "capital", "network", "penalties", "profit", "/h"):
            assert word in money
        table = app.screen.query_one(VMTable)
        assert table.column_set == "sla"
        assert table_cell(table, "web1", "breaches") == "0"
        assert table_cell(table, "web1", "service_avg").endswith("%")
        assert "Lost service by cause" in text_of(app.screen.query_one("#sla-summary"))
        await select_vm(pilot, "db1")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, VMDetailScreen) and app.screen.subject == "db1"
        service = text_of(app.screen.query_one(ServicePanel))
        for word in ("service now", "service avg", "latency", "SLA", "penalties",
                     "swap-ins", "guest paging", "COW breaks", "dirty logging", "post-copy",
                     "downtime", "NIC"):
            assert word in service
        assert not app.screen.query_one("#detail-migration").display
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
        await pilot.press("c", "c")  # basic -> memory -> sla
        assert app.screen.query_one(VMTable).column_set == "sla"


@pilot_test
async def test_palette_offers_migration_for_running_vms_only() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        provider = OperatorCommands(app.screen)
        titles = [title for title, _, _ in provider._action_entries()]
        assert "Live-migrate a VM: web1" in titles
        assert "Live-migrate a VM: web3" not in titles  # queued, not running
        assert not [t for t in titles if t.startswith("Cancel a pre-copy")]
        assert "Fail a host or bring it back: h1" in titles
        assert "Take a network link down or up" in titles
        await migrate(pilot)
        await step(pilot)
        titles = [title for title, _, _ in provider._action_entries()]
        assert "Cancel a pre-copy migration: web1" in titles
        assert "Switch a pre-copy to post-copy: web1" in titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"live-migrate a vm: db1")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, MigrateDialog) and app.screen.vm == "db1"


@pilot_test
async def test_migrate_dialog_opens_again_as_new_for_another_vm() -> None:
    """The dialog is kept once built (composing it is most of its cost): opened again it
    is the next VM's, with every field back to its default."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        first = await open_migrate(pilot, "web1")
        first.query_one("#migrate-mode", Select).value = "postcopy"
        first.query_one("#migrate-algorithm", Select).value = "qemu"
        first.query_one("#migrate-rate", Input).value = "fast"
        first.query_one("#migrate-xbzrle").value = True
        await pilot.pause()
        assert "invalid" in text_of(first.query_one(VerdictLine))
        await pilot.press("escape")
        await pilot.pause()
        again = await open_migrate(pilot, "db1")
        assert again is first  # the same screen, handed db1
        assert text_of(again.query_one("#migrate-title")).startswith("Migrate db1")
        assert "db1:" in text_of(again.query_one("#migrate-summary"))
        assert again.query_one("#migrate-mode", Select).value == "precopy"
        assert again.query_one("#migrate-algorithm", Select).value == "xen"
        assert again.query_one("#migrate-rate", Input).value == ""
        assert again.query_one("#migrate-xbzrle").value is False
        assert again.query_one("#migrate-prepaging").value is True
        hosts = again.query_one("#migrate-hosts", DataTable)
        db1_host = app.snapshot.vm("db1").host
        assert hosts.row_count == len(app.snapshot.hosts)
        assert f"already runs on {db1_host}" in table_cell(hosts, db1_host, "verdict")
        verdict = text_of(again.query_one(VerdictLine))
        assert "accepted" in verdict and "db1 starts migrating to" in verdict
        assert again.rejections == 0 and again.command is not None
        assert again.command.vm == "db1" and again.command.mode == "precopy"
        await pilot.press("enter")  # confirms db1's migration, as a new dialog would
        await pilot.pause()
        assert not isinstance(app.screen, MigrateDialog)
        assert "db1" in app.snapshot.pending_vms()


def test_the_migration_panel_says_what_reads_back_from_swap_cost() -> None:
    # A QEMU pre-copy of a VM with 1,024 pages swapped out at its source, one a read-ahead
    # cluster: the panel's state line and the headless summary give the pages and the
    # sender's wait.
    import numpy as np
    from rich.console import Console

    from app.console.widgets.migration_panel import state_line
    from app.summary import print_migrations
    from tests.engine.test_migration_swapread import SCATTERED, _run

    m = _run(SCATTERED, algorithm="qemu")
    text = state_line(m).plain
    assert "read back from swap 1,024 pages, 5.16 s of the sender's time" in text
    console = Console(record=True, width=300)  # and `overcommit run`'s summary line
    print_migrations(console, [m])
    assert "1,024 pages read back from swap (5.162s waited)" in console.export_text()
    assert "read back from swap" not in state_line(_run(np.zeros(0, np.int64),
                                                        algorithm="qemu")).plain
