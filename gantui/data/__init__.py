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
from gantui.memory import STD_CHUNK_VALUES  # the memory estimate counts these chunks

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


class UnitView:
    """uint8 images (N, C, H, W) seen as float32 in [-1, 1], converted per index: a folder of 100,000
    images is held in a quarter of the memory. Indexing gives exactly the values a float copy held
    (b / 127.5 - 1, the same float ops), so batches, digests and resumes are unchanged."""

    def __init__(self, raw: torch.Tensor) -> None:
        self.raw = raw
        self.shape = tuple(raw.shape)
        self.device = raw.device
        self.dtype = torch.float32

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, idx) -> torch.Tensor:
        return self.raw[idx].float().div_(127.5).sub_(1.0)

    def float(self) -> torch.Tensor:
        return self[:]

    def nbytes(self) -> int:
        return self.raw.numel()

    def __getattr__(self, name: str):
        """Any other tensor method (`.min()`, `.mean(...)`) on the whole set as float32: a copy, for
        inspection, never on the training path."""
        if name.startswith("_") or name == "raw":
            raise AttributeError(name)
        return getattr(self.float(), name)


class Dataset:
    """A finite set held as one tensor on the device (images in [-1, 1]), labels optional; or as uint8
    behind a UnitView (folders)."""

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
        self.x = x if isinstance(x, UnitView) else x.float().contiguous()
        self.y = None if y is None else y.to(device=x.device, dtype=torch.long)
        self.device = x.device
        # Per-feature std across the set, averaged: the collapse alert compares G's spread to this.
        self.real_std = float(feature_std(self.x)) if real_std is None else float(real_std)

    def __len__(self) -> int:
        return len(self.x)

    def nbytes(self) -> int:
        """Bytes the set holds on its device (labels included)."""
        held = self.x.nbytes() if isinstance(self.x, UnitView) else self.x.numel() * self.x.element_size()
        return held + (0 if self.y is None else self.y.numel() * 8)

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
    n = len(x)
    width = 1
    for d in x.shape[1:]:
        width *= d
    # a chunk at a time: float64 (and, for a folder's uint8, float32) copies of at most 4M values (48 MB),
    # never of the whole set (CIFAR-10 in float64 would be 1.2 GB)
    chunk = max(1, min(chunk, STD_CHUNK_VALUES // width))
    s = torch.zeros(width, dtype=torch.float64, device=x.device)
    s2 = torch.zeros_like(s)
    for i in range(0, n, chunk):
        part = x[i : i + chunk].reshape(-1, width).to(torch.float64, copy=True)  # ours to square in place
        s += part.sum(0)
        s2 += part.square_().sum(0)  # in place: no second chunk-sized buffer
    var = (s2 / n - (s / n) ** 2).clamp_min(0)
    return var.sqrt().mean()


def load_dataset(cfg: "DataConfig", device: torch.device | str, seed: int, progress=None) -> Dataset:
    """Build the data set `cfg.name` on `device`. `seed` draws `digits` (other sets ignore it).
    `progress(message)` hears how the first read of a folder or a data.dataset goes."""
    device = torch.device(device)
    name = cfg.name
    if name == "dataset":
        from gantui.data.userdata import load_user_dataset

        return load_user_dataset(cfg, device, progress)
    if name == "folder":
        from gantui.data.vision import load_folder_set

        return load_folder_set(cfg, device, progress)
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
