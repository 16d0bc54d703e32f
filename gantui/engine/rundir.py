"""The run directory of DESIGN's contract: config.toml, metrics.jsonl, events.jsonl, samples/, checkpoints/."""

from __future__ import annotations

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

    def prune_checkpoints(self, keep: int) -> None:
        """Keep the `keep` step checkpoints of the highest step numbers (by number, not name)."""
        from gantui.engine.checkpoint_files import step_checkpoints

        found = step_checkpoints(self.checkpoints)
        for _, old in found[: max(0, len(found) - keep)]:
            old.unlink(missing_ok=True)

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
