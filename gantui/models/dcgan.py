"""DCGAN-style convolutional G and D for 28, 32 and 64 px images with 1 or 3 channels.

G: project z to a small feature map, then ConvTranspose2d(4, stride 2, pad 1) + BatchNorm + ReLU
doubling the resolution each time, and a last ConvTranspose2d to C channels with tanh.
D mirrors it: strided Conv2d + LeakyReLU(0.2) halving the resolution, BatchNorm only when asked
(never with a gradient penalty: the penalty is per sample and BN mixes samples), and a linear
head on the flattened last map giving one raw score per sample.

Resolution plans (start size, number of stride-2 stages):
  28 -> 7x7, 14, 28        32 -> 4x4, 8, 16, 32        64 -> 4x4, 8, 16, 32, 64
Channels at the stage of lowest resolution are width * 2**(stages - 1), halving per stage,
so `width` is the channel count next to the image (the cheapest knob for CPU speed).

Shared helpers for every arch live here too: `init_weights_dcgan` and `apply_spectral_norm`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from gantui.errors import ConfigError

PLANS = {28: (7, 2), 32: (4, 3), 64: (4, 4)}  # image size -> (start size, stride-2 stages)


# --- helpers shared by all archs ---------------------------------------------------------

def _weight(module: nn.Module) -> torch.Tensor:
    """The trainable weight, also when spectral norm wraps it (writing to the computed
    `module.weight` of a parametrized module would be lost)."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


@torch.no_grad()
def init_weights_dcgan(module: nn.Module) -> None:
    """Radford et al. (2015): conv/linear weights N(0, 0.02), BN weight N(1, 0.02), biases 0.
    Use as `model.apply(init_weights_dcgan)`. Embeddings keep their own init."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(_weight(module), 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def apply_spectral_norm(model: nn.Module) -> nn.Module:
    """Spectral norm (Miyato et al., 2018) on every weight layer of a discriminator.
    Applied after init, so the init writes the plain weight that SN then normalises."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    for m in layers:
        spectral_norm(m)
    return model


def image_plan(shape: tuple[int, ...], arch: str) -> tuple[int, int, int]:
    """(channels, start size, stages) for an image shape, or a ConfigError saying what fits."""
    if len(shape) != 3:
        raise ConfigError(
            f"[model] arch: {arch!r} needs image data (C, H, W), got data of shape {tuple(shape)}; "
            f"use arch = 'mlp' for toy data")
    c, h, w = shape
    if h != w or h not in PLANS:
        raise ConfigError(
            f"[data] image_size: {arch!r} supports square 28, 32 or 64 px images, got {h}x{w}")
    if c not in (1, 3):
        raise ConfigError(f"[data] channels: {arch!r} supports 1 or 3 channels, got {c}")
    start, stages = PLANS[h]
    return c, start, stages


def stage_channels(width: int, stages: int) -> list[int]:
    """Channels per stage, lowest resolution first: [w*2**(n-1), ..., 2w, w]."""
    return [width * 2 ** (stages - 1 - i) for i in range(stages)]


# --- generator ---------------------------------------------------------------------------

class UpBlock(nn.Module):
    """ConvTranspose2d(4, 2, 1) doubles H and W; BN makes the bias redundant."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int, shape: tuple[int, int, int], width: int, in_dim: int | None = None):
        super().__init__()
        self.latent_dim = latent_dim
        self.n_classes = 0
        self.out_shape = tuple(shape)
        c, start, stages = image_plan(shape, "dcgan")
        ch = stage_channels(width, stages)
        self.start = start
        self.start_channels = ch[0]
        # in_dim > latent_dim when a subclass concatenates a label embedding to z
        self.project = nn.Linear(in_dim or latent_dim, ch[0] * start * start, bias=False)
        self.project_bn = nn.BatchNorm2d(ch[0])
        self.blocks = nn.ModuleList(UpBlock(ch[i - 1], ch[i]) for i in range(1, stages))
        self.to_image = nn.ConvTranspose2d(ch[-1], c, 4, 2, 1)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        x = self.project(h).view(h.shape[0], self.start_channels, self.start, self.start)
        x = torch.relu(self.project_bn(x))
        for block in self.blocks:
            x = block(x)
        return torch.tanh(self.to_image(x))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(z)


# --- discriminator -----------------------------------------------------------------------

class DownBlock(nn.Module):
    """Conv2d(4, 2, 1) halves H and W, then optional BN, LeakyReLU(0.2), optional dropout."""

    def __init__(self, c_in: int, c_out: int, batch_norm: bool, dropout: float):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not batch_norm)
        self.bn = nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x):
        return self.drop(self.act(self.bn(self.conv(x))))


class DCGANDiscriminator(nn.Module):
    def __init__(self, shape: tuple[int, int, int], width: int, batch_norm: bool = False, dropout: float = 0.0):
        super().__init__()
        c, start, stages = image_plan(shape, "dcgan")
        ch = stage_channels(width, stages)[::-1]  # highest resolution first: [w, 2w, ...]
        # no BN on the layer that sees the image (DCGAN paper: it destabilises training)
        blocks = [DownBlock(c, ch[0], False, dropout)]
        blocks += [DownBlock(ch[i - 1], ch[i], batch_norm, dropout) for i in range(1, stages)]
        self.blocks = nn.ModuleList(blocks)
        self.feature_dim = ch[-1] * start * start
        self.head = nn.Linear(self.feature_dim, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x.flatten(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        # float32 scores even under autocast: the losses and metrics read them
        return self.head(self.features(x)).squeeze(1).float()


def build(m, info) -> tuple[nn.Module, nn.Module]:
    """m: ModelConfig; info: DataInfo with an image shape (C, H, W)."""
    shape = tuple(info.shape)
    image_plan(shape, "dcgan")
    G = DCGANGenerator(m.latent_dim, shape, m.g_width)
    D = DCGANDiscriminator(shape, m.d_width, batch_norm=m.batch_norm_d, dropout=m.dropout_d)
    G.apply(init_weights_dcgan)
    D.apply(init_weights_dcgan)
    if m.spectral_norm:
        apply_spectral_norm(D)
    return G, D
