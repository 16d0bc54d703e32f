"""Toy mixtures from the mode-collapse literature: ring8, grid25, mixture1d.

Raw coordinates, no normalisation: the evaluation's "within 3 std of a mean" rule and the
density plot both read the numbers as DESIGN.md gives them.
"""

from __future__ import annotations

import itertools
import math

import torch

from gantui.data import DataInfo, Dataset
from gantui.errors import DataError

NAMES = ("ring8", "grid25", "mixture1d")

_STD = {"ring8": 0.01, "grid25": 0.05, "mixture1d": 0.35}


def means(name: str, modes: int = 2) -> torch.Tensor:
    """The mixture's component means, float32 (K, dim). `modes` only matters for mixture1d."""
    if name == "ring8":
        angles = [2 * math.pi * i / 8 for i in range(8)]
        return torch.tensor([[math.cos(a), math.sin(a)] for a in angles], dtype=torch.float32)
    if name == "grid25":
        axis = (-4.0, -2.0, 0.0, 2.0, 4.0)
        return torch.tensor(list(itertools.product(axis, axis)), dtype=torch.float32)
    if name == "mixture1d":
        if modes < 1:
            raise DataError(f"[data] modes: expected an integer >= 1 for mixture1d, got {modes!r}")
        return torch.linspace(-2.0, 2.0, modes, dtype=torch.float32).reshape(modes, 1)
    raise DataError(f"[data] name: {name!r} is not a toy data set (toy sets: {', '.join(NAMES)})")


def std(name: str) -> float:
    """The (isotropic) standard deviation of every component."""
    if name not in _STD:
        raise DataError(f"[data] name: {name!r} is not a toy data set (toy sets: {', '.join(NAMES)})")
    return _STD[name]


def mixture_std(centres: torch.Tensor, sigma: float) -> float:
    """Mean per-feature std of an equal-weight mixture: sqrt(var of the means + sigma^2), averaged."""
    var = centres.double().var(dim=0, unbiased=False) + sigma**2
    return float(var.sqrt().mean())


class ToyDataset(Dataset):
    """An infinite Gaussian mixture: pick a component uniformly, add isotropic noise."""

    def __init__(self, name: str, device: torch.device, modes: int = 2):
        self.device = torch.device(device)
        self._means_cpu = means(name, modes)
        self._means = self._means_cpu.to(self.device)
        self._std = std(name)
        dim = self._means.shape[1]
        self.info = DataInfo(name=name, shape=(dim,), n_classes=0, is_toy=True)
        self.real_std = mixture_std(self._means_cpu, self._std)

    def __len__(self) -> int:
        raise TypeError(f"{self.info.name} is an infinite mixture: it has no length")

    def sample(self, batch_size: int) -> tuple[torch.Tensor, None]:
        # Global RNG of the device only, so restoring RNG states on resume replays the batches.
        k = torch.randint(0, self._means.shape[0], (batch_size,), device=self.device)
        noise = torch.randn(batch_size, self._means.shape[1], device=self.device)
        return self._means[k] + self._std * noise, None

    def real_batch(self, n: int, seed: int) -> tuple[torch.Tensor, None]:
        # Drawn on the CPU with a private generator: the same points on every device.
        g = torch.Generator().manual_seed(seed)
        k = torch.randint(0, self._means_cpu.shape[0], (n,), generator=g)
        noise = torch.randn(n, self._means_cpu.shape[1], generator=g)
        return (self._means_cpu[k] + self._std * noise).to(self.device), None
