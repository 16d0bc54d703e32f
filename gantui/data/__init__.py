"""Data sets that live entirely on the training device.

Every set is one tensor (or, for toy mixtures, a formula) on `device`; `sample` indexes it
with torch's global RNG so that a resume which restores the RNG states draws the same
batches, and no DataLoader sits on the hot path.

    load_dataset(cfg.data, device, seed) -> Dataset      # raises DataError

toy.py: ring8, grid25, mixture1d. glyphs.py: offline `digits`. vision.py: mnist,
fashion_mnist, cifar10 (torchvision) and `folder` (any directory of images).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from gantui.errors import DataError

if TYPE_CHECKING:
    from gantui.config import DataConfig

__all__ = ["DataInfo", "Dataset", "load_dataset", "IMAGE_SETS", "TOY_SETS"]

TOY_SETS = ("ring8", "grid25", "mixture1d")
IMAGE_SETS = ("digits", "mnist", "fashion_mnist", "cifar10", "folder")


@dataclass(frozen=True)
class DataInfo:
    name: str
    shape: tuple[int, ...]  # (dim,) for toy data; (C, H, W) for images
    n_classes: int  # 0 when unlabelled
    is_toy: bool


class Dataset:
    """A finite set held as one tensor on the device (images in [-1, 1]), labels optional."""

    info: DataInfo
    real_std: float
    # the slice held out of training (gantui.data.holdout); None when there is none
    holdout_x: torch.Tensor | None = None
    holdout_y: torch.Tensor | None = None
    holdout_index: torch.Tensor | None = None

    def __init__(self, info: DataInfo, x: torch.Tensor, y: torch.Tensor | None = None,
                 real_std: float | None = None):
        if len(x) == 0:
            raise DataError(f"data set {info.name!r} is empty")
        self.info = info
        self.x = x.float().contiguous()
        self.y = None if y is None else y.to(device=x.device, dtype=torch.long)
        self.device = x.device
        # Per-feature std across the set, averaged: the collapse alert compares G's spread to this.
        self.real_std = float(feature_std(self.x)) if real_std is None else float(real_std)

    def __len__(self) -> int:
        return len(self.x)

    def __bool__(self) -> bool:  # never empty; toy mixtures have no length at all
        return True

    def sample(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, *shape) float32, y (B,) int64 or None; uses only the device's global RNG."""
        idx = torch.randint(0, len(self.x), (batch_size,), device=self.device)
        return self.x[idx], None if self.y is None else self.y[idx]

    def real_batch(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """n reproducible real samples (distinct while n <= len); leaves the global RNG alone."""
        g = torch.Generator().manual_seed(seed)
        if n <= len(self.x):
            idx = torch.randperm(len(self.x), generator=g)[:n]
        else:
            idx = torch.randint(0, len(self.x), (n,), generator=g)
        idx = idx.to(self.device)
        return self.x[idx], None if self.y is None else self.y[idx]


def feature_std(x: torch.Tensor, chunk: int = 1 << 16) -> torch.Tensor:
    """Mean over features of the std over samples, in float64 sums so 60,000 images stay exact."""
    flat = x.reshape(len(x), -1)
    s = torch.zeros(flat.shape[1], dtype=torch.float64, device=x.device)
    s2 = torch.zeros_like(s)
    for i in range(0, len(flat), chunk):
        part = flat[i : i + chunk].double()
        s += part.sum(0)
        s2 += (part * part).sum(0)
    n = len(flat)
    var = (s2 / n - (s / n) ** 2).clamp_min(0)
    return var.sqrt().mean()


def load_dataset(cfg: "DataConfig", device: torch.device | str, seed: int) -> Dataset:
    """Build the data set `cfg.name` on `device`. `seed` draws `digits` (other sets ignore it)."""
    device = torch.device(device)
    name = cfg.name
    if name in TOY_SETS:
        from gantui.data.toy import ToyDataset

        return ToyDataset(name, device, modes=cfg.modes)
    if name == "digits":
        from gantui.data.glyphs import load_digits

        return load_digits(cfg, device, seed)
    if name in ("mnist", "fashion_mnist", "cifar10", "folder"):
        from gantui.data.vision import load_vision

        return load_vision(cfg, device)
    raise DataError(
        f"[data] name: unknown data set {name!r} (known: {', '.join(TOY_SETS + IMAGE_SETS)})")
