"""Alert rules over the metric stream. Pure Python: no torch, no textual.

Every metric record (one per `log.every` optimizer steps) each rule says, for that record,
whether its condition holds. Conditions are "sustained", never instantaneous:

* a rule RAISES when its condition held in at least `sustain` (80 %) of the last `window`
  records, so a single spike (or two) never fires;
* a raised rule CLEARS only when its condition failed in at least `sustain` of the last
  `clear_window` records. Between the two it keeps its state, so a value hovering at the
  threshold (about half the records on each side) neither raises nor clears: no flapping.

Each raise and each clear is one record: rule, state, severity, a one-sentence message with
the numbers, the evidence (those numbers), one suggested fix and, where the fix is a rate
change, an `action` the monitor can apply with one key. `divergence` is the exception to
the windows: the first non-finite loss, score, gradient norm or weight raises it at once,
critical, and it never clears (the engine stops updating).

Early training is noisy in ways that are healthy (the D loss dips while G is still noise, a
toy G starts as a point), so every rule but divergence ignores records before `warmup_steps`.
The thresholds are the `Thresholds` fields below; a preset's `[diagnostics]` table sets any
of them (gantui.config validates the table from these fields and their `check` metadata).

Keys read from a record: step, d_loss, g_loss, d_real, d_fake, grad_norm_d, grad_norm_g,
sample_std, and (optional) sample_pdist = mean pairwise Euclidean distance of the flattened
fixed-noise batch divided by that of a real batch. A missing key switches off the conditions
that need it; any NaN/Inf number in the record is divergence.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field, fields
from itertools import islice
from typing import Any, Callable, Iterable, NamedTuple

PROBABILITY_LOSSES = ("ns", "minimax")   # d_real / d_fake are sigmoid probabilities
CRITIC_LOSSES = ("wgan", "wgan_gp")      # unbounded critic scores: "confidence" means nothing

WARNING, CRITICAL = "warning", "critical"

# Non-colour marks so an alert reads the same with NO_COLOR or to a colour-blind reader.
GLYPHS = {WARNING: "▲", CRITICAL: "✖"}
CLEARED_GLYPH = "✓"

RULES = {
    "divergence": "A loss, score, gradient norm or weight became NaN or Inf: training stops, the checkpoint is kept.",
    "d_overpowering": "D wins too easily: its loss near zero, D(x) - D(G(z)) near 1, or |grad D| many times |grad G|.",
    "oscillation": "A loss jumps up and down by more than its own level, flipping direction almost every record.",
    "mode_collapse": "The fixed-noise samples stopped varying: their spread is a small fraction of the real data's.",
    "vanishing_gradients": "|grad G| is near zero while D is confident: the generator gets no learning signal.",
    "exploding_gradients": "A gradient norm stays above its limit: the next steps may turn the weights into NaN.",
}


# --- checks for the [diagnostics] table: None when fine, else the expected words --------------
# (gantui.config imports this module, so its own helpers cannot be imported here.)

def _positive(v) -> str | None:
    return None if v > 0 else "a number > 0"


def _non_negative(v) -> str | None:
    return None if v >= 0 else "a number >= 0"


def _at_least_1(v) -> str | None:
    return None if v >= 1 else "an integer >= 1"


def _sustain(v) -> str | None:
    # above one half, "held in most records" and "failed in most records" cannot both be true
    return None if 0.5 < v <= 1 else "a number in (0.5, 1]"


def _fraction(v) -> str | None:
    return None if 0 <= v <= 1 else "a number in [0, 1]"


def _t(default, check, doc: str):
    return field(default=default, metadata={"check": check, "doc": doc})


@dataclass(frozen=True)
class Thresholds:
    """Defaults of the alert rules; a preset's [diagnostics] table overrides any of them."""

    window: int = _t(20, _at_least_1, "log records a condition must (mostly) hold before an alert is raised")
    clear_window: int = _t(20, _at_least_1, "log records it must (mostly) fail before the alert clears")
    sustain: float = _t(0.8, _sustain, "fraction of a window that counts as 'mostly'")
    warmup_steps: int = _t(500, _non_negative, "steps ignored by every rule but divergence")
    enabled: bool = _t(True, None, "false silences every rule but divergence")
    # d_overpowering
    d_loss_min: float = _t(0.1, _non_negative, "ns/minimax: D loss below this means D wins")
    d_gap_max: float = _t(0.9, _positive, "ns/minimax: D(x) - D(G(z)) above this means D wins")
    grad_ratio_max: float = _t(5.0, _positive, "|grad D| / |grad G| above this many times its early median (at least 2)")
    # oscillation
    osc_jump: float = _t(0.75, _positive, "typical move between records (median |change|) / level")
    osc_flip_rate: float = _t(0.7, _fraction, "share of consecutive moves that reverse direction")
    osc_floor: float = _t(1.0, _non_negative, "smallest level a jump is measured against, in units of the loss's scale")
    # mode_collapse
    collapse_std: float = _t(0.01, _non_negative, "sample_std below this (absolute)")
    collapse_std_frac: float = _t(0.1, _non_negative, "sample_std below this fraction of the real data's std")
    collapse_pdist: float = _t(0.1, _non_negative, "sample_pdist (relative to the real data's) below this")
    # vanishing_gradients
    vanish_grad: float = _t(1e-3, _non_negative, "|grad G| below this (absolute) is near zero")
    vanish_frac: float = _t(0.02, _non_negative, "... or below this fraction of its own baseline")
    confident_gap: float = _t(0.9, _positive, "ns/minimax/lsgan: D(x) - D(G(z)) above this is a confident D")
    # exploding_gradients
    explode_grad: float = _t(100.0, _positive, "a gradient norm above this is exploding")

    @classmethod
    def docs(cls) -> dict[str, str]:
        """key -> one line, for the help screen and the README."""
        return {f.name: f.metadata.get("doc", "") for f in fields(cls)}


# --- small pure helpers --------------------------------------------------------------------------

def _median(values: Iterable[float]) -> float:
    return float(statistics.median(values))


def _finite(v: Any) -> bool:
    """A real number that is not NaN or Inf (bools and missing values are not numbers here)."""
    t = type(v)
    if t is float or t is int:  # the common case, first: this runs for every value of every record
        return math.isfinite(v)
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _num(v: float) -> float | str:
    """A number for the evidence: 4 significant digits; non-finite as a string (valid JSON)."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return float(f"{v:.4g}")


def _fmt(v: float) -> str:
    if isinstance(v, int):
        return str(v)
    a = abs(v)
    if a != 0 and (a < 1e-3 or a >= 1e5):
        return f"{v:.2e}"
    return f"{v:.3g}"


def swing_stats(values: list[float]) -> tuple[float, float, float]:
    """(jump, level, flip_rate) of a window of loss values.

    jump: the typical move between consecutive records, the median |v[i] - v[i-1]|. A saw
          between 0 and 10 jumps 10; iid noise of std s about 0.95 s; a steady trend only its
          slope. A spike moves two records out of the window's, so it cannot move the median;
          a burst must fill about half the window to count;
    level: mean |value|, what the jump is compared with;
    flip_rate: the share of consecutive moves that reverse the previous move's direction
          (a saw gives 1, iid noise about 2/3, a steady trend 0).
    """
    n = len(values)
    if n < 2:
        return 0.0, (abs(values[0]) if values else 0.0), 0.0
    diffs = [b - a for a, b in zip(values, values[1:])]
    jump = _median([abs(d) for d in diffs])
    level = sum(map(abs, values)) / n
    ups = [d > 0 for d in diffs if d != 0]
    flips = sum(a != b for a, b in zip(ups, ups[1:]))
    rate = flips / (len(ups) - 1) if len(ups) > 1 else 0.0
    return jump, level, rate


def first_non_finite(metrics: dict[str, Any]) -> tuple[str, float] | None:
    """(key, value) of the first NaN/Inf number in a record, losses first; None if all finite."""
    order = ("d_loss", "g_loss", "gp", "wasserstein", "d_real", "d_fake", "grad_norm_d", "grad_norm_g")
    keys = [k for k in order if k in metrics] + [k for k in metrics if k not in order]
    for k in keys:
        v = metrics[k]
        if isinstance(v, float) and not math.isfinite(v):
            return k, v
    return None


# --- rules ---------------------------------------------------------------------------------------
# A rule looks at one record and returns {condition: Obs} for the conditions it could judge
# ({} or None when it can judge nothing: warm-up, a metric missing). The latch below turns
# those per-record verdicts into raise/clear events.

class Obs(NamedTuple):
    holds: bool
    value: float                    # the number compared with the threshold
    evidence: dict[str, float]      # the numbers behind it, for the alert record


@dataclass(frozen=True)
class Condition:
    key: str          # evidence key of `value`
    label: str        # how the message names the value
    op: str           # "below" | "above"
    threshold: Callable[["Context"], float]


@dataclass
class Context:
    t: Thresholds
    loss_kind: str
    real_std: float
    baselines: dict[str, float]


class Rule:
    name = ""
    severity = WARNING
    headline = ""          # "the discriminator is overpowering the generator"
    cleared = ""           # "the discriminator no longer overpowers the generator"
    fix = ""
    action: dict | None = None
    conditions: dict[str, Condition] = {}

    def observe(self, m: dict[str, Any], ctx: Context) -> dict[str, Obs] | None:
        raise NotImplementedError

    def describe(self, name: str, held: int, window: int, median: float, latest: Obs, ctx: Context) -> str:
        """The raise message: one sentence with the numbers."""
        cond = self.conditions[name]
        return (f"{self.headline}: {cond.label} was {cond.op} {_fmt(cond.threshold(ctx))} in {held} "
                f"of the last {window} records (median {_fmt(median)}).")

    def action_for(self, held: set[str]) -> dict | None:
        return dict(self.action) if self.action else None

    def fix_for(self, held: set[str], ctx: Context) -> str:
        return self.fix


def _get(m: dict[str, Any], *keys: str) -> list[float] | None:
    """The values of `keys` when all are present and finite, else None."""
    out = []
    for k in keys:
        v = m.get(k)
        if not _finite(v):
            return None
        out.append(float(v))
    return out


class DOverpowering(Rule):
    name = "d_overpowering"
    headline = "The discriminator is overpowering the generator"
    cleared = "The discriminator no longer overpowers the generator"
    fix = ("Halve D's learning rate (or raise G's), or use one-sided label smoothing, fewer D steps "
           "or spectral norm in D.")
    action = {"which": "d", "factor": 0.5}
    conditions = {
        "d_loss": Condition("d_loss", "D loss", "below", lambda c: c.t.d_loss_min),
        "gap": Condition("gap", "D(x) - D(G(z))", "above", lambda c: c.t.d_gap_max),
        "grad_ratio": Condition("grad_ratio", "|grad D| / |grad G|", "above", lambda c: _ratio_limit(c)),
    }

    def observe(self, m, ctx):
        out = {}
        if ctx.loss_kind in PROBABILITY_LOSSES:
            got = _get(m, "d_loss")
            if got:
                out["d_loss"] = Obs(got[0] < ctx.t.d_loss_min, got[0], {"d_loss": got[0]})
            got = _get(m, "d_real", "d_fake")
            if got:
                gap = got[0] - got[1]
                out["gap"] = Obs(gap > ctx.t.d_gap_max, gap, {"gap": gap, "d_real": got[0], "d_fake": got[1]})
        got = _get(m, "grad_norm_d", "grad_norm_g")
        if got and got[1] > 0:
            ratio = got[0] / got[1]
            limit = _ratio_limit(ctx)
            if limit is not None:
                out["grad_ratio"] = Obs(ratio > limit, ratio,
                                        {"grad_ratio": ratio, "grad_norm_d": got[0], "grad_norm_g": got[1],
                                         "baseline": ctx.baselines["grad_ratio"]})
        return out

    def describe(self, name, held, window, median, latest, ctx):
        if name != "grad_ratio":
            return super().describe(name, held, window, median, latest, ctx)
        return (f"{self.headline}: |grad D| / |grad G| was above {_fmt(_ratio_limit(ctx))} "
                f"({_fmt(ctx.t.grad_ratio_max)}x its early median of {_fmt(ctx.baselines['grad_ratio'])}) "
                f"in {held} of the last {window} records (median {_fmt(median)}).")


def _ratio_limit(ctx: Context) -> float | None:
    """|grad D| / |grad G| limit, relative to the ratio's own baseline (its median over the first
    window after warm-up; None until then). The raw ratio says little: a conv D's gradient norm
    is many times its G's in healthy runs (a median of 8-9 for DCGAN/LSGAN on digits, with
    single records past 50), and critics and penalties have their own scales. A baseline below
    2 counts as 2: a healthy WGAN-GP on ring8 starts near 0.7 and spends stretches at 5-8."""
    base = ctx.baselines.get("grad_ratio")
    return None if base is None else ctx.t.grad_ratio_max * max(base, 2.0)


class Oscillation(Rule):
    name = "oscillation"
    headline = "The losses are oscillating"
    cleared = "The losses have stopped oscillating"
    fix = "Halve both learning rates, use a larger batch, or set Adam's beta1 to 0.5."
    action = {"which": "both", "factor": 0.5}
    conditions = {
        "d_loss": Condition("d_jump_ratio", "the D loss's typical jump / its level", "above", lambda c: c.t.osc_jump),
        "g_loss": Condition("g_jump_ratio", "the G loss's typical jump / its level", "above", lambda c: c.t.osc_jump),
    }

    def __init__(self, window: int):
        self.window = max(window, 4)
        self.series = {k: deque(maxlen=self.window) for k in self.conditions}

    def keys(self, loss_kind: str) -> tuple[str, ...]:
        # A critic's G loss is -mean D(G(z)): its offset drifts freely in healthy training,
        # so only the critic loss (an estimate of the distance) has a meaningful level.
        return ("d_loss",) if loss_kind in CRITIC_LOSSES else ("d_loss", "g_loss")

    def record(self, m):
        """Collect every record (warm-up too) so the window is full when warm-up ends."""
        for k, series in self.series.items():
            if _finite(m.get(k)):
                series.append(float(m[k]))

    def observe(self, m, ctx):
        out = {}
        for k in self.keys(ctx.loss_kind):
            series = self.series[k]
            if len(series) < self.window:
                continue
            jump, level, rate = swing_stats(list(series))
            ratio = jump / max(level, _osc_floor(ctx), 1e-12)
            holds = ratio > ctx.t.osc_jump and rate > ctx.t.osc_flip_rate
            ev_key = self.conditions[k].key
            out[k] = Obs(holds, ratio, {ev_key: ratio, f"{k}_jump": jump, f"{k}_level": level,
                                        f"{k}_flip_rate": rate})
        return out

    def describe(self, name, held, window, median, latest, ctx):
        ev = latest.evidence
        who = "D" if name == "d_loss" else "G"
        return (f"{self.headline}: the {who} loss jumped by {_fmt(ev[f'{name}_jump'])} a record on a level of "
                f"{_fmt(ev[f'{name}_level'])} ({_fmt(median)}x, limit {_fmt(ctx.t.osc_jump)}x) and reversed "
                f"direction in {ev[f'{name}_flip_rate']:.0%} of its moves, in {held} of the last {window} records.")


# The scale of each loss, below which its level is not trusted: noise on a loss near zero (a
# hinge G loss crosses zero in healthy runs, jumping about 0.37 a record) must not read as a swing.
LOSS_SCALE = {"ns": 0.5, "minimax": 0.5, "lsgan": 0.25, "hinge": 1.0}


def _osc_floor(ctx: Context) -> float:
    """The smallest level a loss's jumps are measured against: osc_floor x the loss's scale.
    A critic's loss has no natural scale (-20 for a young digits critic, -0.5 late, far more
    with a weak penalty), so its scale is half its own early level, and at least 0.5."""
    if ctx.loss_kind in CRITIC_LOSSES:
        early = ctx.baselines.get("critic_level")
        scale = max(0.5, 0.5 * early) if early is not None else 0.5
    else:
        scale = LOSS_SCALE.get(ctx.loss_kind, 0.5)
    return ctx.t.osc_floor * scale


class ModeCollapse(Rule):
    name = "mode_collapse"
    headline = "The generator may have collapsed to a few outputs"
    cleared = "The generator's samples vary again"
    fix = ("Switch to WGAN-GP or add spectral norm in D, add minibatch discrimination, "
           "or halve G's learning rate.")
    action = {"which": "g", "factor": 0.5}
    conditions = {
        "sample_std": Condition("sample_std", "the sample std", "below", lambda c: c.t.collapse_std),
        "sample_std_frac": Condition("sample_std_frac", "the sample std / real std", "below",
                                     lambda c: c.t.collapse_std_frac),
        "sample_pdist": Condition("sample_pdist", "the samples' mean pairwise distance (relative to real)",
                                  "below", lambda c: c.t.collapse_pdist),
    }

    def observe(self, m, ctx):
        out = {}
        got = _get(m, "sample_std")
        if got:
            std = got[0]
            out["sample_std"] = Obs(std < ctx.t.collapse_std, std, {"sample_std": std})
            if ctx.real_std > 0:
                frac = std / ctx.real_std
                out["sample_std_frac"] = Obs(frac < ctx.t.collapse_std_frac, frac,
                                             {"sample_std_frac": frac, "sample_std": std, "real_std": ctx.real_std})
        got = _get(m, "sample_pdist")
        if got:
            out["sample_pdist"] = Obs(got[0] < ctx.t.collapse_pdist, got[0], {"sample_pdist": got[0]})
        return out


class VanishingGradients(Rule):
    name = "vanishing_gradients"
    headline = "The generator's gradients have vanished"
    cleared = "The generator's gradients are back"
    fix = "Use the non-saturating G loss (loss.kind = \"ns\") and halve D's learning rate."
    action = {"which": "d", "factor": 0.5}
    conditions = {
        "grad_norm_g": Condition("grad_norm_g", "|grad G|", "below", lambda c: _vanish_limit(c)),
    }

    def observe(self, m, ctx):
        got = _get(m, "grad_norm_g")
        if not got:
            return None
        g = got[0]
        ev = {"grad_norm_g": g}
        limit = _vanish_limit(ctx)
        confident = True
        gap_limit = _confident_gap(ctx)
        if gap_limit is not None:
            scores = _get(m, "d_real", "d_fake")
            if not scores:
                return None
            gap = scores[0] - scores[1]
            confident = gap > gap_limit
            ev.update(gap=gap, d_real=scores[0], d_fake=scores[1])
        return {"grad_norm_g": Obs(confident and g < limit, g, ev)}

    def fix_for(self, held, ctx):
        if ctx.loss_kind in CRITIC_LOSSES:
            return ("Halve D's learning rate, and with weight clipping raise loss.clip "
                    "or switch to the gradient penalty (loss.kind = \"wgan_gp\").")
        if ctx.loss_kind == "ns":
            return "Halve D's learning rate, or add label smoothing or spectral norm to D."
        return self.fix

    def describe(self, name, held, window, median, latest, ctx):
        text = super().describe(name, held, window, median, latest, ctx)
        if "gap" in latest.evidence:
            text = text[:-1] + f", with D(x) - D(G(z)) at {_fmt(latest.evidence['gap'])}."
        return text


def _vanish_limit(ctx: Context) -> float:
    base = ctx.baselines.get("grad_norm_g")
    rel = ctx.t.vanish_frac * base if base is not None else 0.0
    return max(ctx.t.vanish_grad, rel)


def _confident_gap(ctx: Context) -> float | None:
    """How far apart D's real and fake scores are when D is sure, for the losses whose G
    gradient saturates with D's confidence (scores are probabilities, or targets 1 and 0 for
    LSGAN). None for critics and hinge: their G loss is linear in D's score, and healthy hinge
    runs keep the scores past the margins (a gap above 2) most of the time."""
    if ctx.loss_kind in PROBABILITY_LOSSES or ctx.loss_kind == "lsgan":
        return ctx.t.confident_gap
    return None


class ExplodingGradients(Rule):
    name = "exploding_gradients"
    headline = "Gradients are exploding"
    cleared = "Gradient norms are back under their limit"
    conditions = {
        "grad_norm_d": Condition("grad_norm_d", "|grad D|", "above", lambda c: c.t.explode_grad),
        "grad_norm_g": Condition("grad_norm_g", "|grad G|", "above", lambda c: c.t.explode_grad),
    }

    def observe(self, m, ctx):
        out = {}
        for k in ("grad_norm_d", "grad_norm_g"):
            got = _get(m, k)
            if got:
                out[k] = Obs(got[0] > ctx.t.explode_grad, got[0], {k: got[0]})
        return out

    def _which(self, held: set[str]) -> str:
        if held == {"grad_norm_d"}:
            return "d"
        if held == {"grad_norm_g"}:
            return "g"
        return "both"

    def action_for(self, held):
        return {"which": self._which(held), "factor": 0.5}

    def fix_for(self, held, ctx):
        who = {"d": "D's learning rate", "g": "G's learning rate", "both": "both learning rates"}[self._which(held)]
        return f"Halve {who}, and add a gradient penalty (wgan_gp or R1) or spectral norm."


# --- the latch: per-record verdicts -> raise / clear ---------------------------------------------

class Latch:
    """Hysteresis over a bounded history of per-record verdicts.

    Each transition starts the other count afresh: a raised alert clears only on records
    seen after it was raised, and a cleared one re-raises only on records after the clear,
    so stale verdicts from before a transition (a clear_window longer than the window, say)
    can never flip the state straight back."""

    def __init__(self, window: int, clear_window: int, sustain: float):
        self.window, self.clear_window = window, clear_window
        # the small epsilon keeps 0.8 * 20 == 16, not 17, under float rounding
        self.need_raise = max(1, math.ceil(sustain * window - 1e-9))
        self.need_clear = max(1, math.ceil(sustain * clear_window - 1e-9))
        self.history: deque[dict[str, Obs]] = deque(maxlen=max(window, clear_window))
        # the verdicts counted towards a raise (while down) or a clear (while up)
        self.recent: deque[bool] = deque(maxlen=window)
        self.basis: list[dict[str, Obs]] = []  # the records that decided the last transition
        self.raised = False

    def last(self, n: int) -> list[dict[str, Obs]]:
        start = max(0, len(self.history) - n)
        return list(islice(self.history, start, None))

    def push(self, obs: dict[str, Obs]) -> str | None:
        self.history.append(obs)
        self.recent.append(_holds(obs))
        if not self.raised:
            if sum(self.recent) >= self.need_raise:
                self.raised = True
                self.basis = self.last(len(self.recent))
                self.recent = deque(maxlen=self.clear_window)
                return "raised"
        elif len(self.recent) - sum(self.recent) >= self.need_clear:
            self.raised = False
            self.basis = self.last(len(self.recent))
            self.recent = deque(maxlen=self.window)
            return "cleared"
        return None


def _holds(obs: dict[str, Obs]) -> bool:
    return any(o.holds for o in obs.values())


# --- the engine ---------------------------------------------------------------------------------

class Diagnostics:
    """Feed it every metric record; it returns the alert records (raised / cleared) of that record.

    `loss_kind` decides which conditions mean something (probability vs critic scores);
    `real_std` is the mean per-feature std of the real data (the collapse reference; 0 = unknown).
    Memory is bounded: every history is a deque of at most max(window, clear_window) records.
    """

    def __init__(self, thresholds: Thresholds | None = None, loss_kind: str = "ns", real_std: float = 0.0):
        self.t = thresholds if thresholds is not None else Thresholds()
        self.loss_kind = loss_kind
        self.real_std = float(real_std) if _finite(real_std) else 0.0
        self.ctx = Context(self.t, loss_kind, self.real_std, {})
        self.oscillation = Oscillation(self.t.window)
        self.rules: list[Rule] = [DOverpowering(), self.oscillation, ModeCollapse(),
                                  VanishingGradients(), ExplodingGradients()]
        self.latches = {r.name: Latch(self.t.window, self.t.clear_window, self.t.sustain) for r in self.rules}
        self._active: dict[str, dict] = {}
        self._raised_by: dict[str, str] = {}   # rule -> the condition that raised it
        self._baseline_samples: dict[str, list[float]] = {"grad_ratio": [], "grad_norm_g": [], "critic_level": []}
        self.diverged = False

    # -- public --------------------------------------------------------------------------------
    def update(self, metrics: dict[str, Any]) -> list[dict]:
        step = int(metrics.get("step", 0) or 0)
        if self.diverged:
            return []  # the engine has stopped; nothing after a NaN is evidence of anything
        bad = first_non_finite(metrics)
        if bad is not None:
            return self.report_divergence(step, bad[0], bad[1], metrics)
        if not self.t.enabled:
            return []
        self.oscillation.record(metrics)
        if step < self.t.warmup_steps:
            return []
        self._learn_baselines(metrics)
        out = []
        for rule in self.rules:
            obs = rule.observe(metrics, self.ctx)
            if not obs:
                continue
            latch = self.latches[rule.name]
            change = latch.push(obs)
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

    # -- internals -------------------------------------------------------------------------------
    def _learn_baselines(self, m: dict[str, Any]) -> None:
        """Median of the first `window` records after warm-up, then frozen: what 'normal' is for
        this run's gradient norms, whose scale depends on the model and the loss."""
        d_loss = m.get("d_loss")
        level = abs(d_loss) if self.loss_kind in CRITIC_LOSSES and _finite(d_loss) else None
        for key, value in (("grad_ratio", _ratio(m)), ("grad_norm_g", m.get("grad_norm_g")), ("critic_level", level)):
            if key in self.ctx.baselines or not _finite(value) or value <= 0:
                continue
            samples = self._baseline_samples[key]
            samples.append(float(value))
            if len(samples) >= self.t.window:
                self.ctx.baselines[key] = _median(samples)
                samples.clear()

    def _raise(self, rule: Rule, latch: Latch, step: int) -> dict:
        window = latch.basis
        counts = {k: sum(1 for o in window if k in o and o[k].holds) for k in rule.conditions}
        # the conditions that really held (not one stray record), for the fix and the action
        held = {k for k, n in counts.items() if n >= max(1, latch.need_raise // 2)}
        top = max(rule.conditions, key=lambda k: counts[k])  # first listed wins a tie
        cond = rule.conditions[top]
        values = [o[top].value for o in window if top in o and o[top].holds]
        latest = next(o[top] for o in reversed(window) if top in o and o[top].holds)
        threshold = cond.threshold(self.ctx)
        evidence = {k: _num(v) for k, v in latest.evidence.items()}
        evidence.update({cond.key: _num(_median(values)), "threshold": _num(threshold),
                         "held": counts[top], "window": len(window)})
        message = rule.describe(top, counts[top], len(window), _median(values), latest, self.ctx)
        record = {
            "step": step, "rule": rule.name, "state": "raised", "severity": rule.severity,
            "message": message, "evidence": evidence, "fix": rule.fix_for(held, self.ctx),
            "action": rule.action_for(held),
        }
        self._active[rule.name] = record
        self._raised_by[rule.name] = top
        return _copy(record)

    def _clear(self, rule: Rule, latch: Latch, step: int) -> dict:
        raised = self._active.pop(rule.name, None)
        window = latch.basis
        failed = sum(1 for o in window if not _holds(o))
        # describe the condition that raised the alert, as it stands now
        top = self._raised_by.pop(rule.name, next(iter(rule.conditions)))
        cond = rule.conditions[top]
        values = [o[top].value for o in window if top in o]
        evidence: dict[str, Any] = {"failed": failed, "window": len(window)}
        tail = "."
        if values:
            evidence[cond.key] = _num(_median(values))
            evidence["threshold"] = _num(cond.threshold(self.ctx))
            tail = f" ({cond.label} median {_fmt(_median(values))})."
        message = f"{rule.cleared}: its condition failed in {failed} of the last {len(window)} records{tail}"
        return {
            "step": step, "rule": rule.name, "state": "cleared", "severity": rule.severity,
            "message": message, "evidence": evidence,
            "fix": raised["fix"] if raised else rule.fix, "action": None,
        }


def _copy(record: dict) -> dict:
    """A copy a consumer may change without changing the engine's state."""
    out = dict(record)
    out["evidence"] = dict(record["evidence"])
    out["action"] = dict(record["action"]) if record["action"] else None
    return out


def _ratio(m: dict[str, Any]) -> float | None:
    d, g = m.get("grad_norm_d"), m.get("grad_norm_g")
    if _finite(d) and _finite(g) and g > 0:
        return float(d) / float(g)
    return None
