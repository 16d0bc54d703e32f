"""Class-conditional DCGAN: G(z, y) and D(x, y).

G: a learned label embedding is concatenated to z before the DCGAN projection (Mirza &
Osindero, 2014), so every layer sees the class.
D: projection discriminator (Miyato & Koyama, 2018): score = head(h) + <embed(y), h> with
h the flattened DCGAN features. Cheaper and more stable than concatenating label maps to the
image, and it works with spectral norm (applied to the projection embedding too).
"""

from __future__ import annotations

import torch
from torch import nn

from gantui.errors import ConfigError
from gantui.models.dcgan import (
    DCGANDiscriminator,
    DCGANGenerator,
    apply_spectral_norm,
    image_plan,
    init_weights_dcgan,
)


def _need_labels(y, who: str) -> torch.Tensor:
    if y is None:
        raise ValueError(f"the conditional {who} needs class labels y (B,) int64, got None")
    return y


class ConditionalGenerator(DCGANGenerator):
    def __init__(self, latent_dim: int, shape: tuple[int, int, int], width: int, n_classes: int):
        # a small embedding is plenty for 10 classes; it has z's N(0, 1) scale at init
        embed_dim = min(latent_dim, 32)
        super().__init__(latent_dim, shape, width, in_dim=latent_dim + embed_dim)
        self.n_classes = n_classes
        self.embed = nn.Embedding(n_classes, embed_dim)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = _need_labels(y, "generator")
        return self.decode(torch.cat([z, self.embed(y).to(z.dtype)], dim=1))


class ConditionalDiscriminator(DCGANDiscriminator):
    def __init__(self, shape: tuple[int, int, int], width: int, n_classes: int, batch_norm: bool = False,
                 dropout: float = 0.0):
        super().__init__(shape, width, batch_norm=batch_norm, dropout=dropout)
        self.n_classes = n_classes
        self.embed = nn.Embedding(n_classes, self.feature_dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = _need_labels(y, "discriminator")
        h = self.features(x)
        score = self.head(h).squeeze(1) + (self.embed(y).to(h.dtype) * h).sum(dim=1)
        return score.float()


def build(m, info) -> tuple[nn.Module, nn.Module]:
    """m: ModelConfig; info: DataInfo with images and labels (n_classes > 0)."""
    if info.n_classes <= 0:
        raise ConfigError(
            f"[model] arch: 'conditional' needs labelled data, but data {info.name!r} has no classes; "
            f"use arch = 'dcgan' or a labelled set (digits, mnist, fashion_mnist, cifar10)")
    shape = tuple(info.shape)
    image_plan(shape, "conditional")
    G = ConditionalGenerator(m.latent_dim, shape, m.g_width, info.n_classes)
    D = ConditionalDiscriminator(shape, m.d_width, info.n_classes, batch_norm=m.batch_norm_d, dropout=m.dropout_d)
    G.apply(init_weights_dcgan)
    D.apply(init_weights_dcgan)
    # the projection has the head's scale at init, so neither term drowns the other
    nn.init.normal_(D.embed.weight, 0.0, 0.02)
    if m.spectral_norm:
        apply_spectral_norm(D)
    return G, D
