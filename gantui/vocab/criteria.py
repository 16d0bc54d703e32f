"""Which live-quality figure judges a run's checkpoints, and which way is better: the criterion behind
`run.best_by` (the best checkpoint) and the `[stop]` rules. Pure Python (the config imports it).

- images: `fid` (the default, lower is better), `kid` (lower), `is` (higher) and `class_coverage`
  (higher; labelled data);
- toy mixtures: `mode_score` (the default, higher), `modes_captured`, `hq_fraction` (higher) and `w1`
  (lower; mixture1d only).

`mode_score` = modes captured / modes total x high-quality fraction: one number that is 1 only when
every mode has a sample on it and every sample lies on a mode, and that falls when a mode is lost
(a collapse) or when samples drift between the modes (blur), the two failures the toy data exist
to show.
"""

from __future__ import annotations

import math

IMAGE_KEYS = ("fid", "kid", "is", "class_coverage")
TOY_KEYS = ("mode_score", "modes_captured", "hq_fraction", "w1")
KEYS = IMAGE_KEYS + TOY_KEYS
LOWER_IS_BETTER = frozenset(("fid", "kid", "w1"))
AUTO = {"images": "fid", "toy": "mode_score"}


def resolve(best_by: str, is_toy: bool) -> str:
    """The live-quality key `best_by` names (`"auto"`: fid for images, mode_score for toy data)."""
    if best_by == "auto":
        return AUTO["toy" if is_toy else "images"]
    return best_by


def lower_is_better(key: str) -> bool:
    return key in LOWER_IS_BETTER


def improves(key: str, new: float, old: float | None, min_delta: float = 0.0) -> bool:
    """`new` is better than `old` by more than `min_delta` (any finite value improves on none)."""
    if not _finite(new):
        return False
    if old is None:
        return True
    return new < old - min_delta if lower_is_better(key) else new > old + min_delta


def reached(key: str, value: float, target: float) -> bool:
    """`value` is at `target` or better (fid <= 5, is >= 8)."""
    if not _finite(value):
        return False
    return value <= target if lower_is_better(key) else value >= target


def mode_score(modes_captured: int, modes_total: int, hq_fraction: float) -> float:
    return (modes_captured / modes_total) * hq_fraction if modes_total else 0.0


def valid_for(key: str, data_name: str, is_toy: bool) -> str | None:
    """None when `key` is measured on this data, else the words of what is expected."""
    keys = TOY_KEYS if is_toy else IMAGE_KEYS
    if key == "w1" and data_name != "mixture1d":
        keys = tuple(k for k in keys if k != "w1")
    if key in keys:
        return None
    kind = f"toy data {data_name!r}" if is_toy else f"image data {data_name!r}"
    return f"one of {', '.join(repr(k) for k in keys)} for {kind}"


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
