"""The run directory of DESIGN's contract: config.toml, metrics.jsonl, events.jsonl, samples/, checkpoints/."""

from __future__ import annotations

import os
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from gantui.engine.jsonl import Appender
from gantui.vocab import run_files


def default_run_dir(name: str, root: Path = Path("runs")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{name}-{stamp}"
    n = 1
    while path.exists():  # two runs started in the same second
        n += 1
        path = root / f"{name}-{stamp}-{n}"
    return path


class RunDir:
    """Append-only writers for one run. Safe to call from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.samples = self.path / run_files.SAMPLES
        self.checkpoints = self.path / run_files.CHECKPOINTS
        self._lock = threading.Lock()
        self._metrics = None
        self._events = None

    def open(self, config_toml: str) -> None:
        for folder in (self.path, self.samples, self.checkpoints):
            folder.mkdir(parents=True, exist_ok=True)
        (self.path / run_files.CONFIG).write_text(config_toml)
        self._metrics = Appender(self.path / run_files.METRICS)
        self._events = Appender(self.path / run_files.EVENTS)

    @property
    def is_open(self) -> bool:
        return self._events is not None and not self._events.closed

    def metric(self, record: dict[str, Any]) -> None:
        self._write(self._metrics, record)

    def event(self, record: dict[str, Any]) -> None:
        self._write(self._events, record)

    def _write(self, stream: Appender | None, record: dict[str, Any]) -> None:
        if stream is None:
            return
        with self._lock:
            if not stream.closed:
                stream.append(record)

    def save_traceback(self, exc: BaseException) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / run_files.TRACEBACK
        target.write_text("".join(traceback.format_exception(exc)))
        return target

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoints / f"step_{step:08d}.safetensors"

    @property
    def latest(self) -> Path:
        return self.checkpoints / run_files.LATEST

    def sample_path(self, step: int) -> Path:
        return self.samples / f"step_{step:08d}.png"

    def prune_checkpoints(self, keep: int, folder: Path | None = None) -> None:
        """Keep the `keep` step checkpoints of the highest step numbers (by number, not name)."""
        from gantui.engine.checkpoint_files import step_checkpoints

        found = step_checkpoints(folder or self.checkpoints)
        for _, old in found[: max(0, len(found) - keep)]:
            old.unlink(missing_ok=True)

    def branch(self, step: int, n: int) -> dict[str, str]:
        """A rollback to `step` (the `n`-th): move everything recorded past it out of the main
        history into branch files, so the main history's steps stay strictly increasing and
        nothing is lost: `metrics.abandoned-<n>.jsonl`, `events.abandoned-<n>.jsonl`, and the
        step checkpoints, sample files and rollback points past `step` into `checkpoints/abandoned-<n>/`,
        `samples/abandoned-<n>/` and `checkpoints/rollback/abandoned-<n>/`. Returns {what: path} of what was written."""
        import re

        from gantui.engine.jsonl import split_after

        out: dict[str, str] = {}
        with self._lock:
            for what, name, attr in (("metrics", run_files.METRICS, "_metrics"), ("events", run_files.EVENTS, "_events")):
                stream = getattr(self, attr)
                if stream is None or stream.closed:
                    continue
                stream.close()
                target = self.path / run_files.abandoned(name, n)
                if split_after(self.path / name, step, target):
                    out[what] = str(target)
                setattr(self, attr, Appender(self.path / name))
            pattern = re.compile(r"^step_(\d{8,})\.\w+$")
            for what, folder in (("checkpoints", self.checkpoints), ("samples", self.samples),
                                 ("rollback_points", self.checkpoints / run_files.ROLLBACK)):
                try:
                    names = sorted(os.listdir(folder))
                except OSError:
                    continue
                moved = [x for x in names if (m := pattern.match(x)) and int(m.group(1)) > step]
                if moved:
                    dest = folder / run_files.abandoned(folder.name, n)
                    dest.mkdir(exist_ok=True)
                    for x in moved:
                        os.replace(folder / x, dest / x)
                    out[what] = str(dest)
        return out

    def sync(self) -> None:
        """fsync the JSONL files (at checkpoints: the records a checkpoint continues from are durable)."""
        with self._lock:
            for stream in (self._metrics, self._events):
                if stream is not None and not stream.closed:
                    stream.sync()

    def close(self) -> None:
        with self._lock:
            for stream in (self._metrics, self._events):
                if stream is not None and not stream.closed:
                    stream.close()
