"""Latent walks: the slerp/lerp math against hand-known values, and `gantui sample --interpolate` on an
image run and a conditional run, as PNG, as raw samples and in the terminal."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli, train_run
from gantui.models.walks import lerp, slerp, walk

TINY_IMAGES = ["model.g_width=8", "model.d_width=8", "data.n_samples=200", "data.batch_size=16", "log.every=2",
               "log.eval_every=0", "log.sample_every=1000"]


def test_slerp_and_lerp_hand_known_values():
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    h = math.sqrt(0.5)
    assert torch.allclose(slerp(e1, e2, torch.tensor([0.0, 0.5, 1.0])),
                          torch.tensor([[1.0, 0.0], [h, h], [0.0, 1.0]]), atol=1e-7)
    # a third of the way along a right angle: (cos 30 deg, sin 30 deg), and the norm of the ends (2) kept
    assert torch.allclose(slerp(2 * e1, 2 * e2, torch.tensor([1 / 3]))[0], torch.tensor([math.sqrt(3), 1.0]),
                          atol=1e-6)
    assert torch.allclose(lerp(e1, e2, torch.tensor([0.5])), torch.tensor([[0.5, 0.5]]))
    # parallel: the arc is the line; opposite: undefined, the line
    assert torch.allclose(slerp(e1, 3 * e1, torch.tensor([0.5])), torch.tensor([[2.0, 0.0]]))
    assert torch.allclose(slerp(e1, -e1, torch.tensor([0.5])), torch.tensor([[0.0, 0.0]]))
    z = walk(torch.randn(3, 16), torch.randn(3, 16), 5)
    assert z.shape == (3, 5, 16)


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    return train_run(tmp_path_factory, "cgan", 2, *TINY_IMAGES)


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory):
    return train_run(tmp_path_factory, "dcgan", 2, *TINY_IMAGES)


def test_image_walks_as_png_and_in_the_terminal(dcgan_run, tmp_path, capsys):
    out = tmp_path / "walk.png"
    code, _, err = run_cli(capsys, "sample", dcgan_run, "--interpolate", "--out", out, "--rows", "3", "--steps", "7")
    assert code == 0, err
    with Image.open(out) as img:
        w, h = img.size
    tile = 28 * 3  # pictures: 28 px upscaled x3, a 2*3 px gap around every tile: 7 across, 3 down
    assert (w, h) == (7 * (tile + 6) + 6, 3 * (tile + 6) + 6)
    raw = tmp_path / "walk.npy"
    code, _, err = run_cli(capsys, "sample", dcgan_run, "--interpolate", "--out", raw, "--rows", "3", "--steps", "7",
                           "--method", "linear")
    assert code == 0, err
    x = np.load(raw)
    assert x.shape == (21, 1, 28, 28)
    # each row starts at its own latent and walks: neighbours along a row differ less than the row's ends
    rows = x.reshape(3, 7, -1)
    step = np.abs(np.diff(rows, axis=1)).mean()
    ends = np.abs(rows[:, -1] - rows[:, 0]).mean()
    assert 0 < step < ends
    code, out_text, err = run_cli(capsys, "sample", dcgan_run, "--interpolate", "--ansi", "--rows", "2", "--steps", "4")
    assert code == 0, err
    assert "▀" in out_text and "2 slerp walks of 4 steps" in err


def test_conditional_walks_fixed_class_and_between_classes(cgan_run, tmp_path, capsys):
    from gantui.checkpoint import load_generator

    g = load_generator(cgan_run).generator
    raw = tmp_path / "fixed.npy"
    code, _, err = run_cli(capsys, "sample", cgan_run, "--interpolate", "--out", raw, "--rows", "2", "--steps", "3",
                           "--seed", "5")
    assert code == 0, err
    x = np.load(raw)
    # independently: row 1 starts at the second latent drawn from the seed, with class 1
    gen = torch.Generator().manual_seed(5)
    z0 = torch.randn(2, g.latent_dim, generator=gen)
    with torch.no_grad():
        start = g(z0[1:2], torch.tensor([1])).numpy()
    assert np.allclose(x[3], start[0], atol=1e-5)
    raw = tmp_path / "classes.npy"
    code, _, err = run_cli(capsys, "sample", cgan_run, "--interpolate", "--classes", "walk", "--out", raw,
                           "--rows", "2", "--steps", "3", "--seed", "5")
    assert code == 0, err
    y = np.load(raw)
    with torch.no_grad():
        ends = g(z0[:1].repeat(2, 1), torch.tensor([0, 1])).numpy()
    assert np.allclose(y[0], ends[0], atol=1e-5) and np.allclose(y[2], ends[1], atol=1e-5)  # class 0 -> 1
    code, _, err = run_cli(capsys, "sample", cgan_run, "--interpolate", "--classes", "walk", "--ansi",
                           "--rows", "2", "--steps", "3")
    assert code == 0 and "from class i to class i+1" in err
    code, _, err = run_cli(capsys, "sample", cgan_run, "--interpolate", "--ansi", "--method", "cubic")
    assert code == 2 and "--method" in err
