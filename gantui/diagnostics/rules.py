"""The alert rules, one class each: what a record says about one failure.

A rule looks at one record and returns {condition: Obs} for the conditions it could judge ({} or
None when it can judge nothing: warm-up, a metric missing, a record without live quality). The
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

    def observe(self, m: dict[str, Any], ctx: Context) -> dict[str, Obs] | None:
        raise NotImplementedError

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
        if limit is None or not got:
            return {}
        ev: dict[str, Any] = {"d_loss": got[0], "floor": rng.floor}
        holds = got[0] < limit
        if rng.span is not None:
            scores = _get(m, "d_real", "d_fake")
            if not scores:
                return {}
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
        return out

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

    def observe(self, m, ctx):
        out = {}
        for k in self.keys(ctx.loss_kind):
            series = self.series[k]
            if len(series) < self.size:
                continue
            jump, level, rate = swing_stats(list(series))
            ratio = jump / max(level, osc_floor(ctx), 1e-12)
            holds = ratio > ctx.t.osc_jump and rate > ctx.t.osc_flip_rate
            ev_key = self.conditions[k].key
            out[k] = Obs(holds, ratio, {ev_key: ratio, f"{k}_jump": jump, f"{k}_level": level,
                                        f"{k}_flip_rate": rate})
        return out

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
    name = "mode_collapse"
    word = "COLLAPSED"
    headline = "The generator may have collapsed to a few outputs"
    cleared = "The generator's samples vary again"
    fix = ("Switch to WGAN-GP or add spectral norm in D, add minibatch discrimination, "
           "or halve G's learning rate.")
    conditions = {
        "sample_std": Condition("sample_std", "the sample std", "below", lambda c: c.t.collapse_std),
        "sample_std_frac": Condition("sample_std_frac", "the sample std / real std", "below",
                                     lambda c: c.t.collapse_std_frac),
        "sample_pdist": Condition("sample_pdist", "the samples' mean pairwise distance (relative to real)",
                                  "below", lambda c: c.t.collapse_pdist),
        "class_pdist": Condition("class_pdist_min", "the smallest within-class pairwise distance (relative to "
                                 "the real class's)", "below", lambda c: c.t.collapse_class_pdist),
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
        return out

    def describe(self, name, held, window, median, latest, ctx):
        if name != "class_pdist":
            return super().describe(name, held, window, median, latest, ctx)
        ev = latest.evidence
        return (f"The generator collapsed within classes {_names(ev['classes'])} ({len(ev['classes'])} of "
                f"{ev['n_classes']}): their samples' pairwise distance fell below "
                f"{fmt(ctx.t.collapse_class_pdist)} of the real class's in {held} of the last {window} records "
                f"(smallest {fmt(median)}).")

    def action_for(self, held, ctx):
        return actions.scale_lr("g", 0.5)


# --- mode_dropping (live quality) ----------------------------------------------------------------

class ModeDropping(Rule):
    """Coverage, from the live-quality records: toy modes with a high-quality sample, or the
    classes a classifier sees in the generated batch.

    Two ways to drop modes, each on quality records only (a toy G starts covering none, and the
    records come every log.eval_every steps, so the windows count quality records):
    * lost: the share covered fell, by at least `drop_frac` of it, below the best share the run
      held on two quality records in a row (one lucky count is no best);
    * subset (toy data): the samples are sharp yet land on at most `drop_subset` of the modes, e.g.
      a G that went straight to 2 of 8 ring modes and never had more.
    Toy modes are counted only while hq_fraction >= drop_hq: with few high-quality samples a mode
    goes uncounted by chance (a healthy WGAN-GP on grid25 at 3 % high quality counts 15 to 25 of
    25 modes from one record to the next), which is a quality problem, not dropping."""

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
    }

    MAX_WINDOW = 50  # quality records: bounds the memory whatever log.eval_every is

    def __init__(self) -> None:
        self.best = 0.0            # best share covered on two quality records in a row
        self.previous: float | None = None
        self.kind = "modes"        # or "classes"
        self.last_step: int | None = None
        self.interval: int | None = None  # steps between the latest two quality records

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
        """(share covered, evidence) of a quality record, or None when it says nothing about coverage."""
        toy = _get(m, "modes_captured", "modes_total")
        if toy and toy[1] > 0:
            hq = _get(m, "hq_fraction")
            if not hq or hq[0] < t.drop_hq:
                return None
            ev: dict[str, Any] = {"modes_captured": int(toy[0]), "modes_total": int(toy[1]), "hq_fraction": hq[0]}
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

    def record(self, m, ctx):
        got = self.coverage(m, ctx.t)
        if got is None:
            return
        step = int(m.get("step", 0) or 0)
        if self.last_step is not None and step > self.last_step:
            self.interval = step - self.last_step
        self.last_step = step
        share = got[0]
        self.kind = "modes" if "modes_total" in got[1] else "classes"
        if self.previous is not None:
            self.best = max(self.best, min(share, self.previous))  # held twice: one lucky count is no best
        self.previous = share

    def observe(self, m, ctx):
        got = self.coverage(m, ctx.t)
        if got is None:
            return None
        share, ev = got
        ev = dict(ev, covered=share, best=self.best)
        out = {}
        if self.best > 0:
            lost = (self.best - share) / self.best
            ev["lost"] = lost
            # the epsilon keeps 1.0 - 0.8 (= 0.19999...) a loss of 0.2
            out["lost"] = Obs(lost >= ctx.t.drop_frac - 1e-9, lost, dict(ev))
        if "hq_fraction" in ev:
            out["subset"] = Obs(share <= ctx.t.drop_subset + 1e-9, share, dict(ev))
        return out

    def describe(self, name, held, window, median, latest, ctx):
        ev = latest.evidence
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
            return None
        g = got[0]
        ev: dict[str, Any] = {"grad_norm_g": g}
        limit = vanish_limit(ctx)
        confident = True
        gap_limit = confident_gap(ctx)
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
        return out

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
