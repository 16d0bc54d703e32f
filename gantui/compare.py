"""`gantui compare RUN RUN... [--metric NAME] [--json]`: one metric of several runs, aligned by step.

Reads `metrics.jsonl` only (no torch). The default metric is the first quality key
(`runinfo.QUALITY_KEYS`, best first) that every run has recorded; without one, both losses.
The chart is plotext, one colour per run (and one marker character per run under `NO_COLOR`,
so the legend never relies on colour alone).
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
from gantui.vocab import run_files

# Distinct on dark and light terminals; the marker characters stand in for them without colour.
PALETTE = ((240, 110, 110), (110, 180, 240), (120, 210, 120), (230, 200, 60), (200, 130, 230),
           (90, 210, 200), (240, 160, 90), (180, 180, 180))
MARKERS = ("•", "x", "+", "o", "*", "#", "@", "%")
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
                  "best": best_of(r.path)} for r in runs],
    }


def best_of(path: Path) -> dict[str, Any] | None:
    """The run's checkpoints/best.safetensors: {"key", "value", "step"} (None when it has none)."""
    from gantui.engine import best

    found = best.read(path)
    return None if found is None else {"key": found[1].key, "value": found[1].value, "step": found[1].step}


def chart(runs: list[RunSeries], metric: str, width: int, height: int, color: bool) -> str:
    """One metric of every run overlaid, as terminal text (ANSI colours unless `color` is False)."""
    import plotext as plt
    from plotext._kernel.terminal import terminal

    term = terminal()        # a private figure: plotext 6 keeps its public one module-global
    term.limit(False, False)
    fig = term._master
    fig.clear()
    fig.theme("simple" if color else "colorless")
    fig.plot_size(width, height)
    fig.title(f"{metric} by step")
    drawn = 0
    for i, r in enumerate(runs):
        pts = [(s, runinfo.number(v)) for s, v in sorted(r.series(metric).items())]
        pts = [(s, v) for s, v in pts if v is not None and math.isfinite(v)]
        if not pts:
            continue
        xs, ys = zip(*pts)
        rgb = PALETTE[i % len(PALETTE)]
        marker = (plt.marker("braille", plt.pixel(foreground=rgb)) if color
                  else plt.marker(MARKERS[i % len(MARKERS)]))
        sig = fig.signal(list(xs), list(ys), marker=marker)
        sig.lines()
        sig.label(r.name)
        fig.draw(sig)
        drawn += 1
    if not drawn:
        return f"{metric}: no finite values to draw"
    return fig.build().string(colorless=not color)


def main(paths: list[Path], metric: str | None, as_json: bool) -> int:
    runs = load(paths)
    metrics = choose_metrics(runs, metric)
    if as_json:
        print(json.dumps(jsonl.jsonable(aligned(runs, metrics))))
        return 0
    size = shutil.get_terminal_size((100, 30))
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    height = max(10, (size.lines - 2) // len(metrics))
    for m in metrics:
        print(chart(runs, m, size.columns, height, color))
    for r in runs:
        b = best_of(r.path)
        if b is not None:
            print(f"{r.name}: best {b['key']} {runinfo.format_value(b['value'])} at step {b['step']} "
                  f"(checkpoints/best.safetensors)")
    missing = [r.name for r in runs for m in metrics if not r.series(m)]
    if missing:
        print(f"no {'/'.join(metrics)} in: {', '.join(sorted(set(missing)))}")
    return 0
