"""Pilot tests of the memory-mechanism actions: balloon and swap targets, the balloon
driver, the idle tax, page sharing and salting, load spikes; and the panels that show them."""

from __future__ import annotations

import dataclasses

from textual.widgets import DataTable, Input

from app.console.screens.choice_dialog import ChoiceDialog
from app.console.screens.host_detail import HostDetailScreen
from app.console.screens.idle_tax_dialog import IdleTaxDialog, parse_tax
from app.console.screens.place_dialog import PlaceDialog
from app.console.screens.stop_dialog import StopDialog
from app.console.screens.target_dialog import TargetDialog
from app.console.screens.vm_detail import VMDetailScreen
from app.console.screens.workload_dialog import WorkloadDialog
from app.console.widgets.allocation_panel import AllocationPanel
from app.console.widgets.host_list import HostList, memory_bar
from app.console.widgets.reclaim_panel import ReclaimPanel
from app.console.widgets.sharing_panel import SharingPanel
from app.console.widgets.verdict_line import VerdictLine
from app.console.widgets.vm_table import VMTable
from tests.app.test_console import (
    SIZE,
    log_text,
    make_app,
    pilot_test,
    select_vm,
    table_cell,
    text_of,
)

MiB = 2**20


async def step(pilot, n: int) -> None:
    for _ in range(n):
        await pilot.press("full_stop")
    await pilot.pause()


@pilot_test
async def test_balloon_target_verdicts_then_the_balloon_grows() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await select_vm(pilot, "web1")
        await pilot.press("b")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, TargetDialog) and dialog.kind == "balloon"
        field = dialog.query_one(Input)
        field.value = "800MiB"  # above 65 % of the 1 GiB VM
        await pilot.pause()
        verdict = text_of(dialog.query_one(VerdictLine))
        assert "rejected" in verdict and "at most 65% of web1" in verdict
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog and dialog.rejections == 1
        field.value = "300MiB"
        await pilot.pause()
        assert "accepted" in text_of(dialog.query_one(VerdictLine))
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, TargetDialog)
        assert "set balloon target of web1 to 300MiB: accepted" in log_text(app)
        await step(pilot, 3)
        early = app.snapshot.vm("web1").balloon_bytes
        await step(pilot, 10)
        vm = app.snapshot.vm("web1")
        assert 0 < early < vm.balloon_bytes <= 300 * MiB
        assert vm.balloon_target_bytes == 300 * MiB
        assert app.snapshot.host("h1").balloon_bytes == vm.balloon_bytes
        # The VM table's memory columns show it, so does the VM's detail screen.
        await pilot.press("c")
        await pilot.pause()
        table = app.screen.query_one(VMTable)
        assert table.column_set == "memory"
        assert table_cell(table, "web1", "balloon") == "300M"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, VMDetailScreen) and app.screen.subject == "web1"
        panel = text_of(app.screen.query_one(AllocationPanel))
        assert "balloon" in panel and "300MiB" in panel and "active est." in panel


@pilot_test
async def test_without_a_balloon_driver_only_swapping_is_left() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await select_vm(pilot, "db1")
        await pilot.press("d")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ChoiceDialog) and "Balloon driver of db1" in dialog.title_text
        await pilot.press("down", "enter")  # disabled
        await step(pilot, 1)
        assert not app.snapshot.vm("db1").balloon_driver
        await pilot.press("b")
        await pilot.pause()
        app.screen.query_one(Input).value = "100MiB"
        await pilot.pause()
        assert "db1 has no balloon driver" in text_of(app.screen.query_one(VerdictLine))
        await pilot.press("escape", "w")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, TargetDialog) and dialog.kind == "swap"
        dialog.query_one(Input).value = "100MiB"
        await pilot.pause()
        assert "accepted" in text_of(dialog.query_one(VerdictLine))
        await pilot.press("enter")
        await step(pilot, 5)
        assert app.snapshot.vm("db1").swapped_bytes > 0


@pilot_test
async def test_switch_a_hosts_sharing_mode_and_see_it_in_the_panel() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        hosts = app.screen.query_one(HostList)
        hosts.focus()
        hosts.highlighted = hosts.get_option_index("host:h2")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, HostDetailScreen)
        panel = app.screen.query_one(SharingPanel)
        assert text_of(panel).splitlines()[0].split() == ["mode", "esx"]
        assert "pages_sharing" in text_of(panel) and "hash/compare/s" in text_of(panel)
        await pilot.press("h")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ChoiceDialog) and dialog.host == "h2"
        table = dialog.query_one(DataTable)
        assert "accepted" in table_cell(table, "1", "verdict")
        await pilot.press("down", "enter")  # esx -> ksm
        await pilot.pause()
        assert isinstance(app.screen, HostDetailScreen)
        await step(pilot, 2)
        assert app.snapshot.host("h2").sharing_mode == "ksm"
        assert app.snapshot.host("h1").sharing_mode == "esx"
        assert text_of(panel).splitlines()[0].split() == ["mode", "ksm"]
        assert "sharing ksm" in text_of(app.screen.query_one("#detail-head"))
        assert "switch page sharing on h2 to ksm: accepted" in " ".join(
            ev.message for _, ev in app.events)


@pilot_test
async def test_set_the_idle_tax_of_one_host_then_of_every_host() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        hosts = app.screen.query_one(HostList)
        hosts.focus()
        hosts.highlighted = hosts.get_option_index("host:h1")
        await pilot.press("t")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, IdleTaxDialog) and dialog.scope() == "h1"
        field = dialog.query_one(Input)
        assert field.value == "0.75"
        field.value = "100%"
        await pilot.pause()
        assert "from 0 to 0.99" in text_of(dialog.query_one(VerdictLine))
        field.value = "90%"
        await pilot.pause()
        assert "accepted" in text_of(dialog.query_one(VerdictLine))
        await pilot.press("enter")
        await step(pilot, 1)
        assert [h.idle_tax for h in app.snapshot.hosts] == [0.9, 0.75]
        assert "tax 90%" in str(hosts.get_option("host:h1").prompt)
        await pilot.press("t")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, IdleTaxDialog)
        await pilot.press("down", "down")  # h1 -> h2 -> every host
        assert dialog.scope() is None
        dialog.query_one(Input).value = "0"
        await pilot.pause()
        assert "every host" in text_of(dialog.query_one(VerdictLine))
        await pilot.press("enter")
        await step(pilot, 1)
        assert [h.idle_tax for h in app.snapshot.hosts] == [0.0, 0.0]
        hosts.highlighted = hosts.get_option_index("host:h1")
        await pilot.press("enter")
        await pilot.pause()
        assert "idle tax τ" in text_of(app.screen.query_one(ReclaimPanel))


def test_tax_rates_read_as_fractions_or_percentages() -> None:
    assert parse_tax("0.75") == 0.75 and parse_tax("75%") == 0.75 and parse_tax("90") == 0.9


@pilot_test
async def test_salting_applies_to_the_whole_data_center() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("z")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ChoiceDialog) and dialog.current == 0  # the tutorial's
        await pilot.press("down", "down", "enter")
        await step(pilot, 1)
        assert "page-sharing salting level = 2" in log_text(app)


@pilot_test
async def test_a_load_spike_is_previewed_then_applied() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await select_vm(pilot, "web2")
        await pilot.press("l")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, WorkloadDialog)
        assert dialog.query_one("#load-reads_per_s", Input).value == "1200"  # 4 x 300
        dialog.query_one("#load-working_set", Input).value = "2GiB"
        await pilot.pause()
        assert "does not fit in 1GiB" in text_of(dialog.query_one(VerdictLine))
        dialog.query_one("#load-working_set", Input).value = "900MiB"
        await pilot.pause()
        assert "accepted" in text_of(dialog.query_one(VerdictLine))
        await pilot.press("enter")
        await step(pilot, 1)
        log = log_text(app)
        assert "set the load of web2: 1200 reads/s, 240 writes/s, working set 900MiB" in log
        assert "web2 workload: reads_per_s 1200" in log


@pilot_test
async def test_a_stopped_vm_is_stopped_not_queued_and_can_start_again() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await select_vm(pilot, "batch1")
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, StopDialog)
        effect = text_of(app.screen.query_one("#stop-effect"))
        assert "−$0.0600/h" in effect and "$0.3800/h → $0.3200/h" in effect
        await pilot.press("enter")
        await step(pilot, 1)
        table = app.screen.query_one(VMTable)
        assert table_cell(table, "batch1", "host") == "stopped"
        assert table_cell(table, "web3", "host") == "queued"
        await pilot.press("p")  # batch1 is selected and stopped: it is the one offered
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, PlaceDialog) and dialog.vm == "batch1"
        assert "Start batch1 again" in text_of(dialog.query_one(".dialog--title"))
        assert "+$0.0600/h" in text_of(dialog.query_one("#place-revenue"))


@pilot_test
async def test_palette_lists_host_and_data_center_actions() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"switch a host's page sharing: h1")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceDialog) and app.screen.host == "h1"


def test_memory_bar_draws_balloon_and_swap_beyond_ram() -> None:
    app = make_app()
    host = app.snapshot.host("h1")  # 2 GiB of RAM, 2.5 GiB promised
    bar = memory_bar(host, 42).plain
    assert len(bar) == 42 and bar.startswith("▕") and "▏" in bar
    ram, beyond = bar[1:].split("▏")
    assert len(ram) == 32 and set(beyond) == {"╌"}  # 40 cells: 2/2.5 of them RAM
    squeezed = dataclasses.replace(host, balloon_bytes=256 * MiB, swapped_bytes=128 * MiB)
    beyond = memory_bar(squeezed, 42).plain.split("▏")[1]
    assert beyond == "▒" * 4 + "░" * 2 + "╌" * 2
