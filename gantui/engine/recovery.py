"""Recovery (`[recover]`): when the run diverges, or an alert of `recover.on` is still raised after
`grace_steps`, the trainer rolls back to a good checkpoint, applies that alert's fix and goes on.

This module holds the decisions, free of the loop: which alert is overdue, whether the run is
healthy enough to refresh its rollback point, which checkpoint to go back to, which fix to apply.
The trainer does the acting (restore, branch the records, apply the fix through the same command
path the monitor's `f` key uses: `gantui.engine.control.command_for`).

Rollback points: `checkpoints/rollback/step_N.safetensors`, written (atomically, like every
checkpoint) every `log.eval_every` steps (`log.checkpoint_every` when live quality is off) while
every rule of `on` is healthy (neither raised nor building up: verdict ok or off). The newest
`points` of them are kept: enough to reach back past the window of records that raises an alert
(a rule raises once its condition held in most of a window, so the trouble began a window before
the raise). `log.keep` does not count or remove them, so a run with `keep = 0` still has a point
to roll back to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gantui.diagnostics import actions
from gantui.diagnostics.health import ALERT, WATCH
from gantui.engine import checkpoint_files as ck
from gantui.vocab import run_files

ROLLBACK_DIR = run_files.ROLLBACK
BEST = run_files.BEST              # the run's best checkpoint, when [run] best_by keeps one
DIVERGENCE = "divergence"
EXIT_DIVERGED = 3                  # as a run without [recover]
EXIT_UNRECOVERED = 4               # an alert of `on` outlived max_attempts rollbacks

# Divergence carries no live action (the engine has stopped when it is raised); its fix sentence
# says "both learning rates halved", and that is what a rollback applies.
DIVERGENCE_FIX = actions.scale_lr("both", 0.5)


@dataclass(frozen=True)
class Target:
    path: Path
    step: int
    kind: str          # "best" | "rollback point" | "checkpoint"


def fix_for(alert: dict[str, Any]) -> dict[str, Any] | None:
    """The action a rollback applies for an alert: the alert's own live action (the one `f`
    applies), or for divergence the halving its fix sentence names."""
    if alert.get("rule") == DIVERGENCE:
        return dict(DIVERGENCE_FIX)
    return actions.normalise(alert.get("action"))


class Recovery:
    def __init__(self, cfg, log_cfg, window: int = 20) -> None:
        self.enabled = bool(cfg.enabled)
        self.on = tuple(cfg.on)
        self.grace_steps = int(cfg.grace_steps)
        self.max_attempts = int(cfg.max_attempts)
        self.every = int(log_cfg.eval_every or log_cfg.checkpoint_every)
        self.log_every = int(log_cfg.every)
        self.window = int(window)
        span = self.window * self.log_every
        self.points = min(10, 2 + -(-span // max(1, self.every)))
        self.attempts = 0

    def watches(self, rule: str) -> bool:
        return self.enabled and rule in self.on

    def overdue(self, active: list[dict], step: int) -> dict | None:
        """The oldest alert of `on` raised at least `grace_steps` ago, else None."""
        for alert in sorted(active, key=lambda a: a.get("step", 0)):
            rule = alert.get("rule")
            if rule != DIVERGENCE and self.watches(rule) and step - int(alert.get("step", step)) >= self.grace_steps:
                return alert
        return None

    def healthy(self, health: dict) -> bool:
        """Every rule of `on` is ok or off (not raised, not building up): a good rollback point."""
        return not any(v.level in (ALERT, WATCH) for name, v in health.items() if name in self.on)

    def point_due(self, step: int) -> bool:
        return self.enabled and self.every > 0 and step % self.every == 0

    def rose_at(self, alert: dict) -> int:
        """The step where the alert's trouble began: its raise step less the window of records
        that raised it (a rule raises once its condition held in most of a window)."""
        step = int(alert.get("step", 0))
        if alert.get("rule") == DIVERGENCE:
            return step
        evidence = alert.get("evidence") or {}
        window = evidence.get("window") if isinstance(evidence, dict) else None
        span = int(window) * self.log_every if isinstance(window, int) and alert.get("rule") != "mode_dropping" else 0
        return max(0, step - span)

    def target(self, folder: Path, alert: dict, current: int) -> Target | None:
        """Where to roll back to: the best checkpoint when the run keeps one (and it is behind the
        current step), else the newest whole checkpoint from before the alert first rose (the
        rollback point is always such a one: it is only written while healthy)."""
        folder = Path(folder)
        best = folder / BEST
        if best.exists():
            try:
                s = ck.step_of(best)
                if s < current:
                    return Target(best, s, "best")
            except ck.Damaged:
                pass
        rose = self.rose_at(alert)
        found: list[Target] = []
        candidates = [(p, "rollback point") for _, p in ck.step_checkpoints(folder / ROLLBACK_DIR)]
        candidates += [(p, "checkpoint") for _, p in ck.step_checkpoints(folder)] + [(folder / ck.LATEST, "checkpoint")]
        for path, kind in candidates:
            try:
                s = ck.step_of(path)
            except ck.Damaged:
                continue
            if s < rose or (s == 0 and rose == 0):
                found.append(Target(path, s, kind))
        return max(found, key=lambda t: (t.step, t.kind == "rollback point"), default=None)
