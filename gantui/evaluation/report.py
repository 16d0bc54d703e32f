"""How an evaluation result is shown: one JSON object, or a rich table on a terminal."""

from __future__ import annotations

import json
import math
from typing import Any, TextIO

# (key, label, how to read it); rows whose key is absent from a result are left out.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("modes_captured", "modes captured", "modes with at least one high-quality sample (of modes_total)"),
    ("modes_captured_strict", "modes captured (strict)", "modes with at least 20 high-quality samples"),
    ("hq_fraction", "high-quality fraction", "samples within 3 std of their nearest mode; higher is better"),
    ("reverse_kl", "reverse KL", "KL(generated mode histogram || uniform); 0 = balanced, log K = one mode"),
    ("wasserstein1", "Wasserstein-1", "exact 1-D distance to as many real samples; lower is better"),
    ("fid", "FID", "Fréchet distance of feature Gaussians; lower is better, ~0 for real vs real"),
    ("kid", "KID", "unbiased MMD^2, cubic kernel, mean ± std over subsets; lower is better"),
    ("precision", "precision", "generated inside the real manifold (k=3); fidelity"),
    ("recall", "recall", "real inside the generated manifold (k=3); diversity"),
    ("density", "density", "real-neighbourhood hits per generated sample / k (k=5); ~1 for matched sets"),
    ("coverage", "coverage", "real neighbourhoods holding a generated sample (k=5); ~0.97 at best"),
    ("classes_covered", "classes covered", "classes with at least one confidently classified sample"),
    ("confident_fraction", "confident fraction", "samples the classifier labels with p >= 0.9"),
    ("class_kl", "class KL", "KL(generated class histogram || uniform); 0 = balanced"),
    ("label_accuracy", "label accuracy", "conditional G: samples classified as the class asked for"),
)


def clean(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null (the table shows them as words)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def to_json(result: dict) -> str:
    return json.dumps(clean(result), allow_nan=False)


def _fmt(key: str, value: Any, result: dict) -> str:
    if value is None:
        return "n/a"
    if key in ("modes_captured", "modes_captured_strict"):
        return f"{value} / {result.get('modes_total', '?')}"
    if key == "classes_covered":
        return f"{value} / {result.get('n_classes', '?')}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if key in ("hq_fraction", "confident_fraction", "label_accuracy"):
            return f"{value:.1%}"
        if key == "kid":
            std = result.get("kid_std")
            text = f"{value:.4f} ± {std:.4f}" if isinstance(std, float) else f"{value:.4f}"
            size = result.get("kid_subset_size")
            return f"{text} ({result.get('kid_subsets', '?')} × {size})" if size else text
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


def print_table(result: dict, file: TextIO | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file)
    weights = "EMA" if result.get("ema") else "raw"
    title = (f"gantui eval · {result['checkpoint']} · step {result['step']} · {result['data']} · "
             f"{result['n_samples']} samples · seed {result['seed']} · {weights} G weights")
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    table.add_column("meaning", style="dim")
    for key, label, meaning in ROWS:
        if key in result:
            table.add_row(label, _fmt(key, result[key], result), meaning)
    console.print(table)
    if result.get("sizes_note"):
        console.print(f"note: {result['sizes_note']}", highlight=False)
    if "feature_extractor" in result:
        console.print(f"features: {result['feature_extractor']}", highlight=False)
    if result.get("classifier") and result.get("classifier") != result.get("feature_extractor"):
        console.print(f"classes: {result['classifier']}", highlight=False)
    console.print(f"{result['seconds']:.1f} s on {result['device']}", style="dim", highlight=False)
