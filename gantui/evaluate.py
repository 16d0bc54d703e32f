"""`gantui eval`: judge a checkpoint without a screen.

    main(checkpoint, as_json, n_samples, device, seed, inception_weights) -> exit code

Loads the generator (EMA weights when the checkpoint has them) and the config stored inside the
checkpoint, draws `n_samples` samples from a fixed seed and compares them with as many distinct real ones
(capped at the data set's size; the output says when the two sides differ):

- toy mixtures: modes captured, high-quality fraction, reverse KL (gantui.evaluation.toy_metrics);
  mixture1d adds the exact 1-D Wasserstein-1 distance to real samples;
- images: FID, KID, precision/recall, density/coverage in a named feature space
  (gantui.evaluation.features), plus class coverage for labelled data.

Everything is seeded (generated z from `seed`, real samples from REAL_SEED_BASE + seed), so the same
command prints the same numbers.

The numbers are computed by gantui.evaluation.measure (this module is the command around it).

The checkpoint is untrusted: its model and data set *kind* come from it (validated and cross-checked by
gantui.checkpoint), but never the data's *location*: real images are read from `--data-root` (default
`data/`), and nothing is downloaded. With --json, stdout carries exactly one JSON object; progress goes to
stderr. Errors the user can fix (missing, truncated or mismatched checkpoints, bad weights files) print
one line and return 2.
"""

from __future__ import annotations

import contextlib
import sys

from gantui import limits, paths
from gantui.errors import UserError, report


def check_args(checkpoint, n_samples: int | None, seed: int, inception_weights=None, data_root=None) -> None:
    """The arguments of `gantui eval`, refused with one line before anything is loaded."""
    paths.check_input_path(checkpoint, "")
    limits.check_int("--n-samples", n_samples, limits.MIN_EVAL_SAMPLES, limits.MAX_EVAL_SAMPLES,
                     "50,000 is the FID-50k protocol's count")
    limits.check_int("--seed", seed, 0, limits.MAX_SEED)
    if inception_weights is not None:
        paths.check_input_path(inception_weights, "--inception-weights", "a .safetensors file")
    if data_root is not None:
        paths.check_input_path(data_root, "--data-root", "the directory holding the real data")


def main(checkpoint, as_json: bool = False, n_samples: int | None = None, device: str | None = "auto",
         seed: int = 0, inception_weights=None, data_root: str | None = None, trust_code: bool = False) -> int:
    try:
        check_args(checkpoint, n_samples, seed, inception_weights, data_root)
        # Anything a library prints while we work must not end up in the JSON on stdout.
        from gantui.evaluation.measure import evaluate

        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            result = evaluate(checkpoint, n_samples=n_samples, device=device, seed=seed,
                              inception_weights=inception_weights, data_root=data_root, trust_code=trust_code)
    except UserError as e:
        return report(e)
    from gantui.evaluation.report import print_table, to_json

    if as_json:
        sys.stdout.write(to_json(result) + "\n")
        sys.stdout.flush()
    else:
        print_table(result)
    return 0
