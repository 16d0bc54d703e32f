"""The run's best checkpoint: `checkpoints/best.safetensors`, rewritten (atomically, by the same writer
as every checkpoint) each time the live-quality criterion `run.best_by` improves.

`BestTracker` decides; the trainer writes. What it knows travels in every checkpoint's metadata as
`best` = {"key", "value", "step"} (JSON), so a resumed run keeps comparing against the best so far,
and `gantui runs`/`compare` read the best step and value from best.safetensors' header without torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gantui.vocab import criteria

from gantui.vocab.run_files import BEST, CHECKPOINTS


@dataclass(frozen=True)
class Best:
    key: str
    value: float
    step: int

    def to_json(self) -> str:
        return json.dumps({"key": self.key, "value": self.value, "step": self.step})


def parse(text: str | None) -> Best | None:
    """A `best` metadata value, or None when absent or not one (a checkpoint is untrusted input)."""
    if not text:
        return None
    try:
        d = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(d, dict):
        return None
    key, value, step = d.get("key"), d.get("value"), d.get("step")
    if key not in criteria.KEYS or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or isinstance(step, bool) or not isinstance(step, int) or step < 0:
        return None
    return Best(key, float(value), step)


class BestTracker:
    """Offered every live-quality record; says when it is the best so far."""

    def __init__(self, key: str, previous: Best | None = None) -> None:
        self.key = key
        self.best = previous if previous is not None and previous.key == key else None
        self.missing = False   # the key was never in a quality record (e.g. `is` on unlabelled data)

    def offer(self, step: int, record: dict[str, Any]) -> bool:
        value = record.get(self.key)
        if value is None:
            self.missing = True
            return False
        if criteria.improves(self.key, value, None if self.best is None else self.best.value):
            self.best = Best(self.key, float(value), step)
            return True
        return False


def read(run_dir: Path) -> tuple[Path, Best] | None:
    """best.safetensors of a run directory and what it holds, from its header (no torch), or None."""
    from gantui.engine import checkpoint_files as checkpoints

    path = Path(run_dir) / CHECKPOINTS / BEST
    if not path.is_file():
        return None
    try:
        meta = checkpoints.metadata(path)
    except (checkpoints.Damaged, OSError):
        return None
    best = parse(meta.get("best"))
    return (path, best) if best is not None else None


def best_checkpoint_of(target: str | Path, flag: str = "--best") -> Path:
    """The best checkpoint `--best` names: RUN_DIR/checkpoints/best.safetensors (UserError otherwise)."""
    from gantui.errors import UserError

    p = Path(target)
    if p.is_file():
        if p.name == BEST:
            return p
        raise UserError(f"{flag}: {p} is a checkpoint file; give the run directory (or the best.safetensors "
                        f"file itself, without {flag})")
    if not p.is_dir():
        raise UserError(f"{flag}: {p}: no such run directory")
    path = p / CHECKPOINTS / BEST
    if not path.is_file():
        raise UserError(f"{flag}: {p}: no checkpoints/{BEST} (a run keeps one while live quality is on: "
                        f"[log] eval_every > 0, and after its first measurement)")
    return path
