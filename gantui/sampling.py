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


def main(checkpoint, out=None, n: int = 64, seed: int = 0, ansi: bool = False, device: str = "cpu",
         trust_code: bool = False) -> int:
    try:
        path = check_out(out, ansi)
        paths.check_input_path(checkpoint, "")
        if n is None:
            raise UserError("--n: expected an integer")
        limits.check_int("--n", n, 1, limits.MAX_SAMPLE_N)
        limits.check_int("--seed", seed, 0, limits.MAX_SEED)
        write_samples(checkpoint, path, n, seed, ansi, device, trust_code=trust_code)
    except UserError as e:
        return report(e)
    return 0


def write_samples(checkpoint, path: Path | None, n: int, seed: int, ansi: bool, device: str = "cpu",
                  trust_code: bool = False) -> None:
    import numpy as np
    import torch

    from gantui.checkpoint import load_generator
    from gantui.evaluation.measure import REAL_SEED_BASE  # the real points drawn next to toy samples, as eval

    loaded = load_generator(checkpoint, device, trust_code=trust_code, command="sample")
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


# --- latent walks (--interpolate) ---------------------------------------------------------------

CLASS_WALKS = ("fixed", "walk")


def walk_main(checkpoint, out=None, rows: int = 8, steps: int = 10, seed: int = 0, method: str = "slerp",
              classes: str = "fixed", ansi: bool = False, device: str = "cpu", trust_code: bool = False) -> int:
    """`gantui sample RUN --interpolate`: `rows` walks of `steps` samples each, one walk per row, between
    two random latents per row (`method`: slerp or linear). A conditional generator keeps one class per
    row (`classes = "fixed"`: row i is class i mod K), or walks from class i to class i + 1 with the
    row's latent fixed (`"walk"`: the class embedding is interpolated)."""
    from gantui.models.walks import METHODS

    try:
        path = check_out(out, ansi)
        paths.check_input_path(checkpoint, "")
        limits.check_int("--rows", rows, 1, 64)
        limits.check_int("--steps", steps, 2, 64)
        limits.check_int("--seed", seed, 0, limits.MAX_SEED)
        if method not in METHODS:
            raise UserError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
        if classes not in CLASS_WALKS:
            raise UserError(f"--classes {classes!r}: expected one of {', '.join(CLASS_WALKS)}")
        write_walks(checkpoint, path, rows, steps, seed, method, classes, ansi, device, trust_code)
    except UserError as e:
        return report(e)
    return 0


def walk_samples(generator, latent_dim: int, n_classes: int, rows: int, steps: int, seed: int, method: str,
                 classes: str, device: str = "cpu"):
    """(rows * steps, ...) samples, row-major (a row is one walk), and the class of each (or None)."""
    import torch

    from gantui.models.walks import walk

    gen = torch.Generator(device="cpu").manual_seed(seed)
    z0 = torch.randn(rows, latent_dim, generator=gen)
    z1 = torch.randn(rows, latent_dim, generator=gen)
    conditional = n_classes > 0
    with torch.inference_mode():
        if conditional and classes == "walk":
            if not (hasattr(generator, "embed") and hasattr(generator, "decode")):
                raise UserError("--classes walk: this generator has no class embedding to walk along; "
                                "use --classes fixed")
            y0 = torch.arange(rows) % n_classes
            e0 = generator.embed(y0.to(device)).float().cpu()
            e1 = generator.embed(((y0 + 1) % n_classes).to(device)).float().cpu()
            emb = walk(e0, e1, steps, method).reshape(rows * steps, -1)
            z = z0.unsqueeze(1).expand(rows, steps, latent_dim).reshape(rows * steps, latent_dim)
            out = generator.decode(torch.cat([z, emb], dim=1).to(device)).float().cpu()
            labels = y0.repeat_interleave(steps)
            return out, labels
        z = walk(z0, z1, steps, method).reshape(rows * steps, latent_dim)
        y = (torch.arange(rows) % n_classes).repeat_interleave(steps) if conditional else None
        out = torch.cat([generator(z[i:i + 1024].to(device), None if y is None else y[i:i + 1024].to(device)).float()
                         for i in range(0, len(z), 1024)]).cpu()
        return out, y


def write_walks(checkpoint, path: Path | None, rows: int, steps: int, seed: int, method: str, classes: str,
                ansi: bool, device: str = "cpu", trust_code: bool = False) -> None:
    import numpy as np

    from gantui.checkpoint import load_generator
    from gantui.evaluation.measure import REAL_SEED_BASE

    loaded = load_generator(checkpoint, device, trust_code=trust_code, command="sample")
    n_classes = getattr(loaded.generator, "n_classes", 0) or 0
    fake, labels = walk_samples(loaded.generator, loaded.generator.latent_dim, n_classes, rows, steps, seed,
                                method, classes, device)
    samples = fake.numpy().astype(np.float32)
    real = None
    if loaded.info.is_toy and (ansi or (path is not None and path.suffix.lower() == ".png")):
        real = loaded.load_dataset("cpu").real_batch(rows * steps, REAL_SEED_BASE + seed)[0].numpy()
    what = f"{rows} {method} walks of {steps} steps"
    if n_classes:
        what += (", one class per row (row i: class i mod " + str(n_classes) + ")" if classes == "fixed"
                 else ", each row from class i to class i+1")
    if path is not None:
        from gantui import pictures

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix.lower() == ".npy":
                np.save(path, samples)
            elif samples.ndim == 4:
                pictures.grid_image(samples, steps).save(path)
            else:
                pictures.scatter_image(samples, real).save(path)
        except OSError as e:
            raise UserError(f"--out {path}: cannot write: {e.strerror or e}") from None
        print(f"wrote {path} ({what}, step {loaded.step}{', EMA weights' if loaded.uses_ema else ''})",
              file=sys.stderr)
    if ansi:
        print_walks(samples, real, rows, steps)
        print(what, file=sys.stderr)


def walk_text(samples, real, rows: int, steps: int, width: int, height: int, color: str):
    """The walks as half-block text: one walk per row, `steps` tiles across (toy data: the points)."""
    from gantui import render

    if samples.ndim != 4:
        return ansi_text(samples, real, None, width, height, color)
    _, _, h, w = samples.shape
    cw = max(1, (width - (steps - 1)) // steps)
    ch = max(1, (height - (rows - 1)) // rows)
    scale = min(cw / w, 2 * ch / h)
    cell_w = min(cw, max(1, round(w * scale)))
    cell_h = min(ch, max(1, -(-round(h * scale) // 2)))
    return render.image_grid(samples, steps, rows, cell_w, cell_h, color)


def print_walks(samples, real, rows: int, steps: int) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    width = max(20, console.width)
    height = max(12, console.height - 2)
    console.print(walk_text(samples, real, rows, steps, width, height, color_mode()))
