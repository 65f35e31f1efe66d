"""The curves of `overcommit reproduce`: text drawings, SVG files and what they hold."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from app import plots
from app.cli import main
from app.reproduce import EXPERIMENTS, PAPER, Runner

SVG = "{http://www.w3.org/2000/svg}"
DC = "{http://purl.org/dc/elements/1.1/}"
KNOWN = plots.lines("", "Known curve", "minutes", "MB", [1, 2, 3, 4],
                    {"rising": [1, 2, 3, 4], "falling": [4, 3, 2, 1]}, note="a units note")


def _svg_data(path: Path) -> dict[str, Any]:
    """The chart's numbers, from the description an SVG carries (parsing it checks it)."""
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    description = root.find(f".//{DC}description")
    assert description is not None and description.text
    data: dict[str, Any] = json.loads(description.text)
    return data


@pytest.mark.parametrize("width", [60, 100])
def test_text_has_title_axes_legend_and_follows_the_width(width: int) -> None:
    text = plots.to_text(KNOWN, width)
    rows = text.splitlines()
    assert "\x1b" not in text  # plain: fit for logs and files
    assert max(len(row) for row in rows) == width
    assert len(rows) == plots.text_height(width) + 1  # and the note's line
    for word in ("Known curve", "minutes", "MB", "rising", "falling", "(a units note)"):
        assert word in text
    # Each series has its own marker, and the points land where the data says: the
    # rising one ends top right, the falling one bottom right.
    assert "•• rising" in text and "++ falling" in text
    top = next(row for row in rows if row.startswith("4.00┤"))
    bottom = next(row for row in rows if row.startswith("1.00┤"))
    assert top.endswith("•│") and bottom.endswith("+│")


def test_text_in_colour_for_a_terminal_and_log_axes_skip_zeros() -> None:
    assert "\x1b[" in plots.to_text(KNOWN, 80, colour=True)
    chart = plots.lines("w", "Log", "window", "pages", [1, 2, 4], {"a": [0, 10, 1000]},
                        log_y=True)
    text = plots.to_text(chart, 70)  # a 0 on a log axis must not break the drawing
    assert "1000" in text and "Log" in text


def test_svg_files_are_valid_deterministic_and_carry_their_series(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    report = tmp_path / "out" / "repro.json"
    second = plots.Chart("wws", "Second", "window", "pages",
                         (plots.series("vm-a", [1, 10], [5, 50]),), log_x=True)
    written, svg = plots.save(report, {"exp": (KNOWN, second)})
    assert svg
    first, other = written["exp"]
    assert (first.name, other.name) == ("repro-exp.svg", "repro-exp-wws.svg")
    text = first.read_text()
    assert "rising" in text and "falling" in text and "Known curve" in text  # text as text
    assert _svg_data(first) == KNOWN.data()
    assert _svg_data(other)["series"] == {"vm-a": {"x": [1.0, 10.0], "y": [5.0, 50.0]}}
    again, _ = plots.save(report, {"exp": (KNOWN,)})
    assert again["exp"][0].read_bytes() == first.read_bytes()  # no date, fixed ids
    assert sorted(p.name for p in report.parent.iterdir()) == [
        "repro-exp-wws.svg", "repro-exp.svg"]  # no temp files left


def test_reproduce_fig6_writes_its_figure_and_the_curve_matches_the_metric(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    report = tmp_path / "r.json"
    assert main(["reproduce", "--only", "fig6", "--report", str(report), "--plots"]) == 0
    out = capsys.readouterr().out
    figure = tmp_path / "r-esx-fig6-sampling.svg"
    assert f"figures: {figure}" in out
    assert "ESX Fig. 6: active memory" in out  # --plots draws even when piped
    rows = {r["metric"]: r for r in json.loads(report.read_text())}
    assert all(r["figures"] == [figure.name] for r in rows.values())
    curves = _svg_data(figure)["series"]
    minutes = curves["estimate"]["x"]
    estimate, truth = curves["estimate"]["y"], curves["true active memory"]["y"]
    assert len(minutes) == 80 and minutes[-1] == pytest.approx(40, abs=0.1)
    # The working set steps up at 10 minutes: the first period at 90 % of the truth is
    # the one the metric counts (1 = the first full period after the step).
    up = next(i for i, m in enumerate(minutes) if m > 10.5)
    rise = next(i for i in range(up, len(minutes)) if estimate[i] >= 0.9 * truth[i])
    assert rise - up + 1 == rows["periods_to_rise"]["simulated"] == 2
    assert all(estimate[i] < 0.9 * truth[i] for i in range(up, rise))


def test_plots_only_on_a_terminal_unless_asked_and_text_files_without_matplotlib(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    report = tmp_path / "r.json"
    assert main(["reproduce", "--only", "quake", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "pip install 'overcommit[plots]'" in out and "Traceback" not in out
    assert "writable working set" not in out  # piped: no drawing by default
    names = json.loads(report.read_text())[0]["figures"]
    assert names == [f"r-clark-quake3-{n}.txt" for n in ("rounds", "rate", "wws")]
    assert "writable working set" in (tmp_path / names[2]).read_text()
    assert main(["reproduce", "--only", "quake", "--no-plots"]) == 0
    assert "writable working set" not in capsys.readouterr().out


def test_migration_curves_add_up_to_the_published_metrics() -> None:
    run = Runner(PAPER / "clark-specweb99.toml", lambda n: None)
    metrics = EXPERIMENTS["clark-specweb99"].compute(run)
    charts = {chart.name: chart for chart in run.charts}
    assert set(charts) == {"rounds", "rate", "wws"}
    sent = next(s for s in charts["rounds"].series if s.name == "sent")
    # Every round and the stop-and-copy: all the data the migration sent.
    assert sum(sent.y) == pytest.approx(metrics["transferred_mb"])
    # The rate's steps span the migration and their area is that data again.
    rate = next(s for s in charts["rate"].series if s.name == "sent")
    assert rate.x[-1] == pytest.approx(metrics["total_time_s"])
    area = sum((rate.x[i + 1] - rate.x[i]) * rate.y[i] for i in range(0, len(rate.x), 2))
    assert area / 8 == pytest.approx(metrics["transferred_mb"])
    (wws,) = charts["wws"].series
    assert max(wws.x) < 180 and list(wws.y) == sorted(wws.y) and wws.y[0] > 0
