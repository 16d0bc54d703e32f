"""A run in TensorBoard's format: `gantui export RUN_DIR --tensorboard OUT_DIR`, and `[log] tensorboard`.

What is written (the same by both ways, from the same encoders below):
- every numeric `metrics.jsonl` value (all keys but `step` and `time`) as a scalar series named
  by its key, at the record's step and wall time;
- every `events.jsonl` record as text under `events/<kind>` (alerts, rate changes, checkpoints, ...);
- every sample grid `samples/step_N.png` as an image under `samples` at step N.

`export` writes one file, `OUT_DIR/<run name>/events.out.tfevents.0.gantui-export`, through a
temporary file and a rename: exporting again replaces it, so points are never doubled.

`TensorBoardListener` writes the same while a run trains, to `<run-dir>/tensorboard/`, one file
per process. It is an engine listener (called on the training thread): each call only appends to a
list; encoding and writing happen every `flush_every_s` seconds and at the run's end. It never
raises into the engine: a failure (a full disk) is kept in `.error` and the writing stops.
A resumed run drops the points past its checkpoint's step from the earlier files (as `--resume`
does for metrics.jsonl) and starts its file with a SessionLog START, TensorBoard's restart mark.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gantui import runinfo, tbevents
from gantui.engine import events as ev
from gantui.engine import jsonl
from gantui.errors import UserError
from gantui.vocab.files import atomic_write
from gantui.vocab import run_files

EXPORT_NAME = "events.out.tfevents.0.gantui-export"
LIVE_DIR = run_files.TENSORBOARD
SAMPLES_TAG = "samples"              # the TensorBoard image tag
NOT_SCALARS = ("step", "time")
PNG = re.compile(r"^step_(\d{8,})\.png$")
NPZ = re.compile(r"^step_(\d{8,})\.npz$")
END_KINDS = ("finished", "stopped", "diverged", "error")


# --- the encoders both ways share --------------------------------------------------------------

def scalars_event(record: dict[str, Any], wall_time: float | None = None) -> bytes | None:
    """One metrics record -> one Event with a scalar per numeric key; None when it has none."""
    step = record.get("step")
    if not isinstance(step, int) or isinstance(step, bool):
        return None
    values = [tbevents.scalar_value(k, x) for k, v in record.items()
              if k not in NOT_SCALARS and (x := runinfo.number(v)) is not None]
    if not values:
        return None
    wall = runinfo.number(record.get("time")) if wall_time is None else wall_time
    return tbevents.summary_event(step, wall or time.time(), values)


def event_text(record: dict[str, Any]) -> str:
    """An events.jsonl record as one line of Markdown for TensorBoard's text dashboard."""
    kind = record.get("kind", "?")
    if kind == "alert":
        line = f"**{record.get('state', '?')}** `{record.get('rule', '?')}` ({record.get('severity', '?')}): {record.get('message', '')}"
        if record.get("state") == "raised" and record.get("fix"):
            line += f" Fix: {record['fix']}"
        return line
    rest = {k: v for k, v in record.items() if k not in ("step", "kind")}
    return f"**{kind}**" + (f" `{json.dumps(jsonl.jsonable(rest))}`" if rest else "")


def text_event(record: dict[str, Any], wall_time: float) -> bytes | None:
    step = record.get("step")
    if not isinstance(step, int) or isinstance(step, bool):
        return None
    tag = f"events/{record.get('kind', 'unknown')}"
    return tbevents.summary_event(step, wall_time, [tbevents.text_value(tag, event_text(record))])


def image_event(step: int, png: bytes, wall_time: float) -> bytes:
    return tbevents.summary_event(step, wall_time, [tbevents.image_value(SAMPLES_TAG, png)])


def sample_png(samples_dir: Path, step: int) -> bytes | None:
    """The PNG of a step's samples: the engine's own file, else drawn from its .npz; None if neither."""
    png = samples_dir / f"step_{step:08d}.png"
    try:
        return png.read_bytes()
    except OSError:
        pass
    npz = samples_dir / f"step_{step:08d}.npz"
    if not npz.is_file():
        return None
    import io

    from gantui import pictures
    from gantui.engine import sample_files

    s = sample_files.load(npz)
    img = pictures.grid_image(s.images) if s.images.ndim == 4 else pictures.scatter_image(s.images, s.real)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def sample_steps(samples_dir: Path) -> list[int]:
    try:
        names = os.listdir(samples_dir)
    except OSError:
        return []
    return sorted({int(m.group(1)) for n in names if (m := PNG.match(n) or NPZ.match(n))})


# --- export ------------------------------------------------------------------------------------

@dataclass
class ExportResult:
    path: Path
    scalars: dict[str, int]   # tag -> points
    texts: int
    images: int


def export_run(run_dir: Path, out_root: Path) -> ExportResult:
    run_dir = Path(run_dir)
    metrics: dict[int, dict[str, Any]] = {}
    for r in jsonl.read(run_dir / run_files.METRICS).records:
        step = r.get("step")
        if isinstance(step, int) and not isinstance(step, bool):
            metrics[step] = r  # a step written twice (a resume before truncation existed): the newest
    events = jsonl.read(run_dir / run_files.EVENTS).records
    times = sorted((s, t) for s, r in metrics.items() if (t := runinfo.number(r.get("time"))) is not None)
    fallback = _mtime(run_dir / run_files.EVENTS) or time.time()

    def wall_at(step: int) -> float:
        # events carry no time: use the newest metric record at or before their step
        best = None
        for s, t in times:
            if s > step:
                break
            best = t
        return best if best is not None else (times[0][1] if times else fallback)

    items: list[tuple[int, int, int, bytes]] = []  # (step, order, n, payload): sorted by step
    scalars: dict[str, int] = {}
    for step, r in sorted(metrics.items()):
        payload = scalars_event(r)
        if payload is not None:
            items.append((step, 0, len(items), payload))
            for k, v in r.items():
                if k not in NOT_SCALARS and runinfo.number(v) is not None:
                    scalars[k] = scalars.get(k, 0) + 1
    texts = 0
    for e in events:
        payload = text_event(e, wall_at(e["step"]) if isinstance(e.get("step"), int) else fallback)
        if payload is not None:
            items.append((e["step"], 1, len(items), payload))
            texts += 1
    images = 0
    samples_dir = run_dir / run_files.SAMPLES
    for step in sample_steps(samples_dir):
        png = sample_png(samples_dir, step)
        if png is None:
            continue
        try:
            payload = image_event(step, png, _mtime(samples_dir / f"step_{step:08d}.png") or wall_at(step))
        except ValueError:  # not a PNG (a damaged file): leave it out
            continue
        items.append((step, 2, len(items), payload))
        images += 1
    items.sort()

    out_dir = Path(out_root) / run_dir.resolve().name
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / EXPORT_NAME

    def write(f) -> None:
        f.write(tbevents.frame(tbevents.file_version_event(times[0][1] if times else fallback)))
        for *_, payload in items:
            f.write(tbevents.frame(payload))
    atomic_write(target, write)
    return ExportResult(target, scalars, texts, images)


def main(run_dir: Path, out_root: Path) -> int:
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    if not runinfo.is_run_dir(run_dir):
        raise UserError(f"{run_dir}: not a run directory (no config.toml or events.jsonl)")
    if out_root.exists() and not out_root.is_dir():
        raise UserError(f"--tensorboard {out_root}: is a file; give a directory")
    try:
        result = export_run(run_dir, out_root)
    except OSError as e:
        raise UserError(f"--tensorboard {out_root}: cannot write: {e.strerror or e}") from None
    points = sum(result.scalars.values())
    print(f"{result.path}: {len(result.scalars)} scalar series ({points} points), "
          f"{result.texts} events as text, {result.images} sample images")
    print(f"view it with: tensorboard --logdir {out_root}")
    return 0


# --- live ----------------------------------------------------------------------------------------

def attach_tensorboard(trainer) -> "TensorBoardListener | None":
    """What `[log] tensorboard = true` means: the shells that build a trainer (headless, the
    monitor) call this beside adding their other listeners. Rank 0 only; closed when the run ends."""
    if not (trainer.cfg.log.tensorboard and trainer.strategy.is_main):
        return None
    listener = TensorBoardListener(trainer.rundir.path)
    trainer.add_listener(listener)
    trainer.call_at_end(listener.close)
    return listener


class TensorBoardListener:
    """Writes a training run's TensorBoard file as it trains: `trainer.add_listener(TensorBoardListener(run_dir))`.

    Called on the training thread with the engine's messages (RunInfo, Snapshot, Samples, Event,
    StateChanged); call `close()` after the run (it flushes what is left). Thread-safe."""

    def __init__(self, run_dir: Path, flush_every_s: float = 10.0) -> None:
        self.run_dir = Path(run_dir)
        self.dir = self.run_dir / LIVE_DIR
        self.flush_every_s = flush_every_s
        self.path: Path | None = None
        self.error: str | None = None
        self._lock = threading.Lock()
        self._items: list[tuple] = []           # raw messages, encoded at flush
        self._pending_samples: dict[int, int] = {}  # step -> flushes that did not find its PNG yet
        self._last_flush = time.monotonic()
        self._start_step: int | None = None

    def __call__(self, message: ev.Message) -> None:
        if self.error is not None:
            return
        try:
            with self._lock:
                if isinstance(message, ev.RunInfo):
                    self._start_step = message.start_step
                elif isinstance(message, ev.Snapshot):
                    self._items.append(("scalars", dict(message.metrics)))
                elif isinstance(message, ev.Event):
                    if not message.journaled:
                        return   # a setup line events.jsonl never held: the export mirrors the journal
                    self._items.append(("text", message.record(), time.time()))
                elif isinstance(message, ev.Samples):
                    self._pending_samples.setdefault(int(message.step), 0)
                else:
                    return
                due = time.monotonic() - self._last_flush >= self.flush_every_s
                if due or (isinstance(message, ev.Event) and message.kind in END_KINDS):
                    self._flush()
        except Exception as e:  # noqa: BLE001 - never into the engine; stop writing instead
            self._fail(e)

    def flush(self) -> None:
        if self.error is not None:
            return
        try:
            with self._lock:
                self._flush()
        except Exception as e:  # noqa: BLE001
            self._fail(e)

    def close(self) -> None:
        self.flush()

    def _fail(self, e: Exception) -> None:
        self.error = f"TensorBoard writer stopped: {type(e).__name__}: {e}"
        self._items.clear()
        self._pending_samples.clear()

    def _open(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        start = self._start_step or 0
        if start > 0:
            for old in sorted(self.dir.glob("*tfevents*")):
                prune_after(old, start)
        stamp = int(time.time())
        path = self.dir / f"events.out.tfevents.{stamp:010d}.{socket.gethostname()}.{os.getpid()}.gantui"
        while path.exists():  # a second run in this process within the second: a later name, read after
            stamp += 1
            path = self.dir / f"events.out.tfevents.{stamp:010d}.{socket.gethostname()}.{os.getpid()}.gantui"
        head = tbevents.frame(tbevents.file_version_event(time.time()))
        if start > 0:  # TensorBoard drops points at steps > start read before this mark
            head += tbevents.frame(tbevents.session_start_event(start + 1, time.time()))
        with open(path, "ab") as f:
            f.write(head)
        self.path = path
        return path

    def _flush(self) -> None:
        self._last_flush = time.monotonic()
        out = bytearray()
        for item in self._items:
            if item[0] == "scalars":
                payload = scalars_event(item[1])
            else:
                payload = text_event(item[1], item[2])
            if payload is not None:
                out += tbevents.frame(payload)
        self._items.clear()
        samples_dir = self.run_dir / run_files.SAMPLES
        for step in sorted(self._pending_samples):
            png_path = samples_dir / f"step_{step:08d}.png"
            if png_path.is_file():
                del self._pending_samples[step]
                out += tbevents.frame(image_event(step, png_path.read_bytes(), _mtime(png_path) or time.time()))
            else:
                # samples published for the screen only (never saved) have no file: give up after two tries
                self._pending_samples[step] += 1
                if self._pending_samples[step] > 2:
                    del self._pending_samples[step]
        if not out:
            return
        path = self.path or self._open()
        with open(path, "ab") as f:
            f.write(out)


def prune_after(path: Path, step: int) -> int:
    """Keep the records of an event file with a step <= `step` (atomically); returns how many went."""
    data = Path(path).read_bytes()
    keep, dropped = [], 0
    for payload in tbevents.records(data):
        s = tbevents.event_step(payload)
        if s is not None and s > step:
            dropped += 1
        else:
            keep.append(payload)
    if not dropped:
        return 0
    atomic_write(path, b"".join(tbevents.frame(payload) for payload in keep))
    return dropped


def _mtime(path: Path) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None
