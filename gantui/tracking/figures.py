"""What `run.step(...)` is given and what gantui measures itself, turned into a metrics record.

The per-step part is cheap and never copies to the host: tensors are detached and kept (a
tensor on the GPU stays there), numbers are kept as they are. At a log step everything the
interval needs (the figures, |grad G| and |grad D| read from the modules' `.grad`, a weight
finiteness check, the fixed-noise batch's spread) goes through ONE device -> host copy, as in
the trainer's `Recorder`.

Losses and any other key ending in `_loss` (and `gp`) are means over the log interval; every
other figure is its value at the logged step, as in a `gantui run` record.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from gantui.engine.records import MEAN_KEYS, class_pdists, mean_pdist
from gantui.engine.step import grad_norm


# keys of a record gantui writes itself (the script's figures must not overwrite them)
RESERVED = frozenset({"step", "time", "health", "steps_per_s", "lr_g", "lr_d", "sample_std", "sample_pdist",
                      "class_pdist", "class_pdist_min"})


def is_mean_key(key: str) -> bool:
    return key in MEAN_KEYS or key.endswith("_loss")


class Figures:
    """The figures of one log interval, accumulated without a host copy."""

    def __init__(self) -> None:
        self.sums: dict[str, list[Any]] = {}
        self.last: dict[str, Any] = {}

    def add(self, figures: dict[str, Any]) -> None:
        for key, value in figures.items():
            if key in RESERVED:
                raise TypeError(f"gantui: run.step({key}=...): {key!r} is written by gantui itself; name it otherwise")
            if isinstance(value, torch.Tensor):
                value = value.detach()
            elif isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"gantui: run.step({key}=...): expected a number or a tensor, "
                                f"got {type(value).__name__}")
            if is_mean_key(key):
                self.sums.setdefault(key, []).append(value)
            else:
                self.last[key] = value

    def __bool__(self) -> bool:
        return bool(self.sums or self.last)

    def take(self) -> tuple[dict[str, float], list[str], list[torch.Tensor]]:
        """(host numbers, names of device values, device values as 0-d float tensors); resets."""
        numbers: dict[str, float] = {}
        names: list[str] = []
        tensors: list[torch.Tensor] = []

        def put(key: str, value: Any) -> None:
            if isinstance(value, torch.Tensor):
                names.append(key)
                tensors.append(value.float().mean().reshape(()))  # a 0-d tensor, or a batch's mean
            else:
                numbers[key] = float(value)

        for key, values in self.sums.items():
            if any(isinstance(v, torch.Tensor) for v in values):
                dev = next(v.device for v in values if isinstance(v, torch.Tensor))
                put(key, torch.stack([v.float().mean().reshape(()) if isinstance(v, torch.Tensor)
                                      else torch.tensor(float(v), device=dev) for v in values]).mean())
            else:
                numbers[key] = math.fsum(float(v) for v in values) / len(values)
        for key, value in self.last.items():
            put(key, value)
        self.sums, self.last = {}, {}
        return numbers, names, tensors


@torch.no_grad()
def measured(G: torch.nn.Module | None, D: torch.nn.Module | None, given: set[str], fixed_z: torch.Tensor | None,
             device: torch.device, fixed_y: torch.Tensor | None = None, class_ref: torch.Tensor | None = None
             ) -> tuple[list[str], list[torch.Tensor], torch.Tensor | None]:
    """What gantui reads itself at a log step, on the device: (names, values, the live fixed-noise
    batch or None). Every value is 0-d but `_class_pdist` (a conditional G with real labels given:
    each class's spread in the fixed batch over the real class's, as the trainer records it).
    Gradient norms are read from `.grad` as they are at this call (a figure the script passed
    itself wins)."""
    names: list[str] = []
    values: list[torch.Tensor] = []
    for key, module in (("grad_norm_g", G), ("grad_norm_d", D)):
        if module is not None and key not in given:
            params = [p for p in module.parameters() if p.grad is not None]
            if params:
                names.append(key)
                values.append(grad_norm(params).to(device))
    params = [p for m in (G, D) if m is not None for p in m.parameters()]
    if params:
        names.append("_weights")
        values.append(torch.stack(torch._foreach_norm(params)).float().sum().to(device))
    batch = None
    if G is not None and fixed_z is not None:
        batch = generate(G, fixed_z, fixed_y).float()
        flat = batch.flatten(1)
        names += ["sample_std", "_sample_pdist"]
        values += [flat.std(0).mean(), mean_pdist(flat)]
        if fixed_y is not None and class_ref is not None:
            names.append("_class_pdist")
            values.append(class_pdists(flat, fixed_y, len(class_ref)) / class_ref)
    return names, values, batch


@torch.no_grad()
def generate(G: torch.nn.Module, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """G on the fixed noise (and labels, for a conditional G) in eval mode (no BatchNorm statistics
    change: the training is untouched)."""
    was_training = G.training
    G.eval()
    try:
        out = G(z) if y is None else G(z, y)
    finally:
        G.train(was_training)
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out


LATENT_ATTRS = ("latent_dim", "nz", "z_dim", "zdim", "dim_z", "noise_dim", "latent_size")


def latent_guess(G: torch.nn.Module) -> tuple[int | None, str]:
    """(latent size, "flat" | "spatial") from an attribute G has, else its first layer's input."""
    for attr in LATENT_ATTRS:
        v = getattr(G, attr, None)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            first = first_layer(G)
            return v, "spatial" if isinstance(first, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) else "flat"
    first = first_layer(G)
    if isinstance(first, torch.nn.Linear):
        return first.in_features, "flat"
    if isinstance(first, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
        return first.in_channels, "spatial"
    return None, "flat"


def first_layer(G: torch.nn.Module) -> torch.nn.Module | None:
    for m in G.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            return m
    return None


def latent(n: int, dim: int, shape: str, seed: int, device: torch.device) -> torch.Tensor:
    """Fixed noise from a private generator: the script's own random stream is left untouched."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, dim, generator=gen)
    if shape == "spatial":
        z = z.reshape(n, dim, 1, 1)
    return z.to(device)
