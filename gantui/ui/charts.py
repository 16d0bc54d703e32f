"""Charts as text: the full chart's line charts as rich `Text` (below), and the small panes'
column charts (`column_chart`, at the end). Line charts: braille curves (2x4 dots per cell),
integer step ticks, an optional log scale, dotted event markers and reference lines. Pure: no textual, no numpy.

Rules that make the chart readable on any terminal (dark or light, 256 colours, NO_COLOR):
- the legend sits on its own line(s) above the plot, never over a curve;
- markers (pauses, rate changes) and reference lines are drawn only in cells no curve
  touches, in the terminal's own foreground colour, dimmed: they can never hide a point,
  the newest included;
- curves use mid-luminance colours that read on black and on white; without colour each
  curve is drawn with its own glyph (● × + ○ ◆ □) and the legend names the glyphs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from rich.style import Style
from rich.text import Text

# Mid-luminance colours: contrast >= ~3:1 against both a black and a white background.
PALETTE = [(214, 80, 80), (55, 125, 215), (40, 155, 85), (160, 90, 210), (215, 125, 25), (20, 150, 160)]
GLYPHS = "●×+○◆□"
MARK_STYLE = "dim"            # the terminal's own foreground, dimmed: fine on dark and light
BRAILLE = 0x2800
_DOT = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))   # [row][col] of a 2x4 cell


@dataclass(frozen=True)
class Curve:
    label: str
    steps: Sequence[int]
    values: Sequence[float]
    rgb: tuple[int, int, int] | None = None     # None: the palette colour for its position


@dataclass(frozen=True)
class Mark:
    """A vertical marker at a step: `line` is drawn down the column, `cap` on its top row."""

    step: int
    label: str                                  # legend words: "paused", "lr change"
    line: str = "┊"
    cap: str = "┊"


@dataclass(frozen=True)
class RefLine:
    """A horizontal reference (a rule's limit)."""

    value: float
    label: str


@dataclass
class _Canvas:
    width: int
    height: int
    dots: list[list[int]] = field(default_factory=list)
    owner: list[list[int]] = field(default_factory=list)     # curve index per cell, -1 none
    chars: list[list[str]] = field(default_factory=list)      # glyph mode / marks

    def __post_init__(self) -> None:
        self.dots = [[0] * self.width for _ in range(self.height)]
        self.owner = [[-1] * self.width for _ in range(self.height)]
        self.chars = [[""] * self.width for _ in range(self.height)]

    def dot(self, x: int, y: int, k: int) -> None:
        cx, cy = x >> 1, y >> 2
        if 0 <= cx < self.width and 0 <= cy < self.height:
            self.dots[cy][cx] |= _DOT[y & 3][x & 1]
            self.owner[cy][cx] = k

    def glyph(self, cx: int, cy: int, ch: str, k: int) -> None:
        if 0 <= cx < self.width and 0 <= cy < self.height:
            self.chars[cy][cx] = ch
            self.owner[cy][cx] = k

    def empty(self, cx: int, cy: int) -> bool:
        return self.owner[cy][cx] < 0 and not self.dots[cy][cx] and not self.chars[cy][cx]


# --- ticks --------------------------------------------------------------------------------------

def format_step(step: int) -> str:
    """An integer step label: 1200, 15k, 2.5M (never a fraction)."""
    s = int(step)
    if abs(s) >= 1_000_000 and s % 100_000 == 0:
        v = s / 1_000_000
        return f"{v:.0f}M" if s % 1_000_000 == 0 else f"{v:.1f}M"
    if abs(s) >= 10_000 and s % 1_000 == 0:
        return f"{s // 1000}k"
    return str(s)


def step_ticks(x0: int, x1: int, max_ticks: int) -> list[int]:
    """Integer ticks at the densest 1-2-5 spacing that gives at most `max_ticks` in [x0, x1]."""
    max_ticks = max(2, max_ticks)
    span = max(1, x1 - x0)
    size = 1
    while True:
        for m in (1, 2, 5):
            step = m * size
            if span // step <= max_ticks - 1:
                first = -(-x0 // step) * step
                return list(range(first, x1 + 1, step)) or [x0]
        size *= 10


def _nice_step(span: float, n: int) -> float:
    raw = span / max(1, n)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def value_ticks(lo: float, hi: float, max_ticks: int) -> list[float]:
    """Linear ticks at a 1-2-5 spacing inside [lo, hi]."""
    if not hi > lo:
        return [lo]
    step = _nice_step(hi - lo, max(1, max_ticks - 1))
    first = math.ceil(lo / step - 1e-9) * step
    out = []
    v = first
    while v <= hi + step * 1e-9 and len(out) < 50:
        out.append(0.0 if abs(v) < step * 1e-9 else v)
        v += step
    return out


def log_ticks(lo: float, hi: float, max_ticks: int) -> list[float]:
    """Ticks (in log10 units) for a log axis spanning 10**lo .. 10**hi: decades, else 1-2-5."""
    decades = [float(k) for k in range(math.ceil(lo - 1e-9), math.floor(hi + 1e-9) + 1)]
    if len(decades) > max_ticks:
        every = math.ceil(len(decades) / max_ticks)
        decades = [d for d in decades if int(d) % every == 0]
    if len(decades) >= 2:
        return decades
    fine = [math.log10(m) + k for k in range(math.floor(lo) - 1, math.ceil(hi) + 1) for m in (1, 2, 5)]
    fine = [t for t in fine if lo - 1e-9 <= t <= hi + 1e-9]
    if 2 <= len(fine) <= max_ticks:
        return fine
    return [math.log10(v) for v in value_ticks(10 ** lo, 10 ** hi, max_ticks) if v > 0]


def format_value(v: float, step: float) -> str:
    """A tick label with just enough decimals for the tick spacing."""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e5 or a < 1e-3:
        return f"{v:.0e}" if abs(step) >= a * 0.5 else f"{v:.1e}"
    decimals = max(0, -math.floor(math.log10(abs(step)) + 1e-9)) if step else 2
    return f"{v:.{min(decimals, 4)}f}"


def format_log_value(t: float) -> str:
    v = 10 ** t
    if 1e-3 <= v < 1e5:
        s = f"{v:.3f}".rstrip("0").rstrip(".")
        return s or "0"
    return f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e")


# --- the chart ------------------------------------------------------------------------------------

def _style(rgb, color: str) -> Style | None:
    if color == "none" or rgb is None:
        return None
    if color == "256":
        from gantui.render import rgb_to_256
        import numpy as np

        return Style(color=f"color({int(rgb_to_256(np.array(rgb, dtype=np.uint8)))})")
    return Style(color=f"rgb({rgb[0]},{rgb[1]},{rgb[2]})")


def legend_items(curves: Sequence[Curve], marks: Sequence[Mark], refs: Sequence[RefLine],
                 color: str, notes: Sequence[str] = ()) -> list[Text]:
    items = []
    for k, c in enumerate(curves):
        t = Text(no_wrap=True)
        if color == "none":
            t.append(GLYPHS[k % len(GLYPHS)])
        else:
            t.append("━━", _style(c.rgb or PALETTE[k % len(PALETTE)], color))
        t.append(" " + c.label)
        items.append(t)
    seen = set()
    for m in marks:
        if m.label in seen:
            continue
        seen.add(m.label)
        t = Text(no_wrap=True)
        t.append(m.cap if m.cap == m.line else m.cap + m.line, MARK_STYLE)
        t.append(" " + m.label)
        items.append(t)
    for r in refs:
        t = Text(no_wrap=True)
        t.append("┄┄", MARK_STYLE)
        t.append(" " + r.label)
        items.append(t)
    for n in notes:
        items.append(Text(n, "italic", no_wrap=True))
    return items


def _lay_out(items: list[Text], width: int, max_lines: int) -> list[Text]:
    """Items on at most `max_lines` lines, two spaces apart, never cut: what does not fit is
    left out (the later items first) and counted as '+N'."""
    for keep in range(len(items), -1, -1):
        lines: list[Text] = [Text(no_wrap=True)]
        shown = items[:keep]
        more = len(items) - keep
        tail = [Text(f"+{more} more", "dim")] if more else []
        ok = True
        for it in shown + tail:
            cur = lines[-1]
            need = it.cell_len + (2 if cur.cell_len else 0)
            if cur.cell_len + need > width:
                if len(lines) == max_lines or it.cell_len > width:
                    ok = False
                    break
                lines.append(Text(no_wrap=True))
                cur = lines[-1]
            if cur.cell_len:
                cur.append("  ")
            cur.append_text(it)
        if ok:
            return lines
    return [Text(no_wrap=True)]


def line_chart(curves: Sequence[Curve], width: int, height: int, *, log: bool = False,
               marks: Sequence[Mark] = (), refs: Sequence[RefLine] = (), color: str = "truecolor",
               x_range: tuple[int, int] | None = None, legend_lines: int = 2) -> Text:
    """`height` lines of at most `width` cells: legend, plot with a y axis, x axis, step labels."""
    if width < 24 or height < 7:
        return Text("too small for a chart", "dim")
    # --- clean points -------------------------------------------------------------------------
    dropped = nonfinite = 0
    pts: list[list[tuple[int, float] | None]] = []      # None breaks the line
    for c in curves:
        row: list[tuple[int, float] | None] = []
        for s, v in zip(c.steps, c.values):
            v = float(v)
            if not math.isfinite(v):
                nonfinite += 1
                row.append(None)
                continue
            if log:
                if v <= 0:
                    dropped += 1
                    row.append(None)
                    continue
                v = math.log10(v)
            row.append((int(s), v))
        pts.append(row)
    finite = [p for row in pts for p in row if p is not None]
    notes = []
    if dropped:
        notes.append(f"{dropped} point{'s' if dropped != 1 else ''} <= 0 not on the log scale")
    if nonfinite:
        notes.append(f"! {nonfinite} NaN/inf")
    if not finite:
        msg = "no points to draw yet" if not dropped else "no positive values: turn the log scale off (l)"
        return Text(msg, "dim italic")
    if x_range is not None:
        x0, x1 = x_range
    else:
        x0 = min(p[0] for p in finite)
        x1 = max(p[0] for p in finite)
    if x1 <= x0:
        x1 = x0 + 1
    ref_vals = []
    for r in refs:
        if math.isfinite(r.value) and (not log or r.value > 0):
            ref_vals.append(math.log10(r.value) if log else r.value)
    ys = [p[1] for p in finite if x0 <= p[0] <= x1] or [p[1] for p in finite]
    lo, hi = min(ys + ref_vals), max(ys + ref_vals)
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        pad = 0.5 if log else max(abs(hi) * 0.1, 1e-6)
        lo, hi = lo - pad, hi + pad
    else:
        pad = (hi - lo) * 0.05
        lo, hi = lo - pad, hi + pad

    # --- layout -----------------------------------------------------------------------------------
    legend = _lay_out(legend_items(curves, marks, refs, color, notes), width, legend_lines)
    plot_h = height - len(legend) - 2
    if plot_h < 3:
        legend = legend[:1]
        plot_h = height - 3
    max_y_ticks = max(2, min(6, plot_h // 2 + 1))
    if log:
        yt = log_ticks(lo, hi, max_y_ticks)
        ylabels = [format_log_value(t) for t in yt]
    else:
        yt = value_ticks(lo, hi, max_y_ticks)
        spacing = yt[1] - yt[0] if len(yt) > 1 else abs(hi - lo)
        ylabels = [format_value(t, spacing) for t in yt]
    ylab_w = max(len(s) for s in ylabels) if ylabels else 1
    plot_w = width - ylab_w - 1
    if plot_w < 10:
        return Text("too small for a chart", "dim")
    canvas = _Canvas(plot_w, plot_h)
    dots_w, dots_h = plot_w * 2, plot_h * 4

    def px(step: int) -> int:
        return int(round((step - x0) / (x1 - x0) * (dots_w - 1)))

    def py(v: float) -> int:
        return int(round((hi - v) / (hi - lo) * (dots_h - 1)))

    # --- curves --------------------------------------------------------------------------------
    for k, row in enumerate(pts):
        prev: tuple[int, int] | None = None
        for p in row:
            if p is None or not x0 <= p[0] <= x1:
                prev = None
                continue
            x, y = px(p[0]), py(p[1])
            if color == "none":
                canvas.glyph(x >> 1, y >> 2, GLYPHS[k % len(GLYPHS)], k)
            elif prev is None:
                canvas.dot(x, y, k)
            else:
                _segment(canvas, prev[0], prev[1], x, y, k)
            prev = (x, y)

    # --- references and markers, only where no curve is ------------------------------------------
    for r, v in zip([r for r in refs if math.isfinite(r.value) and (not log or r.value > 0)], ref_vals):
        cy = py(v) >> 2
        for cx in range(plot_w):
            if canvas.empty(cx, cy):
                canvas.chars[cy][cx] = "┄"
    for m in marks:
        if not x0 <= m.step <= x1:
            continue
        cx = px(m.step) >> 1
        for cy in range(plot_h):
            if canvas.empty(cx, cy):
                canvas.chars[cy][cx] = m.cap if cy == 0 else m.line

    # --- assemble --------------------------------------------------------------------------------
    styles = [_style(c.rgb or PALETTE[k % len(PALETTE)], color) for k, c in enumerate(curves)]
    tick_rows = {}
    for t, label in zip(yt, ylabels):
        r = py(t) >> 2
        if 0 <= r < plot_h and r not in tick_rows:
            tick_rows[r] = label
    out = Text(no_wrap=True, overflow="crop")
    for i, line in enumerate(legend):
        if i:
            out.append("\n")
        out.append_text(line)
    for cy in range(plot_h):
        out.append("\n")
        label = tick_rows.get(cy)
        out.append((label or "").rjust(ylab_w), "dim")
        out.append("┤" if label is not None else "│", "dim")
        run_style: Style | str | None = None
        run = []
        for cx in range(plot_w):
            d, ch, k = canvas.dots[cy][cx], canvas.chars[cy][cx], canvas.owner[cy][cx]
            if d:
                c, st = chr(BRAILLE + d), styles[k] if k >= 0 else None
            elif ch:
                c, st = ch, (styles[k] if k >= 0 else MARK_STYLE)
            else:
                c, st = " ", None
            if st is not run_style and run:
                out.append("".join(run), run_style)
                run = []
            run_style = st
            run.append(c)
        if run:
            out.append("".join(run), run_style)
    # x axis and its integer step labels
    label_w = max(len(format_step(x0)), len(format_step(x1))) + 2
    ticks = step_ticks(x0, x1, max(2, plot_w // label_w))
    axis = ["─"] * plot_w
    labels = [" "] * plot_w
    last_end = -1
    for t in ticks:
        cx = px(t) >> 1
        if not 0 <= cx < plot_w:
            continue
        axis[cx] = "┬"
        s = format_step(t)
        start = min(max(0, cx - len(s) // 2), plot_w - len(s))
        if start > last_end:
            labels[start:start + len(s)] = list(s)
            last_end = start + len(s)
    out.append("\n")
    out.append(" " * ylab_w + "└" + "".join(axis), "dim")
    out.append("\n")
    out.append(" " * (ylab_w + 1) + "".join(labels), "dim")
    return out


def _segment(canvas: _Canvas, x0: int, y0: int, x1: int, y1: int, k: int) -> None:
    """Bresenham between two dots."""
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    err = dx + dy
    while True:
        canvas.dot(x0, y0, k)
        if x0 == x1 and y0 == y1:
            return
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x0 += sx
        if e2 <= dx:
            err += dx
            y0 += sy


# --- column charts (the small panes' history) ------------------------------------------------------------------------------------

BLOCKS = " ▁▂▃▄▅▆▇█"


def resample(values, width: int) -> list[float]:
    """At most `width` points; each bucket keeps whichever of its min or max lies farther
    from its mean (as render.sparkline does), so a spike survives; NaN if it held one."""
    vals = [float(v) for v in values]
    n = len(vals)
    if n <= width or width < 1:
        return vals
    out = []
    for i in range(width):
        chunk = vals[i * n // width:(i + 1) * n // width]
        finite = [v for v in chunk if math.isfinite(v)]
        if len(finite) < len(chunk) or not finite:
            out.append(math.nan)
            continue
        mean = sum(finite) / len(finite)
        lo, hi = min(finite), max(finite)
        out.append(hi if hi - mean >= mean - lo else lo)
    return out


def column_chart(values, width: int, rows: int, lo: float | None = None,
                 hi: float | None = None) -> list[str]:
    """`rows` lines of `width` cells: a column per point in 1/8-cell steps, newest at the
    right, padded on the left. A non-finite point is a column of '!'."""
    pts = resample(values, width)
    finite = [v for v in pts if math.isfinite(v)]
    lines = [[" "] * width for _ in range(rows)]
    if not pts or rows < 1:
        return ["".join(line) for line in lines]
    lo = min(finite) if lo is None and finite else (0.0 if lo is None else lo)
    hi = max(finite) if hi is None and finite else (1.0 if hi is None else hi)
    span = hi - lo
    offset = width - len(pts)
    for i, v in enumerate(pts):
        x = offset + i
        if not math.isfinite(v):
            for r in range(rows):
                lines[r][x] = "!"
            continue
        eighths = rows * 8 * (v - lo) / span if span > 0 else rows * 4
        eighths = max(1, min(rows * 8, int(round(eighths))))  # the minimum stays visible
        for r in range(rows):
            below = (rows - 1 - r) * 8
            lines[r][x] = BLOCKS[max(0, min(8, eighths - below))]
    return ["".join(line) for line in lines]
