"""Live quality: every `log.eval_every` steps, the generator judged on the training device by the
same definitions as `gantui eval`, so "is it getting better?" is answered while it trains.

- toy mixtures: `modes_captured`, `modes_total`, `hq_fraction`, `modes_lost` (indices of the modes
  with no high-quality sample), `modes_captured_strict` (modes with at least 20 HQ samples) and
  `mode_histogram` (HQ samples per mode) on 2,500 samples, and `w1` (exact 1-D Wasserstein-1) for mixture1d;
- images: `fid` and `kid` in the feature space `gantui eval` uses (a classifier trained once per
  labelled data set, a self-supervised encoder for unlabelled ones; cached), against a fixed real
  reference drawn once; for labelled data also `class_coverage`, `classes_missing`,
  `class_histogram` (confident samples per class), `class_coverage_strict` (share of the classes
  with at least 20 of them), `confident_fraction` and `is`, an
  Inception-Score-style exp(E[KL(p(y|x) || p(y))]) from that classifier's class probabilities
  (gantui's classifier, not Inception: comparable within one data set only).

The generator measured is the one `gantui sample`/`eval` use (EMA when there is one). Nothing here
may change the training: the noise comes from a private generator, the models are put in eval
mode and back, and anything that draws from torch's global RNG (training the feature network the
first time) runs inside `fork_rng`, so a resumed run stays bit-identical to a straight one.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from gantui.vocab import criteria
from gantui.config import Config
from gantui.engine.parts import Parts
from gantui.evaluation.toy_metrics import STRICT_MIN_HQ  # the strict count's 20, for classes too

IMAGE_SAMPLES = 1000        # generated images per measurement (FID's bias is larger, its trend is what counts)
IMAGE_REAL = 2000           # the fixed real reference
QUALITY_SEED = 7_777        # the measurement's own noise, the same at every measurement
LIVE_KID_SUBSETS = 20       # KID subsets per live measurement (eval uses 100)
GENERATE_CHUNK = 250        # generated per forward pass: larger batches run slower on a CPU (cache)


class LiveQuality:
    def __init__(self, cfg: Config, parts: Parts, notify: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.p = parts
        self.every = cfg.log.eval_every
        self.notify = notify or (lambda msg: None)
        self.info = parts.data.info
        self._space = None
        self._real_feats: torch.Tensor | None = None
        self._reference = None      # the real reference's FID/KID statistics, computed once
        self.failed: str | None = None

    def due(self, step: int) -> bool:
        return self.every > 0 and step > 0 and step % self.every == 0 and self.failed is None

    def will_measure(self, start: int, end: int) -> bool:
        """Whether a measurement falls in the steps (start, end]."""
        return self.every > 0 and self.failed is None and end // self.every > start // self.every

    def prepare(self) -> None:
        """The one-time work of image measurements (the feature network, loaded or trained once per data
        set, the real reference's features and statistics, torchmetrics' import), done before the
        training starts rather than inside the first measurement. Toy data needs none."""
        if self.info.is_toy or self._space is not None or self.failed is not None:
            return
        devices = [self.p.device] if self.p.is_cuda else []
        with torch.random.fork_rng(devices=devices):
            try:
                self._setup_images()
            except Exception as e:  # noqa: BLE001 - a quality measurement must never stop the training
                self.failed = f"{type(e).__name__}: {e}"
                self.notify(f"live quality is off for this run: {self.failed}")

    @torch.inference_mode()
    def _generate(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        g = self.p.G_ema if self.p.G_ema is not None else self.p.G
        gen = torch.Generator().manual_seed(QUALITY_SEED)
        z = torch.randn(n, g.latent_dim, generator=gen).to(self.p.device)
        y = None
        if self.info.n_classes and self.p.conditional:
            y = (torch.arange(n) % self.info.n_classes).to(self.p.device)
        was_training = g.training
        g.eval()
        c = GENERATE_CHUNK
        out = [g(z[i:i + c], None if y is None else y[i:i + c]).float() for i in range(0, n, c)]
        g.train(was_training)
        return torch.cat(out), y

    def measure(self) -> dict[str, Any]:
        """The quality keys of this step's metrics record ({} when they cannot be measured)."""
        devices = [self.p.device] if self.p.is_cuda else []
        with torch.random.fork_rng(devices=devices):
            try:
                return self._toy() if self.info.is_toy else self._images()
            except Exception as e:  # noqa: BLE001 - a quality measurement must never stop the training
                self.failed = f"{type(e).__name__}: {e}"
                self.notify(f"live quality is off for this run: {self.failed}")
                return {}

    # --- toy mixtures ---------------------------------------------------------------------------
    def _toy(self) -> dict[str, Any]:
        from gantui.evaluation.measure import TOY_SAMPLES, toy_figures

        name = self.cfg.data.name
        fake, _ = self._generate(TOY_SAMPLES)
        pts = fake.cpu().numpy()
        real = None
        if name == "mixture1d":
            real = self.p.data.real_batch(TOY_SAMPLES, seed=QUALITY_SEED + 1)[0].cpu().numpy()
        report, w1 = toy_figures(self.cfg.data, pts, real)
        hist = np.asarray(report.histogram)
        out: dict[str, Any] = {"modes_captured": int(report.modes_captured), "modes_total": int(report.modes_total),
                               "hq_fraction": float(report.hq_fraction),
                               "mode_score": criteria.mode_score(int(report.modes_captured),
                                                                 int(report.modes_total), float(report.hq_fraction)),
                               "modes_lost": [int(i) for i in np.flatnonzero(hist == 0)],
                               "modes_captured_strict": int(report.modes_captured_strict),
                               "mode_histogram": [int(c) for c in hist]}
        if w1 is not None:
            out["w1"] = float(w1)
        return out

    # --- images ---------------------------------------------------------------------------------
    def _setup_images(self) -> None:
        from gantui.evaluation import image_metrics as im
        from gantui.evaluation.measure import feature_space

        self.notify("live quality: preparing the feature network (trained once per data set, then cached)…")
        self._space = feature_space(self.cfg, self.info, self.p.device, log=self.notify, data=self.p.data)
        real, _ = self.p.data.real_batch(min(IMAGE_REAL, len(self.p.data)), seed=QUALITY_SEED + 2)
        with torch.inference_mode():
            feats, _ = self._space.embed(real)
        self._real_feats = feats.clone()  # a normal tensor (inference tensors cannot enter autograd later)
        self._reference = im.RealReference(self._real_feats, subsets=LIVE_KID_SUBSETS, seed=QUALITY_SEED)
        self._reference.fid(self._real_feats[: len(self._real_feats) // 2])  # imports torchmetrics now, once
        self.notify(f"live quality: {self._space.name}")

    def _images(self) -> dict[str, Any]:
        from gantui.evaluation.measure import image_figures

        if self._space is None:
            self._setup_images()
        fake, _ = self._generate(IMAGE_SAMPLES)
        with torch.inference_mode():
            feats, probs = self._space.embed(fake)
        figures = image_figures(self._real_feats, feats, probs, self._space, seed=QUALITY_SEED,
                                kid_subsets=LIVE_KID_SUBSETS, reference=self._reference)
        out: dict[str, Any] = {"fid": float(figures["fid"])}
        out["kid"] = figures["kid"].kid
        if figures["classes"] is not None:
            rep = figures["classes"]
            out["class_coverage"] = float(rep.class_coverage)
            out["classes_missing"] = [i for i, c in enumerate(rep.class_histogram) if c == 0]
            # the share each class receives, not one stray sample (issue 19): the histogram of the
            # confident samples, and the classes holding at least 20 of them (the toy strict count's 20)
            out["class_histogram"] = [int(c) for c in rep.class_histogram]
            out["class_counts"] = [int(c) for c in rep.class_counts]
            out["class_coverage_strict"] = float(sum(c >= STRICT_MIN_HQ for c in rep.class_histogram)
                                                 / max(1, rep.n_classes))
            out["confident_fraction"] = float(rep.confident_fraction)
            out["is"] = inception_style_score(probs)
        return out


def inception_style_score(probs: torch.Tensor) -> float:
    """exp(E_x[KL(p(y|x) || p(y))]) of class probabilities (N, K): 1 when every sample gets the same
    class distribution, K when each sample is one sure class and the classes are balanced."""
    p = probs.double().clamp_min(1e-12)
    marginal = p.mean(0, keepdim=True)
    kl = (p * (p.log() - marginal.log())).sum(1).mean()
    return float(math.exp(float(kl)))
