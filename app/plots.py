"""The curves of `overcommit reproduce`: drawn in the terminal and saved next to the report.

An experiment hands its figures to its runner as `Chart`s: plain numbers, no plotting
library. This module builds those charts from what the experiments measure and from
engine reports (pre-copy rounds, the writable working set), draws them as text with
plotext (a dependency) and writes them as SVG with matplotlib (an optional extra,
`pip install 'overcommit[plots]'`; without it a file holds the text drawing instead).
"""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from app.savefile import _atomic_write
from engine import InputError, Snapshot

MB = 1e6  # Clark et al. count migrated data in decimal megabytes
MiB = 1024**2  # and ESX in binary ones
# Plain text has no colours: a marker of its own tells each series apart.
MARKERS = ("•", "+", "x", "o", "*", "#")
COLOURS = ("blue+", "red+", "green+", "orange+", "magenta+", "cyan+")
MIN_WIDTH, MAX_WIDTH = 40, 160  # narrower is unreadable; wider is wide, not better
FILE_TEXT_WIDTH = 100  # the text drawing written when matplotlib is missing
SVG_INCHES = (7.5, 4.5)
INSTALL_HINT = "pip install 'overcommit[plots]' gives SVGs"


@dataclass(frozen=True)
class Series:
    name: str
    x: tuple[float, ...]
    y: tuple[float, ...]


@dataclass(frozen=True)
class Chart:
    """One figure: named series of points on one pair of axes."""

    name: str  # its file's suffix ("rounds"); "" for an experiment's only figure
    title: str
    x_label: str
    y_label: str
    series: tuple[Series, ...]
    note: str = ""  # units and how the numbers were measured
    log_x: bool = False
    log_y: bool = False
    points: bool = True  # mark each point (SVG); off for step lines, whose corners are not data

    def data(self) -> dict[str, Any]:
        """The numbers behind the figure, as JSON: an SVG carries them for re-plotting."""
        return {"title": self.title, "x_label": self.x_label, "y_label": self.y_label,
                "note": self.note, "series": {s.name: {"x": list(s.x), "y": list(s.y)}
                                              for s in self.series}}


def series(name: str, x: Iterable[float], y: Iterable[float]) -> Series:
    xs, ys = tuple(float(v) for v in x), tuple(float(v) for v in y)
    if len(xs) != len(ys):
        raise ValueError(f"series {name!r}: {len(xs)} x values but {len(ys)} y values")
    return Series(name, xs, ys)


def lines(name: str, title: str, x_label: str, y_label: str, x: Sequence[float],
          ys: Mapping[str, Sequence[float]], **options: Any) -> Chart:
    """A chart of several series over the same x values."""
    return Chart(name, title, x_label, y_label,
                 tuple(series(label, x, y) for label, y in ys.items()), **options)


# -- the experiments' charts ---------------------------------------------------------------
def sharing_chart(snaps: Mapping[int, Snapshot], host_id: str) -> Chart:
    """ESX Fig. 4: memory of n identical VMs, shared and reclaimed, by VM count n."""
    hosts = [snap.host(host_id) for snap in snaps.values()]
    return lines("", "ESX Fig. 4: page sharing vs number of VMs", "VMs", "MB", list(snaps), {
        "VM memory": [sum(vm.configured_bytes for vm in snap.vms if vm.host == host_id) / MiB
                      for snap in snaps.values()],
        "shared (COW)": [h.guest_shared_bytes / MiB for h in hosts],
        "reclaimed": [h.shared_saved_bytes / MiB for h in hosts],
        "zero pages": [h.zero_shared_bytes / MiB for h in hosts]},
        note="after 30 minutes; MB = MiB")


def sampling_chart(minutes: Sequence[float], estimate: Sequence[float],
                   truth: Sequence[float], vm_bytes: int) -> Chart:
    """ESX Fig. 6: the sampled estimate of active memory against the truth (fractions
    of the VM's memory, drawn in MB)."""
    mb = vm_bytes / MiB
    return lines("", "ESX Fig. 6: active memory, sampled estimate vs truth", "minutes", "MB",
                 minutes, {"estimate": [e * mb for e in estimate],
                           "true active memory": [t * mb for t in truth]},
                 note=f"one point per 30 s sampling period; a {mb:.0f} MiB VM")


def throughput_chart(mbit: Sequence[float], tick_s: float, m: dict[str, Any]) -> Chart:
    """Clark's Fig. 8: a web server's throughput, one point per tick, around its migration."""
    return lines("throughput", "Clark web server: throughput during the migration",
                 "seconds", "Mbit/s", [(i + 1) * tick_s for i in range(len(mbit))],
                 {"Apache": mbit}, points=False,
                 note=f"migration from {m['start_s']:.0f} s to "
                      f"{m['start_s'] + m['total_time_s']:.0f} s")


def migration_charts(paper: str, report: dict[str, Any], page_size: int, time_s: float
                     ) -> tuple[Chart, ...]:
    """The first migration of `report` (`sim.report()`): its rounds, its rate per round
    and its VM's writable working set."""
    m = report["migrations"][0]
    vms = [vm for vm in report["vms"] if vm["id"] == m["vm"]]
    return (rounds_chart(f"{paper} - data per pre-copy round", {m["vm"]: m}, page_size),
            rate_chart(f"{paper} - transfer rate per round", m),
            wws_chart(f"{paper} - writable working set", vms, time_s, page_size))


def postcopy_charts(report: dict[str, Any], page_size: int, time_s: float
                    ) -> tuple[Chart, ...]:
    """Post-copy has no rounds: the pre-copy's against the hybrid's one, and the writable
    working set of the workload all four VMs run."""
    by_vm = {m["vm"]: m for m in report["migrations"]}
    return (rounds_chart("Pre-copy and hybrid: data per round",
                         {vm: by_vm[vm] for vm in ("pre", "hybrid")}, page_size),
            wws_chart("Writable working set of each VM's workload",
                      [vm for vm in report["vms"] if vm["id"] == "pre"], time_s, page_size))


def rounds_chart(title: str, migrations: Mapping[str, dict[str, Any]],
                 page_size: int) -> Chart:
    """MB sent in each pre-copy round and MB dirtied during it (the next round's work);
    a pre-copy's stop-and-copy is its last point of "sent". `migrations` are
    `sim.report()["migrations"]` entries by label (no label prefix when there is one)."""
    out = []
    for label, m in migrations.items():
        prefix = f"{label}: " if len(migrations) > 1 else ""
        rounds = m["rounds"]
        sent = [r["bytes_sent"] / MB for r in rounds]
        if m["mode"] == "precopy":
            sent.append(m["stop_copy_bytes"] / MB)
        out.append(series(prefix + "sent", range(1, len(sent) + 1), sent))
        out.append(series(prefix + "dirtied during the round",
                          [r["index"] for r in rounds],
                          [r["pages_dirtied"] * page_size / MB for r in rounds]))
    return Chart("rounds", title, "round", "MB (log scale)", tuple(out), log_y=True,
                 note="the last point of sent is the stop-and-copy")


def rate_chart(title: str, m: dict[str, Any]) -> Chart:
    """The transfer rate over the migration, one step per round (Clark et al., Fig. 10:
    each step's area is the round's data), and the rate limit each round ran under."""
    start = m["start_s"]
    sent: list[tuple[float, float]] = []
    cap: list[tuple[float, float]] = []
    end = 0.0
    for r in m["rounds"]:
        if r["duration_s"] <= 0:
            continue
        begin, end = r["start_s"] - start, r["start_s"] - start + r["duration_s"]
        mbit = r["bytes_sent"] * 8 / MB / r["duration_s"]
        sent += [(begin, mbit), (end, mbit)]
        cap += [(begin, r["rate_bytes_per_s"] * 8 / MB), (end, r["rate_bytes_per_s"] * 8 / MB)]
    if m["mode"] == "precopy" and m["downtime_s"] > 0:
        mbit = m["stop_copy_bytes"] * 8 / MB / m["downtime_s"]
        sent += [(end, mbit), (end + m["downtime_s"], mbit)]
    return Chart("rate", title, "seconds since the migration started", "Mbit/s",
                 # The limit first: where the network gives all of it, sent hides it.
                 (series("rate limit", *_unzip(cap)), series("sent", *_unzip(sent))),
                 points=False, note="one step per round; the last step of sent is the "
                 "stop-and-copy")


def wws_chart(title: str, vms: Sequence[dict[str, Any]], elapsed_s: float,
              page_size: int) -> Chart:
    """Clark et al.'s writable working set: distinct pages written within the last w
    seconds, for each window w shorter than the run so far. `vms` are
    `sim.report()["vms"]` entries."""
    out = []
    for vm in vms:
        windows = [(float(key.rstrip("s")), pages) for key, pages in vm["wws_pages"].items()]
        out.append(series(vm["id"], *_unzip([(w, n) for w, n in windows if w < elapsed_s])))
    return Chart("wws", title, "window (s, log scale)", "pages written", tuple(out),
                 log_x=True, note=f"{page_size // 1024} KiB pages; at the end of the run, "
                 f"t = {elapsed_s:.0f} s")


def _unzip(points: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    return [x for x, _ in points], [y for _, y in points]


def _drawn(chart: Chart, s: Series) -> tuple[list[float], list[float]]:
    """The points of a series that its axes can show (a log axis has no place for 0)."""
    keep = [(x, y) for x, y in zip(s.x, s.y, strict=True)
            if (x > 0 or not chart.log_x) and (y > 0 or not chart.log_y)]
    return _unzip(keep)


# -- text ----------------------------------------------------------------------------------
def text_height(width: int) -> int:
    """Rows for a chart `width` columns wide: a dozen charts must not fill a screen each."""
    return max(12, min(16, width // 7))


def to_text(chart: Chart, width: int, colour: bool = False) -> str:
    """The chart drawn in `width` columns: braille lines in colour for a terminal, or one
    plain marker character per series for logs and files."""
    import plotext as plt  # 5.x: one global figure, cleared for each chart

    plt.clf()
    plt.limit_size(False, False)  # the caller's width, not the terminal plotext detects
    plt.plotsize(width, text_height(width))
    plt.theme("clear")  # no background: the terminal's own
    for i, s in enumerate(chart.series):
        x, y = _drawn(chart, s)
        if not x:
            continue
        if colour:
            plt.plot(x, y, label=s.name, marker="braille", color=COLOURS[i % len(COLOURS)])
        else:
            plt.plot(x, y, label=s.name, marker=MARKERS[i % len(MARKERS)])
    if chart.log_x:
        plt.xscale("log")
    if chart.log_y:
        plt.yscale("log")
    xs = sorted({x for s in chart.series for x in s.x})
    if len(xs) <= 12 and all(x.is_integer() for x in xs) and not chart.log_x:
        plt.xticks(xs, [f"{x:.0f}" for x in xs])  # VM counts, round numbers: no 3.2 VMs
    plt.title(chart.title)
    plt.xlabel(chart.x_label)
    plt.ylabel(chart.y_label)
    text = plt.build()
    if not colour:
        text = plt.uncolorize(text)
    rows = [row.rstrip() for row in text.splitlines()]
    if chart.note:
        rows += textwrap.wrap(f"({chart.note})", width, initial_indent="  ",
                              subsequent_indent="   ")
    return "\n".join(rows)


# -- files ---------------------------------------------------------------------------------
def to_svg(chart: Chart) -> bytes:
    """The chart as an SVG document; raises ImportError without matplotlib. Text stays
    text (searchable), and the file carries the chart's numbers in its description."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend
    from matplotlib.ticker import ScalarFormatter

    fig = Figure(figsize=SVG_INCHES, layout="constrained")
    ax = fig.add_subplot()
    for s in chart.series:
        x, y = _drawn(chart, s)
        ax.plot(x, y, label=s.name, marker="o" if chart.points else None, markersize=3)
    ax.set_xlabel(chart.x_label)
    ax.set_ylabel(chart.y_label)
    if chart.log_x:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())  # 120 s, not 10^2
    if chart.log_y:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())
    fig.suptitle(chart.title)
    if chart.note:
        ax.set_title(chart.note, fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    out = io.BytesIO()
    # A fixed salt and no date: the same run writes the same bytes.
    with rc_context({"svg.hashsalt": "overcommit", "svg.fonttype": "none"}):
        fig.savefig(out, format="svg", metadata={
            "Date": None, "Title": chart.title, "Description": json.dumps(chart.data())})
    return out.getvalue()


def figure_path(report: Path, stem: str, chart: Chart, suffix: str) -> Path:
    """out/repro.json, esx-fig4-sharing -> out/repro-esx-fig4-sharing.svg"""
    name = f"{report.stem}-{stem}" + (f"-{chart.name}" if chart.name else "")
    return report.with_name(name + suffix)


def save(report: Path, charts: Mapping[str, Sequence[Chart]]) -> tuple[dict[str, list[Path]],
                                                                        bool]:
    """Writes every experiment's charts next to the report, atomically: SVG, or the text
    drawing when matplotlib is missing. Returns the files by experiment, and whether
    they are SVG."""
    try:
        import matplotlib  # noqa: F401  (the optional extra)
        svg = True
    except ImportError:
        svg = False
    written: dict[str, list[Path]] = {}
    for stem, figures in charts.items():
        for chart in figures:
            if svg:
                path, data = figure_path(report, stem, chart, ".svg"), to_svg(chart)
            else:
                path = figure_path(report, stem, chart, ".txt")
                data = (to_text(chart, FILE_TEXT_WIDTH) + "\n").encode()
            _atomic_write(path, data)
            written.setdefault(stem, []).append(path)
    return written, svg


# -- the command's output ------------------------------------------------------------------
def draw(console: Console, charts: Mapping[str, Sequence[Chart]]) -> None:
    """Each chart as text, as wide as the console: in colour on a terminal."""
    width = max(MIN_WIDTH, min(console.width, MAX_WIDTH))
    for chart in (chart for figures in charts.values() for chart in figures):
        text = to_text(chart, width, colour=console.is_terminal)
        console.print(Text.from_ansi(text) if console.is_terminal else Text(text))
        console.print()


def save_figures(console: Console, report: Path, charts: Mapping[str, Sequence[Chart]]
                 ) -> dict[str, list[str]]:
    """The charts as files next to the report: their names, by experiment."""
    try:
        written, svg = save(report, charts)
    except OSError as err:
        raise InputError(str(report), "--report", "cannot write a figure next to it: "
                         f"{err.strerror}") from None
    if written and not svg:
        console.print(f"figures written as text (.txt); {INSTALL_HINT}", markup=False)
    return {stem: [path.name for path in paths] for stem, paths in written.items()}
