"""The CLI's side of trust: escapes never printed, exit codes, the migration summary,
validate's notes and ranges, saves named by generation."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import tomli_w

from app.cli import main
from tests.app.test_cli import BASE, one_error_line


def _scenario(tmp_path: Path, extra: str = "", **scenario: str) -> Path:
    data = tomllib.loads(BASE + extra)
    data["scenario"].update(scenario)
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def test_a_scenario_name_with_escapes_prints_without_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _scenario(tmp_path, name="\x1b[2J\x1b]0;owned\x07night")
    assert main(["run", str(path), "--ticks", "2"]) == 0
    out = capsys.readouterr().out
    assert "night: tick 2" in out and "\x1b" not in out and "\x07" not in out


MIGRATING = """
[[host]]
id = "h2"
memory = "64MiB"
switch = "tor"

[[timeline]]
at = "1s"
kind = "migrate"
vm = "a"
to = "h2"

[[objective]]
metric = "running_vms"
at_least = 5
by = "3s"
"""


def test_run_prints_info_migrate_and_exits_3_when_an_objective_fails(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _scenario(tmp_path, MIGRATING)
    assert main(["run", str(path), "--ticks", "8", "--quiet"]) == 3
    out = capsys.readouterr().out
    assert "migrations (1, as `info migrate` shows them):" in out
    row = next(line for line in out.splitlines() if line.startswith("  a h1 -> h2"))
    for needle in ("precopy/xen: completed", "total time 2.", "downtime ", "MiB",
                   "passes 2"):
        assert needle in row
    assert "objective failed" in out


def test_validate_notes_a_reordered_timeline(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = _scenario(tmp_path, MIGRATING + """
[[timeline]]
at = "0s"
kind = "set_shares"
vm = "a"
shares = 10
""")
    assert main(["validate", str(path)]) == 0
    assert "timeline entries 0, 1 are listed out of time order" in capsys.readouterr().out


def test_validate_ranges_reads_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--ranges"]) == 0
    lines = capsys.readouterr().out.splitlines()
    reads = next(line for line in lines if line.startswith("vm[].workload.reads_per_s"))
    assert "100,000,000/s" in reads
    assert any(line.startswith("set_shares: shares") for line in lines)


def test_saves_are_named_by_generation_and_clean_up_after_themselves(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _scenario(tmp_path)
    save = tmp_path / "run.toml"
    (tmp_path / "run.arrays.npz").write_bytes(b"someone else's")
    (tmp_path / ".run.toml.999999999.tmp").write_bytes(b"a dead writer's")
    for ticks in ("2", "3"):
        assert main(["run", str(path), "--ticks", ticks, "--save", str(save)]) == 0
    sidecar = tomllib.loads(save.read_text())["overcommit_save"]["sidecar"]
    assert sidecar.startswith("run.") and sidecar.endswith(".arrays.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["s.toml", "run.toml", sidecar, "run.arrays.npz"])
    assert (tmp_path / "run.arrays.npz").read_bytes() == b"someone else's"
    notes = tmp_path / "notes.toml"
    notes.write_text("mine = true\n")
    capsys.readouterr()
    assert main(["run", str(path), "--ticks", "1", "--save", str(notes)]) == 2
    one_error_line(capsys.readouterr().err, "notes.toml", "not an Overcommit save")
