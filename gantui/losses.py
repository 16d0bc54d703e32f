"""GAN losses as pure functions of D's raw outputs, plus the gradient penalties.

`real_out`, `fake_out` are D's raw scores (B,): logits for the probability losses, critic
values otherwise. Everything is computed in float32 (`.float()`), so the functions are safe
inside autocast. sigma = sigmoid, sp = softplus, s = label_smoothing, means over the batch.

  kind      D minimises                                   G minimises
  ns        BCE(real, 1-s) + BCE(fake, 0)                 BCE(fake, 1) = sp(-fake)       (non-saturating)
  minimax   BCE(real, 1-s) + BCE(fake, 0)                 log(1 - sigma(fake)) = -sp(fake)   (Goodfellow's original)
  wgan      fake - real                                   -fake
  wgan_gp   fake - real   (+ lambda * gradient_penalty, added by the trainer)   -fake
  lsgan     0.5 (real - (1-s))^2 + 0.5 fake^2             0.5 (fake - 1)^2
  hinge     relu(1 - real) + relu(1 + fake)               -fake

Label smoothing is one-sided (real targets only, Salimans et al. 2016) and only means
something for the target-based losses ns, minimax and lsgan; the others ignore it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gantui.vocab.losses import LOSS_KINDS as KINDS
from gantui.vocab.losses import PROBABILITY_LOSSES


def _check(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown loss kind {kind!r}; expected one of {', '.join(KINDS)}")


def d_loss(kind: str, real_out: Tensor, fake_out: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Discriminator (critic) loss, a float32 scalar. Lower when real scores rise / fake fall."""
    _check(kind)
    real, fake = real_out.float(), fake_out.float()
    target = 1.0 - label_smoothing
    if kind in PROBABILITY_LOSSES:
        return (F.binary_cross_entropy_with_logits(real, torch.full_like(real, target))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    if kind in ("wgan", "wgan_gp"):
        return fake.mean() - real.mean()
    if kind == "lsgan":
        return 0.5 * (real - target).pow(2).mean() + 0.5 * fake.pow(2).mean()
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()  # hinge


def g_loss(kind: str, fake_out: Tensor) -> Tensor:
    """Generator loss, a float32 scalar. Lower when D scores the fakes as more real."""
    _check(kind)
    fake = fake_out.float()
    if kind == "ns":
        return F.softplus(-fake).mean()  # = BCE(fake, 1) = -log sigma(fake)
    if kind == "minimax":
        return -F.softplus(fake).mean()  # = log(1 - sigma(fake)); saturates when D wins, kept for teaching
    if kind == "lsgan":
        return 0.5 * (fake - 1.0).pow(2).mean()
    return -fake.mean()  # wgan, wgan_gp, hinge


def _grad_norm_sq(D, x: Tensor, y: Tensor | None) -> Tensor:
    """Per-sample ||dD(x)/dx||^2 (B,), kept differentiable (create_graph) so the penalty trains D."""
    out = D(x, y)
    (grad,) = torch.autograd.grad(out.float().sum(), x, create_graph=True)
    return grad.float().flatten(1).pow(2).sum(dim=1)


def gradient_penalty(D, real: Tensor, fake: Tensor, y: Tensor | None = None) -> Tensor:
    """WGAN-GP (Gulrajani et al., 2017): mean over the batch of (||grad_xhat D(xhat)||_2 - 1)^2
    with xhat = eps * real + (1 - eps) * fake, eps ~ U(0, 1) per sample from torch's global RNG
    (so a resumed run that restores the RNG draws the same eps). Any input shape (B, ...).
    The caller multiplies by lambda. `y` is passed to D (the same labels for real and fake)."""
    real, fake = real.detach().float(), fake.detach().float()
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    xhat = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
    # the tiny epsilon keeps the norm's own gradient finite where D is flat (grad exactly 0)
    norm = (_grad_norm_sq(D, xhat, y) + 1e-12).sqrt()
    return (norm - 1.0).pow(2).mean()


def r1_penalty(D, real: Tensor, y: Tensor | None = None) -> Tensor:
    """R1 (Mescheder et al., 2018): mean over real samples of ||grad_x D(x)||^2.
    The caller multiplies by gamma / 2."""
    x = real.detach().float().requires_grad_(True)
    return _grad_norm_sq(D, x, y).mean()


def decision_midpoint(kind: str, label_smoothing: float = 0.0) -> float | None:
    """Where D's score (as score_metric gives it) changes its call from fake to real: halfway
    between its targets. Probability losses and LSGAN aim real at 1 - s and fake at 0; hinge at
    +1 and -1 (smoothing does not apply). Critics have no targets: None."""
    _check(kind)
    if kind in PROBABILITY_LOSSES or kind == "lsgan":
        return (1.0 - label_smoothing) / 2
    if kind == "hinge":
        return 0.0
    return None


def score_metric(kind: str, out: Tensor) -> Tensor:
    """Per-sample value averaged into d_real / d_fake: D's probability sigma(out) for the
    probability losses, the raw critic score otherwise. Detached, float32."""
    _check(kind)
    out = out.detach().float()
    return torch.sigmoid(out) if kind in PROBABILITY_LOSSES else out
