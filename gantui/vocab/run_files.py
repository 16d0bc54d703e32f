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

HISTORY = (METRICS, EVENTS)         # the records a resume truncates and a fork copies
RUN_FILES = (CONFIG, METRICS, EVENTS)  # any of them makes a folder a run directory
