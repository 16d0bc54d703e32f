"""gantui sample: --out FILE.png / FILE.npy and --ansi, from real (tiny) checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import train_run
from PIL import Image

from gantui import pictures, render, sampling
from gantui.errors import UserError


def test_unknown_extension_names_the_file_and_the_allowed_ones():
    with pytest.raises(UserError) as e:
        sampling.check_out("samples.jpg", ansi=False)
    msg = str(e.value)
    assert "samples.jpg" in msg and ".png" in msg and ".npy" in msg and "\n" not in msg
    with pytest.raises(UserError, match="nothing to do"):
        sampling.check_out(None, ansi=False)
    assert sampling.check_out(None, ansi=True) is None
    assert sampling.check_out("a/b.NPY", ansi=False).name == "b.NPY"


def test_bad_extension_is_refused_before_the_checkpoint_is_read(tmp_path, capsys):
    assert sampling.main(tmp_path / "no-such-run", tmp_path / "x.gif", 8, 0, False) == 2
    err = capsys.readouterr().err
    assert "x.gif" in err and "unknown extension" in err and err.count("\n") == 1


def test_color_mode_honours_no_color_and_colorterm():
    assert sampling.color_mode({"NO_COLOR": "1", "COLORTERM": "truecolor"}) == "none"
    assert sampling.color_mode({"COLORTERM": "truecolor"}) == "truecolor"
    assert sampling.color_mode({}) == "256"


# --- from real checkpoints (needs the trainer) ------------------------------------------------

def train(tmp_path_factory, preset: str, steps: int, *overrides: str):
    return train_run(tmp_path_factory, preset, steps, *overrides)


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    return train(tmp_path_factory, "ring8", 5, "model.g_width=16", "model.d_width=16", "log.every=5")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    return train(tmp_path_factory, "dcgan", 2, "data.n_samples=200", "log.every=1")


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    return train(tmp_path_factory, "cgan", 2, "data.n_samples=200", "log.every=1")


def test_toy_npy_is_raw_float32_points_reproducible_for_a_seed(ring_run, tmp_path):
    for name, seed in (("a.npy", 0), ("b.npy", 0), ("c.npy", 1)):
        assert sampling.main(ring_run, tmp_path / name, 300, seed, False) == 0
    a, b, c = (np.load(tmp_path / n) for n in ("a.npy", "b.npy", "c.npy"))
    assert a.shape == (300, 2) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_toy_png_is_a_scatter_plot(ring_run, tmp_path):
    assert sampling.main(ring_run, tmp_path / "sub" / "ring.png", 500, 0, False) == 0
    img = Image.open(tmp_path / "sub" / "ring.png")
    assert img.size == (512, 512) and img.mode == "RGB"
    colours = {tuple(c) for c in np.unique(np.asarray(img).reshape(-1, 3), axis=0)}
    # the monitor's colours for real and generated points, on a dark background, with a legend
    assert render.REAL_RGB in colours and render.FAKE_RGB in colours and pictures.BACKGROUND in colours


def test_toy_ansi_prints_the_density_plot(ring_run, capsys, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert sampling.main(ring_run, None, 500, 0, True) == 0
    out = capsys.readouterr().out
    assert "real" in out and "fake" in out and "\x1b[" not in out  # NO_COLOR: glyphs, no escapes


def test_image_png_grid_and_npy(digits_run, tmp_path):
    assert sampling.main(digits_run, tmp_path / "g.png", 64, 0, False) == 0
    img = Image.open(tmp_path / "g.png")
    # 8x8 tiles of 28 px upscaled 3x (nearest neighbour: each pixel a 3x3 block) with 6 px gaps
    assert img.size == (8 * 90 + 6, 8 * 90 + 6) and img.mode == "L"
    tile = np.asarray(img)[6:90, 6:90]
    assert (tile[0::3, 0::3] == tile[1::3, 1::3]).all() and (tile[0::3, 0::3] == tile[2::3, 2::3]).all()
    assert sampling.main(digits_run, tmp_path / "g.npy", 10, 0, False) == 0
    x = np.load(tmp_path / "g.npy")
    assert x.shape == (10, 1, 28, 28) and x.dtype == np.float32 and x.min() >= -1 and x.max() <= 1


def test_image_ansi_prints_half_blocks(digits_run, capsys, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("COLORTERM", "truecolor")
    monkeypatch.setenv("COLUMNS", "80")
    assert sampling.main(digits_run, None, 16, 0, True) == 0
    out = capsys.readouterr().out
    assert "▀" in out and max(len(line) for line in out.splitlines()) <= 80


def test_conditional_grid_has_one_column_per_class(cgan_run, tmp_path):
    assert sampling.main(cgan_run, tmp_path / "c.png", 20, 0, False) == 0
    w, h = Image.open(tmp_path / "c.png").size
    assert w == 10 * 90 + 6 and h > 2 * 90 + 6      # ten labelled columns, a label row on top


def test_truncated_checkpoint_exits_2(ring_run, tmp_path, capsys):
    from gantui import checkpoint

    blob = checkpoint.resolve(ring_run).read_bytes()
    (tmp_path / "t.safetensors").write_bytes(blob[:100])
    assert sampling.main(tmp_path / "t.safetensors", tmp_path / "x.npy", 8, 0, False) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "t.safetensors" in err and not (tmp_path / "x.npy").exists()


def test_ansi_fits_the_terminal_with_gaps_between_tiles(digits_run, capsys, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("LINES", "36")
    assert sampling.main(digits_run, None, 64, 0, True) == 0
    lines = capsys.readouterr().out.rstrip("\n").split("\n")
    assert len(lines) <= 34 and max(len(x) for x in lines) <= 120      # the default 64 fit, nothing scrolls
    assert any(x.strip() == "" for x in lines[1:-1])                   # a blank line between tile rows


def test_conditional_ansi_labels_every_class(cgan_run, capsys, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("LINES", "36")
    assert sampling.main(cgan_run, None, 40, 0, True) == 0
    lines = capsys.readouterr().out.rstrip("\n").split("\n")
    assert len(lines) <= 34 and max(len(x) for x in lines) <= 120
    assert lines[0].split() == [str(c) for c in range(10)]             # a labelled column per class
