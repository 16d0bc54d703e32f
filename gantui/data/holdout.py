"""`data.holdout`: a slice of the real data never trained on, so D's memorising shows.

D that memorises its training images calls them real and calls images of the same kind it has
never seen fake (Karras et al. 2020, "Training GANs with Limited Data", fig. 1: the held-out
reals' scores drift to the generated ones'). The engine compares D's outputs on a fixed batch
of training reals with those on the held-out slice at log steps (gantui.engine.overfit).

How many images are held out: `data.holdout` of the set (default 5 %), and never fewer than
MIN_HOLDOUT = 64. The signal is a difference of two means over the batches; with 64 images each
the standard error of each mean is 1/8 of D's per-image spread, so a gap of half the distance
between training reals and fakes (the rule's limit) stands several errors clear of zero, and
the rule also needs it to hold in most of a window of records. Below 64 the gap is mostly noise.
The holdout may take at most MAX_SHARE (a quarter) of the set: with fewer than 256 images,
holding 64 out would starve the training, so holdout is off and the run says so in one line
(as it does for toy mixtures, which are drawn fresh from a formula: nothing to memorise).

The slice is a function of the seed and the set's size alone (its own generator; the global RNG
is untouched), is saved in checkpoints (`holdout.index`) and restored on resume from there.
"""

from __future__ import annotations

import torch

from gantui.data import UnitView

MIN_HOLDOUT = 64
MAX_SHARE = 0.25
SEED_OFFSET = 19_019          # the slice's own generator: seed + this


def plan(n: int, fraction: float, is_toy: bool) -> tuple[int, str | None]:
    """(images to hold out, None) or (0, why holdout is off: one line for the event log)."""
    if fraction <= 0:
        return 0, "data.holdout = 0: no held-out slice; d_overfitting is off"
    if is_toy:
        return 0, ("data.holdout: off for toy mixtures (drawn fresh from a formula each batch, there is "
                   "nothing to memorise); d_overfitting is off")
    k = max(MIN_HOLDOUT, round(fraction * n))
    if k > MAX_SHARE * n:
        return 0, (f"data.holdout: off, {n} images are too few to hold out {k} (at least {MIN_HOLDOUT} make the "
                   f"signal meaningful, at most a quarter of the set may go); d_overfitting is off. "
                   f"It needs {max(4 * MIN_HOLDOUT, round(k / MAX_SHARE))} images or more")
    return k, None


def indices(n: int, k: int, seed: int) -> torch.Tensor:
    """The k held-out indices of a set of n (sorted int64), the same for the same (n, k, seed)."""
    g = torch.Generator().manual_seed(int(seed) + SEED_OFFSET)
    return torch.randperm(n, generator=g)[:k].sort().values


def split(data, hold: torch.Tensor) -> None:
    """Take the images at `hold` (indices into the whole set) out of `data`'s training tensor and
    keep them as `data.holdout_x` / `holdout_y`; `data.holdout_index` records them. A set already
    split is first made whole again, so a resume can restore the checkpoint's slice exactly."""
    whole_x, whole_y = whole(data)
    n = len(whole_x)
    hold = hold.to(torch.long).cpu()
    if len(hold) and (int(hold.min()) < 0 or int(hold.max()) >= n):
        raise ValueError(f"held-out index out of range for a set of {n}")
    keep = torch.ones(n, dtype=torch.bool)
    keep[hold] = False
    dev = whole_x.device
    raw = _raw(whole_x)
    data.holdout_x = _like(whole_x, raw[hold.to(dev)].contiguous())
    if isinstance(whole_x, UnitView) and whole_x is data.x:
        # a folder's images (read for this run alone): the kept rows move forward in place, so the
        # split never holds a second copy of the set (100,000 images: 410 MB less at the peak)
        data.x = UnitView(compact(raw, keep.nonzero().flatten().to(dev)))
    else:
        data.x = _like(whole_x, raw[keep.to(dev)].contiguous())
    data.y = None if whole_y is None else whole_y[keep.to(dev)]
    data.holdout_y = None if whole_y is None else whole_y[hold.to(dev)]
    data.holdout_index = hold


def compact(raw: torch.Tensor, rows: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """raw[rows] for ascending `rows`, written over raw's own first len(rows) rows in chunks and
    returned as a view of them: row j comes from rows[j] >= j, so no row is overwritten before it is
    read (later chunks read rows past everything written so far)."""
    for i in range(0, len(rows), chunk):
        part = rows[i : i + chunk]
        raw[i : i + len(part)] = raw[part]
    return raw[: len(rows)]


def whole(data) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The set with its held-out slice put back in its place."""
    hold = getattr(data, "holdout_index", None)
    if hold is None or len(hold) == 0:
        return data.x, data.y
    n = len(data.x) + len(hold)
    keep = torch.ones(n, dtype=torch.bool)
    keep[hold] = False
    train, held = _raw(data.x), _raw(data.holdout_x)
    x = torch.empty((n, *train.shape[1:]), dtype=train.dtype, device=train.device)
    x[keep.to(x.device)] = train
    x[hold.to(x.device)] = held
    x = _like(data.x, x)
    y = None
    if data.y is not None:
        y = torch.empty(n, dtype=data.y.dtype, device=data.y.device)
        y[keep.to(y.device)] = data.y
        y[hold.to(y.device)] = data.holdout_y
    return x, y


def _raw(x) -> torch.Tensor:
    """The stored tensor: a folder's uint8 images behind their UnitView, else the tensor itself."""
    return x.raw if isinstance(x, UnitView) else x


def _like(model, t: torch.Tensor):
    """`t` stored as `model` is (a UnitView over uint8 for folders)."""
    return UnitView(t) if isinstance(model, UnitView) else t


def apply(data, fraction: float, seed: int) -> str | None:
    """Hold out `fraction` of `data` (see plan); returns the line saying why not, or None."""
    data.holdout_x = data.holdout_y = data.holdout_index = None
    n = len(data) if not data.info.is_toy else 0
    k, why = plan(n, fraction, data.info.is_toy)
    if k == 0:
        return why
    split(data, indices(n, k, seed))
    return None
