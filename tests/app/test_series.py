"""`overcommit run --series`: the time series agrees with the report and with the pages."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomli_w

from app.cli import main
from engine import Simulation, parse_scenario
from engine.series import COLUMNS
from engine.state import Loc
from tests.conftest import small_spec

MiB = 1024**2


def _busy_world() -> dict[str, Any]:
    """Two hosts with every memory state at once: sharing, a compression cache and swap
    on h1 (b is squeezed), a balloon on h2, and a post-copy migration of a under way."""
    data = small_spec()
    data["host"][1]["memory"] = "64MiB"
    data["policy"]["memory"].update(compression=True, compression_cache=0.25)
    data["timeline"] = [
        {"at": "4s", "kind": "migrate", "vm": "a", "to": "h2", "mode": "postcopy",
         "max_postcopy_rate": "2Mbit/s"},
        {"at": "2s", "kind": "set_swap_target", "vm": "b", "target": "4MiB"},
        {"at": "2s", "kind": "set_balloon_target", "vm": "c", "target": "1MiB"},
    ]
    return data


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _num(cell: str) -> float:
    return float(cell)


def test_the_last_sample_agrees_with_the_report_and_adds_up(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "busy.toml"
    scenario.write_text(tomli_w.dumps(_busy_world()))
    series, report = tmp_path / "series.csv", tmp_path / "report.json"
    assert main(["run", str(scenario), "--ticks", "7", "--quiet", "--series", str(series),
                 "--every", "3s", "--report", str(report)]) == 0
    assert "series:" in capsys.readouterr().out
    rows = _rows(series)
    assert list(rows[0]) == list(COLUMNS)
    # Samples at 0, 3 and 6 s, and the end state at 7 s.
    assert sorted({float(r["time_s"]) for r in rows}) == [0, 3, 6, 7]
    end = json.loads(report.read_text())
    last = [r for r in rows if r["tick"] == "7"]
    hosts = {r["id"]: r for r in last if r["kind"] == "host"}
    vms = {r["id"]: r for r in last if r["kind"] == "vm"}
    (world,) = [r for r in last if r["kind"] == "world"]
    assert len(hosts) == 2 and len(vms) == 4
    for h in end["hosts"]:
        row = hosts[h["id"]]
        for key in ("memory_bytes", "free_bytes", "private_bytes", "shared_bytes",
                    "balloon_bytes", "swapped_bytes", "shared_saved_bytes", "compressed_bytes"):
            assert _num(row[key]) == h[key], (h["id"], key)
        assert row["state"] == h["state"]
        assert _num(row["nic_used_bytes_per_s"]) == pytest.approx(h["nic_used_bytes_per_s"])
        # Frames by state add up to the host's memory.
        assert sum(_num(row[k]) for k in ("private_bytes", "shared_bytes", "overhead_bytes",
                                          "compression_cache_bytes", "free_bytes")) \
            == h["memory_bytes"]
    for v in end["vms"]:
        row = vms[v["id"]]
        assert row["host"] == (v["host"] or "") and row["state"] == v["status"]
        for key in ("configured_bytes", "shared_bytes", "balloon_bytes", "swapped_bytes",
                    "target_bytes", "balloon_target_bytes", "private_bytes", "untouched_bytes"):
            assert _num(row[key]) == v[key], (v["id"], key)
        for key in ("service_level", "service_level_avg", "latency_s", "revenue",
                    "penalties", "net_bytes_per_s"):
            assert _num(row[key]) == pytest.approx(v[key], abs=1e-12), (v["id"], key)
        assert _num(row["active_estimate_bytes"]) == pytest.approx(
            v["active_estimate"] * v["configured_bytes"] if v["running"] else 0, abs=1)
        # Guest pages by state add up to the configured memory.
        assert sum(_num(row[k]) for k in ("private_bytes", "shared_bytes", "balloon_bytes",
                                          "swapped_bytes", "compressed_bytes",
                                          "untouched_bytes", "remote_bytes")) \
            == v["configured_bytes"]
    for key in ("revenue", "costs", "penalties", "profit"):
        assert _num(world[key]) == pytest.approx(end["economy"][key], abs=1e-12)
    # Every state is present, so none of the sums above is trivially zero.
    assert _num(hosts["h1"]["compression_cache_bytes"]) > 0
    assert _num(hosts["h1"]["swapped_bytes"]) > 0 and _num(hosts["h2"]["balloon_bytes"]) > 0
    (mig,) = end["migrations"]
    a = vms["a"]
    assert mig["status"] == a["migration_status"] == "postcopy"
    assert _num(a["remote_bytes"]) == _num(a["migration_remaining_bytes"]) \
        == mig["remaining_bytes"] > 0
    assert _num(a["migration_sent_bytes"]) == mig["transferred_bytes"]
    assert _num(hosts["h1"]["migration_out_bytes_per_s"]) == \
        _num(hosts["h2"]["migration_in_bytes_per_s"]) == _num(a["migration_rate_bytes_per_s"]) > 0


def test_host_memory_by_state_matches_the_frames() -> None:
    sim = Simulation.from_spec(parse_scenario(_busy_world()), check=True)
    sim.step(6)
    state = sim.world.state
    p, page = state.pages, state.page_size
    sample = sim.series_sample()
    keyed = state.sharing.frame_key != 0
    for h in range(len(state.hosts)):
        lo = int(state.hosts.frame_offset[h])
        hi = lo + int(state.hosts.n_frames[h])

        def on_host(frames: np.ndarray, lo: int = lo, hi: int = hi) -> np.ndarray:
            return frames[(frames >= lo) & (frames < hi)]

        private = on_host(p.frame[p.location == Loc.PRIVATE])
        cache = np.unique(on_host(p.frame[(p.location == Loc.COMPRESSED) | (
            (p.location == Loc.REMOTE) & (p.frame >= 0))]))
        cache = cache[~keyed[cache]]  # a remote page may still map a shared frame
        assert sample.hosts["private_bytes"][h] == private.size * page
        assert sample.hosts["shared_bytes"][h] == int(keyed[lo:hi].sum()) * page
        assert sample.hosts["compression_cache_bytes"][h] == cache.size * page
        overhead = (state.vms["overhead_held"][state.vms["host"] == h].sum()
                    + state.vms["overhead_reserved"][state.vms["overhead_dst"] == h].sum())
        assert sample.hosts["overhead_bytes"][h] == overhead * page > 0
        assert sample.hosts["free_bytes"][h] == int(
            (state.frames.refcount[lo:hi] == 0).sum()) * page


def test_parquet_and_both_csv_writers_hold_the_same_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    scenario = tmp_path / "busy.toml"
    scenario.write_text(tomli_w.dumps(_busy_world()))
    for name in ("arrow.csv", "s.parquet", "numpy.csv"):
        if name == "numpy.csv":  # the writer used where pyarrow is not installed
            monkeypatch.setattr("app.series._have_pyarrow", lambda: False)
        assert main(["run", str(scenario), "--ticks", "5", "--quiet", "--series",
                     str(tmp_path / name), "--every", "2s"]) == 0
    table = pq.read_table(tmp_path / "s.parquet").to_pylist()
    assert len(table) == 4 * (1 + 2 + 4)  # samples at 0, 2, 4 and 5 s
    for name in ("arrow.csv", "numpy.csv"):
        rows = _rows(tmp_path / name)
        assert len(rows) == len(table)
        for row, rec in zip(rows, table, strict=True):
            for key, cell in row.items():
                value = rec[key]
                if value is None:
                    assert cell == "", (name, key)
                elif isinstance(value, str):
                    assert cell == value, (name, key)
                else:
                    assert float(cell) == value, (name, key)


def test_bad_series_options_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "busy.toml"
    scenario.write_text(tomli_w.dumps(_busy_world()))
    assert main(["run", str(scenario), "--ticks", "2", "--series",
                 str(tmp_path / "s.csv"), "--every", "0s"]) == 2
    assert main(["run", str(scenario), "--ticks", "2", "--series", str(scenario)]) == 2
    err = capsys.readouterr().err
    assert "--every: expected a positive duration" in err
    assert "--series: would overwrite" in err
    assert not (tmp_path / "s.csv").exists()
    assert len(list(tmp_path.iterdir())) == 1  # no temporary file left behind
