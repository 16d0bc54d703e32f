"""ADA's overfitting signals at log steps: does D tell its training images from images it never saw?

On a fixed batch of training reals and the held-out slice (gantui.data.holdout), never augmented,
with D in eval mode and no gradient (nothing here changes the training or draws from its RNG):

* `d_rt`: ADA's r_t, E[sign(D(x) - its decision point)] on the training batch (for probability
  outputs sign(logit), i.e. p > 0.5): 1 when D calls every training image real, 0 when it is
  undecided, -1 when it calls them all fake. Not recorded for critics (WGAN), whose score has
  no fixed zero.
* `d_holdout_rt`: the same on the held-out images;
* `d_holdout_gap`: ADA's r_v (Karras et al. 2020, sec. 2), on D's raw outputs,
  (E[D(train)] - E[D(held out)]) / (E[D(train)] - E[D(generated)]): 0 when D scores images it never
  saw like the ones it trained on, 1 when it scores them like the generator's samples (the
  fixed-noise batch), above 1 when lower still. Not recorded while D does not score the training
  reals above the samples (the ratio then means nothing).

All of it is computed on the device and joins the log step's one host copy (engine.records).
"""

from __future__ import annotations

import torch

from gantui.augment import rt_midpoint
from gantui.engine.parts import Parts

PROBE = 64         # images on each side (the held-out slice has at least 64): ~3 % of a log interval's D work at log.every = 10
PROBE_SEED = 19_020
N_VALUES = 5       # train sign mean, held-out sign mean, and the three mean outputs


class OverfitProbe:
    def __init__(self, kind: str, parts: Parts) -> None:
        self.kind = kind
        self.p = parts
        data = parts.data
        hold = getattr(data, "holdout_x", None)
        self.active = hold is not None and len(hold) > 0
        if not self.active:
            return
        n = min(PROBE, len(hold))
        g = torch.Generator().manual_seed(PROBE_SEED)
        hold_idx = torch.randperm(len(hold), generator=g)[:n].to(hold.device)
        train_idx = torch.randperm(len(data.x), generator=g)[:n].to(data.x.device)
        hy = getattr(data, "holdout_y", None)
        self.hold, self.hold_y = hold[hold_idx], None if hy is None else hy[hold_idx]
        self.train, self.train_y = data.x[train_idx], None if data.y is None else data.y[train_idx]

    @torch.no_grad()
    def measure(self, fakes: torch.Tensor, fake_y: torch.Tensor | None, label_smoothing: float) -> torch.Tensor:
        """(N_VALUES,) on the device: [train rt, held-out rt, mean D(train), mean D(held out), mean D(fake)]."""
        d = self.p.D
        cond = self.p.conditional
        was = d.training
        d.eval()
        try:
            outs = []
            for x, y in ((self.train, self.train_y), (self.hold, self.hold_y), (fakes, fake_y)):
                x = x.reshape(-1, *self.train.shape[1:]).to(self.train.dtype)
                outs.append(d(x, y if cond else None).float().flatten())
        finally:
            d.train(was)
        mid = rt_midpoint(self.kind, label_smoothing)
        m = 0.0 if mid is None else mid
        tr, ho, fk = outs
        return torch.stack([torch.sign(tr - m).mean(), torch.sign(ho - m).mean(), tr.mean(), ho.mean(), fk.mean()])

    def figures(self, host: list[float], label_smoothing: float) -> dict[str, float]:
        """The record's keys from the N_VALUES host numbers."""
        rt, hold_rt, tr, ho, fk = host
        out: dict[str, float] = {}
        if rt_midpoint(self.kind, label_smoothing) is not None:
            out["d_rt"], out["d_holdout_rt"] = rt, hold_rt
        span = tr - fk
        if span > 1e-6:
            out["d_holdout_gap"] = (tr - ho) / span
        return out
