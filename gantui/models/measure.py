"""A dry run that measures what a model costs in memory, for models whose size a config cannot
tell (your own, gantui.models.custom): parameters counted, and the activation elements autograd
saves for backward in one forward pass of G then D, per sample.

Measured at two batch sizes, so what does not grow with the batch (the weights autograd also
saves) drops out of the per-sample figure. Runs in eval mode under no RNG: BatchNorm's running
statistics, spectral norm's power iteration and torch's global RNG are left as they were.
"""

from __future__ import annotations

import torch
from torch import nn

SIZES = (2, 4)


def _saved_elements(G: nn.Module, D: nn.Module, latent_dim: int, n: int) -> tuple[int, int]:
    """Elements autograd saves in G(z) and in D(G(z)) for a batch of n (CPU, float32 equivalent)."""
    counts = {"g": 0, "d": 0}
    which = ["g"]

    def pack(t):
        if not isinstance(t, nn.Parameter):
            counts[which[0]] += t.numel() * t.element_size() // 4
        return t

    gen = torch.Generator().manual_seed(0)
    z = torch.randn(n, latent_dim, generator=gen)
    y = torch.zeros(n, dtype=torch.long)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fake = G(z, y)
        which[0] = "d"
        D(fake, y)
    return counts["g"], counts["d"]


def activation_counts(G: nn.Module, D: nn.Module, latent_dim: int) -> tuple[int, int, int, int]:
    """(G params, G activations per sample, D params, D activations per sample), as
    gantui.memory.model_counts gives them for gantui's own models."""
    g_was, d_was = G.training, D.training
    G.eval()
    D.eval()
    try:
        device = next(G.parameters()).device
        if device.type != "cpu":
            raise RuntimeError("measure on the CPU, before the models move")
        (g1, d1), (g2, d2) = (_saved_elements(G, D, latent_dim, n) for n in SIZES)
    finally:
        G.train(g_was)
        D.train(d_was)
    step = SIZES[1] - SIZES[0]
    g_params = sum(p.numel() for p in G.parameters())
    d_params = sum(p.numel() for p in D.parameters())
    return g_params, max(0, (g2 - g1) // step), d_params, max(0, (d2 - d1) // step)
