"""Model registry: `build(cfg, info)` picks the builder named by `cfg.model.arch`.

Every arch gives G(z, y=None) -> (B, *info.shape) (tanh for images, linear for toy data) and
D(x, y=None) -> (B,) float32 raw scores; unconditional models ignore y. G carries
`latent_dim` and `n_classes` (0 when unconditional). Builders are deterministic given torch's
global RNG, and state_dict keys depend only on the config (they become checkpoint keys).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from torch import nn

from gantui.errors import ConfigError
from gantui.models import conditional, dcgan, mlp
from gantui.models.dcgan import apply_spectral_norm, init_weights_dcgan

if TYPE_CHECKING:
    from gantui.config import Config

ARCHS: dict[str, Callable] = {
    "mlp": mlp.build,
    "dcgan": dcgan.build,
    "conditional": conditional.build,
}

__all__ = ["ARCHS", "apply_spectral_norm", "build", "count_params", "init_weights_dcgan"]


def build(cfg: "Config", info) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator), initialised, on the CPU in float32 (the caller moves them).
    `info` is a gantui.data.DataInfo (name, shape, n_classes, is_toy). Raises ConfigError
    when the arch does not fit the data."""
    if cfg.model.custom:  # the user's own classes (gantui.models.custom)
        from gantui.models import custom

        return custom.build(cfg, info)
    arch = cfg.model.arch
    if arch not in ARCHS:
        raise ConfigError(f"[model] arch: expected one of {', '.join(map(repr, ARCHS))}, got {arch!r}")
    return ARCHS[arch](cfg.model, info)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
