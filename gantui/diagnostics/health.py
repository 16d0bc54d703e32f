"""One verdict per rule, for the screen: the alert latch's own state, never a second judgement.

`level` is 'alert' exactly while the rule is raised, so a gauge or a word drawn from a Verdict can
never say OVERPOWERING while the alerts pane says OK. 'watch' means the condition held in some of
the rule's recent records (`watch` of its window) without raising; 'off' means the rule judges
nothing now, with the reason as its word (the warm-up, a metric the run does not record, too few
sharp samples, a window still filling, rules disabled): a rule never reads `ok` while it cannot judge.

The compact form (`Health.to_record()`) is what the engine writes into each metrics record under
"health", so a second process (`gantui watch`) shows the same verdicts without recomputing them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

OFF, OK, WATCH, ALERT = "off", "ok", "watch", "alert"
LEVELS = (OFF, OK, WATCH, ALERT)

# Non-colour marks: a verdict reads the same with NO_COLOR or to a colour-blind reader.
LEVEL_GLYPHS = {OFF: "·", OK: "✓", WATCH: "△", ALERT: "▲"}
CRITICAL_GLYPH = "✖"

# The word a rule shows while raised; a screen shows it only when the level is ALERT.
ALERT_WORDS = {
    "divergence": "DIVERGED",
    "d_overpowering": "OVERPOWERING",
    "oscillation": "OSCILLATING",
    "mode_collapse": "COLLAPSED",
    "mode_dropping": "MODES DROPPED",
    "vanishing_gradients": "VANISHING",
    "exploding_gradients": "EXPLODING",
}


def word(rule: str, level: str, reason: str = "") -> str:
    if level == ALERT:
        return ALERT_WORDS.get(rule, rule.upper())
    if level == OFF:
        return reason or "off"
    return level


def glyph(rule: str, level: str) -> str:
    return CRITICAL_GLYPH if level == ALERT and rule == "divergence" else LEVEL_GLYPHS[level]


@dataclass(frozen=True)
class Verdict:
    """One rule's standing after the latest record."""

    rule: str
    level: str                      # off | ok | watch | alert
    word: str                       # "ok", "watch", "OVERPOWERING", "warm-up", ...
    condition: str | None = None    # the condition shown (the one that raised it, or the nearest)
    label: str = ""                 # how messages name its value: "D loss", "|grad D| / |grad G|"
    value: float | None = None      # its latest value ...
    threshold: float | None = None  # ... and its limit, as the rule scales it now
    op: str = ""                    # "below" | "above" | "at least" | "at most"
    held: int = 0                   # records of the last `window` in which the rule's condition held
    window: int = 0
    step: int | None = None         # the record the value comes from

    @property
    def glyph(self) -> str:
        return glyph(self.rule, self.level)


@dataclass(frozen=True)
class Gauge:
    """The D/G gradient gauge, labelled from the d_overpowering rule: `ratio` = |grad D| / |grad G|
    of the latest record, `limit` the rule's limit (grad_ratio_max x the run's own early median,
    None until that baseline is learned). Draw ratio / limit; take the word and colour from
    the d_overpowering verdict, never from where the needle sits."""

    ratio: float | None = None
    limit: float | None = None
    baseline: float | None = None
    # The signal that set a watch/alert verdict when it is not the gradient ratio (a saturated D
    # has a tiny gradient, so its ratio sits at the weak-D end while D's loss says OVERPOWERING):
    # {"label": "D loss", "value": 0.003, "limit": 0.05, "op": "below"}. The gauge then shows it.
    by: dict[str, Any] | None = None

    @property
    def position(self) -> float | None:
        """ratio / limit: 1 at the rule's line."""
        if self.ratio is None or not self.limit:
            return None
        return self.ratio / self.limit


@dataclass(frozen=True)
class Health:
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    gauge: Gauge = field(default_factory=Gauge)

    @property
    def levels(self) -> dict[str, str]:
        return {r: v.level for r, v in self.verdicts.items()}

    def to_record(self) -> dict[str, Any]:
        """The compact, JSON-safe form for a metrics record:
        {"levels": {"d_overpowering": "ok", ...}, "reasons": {"mode_dropping": "warm-up"},
         "gauge": {"ratio": 3.1, "limit": 40.0}} ("reasons": why each `off` rule cannot judge)."""
        g = {"ratio": _round(self.gauge.ratio), "limit": _round(self.gauge.limit)}
        v = self.verdicts.get("d_overpowering")
        if (v is not None and v.level in (WATCH, ALERT) and v.condition not in (None, "grad_ratio")
                and _round(v.value) is not None and _round(v.threshold) is not None):
            g["by"] = {"label": v.label, "value": _round(v.value), "limit": _round(v.threshold), "op": v.op}
        reasons = {r: v.word for r, v in self.verdicts.items() if v.level == OFF}
        return {"levels": self.levels, "reasons": reasons, "gauge": g}

    @classmethod
    def from_record(cls, data: Any) -> "Health | None":
        """The Health a metrics record's "health" value describes (levels and words only: the
        numbers are the record's own), or None when it is missing or malformed."""
        if not isinstance(data, dict) or not isinstance(data.get("levels"), dict):
            return None
        verdicts = {}
        reasons = data.get("reasons") if isinstance(data.get("reasons"), dict) else {}
        for rule, level in data["levels"].items():
            if not isinstance(rule, str) or level not in LEVELS:
                return None
            reason = reasons.get(rule)
            reason = reason if isinstance(reason, str) and 0 < len(reason) <= 40 and reason.isprintable() else ""
            verdicts[rule] = Verdict(rule, level, word(rule, level, reason))
        g = data.get("gauge") if isinstance(data.get("gauge"), dict) else {}
        by = g.get("by")
        if not (isinstance(by, dict) and isinstance(by.get("label"), str) and isinstance(by.get("op"), str)
                and _number(by.get("value")) is not None and _number(by.get("limit")) is not None):
            by = None
        gauge = Gauge(_number(g.get("ratio")), _number(g.get("limit")), by=by)
        return cls(verdicts, gauge)


def _round(v: float | None) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return float(f"{v:.4g}")


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)
