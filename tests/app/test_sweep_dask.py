"""`overcommit sweep` on a 2-worker Dask LocalCluster: the same numbers as one-by-one runs,
a bad point failing alone, `--resume` running only what is missing, bad files refused."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest

from app.cli import main
from app.sweep import load_sweep
from app.sweep_summary import interval
from engine import InputError
from tests.conftest import ROOT

SCENARIO = ROOT / "scenarios" / "economy" / "overcommit-sweep.toml"
# The overcommit sweep's tenants, a quarter of them at 256 KiB pages: fast, still squeezed.
SMALL = ['scenario.tick_s=60', 'scenario.page_size="256KiB"', "vm_group[0].count=4",
         "vm_group[1].count=3", "vm_group[2].count=2", "vm_group[3].count=3"]
TICKS = 5


def _sweep_file(tmp_path: Path, counts: list[int], name: str = "small") -> Path:
    path = tmp_path / f"{name}.sweep.toml"
    path.write_text(f"""
[sweep]
scenario = "{SCENARIO.as_posix()}"
seeds = [4, 9]
ticks = {TICKS}
set = {json.dumps(SMALL)}

[sweep.grid]
"host_group[0].count" = {counts}

[sweep.metrics]
profit = "economy.profit"
service = "mean(vms[*].service_level_avg)"
swapped_bytes = "sum(hosts[*].swapped_bytes)"
first_host_free_bytes = "hosts[0].free_bytes"
""")
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_sweep_on_a_local_cluster_matches_one_by_one_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    distributed = pytest.importorskip("dask.distributed")
    out = tmp_path / "out"
    sweep = _sweep_file(tmp_path, [3, 2, 1, 0])  # 0 hosts: a bad point
    assert main(["sweep", str(sweep), "--out", str(out), "--workers", "2"]) == 1
    printed = capsys.readouterr().out
    assert "on a local Dask cluster of 2 worker processes" in printed
    rows = _rows(out / "runs.csv")
    assert [r["run"] for r in rows] == [str(i) for i in range(8)]  # in order, though
    failed = [r for r in rows if r["status"] == "failed"]        # they finished in any
    assert [(r["host_group[0].count"], r["seed"]) for r in failed] == [("0", "4"), ("0", "9")]
    assert all("host_group[0].count" in r["error"]
               and "expected a whole number from 1" in r["error"] for r in failed)
    assert "failed run 6 (host_group[0].count=0, seed=4)" in printed

    for row in rows[:6]:
        report = tmp_path / f"run{row['run']}.json"
        count = row["host_group[0].count"]
        argv = ["run", str(SCENARIO), "--ticks", str(TICKS), "--seed", row["seed"], "--quiet",
                "--report", str(report), "--set", f"host_group[0].count={count}"]
        for s in SMALL:
            argv += ["--set", s]
        assert main(argv) == 0
        end = json.loads(report.read_text())
        vms = end["vms"]
        assert row["status"] == "ok" and row["ticks"] == str(TICKS)
        assert float(row["profit"]) == end["economy"]["profit"]
        assert float(row["service"]) == sum(v["service_level_avg"] for v in vms) / len(vms)
        assert float(row["swapped_bytes"]) == sum(h["swapped_bytes"] for h in end["hosts"])
        assert float(row["first_host_free_bytes"]) == end["hosts"][0]["free_bytes"]
    capsys.readouterr()
    # The packings differ, and the seeds do too (else the interval would say nothing).
    profits = {(r["host_group[0].count"], r["seed"]): float(r["profit"]) for r in rows[:6]}
    assert profits[("3", "4")] != profits[("1", "4")] and profits[("2", "4")] != profits[("2", "9")]

    summary = _rows(out / "summary.csv")
    assert [s["host_group[0].count"] for s in summary] == ["3", "2", "1", "0"]
    assert summary[3]["runs"] == "0" and summary[3]["failed"] == "2"
    mean, lo, hi = interval([profits[("2", "4")], profits[("2", "9")]])
    assert float(summary[1]["profit_mean"]) == pytest.approx(mean)
    assert float(summary[1]["profit_lo95"]) == pytest.approx(lo) and lo < mean < hi
    svg = (out / "summary.svg").read_text()
    assert "<svg" in svg and "service" in svg and "95 % interval" in svg

    # --resume with the bad point fixed runs nothing and keeps the table as it was
    # (without the bad point, whose failed rows stay); with it, only the two failed runs.
    before = (out / "runs.csv").read_text()
    assert main(["sweep", str(_sweep_file(tmp_path, [3, 2, 1], "fixed")), "--out", str(out),
                 "--resume", "--workers", "2"]) == 1
    printed = capsys.readouterr().out
    assert "--resume: 6 of 6 runs already in" in printed and "ok     run" not in printed
    assert (out / "runs.csv").read_text() == before
    # A cluster of its own reached by --scheduler, as a SLURM or Kubernetes one would be.
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as cluster:
        assert main(["sweep", str(sweep), "--out", str(out), "--resume",
                     "--scheduler", cluster.scheduler_address]) == 1
    printed = capsys.readouterr().out
    assert f"on {cluster.scheduler_address}" in printed
    assert "--resume: 6 of 8 runs already in" in printed
    assert "failed run 6 (" in printed and "failed run 7 (" in printed
    assert "ok     run" not in printed


def test_an_earlier_sweep_is_not_overwritten_and_resume_checks_the_definition(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    sweep = _sweep_file(tmp_path, [0])  # fails at once: no cluster needed to fill the table
    assert main(["sweep", str(sweep), "--out", str(out), "--workers", "0"]) == 1
    assert main(["sweep", str(sweep), "--out", str(out), "--workers", "0"]) == 2
    assert "holds the results of an earlier sweep; give --resume" in capsys.readouterr().err
    sweep.write_text(sweep.read_text().replace(f"ticks = {TICKS}", "ticks = 7"))
    assert main(["sweep", str(sweep), "--out", str(out), "--resume", "--workers", "0"]) == 2
    assert "from a sweep with another ticks" in capsys.readouterr().err


@pytest.mark.parametrize(("old", "new", "field", "expected"), [
    ("seeds = [4, 9]", "seeds = 0", "sweep.seeds", "count >= 1"),
    ("[sweep.grid]", 'colour = "red"\n[sweep.grid]', "sweep.colour", "unknown field"),
    ("[sweep.grid]", 'plot_x = "seed"\n[sweep.grid]', "sweep.plot_x", "one of the grid's keys"),
    ('"economy.profit"', '"mean(economy.profit)"', "sweep.metrics.profit",
     "needs exactly one [*]"),
    ('"economy.profit"', '"vms[*].revenue"', "sweep.metrics.profit", "needs sum(), mean()"),
    ('"economy.profit"', '"median(vms[*].revenue)"', "sweep.metrics.profit",
     "expected one of sum"),
])
def test_bad_sweep_files_name_the_field(tmp_path: Path, old: str, new: str, field: str,
                                        expected: str) -> None:
    path = _sweep_file(tmp_path, [2])
    path.write_text(path.read_text().replace(old, new))
    with pytest.raises(InputError) as info:
        load_sweep(path)
    assert str(info.value).startswith(f"{path}: {field}:") and expected in str(info.value)


def test_a_sweep_collects_series_and_validate_names_a_bad_point(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _sweep_file(tmp_path, [2])
    path.write_text(path.read_text().replace("seeds = [4, 9]", 'seeds = [4]\nseries = "2min"'))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "0", "--no-plot"]) == 0
    (row,) = _rows(out / "runs.csv")
    assert row["series"] == "series/run-0000.csv"
    series = _rows(out / row["series"])
    assert sorted({float(r["time_s"]) for r in series}) == [0, 120, 240, 300]  # 5 ticks of 60 s
    (world,) = [r for r in series if r["kind"] == "world" and r["tick"] == str(TICKS)]
    assert float(world["profit"]) == float(row["profit"])
    assert not (out / "summary.svg").exists()

    assert main(["validate", str(path)]) == 0
    assert "sweep of 1 runs: 1 points x 1 seeds" in capsys.readouterr().out
    assert main(["validate", str(_sweep_file(tmp_path, [2, 0], "bad"))]) == 2
    assert "(host_group[0].count=0): host_group[0].count:" in capsys.readouterr().err
