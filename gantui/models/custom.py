"""Your own generator and discriminator, named in a preset (`model.generator`, `model.discriminator`).

gantui wraps them so the rest of the engine sees its own contract (G(z, y) -> images, D(x, y) -> (N,)
logits), and checks them once, before training, with one-line answers:

- G receives a latent of `model.latent_dim`: flat `(N, Z)` or `(N, Z, 1, 1)` (`model.latent_shape`; "auto"
  tries flat, then spatial, once at setup), plus labels `y` (N,) int64 when `model.conditional`:
  `G(z, y)`. It returns images of the data's shape `(N, C, H, W)` in [-1, 1] (end it in tanh).
- D receives images `(N, C, H, W)` (plus `y` when conditional: `D(x, y)`) and returns N values in any
  shape (`(N,)`, `(N, 1)`, `(N, 1, 1, 1)`): raw scores (`model.d_output = "logits"`) or
  probabilities in [0, 1] (a D ending in a sigmoid: `"probabilities"`). Probabilities are turned into
  logits (log p - log(1 - p), clamped at 1e-6 from 0 and 1), so BCE on them is BCE on the
  probabilities, as torch's BCELoss computes it; the config allows them with 'ns' and 'minimax' only.

The user's modules sit under `.net`, so checkpoints hold `generator.net.*` and `discriminator.net.*`.
gantui does not re-initialise them (a factory can apply your own init); `model.spectral_norm` wraps
D's conv and linear layers as it does for gantui's own models.
"""

from __future__ import annotations

import torch
from torch import nn

from gantui import usercode
from gantui.errors import ConfigError

PROB_EPS = 1e-6
PROBE_N = 2   # samples in the setup checks (BatchNorm in train mode needs more than one)


class UserGenerator(nn.Module):
    def __init__(self, net: nn.Module, latent_dim: int, n_classes: int, spatial: bool, where: str) -> None:
        super().__init__()
        self.net = net
        self.latent_dim = latent_dim
        self.n_classes = n_classes      # > 0: conditional, labels are passed on
        self.spatial = spatial
        self.where = where

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.spatial:
            z = z.reshape(z.shape[0], self.latent_dim, 1, 1)
        return self.net(z, y) if self.n_classes else self.net(z)


class UserDiscriminator(nn.Module):
    def __init__(self, net: nn.Module, n_classes: int, probabilities: bool, where: str) -> None:
        super().__init__()
        self.net = net
        self.n_classes = n_classes
        self.probabilities = probabilities
        self.where = where

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        out = self.net(x, y) if self.n_classes else self.net(x)
        if isinstance(out, (tuple, list)):  # (score, features) pairs: the score comes first
            out = out[0]
        out = out.reshape(x.shape[0])
        if self.probabilities:
            out = torch.logit(out.float(), eps=PROB_EPS)
        return out


def _module(spec: str, key: str, kwargs: dict) -> nn.Module:
    obj = usercode.call(spec, key, kwargs, key + "_args")
    if not isinstance(obj, nn.Module):
        raise ConfigError(f"{key} = {spec!r}: expected it to build a torch.nn.Module, got a {type(obj).__name__}")
    return obj


def build(cfg, info) -> tuple[nn.Module, nn.Module]:
    """(G, D) wrapped, on the CPU, checked against the data with `check` (latent shape decided)."""
    from gantui.models.dcgan import apply_spectral_norm

    m = cfg.model
    if info.is_toy:
        raise ConfigError(f"[model] generator = {m.generator!r}: your own models train on images; "
                          f"[data] name = {info.name!r} is a toy mixture")
    n_classes = info.n_classes if m.conditional else 0
    if m.conditional and not info.n_classes:
        raise ConfigError(f"[model] conditional = true but the data ({info.name}) have no labels; "
                          f"use class subfolders (data.labels = 'subfolders') or set conditional = false")
    g_net = _module(m.generator, "model.generator", dict(m.generator_args))
    d_net = _module(m.discriminator, "model.discriminator", dict(m.discriminator_args))
    if m.spectral_norm:
        apply_spectral_norm(d_net)
    G = UserGenerator(g_net, m.latent_dim, n_classes, spatial=m.latent_shape == "spatial", where=m.generator)
    D = UserDiscriminator(d_net, n_classes, probabilities=m.d_output == "probabilities", where=m.discriminator)
    check(cfg, info, G, D)
    return G, D


def _shape(t) -> str:
    return "(" + ", ".join(str(s) for s in t) + ")"


@torch.no_grad()
def check(cfg, info, G: UserGenerator, D: UserDiscriminator) -> None:
    """Run G and D once on PROBE_N samples (eval mode: BatchNorm statistics and spectral norm's
    power iteration untouched, no global RNG drawn) and refuse what will not train, in one line."""
    m = cfg.model
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(PROBE_N, m.latent_dim, generator=gen)
    y = torch.arange(PROBE_N) % max(info.n_classes, 1) if G.n_classes else None
    g_was, d_was = G.training, D.training
    G.eval()
    D.eval()
    try:
        shapes = {"auto": [False, True], "flat": [False], "spatial": [True]}[m.latent_shape]
        first_error = None
        fake = None
        for spatial in shapes:
            G.spatial = spatial
            try:
                fake = G(z, y)
                break
            except Exception as e:  # noqa: BLE001 - the user's G refused this latent shape
                first_error = first_error or e
        if fake is None:
            tried = " and ".join(_shape((PROBE_N, m.latent_dim) + ((1, 1) if s else ())) for s in shapes)
            raise ConfigError(
                f"model.generator = {m.generator!r}: calling it on a latent {tried}"
                f"{' with labels' if G.n_classes else ''} failed: {type(first_error).__name__}: "
                f"{usercode.first_line(first_error)}; set model.latent_dim to the size your G takes "
                f"(and model.latent_shape)")
        if isinstance(fake, (tuple, list)) or not torch.is_tensor(fake):
            raise ConfigError(f"model.generator = {m.generator!r}: expected it to return a tensor of images "
                              f"{_shape((PROBE_N,) + tuple(info.shape))}, got a {type(fake).__name__}")
        want = (PROBE_N,) + tuple(info.shape)
        if tuple(fake.shape) != want:
            raise ConfigError(
                f"model.generator = {m.generator!r}: returned images of shape {_shape(fake.shape)} but the data "
                f"({info.name}) are {_shape(want)} (N, channels, height, width); match data.image_size / "
                f"data.channels to your G or change its arguments")
        if not fake.is_floating_point() or not bool(torch.isfinite(fake).all()):
            raise ConfigError(f"model.generator = {m.generator!r}: returned non-finite or non-float values")
        lo, hi = float(fake.min()), float(fake.max())
        if lo < -1.0 - 1e-4 or hi > 1.0 + 1e-4:
            raise ConfigError(
                f"model.generator = {m.generator!r}: returned values in [{lo:.3g}, {hi:.3g}] but the data are in "
                f"[-1, 1]; end your G in tanh")
        real = fake.detach().clone().clamp_(-1, 1)
        try:
            out = D.net(real, y) if D.n_classes else D.net(real)
        except Exception as e:  # noqa: BLE001
            raise ConfigError(
                f"model.discriminator = {m.discriminator!r}: calling it on images {_shape(want)}"
                f"{' with labels' if D.n_classes else ''} failed: {type(e).__name__}: {usercode.first_line(e)}") \
                from None
        if isinstance(out, (tuple, list)) and out:
            out = out[0]
        if not torch.is_tensor(out):
            raise ConfigError(f"model.discriminator = {m.discriminator!r}: expected a tensor of {PROBE_N} scores, "
                              f"got a {type(out).__name__}")
        if out.numel() != PROBE_N:
            raise ConfigError(
                f"model.discriminator = {m.discriminator!r}: returned {out.numel()} values {_shape(out.shape)} for "
                f"{PROBE_N} images; expected one score per image ((N,), (N, 1) or (N, 1, 1, 1))")
        if m.d_output == "probabilities":
            lo, hi = float(out.min()), float(out.max())
            if lo < 0 or hi > 1:
                raise ConfigError(
                    f"model.discriminator = {m.discriminator!r}: model.d_output = 'probabilities' but it returned "
                    f"{lo:.3g}..{hi:.3g}; a D without a final sigmoid returns logits: set d_output = 'logits'")
    finally:
        G.train(g_was)
        D.train(d_was)
