"""The full chart view (p): raw and smoothed D / G losses over the whole run, drawn with
plotext, with a vertical marker wherever the user paused or changed a learning rate."""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

from gantui.history import History, ema_debiased
from gantui.ui.widgets.metrics import SMOOTHING
from gantui.ui.widgets.status import key_text

MARKER_KINDS = {"paused": "paused", "lr_changed": "lr change"}
RAW_D, SMOOTH_D = (150, 80, 80), (240, 110, 110)
RAW_G, SMOOTH_G = (70, 110, 150), (110, 180, 240)
MARK = (230, 200, 60)


def _figure():
    """A private plotext figure, so nothing else's plot state leaks into ours (plotext 6
    keeps its public figure module-global), unlimited by the real terminal's size."""
    from plotext._kernel.terminal import terminal

    term = terminal()
    term.limit(False, False)
    return term._master


def _marker(plt, rgb, color: bool):
    # an explicit pixel: a bare (r, g, b) tuple would be read as (fg, bg, style)
    return plt.marker("braille", plt.pixel(foreground=rgb)) if color else plt.marker("braille")


def chart_text(history: History, width: int, height: int, color: bool = True) -> Text:
    import plotext as plt

    d, g = history.series("d_loss"), history.series("g_loss")
    if width < 20 or height < 6:
        return Text("too small for a chart", "dim")
    if not len(d) and not len(g):
        return Text("no metrics yet: the chart fills in as the run logs", "dim italic")
    fig = _figure()
    fig.clear()
    fig.theme("simple" if color else "colorless")
    fig.plot_size(width, height)
    fig.title("D and G losses over the whole run (raw bucket means, EMA smoothed)")
    for label, series, raw_c, smooth_c in (("D", d, RAW_D, SMOOTH_D), ("G", g, RAW_G, SMOOTH_G)):
        if not len(series):
            continue
        xs = series.steps()
        ys = series.values()
        pts = [(x, y) for x, y in zip(xs, ys) if math.isfinite(y)]
        if not pts:
            continue
        px, py = zip(*pts)
        raw = fig.signal(list(px), list(py), marker=_marker(plt, raw_c, color))
        raw.lines()
        raw.label(f"{label} raw")
        fig.draw(raw)
        sm = fig.signal(list(px), ema_debiased(py, SMOOTHING),
                        marker=_marker(plt, smooth_c, color))
        sm.lines()
        sm.label(f"{label} EMA {SMOOTHING}")
        fig.draw(sm)
    labelled: set[str] = set()
    first = min((s.steps()[0] for s in (d, g) if len(s)), default=0)
    last = max((s.steps()[-1] for s in (d, g) if len(s)), default=0)
    for m in history.markers:
        if m.kind not in MARKER_KINDS or not first <= m.step <= last:
            continue
        name = MARKER_KINDS[m.kind]
        fig.line(m.step, orientation="v", pixel=plt.pixel(foreground=MARK) if color else None, style="dotted",
                 label=None if name in labelled else name)
        labelled.add(name)
    out = fig.build().string(colorless=not color)
    return Text.from_ansi(out, no_wrap=True)


class ChartView(Widget):
    def __init__(self, history: History, **kw) -> None:
        super().__init__(**kw)
        self.history = history
        self.color = True

    def render(self) -> Text:
        try:
            return chart_text(self.history, self.size.width, self.size.height, self.color)
        except Exception as e:  # noqa: BLE001 - a plotting bug must not take the monitor down
            return Text(f"cannot draw the chart: {type(e).__name__}: {e}", "red")


class ChartScreen(Screen):
    """Full-screen chart; refreshed by the app's poll while open."""

    BINDINGS = [Binding("p", "app.pop_screen", "back"), Binding("escape", "app.pop_screen", "back")]

    def __init__(self, history: History, color: bool = True) -> None:
        super().__init__()
        self.history = history
        self.color = color

    def compose(self) -> ComposeResult:
        view = ChartView(self.history, id="chart")
        view.color = self.color
        yield view
        yield Static(key_text(200, [("p", "back", 10), ("esc", "back", 9), ("q", "quit", 10)]),
                     id="chart-keys")
