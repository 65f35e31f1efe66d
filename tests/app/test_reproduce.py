"""`overcommit reproduce`: the paper experiments against their published values."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from app.cli import main
from app.reproduce import EXPERIMENTS, PAPER
from engine import load_scenario

QUAKE = PAPER / "clark-quake3.toml"


def _row(out: str, metric: str) -> str:
    return next(line for line in out.splitlines() if metric in line)


def test_every_paper_scenario_has_a_registered_experiment() -> None:
    assert {p.stem for p in PAPER.glob("*.toml")} == set(EXPERIMENTS)
    for path in PAPER.glob("*.toml"):
        reproduce = load_scenario(path).reproduce
        assert reproduce is not None and reproduce.expect, path
        names = [exp.metric for exp in reproduce.expect]
        assert len(names) == len(set(names)), path


def test_quake3_downtime_holds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--only", "clark-quake3"]) == 0
    out = capsys.readouterr().out
    row = _row(out, "downtime_ms")
    assert "clark-quake3" in row and "60 ms" in row and "holds" in row
    assert "1 of 1 published values hold" in out


def test_fig6_sampling_holds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--only", "fig6"]) == 0
    out = capsys.readouterr().out
    assert "holds" in _row(out, "periods_to_rise")
    assert "holds" in _row(out, "periods_to_decay")
    assert "fails" not in out


def test_an_impossible_published_value_fails_with_status_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = QUAKE.read_text()
    assert "published = 60\n" in text
    (tmp_path / QUAKE.name).write_text(text.replace("published = 60\n", "published = 6000\n"))
    assert main(["reproduce", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    row = _row(out, "downtime_ms")
    assert "6,000 ms" in row and "fails" in row
    assert "0 of 1 published values hold; 1 fail" in out


def test_a_scenario_without_a_computation_fails_as_not_computed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(QUAKE, tmp_path / "new-experiment.toml")
    assert main(["reproduce", "--dir", str(tmp_path)]) == 1
    row = _row(capsys.readouterr().out, "downtime_ms")
    assert "not computed" in row and "fails" in row


def test_report_writes_every_row_as_json(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "out" / "reproduce.json"
    assert main(["reproduce", "--only", "clark", "--report", str(report)]) == 0
    rows = json.loads(report.read_text())
    expected = [(path.stem, exp.metric) for path in sorted(PAPER.glob("clark*.toml"))
                for exp in load_scenario(path).reproduce.expect]  # type: ignore[union-attr]
    assert [(r["experiment"], r["metric"]) for r in rows] == expected
    for row in rows:
        assert row["holds"] is True and isinstance(row["simulated"], float)
        assert row["source"].startswith("Clark et al., Live Migration of Virtual Machines")
    quake = next(r for r in rows if r["experiment"] == "clark-quake3")
    assert quake["published"] == 60 and quake["unit"] == "ms" and quake["rel_tol"] == 0.3
    assert f"report: {report}" in capsys.readouterr().out
    # The figures next to it, each row naming its experiment's; no temp file left.
    suffix = ".svg" if importlib.util.find_spec("matplotlib") else ".txt"
    figures = sorted(f"reproduce-{stem}-{name}{suffix}" for stem in {r["experiment"] for r in rows}
                     for name in ("rounds", "rate", "wws"))
    assert sorted(p.name for p in report.parent.iterdir()) == sorted(
        [*figures, "reproduce-clark-webserver-throughput" + suffix, "reproduce.json"])
    for row in rows:
        assert row["figures"] and all(name.startswith(f"reproduce-{row['experiment']}-")
                                      for name in row["figures"])


def test_quick_runs_the_fast_experiments_and_names_the_skipped(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--quick"]) == 0
    out = capsys.readouterr().out
    slow = sorted(stem for stem, exp in EXPERIMENTS.items() if exp.slow)
    assert slow and f"skipped: {', '.join(f'{s} (--quick)' for s in slow)}" in out
    for stem in EXPERIMENTS:
        assert (f"{stem}: running" in out) == (stem not in slow)
    # Each experiment computes the very names its file lists (else "not computed").
    assert "not computed" not in out and "fails" not in out


def test_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--only", "fig99"]) == 2
    assert "fig99" in capsys.readouterr().err
    (tmp_path / "clark-quake3.toml").write_text(QUAKE.read_text().replace('"64MB"', '"64 parsecs"'))
    assert main(["reproduce", "--dir", str(tmp_path)]) == 2
    assert "vm[0].memory" in capsys.readouterr().err


@pytest.mark.parametrize("tick", ["2s", "500ms"])
def test_experiments_measure_simulated_time_at_any_tick_length(
        tick: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A paper scenario copied into --dir at another tick length is measured over the same
    simulated time: Fig. 6's periods are 30 s whatever the tick (counted in ticks, the
    decay took 1 "period" at both lengths), and the web server's first-round throughput is
    read 10 s into the round (at 0.5 s ticks, tick 30 was still before the migration)."""
    for stem in ("esx-fig6-sampling", "clark-webserver"):
        text = (PAPER / f"{stem}.toml").read_text()
        assert 'tick_s = "1s"' in text
        (tmp_path / f"{stem}.toml").write_text(text.replace('tick_s = "1s"', f'tick_s = "{tick}"'))
    report = tmp_path / "r.json"
    assert main(["reproduce", "--dir", str(tmp_path), "--report", str(report), "--no-plots"]) == 0
    rows = {r["metric"]: r for r in json.loads(report.read_text())}
    assert all(r["holds"] for r in rows.values())
    # At 1 s ticks: 2 and 15 periods, 870 and 770 Mbit/s.
    assert rows["periods_to_rise"]["simulated"] == 2
    assert rows["periods_to_decay"]["simulated"] >= 10
    assert rows["throughput_before_mbit"]["simulated"] > 1.1 * rows[
        "throughput_first_round_mbit"]["simulated"]
    ticks = 2400 * 1000 // (2000 if tick == "2s" else 500) + 1
    assert f"esx-fig6-sampling: {ticks:,} ticks in" in capsys.readouterr().out
