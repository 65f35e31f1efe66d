"""Snapshot tests (pytest-textual-snapshot) at a fixed seed, clock paused, after N ticks.

Paused frames hold no wall-clock values, so they are stable. Update the SVGs after an
intended change with `pytest tests/app/test_console_snapshots.py --snapshot-update` and
look at them (the failure report shows old and new side by side).
"""

from __future__ import annotations

from pathlib import Path

from app.console.app import OvercommitApp
from engine import Simulation

SEED = 7
TICKS = 30

# The tutorial's data center, frozen here so that tuning the tutorial does not change
# these pictures (engine changes still may: then look at the new SVGs and update them).
SCENARIO = """
[scenario]
name = "Snapshot night"
description = "Two hosts, six VMs and a waiting customer."
duration = "1h"

[[switch]]
id = "tor1"

[[host]]
id = "h1"
memory = "2GiB"
low_memory = "512MiB"
switch = "tor1"
nic = "1Gbit/s"

[[host]]
id = "h2"
memory = "2GiB"
low_memory = "512MiB"
switch = "tor1"
nic = "1Gbit/s"

[[vm]]
id = "web1"
host = "h1"
memory = "1GiB"
min = "256MiB"
app = "apache"
tenant = "acme"
content = { zero = 0.25, os = 0.25, app = 0.15, private = 0.35, resident = 0.45 }
workload = { reads_per_s = 400, writes_per_s = 80, working_set = "384MiB", net = "200Mbit/s" }

[[vm]]
id = "db1"
host = "h1"
memory = "1GiB"
min = "512MiB"
app = "postgres"
tenant = "acme"
content = { zero = 0.1, os = 0.15, app = 0.1, private = 0.65, resident = 0.6 }
workload = { reads_per_s = 600, writes_per_s = 200, working_set = "768MiB", net = "50Mbit/s" }

[[vm]]
id = "desk1"
host = "h1"
memory = "512MiB"
guest_os = "windows"
tenant = "globex"
workload = { kind = "idle" }

[[vm]]
id = "web2"
host = "h2"
memory = "1GiB"
app = "apache"
tenant = "globex"
workload = { reads_per_s = 300, writes_per_s = 60, working_set = "384MiB", net = "150Mbit/s" }

[[vm]]
id = "batch1"
host = "h2"
memory = "768MiB"
app = "spec-cint"
tenant = "initech"
workload = { reads_per_s = 800, writes_per_s = 400, working_set = "640MiB", order = "sequential" }

[[vm]]
id = "web3"
memory = "768MiB"
app = "apache"
tenant = "hooli"

[[timeline]]
at = "10min"
kind = "set_shares"
vm = "db1"
shares = 20480

[[objective]]
metric = "profit"
at_least = 0.05
by = "1h"
description = "Make a profit of $0.05 by dawn"

[[objective]]
metric = "running_vms"
at_least = 6
by = "1h"
description = "Keep six VMs running at dawn"
"""


def make_app(folder: Path) -> OvercommitApp:
    path = folder / "snapshot-night.toml"
    path.write_text(SCENARIO)
    return OvercommitApp(Simulation.from_file(path, seed=SEED), paused=True)


def steps(n: int) -> list[str]:
    return ["full_stop"] * n


def test_overview(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(make_app(tmp_path), press=steps(TICKS), terminal_size=(120, 40))


def test_overview_small_terminal(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(make_app(tmp_path), press=steps(TICKS), terminal_size=(80, 24))


def test_overview_large_terminal(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(make_app(tmp_path), press=steps(TICKS), terminal_size=(160, 50))


def test_place_dialog_small_terminal(snap_compare, tmp_path: Path) -> None:
    """80x24: the dialog fits, its verdict column takes what is left (no sideways scroll)."""
    assert snap_compare(make_app(tmp_path), press=[*steps(5), "p"], terminal_size=(80, 24))


def test_migrate_dialog_small_terminal(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(make_app(tmp_path), press=[*steps(5), "down", "down", "down", "g"],
                        terminal_size=(80, 24))


def test_vm_detail_small_terminal(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(make_app(tmp_path), press=[*steps(5), "down", "enter"],
                        terminal_size=(80, 24))


def test_place_dialog(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(make_app(tmp_path), press=[*steps(TICKS), "p"], terminal_size=(120, 40))


def test_vm_detail(snap_compare, tmp_path: Path) -> None:
    # The table is sorted by VM id: db1 is the second row.
    assert snap_compare(make_app(tmp_path), press=[*steps(TICKS), "down", "enter"],
                        terminal_size=(120, 40))


def test_host_detail(snap_compare, tmp_path: Path) -> None:
    # From the VM table, shift+tab twice reaches the host list (h1 highlighted).
    assert snap_compare(make_app(tmp_path),
                        press=[*steps(TICKS), "shift+tab", "shift+tab", "enter"],
                        terminal_size=(120, 40))


def test_memory_columns_with_a_forced_balloon(snap_compare, tmp_path: Path) -> None:
    # web1 is the fourth row; its balloon is forced to 300MiB, then 20 ticks pass.
    force = ["down", "down", "down", "b", *"300MiB", "enter"]
    assert snap_compare(make_app(tmp_path), press=[*steps(5), *force, *steps(20), "c"],
                        terminal_size=(120, 40))


def test_balloon_dialog_rejects_too_big_a_balloon(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(make_app(tmp_path),
                        press=[*steps(5), "down", "down", "down", "b", *"800MiB"],
                        terminal_size=(120, 40))


def test_idle_tax_dialog(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(make_app(tmp_path), press=[*steps(5), "t", "down"],
                        terminal_size=(120, 40))


def test_migrate_dialog(snap_compare, tmp_path: Path) -> None:
    # web1 is the fourth row; the dialog opens with h2 (accepted) highlighted.
    assert snap_compare(make_app(tmp_path), press=[*steps(5), "down", "down", "down", "g"],
                        terminal_size=(120, 40))


def test_migration_panel_mid_migration(snap_compare, tmp_path: Path) -> None:
    # A Xen pre-copy of web1 to h2, 20 ticks into its first round (100 Mbit/s).
    start = ["down", "down", "down", "g", "enter"]
    assert snap_compare(make_app(tmp_path), press=[*steps(5), *start, *steps(20)],
                        terminal_size=(120, 40))


def test_compare_screen_after_a_fork(snap_compare, tmp_path: Path) -> None:
    # Fork at tick 5 (y), place web3 on h2 in branch B only, 5 more ticks, compare (Y).
    async def fork_place_compare(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press(*steps(5), "y")
        await pilot.app.workers.wait_for_complete()
        await pilot.press("p", "enter", *steps(5), "Y")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(make_app(tmp_path), run_before=fork_place_compare,
                        terminal_size=(120, 40))


def test_level_select_with_the_first_level_won(snap_compare, tmp_path: Path) -> None:
    from app.campaign import CAMPAIGN, Campaign

    campaign = Campaign.open(CAMPAIGN, tmp_path / "saves")
    campaign.progress.record(campaign.levels[0], won=True, profit=0.5251)
    level = campaign.levels[1]
    app = OvercommitApp(Simulation.from_spec(level.spec), paused=True,
                        saves_dir=tmp_path / "saves", campaign=campaign, level=level)
    assert snap_compare(app, terminal_size=(120, 40))
