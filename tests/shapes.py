"""A folder of simple rendered shapes: the stand-in for a user's own unlabelled images.

    write_shapes(folder, n, seed, size=28) -> list of paths

Filled circles, squares and triangles of random size, position, rotation and grey level on black,
drawn with Pillow; deterministic for a seed. Used by the tests and benchmarks that need a `folder`
data set nobody labelled.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def render_shape(rng: np.random.Generator, size: int = 28):
    from PIL import Image, ImageDraw

    scale = 4  # draw large, then downsample: antialiased edges like a photographed shape
    s = size * scale
    img = Image.new("L", (s, s), 0)
    draw = ImageDraw.Draw(img)
    kind = int(rng.integers(3))
    r = rng.uniform(0.18, 0.38) * s
    cx, cy = rng.uniform(r + 0.05 * s, s - r - 0.05 * s, size=2)
    grey = int(rng.integers(140, 256))
    if kind == 0:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=grey)
    else:
        corners = 4 if kind == 1 else 3
        turn = rng.uniform(0, 2 * math.pi)
        pts = [(cx + r * math.cos(turn + 2 * math.pi * i / corners), cy + r * math.sin(turn + 2 * math.pi * i / corners))
               for i in range(corners)]
        draw.polygon(pts, fill=grey)
    return img.resize((size, size), Image.LANCZOS)


def write_shapes(folder: Path, n: int = 1000, seed: int = 0, size: int = 28) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        p = folder / f"shape_{i:05d}.png"
        render_shape(rng, size).save(p)
        paths.append(p)
    return paths
