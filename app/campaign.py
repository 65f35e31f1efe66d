"""The campaign: numbered levels in scenarios/campaign/ and the player's progress in saves/.

A level is a scenario file named `NN-slug.toml`; its `[scenario]` name is the title and its
`briefing` what the console shows before the clock starts. Level 1 is always open; each
further level opens when the one before it has been won. Progress is one small JSON file
(`saves/campaign.json`), written atomically after every judged attempt, so quitting or a
crash never costs a won level. Nothing here imports Textual.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.savefile import _atomic_write
from engine import InputError, ScenarioSpec, load_scenario
from engine.scenario import format_loc

CAMPAIGN = Path(__file__).resolve().parent.parent / "scenarios" / "campaign"
PROGRESS_FILE = "campaign.json"
PROGRESS_SCHEMA = 1
LEVEL_NAME = re.compile(r"^(\d+)-[\w-]+$")


@dataclass(frozen=True)
class Level:
    number: int
    stem: str  # the file name without .toml: the level's key in the progress file
    path: Path
    spec: ScenarioSpec

    @property
    def title(self) -> str:
        return self.spec.scenario.name


def load_levels(folder: Path = CAMPAIGN) -> list[Level]:
    """Every level in the folder, by number; a bad file raises InputError naming it."""
    if not folder.is_dir():
        raise InputError(str(folder), "(folder)", "a folder of campaign levels (NN-name.toml)")
    levels = []
    for path in sorted(folder.glob("*.toml")):
        match = LEVEL_NAME.match(path.stem)
        if match is None:
            raise InputError(str(path), "(file name)", "NN-name.toml, NN the level's number")
        levels.append(Level(int(match.group(1)), path.stem, path, load_scenario(path)))
    if not levels:
        raise InputError(str(folder), "(folder)", "at least one level (NN-name.toml)")
    levels.sort(key=lambda level: level.number)
    for before, after in zip(levels, levels[1:], strict=False):
        if before.number == after.number:
            raise InputError(str(after.path), "(file name)",
                             f"a level number of its own; {before.path.name} has it too")
    return levels


class LevelRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=0, ge=0)  # judged attempts: won or lost
    won: bool = False
    best_profit: float | None = None  # over the won attempts


class ProgressFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = Field(alias="schema")
    levels: dict[str, LevelRecord] = Field(default_factory=dict)


class Progress:
    """The player's record per level, kept in `path`."""

    def __init__(self, path: Path, records: dict[str, LevelRecord] | None = None) -> None:
        self.path = path
        self.records = records or {}

    @classmethod
    def load(cls, path: Path) -> Progress:
        """A missing file is a fresh campaign; a damaged one raises InputError and is
        left untouched, so the player can repair it rather than lose it."""
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise InputError(str(path), "(file)", f"a readable file: {err.strerror}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InputError(str(path), "(file)", f"campaign progress as JSON ({err})") from None
        try:
            parsed = ProgressFile.model_validate(data)
        except ValidationError as err:
            detail = err.errors(include_url=False)[0]
            where = format_loc([p for p in detail["loc"] if isinstance(p, str | int)])
            raise InputError(str(path), where,
                             str(detail["msg"]).removeprefix("Value error, ")) from None
        if parsed.schema_version != PROGRESS_SCHEMA:
            raise InputError(str(path), "schema", f"{PROGRESS_SCHEMA}, got "
                             f"{parsed.schema_version}")
        return cls(path, dict(parsed.levels))

    def save(self) -> None:
        data = {"schema": PROGRESS_SCHEMA,
                "levels": {k: r.model_dump() for k, r in sorted(self.records.items())}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.path, (json.dumps(data, indent=2) + "\n").encode())

    def record(self, level: Level, won: bool, profit: float) -> LevelRecord:
        """Counts a judged attempt and saves; returns the level's updated record."""
        old = self.records.get(level.stem, LevelRecord())
        best = old.best_profit
        if won:
            best = profit if best is None else max(best, profit)
        new = LevelRecord(attempts=old.attempts + 1, won=old.won or won, best_profit=best)
        self.records[level.stem] = new
        self.save()
        return new

    def get(self, level: Level) -> LevelRecord:
        return self.records.get(level.stem, LevelRecord())

    def unlocked(self, levels: list[Level], level: Level) -> bool:
        i = levels.index(level)
        return i == 0 or self.get(levels[i - 1]).won

    def next_level(self, levels: list[Level], level: Level) -> Level | None:
        i = levels.index(level)
        return levels[i + 1] if i + 1 < len(levels) else None

    def first_to_play(self, levels: list[Level]) -> Level:
        """The first open level not yet won (the last one when every level is won)."""
        return next((lv for lv in levels if not self.get(lv).won), levels[-1])


@dataclass
class Campaign:
    levels: list[Level]
    progress: Progress

    @classmethod
    def open(cls, folder: Path, saves_dir: Path) -> Campaign:
        return cls(load_levels(folder), Progress.load(saves_dir / PROGRESS_FILE))

    def by_stem(self, stem: str) -> Level:
        return next(lv for lv in self.levels if lv.stem == stem)
