"""What a run IS, and what may change when it is resumed: the one table of config keys.

A run's identity is every key its checkpoint's tensors or its history's meaning depend on: the
data, the model, the loss kind, the optimiser (its state tensors), the seed. A resume in place that
would change one is refused (fork it into a new directory instead); every other key (rates, steps,
n_critic, log cadence, the settings a live fix changes, alert thresholds) may change, and a
resume that changes one records a `config_changed` event with the diff.

Classify a new key here, once: an exact `section.key` wins over its section's `section.*`, and a
key in neither is identity (refusing a harmless change is a nuisance; allowing a harmful one
rewrites a run). tests/test_resume_identity.py fails for a config key this table does not name.
Pure: imports nothing but the standard library, so any layer may use it.
"""

from __future__ import annotations

from typing import Any

IDENTITY = "identity"
MUTABLE = "mutable"

KEY_CLASSES: dict[str, str] = {
    "run.*": IDENTITY,                # name, seed: the run's directory name, the data drawn
    "run.description": MUTABLE,
    "run.steps": MUTABLE,             # a resume continues to the run's own unless --steps says otherwise
    "run.device": MUTABLE,
    "run.precision": MUTABLE,
    "run.compile": MUTABLE,
    "data.*": IDENTITY,               # name, root, image_size, channels, n_samples, modes
    "data.batch_size": MUTABLE,
    "data.download": MUTABLE,
    "data.holdout": MUTABLE,          # a resume keeps the checkpoint's held-out slice (holdout.index) whatever it says
    "data.augment": MUTABLE,          # augmentation of D's inputs: a live fix (d_overfitting) may turn it on
    "data.augment_p": MUTABLE,
    "data.augment_target": MUTABLE,
    "data.augment_images": MUTABLE,
    "model.*": IDENTITY,              # every key shapes G's or D's tensors
    "model.sync_bn": MUTABLE,
    "loss.*": MUTABLE,                # n_critic, gp_lambda, clip, label_smoothing, instance_noise, r1_gamma
    "loss.kind": IDENTITY,            # the meaning of every loss and D(x) in the history
    "optim.*": MUTABLE,               # rates, betas, decay
    "optim.name": IDENTITY,           # the optimiser state tensors in the checkpoint
    "log.*": MUTABLE,
    "diagnostics.*": MUTABLE,
    "run.best_by": MUTABLE,           # a new criterion starts a new best (engine/best.py drops one of another key)
    "stop.*": MUTABLE,                # when to stop: the run's tensors and history mean the same
    "recover.*": MUTABLE,             # what to do about an alert
    "notify.*": MUTABLE,              # who is told
}


def key_class(key: str) -> str:
    """IDENTITY or MUTABLE for a dotted key such as `loss.kind`."""
    if key in KEY_CLASSES:
        return KEY_CLASSES[key]
    return KEY_CLASSES.get(key.split(".", 1)[0] + ".*", IDENTITY)


def is_classified(key: str) -> bool:
    return key in KEY_CLASSES or key.split(".", 1)[0] + ".*" in KEY_CLASSES


def flatten(tables: dict) -> dict[str, Any]:
    """{'loss': {'kind': 'ns'}} -> {'loss.kind': 'ns'}."""
    return {f"{section}.{key}": value
            for section, table in tables.items() if isinstance(table, dict)
            for key, value in table.items()}


def diff(old: dict, new: dict) -> dict[str, tuple[Any, Any]]:
    """The keys whose values differ between two config dicts (Config.to_dict()), as (old, new)."""
    a, b = flatten(old), flatten(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def split(changes: dict[str, tuple[Any, Any]]) -> tuple[dict, dict]:
    """(identity changes, mutable changes)."""
    ident = {k: v for k, v in changes.items() if key_class(k) == IDENTITY}
    return ident, {k: v for k, v in changes.items() if k not in ident}


def describe(changes: dict[str, tuple[Any, Any]], limit: int = 6) -> str:
    """`loss.kind 'ns' -> 'wgan_gp', model.g_width 64 -> 32` (at most `limit`, then how many more)."""
    parts = [f"{k} {old!r} -> {new!r}" for k, (old, new) in list(changes.items())[:limit]]
    if len(changes) > limit:
        parts.append(f"and {len(changes) - limit} more")
    return ", ".join(parts)


def as_event(changes: dict[str, tuple[Any, Any]]) -> dict[str, dict[str, Any]]:
    """The `changes` field of a `config_changed` event: {key: {"from": old, "to": new}}."""
    return {k: {"from": old, "to": new} for k, (old, new) in changes.items()}
