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

The checkpoint is untrusted: its model and data set *kind* come from it (validated and cross-checked by
gantui.checkpoint), but never the data's *location*: real images are read from `--data-root` (default
`data/`), and nothing is downloaded. With --json, stdout carries exactly one JSON object; progress goes to
stderr. Errors the user can fix (missing, truncated or mismatched checkpoints, bad weights files) print
one line and return 2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from pathlib import Path
from typing import Callable

from gantui import limits, paths
from gantui.errors import DataError, UserError

DEFAULT_TOY_SAMPLES = 2500     # DESIGN: the toy metrics are defined on 2,500 samples
DEFAULT_IMAGE_SAMPLES = 10000  # "FID-10k": small enough for a CPU, large enough for a usable bias
MIN_SAMPLES = limits.MIN_EVAL_SAMPLES
REAL_SEED_BASE = 10_000        # real draws never share a seed with the generated z or the classifier's data


def log_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            result = evaluate(checkpoint, n_samples=n_samples, device=device, seed=seed,
                              inception_weights=inception_weights, data_root=data_root, trust_code=trust_code)
    except UserError as e:
        print(f"gantui: {_one_line(str(e))}", file=sys.stderr)
        return e.exit_code
    from gantui.evaluation.report import print_table, to_json

    if as_json:
        sys.stdout.write(to_json(result) + "\n")
        sys.stdout.flush()
    else:
        print_table(result)
    return 0


def _one_line(text: str) -> str:
    return text.replace("\n", "\\n").replace("\r", "\\r")


def evaluate(checkpoint, *, n_samples: int | None = None, device: str | None = "auto", seed: int = 0,
             inception_weights=None, log: Callable[[str], None] = log_stderr, recipe=None,
             data_root: str | None = None, trust_code: bool = False) -> dict:
    """The result dict that `--json` prints (flat: scripts read `.fid` or `.modes_captured` directly).
    Real images come from `data_root` (default `data/`), never from a path the checkpoint names."""
    import torch

    from gantui.checkpoint import load_generator, local_data_config

    t0 = time.perf_counter()
    limits.check_int("--n-samples", n_samples, limits.MIN_EVAL_SAMPLES, limits.MAX_EVAL_SAMPLES)
    limits.check_int("--seed", seed, 0, limits.MAX_SEED)
    from gantui.engine.devices import pick_device

    dev = pick_device(device)
    loaded = load_generator(checkpoint, dev, trust_code=trust_code, command="eval")
    info = loaded.info
    # The checkpoint says which data set; the user says where it is (and nothing is downloaded).
    cfg = dataclasses.replace(loaded.config, data=local_data_config(loaded.config.data, data_root))
    n = n_samples if n_samples is not None else (DEFAULT_TOY_SAMPLES if info.is_toy else DEFAULT_IMAGE_SAMPLES)
    log(f"evaluating {loaded.path} (step {loaded.step}, {info.name}) on {n} samples, {dev}")
    with torch.inference_mode():
        fake, labels = loaded.sample(n, seed, dev)
    result = {
        "checkpoint": str(loaded.path), "step": loaded.step, "data": info.name,
        "kind": "toy" if info.is_toy else "images", "n_samples": n, "seed": seed, "device": str(dev),
        "ema": bool(loaded.uses_ema),
    }
    if info.is_toy:
        result.update(toy_metrics(cfg, fake, seed))
    else:
        space = feature_space(cfg, info, dev, inception_weights, log, recipe)
        real = real_images(cfg, n, REAL_SEED_BASE + seed, dev, info)
        conditional = getattr(loaded.generator, "n_classes", 0) > 0  # else the labels were ignored by G
        result.update(compare_images(real, fake, space, fake_labels=labels if conditional else None, seed=seed))
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result


# --- toy data ------------------------------------------------------------------------------

def toy_metrics(cfg, fake, seed: int) -> dict:
    from gantui.data import load_dataset, toy
    from gantui.evaluation import toy_metrics as tm

    name = cfg.data.name
    report = tm.mode_report(fake, toy.means(name, cfg.data.modes), toy.std(name))
    out = report.to_dict()
    out["mode_histogram"] = out.pop("histogram")
    if name == "mixture1d":
        real, _ = load_dataset(cfg.data, "cpu", cfg.run.seed).real_batch(len(fake), REAL_SEED_BASE + seed)
        out["wasserstein1"] = tm.wasserstein1_1d(fake, real)
    return out


# --- images --------------------------------------------------------------------------------

def _digits_config(data_cfg, n: int):
    return dataclasses.replace(data_cfg, n_samples=n)


def _real_set(cfg, n: int, seed: int, device, info=None):
    """The real data set: digits rendered afresh from `seed`, other sets from cfg.data.root. With `info`
    (the checkpoint's data), a set whose images differ in shape or classes is refused in one line."""
    from gantui.data import load_dataset

    if cfg.data.name == "digits":
        ds = load_dataset(_digits_config(cfg.data, n), device, seed)
    else:
        try:
            ds = load_dataset(cfg.data, device, cfg.run.seed)
        except DataError as e:
            # vision's message ends in advice for `run` (download, --set); eval never downloads
            reason = str(e).split(";")[0]
            raise DataError(f"{reason}; eval reads the real {cfg.data.name} data from --data-root DIR "
                            f"(default data/) and never downloads it") from None
    if info is not None and (tuple(ds.info.shape) != tuple(info.shape) or ds.info.n_classes != info.n_classes):
        raise DataError(
            f"the real data in {cfg.data.root}/ is {ds.info.name} of shape {tuple(ds.info.shape)} with "
            f"{ds.info.n_classes} classes but the checkpoint's generator makes {tuple(info.shape)} with "
            f"{info.n_classes}; point --data-root at the data it was trained on")
    return ds


def real_images(cfg, n: int, seed: int, device, info=None):
    """Up to n real images on `device`. digits are rendered afresh from `seed` (a held-out draw, and n images
    render much faster than the training set's 60,000); other sets draw min(n, size of the set) distinct
    images: a repeated real point would shrink its k-NN balls to nothing and wreck precision/recall."""
    ds = _real_set(cfg, n, seed, device, info)
    x, _ = ds.real_batch(min(n, len(ds)), seed)
    return x


def labelled_images(cfg, device, info=None) -> Callable:
    """labelled(n, seed) -> (x, y) for training the feature classifier."""

    def labelled(n: int, seed: int):
        ds = _real_set(cfg, n, seed, device, info)
        return ds.real_batch(min(n, len(ds)), seed)

    return labelled


def feature_space(cfg, info, device, inception_weights=None, log: Callable[[str], None] = log_stderr,
                  recipe=None, ae_recipe=None, data=None):
    """`data`: the real set when already loaded (live quality), else it is loaded from `cfg.data`."""
    from gantui.evaluation import features

    classifier = encoder = None
    weights = Path(inception_weights) if inception_weights else None
    if info.n_classes:
        name, labelled = info.name, labelled_images(cfg, device, info)
        if info.name in ("folder", "dataset"):
            # your own labelled images: the cached classifier is keyed by what they are, not by a name
            from gantui.data import load_dataset

            ds = data if data is not None else load_dataset(cfg.data, device, cfg.run.seed)
            name = f"{info.name}-{features.images_digest(ds.x)[:12]}"

            def labelled(n: int, seed: int):
                return ds.real_batch(min(n, len(ds)), seed)
        classifier = features.load_or_train_classifier(
            name, labelled, tuple(info.shape), info.n_classes, device, recipe or features.DEFAULT_RECIPE, log)
        classifier.model.to(device)
    elif features.find_inception_weights(weights) is None:
        # Unlabelled: an autoencoder trained once on all the real images (cached by their hash).
        from gantui.data import load_dataset

        ds = data if data is not None else load_dataset(cfg.data, device, cfg.run.seed)
        encoder = features.load_or_train_encoder(
            info.name, ds.x, device,
            ae_recipe or features.DEFAULT_AE_RECIPE, log)
    return features.select_feature_space(tuple(info.shape), classifier, device, weights, log, encoder)


def sizes_note(n_real: int, n_fake: int, sets: int) -> str:
    """One line saying how the metrics treat two sides of different sizes."""
    small = min(n_real, n_fake)
    return (f"{n_fake:,} generated vs {n_real:,} real images (the real side is capped at the data set's "
            f"size, drawn without replacement): FID and KID use all of both; precision, recall, density "
            f"and coverage average {sets} comparisons of {small:,} vs {small:,}")


def compare_images(real, fake, space, *, fake_labels=None, seed: int = 0) -> dict:
    """Every image metric for two image sets (N, C, H, W) in [-1, 1], in the feature space `space`."""
    from gantui.evaluation import image_metrics as im

    real_f, _ = space.embed(real)
    fake_f, probs = space.embed(fake)
    out: dict = {"feature_extractor": space.name, "feature_dim": space.dim, "n_real": len(real)}
    out["fid"] = im.frechet_distance(real_f, fake_f)
    kid = im.kernel_inception_distance(real_f, fake_f, seed=seed)
    out.update(kid=kid.kid, kid_std=kid.kid_std, kid_subset_size=kid.subset_size, kid_subsets=kid.subsets)
    manifold = im.manifold_metrics(real_f, fake_f)
    out.update(precision=manifold.precision, recall=manifold.recall, density=manifold.density,
               coverage=manifold.coverage, k_precision_recall=manifold.k_precision_recall,
               k_density_coverage=manifold.k_density_coverage, manifold_set_size=manifold.set_size,
               manifold_sets=manifold.sets)
    if len(real) != len(fake):
        out["sizes_note"] = sizes_note(len(real), len(fake), manifold.sets)
    if probs is not None and space.classifier is not None:
        out.update(im.class_report(probs).to_dict())
        out["classifier"] = space.classifier.name
        out["classifier_accuracy"] = space.classifier.accuracy
        if fake_labels is not None:
            out["label_accuracy"] = im.label_accuracy(probs, fake_labels)
    return out
