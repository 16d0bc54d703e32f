"""The names inside a run directory (docs/run-directory.md is the contract): written once here,
asked by the engine that writes them and by every reader (watch, runs, export, compare, stop)."""

from __future__ import annotations

CONFIG = "config.toml"              # the resolved config, written at start
METRICS = "metrics.jsonl"           # one record per log step
EVENTS = "events.jsonl"             # one record per event
CHECKPOINTS = "checkpoints"         # step_NNNNNNNN.safetensors and latest.safetensors
LATEST = "latest.safetensors"       # inside CHECKPOINTS: the newest checkpoint
BEST = "best.safetensors"           # inside CHECKPOINTS: the best live quality by run.best_by (never pruned)
SAMPLES = "samples"                 # step_NNNNNNNN.png and .npz
LIVE = "live.json"                  # where a live run's control socket is
LOCK = ".gantui.lock"               # the flock of the process that owns the run
CONSOLE_LOG = "console.log"         # what a detached or hung-up run prints
TRACEBACK = "traceback.txt"         # a crash's traceback
TENSORBOARD = "tensorboard"         # [log] tensorboard = true: the live event file
BEST = "best.safetensors"           # inside CHECKPOINTS: the best checkpoint by [run] best_by
ROLLBACK = "rollback"               # inside CHECKPOINTS: [recover]'s rollback points (step_N.safetensors)


def abandoned(name: str, n: int) -> str:
    """The branch file or folder of the n-th rollback's abandoned stretch: metrics.jsonl ->
    metrics.abandoned-<n>.jsonl; a folder (checkpoints, samples, rollback) -> abandoned-<n>."""
    stem, dot, ext = name.partition(".")
    return f"{stem}.abandoned-{n}.{ext}" if dot else f"abandoned-{n}"

HISTORY = (METRICS, EVENTS)         # the records a resume truncates and a fork copies
RUN_FILES = (CONFIG, METRICS, EVENTS)  # any of them makes a folder a run directory
