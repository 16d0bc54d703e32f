"""The alert rules, one class each: what a record says about one failure.

A rule looks at one record and returns {condition: Obs} for the conditions it judged, `Off(reason)`
when it cannot judge this record (a metric not recorded, too few sharp samples, a window still
filling: the health row then says `off` with the reason, never `ok`), or None when the record says
nothing new to it (a quality rule between live-quality records: its last verdict stands). The
latch (gantui.diagnostics.latch) turns those per-record verdicts into raise / clear events, and
the health row (gantui.diagnostics.health) reads the same verdicts, so both always agree.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, NamedTuple

from gantui.diagnostics import actions
from gantui.diagnostics.loss_ranges import LossRange, loss_range
from gantui.vocab.losses import CRITIC_LOSSES, PROBABILITY_LOSSES
from gantui.diagnostics.thresholds import Thresholds

WARNING, CRITICAL = "warning", "critical"


# --- small pure helpers --------------------------------------------------------------------------

def _median(values: Iterable[float]) -> float:
    return float(statistics.median(values))


def finite(v: Any) -> bool:
    """A real number that is not NaN or Inf (bools and missing values are not numbers here)."""
    t = type(v)
    if t is float or t is int:  # the common case, first: this runs for every value of every record
        return math.isfinite(v)
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fmt(v: float) -> str:
    if isinstance(v, int):
        return str(v)
    a = abs(v)
    if a != 0 and (a < 1e-3 or a >= 1e5):
        return f"{v:.2e}"
    return f"{v:.3g}"


def _get(m: dict[str, Any], *keys: str) -> list[float] | None:
    """The values of `keys` when all are present and finite, else None."""
    out = []
    for k in keys:
        v = m.get(k)
        if not finite(v):
            return None
        out.append(float(v))
    return out


def _index_list(v: Any) -> list[int] | None:
    """A list of non-negative integer indices (mode or class numbers), else None."""
    if not isinstance(v, (list, tuple)):
        return None
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in v):
        return None
    return sorted(v)


def _names(indices: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(i) for i in indices[:limit])
    return shown + (f" and {len(indices) - limit} more" if len(indices) > limit else "")


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


# --- the pieces a rule is made of ------------------------------------------------------------------

class Obs(NamedTuple):
    holds: bool
    value: float                    # the number compared with the threshold
    evidence: dict[str, Any]        # the numbers behind it, for the alert record


class Off(NamedTuple):
    """A rule cannot judge this record; `reason` is the health row's word ("not recorded")."""
    reason: str


NOT_RECORDED = Off("not recorded")

OPS: dict[str, Callable[[float, float], bool]] = {
    "below": lambda v, t: v < t, "above": lambda v, t: v > t,
    "at least": lambda v, t: v >= t, "at most": lambda v, t: v <= t,
}


@dataclass(frozen=True)
class Condition:
    key: str          # evidence key of `value`
    label: str        # how the message names the value
    op: str           # one of OPS
    threshold: Callable[["Context"], float | None]

    def closeness(self, value: float, threshold: float) -> float:
        """How near `value` is to holding, 1 at the threshold and above 1 past it (for choosing
        which condition a gauge shows)."""
        if self.op in ("above", "at least"):
            return value / threshold if threshold > 0 else (math.inf if value > threshold else 0.0)
        return threshold / value if value > 0 else math.inf


@dataclass
class Context:
    """What the rules know besides the record: thresholds, the loss and its live settings, and
    the baselines learned from the run's own early records."""

    t: Thresholds
    loss_kind: str
    real_std: float
    label_smoothing: float = 0.0
    n_critic: int = 1
    baselines: dict[str, float] = field(default_factory=dict)
    warmup: bool = False            # the current record is inside the warm-up
    range: LossRange = None         # type: ignore[assignment]  # set in __post_init__

    def __post_init__(self) -> None:
        self.range = loss_range(self.loss_kind, self.label_smoothing)


class Rule:
    name = ""
    severity = WARNING
    word = ""              # the health row's word while raised: "OVERPOWERING"
    headline = ""          # "the discriminator is overpowering the generator"
    cleared = ""           # "the discriminator no longer overpowers the generator"
    fix = ""
    conditions: dict[str, Condition] = {}
    judges_warmup = False  # observes records inside the warm-up too
    quality = False        # judged on live-quality records only: windows count those records

    def observe(self, m: dict[str, Any], ctx: Context) -> "dict[str, Obs] | Off | None":
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """The rule's memory, JSON-safe, for a checkpoint (a resume judges like an uninterrupted run)."""
        return {}

    def load(self, state: dict[str, Any]) -> None:
        """Restore `state()`; raises (KeyError, TypeError, ValueError) on anything malformed."""

    def record(self, m: dict[str, Any], ctx: Context) -> None:
        """Sees every record, warm-up included, before observe (rules with a memory)."""

    def window(self, ctx: Context) -> int:
        return ctx.t.quality_window if self.quality else ctx.t.window

    def clear_window(self, ctx: Context) -> int:
        return ctx.t.quality_window if self.quality else ctx.t.clear_window

    def describe(self, name: str, held: int, window: int, median: float, latest: Obs, ctx: Context) -> str:
        """The raise message: one sentence with the numbers."""
        cond = self.conditions[name]
        return (f"{self.headline}: {cond.label} was {cond.op} {fmt(cond.threshold(ctx))} in {held} "
                f"of the last {window} records (median {fmt(median)}).")

    def action_for(self, held: set[str], ctx: Context) -> dict | None:
        return None

    def fix_for(self, held: set[str], ctx: Context) -> str:
        return self.fix


# --- d_overpowering ------------------------------------------------------------------------------

class DOverpowering(Rule):
    name = "d_overpowering"
    word = "OVERPOWERING"
    headline = "The discriminator is overpowering the generator"
    cleared = "The discriminator no longer overpowers the generator"
    judges_warmup = True   # a D pinned at its floor from the first steps is certain, and early
    conditions = {
        "d_loss": Condition("d_loss", "D loss", "below", lambda c: c.range.d_loss_limit(c.t.d_loss_min)),
        "gap": Condition("gap", "D(x) - D(G(z))", "above", lambda c: c.range.gap_limit(c.t.d_gap_max)),
        "d_acc": Condition("d_acc", "D's accuracy", "above", lambda c: c.t.d_acc_max),
        "grad_ratio": Condition("grad_ratio", "|grad D| / |grad G|", "above", lambda c: ratio_limit(c)),
        "pinned": Condition("d_loss", "D loss", "below", lambda c: c.range.d_loss_limit(c.t.early_d_loss)),
    }

    def window(self, ctx):
        return ctx.t.early_window if ctx.warmup else ctx.t.window

    def observe(self, m, ctx):
        return self._pinned(m, ctx) if ctx.warmup else self._sustained(m, ctx)

    def _pinned(self, m, ctx) -> dict[str, Obs]:
        """Warm-up: only a D that has certainly won. Its loss sits at the floor AND its scores
        (where they have a widest gap) and accuracy (where recorded) agree. Healthy early
        training comes close in one way at a time (an LSGAN D's loss dips to 0.07 ns nats with
        its gap at 0.9 of the widest in its first 200 steps), never in all at once."""
        rng = ctx.range
        limit = rng.d_loss_limit(ctx.t.early_d_loss)
        got = _get(m, "d_loss")
        if limit is None:
            return Off("warm-up")  # critics: nothing about them is certain in the first steps
        if not got:
            return NOT_RECORDED
        ev: dict[str, Any] = {"d_loss": got[0], "floor": rng.floor}
        holds = got[0] < limit
        if rng.span is not None:
            scores = _get(m, "d_real", "d_fake")
            if not scores:
                return NOT_RECORDED
            gap = scores[0] - scores[1]
            ev.update(gap=gap, d_real=scores[0], d_fake=scores[1])
            holds = holds and gap > rng.gap_limit(ctx.t.d_gap_max)
        acc = _get(m, "d_acc")
        if acc:
            ev["d_acc"] = acc[0]
            holds = holds and acc[0] > ctx.t.d_acc_max
        return {"pinned": Obs(holds, got[0], ev)}

    def _sustained(self, m, ctx) -> dict[str, Obs]:
        out = {}
        rng = ctx.range
        limit = rng.d_loss_limit(ctx.t.d_loss_min)
        got = _get(m, "d_loss")
        if limit is not None and got:
            out["d_loss"] = Obs(got[0] < limit, got[0], {"d_loss": got[0], "floor": rng.floor})
        gap_limit = rng.gap_limit(ctx.t.d_gap_max)
        got = _get(m, "d_real", "d_fake")
        if gap_limit is not None and got:
            gap = got[0] - got[1]
            out["gap"] = Obs(gap > gap_limit, gap, {"gap": gap, "d_real": got[0], "d_fake": got[1]})
        got = _get(m, "d_acc")
        if got:
            out["d_acc"] = Obs(got[0] > ctx.t.d_acc_max, got[0], {"d_acc": got[0]})
        ratio = grad_ratio(m)
        limit = ratio_limit(ctx)
        if ratio is not None and limit is not None:
            out["grad_ratio"] = Obs(ratio > limit, ratio,
                                    {"grad_ratio": ratio, "grad_norm_d": m["grad_norm_d"],
                                     "grad_norm_g": m["grad_norm_g"], "baseline": ctx.baselines["grad_ratio"]})
        return out or NOT_RECORDED

    def describe(self, name, held, window, median, latest, ctx):
        if name == "pinned":
            return (f"{self.headline} from the first steps: its loss sat at {fmt(median)} (floor "
                    f"{fmt(ctx.range.floor)}, limit {fmt(self.conditions[name].threshold(ctx))}) in {held} of "
                    f"the last {window} records of the warm-up: it won before the generator could learn.")
        if name == "grad_ratio":
            return (f"{self.headline}: |grad D| / |grad G| was above {fmt(ratio_limit(ctx))} "
                    f"({fmt(ctx.t.grad_ratio_max)}x its early median of {fmt(ctx.baselines['grad_ratio'])}) "
                    f"in {held} of the last {window} records (median {fmt(median)}).")
        return super().describe(name, held, window, median, latest, ctx)

    def action_for(self, held, ctx):
        # a critic with several steps per G step: fewer steps is the gentlest live change
        if ctx.loss_kind in CRITIC_LOSSES and ctx.n_critic > 1:
            return actions.set_value("loss.n_critic", max(1, ctx.n_critic // 2))
        return actions.scale_lr("d", 0.5)

    def fix_for(self, held, ctx):
        if ctx.loss_kind in CRITIC_LOSSES:
            return (f"Halve the critic steps per G step (n_critic {ctx.n_critic}), or D's learning rate, "
                    f"or raise the gradient penalty.")
        smooth = "" if ctx.range.smoothing > 0 or ctx.loss_kind == "hinge" else ", one-sided label smoothing"
        return f"Halve D's learning rate (or raise G's), or use fewer D steps{smooth} or spectral norm in D."


def grad_ratio(m: dict[str, Any]) -> float | None:
    got = _get(m, "grad_norm_d", "grad_norm_g")
    if got and got[1] > 0:
        return got[0] / got[1]
    return None


def ratio_limit(ctx: Context) -> float | None:
    """|grad D| / |grad G| limit, relative to the ratio's own baseline (its median over the first
    window after warm-up; None until then). The raw ratio says little: a conv D's gradient norm
    is many times its G's in healthy runs (a median of 8-9 for DCGAN/LSGAN on digits, with
    single records past 50), critics and penalties have their own scales, and a saturated D has
    a tiny gradient (a frozen G against a fast D reads 1e-5). A baseline below 2 counts as 2: a
    healthy WGAN-GP on ring8 starts near 0.7 and spends stretches at 5-8."""
    base = ctx.baselines.get("grad_ratio")
    return None if base is None else ctx.t.grad_ratio_max * max(base, 2.0)


# --- oscillation ---------------------------------------------------------------------------------

# The scale of each loss, below which its level is not trusted: noise on a loss near zero (a
# hinge G loss crosses zero in healthy runs, jumping about 0.37 a record) must not read as a swing.
LOSS_SCALE = {"ns": 0.5, "minimax": 0.5, "lsgan": 0.25, "hinge": 1.0}


class Oscillation(Rule):
    name = "oscillation"
    word = "OSCILLATING"
    headline = "The losses are oscillating"
    cleared = "The losses have stopped oscillating"
    fix = "Halve both learning rates, use a larger batch, or set Adam's beta1 to 0.5."
    conditions = {
        "d_loss": Condition("d_jump_ratio", "the D loss's typical jump / its level", "above", lambda c: c.t.osc_jump),
        "g_loss": Condition("g_jump_ratio", "the G loss's typical jump / its level", "above", lambda c: c.t.osc_jump),
    }

    def __init__(self, window: int):
        self.size = max(window, 4)
        self.series = {k: deque(maxlen=self.size) for k in self.conditions}

    def keys(self, loss_kind: str) -> tuple[str, ...]:
        # A critic's G loss is -mean D(G(z)): its offset drifts freely in healthy training,
        # so only the critic loss (an estimate of the distance) has a meaningful level.
        return ("d_loss",) if loss_kind in CRITIC_LOSSES else ("d_loss", "g_loss")

    def record(self, m, ctx):
        """Collect every record (warm-up too) so the window is full when warm-up ends. The D loss
        is kept as its height above the loss's floor: label smoothing lifts the whole series by
        the floor (0.33 at smoothing 0.1), which is no part of a swing's level."""
        for k, series in self.series.items():
            if finite(m.get(k)):
                floor = ctx.range.floor if k == "d_loss" and ctx.range.floor is not None else 0.0
                series.append(float(m[k]) - floor)

    def state(self):
        return {"series": {k: list(v) for k, v in self.series.items()}}

    def load(self, state):
        for k, values in state["series"].items():
            if k in self.series:
                self.series[k].clear()
                self.series[k].extend(float(v) for v in values)

    def observe(self, m, ctx):
        out = {}
        filling = False
        for k in self.keys(ctx.loss_kind):
            series = self.series[k]
            if len(series) < self.size:
                filling = True
                continue
            jump, level, rate = swing_stats(list(series))
            ratio = jump / max(level, osc_floor(ctx), 1e-12)
            holds = ratio > ctx.t.osc_jump and rate > ctx.t.osc_flip_rate
            ev_key = self.conditions[k].key
            out[k] = Obs(holds, ratio, {ev_key: ratio, f"{k}_jump": jump, f"{k}_level": level,
                                        f"{k}_flip_rate": rate})
        return out or (Off("filling window") if filling else NOT_RECORDED)

    def describe(self, name, held, window, median, latest, ctx):
        ev = latest.evidence
        who = "D" if name == "d_loss" else "G"
        return (f"{self.headline}: the {who} loss jumped by {fmt(ev[f'{name}_jump'])} a record on a level of "
                f"{fmt(ev[f'{name}_level'])} ({fmt(median)}x, limit {fmt(ctx.t.osc_jump)}x) and reversed "
                f"direction in {ev[f'{name}_flip_rate']:.0%} of its moves, in {held} of the last {window} records.")

    def action_for(self, held, ctx):
        return actions.scale_lr("both", 0.5)


def osc_floor(ctx: Context) -> float:
    """The smallest level a loss's jumps are measured against: osc_floor x the loss's scale.
    A critic's loss has no natural scale (-20 for a young digits critic, -0.5 late, far more
    with a weak penalty), so its scale is half its own early level, and at least 0.5."""
    if ctx.loss_kind in CRITIC_LOSSES:
        early = ctx.baselines.get("critic_level")
        scale = max(0.5, 0.5 * early) if early is not None else 0.5
    else:
        scale = LOSS_SCALE.get(ctx.loss_kind, 0.5)
    return ctx.t.osc_floor * scale


# --- mode_collapse -------------------------------------------------------------------------------

class ModeCollapse(Rule):
    """The fixed-noise batch stopped varying. After the warm-up: its spread (absolute, relative to
    the real data's std, or the mean pairwise distance relative to the real data's) or a class's
    within-class spread under its limit. In the warm-up only a collapse that is certain: the
    spread fell from its own peak (at least `early_collapse_peak` of the real data's) to under
    `early_collapse_drop` of that peak and under the collapse limits, judged over `early_window`
    records. An untrained G's naturally low spread at step 0 has no peak to fall from; healthy
    early runs of every preset stay above half their running peak (tests/data/early_records.json)."""

    name = "mode_collapse"
    word = "COLLAPSED"
    headline = "The generator may have collapsed to a few outputs"
    cleared = "The generator's samples vary again"
    fix = ("Switch to WGAN-GP or add spectral norm in D, add minibatch discrimination, "
           "or halve G's learning rate.")
    judges_warmup = True
    conditions = {
        "sample_std": Condition("sample_std", "the sample std", "below", lambda c: c.t.collapse_std),
        "sample_std_frac": Condition("sample_std_frac", "the sample std / real std", "below",
                                     lambda c: c.t.collapse_std_frac),
        "sample_pdist": Condition("sample_pdist", "the samples' mean pairwise distance (relative to real)",
                                  "below", lambda c: c.t.collapse_pdist),
        "class_pdist": Condition("class_pdist_min", "the smallest within-class pairwise distance (relative to "
                                 "the real class's)", "below", lambda c: c.t.collapse_class_pdist),
        "early": Condition("spread_of_peak", "the samples' spread / its own peak", "below",
                           lambda c: c.t.early_collapse_drop),
    }

    def __init__(self) -> None:
        self.peak: dict[str, float] = {}   # highest relative spread seen: sample_pdist, sample_std_frac

    def window(self, ctx):
        return ctx.t.early_window if ctx.warmup else ctx.t.window

    def state(self):
        return {"peak": dict(self.peak)}

    def load(self, state):
        self.peak = {str(k): float(v) for k, v in state["peak"].items() if finite(v)}

    @staticmethod
    def spreads(m: dict[str, Any], ctx: Context) -> dict[str, float]:
        """The relative spreads a record carries: pdist (already relative) and std / real std."""
        out = {}
        got = _get(m, "sample_pdist")
        if got:
            out["sample_pdist"] = got[0]
        got = _get(m, "sample_std")
        if got and ctx.real_std > 0:
            out["sample_std_frac"] = got[0] / ctx.real_std
        return out

    def record(self, m, ctx):
        for k, v in self.spreads(m, ctx).items():
            self.peak[k] = max(self.peak.get(k, 0.0), v)

    def observe(self, m, ctx):
        return self._early(m, ctx) if ctx.warmup else self._sustained(m, ctx)

    def _early(self, m, ctx):
        spreads = self.spreads(m, ctx)
        if not spreads:
            return NOT_RECORDED
        limits = {"sample_pdist": ctx.t.collapse_pdist, "sample_std_frac": ctx.t.collapse_std_frac}
        # the spread that fell furthest from its own peak, among those that have a real peak
        best = None
        for k, v in spreads.items():
            peak = self.peak.get(k, 0.0)
            if peak < ctx.t.early_collapse_peak:
                continue
            ratio = v / peak
            if best is None or ratio < best[1]:
                best = (k, ratio, v, peak)
        if best is None:
            return Off("warm-up")  # nothing has peaked yet: an untrained G's low spread is not a collapse
        k, ratio, v, peak = best
        holds = ratio < ctx.t.early_collapse_drop and v < limits[k]
        return {"early": Obs(holds, ratio, {"spread_of_peak": ratio, "spread": k, k: v, "peak": peak})}

    def _sustained(self, m, ctx):
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
        per_class = m.get("class_pdist")
        if isinstance(per_class, (list, tuple)) and per_class:
            # within each class: a conditional G can vary across classes while each class is one image
            values = [float(v) if finite(v) else None for v in per_class]
            known = [v for v in values if v is not None]
            if known:
                low = min(known)
                limit = ctx.t.collapse_class_pdist
                classes = [i for i, v in enumerate(values) if v is not None and v < limit]
                out["class_pdist"] = Obs(bool(classes), low, {"class_pdist_min": low, "classes": classes,
                                                              "n_classes": len(values)})
        return out or NOT_RECORDED

    def describe(self, name, held, window, median, latest, ctx):
        ev = latest.evidence
        if name == "early":
            what = "mean pairwise distance" if ev["spread"] == "sample_pdist" else "std"
            return (f"The generator collapsed early: the fixed-noise samples' {what} fell to {fmt(ev[ev['spread']])} "
                    f"of the real data's, {fmt(median)} of its own peak of {fmt(ev['peak'])} (limit "
                    f"{fmt(ctx.t.early_collapse_drop)}), in {held} of the last {window} records of the warm-up.")
        if name != "class_pdist":
            return super().describe(name, held, window, median, latest, ctx)
        return (f"The generator collapsed within classes {_names(ev['classes'])} ({len(ev['classes'])} of "
                f"{ev['n_classes']}): their samples' pairwise distance fell below "
                f"{fmt(ctx.t.collapse_class_pdist)} of the real class's in {held} of the last {window} records "
                f"(smallest {fmt(median)}).")

    def action_for(self, held, ctx):
        return actions.scale_lr("g", 0.5)


# --- mode_dropping (live quality) ----------------------------------------------------------------

class ModeDropping(Rule):
    """Coverage, from the live-quality records: how the sharp samples (toy: high quality; images:
    the ones the classifier names with p >= 0.5, `class_counts`) share out over the modes or
    classes, judged on quality records only (every log.eval_every steps; the windows count those
    records and span `quality_steps`).

    * starved: at least `starve_frac` of the modes (classes) receive less than `starve_share` of
      their fair share (1/K) of the sharp samples (classes: `starve_share_classes`, since a young
      generator learns classes at different times and a classifier confuses some), empty ones
      included, whether or not the run ever covered them (a grid25 G on 19 of 25 modes by the
      one-sample count and 8 strictly, a model producing one class, a conditional model missing
      three). Judged once there are at least `starve_min` sharp samples per mode on average
      (fewer, and a mode's share is noise);
      records without a histogram fall back to the one-sample count (`modes_lost`,
      `classes_missing`);
    * unreached (toy data): after `reach_steps`, fewer than `reach_hq` of the samples are high
      quality: the generator never reached the data (a streak or a line off the ring);
    * lost: the share covered (one-sample count) fell, by at least `drop_frac` of it, below the
      best share the run held on two quality records in a row;
    * subset (toy data): the samples are sharp (hq_fraction >= drop_hq) yet land on at most
      `drop_subset` of the modes.
    A record with too few sharp samples before `reach_steps` is `off` ("too few sharp samples"):
    a healthy WGAN-GP on grid25 at 3 % high quality counts 15 to 25 of 25 modes from one record to
    the next, which is a quality problem, not dropping."""

    name = "mode_dropping"
    word = "MODES DROPPED"
    headline = "The generator dropped modes"
    cleared = "The generator covers its modes again"
    quality = True
    conditions = {
        "lost": Condition("lost", "the share of modes lost since the run's best", "at least",
                          lambda c: c.t.drop_frac),
        "subset": Condition("covered", "the share of modes covered by sharp samples", "at most",
                            lambda c: c.t.drop_subset),
        "starved": Condition("starved_share", "the share of modes starved or empty", "at least",
                             lambda c: c.t.starve_frac),
        "unreached": Condition("hq_fraction", "the share of high-quality samples", "below",
                               lambda c: c.t.reach_hq),
    }

    MAX_WINDOW = 50  # quality records: bounds the memory whatever log.eval_every is

    def __init__(self) -> None:
        self.best = 0.0            # best share covered on two quality records in a row
        self.previous: float | None = None
        self.kind = "modes"        # or "classes"
        self.last_step: int | None = None
        self.interval: int | None = None  # steps between the latest two quality records

    def state(self):
        return {"best": self.best, "previous": self.previous, "kind": self.kind,
                "last_step": self.last_step, "interval": self.interval}

    def load(self, state):
        self.best = float(state["best"])
        self.previous = None if state["previous"] is None else float(state["previous"])
        self.kind = "classes" if state["kind"] == "classes" else "modes"
        self.last_step = None if state["last_step"] is None else int(state["last_step"])
        self.interval = None if state["interval"] is None else int(state["interval"])

    def window(self, ctx):
        """quality_window records, and enough of them to span quality_steps: the shipped ring8
        (WGAN-GP) drops to 4 of 8 modes with 35 % of its samples sharp for about 100 steps and
        recovers, which a 5-record window at log.eval_every = 20 would call dropping."""
        n = ctx.t.quality_window
        if self.interval:
            n = max(n, math.ceil(ctx.t.quality_steps / self.interval))
        return min(n, self.MAX_WINDOW)

    def clear_window(self, ctx):
        return self.window(ctx)

    @staticmethod
    def coverage(m: dict[str, Any], t: Thresholds) -> tuple[float, dict[str, Any]] | None:
        """(share covered by the one-sample count, evidence) of a quality record whose samples are
        sharp enough to count modes, or None."""
        toy = _get(m, "modes_captured", "modes_total")
        if toy and toy[1] > 0:
            hq = _get(m, "hq_fraction")
            if not hq or hq[0] < t.drop_hq:
                return None
            ev: dict[str, Any] = {"modes_captured": int(toy[0]), "modes_total": int(toy[1]), "hq_fraction": hq[0]}
            strict = _get(m, "modes_captured_strict")
            if strict:
                ev["modes_captured_strict"] = int(strict[0])
            lost = _index_list(m.get("modes_lost"))
            if lost is not None:
                ev["modes_missing"] = lost
            return toy[0] / toy[1], ev
        cov = _get(m, "class_coverage")
        if cov:
            ev = {"class_coverage": cov[0]}
            missing = _index_list(m.get("classes_missing"))
            if missing is not None:
                ev["classes_missing"] = missing
            return cov[0], ev
        return None

    @staticmethod
    def is_quality(m: dict[str, Any]) -> bool:
        return "modes_total" in m or "class_coverage" in m

    @staticmethod
    def histogram(m: dict[str, Any]) -> tuple[str, list[int]] | None:
        """("modes" | "classes", sharp samples per mode or class), from the record's histogram or,
        for records that carry none, from its one-sample count (empty ones 0, the others 'enough')."""
        # class_counts (samples the classifier names, p >= 0.5) before class_histogram (confident ones,
        # records before 2026-12-06): confidence differs by class, the shares would measure the classifier
        for key, kind in (("mode_histogram", "modes"), ("class_counts", "classes"), ("class_histogram", "classes")):
            h = m.get(key)
            if isinstance(h, (list, tuple)) and h and all(finite(c) and c >= 0 for c in h):
                return kind, [int(c) for c in h]
        return None

    def record(self, m, ctx):
        if not self.is_quality(m):
            return
        step = int(m.get("step", 0) or 0)
        if self.last_step is not None and step > self.last_step:
            self.interval = step - self.last_step
        self.last_step = step
        self.kind = "modes" if "modes_total" in m else "classes"
        got = self.coverage(m, ctx.t)
        if got is None:
            return
        share = got[0]
        if self.previous is not None:
            self.best = max(self.best, min(share, self.previous))  # held twice: one lucky count is no best
        self.previous = share

    def _starved(self, m, ctx) -> Obs | Off | None:
        """The share test: None when the record has nothing to count with."""
        got = self.histogram(m)
        toy = "modes_total" in m
        if got is not None:
            kind, hist = got
            k = len(hist)
            total = sum(hist)
            if total < ctx.t.starve_min * k:
                return Off("too few sharp samples")
            fair = total / k
            limit = ctx.t.starve_share if kind == "modes" else ctx.t.starve_share_classes
            starved = [i for i, c in enumerate(hist) if c < limit * fair]
            empty = [i for i in starved if hist[i] == 0]
            ev: dict[str, Any] = {"starved": starved, "empty": empty, "n_total": k, "sharp": total,
                                  "kind": kind, "share_limit": limit}
        else:
            # records without a histogram (older runs): the one-sample count's empty modes
            if toy:
                hq = _get(m, "hq_fraction")
                if not hq or hq[0] < ctx.t.drop_hq:
                    return Off("too few sharp samples")
                missing, k = _index_list(m.get("modes_lost")), int(m.get("modes_total") or 0)
            else:
                missing, cov = _index_list(m.get("classes_missing")), _get(m, "class_coverage")
                k = 0
                if missing is not None and cov:
                    k = max(1, round(len(missing) / (1 - cov[0]))) if cov[0] < 1 else max(1, len(missing))
            if missing is None or k <= 0:
                return None
            starved = empty = missing
            ev = {"starved": starved, "empty": empty, "n_total": k, "kind": "modes" if toy else "classes"}
        share = len(starved) / k
        ev["starved_share"] = share
        for key in ("modes_captured", "modes_captured_strict", "hq_fraction", "class_coverage",
                    "class_coverage_strict", "confident_fraction"):
            if finite(m.get(key)):
                ev[key] = m[key]
        return Obs(share >= ctx.t.starve_frac - 1e-9, share, ev)

    def observe(self, m, ctx):
        if not self.is_quality(m):
            return None
        out: dict[str, Obs] = {}
        starved = self._starved(m, ctx)
        step = int(m.get("step", 0) or 0)
        hq = _get(m, "hq_fraction")
        if "modes_total" in m and hq and step >= ctx.t.reach_steps:
            out["unreached"] = Obs(hq[0] < ctx.t.reach_hq, hq[0],
                                   {"hq_fraction": hq[0], "modes_captured": m.get("modes_captured"),
                                    "modes_total": m.get("modes_total"), "step": step})
        if isinstance(starved, Obs):
            out["starved"] = starved
        got = self.coverage(m, ctx.t)
        if got is not None:
            share, ev = got
            ev = dict(ev, covered=share, best=self.best)
            if self.best > 0:
                lost = (self.best - share) / self.best
                ev["lost"] = lost
                # the epsilon keeps 1.0 - 0.8 (= 0.19999...) a loss of 0.2
                out["lost"] = Obs(lost >= ctx.t.drop_frac - 1e-9, lost, dict(ev))
            if "hq_fraction" in ev:
                out["subset"] = Obs(share <= ctx.t.drop_subset + 1e-9, share, dict(ev))
        if out:
            return out
        return starved if isinstance(starved, Off) else Off("too few sharp samples")

    def describe(self, name, held, window, median, latest, ctx):
        ev = latest.evidence
        if name == "starved":
            kind = ev["kind"]
            counts = ""
            if "modes_captured" in ev:
                strict = ev.get("modes_captured_strict")
                counts = (f" ({ev['modes_captured']} of {ev['n_total']} modes have a high-quality sample"
                          + (f", {strict} have at least 20" if strict is not None else "") + ")")
            elif "class_coverage" in ev:
                strict = ev.get("class_coverage_strict")
                counts = (f" (class coverage {ev['class_coverage']:.0%}"
                          + (f", {strict:.0%} strictly" if strict is not None else "") + ")")
            return (f"The generator starves {kind}: {len(ev['starved'])} of {ev['n_total']} {kind} get less than "
                    f"{ev.get('share_limit', ctx.t.starve_share):.0%} of their fair share of the "
                    f"{'sharp samples' if kind == 'modes' else 'samples the classifier names'} ({len(ev['empty'])} none)"
                    f"{counts}, in {held} of the last {window} quality records; starved: {_names(ev['starved'])}.")
        if name == "unreached":
            return (f"The generator's samples never reached the data: {ev['hq_fraction']:.1%} of them are high "
                    f"quality (limit {ctx.t.reach_hq:.0%}) at step {ev['step']}, in {held} of the last {window} "
                    f"quality records ({ev.get('modes_captured')} of {ev.get('modes_total')} modes have a sample).")
        if "modes_total" in ev:
            what = f"{ev['modes_captured']} of {ev['modes_total']} modes have a high-quality sample"
            missing = ev.get("modes_missing")
            tail = f"; missing: {_names(missing)}" if missing else ""
        else:
            what = f"the generated batch shows {ev['class_coverage']:.0%} of the classes"
            missing = ev.get("classes_missing")
            tail = f"; missing classes: {_names(missing)}" if missing else ""
        if name == "lost":
            why = f"down from {ev['best']:.0%} earlier in the run"
        else:
            why = f"though {ev['hq_fraction']:.0%} of the samples are sharp"
        return (f"{self.headline}: {what}, {why}, in {held} of the last {window} quality records{tail}.")

    def action_for(self, held, ctx):
        if ctx.loss_kind in CRITIC_LOSSES:
            # a better-trained critic spreads G's mass: more critic steps, live
            return actions.set_value("loss.n_critic", min(10, max(2, ctx.n_critic * 2)))
        return actions.scale_lr("g", 0.5)

    def fix_for(self, held, ctx):
        if held == {"unreached"}:
            return ("Restart with both learning rates lower (or Adam betas (0.5, 0.999)), or switch to WGAN-GP: "
                    "the generator is not reaching the data.")
        if ctx.loss_kind in CRITIC_LOSSES:
            return "Train the critic more (n_critic up) or halve G's learning rate, or add minibatch discrimination."
        return ("Halve G's learning rate, or switch to WGAN-GP, spectral norm in D or minibatch "
                "discrimination (a restart).")


# --- vanishing_gradients -------------------------------------------------------------------------

class VanishingGradients(Rule):
    name = "vanishing_gradients"
    word = "VANISHING"
    headline = "The generator's gradients have vanished"
    cleared = "The generator's gradients are back"
    fix = "Use the non-saturating G loss (loss.kind = \"ns\") and halve D's learning rate."
    conditions = {
        "grad_norm_g": Condition("grad_norm_g", "|grad G|", "below", lambda c: vanish_limit(c)),
    }

    def observe(self, m, ctx):
        got = _get(m, "grad_norm_g")
        if not got:
            return NOT_RECORDED
        g = got[0]
        ev: dict[str, Any] = {"grad_norm_g": g}
        limit = vanish_limit(ctx)
        confident = True
        gap_limit = confident_gap(ctx)
        if gap_limit is not None:
            scores = _get(m, "d_real", "d_fake")
            if not scores:
                return NOT_RECORDED
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
            text = text[:-1] + f", with D(x) - D(G(z)) at {fmt(latest.evidence['gap'])}."
        return text

    def action_for(self, held, ctx):
        return actions.scale_lr("d", 0.5)


def vanish_limit(ctx: Context) -> float:
    base = ctx.baselines.get("grad_norm_g")
    rel = ctx.t.vanish_frac * base if base is not None else 0.0
    return max(ctx.t.vanish_grad, rel)


def confident_gap(ctx: Context) -> float | None:
    """How far apart D's real and fake scores are when D is sure, for the losses whose G
    gradient saturates with D's confidence (probabilities, or LSGAN's targets 1 - s and 0):
    `confident_gap` of the widest gap. None for critics and hinge: their G loss is linear in D's
    score, and healthy hinge runs keep the scores past the margins (a gap above 2) most of the time."""
    if ctx.loss_kind in PROBABILITY_LOSSES or ctx.loss_kind == "lsgan":
        return ctx.range.gap_limit(ctx.t.confident_gap)
    return None


# --- exploding_gradients -------------------------------------------------------------------------

class ExplodingGradients(Rule):
    name = "exploding_gradients"
    word = "EXPLODING"
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
        return out or NOT_RECORDED

    @staticmethod
    def _which(held: set[str]) -> str:
        if held == {"grad_norm_d"}:
            return "d"
        if held == {"grad_norm_g"}:
            return "g"
        return "both"

    def action_for(self, held, ctx):
        return actions.scale_lr(self._which(held), 0.5)

    def fix_for(self, held, ctx):
        who = {"d": "D's learning rate", "g": "G's learning rate", "both": "both learning rates"}[self._which(held)]
        return f"Halve {who}, and add a gradient penalty (wgan_gp or R1) or spectral norm."
