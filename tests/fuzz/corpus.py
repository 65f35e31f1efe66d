"""Every fuzz case, in a fixed order; `sample` is the fixed subset the test suite runs."""

from __future__ import annotations

from pathlib import Path

from tests.fuzz import api, saves, scenarios
from tests.fuzz.runner import Case


def all_cases(cache: Path) -> list[Case]:
    return [*scenarios.all_cases(), *saves.save_cases(cache), *api.all_cases(cache)]
