"""The config a `run --resume` continues with, and whether it may (torch-free, writes nothing).

The run's own config is the one its checkpoint holds. `gantui run --resume RUN` takes it as is
(`--set` and `--steps` on top); `gantui run PRESET --resume RUN` takes the preset's. Either way
`run.steps` stays the run's own unless `--steps` (or `--set run.steps=`) says otherwise, and the
keys gantui.vocab.config_keys calls the run's identity may change only in a fork (`--run-dir NEW`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantui import config
from gantui.engine import checkpoint_files as checkpoints
from gantui.errors import UserError
from gantui.vocab import config_keys as identity


@dataclass
class Resume:
    cfg: config.Config                 # what the resumed run trains with
    saved: config.Config               # what its checkpoint was trained with
    checkpoint: Path
    step: int
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def identity_changes(self) -> dict:
        return identity.split(self.changes)[0]


def checkpoint_of(resume: Path) -> Path:
    """The checkpoint `--resume` names: a file, or a run directory's newest whole one."""
    if resume.is_dir():
        try:
            return checkpoints.newest_complete(resume)[0]
        except FileNotFoundError:
            raise UserError(f"--resume {resume}: no complete checkpoint in {resume / 'checkpoints'}") from None
    return resume


def resolve(preset: str | None, sets: list[str], steps: int | None, resume: Path) -> Resume:
    ckpt = checkpoint_of(resume)
    try:
        meta = checkpoints.metadata(ckpt)
        step = checkpoints.step_of(ckpt)
    except checkpoints.Damaged as e:
        raise UserError(f"--resume {resume}: not a usable checkpoint ({e})") from None
    if meta.get("source") == "track":  # written by gantui.track: its loop is the user's, not a preset's
        raise UserError(f"--resume {resume}: a run of your own training loop (gantui.track); continue it from "
                        f"your script with gantui.track(..., resume=True); nothing was changed")
    saved = config.loads(meta["config"], source=f"{ckpt} (the config it was trained with)")
    if preset is None:
        raw = config.apply_overrides(saved.to_dict(), sets)
        cfg = config.from_dict(raw, source=f"{ckpt}'s config" + (" (with --set)" if sets else ""))
    else:
        cfg = config.load(preset, sets)
    if steps is not None:
        cfg = cfg.replace("run", steps=steps)
    elif not any(s.partition("=")[0].strip() == "run.steps" for s in sets):
        cfg = cfg.replace("run", steps=saved.run.steps)  # the run's own, never the preset's
    return Resume(cfg, saved, ckpt, step, identity.diff(saved.to_dict(), cfg.to_dict()))


def refuse_identity_change(r: Resume, resume: Path, preset: str | None, sets: list[str],
                           steps: int | None) -> None:
    """One line: the keys that would change what the run is, and the fork command."""
    keys = r.identity_changes
    if not keys:
        return
    fork = ["gantui", "run"] + ([preset] if preset else []) + [a for s in sets for a in ("--set", s)]
    fork += (["--steps", str(steps)] if steps is not None else []) + ["--resume", str(resume), "--run-dir", "NEW_DIR"]
    raise UserError(
        f"--resume {resume}: would change what this run is ({identity.describe(keys)}); nothing was changed. "
        f"Start a new run from its checkpoint instead: {shlex.join(fork)}")


def refuse_nothing_to_do(r: Resume, resume: Path, steps_given: bool) -> None:
    """A run already at (or past) the steps it would train to: one line, nothing written."""
    if r.step < r.cfg.run.steps:
        return
    if steps_given:
        raise UserError(f"--resume {resume}: the checkpoint is at step {r.step:,}; --steps {r.cfg.run.steps} "
                        f"is not beyond it, so there is nothing to train (nothing was changed)")
    raise UserError(
        f"--resume {resume}: finished, at step {r.step:,} of its {r.cfg.run.steps:,}; nothing was changed. "
        f"Train it further with a higher total: gantui run --resume {shlex.quote(str(resume))} "
        f"--steps {2 * r.step if r.step else 1}")
