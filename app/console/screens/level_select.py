"""The campaign's level select: every level with its record; open levels can be played."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from app.campaign import Campaign, Level
from app.console.format import money
from app.console.screens.briefing import briefing_text
from app.console.screens.mount_guard import MountGuard
from app.console.widgets.key_bar import KeyBar


def level_label(campaign: Campaign, level: Level) -> Text:
    record = campaign.progress.get(level)
    text = Text()
    if record.won:
        text.append("★ ", style="bold green")
    elif campaign.progress.unlocked(campaign.levels, level):
        text.append("▶ ", style="bold yellow")
    else:
        text.append("🔒", style="dim")
    text.append(f"{level.number:>2}. {level.title}",
                style="" if campaign.progress.unlocked(campaign.levels, level) else "dim")
    if record.won and record.best_profit is not None:
        text.append(f"  best {money(record.best_profit)}", style="green")
    elif record.attempts:
        text.append(f"  {record.attempts} attempt(s)", style="dim")
    return text


class LevelSelectScreen(MountGuard, Screen[Level | None]):
    """Dismisses with the level to play, or None to go back to the running game."""

    BINDINGS = [Binding("escape", "back", "Back to the game"),
                Binding("ctrl+q", "app.quit", "Quit", priority=True)]

    def __init__(self, campaign: Campaign, highlight: Level | None = None) -> None:
        super().__init__()
        self.campaign = campaign
        self.highlight = highlight

    def compose(self) -> ComposeResult:
        # The app's title as a plain bar, not Textual's Header: the Header's title watcher
        # looks up a child of its own, and when the console quit as this screen opened
        # the child was gone first and the lookup raised out of the app's exit.
        yield Static(self.app.title, id="levels-title")
        levels = self.campaign.levels
        won = sum(self.campaign.progress.get(lv).won for lv in levels)
        with Horizontal(id="levels"):
            with Vertical(id="levels-list"):
                yield Static(Text(f"Campaign: {won} of {len(levels)} levels won",
                                  style="bold"), classes="dialog--title")
                yield OptionList(*[Option(level_label(self.campaign, lv), id=lv.stem)
                                   for lv in levels], id="level-options")
                yield Static("Enter: play · Esc: back · ctrl+q: quit",
                             classes="dialog--keys")
            with VerticalScroll(id="levels-briefing"):
                yield Static(id="level-briefing")
        yield KeyBar()

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        level = self.highlight or self.campaign.progress.first_to_play(self.campaign.levels)
        options.highlighted = self.campaign.levels.index(level)
        options.focus()
        self._show(level)

    def _show(self, level: Level) -> None:
        text = Text(f"{level.number}. {level.title}\n\n", style="bold")
        text.append_text(briefing_text(level.spec))
        if not self.campaign.progress.unlocked(self.campaign.levels, level):
            before = self.campaign.levels[self.campaign.levels.index(level) - 1]
            text.append(f"\n\nLocked: win level {before.number} ({before.title}) first.",
                        style="bold yellow")
        self.query_one("#level-briefing", Static).update(text)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self._show(self.campaign.by_stem(event.option.id or ""))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        level = self.campaign.by_stem(event.option.id or "")
        if not self.campaign.progress.unlocked(self.campaign.levels, level):
            self.notify(f"Level {level.number} opens when you win the one before it.",
                        severity="warning")
            return
        self.dismiss(level)

    def action_back(self) -> None:
        self.dismiss(None)
