"""Sample pictures as PNG files: image grids, and plots of toy data. Pillow only.

Grids are upscaled with nearest neighbour (each image pixel becomes a block of screen pixels,
nothing blurred) to a comfortable size: a 28x28 digit is drawn 84x84. Toy plots use the
monitor's colours on a dark background, as a terminal shows them, with a legend.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gantui.render import FAKE_RGB, REAL_RGB

BACKGROUND = (24, 24, 28)            # a dark terminal's
TEXT_RGB = (220, 220, 220)
AXIS_RGB = (90, 90, 100)
TILE_PX = 96                         # grid tiles are upscaled to about this many pixels a side


def upscale_factor(h: int, w: int, target: int = TILE_PX) -> int:
    """Whole-number factor that brings the larger side near `target` (never below 1)."""
    return max(1, round(target / max(h, w)))


def grid_image(images: np.ndarray, cols: int | None = None, pad: int = 2, scale: int | None = None,
               col_labels: list[str] | None = None) -> Image.Image:
    """(N, C, H, W) floats in [-1, 1] -> one L/RGB image, `cols` per row (square-ish by default),
    each image upscaled `scale` times (nearest neighbour; default: `upscale_factor`), with
    `pad`*scale pixels between them and, when given, a label above each column."""
    n, c, h, w = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    k = upscale_factor(h, w) if scale is None else max(1, int(scale))
    pix = ((np.clip(images, -1, 1) + 1) * 127.5).round().astype(np.uint8)
    pix = pix.repeat(k, axis=2).repeat(k, axis=3)                      # nearest-neighbour upscale
    th, tw, gap = h * k, w * k, pad * k
    font = ImageFont.load_default() if col_labels else None
    head = 0
    if col_labels:
        head = font.getbbox("0")[3] + 2 * gap
    canvas = np.zeros((head + rows * (th + gap) + gap, cols * (tw + gap) + gap, c), dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        y, x = head + gap + r * (th + gap), gap + q * (tw + gap)
        canvas[y:y + th, x:x + tw] = pix[i].transpose(1, 2, 0)
    img = Image.fromarray(canvas[..., 0] if c == 1 else canvas, mode="L" if c == 1 else "RGB")
    if col_labels:
        draw = ImageDraw.Draw(img)
        for q, label in enumerate(col_labels[:cols]):
            box = draw.textbbox((0, 0), label, font=font)
            x = gap + q * (tw + gap) + (tw - (box[2] - box[0])) // 2
            draw.text((x, gap), label, fill=255 if c == 1 else TEXT_RGB, font=font)
    return img


def _legend(draw: ImageDraw.ImageDraw, entries: list[tuple[str, tuple, str]], x: int, y: int) -> None:
    """A boxed legend: (mark, colour, words) per entry; mark 'o' a ring, 'x' a cross, '#' a bar."""
    font = ImageFont.load_default()
    line_h = font.getbbox("Ag")[3] + 6
    width = max(draw.textbbox((0, 0), words, font=font)[2] for _, _, words in entries) + 28
    draw.rectangle((x, y, x + width, y + line_h * len(entries) + 6), fill=BACKGROUND, outline=AXIS_RGB)
    for i, (mark, rgb, words) in enumerate(entries):
        cy = y + 4 + i * line_h + line_h // 2
        cx = x + 10
        if mark == "o":
            draw.ellipse((cx - 3, cy - 3, cx + 3, cy + 3), outline=rgb, width=1)
        elif mark == "x":
            draw.line((cx - 3, cy - 3, cx + 3, cy + 3), fill=rgb, width=2)
            draw.line((cx - 3, cy + 3, cx + 3, cy - 3), fill=rgb, width=2)
        elif mark == "#":
            draw.rectangle((cx - 4, cy - 3, cx + 4, cy + 3), outline=rgb, width=2)
        draw.text((x + 20, cy - line_h // 2 + 3), words, fill=TEXT_RGB, font=font)


def scatter_image(fake: np.ndarray, real: np.ndarray | None = None, size: int = 512,
                  extent: tuple[float, float, float, float] | None = None) -> Image.Image:
    """2-D points (N, 2) -> a scatter plot on a dark background: real points as green rings
    under generated ones as purple crosses (the monitor's colours and glyphs), with a legend.

    1-D samples (N, 1) become two overlaid histograms instead.
    """
    if fake.shape[1] == 1:
        return _histogram_image(fake[:, 0], None if real is None else real[:, 0], size)
    pts = fake if real is None else np.concatenate([fake, real])
    pts = pts[np.isfinite(pts).all(axis=1)]
    if extent is None:
        if len(pts):
            lo, hi = pts.min(0), pts.max(0)
        else:
            lo, hi = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
        span = max(float((hi - lo).max()), 1e-3)
        mid = (hi + lo) / 2
        extent = (mid[0] - 0.6 * span, mid[0] + 0.6 * span, mid[1] - 0.6 * span, mid[1] + 0.6 * span)
    x0, x1, y0, y1 = extent
    img = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(img)

    def to_px(p):
        return ((p[:, 0] - x0) / (x1 - x0) * (size - 1), (1 - (p[:, 1] - y0) / (y1 - y0)) * (size - 1))

    if real is not None:
        xs, ys = to_px(real)
        for x, y in zip(xs, ys):
            draw.ellipse((x - 2.5, y - 2.5, x + 2.5, y + 2.5), outline=REAL_RGB)
    xs, ys = to_px(fake)
    for x, y in zip(xs, ys):
        draw.line((x - 2, y - 2, x + 2, y + 2), fill=FAKE_RGB)
        draw.line((x - 2, y + 2, x + 2, y - 2), fill=FAKE_RGB)
    entries = [("x", FAKE_RGB, f"generated ({len(fake)})")]
    if real is not None:
        entries.insert(0, ("o", REAL_RGB, f"real ({len(real)})"))
    _legend(draw, entries, 8, 8)
    return img


def _histogram_image(fake: np.ndarray, real: np.ndarray | None, size: int) -> Image.Image:
    both = fake if real is None else np.concatenate([fake, real])
    both = both[np.isfinite(both)]
    lo, hi = (float(both.min()), float(both.max())) if len(both) else (-1.0, 1.0)
    edges = np.linspace(lo, hi + 1e-6, 61)
    height = size // 2
    img = Image.new("RGB", (size, height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    hists = [(np.histogram(v[np.isfinite(v)], edges)[0] / max(1, len(v)), rgb)
             for v, rgb in ((real, REAL_RGB), (fake, FAKE_RGB)) if v is not None]
    top = max(h.max() for h, _ in hists) or 1
    bw = size / (len(edges) - 1)
    for h, rgb in hists:
        for i, frac in enumerate(h):
            y = (height - 1) * (1 - frac / top)
            draw.rectangle((i * bw, y, (i + 1) * bw - 1, height - 1), outline=rgb, width=2)
    entries = [("#", FAKE_RGB, "generated")]
    if real is not None:
        entries.insert(0, ("#", REAL_RGB, "real"))
    entries.append(("", AXIS_RGB, f"x {lo:.3g} .. {hi:.3g}"))
    _legend(draw, entries, 8, 8)
    return img


def save_samples(path: Path, samples: np.ndarray, real: np.ndarray | None = None) -> None:
    """Images (N, C, H, W) as a grid, points (N, dim) as a scatter/histogram."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = grid_image(samples) if samples.ndim == 4 else scatter_image(samples, real)
    img.save(path)
