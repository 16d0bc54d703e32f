"""The fixed-noise samples of a step as a file: `<run-dir>/samples/step_00001000.npz`.

Written next to the PNG grid every `log.sample_every` steps, so that the sample history of a
run can be stepped through on screen, and `gantui watch` (another process) draws the same
picture the training process's own monitor does, density field and labels included.

Arrays (numpy only, loaded with allow_pickle=False):
  images  (N, C, H, W) float16 in [-1, 1] for image data, or (N, dim) float32 points for toy data
  real    (M, dim) float32 real points (toy data only)
  field   (G, G) float32 D's score on a grid over `extent` (2-D toy data only)
  extent  (4,) float64 xmin, xmax, ymin, ymax of the field
  labels  (N,) int64 class of each sample (conditional models only)
  step    () int64
  generator () str  "EMA" or "live"
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from gantui.engine import events as ev
from gantui.vocab.files import atomic_write

PATTERN = re.compile(r"^step_(\d{8,})\.npz$")


def path_for(samples_dir: Path, step: int) -> Path:
    return Path(samples_dir) / f"step_{step:08d}.npz"


def save(path: Path, samples: ev.Samples) -> None:
    """Atomically (temp file + rename): a reader never sees half a file."""
    path = Path(path)
    images = np.asarray(samples.images)
    arrays = {"images": images.astype(np.float16 if images.ndim == 4 else np.float32),
              "step": np.asarray(samples.step, dtype=np.int64),
              "generator": np.asarray(samples.generator or "")}
    if samples.real is not None:
        arrays["real"] = np.asarray(samples.real, dtype=np.float32)
    if samples.field is not None and samples.extent is not None:
        arrays["field"] = np.asarray(samples.field, dtype=np.float32)
        arrays["extent"] = np.asarray(samples.extent, dtype=np.float64)
    if samples.labels is not None:
        arrays["labels"] = np.asarray(samples.labels, dtype=np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    # not durable: a view of the checkpointed generator, written every sample_every steps on the
    # training thread, where an fsync would stall the loop; a power loss costs a picture at most
    atomic_write(path, lambda f: np.savez(f, **arrays), durable=False, mode=0o600)


def load(path: Path) -> ev.Samples:
    """The Samples message a file holds; ValueError/OSError for a damaged one."""
    with np.load(Path(path), allow_pickle=False) as z:
        images = z["images"].astype(np.float32)
        extent = tuple(float(v) for v in z["extent"]) if "extent" in z else None
        return ev.Samples(
            step=int(z["step"]), images=images,
            real=z["real"] if "real" in z else None,
            field=z["field"] if "field" in z else None,
            extent=extent,  # type: ignore[arg-type]
            labels=z["labels"] if "labels" in z else None,
            generator=str(z["generator"]) if "generator" in z else "")


def steps(samples_dir: Path) -> list[int]:
    """The steps that have a sample file, ascending."""
    try:
        names = os.listdir(samples_dir)
    except OSError:
        return []
    out = []
    for name in names:
        m = PATTERN.match(name)
        if m:
            out.append(int(m.group(1)))
    return sorted(out)
