"""`gantui compare` drawn: per metric, the monitor's own chart (gantui.ui.charts: one colour per run,
and one marker glyph per run under `NO_COLOR`, so the legend never relies on colour alone; the
legend on its own lines above the plot; whole step numbers on the x axis), then compare's table."""

from __future__ import annotations

import math
from pathlib import Path

from gantui import compare
from gantui.runinfo import number
from gantui.ui.charts import GLYPHS, PALETTE, Curve, line_chart

MARKERS = GLYPHS


def chart(runs: list[compare.RunSeries], metric: str, width: int, height: int, color: bool) -> str:
    """One metric of every run overlaid, as terminal text (ANSI colours unless `color` is False):
    the monitor's own chart (gantui.ui.charts): the legend on its own lines above the plot, never over
    a point, and whole step numbers on the x axis."""
    from rich.console import Console

    curves = []
    for r in runs:
        pts = [(s, number(v)) for s, v in sorted(r.series(metric).items())]
        pts = [(s, v) for s, v in pts if v is not None and math.isfinite(v)]
        curves.append(Curve(r.name, [s for s, _ in pts], [v for _, v in pts]))
    if not any(c.steps for c in curves):
        return f"{metric}: no finite values to draw"
    text = line_chart(curves, width, height - 1, color="truecolor" if color else "none",
                      legend_lines=max(1, min(len(runs), 4)))
    console = Console(width=width, force_terminal=color, no_color=not color, color_system="truecolor" if color else None,
                      highlight=False, legacy_windows=False)
    with console.capture() as out:
        console.print(f"{metric} by step")
        console.print(text)
    return out.get().rstrip("\n")


def main(paths: list[Path], metric: str | None, as_json: bool) -> int:
    return compare.main(paths, metric, as_json, draw=chart)
