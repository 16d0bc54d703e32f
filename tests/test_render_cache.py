"""The rendered digits kept on disk (gantui.data.render_cache): a hit gives the very images a fresh
drawing gives, without drawing; a damaged or foreign file is drawn again; the cache stays bounded."""

from __future__ import annotations

from pathlib import Path

import torch

from gantui.data import glyphs, render_cache

N, SEED, SIZE = 300, 5, 28


def draw_counted(calls: list, n: int = N, seed: int = SEED):
    def draw():
        calls.append(seed)
        images, labels = glyphs.render_digits(n, seed, SIZE)
        return images, labels, 0.25 + seed
    return draw


def the_files(root):
    return sorted((root / "digits").glob("digits-*.safetensors"))


def test_a_second_start_loads_the_same_digits_without_drawing(tmp_path, monkeypatch):
    monkeypatch.setenv("GANTUI_CACHE", str(tmp_path))
    monkeypatch.setattr(render_cache, "MIN_CACHED", 100)
    calls: list = []
    first = render_cache.cached(N, SEED, SIZE, Path(glyphs.__file__),
                                draw_counted(calls))
    assert calls == [SEED] and len(the_files(tmp_path)) == 1
    second = render_cache.cached(N, SEED, SIZE, Path(glyphs.__file__), draw_counted(calls))
    assert calls == [SEED], "a hit must not draw"
    fresh_images, fresh_labels = glyphs.render_digits(N, SEED, SIZE)
    assert torch.equal(second[0], fresh_images) and torch.equal(second[1], fresh_labels)
    assert second[2] == first[2] == 0.25 + SEED


def test_a_damaged_file_is_drawn_again_and_a_small_set_is_never_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("GANTUI_CACHE", str(tmp_path))
    monkeypatch.setattr(render_cache, "MIN_CACHED", 100)
    renderer = Path(glyphs.__file__)
    calls: list = []
    render_cache.cached(N, SEED, SIZE, renderer, draw_counted(calls))
    (path,) = the_files(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])   # a kill mid-copy, a full disk
    images, labels, _ = render_cache.cached(N, SEED, SIZE, renderer, draw_counted(calls))
    assert calls == [SEED, SEED]
    assert torch.equal(images, glyphs.render_digits(N, SEED, SIZE)[0])
    render_cache.cached(50, SEED, SIZE, renderer, draw_counted(calls, n=50))
    assert len(the_files(tmp_path)) == 1, "a set under MIN_CACHED draws faster than it loads"


def test_a_sweep_over_seeds_keeps_only_the_newest_few(tmp_path, monkeypatch):
    monkeypatch.setenv("GANTUI_CACHE", str(tmp_path))
    monkeypatch.setattr(render_cache, "MIN_CACHED", 100)
    calls: list = []
    for seed in range(render_cache.KEEP + 2):
        render_cache.cached(120, seed, SIZE, Path(glyphs.__file__), draw_counted(calls, n=120, seed=seed))
    names = [p.name for p in the_files(tmp_path)]
    assert len(names) == render_cache.KEEP
    assert not any("seed0-" in n or "seed1-" in n for n in names), names
