"""`gantui sample`: draw samples from a checkpoint's generator.

    main(checkpoint, out, n, seed, ansi) -> exit code

FILE.png  an image grid (one column per class for a conditional G), or for toy data a scatter plot of the
          generated points over as many real ones (two overlaid histograms for 1-D data);
FILE.npy  the raw samples, float32 (n, *shape): images in [-1, 1], toy points in data coordinates;
--ansi    the same picture as half-block characters on the terminal (gantui.render).

The generator's EMA weights are used when the checkpoint has them; z comes from `seed` (CPU RNG, so the
same seed gives the same samples on every device).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from gantui import limits, paths
from gantui.errors import UserError, report

OUT_KINDS = {".png": "image grid, or a scatter plot for toy data", ".npy": "raw samples, float32"}


def check_out(out: str | Path | None, ansi: bool) -> Path | None:
    """The --out path, refused early (before any model loads) when its extension is unknown."""
    if out is None:
        if not ansi:
            raise UserError("gantui sample: nothing to do; give --out FILE.png or FILE.npy, or --ansi")
        return None
    if str(out) == "" or any(ord(c) < 32 for c in str(out)):
        raise UserError(f"--out {str(out)!r}: expected a file name ending in .png or .npy")
    path = Path(out)
    if path.suffix.lower() not in OUT_KINDS:
        allowed = "; ".join(f"{ext} ({what})" for ext, what in OUT_KINDS.items())
        raise UserError(f"--out {path}: unknown extension {path.suffix or '(none)'!r}; use {allowed}")
    return path


def color_mode(environ=os.environ) -> str:
    """truecolor when the terminal says so, the 256-colour palette otherwise, none under NO_COLOR."""
    if "NO_COLOR" in environ:
        return "none"
    if environ.get("COLORTERM", "").lower() in ("truecolor", "24bit"):
        return "truecolor"
    return "256"


def main(checkpoint, out=None, n: int = 64, seed: int = 0, ansi: bool = False, device: str = "cpu") -> int:
    try:
        path = check_out(out, ansi)
        paths.check_input_path(checkpoint, "")
        if n is None:
            raise UserError("--n: expected an integer")
        limits.check_int("--n", n, 1, limits.MAX_SAMPLE_N)
        limits.check_int("--seed", seed, 0, limits.MAX_SEED)
        write_samples(checkpoint, path, n, seed, ansi, device)
    except UserError as e:
        return report(e)
    return 0


def write_samples(checkpoint, path: Path | None, n: int, seed: int, ansi: bool, device: str = "cpu") -> None:
    import numpy as np
    import torch

    from gantui.checkpoint import load_generator
    from gantui.evaluation.measure import REAL_SEED_BASE  # the real points drawn next to toy samples, as eval

    loaded = load_generator(checkpoint, device)
    with torch.inference_mode():
        fake, _ = loaded.sample(n, seed, device)
    samples = fake.float().cpu().numpy().astype(np.float32)
    info = loaded.info
    real = None
    if info.is_toy and (ansi or (path is not None and path.suffix.lower() == ".png")):
        ds = loaded.load_dataset("cpu")  # toy mixtures only: formulas, no files
        real = ds.real_batch(n, REAL_SEED_BASE + seed)[0].numpy()
    conditional = getattr(loaded.generator, "n_classes", 0) or 0
    cols = conditional if conditional and n >= conditional else None  # labels cycle, so columns are classes

    if path is not None:
        _write(path, samples, real, cols)
        print(f"wrote {path} ({n} samples from step {loaded.step}"
              f"{', EMA weights' if loaded.uses_ema else ''})", file=sys.stderr)
    if ansi:
        print_ansi(samples, real, cols)


def _write(path: Path, samples, real, cols: int | None) -> None:
    import numpy as np

    from gantui import pictures

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".npy":
            np.save(path, samples)
        elif samples.ndim == 4:
            labels = [str(c) for c in range(cols)] if cols else None  # a labelled column per class
            pictures.grid_image(samples, cols, col_labels=labels).save(path)
        else:
            pictures.scatter_image(samples, real).save(path)
    except OSError as e:
        raise UserError(f"--out {path}: cannot write: {e.strerror or e}") from None


def ansi_text(samples, real, cols: int | None, width: int, height: int, color: str):
    """The rich Text that --ansi prints, sized to width x height cells."""
    from gantui import render

    if samples.ndim == 4:
        labels = [c % cols for c in range(len(samples))] if cols else None  # labels cycle
        return render.fit_text_grid(samples, width, height, color, labels)
    if samples.shape[1] == 1:
        return render.histogram_1d(real, samples[:, 0], width, height, color=color)
    return render.density_plot(real, samples, width, height, color=color)


def print_ansi(samples, real, cols: int | None) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    width = max(20, console.width)
    # Not a pane: the picture may scroll, but keeps to about one screen so it can be seen whole.
    height = max(12, console.height - 2)
    console.print(ansi_text(samples, real, cols, width, height, color_mode()))
