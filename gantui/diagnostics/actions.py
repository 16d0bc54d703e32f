"""The one-key fixes an alert can carry (`action`), as plain JSON-able dicts.

Two shapes, both with a `kind`:

* ``{"kind": "scale_lr", "which": "d" | "g" | "both", "factor": 0.5}``: multiply the rates.
  It keeps the `which` / `factor` keys of the first action form, so a consumer that only knows
  that form still applies it.
* ``{"kind": "set", "key": "loss.n_critic", "value": 2}``: set one config value, live. `key` is one
  of LIVE_KEYS, the values the engine can change without a restart.

Anything else (the loss kind, spectral norm, the architecture, the batch size) needs a restart and
is only ever named in the alert's `fix` sentence, never offered as an action.
"""

from __future__ import annotations

from typing import Any

WHICH = ("d", "g", "both")

# config key -> (what it is, the check of a value): the settings the engine applies live
LIVE_KEYS: dict[str, str] = {
    "loss.n_critic": "critic (D) steps per G step, an integer >= 1",
    "loss.label_smoothing": "one-sided label smoothing of D's real target, in [0, 1); 0 = off",
    "loss.instance_noise": "std of Gaussian noise added to D's real and fake inputs; 0 = off",
    "loss.gp_lambda": "weight of the gradient penalty, >= 0",
    "data.augment_p": "probability of augmenting each image D sees, in [0, 1] (turns DiffAugment on)",
    "data.augment_target": "adaptive augmentation (ADA) steering D's r_t towards this, in (0, 1)",
}


def scale_lr(which: str, factor: float) -> dict[str, Any]:
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    return {"kind": "scale_lr", "which": which, "factor": float(factor)}


def set_value(key: str, value: float | int) -> dict[str, Any]:
    if key not in LIVE_KEYS:
        raise ValueError(f"{key!r} cannot be changed live (live keys: {', '.join(LIVE_KEYS)})")
    return {"kind": "set", "key": key, "value": value}


def normalise(action: Any) -> dict[str, Any] | None:
    """An action in the current shape, or None when it is not one. Accepts the first form
    ``{"which", "factor"}`` (no kind), as old events.jsonl files carry it."""
    if not isinstance(action, dict):
        return None
    kind = action.get("kind", "scale_lr" if "factor" in action else None)
    try:
        if kind == "scale_lr":
            factor = float(action["factor"])
            return scale_lr(str(action["which"]), factor) if factor > 0 else None
        if kind == "set":
            value = action["value"]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            return set_value(str(action["key"]), value)
    except (KeyError, TypeError, ValueError):
        return None
    return None


def describe(action: Any) -> str:
    """A few words for a key hint or a log line: "halve D's rate", "n_critic -> 2"."""
    a = normalise(action)
    if a is None:
        return ""
    if a["kind"] == "scale_lr":
        who = {"d": "D's rate", "g": "G's rate", "both": "both rates"}[a["which"]]
        f = a["factor"]
        verb = {0.5: "halve", 2.0: "double"}.get(f)
        return f"{verb} {who}" if verb else f"{who} x{f:g}"
    return f"{a['key'].split('.', 1)[1]} -> {a['value']:g}"
