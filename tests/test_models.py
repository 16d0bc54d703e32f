"""Models: shapes per arch x size x channels, output ranges, labels, spectral norm, init, state_dict keys."""

from __future__ import annotations

import re

import pytest
import safetensors.torch
import torch
from torch import nn
from torch.nn.utils import parametrize

from gantui.data import DataInfo
from gantui import models
from gantui.config import Config
from gantui.errors import ConfigError
from gantui.models import init_weights_dcgan


Info = DataInfo


def image_info(size=28, channels=1, n_classes=10, name="digits"):
    return Info(name, (channels, size, size), n_classes, False)


def toy_info(dim=2):
    return Info("ring8" if dim == 2 else "mixture1d", (dim,), 0, True)


def make(arch="dcgan", info=None, **model):
    model = {"g_width": 8, "d_width": 8, "latent_dim": 16, **model}
    cfg = Config().replace("model", arch=arch, **model)
    torch.manual_seed(0)
    return models.build(cfg, info or image_info())


def labels(n, n_classes=10):
    return torch.arange(n) % n_classes


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "conditional"])
@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_image_shapes_and_tanh_range(arch, size, channels):
    info = image_info(size, channels)
    G, D = make(arch, info, g_depth=2, d_depth=2)
    assert G.latent_dim == 16
    assert G.n_classes == (10 if arch == "conditional" else 0)
    B = 5
    z, y = torch.randn(B, 16) * 3, labels(B)  # large z to push the output towards tanh's limits
    x = G(z, y)
    assert x.shape == (B, channels, size, size)
    assert x.dtype == torch.float32
    assert x.abs().max() <= 1.0
    out = D(x, y)
    assert out.shape == (B,)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("dim", [1, 2])
def test_toy_mlp_shapes_and_linear_output(dim):
    G, D = make("mlp", toy_info(dim), g_width=32, d_width=32)
    z = torch.randn(7, 16) * 50
    x = G(z)
    assert x.shape == (7, dim)
    assert x.abs().max() > 1.0  # linear output: toy data lives outside [-1, 1] (grid25 reaches +-4)
    assert D(x).shape == (7,)
    # toy G stays simple: no BatchNorm anywhere
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in G.modules())


def test_unconditional_models_ignore_y():
    G, D = make("dcgan")
    z = torch.randn(4, 16)
    G.eval()
    assert torch.equal(G(z), G(z, labels(4)))
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(D(x), D(x, labels(4)))


def test_conditional_uses_its_label():
    G, D = make("conditional")
    G.eval()
    z = torch.randn(1, 16).repeat(10, 1)
    x = G(z, labels(10))
    # the same z with different classes gives different images
    diffs = (x[1:] - x[:1]).abs().flatten(1).amax(dim=1)
    assert (diffs > 1e-4).all()
    # and the discriminator scores the same image differently per class
    img = torch.randn(1, 1, 28, 28).repeat(10, 1, 1, 1)
    scores = D(img, labels(10))
    assert scores.unique().numel() == 10


def test_conditional_needs_labels():
    G, D = make("conditional")
    with pytest.raises(ValueError, match="labels"):
        G(torch.randn(2, 16))
    with pytest.raises(ValueError, match="labels"):
        D(torch.randn(2, 1, 28, 28))


def test_conditional_without_classes_is_a_config_error():
    with pytest.raises(ConfigError, match="labelled"):
        make("conditional", image_info(n_classes=0, name="folder"))


@pytest.mark.parametrize("arch", ["dcgan", "conditional"])
def test_conv_archs_refuse_toy_data(arch):
    with pytest.raises(ConfigError, match="mlp"):
        make(arch, Info("ring8", (2,), 10, True))


def test_unsupported_image_size_is_a_config_error():
    with pytest.raises(ConfigError, match="28, 32 or 64"):
        make("dcgan", image_info(size=48))


def _sn_layers(D):
    return [m for m in D.modules() if parametrize.is_parametrized(m, "weight")]


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "conditional"])
def test_spectral_norm_on_every_d_layer_when_asked(arch):
    _, D = make(arch, spectral_norm=True)
    weighted = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    assert weighted and _sn_layers(D) == weighted
    assert any(".parametrizations.weight.original" in k for k in D.state_dict())
    # SN bounds each layer's largest singular value by ~1
    for m in weighted:
        w = m.weight.detach().flatten(1)
        assert torch.linalg.matrix_norm(w, ord=2) < 1.1


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "conditional"])
def test_no_spectral_norm_unless_asked(arch):
    G, D = make(arch, spectral_norm=False)
    assert _sn_layers(D) == [] and _sn_layers(G) == []


def test_batch_norm_in_d_only_when_asked():
    def has_bn(m):
        return any(isinstance(x, nn.modules.batchnorm._BatchNorm) for x in m.modules())

    _, D = make("dcgan", batch_norm_d=False)
    assert not has_bn(D)
    _, D = make("dcgan", batch_norm_d=True)
    assert has_bn(D)
    # the first layer sees the image and never gets BN
    assert isinstance(D.blocks[0].bn, nn.Identity)


def test_dropout_in_d_when_asked():
    _, D = make("mlp", dropout_d=0.3)
    assert any(isinstance(m, nn.Dropout) and m.p == 0.3 for m in D.modules())
    _, D = make("mlp", dropout_d=0.0)
    assert not any(isinstance(m, nn.Dropout) for m in D.modules())


@pytest.mark.parametrize("arch", ["dcgan", "conditional"])
def test_dcgan_init(arch):
    G, D = make(arch, g_width=32, d_width=32)
    convs = [m for m in list(G.modules()) + list(D.modules()) if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    weights = torch.cat([m.weight.detach().flatten() for m in convs])
    assert abs(weights.std().item() - 0.02) < 0.002
    assert abs(weights.mean().item()) < 0.002
    bns = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    bn_w = torch.cat([m.weight.detach() for m in bns])
    assert abs(bn_w.mean().item() - 1.0) < 0.01 and bn_w.std().item() < 0.05
    assert all(torch.count_nonzero(m.bias) == 0 for m in bns)


def test_init_weights_dcgan_writes_the_weight_under_spectral_norm():
    layer = nn.utils.parametrizations.spectral_norm(nn.Linear(200, 300))
    before = layer.parametrizations.weight.original.detach().clone()
    init_weights_dcgan(layer)
    after = layer.parametrizations.weight.original.detach()
    assert not torch.equal(before, after)
    assert abs(after.std().item() - 0.02) < 0.002


@pytest.mark.parametrize("arch,info", [
    ("mlp", toy_info(2)), ("mlp", image_info()), ("dcgan", image_info(32, 3)), ("conditional", image_info()),
])
@pytest.mark.parametrize("sn", [False, True])
def test_state_dict_is_stable_named_tensors(arch, info, sn):
    G1, D1 = make(arch, info, spectral_norm=sn, batch_norm_d=True, dropout_d=0.1)
    G2, D2 = make(arch, info, spectral_norm=sn, batch_norm_d=True, dropout_d=0.1)
    for m1, m2 in ((G1, G2), (D1, D2)):
        sd1, sd2 = m1.state_dict(), m2.state_dict()
        assert list(sd1) == list(sd2)
        assert all(re.fullmatch(r"[A-Za-z0-9_.]+", k) for k in sd1)
        assert all(type(v) is torch.Tensor for v in sd1.values())
        # same seed, same weights: the builders are deterministic
        assert all(torch.equal(sd1[k], sd2[k]) for k in sd1)
        # it goes through safetensors (no shared or non-contiguous storage) and back into a fresh model
        loaded = safetensors.torch.load(safetensors.torch.save(sd1))
        m2.load_state_dict(loaded, strict=True)
        assert all(torch.equal(m2.state_dict()[k], sd1[k]) for k in sd1)


def test_state_dict_keys_are_readable():
    G, D = make("dcgan", image_info(32))
    assert {"project.weight", "blocks.0.conv.weight", "to_image.weight"} <= set(G.state_dict())
    assert {"blocks.0.conv.weight", "head.weight", "head.bias"} <= set(D.state_dict())


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "conditional"])
def test_models_deepcopy_for_ema(arch):
    import copy
    G, D = make(arch, spectral_norm=True)
    G2, D2 = copy.deepcopy(G), copy.deepcopy(D)
    G.eval(), G2.eval(), D.eval(), D2.eval()
    z, y = torch.randn(3, 16), labels(3)
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(G(z, y), G2(z, y))
    assert torch.equal(D(x, y), D2(x, y))


def test_unknown_arch_is_a_config_error():
    cfg = Config().replace("model", arch="resnet")  # replace() skips the preset checks, as a bad caller could
    with pytest.raises(ConfigError, match="arch"):
        models.build(cfg, image_info())


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "conditional"])
def test_d_scores_float32_under_autocast(arch):
    G, D = make(arch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = G(torch.randn(4, 16), labels(4))
        out = D(x, labels(4))
    assert out.dtype == torch.float32 and out.shape == (4,)
