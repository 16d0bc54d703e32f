"""Losses and gradients panes: smoothed charts over the whole run with min / last / max.

Both read the app's bounded `History` (min/max-downsampled buckets) and render only when
the app marks them dirty or the pane is resized, so an idle pane costs nothing.
"""

from __future__ import annotations

import math

from rich.text import Text
from gantui.ui.widgets.base import Pane

from gantui.history import History, ema_debiased
from gantui.ui.format import column_chart, fmt_num, gauge

SMOOTHING = 0.8          # EMA weight, debiased as TensorBoard does; per-record values are
                         # already means over log.every steps, so little smoothing is needed
NUM_W = 8                # one min / last / max column


def _readouts(series) -> str:
    return "".join(fmt_num(v, NUM_W) for v in (series.min, series.last, series.max))


class LossesPane(Pane):
    """D and G losses (plus the Wasserstein estimate and GP for WGAN losses)."""

    def __init__(self, history: History, **kw) -> None:
        super().__init__(**kw)
        self.history = history
        self.critic = False
        self.border_title = f"Losses · EMA {SMOOTHING}"

    def rows(self) -> list[tuple[str, str, str]]:
        rows = [("D", "d_loss", "bold #e07b7b"), ("G", "g_loss", "bold #7bb6e0")]
        if self.critic:
            rows += [("W", "wasserstein", "bold #c0a0e0"), ("GP", "gp", "#a0a0a0")]
        return rows

    def draw(self) -> Text:
        w, h = self.size.width, self.size.height
        rows = self.rows()
        if len(rows) > 2 and h < 1 + 2 * len(rows):
            rows = rows[:2]          # too short: the two losses before the extras
        label_w = 3
        chart_w = max(1, w - label_w - 3 * NUM_W - 1)
        out = Text(no_wrap=True, overflow="crop")
        out.append(" " * (label_w + chart_w + 1) + "min".rjust(NUM_W) + "last".rjust(NUM_W)
                   + "max".rjust(NUM_W), "dim")
        per = max(1, (h - 1) // max(1, len(rows)))
        for label, key, style in rows:
            series = self.history.series(key)
            smoothed = ema_debiased(series.values(), SMOOTHING) if len(series) else []
            chart = column_chart(smoothed, chart_w, per)
            for r, line in enumerate(chart):
                out.append("\n")
                last = r == len(chart) - 1
                out.append((label if last else "").ljust(label_w), style)
                out.append(line, style.replace("bold ", ""))
                out.append(" ")
                if last:
                    out.append(_readouts(series))
        if not len(self.history.series("d_loss")):
            out.append("\n")
            out.append("waiting for the first metrics record…", "dim italic")
        return out


class GradientsPane(Pane):
    """|grad D|, |grad G|, their ratio against the 5x overpowering lines, D(x) and D(G(z))."""

    LIMIT = 5.0

    def __init__(self, history: History, **kw) -> None:
        super().__init__(**kw)
        self.history = history
        self.critic = False
        self.border_title = "Gradients & D outputs"

    def _row(self, label: str, key: str, chart_w: int, style: str) -> Text:
        s = self.history.series(key)
        t = Text(no_wrap=True, overflow="crop")
        t.append(label, "bold")
        # the recent part of the run only: the newest chart_w buckets, not all of them
        recent = [b.mean for b in s.buckets()[-chart_w:]] if chart_w > 0 else []
        t.append(column_chart(recent, chart_w, 1)[0] if chart_w > 0 else "", style)
        t.append(fmt_num(s.last, NUM_W))
        return t

    def draw(self) -> Text:
        w, h = self.size.width, self.size.height
        label_w = 10
        hist = self.history
        d, g = hist.series("grad_norm_d").last, hist.series("grad_norm_g").last
        ratio = d / g if d is not None and g is not None and g > 0 and math.isfinite(d) else None
        lines: list[Text] = []
        half = w // 2
        if half >= label_w + NUM_W + 4:
            # two columns: |grad D| | |grad G| side by side
            cw = half - label_w - NUM_W - 1
            line = self._row("|grad D|".ljust(label_w), "grad_norm_d", cw, "#e07b7b")
            line.append(" ")
            line.append_text(self._row("|grad G|".ljust(label_w), "grad_norm_g", cw, "#7bb6e0"))
            lines.append(line)
        else:
            cw = max(0, w - label_w - NUM_W)
            lines.append(self._row("|grad D|".ljust(label_w), "grad_norm_d", cw, "#e07b7b"))
            lines.append(self._row("|grad G|".ljust(label_w), "grad_norm_g", cw, "#7bb6e0"))

        ratio_line = Text(no_wrap=True, overflow="crop")
        ratio_line.append("D/G ratio ".ljust(label_w), "bold")
        ratio_txt = "--" if ratio is None else f"{ratio:.2g}×"
        ratio_line.append(ratio_txt.rjust(6))
        ratio_line.append(" 1/5 ", "dim")
        gw = max(11, w - label_w - 6 - 5 - 4 - 14)
        ratio_line.append_text(gauge(ratio, gw, self.LIMIT))
        ratio_line.append(" 5× ", "dim")
        if ratio is not None and (ratio >= self.LIMIT or ratio <= 1 / self.LIMIT):
            ratio_line.append("OVERPOWERING" if ratio >= self.LIMIT else "G DOMINATES", "bold red")
        lines.append(ratio_line)

        real_l, fake_l = ("critic(x)", "critic(G(z))") if self.critic else ("D(x)", "D(G(z))")
        lw = 14 if self.critic else 9
        if half >= lw + NUM_W + 4:
            cw = half - lw - NUM_W - 1
            line = self._row(real_l.ljust(lw), "d_real", cw, "#9fd89f")
            line.append(" ")
            line.append_text(self._row(fake_l.ljust(lw), "d_fake", cw, "#d8a0e8"))
            lines.append(line)
        else:
            cw = max(0, w - lw - NUM_W)
            lines.append(self._row(real_l.ljust(lw), "d_real", cw, "#9fd89f"))
            lines.append(self._row(fake_l.ljust(lw), "d_fake", cw, "#d8a0e8"))
        out = Text(no_wrap=True, overflow="crop")
        for i, line in enumerate(lines[:max(1, h)]):
            if i:
                out.append("\n")
            out.append_text(line)
        return out
