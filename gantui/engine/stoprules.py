"""The `[stop]` rules: when a run has done what it can, stop it (saved, exit 0) and say why.

- `patience`: this many live-quality measurements in a row without improving `run.best_by` by more
  than `min_delta` (as Keras' EarlyStopping: a smaller gain does not reset the count, nor the best);
- `target`: a live-quality key reached its value (`{fid = 5.0}`: fid <= 5; `{is = 8.0}`: is >= 8);
- `max_minutes`: this process has trained that long (a resumed run starts its own budget);
- `on_alerts` + `after_steps`: one of the named alerts has stayed raised for that many steps.

Each returns a `RuleStop` with the rule's name, its evidence (the numbers it acted on) and one sentence.
The patience count starts again at a resume; its best starts at the resumed checkpoint's best.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gantui.vocab import criteria
from gantui.config import StopConfig


@dataclass(frozen=True)
class RuleStop:
    rule: str                        # patience | target | max_minutes | on_alerts
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


class StopRules:
    def __init__(self, cfg: StopConfig, key: str, best: float | None = None,
                 clock=time.monotonic) -> None:
        self.cfg = cfg
        self.key = key
        self.best = best
        self.waited = 0                     # measurements since the last improvement
        self.clock = clock
        self.started = clock()

    @property
    def active(self) -> bool:
        c = self.cfg
        return bool(c.patience or c.target or c.max_minutes or c.on_alerts)

    def on_quality(self, step: int, record: dict[str, Any]) -> RuleStop | None:
        """After a live-quality measurement (its record): patience and target."""
        for key, target in self.cfg.target.items():
            value = record.get(key)
            if value is not None and criteria.reached(key, value, target):
                way = "<=" if criteria.lower_is_better(key) else ">="
                return RuleStop("target", f"target reached: {key} {value:.4g} {way} {target:g} at step {step:,}",
                            {"key": key, "value": value, "target": target, "step": step})
        value = record.get(self.key)
        if value is None:
            return None
        if criteria.improves(self.key, value, self.best, self.cfg.min_delta):
            self.best, self.waited = float(value), 0
            return None
        self.waited += 1
        if self.cfg.patience and self.waited >= self.cfg.patience:
            return RuleStop("patience",
                        f"no improvement of {self.key} by more than {self.cfg.min_delta:g} in {self.waited} "
                        f"measurements (best {self.best:.4g}, last {value:.4g})",
                        {"key": self.key, "best": self.best, "last": value, "measurements": self.waited,
                         "patience": self.cfg.patience, "min_delta": self.cfg.min_delta, "step": step})
        return None

    def on_record(self, step: int, active_alerts: list[dict[str, Any]]) -> RuleStop | None:
        """At every metrics record: the wall-clock budget and the alerts held too long."""
        if self.cfg.max_minutes:
            minutes = (self.clock() - self.started) / 60
            if minutes >= self.cfg.max_minutes:
                return RuleStop("max_minutes", f"time budget spent: {minutes:.1f} of {self.cfg.max_minutes:g} minutes",
                            {"minutes": round(minutes, 3), "max_minutes": self.cfg.max_minutes, "step": step})
        for alert in active_alerts:
            rule, raised = alert.get("rule"), alert.get("step")
            if rule in self.cfg.on_alerts and isinstance(raised, int) and step - raised >= self.cfg.after_steps:
                return RuleStop("on_alerts", f"alert {rule} raised at step {raised:,} and still raised at step {step:,} "
                                         f"({step - raised:,} >= {self.cfg.after_steps:,} steps)",
                            {"alert": rule, "raised_at": raised, "held_steps": step - raised,
                             "after_steps": self.cfg.after_steps, "message": alert.get("message", ""),
                             "step": step})
        return None

    def state(self) -> dict[str, Any]:
        """For the screen and the records: what each rule that is on has seen so far."""
        out: dict[str, Any] = {}
        if self.cfg.patience:
            out["patience"] = [self.waited, self.cfg.patience]
        if self.cfg.max_minutes:
            out["minutes"] = [round((self.clock() - self.started) / 60, 2), self.cfg.max_minutes]
        if self.cfg.target:
            out["target"] = dict(self.cfg.target)
        if self.cfg.on_alerts:
            out["on_alerts"] = list(self.cfg.on_alerts)
        return out
