"""`digits`: an offline stand-in for MNIST, drawn at run time.

Every preset must run on a machine with no network, so the default data set is made here:
grey 28x28 digits rendered with the font Pillow ships (a scalable FreeType font since
Pillow 10.1), then bent into handwriting-like shapes.

Speed comes from doing the expensive part once: PIL renders a few clean templates per
digit (several stroke weights, a couple of hand-drawn-style variants), and all per-image
randomness (scale, aspect, shear, rotation, shift, smooth elastic displacement) is one
batched `grid_sample` in torch, supersampled 2x and averaged down for anti-aliasing.

Deterministic for a seed: a private torch.Generator drives every random choice, and the
global RNG is never touched (the training loop's batches depend on it).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from gantui.data import DataInfo, Dataset, feature_std, render_cache
from gantui.errors import DataError

N_CLASSES = 10
SUPERSAMPLE = 2
GLYPH_HEIGHT = 0.70  # fraction of the frame a digit's height fills, as MNIST's 20-of-28 box
_RENDER_SIZE = 256  # font size of the master rendering, downscaled for anti-aliasing
_STROKES = (1, 3, 5, 8)  # extra outline at _RENDER_SIZE: thin pen to felt tip
_PIXELS_PER_CHUNK = 1 << 24  # bounds grid_sample's working memory (~0.3 GB) at any size

# Random geometry, in the frame's normalised coordinates ([-1, 1] across the image).
ROTATION_DEG = 13.0
SHEAR = (-0.15, 0.35)  # handwriting leans right more often than left
SCALE = (0.80, 1.08)
ASPECT = (0.75, 1.15)  # width relative to height
SHIFT = 0.09  # ~1.3 px at 28x28
ELASTIC_GRID = 4  # control points per side of the smooth displacement field
ELASTIC_AMP = 0.05  # std of the displacement at a control point (~0.7 px at 28x28)


@functools.lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size=_RENDER_SIZE)
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow < 10.1 or built without FreeType
        raise DataError(
            "digits: Pillow's default font is not scalable here (needs Pillow >= 10.1 with FreeType); "
            "run `pip install -U pillow`")
    return font


def _render_glyph(text: str, stroke: int) -> Image.Image:
    font = _font()
    pad = stroke + _RENDER_SIZE // 4
    img = Image.new("L", (_RENDER_SIZE + 2 * pad, int(_RENDER_SIZE * 1.4) + 2 * pad), 0)
    ImageDraw.Draw(img).text((pad, pad), text, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
    return img.crop(img.getbbox())


def _pen_variants() -> dict[int, list[Image.Image]]:
    """Shapes people write that the font does not: a bare 1, a crossed 7, an open 4.

    Drawn with thick polylines on the same master scale; coordinates are in glyph units
    (height 1.0). Their widths match the font's mid stroke weights.
    """
    def draw(polylines, stroke_px):
        h = _RENDER_SIZE * 0.75
        x0 = min(x for line in polylines for x, _ in line)
        w = (max(x for line in polylines for x, _ in line) - x0) * h
        pad = stroke_px
        img = Image.new("L", (int(w + 2 * pad) + 1, int(h + 2 * pad) + 1), 0)
        d = ImageDraw.Draw(img)
        for line in polylines:
            pts = [(pad + (x - x0) * h, pad + y * h) for x, y in line]
            d.line(pts, fill=255, width=stroke_px, joint="curve")
            for p in (pts[0], pts[-1]):  # round pen ends
                r = stroke_px / 2
                d.ellipse((p[0] - r, p[1] - r, p[0] + r, p[1] + r), fill=255)
        return img.crop(img.getbbox())

    shapes = [  # (digit, polylines)
        (1, [[(0.0, 0.0), (0.0, 1.0)]]),
        (1, [[(-0.2, 0.18), (0.0, 0.0), (0.0, 1.0)]]),  # the font's flag is long enough to read as a 7
        (7, [[(0.0, 0.0), (0.62, 0.0), (0.22, 1.0)], [(0.12, 0.52), (0.50, 0.52)]]),
        (4, [[(0.05, 0.0), (0.0, 0.62), (0.66, 0.62)], [(0.52, 0.12), (0.52, 1.0)]]),
    ]
    variants: dict[int, list[Image.Image]] = {}
    for digit, polylines in shapes:
        variants.setdefault(digit, []).extend(draw(polylines, px) for px in (24, 34))
    return variants


def _place(glyph: Image.Image, res: int) -> np.ndarray:
    """Scale a cropped glyph to GLYPH_HEIGHT of a res x res frame, centred, as float [0, 1]."""
    h = GLYPH_HEIGHT * res
    w = glyph.width * h / glyph.height
    if w > 0.9 * res:  # keep wide glyphs inside the frame
        h, w = h * 0.9 * res / w, 0.9 * res
    small = glyph.resize((max(1, round(w)), max(1, round(h))), Image.LANCZOS)
    frame = Image.new("L", (res, res), 0)
    frame.paste(small, ((res - small.width) // 2, (res - small.height) // 2))
    return np.asarray(frame, dtype=np.float32) / 255.0


@functools.lru_cache(maxsize=4)
def templates(res: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean glyphs at res x res: (T, 1, res, res) float in [0, 1] and their digit labels (T,)."""
    pens = _pen_variants()
    images, labels = [], []
    for digit in range(N_CLASSES):
        glyphs = [_render_glyph(str(digit), s) for s in _STROKES] + pens.get(digit, [])
        for g in glyphs:
            images.append(_place(g, res))
            labels.append(digit)
    return torch.from_numpy(np.stack(images))[:, None], torch.tensor(labels)


def _uniform(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


@functools.lru_cache(maxsize=4)
def _grid_basis(res: int) -> torch.Tensor:
    """(3 + G*G, res*res): x, y, 1 of every pixel centre, then the bicubic weight of each control point.

    A sampling grid is then linear in its parameters (an affine map plus control-point offsets),
    so a whole batch of grids is one matrix product instead of affine_grid + interpolate per image.
    """
    identity = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    xy = F.affine_grid(identity, (1, 1, res, res), align_corners=False).reshape(-1, 2)
    k = ELASTIC_GRID * ELASTIC_GRID
    bumps = torch.eye(k).reshape(k, 1, ELASTIC_GRID, ELASTIC_GRID)
    bicubic = F.interpolate(bumps, size=(res, res), mode="bicubic", align_corners=True).reshape(k, -1)
    return torch.cat([xy.T, torch.ones(1, res * res), bicubic])


def _random_grids(g: torch.Generator, n: int, res: int) -> torch.Tensor:
    """Sampling grids (n, res, res, 2): output pixel -> template coordinate."""
    angle = _uniform(g, n, -ROTATION_DEG, ROTATION_DEG) * math.pi / 180
    shear = _uniform(g, n, *SHEAR)
    scale = _uniform(g, n, *SCALE)
    aspect = _uniform(g, n, *ASPECT)
    shift = _uniform(g, 2 * n, -SHIFT, SHIFT).reshape(n, 2)

    # Forward map of the glyph: stretch, slant, turn. The grid needs its inverse.
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    slant = torch.zeros(n, 2, 2)
    slant[:, 0, 0] = 1
    slant[:, 1, 1] = 1
    slant[:, 0, 1] = -shear  # image y points down, so -shear leans the top to the right
    stretch = torch.diag_embed(torch.stack([scale * aspect, scale], -1))
    inv = torch.linalg.inv(rot @ slant @ stretch)
    theta = torch.cat([inv, (-inv @ shift[:, :, None])], dim=2)  # (n, 2, 3)

    # Elastic jitter: coarse random offsets at control points, bicubically smoothed over the frame.
    coarse = ELASTIC_AMP * torch.randn(n, 2, ELASTIC_GRID * ELASTIC_GRID, generator=g)
    coef = torch.cat([theta, coarse], dim=2)  # (n, 2, 3 + G*G)
    grid = coef.reshape(2 * n, -1) @ _grid_basis(res)  # (2n, res*res)
    return grid.reshape(n, 2, res, res).permute(0, 2, 3, 1)


def render_digits(n: int, seed: int, size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """n digit images (n, 1, size, size) uint8 (0 = background) and labels (n,) int64, balanced."""
    g = torch.Generator().manual_seed(seed)
    hi = size * SUPERSAMPLE
    tmpl, tmpl_labels = templates(hi)
    by_digit = [torch.nonzero(tmpl_labels == d).flatten() for d in range(N_CLASSES)]
    counts = torch.tensor([len(i) for i in by_digit])
    offsets = torch.cumsum(counts, 0) - counts

    labels = (torch.arange(n) % N_CLASSES)[torch.randperm(n, generator=g)]
    # Pick one of the digit's templates uniformly: offset + floor(u * count).
    pick = offsets[labels] + (torch.rand(n, generator=g) * counts[labels]).long()

    out = torch.empty(n, 1, size, size, dtype=torch.uint8)
    chunk = max(1, _PIXELS_PER_CHUNK // (hi * hi))
    for i in range(0, n, chunk):
        j = min(n, i + chunk)
        grid = _random_grids(g, j - i, hi)
        img = F.grid_sample(tmpl[pick[i:j]], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        img = F.avg_pool2d(img, SUPERSAMPLE)
        out[i:j] = (img.clamp(0, 1) * 255).round().to(torch.uint8)
    return out, labels


def _to_unit_range(images: torch.Tensor) -> torch.Tensor:
    return images.float().div_(127.5).sub_(1.0)


@functools.lru_cache(maxsize=2)
def _cached(n: int, seed: int, size: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """uint8 images (a quarter of the float size), labels, and their real_std (costly to recompute),
    from the disk cache when an earlier start drew the same set (gantui.data.render_cache)."""
    def draw() -> tuple[torch.Tensor, torch.Tensor, float]:
        images, labels = render_digits(n, seed, size)
        return images, labels, float(feature_std(_to_unit_range(images)))

    return render_cache.cached(n, seed, size, Path(__file__), draw)


def load_digits(cfg, device: torch.device, seed: int) -> Dataset:
    """The `digits` set on `device`: (n_samples, 1, image_size, image_size) in [-1, 1], 10 classes."""
    images, labels, real_std = _cached(cfg.n_samples, seed, cfg.image_size)
    x = _to_unit_range(images.to(device))  # a fresh float tensor: the cached uint8 stays untouched
    info = DataInfo(name="digits", shape=(1, cfg.image_size, cfg.image_size), n_classes=N_CLASSES, is_toy=False)
    return Dataset(info, x, labels.to(device), real_std=real_std)
