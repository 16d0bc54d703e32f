"""Fully connected G and D, for toy data (shape (dim,)) and for flattened images.

Toy data: G is Linear+ReLU layers with a linear output (the mixtures live in R^dim, not in
[-1, 1]) and no BatchNorm: the toy presets run thousands of steps a second on a CPU, and BN
in a 2-D G mostly adds noise to a tiny batch of points.
Images: G adds BatchNorm1d + LeakyReLU(0.2) (the classic "vanilla GAN" G) and a tanh output
reshaped to (C, H, W).
D: Linear + LeakyReLU(0.2), optional BatchNorm (not on the first layer), optional dropout,
optional spectral norm on every layer; one raw score per sample.
Widths are hidden-layer widths, depths the number of hidden layers. PyTorch's default init.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gantui.models.dcgan import apply_spectral_norm


class Dense(nn.Module):
    """Linear -> optional BN -> activation -> optional dropout, with named parts so that
    state_dict keys read `hidden.0.linear.weight` whatever the options."""

    def __init__(self, d_in: int, d_out: int, act: nn.Module, batch_norm: bool = False, dropout: float = 0.0):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out, bias=not batch_norm)
        self.bn = nn.BatchNorm1d(d_out) if batch_norm else nn.Identity()
        self.act = act
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x):
        return self.drop(self.act(self.bn(self.linear(x))))


class MLPGenerator(nn.Module):
    def __init__(self, latent_dim: int, shape: tuple[int, ...], width: int, depth: int, image: bool):
        super().__init__()
        self.latent_dim = latent_dim
        self.n_classes = 0
        self.out_shape = tuple(shape)
        self.image = image
        dims = [latent_dim] + [width] * depth

        def act():
            return nn.LeakyReLU(0.2, inplace=True) if image else nn.ReLU(inplace=True)

        self.hidden = nn.ModuleList(Dense(dims[i], dims[i + 1], act(), batch_norm=image) for i in range(depth))
        self.out = nn.Linear(width, math.prod(shape))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = z
        for layer in self.hidden:
            h = layer(h)
        x = self.out(h)
        if self.image:
            x = torch.tanh(x)
        return x.view(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, shape: tuple[int, ...], width: int, depth: int, batch_norm: bool = False,
                 dropout: float = 0.0):
        super().__init__()
        dims = [math.prod(shape)] + [width] * depth
        self.hidden = nn.ModuleList(
            Dense(dims[i], dims[i + 1], nn.LeakyReLU(0.2, inplace=True), batch_norm=batch_norm and i > 0,
                  dropout=dropout)
            for i in range(depth))
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = x.flatten(1)
        for layer in self.hidden:
            h = layer(h)
        return self.head(h).squeeze(1).float()  # float32 scores even under autocast


def build(m, info) -> tuple[nn.Module, nn.Module]:
    """m: ModelConfig; info: DataInfo (toy (dim,) or image (C, H, W))."""
    shape = tuple(info.shape)
    image = not info.is_toy
    G = MLPGenerator(m.latent_dim, shape, m.g_width, m.g_depth, image=image)
    D = MLPDiscriminator(shape, m.d_width, m.d_depth, batch_norm=m.batch_norm_d, dropout=m.dropout_d)
    if m.spectral_norm:
        apply_spectral_norm(D)
    return G, D
