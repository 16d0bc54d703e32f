"""Synthetic metric streams for the alert-rule tests: healthy runs of each loss, and helpers
to run them through Diagnostics. Levels and noise follow real runs of each loss on digits."""

from __future__ import annotations

import math
import random

from gantui.diagnostics import Diagnostics, Thresholds

EVERY = 10          # optimizer steps per metric record, as log.every's default
WARM = Thresholds().warmup_steps // EVERY   # records from this index on are past the warm-up
START = WARM + Thresholds().window + 10     # failures start here: after the baselines are learned
REAL_STD = 0.5      # images in [-1, 1]: the real data's mean per-feature std


# --- synthetic streams ----------------------------------------------------------------------------

def healthy(kind: str, seed: int = 0):
    """An endless, noisy but stable run of `kind`: record i is step (i + 1) * EVERY.
    Levels and noise follow real runs of each loss on digits (d/g loss averaged over 10 steps,
    scores and gradient norms of the last step, which are noisier; a conv D's gradient norm is
    many times its G's, with single records up to 10x the median), plus a slow drift."""
    rng = random.Random(seed)
    i = 0
    walk = 0.0  # a critic's G loss drifts freely
    while True:
        i += 1
        step = i * EVERY
        drift = 0.1 * math.sin(i / 40)
        jitter = lambda s: math.exp(rng.gauss(0.0, s))  # noqa: E731 - multiplicative noise for norms
        m = {"step": step, "time": 1000.0 + step, "lr_g": 2e-4, "lr_d": 2e-4, "steps_per_s": 40.0,
             "sample_std": REAL_STD * (0.85 + rng.gauss(0, 0.05)), "sample_pdist": 0.9 + rng.gauss(0, 0.05)}
        if kind in ("ns", "minimax"):
            m.update(d_loss=1.3 + drift + rng.gauss(0, 0.06), d_real=0.55 + rng.gauss(0, 0.07),
                     d_fake=0.45 + rng.gauss(0, 0.07), grad_norm_d=7.0 * jitter(0.8), grad_norm_g=1.0 * jitter(0.4))
            m["g_loss"] = 0.8 - drift + rng.gauss(0, 0.06) if kind == "ns" else -0.6 + rng.gauss(0, 0.04)
        elif kind == "lsgan":
            m.update(d_loss=0.22 + drift / 5 + rng.gauss(0, 0.02), g_loss=0.16 + rng.gauss(0, 0.03),
                     d_real=0.55 + rng.gauss(0, 0.1), d_fake=0.45 + rng.gauss(0, 0.1),
                     grad_norm_d=3.0 * jitter(0.8), grad_norm_g=0.35 * jitter(0.4))
        elif kind == "hinge":  # the G loss hovers about zero, crossing it all the time
            m.update(d_loss=1.7 + drift + rng.gauss(0, 0.15), g_loss=0.12 - drift + rng.gauss(0, 0.2),
                     d_real=0.2 + rng.gauss(0, 0.4), d_fake=-0.05 + rng.gauss(0, 0.4),
                     grad_norm_d=14.0 * jitter(0.6), grad_norm_g=2.5 * jitter(0.15))
        else:  # wgan, wgan_gp: raw critic scores with an unanchored offset
            walk += rng.gauss(0, 0.3)
            gap = (3.0 if kind == "wgan_gp" else 1.5) + drift
            fake = walk + rng.gauss(0, 0.3)
            real = fake + gap + rng.gauss(0, 0.3)
            gp = abs(rng.gauss(0.03, 0.01)) if kind == "wgan_gp" else 0.0
            m.update(d_loss=-gap + 10 * gp + rng.gauss(0, 0.15), g_loss=-fake, d_real=real, d_fake=fake, gp=gp,
                     wasserstein=real - fake, grad_norm_d=10.0 * jitter(0.5), grad_norm_g=12.0 * jitter(0.3))
        yield m


def stream(kind: str, n: int, seed: int = 0, patch=None):
    """n records of a healthy `kind` run; patch(i, m) may change record i in place."""
    gen = healthy(kind, seed)
    for i in range(n):
        m = next(gen)
        if patch is not None:
            patch(i, m)
        yield m


def run(diag: Diagnostics, records) -> list[dict]:
    events = []
    for m in records:
        events.extend(diag.update(m))
    return events


def of(events, rule, state=None):
    return [e for e in events if e["rule"] == rule and (state is None or e["state"] == state)]


LOSS_KINDS = ("ns", "minimax", "wgan", "wgan_gp", "lsgan", "hinge")


# --- live-quality records ---------------------------------------------------------------------------

QUALITY_EVERY = 10   # records between live-quality records (log.eval_every = 100 steps at log.every 10)


def is_quality(i: int) -> bool:
    return (i + 1) % QUALITY_EVERY == 0


def toy_quality(m: dict, captured: int, total: int = 8, hq: float = 0.9, missing=None) -> None:
    """Make record `m` a toy live-quality record (the keys gantui eval reports)."""
    lost = list(range(captured, total)) if missing is None else list(missing)
    m.update(modes_captured=captured, modes_total=total, hq_fraction=hq, modes_lost=lost)


def healthy_toy(i: int, m: dict) -> None:
    """A healthy toy run's quality records: the G starts as a blur covering no mode with a
    high-quality sample, sharpens over the first 1,000 steps, then holds all 8 modes."""
    if not is_quality(i):
        return
    step = (i + 1) * EVERY
    hq = min(0.9, 0.9 * step / 1000)
    toy_quality(m, 8 if hq >= 0.3 else int(8 * hq / 0.3), hq=hq)


def image_quality(m: dict, covered: int, n_classes: int = 10) -> None:
    m.update(class_coverage=covered / n_classes, classes_missing=list(range(covered, n_classes)))
