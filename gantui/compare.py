"""`gantui compare RUN RUN... [--metric NAME] [--json]`: one metric of several runs, aligned by step.

Reads `metrics.jsonl` only (no torch). The default metric is the first quality key
(`runinfo.QUALITY_KEYS`, best first) that every run has recorded; without one, both losses.
The chart is the monitor's own, drawn by gantui.ui.compare_view (this module never imports the UI);
then a table of each run's last and best value per metric.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gantui import runinfo
from gantui.engine import jsonl
from gantui.errors import UserError
from gantui.vocab import criteria, run_files

# Which side of a quality figure is better (the table's BEST); the others get MIN and MAX.
BETTER = {**{k: "lower" if criteria.lower_is_better(k) else "higher" for k in criteria.KEYS}, "d_acc": None}
NOT_METRICS = ("step", "time")


@dataclass
class RunSeries:
    name: str                        # unique label for the legend and the JSON
    path: Path
    records: dict[int, dict[str, Any]]  # step -> the newest record of that step

    def keys(self) -> set[str]:
        out: set[str] = set()
        for r in self.records.values():
            out.update(k for k, v in r.items() if k not in NOT_METRICS and runinfo.number(v) is not None)
        return out

    def series(self, metric: str) -> dict[int, Any]:
        return {s: r[metric] for s, r in self.records.items() if metric in r}


def load(paths: list[Path]) -> list[RunSeries]:
    """Each run's records by step; UserError (one line, exit 2) for a path that is not a run."""
    out = []
    for p in paths:
        if not p.is_dir():
            raise UserError(f"{p}: no such run directory")
        if not runinfo.is_run_dir(p):
            raise UserError(f"{p}: not a run directory (no config.toml or events.jsonl)")
        records: dict[int, dict[str, Any]] = {}
        for r in jsonl.read(p / run_files.METRICS).records:
            step = r.get("step")
            if isinstance(step, int) and not isinstance(step, bool):
                records[step] = r  # a step written twice (an old resume): the newest counts
        out.append(RunSeries(p.name, p, records))
    _unique_names(out)
    return out


def _unique_names(runs: list[RunSeries]) -> None:
    # runs/a/run and runs/b/run: label them by as much of the path as tells them apart
    names = [r.name for r in runs]
    for r in runs:
        if names.count(r.name) > 1:
            r.name = str(r.path)


def default_metrics(runs: list[RunSeries]) -> list[str]:
    common = set.intersection(*(r.keys() for r in runs)) if runs else set()
    for key in runinfo.QUALITY_KEYS:
        if key in common:
            return [key]
    return list(runinfo.LOSS_KEYS)


def choose_metrics(runs: list[RunSeries], metric: str | None) -> list[str]:
    if metric is None:
        return default_metrics(runs)
    if not any(metric in r.keys() for r in runs):
        known = sorted(set().union(*(r.keys() for r in runs)))
        raise UserError(f"--metric {metric}: no run recorded it; recorded metrics: {', '.join(known) or 'none'}")
    return [metric]


def aligned(runs: list[RunSeries], metrics: list[str]) -> dict[str, Any]:
    """{"metrics", "steps" (union, ascending), "runs": [{"name", "path", "series": {metric: [value|null per step]}}]}."""
    steps = sorted(set().union(*(r.series(m).keys() for r in runs for m in metrics)))
    return {
        "metrics": metrics,
        "steps": steps,
        "runs": [{"name": r.name, "path": str(r.path),
                  "series": {m: [r.series(m).get(s) for s in steps] for m in metrics},
                  "best": best_of(r.path),
                  "rollbacks": runinfo.rollbacks(r.path)} for r in runs],
    }


def best_of(path: Path) -> dict[str, Any] | None:
    """The run's checkpoints/best.safetensors: {"key", "value", "step"} (None when it has none)."""
    from gantui.engine import best

    found = best.read(path)
    return None if found is None else {"key": found[1].key, "value": found[1].value, "step": found[1].step}


def summary_table(runs: list[RunSeries], metrics: list[str]) -> str:
    """Per metric, one row per run: its last value and its best (quality: lower FID/KID/W1, higher
    coverage, modes, IS), or its min and max for a figure with no better side (the losses), each
    with its step. A chart of one or two quality points says less than this."""
    lines = []
    for m in metrics:
        better = BETTER.get(m)
        head = ("RUN", "LAST", "STEP", "BEST" if better else "MIN", "STEP", *(() if better else ("MAX", "STEP")))
        rows = []
        for r in runs:
            pts = [(s, runinfo.number(v)) for s, v in sorted(r.series(m).items())]
            pts = [(s, v) for s, v in pts if v is not None and math.isfinite(v)]
            if not pts:
                rows.append((r.name, "-", "", "-", "", *(() if better else ("-", ""))))
                continue
            last = pts[-1]
            lo, hi = min(pts, key=lambda p: p[1]), max(pts, key=lambda p: p[1])
            extra = [] if better else [fmt(hi[1]), f"@{hi[0]}"]
            best = (lo if better == "lower" else hi) if better else lo
            rows.append((r.name, fmt(last[1]), f"@{last[0]}", fmt(best[1]), f"@{best[0]}", *extra))
        widths = [max(len(row[i]) for row in (head, *rows)) for i in range(len(head))]
        side = f" ({better} is better)" if better else ""
        lines.append(f"{m}{side}")
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in (head, *rows)]
    return "\n".join(lines)


def fmt(v: float) -> str:
    """One format for every value of a table: 4 significant digits."""
    return f"{v:.4g}"


def main(paths: list[Path], metric: str | None, as_json: bool, draw=None) -> int:
    """JSON, or per metric a chart (`draw(runs, metric, width, height, color)`: the CLI passes the
    monitor's, gantui.ui.compare_view.chart; this module never imports the UI) and then the table."""
    runs = load(paths)
    metrics = choose_metrics(runs, metric)
    if as_json:
        print(json.dumps(jsonl.jsonable(aligned(runs, metrics))))
        return 0
    size = shutil.get_terminal_size((100, 30))
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    height = max(10, (size.lines - 2) // len(metrics))
    for m in metrics if draw is not None else ():
        print(draw(runs, m, size.columns, height, color))
    print(summary_table(runs, metrics))
    for r in runs:
        b = best_of(r.path)
        if b is not None:
            print(f"{r.name}: best {b['key']} {fmt(b['value'])} at step {b['step']} (checkpoints/best.safetensors)")
    for r in runs:  # where a run branched ([recover]): its abandoned stretches are in branch files
        for b in runinfo.rollbacks(r.path):
            print(f"{r.name}: rolled back from step {b['from_step']} to {b['to_step']} ({b['rule']}; "
                  f"fix: {b['fix'] or 'none'})")
    missing = [r.name for r in runs for m in metrics if not r.series(m)]
    if missing:
        print(f"no {'/'.join(metrics)} in: {', '.join(sorted(set(missing)))}")
    return 0
