"""The `overcommit` command line, driven in-process through main(argv)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
from rich.console import Console

from app.cli import DEFAULT_SCENARIO, LOG_LIMIT, ROOT, SCENARIOS, EventLog, main
from engine import Event, Simulation
from engine.savemodel import SCHEMA_VERSION

TUTORIAL = str(DEFAULT_SCENARIO)

# A small valid scenario; the malformed variants below each break one thing.
BASE = """
[scenario]
name = "tiny"
duration = "20s"

[[switch]]
id = "tor"

[[switch]]
id = "gw"
kind = "gateway"

[[link]]
a = "tor"
b = "gw"
capacity = "1Gbit/s"

[[host]]
id = "h1"
memory = "64MiB"
switch = "tor"

[[vm]]
id = "a"
host = "h1"
memory = "32MiB"
"""

MALFORMED = {
    "unit": (BASE.replace('memory = "64MiB"', 'memory = "12 parsecs"'), "host[0].memory"),
    "unknown": (BASE.replace('id = "a"', 'id = "a"\ncolour = "red"'), "vm[0].colour"),
    "host": (BASE.replace('host = "h1"', 'host = "h9"'), "vm[0].host"),
    "link": (BASE.replace('b = "gw"', 'b = "core"'), "link[0].b"),
    "syntax": (BASE.replace("[scenario]", "[scenario"), "(syntax)"),
    "empty": ("", "scenario"),
}


def one_error_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_scenario_is_one_line_exit_2(case: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    text, field = MALFORMED[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(text)
    assert main(["run", str(path), "--ticks", "1"]) == 2
    one_error_line(capsys.readouterr().err, str(path), field)


@pytest.mark.parametrize(("variable", "bad", "expected", "good"), [
    ("OVERCOMMIT_THREADS", "lots", "1 to 64", "1"),
    ("OVERCOMMIT_KERNELS", "fast", "numba, numpy", "numpy"),
])
def test_a_bad_environment_setting_is_one_line_exit_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        variable: str, bad: str, expected: str, good: str) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(BASE)
    monkeypatch.setenv(variable, bad)
    assert main(["run", str(path), "--ticks", "1"]) == 2
    one_error_line(capsys.readouterr().err, variable, repr(bad), expected)
    monkeypatch.setenv(variable, good)
    assert main(["run", str(path), "--ticks", "1", "--quiet"]) == 0


def test_missing_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nope.toml"
    assert main(["run", str(path), "--ticks", "1"]) == 2
    one_error_line(capsys.readouterr().err, str(path), "no such file")


def test_report_has_every_contract_key(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out" / "report.json"
    # Nothing done in the tutorial's first 25 minutes fails an objective: exit 3, and the
    # report is written all the same.
    assert main(["run", TUTORIAL, "--ticks", "300", "--report", str(out)]) == 3
    report = json.loads(out.read_text())
    for key in ("scenario", "seed", "ticks", "sim_time_s", "hosts", "vms", "migrations",
                "economy"):
        assert key in report
    assert report["ticks"] == 300 and report["sim_time_s"] == pytest.approx(1500.0)  # 5 s ticks
    assert isinstance(report["migrations"], list)
    for host in report["hosts"]:
        for key in ("id", "memory_bytes", "free_bytes", "state", "shared_saved_bytes",
                    "balloon_bytes", "swapped_bytes"):
            assert key in host
        assert host["state"] in ("high", "soft", "hard", "low")
    for vm in report["vms"]:
        for key in ("id", "host", "configured_bytes", "resident_bytes", "shared_bytes",
                    "balloon_bytes", "swapped_bytes", "target_bytes", "shares"):
            assert key in vm
    assert set(report["economy"]) >= {"revenue", "costs", "penalties", "profit"}
    shown = capsys.readouterr().out
    assert "h1" in shown and "h2" in shown and "profit" in shown and "objective" in shown
    assert "tick 300" in shown
    assert not list(out.parent.glob(".*"))  # no temp file left behind


def test_save_then_load_continues_where_it_stopped(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    save, split, straight = tmp_path / "run.toml", tmp_path / "a.json", tmp_path / "b.json"
    assert main(["run", TUTORIAL, "--ticks", "40", "--save", str(save), "--quiet"]) == 0
    assert main(["run", "--load", str(save), "--ticks", "30", "--report", str(split)]) == 0
    assert "saved:" in capsys.readouterr().out
    assert main(["run", TUTORIAL, "--ticks", "70", "--report", str(straight), "--quiet"]) == 0
    continued = json.loads(split.read_text())
    assert continued["ticks"] == 70
    assert continued == json.loads(straight.read_text())  # saving changes nothing
    # A save passed positionally is recognised too.
    assert main(["run", str(save), "--ticks", "1", "--quiet"]) == 0


def test_damaged_and_newer_saves_are_refused(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    save = tmp_path / "run.toml"
    assert main(["run", TUTORIAL, "--ticks", "5", "--save", str(save), "--quiet"]) == 0
    capsys.readouterr()
    sidecar = next(tmp_path.glob("*.npz"))
    original = sidecar.read_bytes()
    sidecar.write_bytes(original[:-8] + bytes(8))
    assert main(["run", "--load", str(save), "--ticks", "1"]) == 2
    one_error_line(capsys.readouterr().err, str(save), "damaged")

    sidecar.write_bytes(original)
    text = save.read_text()
    current = f"schema_version = {SCHEMA_VERSION}\n"
    assert current in text
    save.write_text(text.replace(current, "schema_version = 999\n"))
    assert main(["run", "--load", str(save), "--ticks", "1"]) == 2
    one_error_line(capsys.readouterr().err, str(save), "schema_version")


def test_outputs_never_overwrite_the_input(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(BASE)
    assert main(["run", str(scenario), "--ticks", "1", "--save", str(scenario)]) == 2
    one_error_line(capsys.readouterr().err, "--save")
    assert main(["run", str(scenario), "--ticks", "1", "--report", str(scenario)]) == 2
    one_error_line(capsys.readouterr().err, "--report")
    assert scenario.read_text() == BASE


def test_ticks_default_to_the_duration(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    scenario, report = tmp_path / "tiny.toml", tmp_path / "r.json"
    scenario.write_text(BASE)
    assert main(["run", str(scenario), "--report", str(report), "--check"]) == 0
    assert json.loads(report.read_text())["ticks"] == 20
    scenario.write_text(BASE.replace('duration = "20s"', ""))
    assert main(["run", str(scenario)]) == 2
    one_error_line(capsys.readouterr().err, "--ticks")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    # Like any bad input: one line, exit 2, pointing at the command's --help.
    for argv in (["run"], ["run", TUTORIAL, "--ticks", "-3"], ["frobnicate"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        one_error_line(capsys.readouterr().err, "--help")


def test_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundled = sorted(str(p) for p in SCENARIOS.rglob("*.toml"))
    assert bundled
    assert main(["validate", *bundled]) == 0
    out = capsys.readouterr().out
    assert out.count("OK  ") == len(bundled)
    assert f"OK  {TUTORIAL}  (2 hosts, 7 VMs)" in out

    bad = tmp_path / "bad.toml"
    bad.write_text(MALFORMED["host"][0])
    assert main(["validate", TUTORIAL, str(bad)]) == 2
    captured = capsys.readouterr()
    assert "OK  " in captured.out
    one_error_line(captured.err, str(bad), "vm[0].host")


def test_scenarios_lists_the_tutorial(capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps long paths in a narrow table
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    assert "tutorial/first-night.toml" in out and "First night" in out


def test_bundled_names_resolve(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "tutorial/first-night"]) == 0
    assert "OK  tutorial/first-night" in capsys.readouterr().out


def test_play_hands_the_path_to_the_console(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Path] = []

    def run_console(path: Path) -> int:
        seen.append(path)
        return 0

    fake = types.ModuleType("app.tui")
    fake.run_console = run_console  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "app.tui", fake)
    assert main([]) == 0
    assert main(["play", "tutorial/first-night"]) == 0
    assert seen == [DEFAULT_SCENARIO, DEFAULT_SCENARIO]


def test_play_without_console_says_so(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "app.tui", None)  # makes the import fail
    assert main(["play"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not available" in err


def test_python_dash_m_app_runs(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "app", "run", "tutorial/first-night", "--ticks", "5"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "First night: tick 5" in done.stdout


def test_event_log_is_capped(capsys: pytest.CaptureFixture[str]) -> None:
    log = EventLog(Console(), enabled=True)
    log.add([Event(t, float(t), "vm_started", f"vm{t} powered on") for t in range(50)])
    log.add([Event(50, 50.0, "command_applied", "not worth a line")])
    log.close()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == LOG_LIMIT + 1 and lines[-1] == "... 10 more events"
    assert log.total == 51


def test_interrupted_run_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(self: Simulation, n: int = 1) -> list[Event]:
        raise KeyboardInterrupt

    monkeypatch.setattr(Simulation, "step", interrupted)
    save = tmp_path / "run.toml"
    assert main(["run", TUTORIAL, "--ticks", "10", "--save", str(save)]) == 130
    assert "interrupted at tick 0" in capsys.readouterr().err
    assert not save.exists()


# Five sizes of VM: five runs laid out apart, so the build reports progress five times.
SEVERAL_SIZES = BASE.split("[[host]]")[0] + """
[[host_group]]
id = "h"
count = 4
memory = "256MiB"
switch = "tor"
""" + "".join(f"""
[[vm_group]]
id = "g{m}"
count = 2
memory = "{m}MiB"
hosts = ["*"]
""" for m in (8, 12, 16, 20, 24))


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, as a person's would."""

    def isatty(self) -> bool:
        return True


def test_build_bar_on_a_terminal_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR"):  # let rich look at the file
        monkeypatch.delenv(name, raising=False)
    world = tmp_path / "sizes.toml"
    world.write_text(SEVERAL_SIZES)
    calls: list[tuple[int, int]] = []
    Simulation.from_file(world, progress=lambda done, total: calls.append((done, total)))
    assert len(calls) >= 5 and calls[-1] == (10, 10)

    # Not a terminal (a script, a pipe, a test): stderr stays empty.
    assert main(["run", str(world), "--ticks", "2", "--quiet"]) == 0
    piped = capsys.readouterr()
    assert piped.err == ""

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["run", str(world), "--ticks", "2", "--quiet"]) == 0
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.getvalue())  # no colours
    # The bar, drawn from the engine's own count: the total exists only in its callback.
    assert "building sizes.toml" in drawn and "10/10 VMs powered on" in drawn
    assert terminal.getvalue().endswith("\x1b[2K")  # then erased: the bar is transient
    # The summary on stdout is the same, but for wall-clock figures.
    assert capsys.readouterr().out.splitlines()[:8] == piped.out.splitlines()[:8]
