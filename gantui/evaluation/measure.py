"""The numbers of `gantui eval` (and the pieces live quality shares): sampling a checkpoint's
generator, the real data it is compared with, the feature space, and the metrics.

    evaluate(checkpoint, n_samples=, device=, seed=, ...) -> the flat result dict `--json` prints

Everything is seeded (generated z from `seed`, real samples from REAL_SEED_BASE + seed), so the
same call gives the same numbers. Real images are read from `data_root` (default `data/`), never
from a location the checkpoint names, and nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

from gantui import limits
from gantui.devices import pick_device
from gantui.errors import DataError
from gantui.evaluation.features import log_stderr

TOY_SAMPLES = 2500             # DESIGN: the toy metrics are defined on 2,500 samples (eval's default, live quality's count)
DEFAULT_TOY_SAMPLES = TOY_SAMPLES
DEFAULT_IMAGE_SAMPLES = 10000  # "FID-10k": small enough for a CPU, large enough for a usable bias
REAL_SEED_BASE = 10_000        # real draws never share a seed with the generated z or the classifier's data


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

def toy_figures(data_cfg, fake, real_1d=None):
    """The toy figures of generated points, the one computation behind `gantui eval` and live quality:
    (mode report, exact 1-D Wasserstein-1 to `real_1d` for mixture1d, else None)."""
    from gantui.data import toy
    from gantui.evaluation import toy_metrics as tm

    name = data_cfg.name
    report = tm.mode_report(fake, toy.means(name, data_cfg.modes), toy.std(name))
    w1 = tm.wasserstein1_1d(fake, real_1d) if name == "mixture1d" and real_1d is not None else None
    return report, w1


def image_figures(real_f, fake_f, probs, space, *, seed: int, kid_subsets: int | None = None,
                  reference=None) -> dict:
    """FID, KID and (with the space's classifier) the class report of two feature sets: the one
    computation behind `gantui eval` and live quality. {"fid", "kid": KidReport, "classes": ClassReport|None}.
    `reference`: an image_metrics.RealReference of `real_f` (same seed and subsets), which gives the same
    FID and KID with the real side's statistics computed once (live quality measures again and again)."""
    from gantui.evaluation import image_metrics as im

    if reference is not None:
        fid, kid = reference.fid(fake_f), reference.kid_report(fake_f)
    else:
        fid = im.frechet_distance(real_f, fake_f)
        kid = (im.kernel_inception_distance(real_f, fake_f, seed=seed) if kid_subsets is None
               else im.kernel_inception_distance(real_f, fake_f, subsets=kid_subsets, seed=seed))
    classes = im.class_report(probs) if probs is not None and space.classifier is not None else None
    return {"fid": fid, "kid": kid, "classes": classes}


def toy_metrics(cfg, fake, seed: int) -> dict:
    from gantui.data import load_dataset

    real = None
    if cfg.data.name == "mixture1d":
        real, _ = load_dataset(cfg.data, "cpu", cfg.run.seed).real_batch(len(fake), REAL_SEED_BASE + seed)
    report, w1 = toy_figures(cfg.data, fake, real)
    out = report.to_dict()
    out["mode_histogram"] = out.pop("histogram")
    if w1 is not None:
        out["wasserstein1"] = w1
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
    figures = image_figures(real_f, fake_f, probs, space, seed=seed)
    out["fid"] = figures["fid"]
    kid = figures["kid"]
    out.update(kid=kid.kid, kid_std=kid.kid_std, kid_subset_size=kid.subset_size, kid_subsets=kid.subsets)
    manifold = im.manifold_metrics(real_f, fake_f)
    out.update(precision=manifold.precision, recall=manifold.recall, density=manifold.density,
               coverage=manifold.coverage, k_precision_recall=manifold.k_precision_recall,
               k_density_coverage=manifold.k_density_coverage, manifold_set_size=manifold.set_size,
               manifold_sets=manifold.sets)
    if len(real) != len(fake):
        out["sizes_note"] = sizes_note(len(real), len(fake), manifold.sets)
    if figures["classes"] is not None:
        out.update(figures["classes"].to_dict())
        out["classifier"] = space.classifier.name
        out["classifier_accuracy"] = space.classifier.accuracy
        if fake_labels is not None:
            out["label_accuracy"] = im.label_accuracy(probs, fake_labels)
    return out
