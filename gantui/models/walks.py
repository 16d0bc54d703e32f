"""Latent walks: points along a path between two latent vectors, the classic look at what a generator
learned (a smooth walk means it learned a manifold; sudden jumps, or a walk that shows training
images whole, point to memorisation).

- `lerp`: the straight line (1 - t) a + t b;
- `slerp`: the great-circle arc (Shoemake 1985; White 2016, "Sampling Generative Networks"),
  sin((1 - t) W)/sin W a + sin(t W)/sin W b with W the angle between a and b. For Gaussian latents
  the straight line passes near the origin, where a sample's norm is atypical (a 512-d N(0, I) vector
  has norm ~22.6; the line's midpoint between two of them ~16); the arc keeps the norm near the ends'.
  When a and b are (almost) parallel the arc is the line (sin W -> 0), and lerp is used; when they are
  exactly opposite the arc is not defined (every great circle joins them), and lerp is used too.

Pure functions of torch tensors: (..., D) in, (..., T, D) out.
"""

from __future__ import annotations

import torch

METHODS = ("slerp", "linear")
_PARALLEL = 1e-6  # |sin W| below which the arc is taken as the line


def fractions(steps: int) -> torch.Tensor:
    """t = 0, 1/(steps-1), ..., 1 (both ends included; steps >= 2)."""
    if steps < 2:
        raise ValueError(f"a walk needs at least 2 steps, got {steps}")
    return torch.linspace(0.0, 1.0, steps, dtype=torch.float64)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(..., D), (..., D), (T,) -> (..., T, D)."""
    a64, b64, t64 = a.double().unsqueeze(-2), b.double().unsqueeze(-2), t.double().unsqueeze(-1)
    return ((1 - t64) * a64 + t64 * b64).to(a.dtype)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(..., D), (..., D), (T,) -> (..., T, D) along the arc from a to b (lerp where it is undefined)."""
    a64, b64 = a.double(), b.double()
    na, nb = a64.norm(dim=-1, keepdim=True), b64.norm(dim=-1, keepdim=True)
    cos = ((a64 * b64).sum(-1, keepdim=True) / (na * nb).clamp_min(1e-300)).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)                          # (..., 1)
    sin = torch.sin(omega)
    t64 = t.double()
    wa = torch.sin((1 - t64) * omega) / sin.clamp_min(1e-300)   # (..., T)
    wb = torch.sin(t64 * omega) / sin.clamp_min(1e-300)
    arc = wa.unsqueeze(-1) * a64.unsqueeze(-2) + wb.unsqueeze(-1) * b64.unsqueeze(-2)
    degenerate = (sin.abs() < _PARALLEL) | (na == 0) | (nb == 0)      # (..., 1)
    line = lerp(a64, b64, t64)
    return torch.where(degenerate.unsqueeze(-1), line, arc).to(a.dtype)


def walk(a: torch.Tensor, b: torch.Tensor, steps: int, method: str = "slerp") -> torch.Tensor:
    if method not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    t = fractions(steps)
    return slerp(a, b, t) if method == "slerp" else lerp(a, b, t)
