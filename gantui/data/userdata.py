"""`data.dataset = "package.module:function"`: your own data set, for data no file format covers.

The function (called with no arguments) returns a map-style torch Dataset: `len(ds)` and `ds[i]`
giving an image tensor (C, H, W) in [-1, 1], or a pair (image, label) with an integer label
0..K-1. It is read once, with a progress line, into one float32 tensor on the training device
(gantui samples batches by index with its own RNG, so resumes stay exact); every image must have
the same shape. Labels make the set usable by conditional models and give live quality and eval
a classifier feature space. Checks answer in one line naming the import path.
"""

from __future__ import annotations

import time

import torch

from gantui import usercode
from gantui.data import DataInfo, Dataset
from gantui.errors import DataError

PROGRESS_EVERY_S = 2.0


def load_user_dataset(cfg, device: torch.device, progress=None) -> Dataset:
    spec = cfg.dataset
    key = "data.dataset"
    ds = usercode.call(spec, key, {}, "data.dataset (no arguments)")
    try:
        n = len(ds)
    except TypeError:
        raise DataError(f"{key} = {spec!r}: expected a map-style Dataset (with len() and ds[i]), "
                        f"got a {type(ds).__name__}") from None
    if n == 0:
        raise DataError(f"{key} = {spec!r}: the data set is empty")
    images = labels = None
    t0 = last = time.monotonic()
    for i in range(n):
        try:
            item = ds[i]
        except Exception as e:  # noqa: BLE001 - the user's __getitem__ failed
            raise DataError(f"{key} = {spec!r}: ds[{i}] failed: {type(e).__name__}: {usercode.first_line(e)}") \
                from None
        if isinstance(item, (tuple, list)):  # (image,) as TensorDataset gives it, or (image, label)
            x, y = (item[0], item[1] if len(item) > 1 else None) if item else (None, None)
        else:
            x, y = item, None
        if not torch.is_tensor(x) or x.dim() != 3:
            raise DataError(f"{key} = {spec!r}: ds[{i}] gave {_what(x)}; expected an image tensor (C, H, W) "
                            f"in [-1, 1] (or a pair (image, label))")
        if images is None:
            if x.shape[0] not in (1, 3) or x.shape[1] != x.shape[2]:
                raise DataError(f"{key} = {spec!r}: ds[0] has shape {tuple(x.shape)}; expected square images "
                                f"with 1 or 3 channels (C, H, W)")
            images = torch.empty((n,) + tuple(x.shape), dtype=torch.float32)
            labels = torch.empty(n, dtype=torch.int64) if y is not None else None
        if tuple(x.shape) != tuple(images.shape[1:]):
            raise DataError(f"{key} = {spec!r}: ds[{i}] has shape {tuple(x.shape)} but ds[0] had "
                            f"{tuple(images.shape[1:])}; every image must have the same shape")
        if (y is None) != (labels is None):
            raise DataError(f"{key} = {spec!r}: ds[{i}] {'has no' if y is None else 'has a'} label but ds[0] "
                            f"{'had one' if y is None else 'had none'}")
        images[i] = x.detach().float()
        if labels is not None:
            labels[i] = int(y)
        now = time.monotonic()
        if progress is not None and (now - last >= PROGRESS_EVERY_S or i + 1 == n):
            last = now
            progress(f"reading {spec}: {i + 1:,}/{n:,} items ({(i + 1) / max(now - t0, 1e-9):,.0f}/s)")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1.0 - 1e-4 or hi > 1.0 + 1e-4 or not bool(torch.isfinite(images).all()):
        raise DataError(f"{key} = {spec!r}: images hold values in [{lo:.3g}, {hi:.3g}]; expected [-1, 1] "
                        f"(e.g. transforms.Normalize((0.5,), (0.5,)) after ToTensor)")
    if images.shape[-1] != cfg.image_size:
        raise DataError(f"{key} = {spec!r}: images are {images.shape[-1]} px but data.image_size = "
                        f"{cfg.image_size}; set data.image_size = {images.shape[-1]}")
    n_classes = 0
    if labels is not None:
        if int(labels.min()) < 0:
            raise DataError(f"{key} = {spec!r}: labels must be 0..K-1, got {int(labels.min())}")
        n_classes = int(labels.max()) + 1
    info = DataInfo(name="dataset", shape=tuple(images.shape[1:]), n_classes=n_classes, is_toy=False)
    return Dataset(info, images.to(device), None if labels is None else labels.to(device))


def _what(x) -> str:
    if torch.is_tensor(x):
        return f"a tensor of shape {tuple(x.shape)}"
    return f"a {type(x).__name__}"
