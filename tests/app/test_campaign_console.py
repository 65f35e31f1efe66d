"""The campaign in the console and on the command line: levels open in order, the
briefing holds the clock, a verdict is recorded in saves/campaign.json and survives a
damaged file, and the end screen leads to the next level."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from app.campaign import CAMPAIGN, Campaign, Progress, load_levels
from app.cli import main
from app.console.app import OvercommitApp
from app.console.driver import EngineDriver
from app.console.screens.briefing import BriefingScreen
from app.console.screens.end_screen import EndScreen
from app.console.screens.level_select import LevelSelectScreen
from app.tui import run_campaign
from engine import InputError, Simulation
from engine.commands import parse_command
from tests.app.test_console import steps_settled
from tests.app.test_console_game import SIZE, pilot_test
from tests.engine.test_campaign import SOLUTIONS

LEVEL = """
[scenario]
name = "{title}"
briefing = "Keep {vm} running for three seconds."
[[host]]
id = "h1"
memory = "256MiB"
low_memory = "64MiB"
[[vm]]
id = "{vm}"
host = "h1"
memory = "64MiB"
workload = {{ kind = "idle" }}
[[objective]]
metric = "running_vms"
at_least = {need}
by = "3s"
description = "{vm} runs"
"""


def make_levels(folder: Path, need: int = 1) -> Path:
    folder.mkdir()
    for i, (title, vm) in enumerate([("Warm up", "alpha"), ("Cool down", "beta")], 1):
        (folder / f"0{i}-{vm}.toml").write_text(LEVEL.format(title=title, vm=vm, need=need))
    return folder


def test_levels_load_in_number_order_and_bad_names_are_named(tmp_path: Path) -> None:
    folder = make_levels(tmp_path / "c")
    (folder / "10-late.toml").write_text((folder / "01-alpha.toml").read_text())
    assert [lv.number for lv in load_levels(folder)] == [1, 2, 10]
    (folder / "extra.toml").write_text("")
    with pytest.raises(InputError, match=r"extra.toml: \(file name\): NN-name.toml"):
        load_levels(folder)


def test_levels_open_one_after_another_and_progress_is_kept(tmp_path: Path) -> None:
    campaign = Campaign.open(make_levels(tmp_path / "c"), tmp_path / "saves")
    first, second = campaign.levels
    progress = campaign.progress
    assert progress.unlocked(campaign.levels, first)
    assert not progress.unlocked(campaign.levels, second)
    progress.record(first, won=False, profit=-1.0)
    assert not progress.unlocked(campaign.levels, second)
    progress.record(first, won=True, profit=0.5)
    progress.record(first, won=True, profit=0.2)  # the best profit is kept, not the last
    again = Progress.load(tmp_path / "saves" / "campaign.json")
    record = again.get(first)
    assert (record.attempts, record.won, record.best_profit) == (3, True, 0.5)
    assert again.unlocked(campaign.levels, second)
    assert again.first_to_play(campaign.levels) == second


@pytest.mark.parametrize(("text", "where"), [
    ("{not json", r"\(file\): campaign progress as JSON"),
    ('{"schema": 1, "levels": {"01-alpha": {"won": "maybe"}}}', r"levels.01-alpha.won"),
    ('{"schema": 7}', r"schema: 1, got 7"),
])
def test_a_damaged_progress_file_is_an_error_and_stays_as_it_was(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str) -> None:
    folder = make_levels(tmp_path / "c")
    saves = tmp_path / "saves"
    saves.mkdir()
    (saves / "campaign.json").write_text(text)
    assert main(["campaign", "--list", "--dir", str(folder), "--saves", str(saves)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "campaign.json: " in err
    assert re.search(where, err)
    assert (saves / "campaign.json").read_text() == text


def test_campaign_list_shows_levels_and_progress(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_levels(tmp_path / "c")
    campaign = Campaign.open(folder, tmp_path / "saves")
    campaign.progress.record(campaign.levels[0], won=True, profit=1.25)
    assert main(["campaign", "--list", "--dir", str(folder),
                 "--saves", str(tmp_path / "saves")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "Warm up" in out[0] and "won (best profit $1.25)" in out[0]
    assert "Cool down" in out[1] and "open" in out[1]


def campaign_app(tmp_path: Path, need: int = 1) -> OvercommitApp:
    campaign = Campaign.open(make_levels(tmp_path / "c", need), tmp_path / "saves")
    level = campaign.levels[0]
    return OvercommitApp(Simulation.from_spec(level.spec), paused=True,
                         saves_dir=tmp_path / "saves", campaign=campaign, level=level)


@pilot_test
async def test_play_a_level_win_it_and_go_on_to_the_next(tmp_path: Path) -> None:
    app = campaign_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, LevelSelectScreen)
        await pilot.press("down", "enter")  # level 2 is locked: it stays on the list
        await pilot.pause()
        assert isinstance(app.screen, LevelSelectScreen)
        await pilot.press("up", "enter")
        await pilot.pause()
        assert isinstance(app.screen, BriefingScreen)
        assert "Keep alpha running" in str(app.screen.query_one(".dialog--body").render())
        assert app.clock.paused  # the briefing holds the clock
        await pilot.press("enter")
        assert not app.clock.paused
        app._pause()
        for _ in range(3):
            app.action_step()
        await steps_settled(pilot)
        assert isinstance(app.screen, EndScreen)
        body = str(app.screen.query_one(".dialog--body").render())
        assert "Level 1 won" in body and "level 2 (Cool down) is open" in body
        record = json.loads((tmp_path / "saves" / "campaign.json").read_text())
        assert record["levels"]["01-alpha"]["won"] is True
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, BriefingScreen)
        assert app.level is not None and app.level.stem == "02-beta"
        assert [vm.id for vm in app.snapshot.vms] == ["beta"] and app.snapshot.tick == 0


@pilot_test
async def test_a_lost_level_can_be_retried_and_the_next_stays_locked(tmp_path: Path) -> None:
    app = campaign_app(tmp_path, need=2)  # only one VM: running_vms >= 2 cannot be met
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("enter", "enter")  # play level 1, start the clock
        app._pause()
        for _ in range(3):
            app.action_step()
        await steps_settled(pilot)
        assert isinstance(app.screen, EndScreen)
        assert "Level 1 lost" in str(app.screen.query_one(".dialog--body").render())
        await pilot.press("n")  # no next level after a loss
        await pilot.pause()
        assert isinstance(app.screen, EndScreen)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, BriefingScreen) and app.snapshot.tick == 0
        assert app.campaign is not None
        assert not app.campaign.progress.unlocked(app.campaign.levels, app.campaign.levels[1])


def test_run_campaign_opens_the_first_level_not_yet_won(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    campaign = Campaign.open(make_levels(tmp_path / "c"), tmp_path / "saves")
    campaign.progress.record(campaign.levels[0], won=True, profit=0.0)
    opened: list[OvercommitApp] = []
    monkeypatch.setattr(OvercommitApp, "run", lambda self: opened.append(self) or 0)
    assert run_campaign(campaign) == 0
    assert opened[0].level == campaign.levels[1]
    assert [vm.id for vm in opened[0].snapshot.vms] == ["beta"]


def _run_to(app: OvercommitApp, time_s: float) -> None:
    """Ticks on the UI thread, as the running clock does, up to `time_s`."""
    ticks = round((time_s - app.snapshot.time_s) / app.snapshot.tick_s)
    batch: list[EngineDriver.Stepped] = []
    app.driver.step(ticks, batch.append)
    for message in batch:
        app._absorb(message)


@pilot_test
async def test_the_bundled_first_level_is_won_in_the_console(tmp_path: Path) -> None:
    campaign = Campaign.open(CAMPAIGN, tmp_path / "saves")
    assert [lv.number for lv in campaign.levels] == list(range(1, 8))
    level = campaign.levels[0]
    app = OvercommitApp(Simulation.from_spec(level.spec), paused=True,
                        saves_dir=tmp_path / "saves", campaign=campaign, level=level)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("p", "space")  # nothing in play on the level select
        assert isinstance(app.screen, LevelSelectScreen) and app.clock.paused
        await pilot.press("enter", "enter")
        app._pause()
        moves = sorted(SOLUTIONS[level.stem], key=lambda m: m[0])
        for at, command in moves:
            _run_to(app, at)
            app._submit(parse_command(command))
        _run_to(app, level.spec.scenario.duration or 0)
        await pilot.pause()
        assert isinstance(app.screen, EndScreen)
        assert "Level 1 won" in str(app.screen.query_one(".dialog--body").render())
    again = Progress.load(tmp_path / "saves" / "campaign.json")
    assert again.get(level).won and again.unlocked(campaign.levels, campaign.levels[1])


def test_campaign_without_console_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "app.tui", None)  # makes the import fail
    folder = make_levels(tmp_path / "c")
    assert main(["campaign", "--dir", str(folder), "--saves", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not available" in err


@pilot_test
async def test_quitting_as_the_level_select_opens_raises_nothing(tmp_path: Path) -> None:
    # The list opened a second time and the console quit before it was up: its title bar
    # (Textual's Header, whose title watcher looked for a child the closing app had
    # already taken down) raised NoMatches out of the app's exit.
    app = campaign_app(tmp_path)
    async with app.run_test(size=SIZE):
        app.action_levels()
    assert app.return_code in (0, None)
