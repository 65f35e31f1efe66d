"""Campaign play for the App: the level select, briefings, and progress after a verdict.

OvercommitApp derives from CampaignPlay. Without a campaign (plain `overcommit play`) only
the briefing is used: a scenario with a `briefing` shows it before its clock starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import App

from app.campaign import Campaign, Level
from app.console.driver import EngineDriver
from app.console.screens.briefing import BriefingScreen
from app.console.screens.end_screen import EndChoice, EndScreen, won
from app.console.screens.level_select import LevelSelectScreen
from app.console.screens.overview import OverviewScreen
from engine import Simulation, Snapshot


class CampaignPlay(App[int]):
    driver: EngineDriver
    campaign: Campaign | None = None
    level: Level | None = None  # the campaign level being played

    if TYPE_CHECKING:  # OvercommitApp defines these; declared here for the type checker
        def _note(self, kind: str, message: str, vm: str | None = None) -> None: ...

        def _pause(self) -> None: ...

        def _resume(self) -> None: ...

        def _install(self, driver: EngineDriver) -> None: ...

        def _clear_log(self) -> None: ...

    # -- opening ------------------------------------------------------------------------
    def _open_first_screen(self) -> None:
        """On mount: the level select in a campaign, else the briefing if there is one."""
        if self.campaign is not None:
            self.action_levels()
        elif self.driver.spec.scenario.briefing.strip() and getattr(self, "show_briefing", True):
            self._pause()
            self.push_screen(BriefingScreen(self.driver.spec, self.driver.spec.scenario.name,
                                            "read it again later with B"), self._briefed)

    def action_levels(self) -> None:
        if self.campaign is None:
            self.notify("Not in a campaign: `overcommit campaign` opens the levels.",
                        severity="warning")
            return
        self._pause()
        self.push_screen(LevelSelectScreen(self.campaign, self.level), self._level_chosen)

    def action_briefing(self) -> None:
        spec = self.driver.spec
        self._pause()
        self.push_screen(BriefingScreen(spec, self._title(), "back to the game"), self._briefed)

    def _title(self) -> str:
        if self.level is not None:
            return f"Level {self.level.number}: {self.level.title}"
        return self.driver.spec.scenario.name

    # -- starting a level -------------------------------------------------------------
    def _level_chosen(self, level: Level | None) -> None:
        if level is not None:
            self.start_level(level)

    def start_level(self, level: Level) -> None:
        """A fresh world for the level, paused behind its briefing."""
        self.workers.cancel_group(self, "engine")
        self._pause()
        while len(self.screen_stack) > 1 and not isinstance(self.screen, OverviewScreen):
            self.pop_screen()
        self.level = level
        self._install(EngineDriver(Simulation.from_spec(level.spec),
                                   self.driver.generation + 1))
        self._clear_log()
        overview = next((s for s in self.screen_stack if isinstance(s, OverviewScreen)), None)
        if overview is not None:  # the last level's VM filter would hide this one's VMs
            overview.clear_filter()
        self._note("level", f"level {level.number}: {level.title}")
        back = "the level select" if self.campaign is not None else "back to the game"
        self.push_screen(BriefingScreen(level.spec, self._title(), back), self._level_briefed)

    def _level_briefed(self, start: bool | None) -> None:
        if start:
            self._resume()
        elif self.campaign is not None:
            self.action_levels()

    def _briefed(self, start: bool | None) -> None:
        if start:
            self._resume()

    # -- the verdict --------------------------------------------------------------------
    def _show_verdict(self, snap: Snapshot) -> None:
        """All objectives judged: record the attempt, then the end screen with what next."""
        campaign, level = self.campaign, self.level
        if campaign is None or level is None:
            self.push_screen(EndScreen(snap), self._end_choice)
            return
        win = won(snap.objectives)
        try:
            record = campaign.progress.record(level, win, snap.profit)
        except OSError as err:
            self.notify(f"Cannot save campaign progress to {campaign.progress.path}: "
                        f"{err.strerror}", severity="error")
            record = campaign.progress.get(level)
        following = campaign.progress.next_level(campaign.levels, level)
        line = (f"Level {level.number} won" if win else f"Level {level.number} lost") + (
            f" · attempts {record.attempts}")
        if record.best_profit is not None:
            line += f" · best profit ${record.best_profit:,.2f}"
        if win and following is not None:
            line += f" · level {following.number} ({following.title}) is open"
        self.push_screen(EndScreen(snap, campaign_line=line,
                                   has_next=win and following is not None), self._end_choice)

    def _end_choice(self, choice: EndChoice | None) -> None:
        campaign, level = self.campaign, self.level
        if choice is None or campaign is None or level is None:
            return
        if choice == "retry":
            self.start_level(level)
        elif choice == "next":
            following = campaign.progress.next_level(campaign.levels, level)
            if following is not None:
                self.start_level(following)
        elif choice == "levels":
            self.action_levels()
