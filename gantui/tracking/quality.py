"""Live quality for your own loop: FID and KID of G's samples against the real images given to
`gantui.track`, by `gantui eval`'s definitions, every `eval_every` steps (off unless asked for).

The feature space is the one `gantui eval` uses for unlabelled images: Inception when its weights
are installed, else an autoencoder trained once on exactly these real images (cached by their
hash), at `track()` with progress lines, not at the first measurement. Nothing here may change the
training: the noise is private, G is drawn in eval mode, and the autoencoder's training runs
inside `fork_rng`, so the script's random stream is the one it would have been without gantui.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from gantui.engine.quality import IMAGE_REAL, IMAGE_SAMPLES, QUALITY_SEED
from gantui.tracking import figures as fig

DATA_NAME = "your-data"   # the cache key's name; the images' hash tells sets apart


class TrackQuality:
    def __init__(self, G: torch.nn.Module, real: torch.Tensor, latent_dim: int, latent_shape: str,
                 device: torch.device, every: int, log: Callable[[str], None]) -> None:
        self.G, self.latent_dim, self.latent_shape = G, latent_dim, latent_shape
        self.device, self.every, self.log = device, every, log
        self.failed: str | None = None
        self._last = 0
        self._prepare(real)

    def _forked(self):
        return torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else [])

    def _prepare(self, real: torch.Tensor) -> None:
        from gantui.evaluation import features

        real = real.detach().float()
        with self._forked():
            encoder = None
            if features.find_inception_weights(None) is None:
                encoder = features.load_or_train_encoder(DATA_NAME, real.cpu(), self.device,
                                                         features.DEFAULT_AE_RECIPE, self.log)
            self.space = features.select_feature_space(tuple(real.shape[1:]), None, self.device, None, self.log,
                                                       encoder)
            self.real_feats, _ = self.space.embed(real[:IMAGE_REAL].to(self.device))
        self.log(f"live quality every {self.every} steps: {self.space.name}")

    def due(self, step: int) -> bool:
        """At the first log step `every` steps after the last measurement."""
        if self.failed is None and step - self._last >= self.every:
            self._last = step
            return True
        return False

    @torch.no_grad()
    def measure(self) -> dict[str, Any]:
        """{"fid", "kid"} of this step's G ({} when it cannot be measured: said once, training goes on)."""
        from gantui.evaluation.measure import image_figures

        try:
            with self._forked():
                z = fig.latent(IMAGE_SAMPLES, self.latent_dim, self.latent_shape, QUALITY_SEED, self.device)
                fake = torch.cat([fig.generate(self.G, z[i:i + 250]).float() for i in range(0, len(z), 250)])
                feats, probs = self.space.embed(fake)
                figures = image_figures(self.real_feats, feats, probs, self.space, seed=QUALITY_SEED, kid_subsets=20)
            return {"fid": float(figures["fid"]), "kid": float(figures["kid"].kid)}
        except Exception as e:  # noqa: BLE001 - a quality measurement must never stop the training
            self.failed = f"{type(e).__name__}: {e}"
            self.log(f"live quality is off for this run: {self.failed}")
            return {}
