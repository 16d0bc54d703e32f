"""The thresholds of the alert rules: defaults, with the checks a preset's [diagnostics] table
must pass (gantui.config validates the table from these fields and their `check` metadata)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

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


def _share(v) -> str | None:
    return None if 0 < v < 1 else "a number in (0, 1)"


def _t(default, check, doc: str):
    return field(default=default, metadata={"check": check, "doc": doc})


@dataclass(frozen=True)
class Thresholds:
    """Defaults of the alert rules; a preset's [diagnostics] table overrides any of them.

    Limits on D's loss and scores are stated for the plain non-saturating loss without label
    smoothing; gantui.diagnostics.loss_ranges carries them to the loss and smoothing in force."""

    window: int = _t(20, _at_least_1, "log records a condition must (mostly) hold before an alert is raised")
    clear_window: int = _t(20, _at_least_1, "log records it must (mostly) fail before the alert clears")
    sustain: float = _t(0.8, _sustain, "fraction of a window that counts as 'mostly'")
    watch: float = _t(0.25, _share, "fraction of a window that puts a rule on 'watch' (the screen's amber)")
    relapse: float = _t(0.4, _share, "after an alert cleared: fraction of a window that raises it again (a recurring "
                                     "failure is not forgiven)")
    warmup_steps: int = _t(500, _non_negative, "steps in which only divergence and a pinned D are judged")
    enabled: bool = _t(True, None, "false silences every rule but divergence")
    # d_overpowering
    d_loss_min: float = _t(0.1, _non_negative, "D loss below this (ns nats; scaled to the loss and smoothing)")
    d_gap_max: float = _t(0.9, _share, "D(x) - D(G(z)) above this share of its widest (1 - smoothing)")
    d_acc_max: float = _t(0.98, _share, "D's accuracy on its last real and fake batches above this")
    grad_ratio_max: float = _t(5.0, _positive, "|grad D| / |grad G| above this many times its early median (at least 2)")
    # d_overpowering in the warm-up: a D that is certain to have won ("pinned")
    early_window: int = _t(8, _at_least_1, "warm-up records a pinned D must (mostly) hold before it is raised")
    early_d_loss: float = _t(0.03, _non_negative,
                             "warm-up: D loss below this (ns nats; scaled), with the gap and accuracy past their limits")
    # oscillation
    osc_jump: float = _t(0.75, _positive, "typical move between records (median |change|) / level")
    osc_flip_rate: float = _t(0.7, _fraction, "share of consecutive moves that reverse direction")
    osc_floor: float = _t(1.0, _non_negative, "smallest level a jump is measured against, in units of the loss's scale")
    # mode_collapse
    collapse_std: float = _t(0.01, _non_negative, "sample_std below this (absolute)")
    collapse_std_frac: float = _t(0.1, _non_negative, "sample_std below this fraction of the real data's std")
    collapse_pdist: float = _t(0.1, _non_negative, "sample_pdist (relative to the real data's) below this")
    collapse_class_pdist: float = _t(0.25, _non_negative,
                                     "a class's class_pdist (relative to the real class's) below this")
    early_collapse_drop: float = _t(0.2, _share, "warm-up: the spread below this share of its own peak (and under "
                                                 "the collapse limits) is a collapse")
    early_collapse_peak: float = _t(0.2, _share, "warm-up: ... once the spread (relative to the real data's) has "
                                                 "peaked above this (an untrained G starts near 0.05)")
    # mode_dropping (judged on the live-quality records, every log.eval_every steps)
    quality_window: int = _t(5, _at_least_1, "quality records a coverage condition must (mostly) hold / fail ...")
    quality_steps: int = _t(500, _non_negative, "... and at least this many steps of them (a healthy G hops off "
                                                "a few modes for about 100 steps)")
    drop_frac: float = _t(0.2, _share, "share of the modes (classes) the run covered that must go missing")
    drop_subset: float = _t(0.5, _fraction, "toy: sharp samples on at most this share of the modes")
    drop_hq: float = _t(0.2, _fraction, "toy: hq_fraction needed before modes are counted as lost or a subset")
    starve_share: float = _t(0.2, _share, "a mode (class) with less than this share of its fair share (1/K) of "
                                          "the sharp samples is starved")
    starve_share_classes: float = _t(0.1, _share, "images: the same for a class, judged through a classifier (a young "
                                                  "digits DCGAN gives two digits 2-18 % of their share for 1,500 steps "
                                                  "and recovers; a class never drawn sits at 0)")
    starve_frac: float = _t(0.2, _share, "share of the modes (classes) starved or empty that counts as dropping")
    starve_min: float = _t(5.0, _positive, "sharp (confident) samples per mode (class), on average, needed to "
                                           "judge shares")
    reach_hq: float = _t(0.05, _fraction, "toy: hq_fraction below this after reach_steps: the samples never "
                                          "reached the data")
    reach_steps: int = _t(1500, _non_negative, "toy: steps before few high-quality samples count as not "
                                               "reaching the data")
    # vanishing_gradients
    vanish_grad: float = _t(1e-3, _non_negative, "|grad G| below this (absolute) is near zero")
    vanish_frac: float = _t(0.02, _non_negative, "... or below this fraction of its own baseline")
    confident_gap: float = _t(0.9, _share, "ns/minimax/lsgan: D(x) - D(G(z)) above this share of its widest")
    # d_overfitting (needs data.holdout; gantui.diagnostics.overfitting)
    overfit_gap: float = _t(0.5, _positive, "d_holdout_gap (ADA's r_v: 0 held-out reals scored like training reals, "
                                            "1 like generated ones) at least this")
    overfit_rt: float = _t(0.6, _share, "... while D's r_t on training reals is at least this (ADA's target)")
    overfit_split: float = _t(0.5, _positive, "... or, with that r_t, r_t minus the same sign mean on held-out reals "
                                              "(d_holdout_rt) at least this: 0.5 = a quarter more of the training "
                                              "reals than of the held-out ones called real")
    # exploding_gradients
    explode_grad: float = _t(100.0, _positive, "a gradient norm above this is exploding")

    @classmethod
    def docs(cls) -> dict[str, str]:
        """key -> one line, for the help screen and the README."""
        return {f.name: f.metadata.get("doc", "") for f in fields(cls)}
