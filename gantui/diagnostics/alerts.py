"""Diagnostics: metric records in, alert records and health verdicts out."""

from __future__ import annotations

import math
import statistics
from typing import Any

from gantui.diagnostics import health as hl
from gantui.diagnostics.latch import Latch, holds, need
from gantui.vocab.losses import CRITIC_LOSSES
from gantui.diagnostics.rules import (
    CRITICAL,
    Context,
    DOverpowering,
    ExplodingGradients,
    ModeCollapse,
    ModeDropping,
    Off,
    Oscillation,
    Rule,
    VanishingGradients,
    finite,
    fmt,
    grad_ratio,
    ratio_limit,
)
from gantui.diagnostics.thresholds import Thresholds


def first_non_finite(metrics: dict[str, Any]) -> tuple[str, float] | None:
    """(key, value) of the first NaN/Inf number in a record, losses first; None if all finite."""
    order = ("d_loss", "g_loss", "gp", "wasserstein", "d_real", "d_fake", "grad_norm_d", "grad_norm_g")
    keys = [k for k in order if k in metrics] + [k for k in metrics if k not in order]
    for k in keys:
        v = metrics[k]
        if isinstance(v, float) and not math.isfinite(v):
            return k, v
    return None


def _num(v: Any) -> Any:
    """A value for the evidence: numbers to 4 significant digits, non-finite ones as strings
    (valid JSON), lists of indices as they are."""
    if isinstance(v, (bool, int, str)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_num(x) for x in v]
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return float(f"{v:.4g}")


ALERT_KEYS = {"step": int, "rule": str, "state": str, "severity": str, "message": str, "evidence": dict,
              "fix": str}


def _checked_alert(rule: Any, record: Any) -> dict:
    """A raised alert read back from a checkpoint (untrusted): its keys and types, else ValueError."""
    if not isinstance(record, dict) or record.get("rule") != rule:
        raise ValueError("malformed alert")
    for key, kind in ALERT_KEYS.items():
        if not isinstance(record.get(key), kind) or isinstance(record.get(key), bool):
            raise ValueError(f"alert {key}")
    if record["action"] is not None and not isinstance(record["action"], dict):
        raise ValueError("alert action")
    return dict(record)


def _copy(record: dict) -> dict:
    """A copy a consumer may change without changing the engine's state."""
    out = dict(record)
    out["evidence"] = {k: list(v) if isinstance(v, list) else v for k, v in record["evidence"].items()}
    out["action"] = dict(record["action"]) if record["action"] else None
    return out


class Diagnostics:
    """Feed it every metric record; it returns the alert records (raised / cleared) of that record.

    `loss_kind` and `label_smoothing` set what D's loss and scores can reach (the limits scale to
    them); `n_critic` is the critic steps per G step in force (for the fixes it suggests);
    `real_std` is the mean per-feature std of the real data (the collapse reference; 0 = unknown).
    When the engine changes smoothing or n_critic live it calls `configure` so the limits follow.
    Memory is bounded: every history is a deque of at most max(window, clear_window, early_window)
    records (mode_dropping's: 50 quality records).
    """

    def __init__(self, thresholds: Thresholds | None = None, loss_kind: str = "ns", real_std: float = 0.0, *,
                 label_smoothing: float = 0.0, n_critic: int = 1):
        self.t = thresholds if thresholds is not None else Thresholds()
        self.loss_kind = loss_kind
        self.real_std = float(real_std) if finite(real_std) else 0.0
        self.ctx = Context(self.t, loss_kind, self.real_std, float(label_smoothing), int(n_critic))
        self.oscillation = Oscillation(self.t.window)
        self.rules: list[Rule] = [DOverpowering(), self.oscillation, ModeCollapse(), ModeDropping(),
                                  VanishingGradients(), ExplodingGradients()]
        size = max(self.t.window, self.t.clear_window, self.t.early_window)
        self.latches = {r.name: Latch(max(size, ModeDropping.MAX_WINDOW) if r.quality else size, self.t.sustain,
                                      self.t.relapse)
                        for r in self.rules}
        self._off: dict[str, str] = {}          # rule -> why it cannot judge the latest record
        self._active: dict[str, dict] = {}
        self._raised_by: dict[str, str] = {}   # rule -> the condition that raised it
        self._seen_step: dict[str, int] = {}   # rule -> step of its latest observation
        self._baseline_samples: dict[str, list[float]] = {"grad_ratio": [], "grad_norm_g": [], "critic_level": []}
        self._last_ratio: float | None = None
        self.step = 0
        self.diverged = False

    # -- public --------------------------------------------------------------------------------
    def configure(self, *, label_smoothing: float | None = None, n_critic: int | None = None) -> None:
        """The engine changed a live setting: the limits (and suggested fixes) follow from the next record."""
        s = self.ctx.label_smoothing if label_smoothing is None else float(label_smoothing)
        n = self.ctx.n_critic if n_critic is None else int(n_critic)
        baselines = self.ctx.baselines
        self.ctx = Context(self.t, self.loss_kind, self.real_std, s, n, baselines)

    def update(self, metrics: dict[str, Any]) -> list[dict]:
        step = int(metrics.get("step", 0) or 0)
        if self.diverged:
            return []  # the engine has stopped; nothing after a NaN is evidence of anything
        self.step = step
        bad = first_non_finite(metrics)
        if bad is not None:
            return self.report_divergence(step, bad[0], bad[1], metrics)
        self._last_ratio = grad_ratio(metrics)
        if not self.t.enabled:
            return []
        ctx = self.ctx
        ctx.warmup = step < self.t.warmup_steps
        for rule in self.rules:
            rule.record(metrics, ctx)
        if not ctx.warmup:
            self._learn_baselines(metrics)
        out = []
        for rule in self.rules:
            if ctx.warmup and not rule.judges_warmup:
                self._off[rule.name] = "warm-up"
                continue
            obs = rule.observe(metrics, ctx)
            if obs is None:  # nothing new for this rule (a quality rule between quality records)
                if self._off.get(rule.name) == "warm-up":
                    self._off[rule.name] = "no data"  # past the warm-up, and no quality record yet
                continue
            if isinstance(obs, Off) or not obs:
                self._off[rule.name] = obs.reason if isinstance(obs, Off) else "not recorded"
                continue
            self._off.pop(rule.name, None)
            self._seen_step[rule.name] = step
            latch = self.latches[rule.name]
            change = latch.push(obs, rule.window(ctx), rule.clear_window(ctx))
            if change == "raised":
                out.append(self._raise(rule, latch, step))
            elif change == "cleared":
                out.append(self._clear(rule, latch, step))
        return out

    def report_divergence(self, step: int, where: str, value: float = float("nan"),
                          metrics: dict[str, Any] | None = None) -> list[dict]:
        """Raise `divergence` (once). The trainer calls this itself when it finds a non-finite
        weight, which no metric shows; update() calls it for a non-finite metric."""
        if self.diverged:
            return []
        self.diverged = True
        evidence: dict[str, Any] = {where: _num(value)}
        for k in ("d_loss", "g_loss", "grad_norm_d", "grad_norm_g"):
            if metrics and k in metrics and k != where and isinstance(metrics[k], (int, float)):
                evidence[k] = _num(float(metrics[k]))
        shown = _num(value) if isinstance(value, (int, float)) else value
        record = {
            "step": step, "rule": "divergence", "state": "raised", "severity": CRITICAL,
            "message": (f"Training diverged at step {step}: {where} is {shown}; updates stopped and "
                        f"the last good checkpoint is kept."),
            "evidence": evidence,
            "fix": ("Resume from the last good checkpoint with both learning rates halved, "
                    "and add a gradient penalty or spectral norm if it happens again."),
            "action": None,
        }
        self._active["divergence"] = record
        return [_copy(record)]

    def active(self) -> list[dict]:
        """The alerts raised and not yet cleared: critical first, then oldest first."""
        alerts = sorted(self._active.values(), key=lambda r: (r["severity"] != CRITICAL, r["step"]))
        return [_copy(r) for r in alerts]

    def health(self) -> dict[str, hl.Verdict]:
        """rule -> its Verdict after the latest record (divergence first, then the rules in order)."""
        out = {"divergence": hl.Verdict("divergence", hl.ALERT if self.diverged else hl.OK,
                                        hl.word("divergence", hl.ALERT if self.diverged else hl.OK), step=self.step)}
        for rule in self.rules:
            out[rule.name] = self._verdict(rule)
        return out

    def gauge(self) -> hl.Gauge:
        """The D/G gradient gauge's numbers, from the d_overpowering rule (see health.Gauge)."""
        return hl.Gauge(self._last_ratio, ratio_limit(self.ctx), self.ctx.baselines.get("grad_ratio"))

    def health_record(self) -> dict[str, Any]:
        """The compact verdicts for the metrics record's "health" key (health.Health.to_record)."""
        return hl.Health(self.health(), self.gauge()).to_record()

    # -- checkpoints ----------------------------------------------------------------------------------
    STATE_VERSION = 1

    def state(self) -> dict[str, Any]:
        """Everything the rules remember (latches, raised alerts, baselines, each rule's memory:
        peaks, best coverage, loss series), JSON-safe, for the checkpoint's metadata: a run
        resumed from it is judged as the uninterrupted run would have been."""
        return {
            "version": self.STATE_VERSION, "step": self.step, "diverged": self.diverged,
            "last_ratio": self._last_ratio,
            "baselines": dict(self.ctx.baselines),
            "baseline_samples": {k: list(v) for k, v in self._baseline_samples.items()},
            "latches": {name: latch.state() for name, latch in self.latches.items()},
            "rules": {r.name: r.state() for r in self.rules},
            "active": {k: _copy(v) for k, v in self._active.items()},
            "raised_by": dict(self._raised_by), "seen_step": dict(self._seen_step), "off": dict(self._off),
        }

    def load_state(self, state: Any) -> bool:
        """Restore `state()`. False (and the rules start afresh) when it is missing, of another
        version or malformed: a resume must never fail on the monitor's memory."""
        if not isinstance(state, dict) or state.get("version") != self.STATE_VERSION:
            return False
        fresh = Diagnostics(self.t, self.loss_kind, self.real_std, label_smoothing=self.ctx.label_smoothing,
                            n_critic=self.ctx.n_critic)
        try:
            by_name = {r.name: r for r in fresh.rules}
            for name, latch in fresh.latches.items():
                if name in state["latches"]:
                    latch.load(state["latches"][name], by_name[name].conditions)
            for rule in fresh.rules:
                if name_state := state["rules"].get(rule.name):
                    rule.load(name_state)
            fresh.ctx.baselines.update({str(k): float(v) for k, v in state["baselines"].items()})
            for k, v in state["baseline_samples"].items():
                if k in fresh._baseline_samples:
                    fresh._baseline_samples[k] = [float(x) for x in v]
            fresh._active = {str(k): _checked_alert(k, v) for k, v in state["active"].items()}
            fresh._raised_by = {str(k): str(v) for k, v in state["raised_by"].items()}
            if any(k not in by_name or v not in by_name[k].conditions for k, v in fresh._raised_by.items()):
                return False
            if any(k != "divergence" and k not in by_name for k in fresh._active):
                return False
            fresh._seen_step = {str(k): int(v) for k, v in state["seen_step"].items()}
            fresh._off = {str(k): str(v) for k, v in state["off"].items()}
            fresh.step = int(state["step"])
            ratio = state["last_ratio"]
            fresh._last_ratio = None if ratio is None else float(ratio)
            fresh.diverged = bool(state["diverged"])
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            return False
        self.__dict__.update(fresh.__dict__)
        return True

    # -- internals -------------------------------------------------------------------------------
    def _verdict(self, rule: Rule) -> hl.Verdict:
        ctx = self.ctx
        if self.diverged and rule.name not in self._active:
            return hl.Verdict(rule.name, hl.OFF, hl.word(rule.name, hl.OFF, "stopped"), step=self.step)
        if not self.t.enabled:
            return hl.Verdict(rule.name, hl.OFF, hl.word(rule.name, hl.OFF, "disabled"), step=self.step)
        latch = self.latches[rule.name]
        raised = rule.name in self._active
        # never `ok` unearned: a rule that could not judge the latest record it was given says
        # why (a raised alert stays raised: the latch holds until the run has recovered)
        off = self._off.get(rule.name)
        if not raised and (off is not None or not latch.history):
            reason = off or "no data"
            return hl.Verdict(rule.name, hl.OFF, hl.word(rule.name, hl.OFF, reason), step=self.step)
        window = rule.window(ctx)
        recent = latch.last(window)
        held = sum(1 for o in recent if holds(o))
        latest = latch.history[-1]
        if raised:
            level = hl.ALERT
        elif held >= need(self.t.watch, window):
            level = hl.WATCH
        else:
            level = hl.OK
        name = self._shown_condition(rule, latest, recent, raised)
        cond = rule.conditions[name]
        obs = latest[name]
        threshold = cond.threshold(ctx)
        return hl.Verdict(rule.name, level, hl.word(rule.name, level), name, cond.label, obs.value,
                          threshold, cond.op, held, len(recent), self._seen_step.get(rule.name))

    def _shown_condition(self, rule: Rule, latest, recent, raised: bool) -> str:
        """The condition a verdict shows: the one that raised the alert, else the one that held
        most lately, else the one nearest its threshold."""
        if raised and self._raised_by.get(rule.name) in latest:
            return self._raised_by[rule.name]

        def rank(name: str):
            cond, obs = rule.conditions[name], latest[name]
            count = sum(1 for o in recent if name in o and o[name].holds)
            threshold = cond.threshold(self.ctx)
            near = cond.closeness(obs.value, threshold) if threshold is not None else 0.0
            return count, near
        return max(latest, key=rank)

    def _learn_baselines(self, m: dict[str, Any]) -> None:
        """Median of the first `window` records after warm-up, then frozen: what 'normal' is for
        this run's gradient norms, whose scale depends on the model and the loss."""
        d_loss = m.get("d_loss")
        level = abs(d_loss) if self.loss_kind in CRITIC_LOSSES and finite(d_loss) else None
        for key, value in (("grad_ratio", grad_ratio(m)), ("grad_norm_g", m.get("grad_norm_g")),
                           ("critic_level", level)):
            if key in self.ctx.baselines or not finite(value) or value <= 0:
                continue
            samples = self._baseline_samples[key]
            samples.append(float(value))
            if len(samples) >= self.t.window:
                self.ctx.baselines[key] = float(statistics.median(samples))
                samples.clear()

    def _raise(self, rule: Rule, latch: Latch, step: int) -> dict:
        window = latch.basis
        counts = {k: sum(1 for o in window if k in o and o[k].holds) for k in rule.conditions}
        # the conditions that really held (not one stray record), for the fix and the action
        held = {k for k, n in counts.items() if n >= max(1, need(self.t.sustain, len(window)) // 2)}
        top = max(rule.conditions, key=lambda k: counts[k])  # first listed wins a tie
        cond = rule.conditions[top]
        values = [o[top].value for o in window if top in o and o[top].holds]
        latest = next(o[top] for o in reversed(window) if top in o and o[top].holds)
        threshold = cond.threshold(self.ctx)
        median = float(statistics.median(values))
        evidence = {k: _num(v) for k, v in latest.evidence.items()}
        evidence.update({cond.key: _num(median), "threshold": _num(threshold),
                         "held": counts[top], "window": len(window), "condition": top})
        message = rule.describe(top, counts[top], len(window), median, latest, self.ctx)
        record = {
            "step": step, "rule": rule.name, "state": "raised", "severity": rule.severity,
            "message": message, "evidence": evidence, "fix": rule.fix_for(held, self.ctx),
            "action": rule.action_for(held, self.ctx),
        }
        self._active[rule.name] = record
        self._raised_by[rule.name] = top
        return _copy(record)

    def _clear(self, rule: Rule, latch: Latch, step: int) -> dict:
        raised = self._active.pop(rule.name, None)
        window = latch.basis
        failed = sum(1 for o in window if not holds(o))
        # describe the condition that raised the alert, as it stands now
        top = self._raised_by.pop(rule.name, next(iter(rule.conditions)))
        cond = rule.conditions[top]
        values = [o[top].value for o in window if top in o]
        evidence: dict[str, Any] = {"failed": failed, "window": len(window)}
        tail = "."
        if values:
            median = float(statistics.median(values))
            evidence[cond.key] = _num(median)
            threshold = cond.threshold(self.ctx)
            if threshold is not None:
                evidence["threshold"] = _num(threshold)
            tail = f" ({cond.label} median {fmt(median)})."
        unit = "quality records" if rule.quality else "records"
        message = f"{rule.cleared}: its condition failed in {failed} of the last {len(window)} {unit}{tail}"
        return {
            "step": step, "rule": rule.name, "state": "cleared", "severity": rule.severity,
            "message": message, "evidence": evidence,
            "fix": raised["fix"] if raised else rule.fix, "action": None,
        }
