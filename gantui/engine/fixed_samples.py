"""The fixed-noise samples the screen shows and the run directory keeps, as numpy arrays.

Drawn on the training thread (like every torch call of a run); consumers only ever see the
`Samples` message's numpy arrays. The EMA generator is drawn when there is one (its warm-up
makes it follow the live one early); for 2-D toy data, D's score on a grid is added.
"""

from __future__ import annotations

import numpy as np
import torch

from gantui.engine import events as ev
from gantui.engine.parts import Parts

FIELD_GRID = 48  # resolution of the discriminator's score field shown behind 2-D toy data


class SampleMaker:
    def __init__(self, parts: Parts, real_points: np.ndarray | None) -> None:
        self.p = parts
        self.real_points = real_points
        self.uses_ema = parts.G_ema is not None

    @torch.no_grad()
    def generate(self) -> torch.Tensor:
        g = self.p.G_ema if self.uses_ema else self.p.G
        was_training = g.training
        g.eval()
        out = g(self.p.fixed_z, self.p.fixed_y)
        g.train(was_training)
        return out

    def make(self, step: int) -> ev.Samples:
        images = self.generate().float().cpu().numpy()
        field = extent = None
        if self.p.data.info.is_toy and images.shape[1] == 2:
            field, extent = self.d_field(images)
        labels = None if self.p.fixed_y is None else self.p.fixed_y.cpu().numpy()
        return ev.Samples(step, images, self.real_points, field, extent, labels,
                          generator="EMA" if self.uses_ema else "live")

    @torch.no_grad()
    def d_field(self, fake: np.ndarray):
        pts = np.concatenate([fake, self.real_points])
        lo, hi = pts.min(0), pts.max(0)
        span = max(float((hi - lo).max()), 1e-3) * 0.6
        mid = (lo + hi) / 2
        extent = (float(mid[0] - span), float(mid[0] + span), float(mid[1] - span), float(mid[1] + span))
        xs = torch.linspace(extent[0], extent[1], FIELD_GRID)
        ys = torch.linspace(extent[2], extent[3], FIELD_GRID)  # row 0 at ymin, as render.density_plot expects
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], -1).reshape(-1, 2).to(self.p.device)
        D = self.p.D
        was_training = D.training
        D.eval()  # no spectral-norm power iteration, no dropout draw: the training is untouched
        scores = D(grid).float()
        D.train(was_training)
        return scores.reshape(FIELD_GRID, FIELD_GRID).cpu().numpy(), extent
