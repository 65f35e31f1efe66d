"""benchmarks/engine_bench.py judges its runs against issue 13's targets: each figure
beside its bound, met or missed, in the right direction."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "engine_bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("engine_bench", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dc(**over: float) -> dict[str, float]:
    # A run that meets every target of the data center, figures in the results' units.
    r = {"sim_per_wall": 41.0, "p99_ms": 50.0, "median_ms": 23.0, "mean_over_floor": 3.9,
         "build_s": 2.5}
    r.update(over)
    return r


def test_a_run_meeting_every_target_is_judged_ok(bench) -> None:
    rows = bench.judged(bench.TARGETS["dc-100x1000"], _dc())
    assert [met for *_, met in rows] == [True] * 4
    assert rows[1][1] == pytest.approx(50.0 / 23.0)  # p99 over the median, not p99 alone


@pytest.mark.parametrize(("figure", "value", "missed"), [
    ("sim_per_wall", 38.8, "simulated s per wall s (mean tick)"),  # too slow: >= 40
    ("p99_ms", 70.0, "p99 tick / median tick"),  # 70 / 23 > 3
    ("mean_over_floor", 4.1, "mean tick / floor"),
    ("build_s", 3.2, "build s"),
])
def test_each_data_center_target_is_missed_on_its_own_side(bench, figure, value,
                                                           missed) -> None:
    rows = bench.judged(bench.TARGETS["dc-100x1000"], _dc(**{figure: value}))
    assert [what for what, *_, met in rows if not met] == [missed]


def test_the_long_run_is_judged_by_growth_after_ten_minutes_and_its_peak(bench) -> None:
    long = bench.LONG_TARGETS["dc-100x1000"]
    flat = bench.judged(long, {"growth_pct": 4.3, "peak_rss_gib": 4.16})
    assert all(met for *_, met in flat)
    grew = bench.judged(long, {"growth_pct": 5.5, "peak_rss_gib": 4.2})
    assert [met for *_, met in grew] == [False, True]
    big = bench.judged(long, {"growth_pct": 1.0, "peak_rss_gib": 5.2})
    assert [met for *_, met in big] == [True, False]
    assert [bound for _, _, bound, _ in big] == ["<= 5", "<= 5"]
