"""A sweep's summary over seeds: mean and 95 % interval of each metric at each grid point,
printed, written as OUT/summary.csv and plotted as OUT/summary.svg (matplotlib, as the
reproductions' figures; without it the plot is left out and the command says so).

The interval is Student's t interval of the mean over the seeds that ran: mean +- t(0.975,
n-1) s / sqrt(n). One seed gives no interval (the cells are empty).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from app.savefile import _atomic_write
from app.sweep_table import cell

if TYPE_CHECKING:
    from app.sweep import Sweep

# t(0.975, df) for df = 1..30; above, z + (z**3 + z) / (4 df) is within 0.2 %.
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
SVG_INCHES_PER_PANEL = (4.2, 3.0)
GIB = 1024.0**3


def t975(df: int) -> float:
    if df <= len(T975):
        return T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df)


def interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and the 95 % interval of the mean (NaN bounds below two values)."""
    vals = [v for v in values if not math.isnan(v)]
    n = len(vals)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = sum(vals) / n
    if n < 2:
        return mean, math.nan, math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    half = t975(n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def summarize(sweep: Sweep, rows: Sequence[dict[str, str]]) -> list[dict[str, Any]]:
    """One entry per grid point in grid order: its parameters, runs ok and failed, and per
    metric mean, lo, hi."""
    grid = list(sweep.spec.grid)
    groups: dict[tuple[str, ...], list[dict[str, str]]] = {}
    for point in sweep.points:  # grid order, one group per combination
        groups.setdefault(tuple(cell(v) for v in point.params.values()), [])
    for row in rows:
        key = tuple(row[k] for k in grid)
        if key in groups:
            groups[key].append(row)
    out = []
    for key, members in groups.items():
        ok = [r for r in members if r["status"] == "ok"]
        entry: dict[str, Any] = {**dict(zip(grid, key, strict=True)), "runs": len(ok),
                                 "failed": len(members) - len(ok)}
        for name in sweep.metrics:
            entry[name] = interval([float(r[name]) for r in ok if r[name] != ""])
        out.append(entry)
    return out


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1e5 else f"{value:.4g}"


def print_summary(console: Console, sweep: Sweep, summary: list[dict[str, Any]]) -> None:
    grid = list(sweep.spec.grid)
    table = Table(*grid, "runs", *sweep.metrics,
                  title=f"{sweep.name}: mean over seeds [95 % interval]")
    for entry in summary:
        cells = []
        for name in sweep.metrics:
            mean, lo, hi = entry[name]
            bounds = "" if math.isnan(lo) else f" [{_fmt(lo)}, {_fmt(hi)}]"
            cells.append(Text(_fmt(mean) + bounds))
        runs = str(entry["runs"]) + (f" ({entry['failed']} failed)" if entry["failed"] else "")
        table.add_row(*(Text(entry[k]) for k in grid), runs, *cells)
    console.print(table)


def summary_csv(sweep: Sweep, summary: list[dict[str, Any]]) -> str:
    grid = list(sweep.spec.grid)
    head = [*grid, "runs", "failed"]
    for name in sweep.metrics:
        head += [f"{name}_mean", f"{name}_lo95", f"{name}_hi95"]
    lines = [",".join(head)]
    for entry in summary:
        cells = [*(entry[k] for k in grid), str(entry["runs"]), str(entry["failed"])]
        for name in sweep.metrics:
            cells += ["" if math.isnan(v) else repr(v) for v in entry[name]]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def _x_values(cells: Sequence[str]) -> tuple[list[float], list[str] | None]:
    """Numbers as themselves; anything else as categories at 0, 1, 2..."""
    try:
        return [float(c) for c in cells], None
    except ValueError:
        return [float(i) for i in range(len(cells))], list(cells)


def _json(values: list[float]) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values]


def to_svg(sweep: Sweep, summary: list[dict[str, Any]]) -> bytes:
    """One panel per metric: the mean against the plot's grid key, the 95 % interval as
    error bars, one line per combination of the other keys. Raises ImportError without
    matplotlib."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    grid = list(sweep.spec.grid)
    x_key = sweep.spec.plot_x or grid[0]
    others = [k for k in grid if k != x_key]
    names = list(sweep.metrics)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(SVG_INCHES_PER_PANEL[0] * cols, SVG_INCHES_PER_PANEL[1] * rows + 0.6),
                 layout="constrained")
    lines: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for entry in summary:
        lines.setdefault(tuple(entry[k] for k in others), []).append(entry)
    data: dict[str, Any] = {}
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        scale = GIB if name.endswith("_bytes") else 1.0  # bytes are read in GiB
        for label_key, entries in lines.items():
            xs, categories = _x_values([e[x_key] for e in entries])
            mean = [e[name][0] for e in entries]
            lo = [e[name][0] - e[name][1] if not math.isnan(e[name][1]) else 0.0
                  for e in entries]
            hi = [e[name][2] - e[name][0] if not math.isnan(e[name][2]) else 0.0
                  for e in entries]
            mean, lo, hi = ([v / scale for v in vs] for vs in (mean, lo, hi))
            label = ", ".join(f"{k}={v}" for k, v in zip(others, label_key, strict=True))
            ax.errorbar(xs, mean, yerr=[lo, hi], marker="o", markersize=3, capsize=3,
                        label=label or None)
            if categories:
                ax.set_xticks(xs, categories)
            data.setdefault(name, {})[label or "all"] = {
                "x": [e[x_key] for e in entries], "mean": _json([e[name][0] for e in entries]),
                "lo95": _json([e[name][1] for e in entries]),
                "hi95": _json([e[name][2] for e in entries])}
        ax.set_title(f"{name} (GiB)" if scale != 1.0 else name, fontsize=9)
        ax.set_xlabel(x_key, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if others:
            ax.legend(fontsize=6)
    n_seeds = len({p.seed for p in sweep.points})
    fig.suptitle(f"{sweep.name}: mean over {n_seeds} seeds, 95 % interval", fontsize=10)
    out = io.BytesIO()
    with rc_context({"svg.hashsalt": "overcommit", "svg.fonttype": "none"}):
        fig.savefig(out, format="svg", metadata={
            "Date": None, "Title": sweep.name,
            "Description": json.dumps(data)})
    return out.getvalue()


def report_summary(console: Console, sweep: Sweep, rows: Sequence[dict[str, str]], out: Path,
                   plot: bool = True) -> list[dict[str, Any]]:
    """Prints the summary and writes OUT/summary.csv and, with matplotlib, OUT/summary.svg."""
    summary = summarize(sweep, rows)
    print_summary(console, sweep, summary)
    _atomic_write(out / "summary.csv", summary_csv(sweep, summary).encode())
    written = [out / "summary.csv"]
    if plot and sweep.spec.grid:
        try:
            svg = to_svg(sweep, summary)
        except ImportError:
            console.print("no plot: pip install 'overcommit[plots]' gives summary.svg",
                          markup=False)
        else:
            _atomic_write(out / "summary.svg", svg)
            written.append(out / "summary.svg")
    console.print("summary: " + ", ".join(str(p) for p in written), markup=False)
    return summary
