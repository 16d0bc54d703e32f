"""Metric records: what a log step turns the interval's device scalars into, with one host copy.

Losses are means over the log interval; scores, gradient norms and D's accuracy are taken at
the logged step; `sample_std`/`sample_pdist` describe the live generator's fixed-noise batch
(the EMA copy's early weights are mostly the initial ones and would read as a collapse that
is not happening); per-class diversity is added for conditional models.

In a distributed run the step figures are averaged over the ranks in the same vector, before
the host copy (the strategy's `combine`); the fixed-noise figures are rank 0's.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from gantui.config import Config
from gantui.engine.distributed import Local
from gantui.engine.overfit import N_VALUES, OverfitProbe
from gantui.engine.parts import Parts

MEAN_KEYS = ("d_loss", "g_loss", "gp", "augment_rt")
LAST_KEYS = ("d_real", "d_fake", "d_acc", "grad_norm_d", "grad_norm_g", "augment_p")


def mean_pdist(x: torch.Tensor) -> torch.Tensor:
    """Mean pairwise Euclidean distance of a batch (the diversity signal of the collapse alerts)."""
    if x.shape[0] < 2:
        return torch.zeros((), device=x.device)
    return torch.pdist(x).mean()


def class_pdists(x: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Mean pairwise distance within each class (n_classes,); NaN for a class with < 2 samples."""
    out = []
    for c in range(n_classes):
        xc = x[y == c]
        out.append(mean_pdist(xc) if xc.shape[0] >= 2 else torch.full((), float("nan"), device=x.device))
    return torch.stack(out)


def class_reference(real: torch.Tensor, real_y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Each class's within-class spread in the real data (n_classes,): what the fixed batch's is
    divided by (1 where a class has too few real samples to tell)."""
    ref = class_pdists(real.float().flatten(1), real_y, n_classes)
    return torch.where(torch.isfinite(ref) & (ref > 0), ref, torch.ones_like(ref))


def class_figures(per: list[float]) -> dict[str, Any]:
    """The record's per-class spread from the host values of class_pdists(...) / class_reference(...):
    `class_pdist` (None for a class without two samples) and `class_pdist_min` (the collapse rule's)."""
    out: dict[str, Any] = {"class_pdist": [round(v, 4) if math.isfinite(v) else None for v in per]}
    finite = [v for v in per if math.isfinite(v)]
    if finite:
        out["class_pdist_min"] = min(finite)
    return out


class Rate:
    """Steps per second, smoothed over log intervals; a pause restarts the interval."""

    def __init__(self, step: int) -> None:
        self.restart(step)
        self.value: float | None = None

    def restart(self, step: int) -> None:
        self._t0, self._step0 = time.perf_counter(), step

    def update(self, step: int) -> float:
        now = time.perf_counter()
        done = step - self._step0
        if done > 0 and now > self._t0:
            rate = done / (now - self._t0)
            self.value = rate if self.value is None else 0.7 * self.value + 0.3 * rate
        self._t0, self._step0 = now, step
        return self.value or 0.0


class Recorder:
    """Builds the metrics record of a log step. Runs on the training thread."""

    def __init__(self, cfg: Config, parts: Parts, real: torch.Tensor, real_y: torch.Tensor | None,
                 strategy: Local | None = None) -> None:
        self.cfg = cfg
        self.p = parts
        self.strategy = strategy or Local()
        real = real.float().flatten(1)
        self.real_std = float(real.std(0).mean())
        self.real_pdist = float(mean_pdist(real))
        n_classes = parts.data.info.n_classes
        self.per_class = parts.conditional and parts.fixed_y is not None and real_y is not None
        if self.per_class:
            self.real_class_pdist = class_reference(real, real_y, n_classes)
        self.params = list(parts.G.parameters()) + list(parts.D.parameters())
        self.probe = OverfitProbe(cfg.loss.kind, parts)
        self.label_smoothing = cfg.loss.label_smoothing   # the trainer keeps it current (a live fix)

    @torch.no_grad()
    def generate_live(self) -> torch.Tensor:
        g = self.p.G
        was_training = g.training
        g.eval()  # no BatchNorm statistics change, so logging never alters the training
        out = g(self.p.fixed_z, self.p.fixed_y)
        g.train(was_training)
        return out

    @torch.no_grad()
    def reduce(self, acc: list[dict[str, torch.Tensor]]) -> tuple[dict[str, Any], bool]:
        """(metric values by name, weights finite). One device -> host copy for all of it."""
        last = acc[-1]
        values: dict[str, torch.Tensor] = {}
        for k in MEAN_KEYS:
            if k in last:
                values[k] = torch.stack([a[k] for a in acc if k in a]).float().mean()
        for k in LAST_KEYS:
            if k in last:
                values[k] = last[k].float()
        names = list(values)
        # NaN/Inf in any weight makes this non-finite (the divergence check no metric shows)
        weights = torch.stack(torch._foreach_norm(self.params)).float().sum()
        flat = [values[k].reshape(1) for k in names] + [weights.reshape(1)]
        n_class = self.p.data.info.n_classes if self.per_class else 0
        if self.strategy.is_main:
            samples = self.generate_live().float().flatten(1)
            flat += [samples.std(0).mean().reshape(1), mean_pdist(samples).reshape(1)]
            if n_class:
                flat.append(class_pdists(samples, self.p.fixed_y, n_class) / self.real_class_pdist)
            if self.probe.active:
                flat.append(self.probe.measure(samples, self.p.fixed_y, self.label_smoothing))
        else:  # rank 0's figures arrive in the sum
            flat.append(torch.zeros(2 + n_class + (N_VALUES if self.probe.active else 0), device=weights.device))
        host = self.strategy.combine(torch.cat(flat), len(names) + 1).cpu().tolist()  # the one host copy
        weights_ok = math.isfinite(host[len(names)])
        del host[len(names)]
        names += ["sample_std", "sample_pdist"]
        out: dict[str, Any] = dict(zip(names, host[:len(names)]))
        if n_class:
            out.update(class_figures(host[len(names):len(names) + n_class]))
        if self.probe.active:
            start = len(names) + n_class
            out.update(self.probe.figures(host[start:start + N_VALUES], self.label_smoothing))
        if self.real_pdist > 0:
            out["sample_pdist"] = out["sample_pdist"] / self.real_pdist
        else:
            del out["sample_pdist"]  # undefined; a 0 would read as a collapse
        if self.cfg.is_critic:
            out["wasserstein"] = out["d_real"] - out["d_fake"]
            out.setdefault("gp", 0.0)
        else:
            out.pop("gp", None)
        return out, weights_ok
