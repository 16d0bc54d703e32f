"""Losses against hand computations, sign conventions, gradient penalty, R1, metrics."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gantui.data import DataInfo
from gantui import losses, models
from gantui.config import Config
from gantui.losses import KINDS, d_loss, g_loss, gradient_penalty, r1_penalty, score_metric

Info = DataInfo


def image_info():
    return Info("digits", (1, 28, 28), 10, False)


def toy_info(dim=2):
    return Info("ring8", (dim,), 0, True)


def labels(n):
    return torch.arange(n) % 10


def make(arch, info):
    torch.manual_seed(0)
    cfg = Config().replace("model", arch=arch, g_width=8, d_width=8, latent_dim=16)
    return models.build(cfg, info)


REAL = torch.tensor([0.0, 2.0])
FAKE = torch.tensor([0.0, -1.0])


def sp(x: float) -> float:  # softplus
    return math.log1p(math.exp(x))


def bce(logit: float, target: float) -> float:
    # -(t log sigma(x) + (1 - t) log(1 - sigma(x))) = t sp(-x) + (1 - t) sp(x)
    return target * sp(-logit) + (1 - target) * sp(logit)


def mean(xs):
    return sum(xs) / len(xs)


@pytest.mark.parametrize("kind", ["ns", "minimax"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_probability_d_loss_by_hand(kind, smoothing):
    expected = mean([bce(r, 1 - smoothing) for r in (0.0, 2.0)]) + mean([bce(f, 0.0) for f in (0.0, -1.0)])
    assert d_loss(kind, REAL, FAKE, smoothing).item() == pytest.approx(expected, rel=1e-6)


def test_ns_g_loss_by_hand():
    # BCE(fake, 1) = -log sigma(fake) = sp(-fake)
    assert g_loss("ns", FAKE).item() == pytest.approx(mean([sp(0.0), sp(1.0)]), rel=1e-6)


def test_minimax_g_loss_by_hand():
    # log(1 - sigma(fake)) = -sp(fake)
    expected = mean([math.log(1 - 1 / (1 + math.exp(-f))) for f in (0.0, -1.0)])
    assert g_loss("minimax", FAKE).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("kind", ["wgan", "wgan_gp"])
def test_wgan_by_hand(kind):
    assert d_loss(kind, REAL, FAKE).item() == pytest.approx(-0.5 - 1.0)  # mean(fake) - mean(real)
    assert g_loss(kind, FAKE).item() == pytest.approx(0.5)  # -mean(fake)


def test_lsgan_by_hand():
    # 0.5 mean((real - 1)^2) + 0.5 mean(fake^2) = 0.5 * (1 + 1) / 2 + 0.5 * (0 + 1) / 2
    assert d_loss("lsgan", REAL, FAKE).item() == pytest.approx(0.75)
    # target 0.8: 0.5 * (0.64 + 1.44) / 2 + 0.25
    assert d_loss("lsgan", REAL, FAKE, 0.2).item() == pytest.approx(0.77)
    # 0.5 mean((fake - 1)^2) = 0.5 * (1 + 4) / 2
    assert g_loss("lsgan", FAKE).item() == pytest.approx(1.25)


def test_hinge_by_hand():
    # mean(relu(1 - [0, 2])) + mean(relu(1 + [0, -1])) = 0.5 + 0.5
    assert d_loss("hinge", REAL, FAKE).item() == pytest.approx(1.0)
    assert g_loss("hinge", FAKE).item() == pytest.approx(0.5)


@pytest.mark.parametrize("kind", ["wgan", "wgan_gp", "hinge"])
def test_label_smoothing_ignored_where_it_means_nothing(kind):
    assert d_loss(kind, REAL, FAKE, 0.3).item() == d_loss(kind, REAL, FAKE).item()


@pytest.mark.parametrize("kind", KINDS)
def test_sign_conventions(kind):
    # from a point inside every loss's active region (lsgan's D is not monotone past its targets)
    real, fake = torch.full((4,), 0.25), torch.full((4,), 0.5)
    base = d_loss(kind, real, fake).item()
    assert d_loss(kind, real + 0.5, fake).item() < base  # D better when real scores rise
    assert d_loss(kind, real, fake - 0.5).item() < base  # ... and when fake scores fall
    assert g_loss(kind, fake + 0.5).item() < g_loss(kind, fake).item()  # G better when D rates fakes higher


def test_unknown_kind_raises():
    with pytest.raises(ValueError, match="unknown loss kind"):
        d_loss("bogus", REAL, FAKE)
    with pytest.raises(ValueError, match="unknown loss kind"):
        g_loss("bogus", FAKE)


@pytest.mark.parametrize("kind", KINDS)
def test_losses_are_float32_from_low_precision(kind):
    r, f = REAL.to(torch.bfloat16), FAKE.to(torch.float16)
    assert d_loss(kind, r, f, 0.1).dtype == torch.float32
    assert g_loss(kind, f).dtype == torch.float32
    assert score_metric(kind, f).dtype == torch.float32


def test_score_metric():
    out = torch.tensor([0.0, 2.0, -3.0], requires_grad=True)
    for kind in ("ns", "minimax"):
        assert torch.allclose(score_metric(kind, out), torch.sigmoid(out.detach()))
    for kind in ("wgan", "wgan_gp", "lsgan", "hinge"):
        assert torch.equal(score_metric(kind, out), out.detach())
    assert not score_metric("ns", out).requires_grad


class LinearD(nn.Module):
    """D(x) = <w, flatten(x)>: its input gradient is w everywhere, so ||grad|| = ||w||."""

    def __init__(self, shape, norm: float):
        super().__init__()
        w = torch.randn(math.prod(shape))
        self.w = nn.Parameter(w / w.norm() * norm)

    def forward(self, x, y=None):
        return x.flatten(1) @ self.w


@pytest.mark.parametrize("shape", [(2,), (1,), (1, 28, 28), (3, 8, 8)])
def test_gradient_penalty_zero_for_unit_gradient_norm(shape):
    torch.manual_seed(0)
    D = LinearD(shape, 1.0)
    gp = gradient_penalty(D, torch.randn(5, *shape), torch.randn(5, *shape))
    assert gp.shape == ()
    assert gp.item() < 1e-10


@pytest.mark.parametrize("shape", [(2,), (1, 28, 28)])
def test_gradient_penalty_exact_for_other_norms(shape):
    torch.manual_seed(0)
    D = LinearD(shape, 3.0)
    gp = gradient_penalty(D, torch.randn(5, *shape), torch.randn(5, *shape))
    assert gp.item() == pytest.approx(4.0, rel=1e-5)  # (3 - 1)^2
    gp.backward()  # create_graph: the penalty trains D's weights
    assert D.w.grad is not None and D.w.grad.norm() > 0


def test_gradient_penalty_mixes_per_sample_from_global_rng():
    seen = {}

    class Spy(nn.Module):
        def forward(self, x, y=None):
            seen["x"], seen["y"] = x.detach().clone(), y
            return (x ** 2).flatten(1).sum(1)

    real, fake = torch.ones(6, 1, 4, 4), torch.zeros(6, 1, 4, 4)
    y = torch.arange(6)
    torch.manual_seed(123)
    gp = gradient_penalty(Spy(), real, fake, y)
    torch.manual_seed(123)
    eps = torch.rand(6)
    # xhat_i = eps_i * real_i + (1 - eps_i) * fake_i, one eps per sample
    assert torch.allclose(seen["x"], eps.view(6, 1, 1, 1).expand(6, 1, 4, 4))
    assert seen["y"] is y
    assert gp.item() > 0
    # a fresh seed gives other mixes
    torch.manual_seed(124)
    gradient_penalty(Spy(), real, fake)
    assert not torch.allclose(seen["x"], eps.view(6, 1, 1, 1).expand(6, 1, 4, 4))


def test_gradient_penalty_finite_where_d_is_flat():
    D = LinearD((3,), 0.0)  # grad exactly 0: the norm's own gradient must not be NaN
    D.w.requires_grad_(True)
    gp = gradient_penalty(D, torch.randn(4, 3), torch.randn(4, 3))
    gp.backward()
    assert gp.item() == pytest.approx(1.0, abs=1e-5)
    assert torch.isfinite(D.w.grad).all()


def test_gradient_penalty_through_real_models():
    for arch, info in (("mlp", toy_info(2)), ("dcgan", image_info()), ("conditional", image_info())):
        G, D = make(arch, info)
        y = labels(4)
        fake = G(torch.randn(4, 16), y)
        gp = gradient_penalty(D, torch.randn_like(fake), fake, y)
        gp.backward()
        assert gp.item() > 0
        # every weight is trained by the penalty (biases do not enter the input gradient)
        weights = [p for name, p in D.named_parameters() if not name.endswith("bias")]
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)
        assert all(p.grad is None for p in G.parameters())  # the mix is detached from G


def test_r1_by_hand():
    class Quadratic(nn.Module):
        def forward(self, x, y=None):  # D(x) = 0.5 ||x||^2, grad = x
            return 0.5 * x.pow(2).flatten(1).sum(1)

    real = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    assert r1_penalty(Quadratic(), real).item() == pytest.approx((5 + 9) / 2)
    torch.manual_seed(0)
    D = LinearD((1, 4, 4), 2.0)
    r1 = r1_penalty(D, torch.randn(3, 1, 4, 4))
    assert r1.item() == pytest.approx(4.0, rel=1e-5)  # ||w||^2
    r1.backward()
    assert D.w.grad.norm() > 0


@pytest.mark.parametrize("kind", KINDS)
def test_g_loss_gradient_reaches_g(kind):
    G, D = make("dcgan", image_info())
    fake = G(torch.randn(8, 16), labels(8))
    g_loss(kind, D(fake)).backward()
    grads = [p.grad for p in G.parameters()]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0


def test_d_loss_on_detached_fake_leaves_g_alone():
    G, D = make("dcgan", image_info())
    fake = G(torch.randn(8, 16))
    d_loss("ns", D(torch.randn(8, 1, 28, 28)), D(fake.detach())).backward()
    assert all(p.grad is None for p in G.parameters())
    assert all(p.grad is not None for p in D.parameters())


def test_probability_losses_constant():
    assert losses.PROBABILITY_LOSSES == ("ns", "minimax")
