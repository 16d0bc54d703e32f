"""`d_overfitting`: the discriminator memorises the training images (Karras et al. 2020,
"Training Generative Adversarial Networks with Limited Data").

A D that memorises calls the images it trained on real and images of the same kind that it never
saw fake. The engine measures both at log steps on a slice of the data held out of training
(data.holdout; gantui.engine.overfit): `d_rt`, ADA's r_t on training reals (1 = every one called
real), and `d_holdout_gap`, ADA's r_v (0 = held-out reals scored like training reals, 1 = like
the generator's samples). The conditions, each in most of a window of records, as every rule:

* memorised: held-out reals scored at least `overfit_gap` of the way to fakes while D still calls
  the training reals real (r_t at least `overfit_rt`; critics, which have no r_t, on the gap alone);
* split: with that r_t, D calls markedly fewer held-out reals real than training reals (r_t minus
  `d_holdout_rt` at least `overfit_split`). The gap is measured on D's raw outputs, so a D that
  pushes its samples far down shrinks it: a small folder (seed 1 of benchmarks/memorisation.py)
  had D calling 69-100 % of its training images real and 0-34 % of the held-out ones, FID rising
  71 % from its best, with the gap never above 0.43.

This happens while the samples are still fine: FID rises only after D has memorised, which is why
it is judged on D's own outputs and not on sample quality.

`judge` is the pure function; `DOverfitting` the rule around it (its state: whether and how the
run augments, for the fix it offers). Its fix is augmentation of every image D sees (gantui.augment).
"""

from __future__ import annotations

from typing import Any

from gantui.diagnostics import actions
from gantui.diagnostics.rules import Condition, Obs, Off, Rule, _get, fmt
from gantui.diagnostics.thresholds import Thresholds
from gantui.vocab.losses import CRITIC_LOSSES

NO_HOLDOUT = "no holdout"
UNDECIDED = "D undecided"   # held-out figures, but D does not yet score training reals above its samples


def judge(m: dict[str, Any], t: Thresholds) -> Obs | None:
    """Whether a record says D memorises, or None when it cannot say (no held-out figures)."""
    got = _get(m, "d_holdout_gap")
    if not got:
        return None
    gap = got[0]
    ev: dict[str, Any] = {"d_holdout_gap": gap}
    confident = True
    rt = _get(m, "d_rt")
    if rt:
        ev["d_rt"] = rt[0]
        confident = rt[0] >= t.overfit_rt
    hold_rt = _get(m, "d_holdout_rt")
    if hold_rt:
        ev["d_holdout_rt"] = hold_rt[0]
    return Obs(confident and gap >= t.overfit_gap, gap, ev)


def judge_split(m: dict[str, Any], t: Thresholds) -> Obs | None:
    """Whether D calls the training reals real and markedly fewer held-out ones, or None without
    both sign means (critics record no r_t)."""
    rt, hold_rt = _get(m, "d_rt"), _get(m, "d_holdout_rt")
    if not rt or not hold_rt:
        return None
    split = rt[0] - hold_rt[0]
    ev = {"d_rt": rt[0], "d_holdout_rt": hold_rt[0], "split": split}
    return Obs(rt[0] >= t.overfit_rt and split >= t.overfit_split, split, ev)


def called_real(r: float) -> str:
    """A sign mean (r_t: -1 every image called fake, 1 every one real) as the share called real."""
    return f"{(1 + r) / 2:.0%}"


class DOverfitting(Rule):
    name = "d_overfitting"
    word = "MEMORISING"
    headline = "The discriminator is memorising the training images"
    cleared = "The discriminator scores held-out images like training images again"
    conditions = {
        "memorised": Condition("d_holdout_gap", "the held-out reals' drop towards fakes (ADA's r_v)", "at least",
                               lambda c: c.t.overfit_gap),
        "split": Condition("split", "training reals called real minus held-out ones (r_t - d_holdout_rt)",
                           "at least", lambda c: c.t.overfit_split),
    }

    def __init__(self) -> None:
        self.augment_p: float | None = None    # the probability in force, when the run augments
        self.adaptive = False                   # ADA on (its r_t is recorded)

    def record(self, m, ctx):
        p = _get(m, "augment_p")   # refreshed by every record: nothing for a checkpoint to keep
        self.augment_p = p[0] if p else None
        self.adaptive = _get(m, "augment_rt") is not None

    def observe(self, m, ctx):
        obs = judge(m, ctx.t)
        if obs is not None:   # D decided: both conditions judge (split needs the sign means, not a critic)
            split = judge_split(m, ctx.t)
            return {"memorised": obs} if split is None else {"memorised": obs, "split": split}
        held_out = _get(m, "d_holdout_rt") is not None or "d_holdout_rt" in m
        return Off(UNDECIDED) if held_out else Off(NO_HOLDOUT)

    def describe(self, name, held, window, median, latest, ctx):
        ev = latest.evidence
        if name == "split":
            return (f"{self.headline}: it called {called_real(ev['d_rt'])} of the training images real and "
                    f"{called_real(ev['d_holdout_rt'])} of images it never trained on (r_t minus held-out r_t "
                    f"{fmt(median)}, limit {fmt(ctx.t.overfit_split)}), in {held} of the last {window} records.")
        rt = f", while D called {called_real(ev['d_rt'])} of the training images real (r_t {fmt(ev['d_rt'])})" \
            if "d_rt" in ev else ""
        return (f"{self.headline}: images it never trained on were scored {fmt(median)} of the way from the "
                f"training images to the generated ones (limit {fmt(ctx.t.overfit_gap)}){rt}, in {held} of the "
                f"last {window} records.")

    def action_for(self, held, ctx):
        if self.augment_p is None and ctx.loss_kind in CRITIC_LOSSES:
            return actions.set_value("data.augment_p", 1.0)          # a critic has no r_t: DiffAugment
        if self.augment_p is None:
            return actions.set_value("data.augment_target", 0.6)     # ADA, from p = 0
        if self.adaptive:
            return actions.set_value("data.augment_target", 0.4)     # more augmentation than ADA's 0.6
        if self.augment_p < 1.0:
            return actions.set_value("data.augment_p", 1.0)
        return None

    def fix_for(self, held, ctx):
        if self.augment_p is None:
            return ("Augment every image D sees: f turns on adaptive augmentation (data.augment = \"ada\"; "
                    "\"diffaugment\" in a preset), or train on more images or a smaller D.")
        return "Augment more (a lower data.augment_target), use more images, or a smaller D or a shorter run."
