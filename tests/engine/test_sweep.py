"""The overcommit sweep has an interior profit peak: a fast subset of the full day, run
through the sweep machinery (scenarios/economy/overcommit-sweep.sweep.toml's metrics and
table)."""

from pathlib import Path

from rich.console import Console

from app.sweep import load_sweep, run_sweep
from tests.conftest import ROOT

SWEEP = ROOT / "scenarios" / "economy" / "overcommit-sweep.sweep.toml"
SCENARIO = SWEEP.with_name("overcommit-sweep.toml")


def test_profit_rises_with_overcommit_then_falls(tmp_path: Path) -> None:
    # The bundled sweep, cut to three packings, one seed and its first two hours (at 2 h
    # the densest packing already swaps and pays credits: profit 3.9 against 6.4 at 8 hosts
    # and 5.5 at 12; service 0.74 against 0.98 and 1.00).
    text = SWEEP.read_text()
    text = text.replace("seeds = [1, 2, 3]", 'seeds = [2026]\nticks = 60\n'
                        'set = ["scenario.tick_s=120"]')
    text = text.replace("[12, 10, 8, 7, 6, 5]", "[12, 8, 5]")
    text = text.replace('"overcommit-sweep.toml"', f'"{SCENARIO.as_posix()}"')
    assert "ticks = 60" in text and "[12, 8, 5]" in text and str(SCENARIO) in text
    path = tmp_path / "cut.sweep.toml"
    path.write_text(text)
    sweep = load_sweep(path)
    # In this process: on 2 busy cores a LocalCluster's workers only add their start-up
    # (tests/app/test_sweep_dask.py runs sweeps on one).
    table = run_sweep(sweep, tmp_path / "out", Console(file=None, quiet=True), workers=0)
    rows = {row["host_group[0].count"]: row for row in table.ordered()}
    assert all(row["status"] == "ok" for row in rows.values()), rows
    profit = {n: float(row["profit"]) for n, row in rows.items()}
    service = {n: float(row["service_level"]) for n, row in rows.items()}
    assert profit["8"] > profit["12"]  # sharing and idle memory absorb the first squeeze
    assert profit["8"] > profit["5"]  # then swapping and SLA credits dominate
    assert service["5"] < service["8"] <= service["12"]  # service falls as memory runs out
