"""A sweep's results table, OUT/runs.csv: one row per run, appended the moment a run
finishes (so an interrupted sweep keeps its runs and `--resume` finds them), rewritten in
run order at the end, and written as OUT/runs.parquet too when pyarrow is installed."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.savefile import _atomic_write
from engine import InputError

if TYPE_CHECKING:
    from app.sweep import Point, Sweep

Value = bool | int | float | str


def cell(value: Value | None) -> str:
    """A value as the table writes it (and `--resume` compares it)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


class Results:
    """OUT/runs.csv: one row per run, appended as runs finish, rewritten in order at the end."""

    def __init__(self, sweep: Sweep, out: Path, resume: bool) -> None:
        self.sweep, self.out = sweep, out
        self.csv = out / "runs.csv"
        self.columns = sweep.columns()
        self.rows: dict[tuple[str, ...], dict[str, str]] = {}
        manifest = out / "sweep.json"
        if self.csv.exists() and not resume:
            raise InputError(str(self.csv), "--out", "holds the results of an earlier sweep; "
                             "give --resume to continue it, or another --out")
        if resume and self.csv.exists():
            self._read(manifest)
        out.mkdir(parents=True, exist_ok=True)
        _atomic_write(manifest, (json.dumps(sweep.manifest(), indent=2) + "\n").encode())
        self._rewrite()

    def _read(self, manifest: Path) -> None:
        before = json.loads(manifest.read_text()) if manifest.exists() else {}
        now = self.sweep.manifest()
        changed = [k for k in now if before.get(k) != now[k]]
        if changed:
            raise InputError(str(self.out), "--resume", f"these results come from a sweep "
                             f"with another {changed[0]}; give another --out")
        with self.csv.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames != self.columns:
                raise InputError(str(self.csv), "--resume", "its columns are not this sweep's "
                                 "(grid keys or metrics changed); give another --out")
            grid = list(self.sweep.spec.grid)
            for row in reader:
                self.rows[(*(row[k] for k in grid), row["seed"])] = row

    def done(self, point: Point) -> bool:
        row = self.rows.get(point.key())
        return row is not None and row["status"] == "ok"

    def add(self, point: Point, result: dict[str, Any]) -> dict[str, str]:
        row = {"run": str(point.index), **{k: cell(v) for k, v in point.params.items()},
               "seed": str(point.seed), "status": result["status"], "error": result["error"],
               **{name: cell(result["metrics"].get(name)) for name in self.sweep.metrics},
               "ticks": cell(result["ticks"]), "wall_s": f"{result['wall_s']:.2f}"}
        if self.sweep.spec.series:
            row["series"] = self._write_series(point, result.get("series"))
        self.rows[point.key()] = row
        with self.csv.open("a", newline="") as handle:
            csv.DictWriter(handle, self.columns, lineterminator="\n").writerow(row)
        return row

    def _write_series(self, point: Point, data: bytes | None) -> str:
        if data is None:
            return ""
        name = f"series/run-{point.index:04d}.{self.sweep.spec.series_format}"
        _atomic_write(self.out / name, data)
        return name

    def ordered(self) -> list[dict[str, str]]:
        """This sweep's rows in run order (rows of points no longer in the grid stay last)."""
        order = {p.key(): p.index for p in self.sweep.points}
        return sorted(self.rows.values(),
                      key=lambda r: order.get(self._key(r), len(order) + int(r["run"])))

    def _key(self, row: dict[str, str]) -> tuple[str, ...]:
        return (*(row[k] for k in self.sweep.spec.grid), row["seed"])

    def _rewrite(self) -> None:
        lines: list[dict[str, str]] = self.ordered()
        text = io.StringIO()
        writer = csv.DictWriter(text, self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(lines)
        _atomic_write(self.csv, text.getvalue().encode())

    def finish(self) -> Path | None:
        """runs.csv in run order; runs.parquet too when pyarrow is installed."""
        self._rewrite()
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            return None
        rows = self.ordered()
        columns = {}
        for name in self.columns:
            cells = [r[name] for r in rows]
            columns[name] = pa.array(_typed(cells))
        path = self.out / "runs.parquet"
        tmp = path.with_name(".runs.parquet.tmp")
        pq.write_table(pa.table(columns), tmp)
        os.replace(tmp, path)
        return path


def _typed(cells: list[str]) -> list[Any]:
    """A column's cells as numbers when they all are (empty = missing), else as text."""
    for kind in (int, float):
        try:
            return [kind(c) if c != "" else None for c in cells]
        except ValueError:
            continue
    return cells
