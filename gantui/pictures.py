"""Sample pictures as PNG files: image grids, and scatter plots of toy data. Pillow only."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REAL_RGB = (70, 130, 220)
FAKE_RGB = (230, 90, 40)


def grid_image(images: np.ndarray, cols: int | None = None, pad: int = 2) -> Image.Image:
    """(N, C, H, W) floats in [-1, 1] -> one RGB/L image, `cols` per row (square-ish by default)."""
    n, c, h, w = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    pix = ((np.clip(images, -1, 1) + 1) * 127.5).round().astype(np.uint8)
    canvas = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        canvas[y:y + h, x:x + w] = pix[i].transpose(1, 2, 0)
    return Image.fromarray(canvas[..., 0] if c == 1 else canvas, mode="L" if c == 1 else "RGB")


def scatter_image(fake: np.ndarray, real: np.ndarray | None = None, size: int = 512,
                  extent: tuple[float, float, float, float] | None = None) -> Image.Image:
    """2-D points (N, 2) -> a white scatter plot, real in blue under generated in orange.

    1-D samples (N, 1) become two overlaid histograms instead.
    """
    if fake.shape[1] == 1:
        return _histogram_image(fake[:, 0], None if real is None else real[:, 0], size)
    pts = fake if real is None else np.concatenate([fake, real])
    if extent is None:
        lo, hi = pts.min(0), pts.max(0)
        span = max(float((hi - lo).max()), 1e-3)
        mid = (hi + lo) / 2
        extent = (mid[0] - 0.6 * span, mid[0] + 0.6 * span, mid[1] - 0.6 * span, mid[1] + 0.6 * span)
    x0, x1, y0, y1 = extent
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)

    def to_px(p):
        return ((p[:, 0] - x0) / (x1 - x0) * (size - 1), (1 - (p[:, 1] - y0) / (y1 - y0)) * (size - 1))

    for points, rgb in ((real, REAL_RGB), (fake, FAKE_RGB)):
        if points is None:
            continue
        xs, ys = to_px(points)
        for x, y in zip(xs, ys):
            draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=rgb)
    return img


def _histogram_image(fake: np.ndarray, real: np.ndarray | None, size: int) -> Image.Image:
    both = fake if real is None else np.concatenate([fake, real])
    edges = np.linspace(float(both.min()), float(both.max()) + 1e-6, 61)
    img = Image.new("RGB", (size, size // 2), "white")
    draw = ImageDraw.Draw(img)
    hists = [(np.histogram(v, edges)[0], rgb) for v, rgb in ((real, REAL_RGB), (fake, FAKE_RGB)) if v is not None]
    top = max(h.max() for h, _ in hists) or 1
    bw = size / (len(edges) - 1)
    for h, rgb in hists:
        for i, count in enumerate(h):
            y = (size // 2 - 1) * (1 - count / top)
            draw.rectangle((i * bw, y, (i + 1) * bw - 1, size // 2 - 1), outline=rgb)
    return img


def save_samples(path: Path, samples: np.ndarray, real: np.ndarray | None = None) -> None:
    """Images (N, C, H, W) as a grid, points (N, dim) as a scatter/histogram."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = grid_image(samples) if samples.ndim == 4 else scatter_image(samples, real)
    img.save(path)
