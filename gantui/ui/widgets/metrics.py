"""Losses and gradients panes: smoothed charts over the whole run with min / last / max.

Both read one bounded `History` (min/max-downsampled buckets): the losses pane appends the
records and marks the events; the gradients pane and the full chart read it. They redraw only
when the app says the chart frame is due (`ChartsDue`) or the pane is resized, so an idle pane
costs nothing.
"""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from gantui.ui.widgets.base import Pane

from gantui.history import History, ema_debiased
from gantui.humanize import format_lr
from gantui.ui.charts import column_chart
from gantui.ui.messages import AlertsChanged, ChartsDue, EventsArrived, MetricsArrived, RunInfoArrived
from gantui.ui.text import (HealthEntry, fmt_num, health_entries, health_lines, pack_items, ratio_gauge_line,
                            ratio_verdict)
from gantui.vocab.losses import is_critic
from gantui.vocab.metrics import FIGURES

SMOOTHING = 0.8          # EMA weight, debiased as TensorBoard does; per-record values are
                         # already means over log.every steps, so little smoothing is needed
NUM_W = 8                # one min / last / max column


def with_ratio(m: dict[str, Any]) -> dict[str, Any]:
    """The record plus `grad_ratio` = |grad D| / |grad G| (what the chart plots as the ratio)."""
    d, g = m.get("grad_norm_d"), m.get("grad_norm_g")
    if isinstance(d, (int, float)) and isinstance(g, (int, float)) and g > 0 and "grad_ratio" not in m:
        return {**m, "grad_ratio": d / g}
    return m


def _readouts(series) -> str:
    return "".join(fmt_num(v, NUM_W) for v in (series.min, series.last, series.max))


class LossesPane(Pane):
    """D and G losses (plus the Wasserstein estimate and GP for WGAN losses)."""

    def __init__(self, history: History, **kw) -> None:
        super().__init__(**kw)
        self.history = history          # the charts' records: this pane writes them, the others read
        self.critic = False
        self.border_title = f"Losses · EMA {SMOOTHING}"

    def on_run_info_arrived(self, message: RunInfoArrived) -> None:
        self.critic = is_critic(message.info.loss_kind)

    def on_metrics_arrived(self, message: MetricsArrived) -> None:
        append = self.history.append
        for m in message.records:
            append(with_ratio(m))

    def on_events_arrived(self, message: EventsArrived) -> None:
        """Pauses, rate changes, resumes with a changed config and rollbacks mark the charts."""
        history = self.history
        for e in message.events:
            d = e.data
            if e.kind == "lr_changed":
                which = str(d.get("which", ""))
                history.mark(e.step, "lr_changed", f"{which.upper()} lr {format_lr(d.get('new'))}")
            elif e.kind in ("paused", "resumed"):
                history.mark(e.step, e.kind, e.kind)
            elif e.kind == "config_changed":
                history.mark(e.step, "config_changed", "config changed")
            elif e.kind == "rolled_back":  # [recover]: the charts drop the abandoned stretch and mark the branch
                history.rewind(e.step)
                history.mark(e.step, e.kind, f"rolled back from {d.get('from_step')}")

    def on_charts_due(self, message: ChartsDue) -> None:
        self.refresh()

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


QUALITY = tuple((f.key, f.label, f.fmt) for f in FIGURES)
SPARK_W = 8


def autopilot_items(autopilot: dict | None) -> list[Text]:
    """The best checkpoint ('best fid 12.3@4500') and the [stop] rules' state ('patience 2/5', 'stop at
    fid<=5', '12.0/60 min', 'stop on mode_collapse'), from the newest quality record."""
    if not autopilot:
        return []
    items = []
    best = autopilot.get("best")
    if isinstance(best, dict) and isinstance(best.get("value"), (int, float)):
        t = Text(no_wrap=True)
        t.append("best ", "bold")
        t.append(f"{best.get('key')} {best['value']:.4g}@{best.get('step')}")
        items.append(t)
    rules = autopilot.get("stop_rules") or {}
    if isinstance(rules, dict):
        words = []
        if isinstance(rules.get("patience"), list) and len(rules["patience"]) == 2:
            words.append(f"patience {rules['patience'][0]}/{rules['patience'][1]}")
        if isinstance(rules.get("target"), dict):
            from gantui.vocab import criteria

            words += [f"target {k}{'<=' if criteria.lower_is_better(k) else '>='}{v:g}"
                      for k, v in rules["target"].items()]
        if isinstance(rules.get("minutes"), list) and len(rules["minutes"]) == 2:
            words.append(f"{rules['minutes'][0]:.0f}/{rules['minutes'][1]:g} min")
        if rules.get("on_alerts"):
            words.append("on " + ",".join(map(str, rules["on_alerts"])))
        if words:
            t = Text(no_wrap=True)
            t.append("stop ", "bold")
            t.append(" · ".join(words))
            items.append(t)
    return items


def quality_items(history: History, autopilot: dict | None = None) -> list[Text]:
    """'FID 23.1 ▇▅▃▂' per live quality metric that the records carry (none: no line), then the best
    checkpoint and the stop rules' state."""
    items = []
    for key, label, fmt in QUALITY:
        if key not in history:
            continue
        s = history.series(key)
        if not len(s) or s.last is None:
            continue
        t = Text(no_wrap=True)
        t.append(label + " ", "bold")
        t.append(fmt.format(s.last) if math.isfinite(s.last) else str(s.last))
        values = [v for v in s.values() if math.isfinite(v)]
        if len(values) > 1:
            from gantui.render import sparkline  # numpy: not before the first frame

            t.append(" " + sparkline(values, SPARK_W), "#9fb8d8")
        items.append(t)
    return items + autopilot_items(autopilot)


def pack(items: list[Text], width: int, max_lines: int, lead: str = "") -> list[Text]:
    return pack_items(items, width, max_lines, lead) if items else []


class GradientsPane(Pane):
    """|grad D|, |grad G|, their ratio on a gauge that takes its verdict from the
    d_overpowering health entry (or the alert), D(x) and D(G(z)), then the health row
    (one verdict per alert rule) and the live quality metrics when the records carry them."""

    def __init__(self, history: History, **kw) -> None:
        super().__init__(**kw)
        self.history = history               # read only: the losses pane writes it
        self.critic = False
        self.health: list[HealthEntry] = []  # the rules' verdicts in the newest record that had any
        self.active_rules: set[str] = set()
        self.autopilot: dict | None = None   # the newest record's "best" and "stop_rules"
        self.rows = 0                        # the height the app's layout gave it
        self.border_title = "Gradients & health"

    def on_run_info_arrived(self, message: RunInfoArrived) -> None:
        self.critic = is_critic(message.info.loss_kind)

    def on_metrics_arrived(self, message: MetricsArrived) -> None:
        for m in message.records:
            if "best" in m or "stop_rules" in m:  # the autopilot's state (quality records)
                self.autopilot = {"best": m.get("best"), "stop_rules": m.get("stop_rules")}
        entries = health_entries(message.records[-1])
        if entries or self.health:
            self.health = entries

    def on_alerts_changed(self, message: AlertsChanged) -> None:
        self.active_rules = set(message.active)
        self.refresh()

    def on_charts_due(self, message: ChartsDue) -> None:
        self.refresh()

    def fit(self, width: int, room: int) -> bool:
        """As tall as the content at `width` (the health and quality rows come and go), at most
        `room` rows and at least 4. True when the height changed."""
        rows = max(4, min(self.wanted_lines(width) + 2, room))
        if rows == self.rows:
            return False
        self.rows = rows
        self.styles.height = rows
        return True

    def _row(self, label: str, key: str, chart_w: int, style: str) -> Text:
        s = self.history.series(key)
        t = Text(no_wrap=True, overflow="crop")
        t.append(label, "bold")
        # the recent part of the run only: the newest chart_w buckets, not all of them
        recent = [b.mean for b in s.buckets()[-chart_w:]] if chart_w > 0 else []
        t.append(column_chart(recent, chart_w, 1)[0] if chart_w > 0 else "", style)
        t.append(fmt_num(s.last, NUM_W))
        return t

    def _pair(self, a: tuple[str, str, str], b: tuple[str, str, str], lw: int, w: int) -> list[Text]:
        half = w // 2
        if half >= lw + NUM_W + 4:
            cw = half - lw - NUM_W - 1
            line = self._row(a[0].ljust(lw), a[1], cw, a[2])
            line.append(" ")
            line.append_text(self._row(b[0].ljust(lw), b[1], cw, b[2]))
            return [line]
        cw = max(0, w - lw - NUM_W)
        return [self._row(a[0].ljust(lw), a[1], cw, a[2]), self._row(b[0].ljust(lw), b[1], cw, b[2])]

    def ratio_line(self, w: int) -> Text:
        hist = self.history
        d, g = hist.series("grad_norm_d").last, hist.series("grad_norm_g").last
        ratio = d / g if d is not None and g is not None and g > 0 and math.isfinite(d) else None
        return ratio_gauge_line(ratio_verdict(self.health, ratio, self.active_rules), w)

    def blocks(self, w: int) -> list[tuple[int, list[Text]]]:
        """(priority, lines) in screen order; the app sizes the pane from these, and a short
        pane keeps the highest priorities."""
        grads = self._pair(("|grad D|", "grad_norm_d", "#e07b7b"), ("|grad G|", "grad_norm_g", "#7bb6e0"), 10, w)
        real_l, fake_l = ("critic(x)", "critic(G(z))") if self.critic else ("D(x)", "D(G(z))")
        lw = 14 if self.critic else 9
        outs = self._pair((real_l, "d_real", "#9fd89f"), (fake_l, "d_fake", "#d8a0e8"), lw, w)
        return [(8, grads), (10, [self.ratio_line(w)]), (6, outs),
                (9, health_lines(self.health, w, 2)), (7, pack(quality_items(self.history, self.autopilot), w, 2, "quality "))]

    def wanted_lines(self, w: int) -> int:
        """What `blocks(w)` would take, without drawing the charts (the app asks twice a second)."""
        half = w // 2
        lw = 14 if self.critic else 9
        return ((1 if half >= 10 + NUM_W + 4 else 2) + 1 + (1 if half >= lw + NUM_W + 4 else 2)
                + len(health_lines(self.health, w, 2)) + len(pack(quality_items(self.history, self.autopilot), w, 2, "quality ")))

    def draw(self) -> Text:
        w, h = self.size.width, max(1, self.size.height)
        blocks = self.blocks(w)
        keep, used = set(), 0
        for i in sorted(range(len(blocks)), key=lambda i: -blocks[i][0]):
            n = len(blocks[i][1])
            if n and used + n <= h:
                keep.add(i)
                used += n
        out = Text(no_wrap=True, overflow="crop")
        first = True
        for i, (_, lines) in enumerate(blocks):
            if i not in keep:
                continue
            for line in lines:
                if not first:
                    out.append("\n")
                out.append_text(line)
                first = False
        return out
