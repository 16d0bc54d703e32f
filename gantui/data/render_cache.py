"""Rendered digits kept on disk, so a run's start does not redraw them.

Drawing the 60,000 default `digits` takes 4-10 s of CPU at every start (every preset on digits, every
`gantui eval` of one). The images depend only on (n, seed, size), the renderer's source, Pillow (its
font) and torch (grid_sample's arithmetic), so they are cached as safetensors under
$GANTUI_CACHE/digits keyed by all of those. A cache that cannot be read (truncated, another version,
a read-only home) is never an error: the digits are drawn again, exactly as without a cache.

Only sets of at least MIN_CACHED images are kept (a small set draws faster than it loads), and at
most KEEP files: a sweep over seeds must not fill the disk 47 MB at a time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import torch

from gantui import paths
from gantui.vocab.files import atomic_write

MIN_CACHED = 10_000
KEEP = 4
VERSION = "1"   # the file's layout


def _key(n: int, seed: int, size: int, renderer: Path) -> str:
    import PIL

    h = hashlib.sha256(renderer.read_bytes())
    h.update(f"{VERSION}|{n}|{seed}|{size}|{torch.__version__}|{PIL.__version__}".encode())
    return h.hexdigest()[:16]


def _read(path: Path, n: int, size: int) -> tuple[torch.Tensor, torch.Tensor, float] | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            real_std = float((f.metadata() or {})["real_std"])
            images, labels = f.get_tensor("images"), f.get_tensor("labels")
    except Exception:  # noqa: BLE001 - absent, truncated or foreign: draw them again
        return None
    if images.dtype != torch.uint8 or tuple(images.shape) != (n, 1, size, size) \
            or labels.dtype != torch.int64 or tuple(labels.shape) != (n,):
        return None
    return images, labels, real_std


def _write(path: Path, images: torch.Tensor, labels: torch.Tensor, real_std: float) -> None:
    from safetensors.torch import save as st_save

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = st_save({"images": images.contiguous(), "labels": labels.contiguous()},
                       metadata={"real_std": repr(real_std)})
        # durable=False: a cache; a file lost to a power cut is drawn again
        atomic_write(path, blob, durable=False)
        olds = sorted(path.parent.glob("digits-*.safetensors"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in olds[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:  # a full disk or a read-only home: the run goes on without a cache
        pass


def cached(n: int, seed: int, size: int, renderer: Path,
           draw: Callable[[], tuple[torch.Tensor, torch.Tensor, float]]) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(images uint8, labels, real_std) from the cache, else `draw()` (then kept for the next start)."""
    if n < MIN_CACHED:
        return draw()
    path = paths.cache_root() / "digits" / f"digits-{size}px-{n}-seed{seed}-{_key(n, seed, size, renderer)}.safetensors"
    hit = _read(path, n, size)
    if hit is not None:
        try:
            path.touch()   # recently used: the last to be evicted
        except OSError:
            pass
        return hit
    images, labels, real_std = draw()
    _write(path, images, labels, real_std)
    return images, labels, real_std
