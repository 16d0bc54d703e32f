"""What a run directory says about its run, read from its files alone.

`gantui runs`, `compare`, `export` and `watch` read runs they did not start, possibly while
another process writes them. Everything here reads files only (standard library: no torch, no
numpy), and reads little: the tail of `metrics.jsonl`, `events.jsonl` whole (it is small: a few
lines per checkpoint, alert or key press), one `stat` per file, and a probe of the run's lock.

State of a run (one source of truth: `run_state`):

- `running` while a live process holds the run's lock (`gantui.engine.runlock.holder`);
- otherwise the LAST lifecycle event in `events.jsonl` decides: `finished` -> finished;
  `stopped` with reason "interrupted" (Ctrl-C, SIGTERM) -> interrupted, any other `stopped`
  -> stopped; `diverged` -> diverged; `error` -> crashed;
- `started` with nothing after it, and no live holder: the process died without writing a
  final event (kill -9, power loss, out of memory) -> crashed, noted as such;
- no lifecycle event at all -> crashed, noted "never started".
"""

from __future__ import annotations

import math
import os
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from gantui.engine import best as best_mod
from gantui.engine import jsonl, runlock
from gantui.vocab import metrics as metrics_vocab
from gantui.vocab import run_files

RUNNING, FINISHED, STOPPED, INTERRUPTED, DIVERGED, CRASHED = (
    "running", "finished", "stopped", "interrupted", "diverged", "crashed")
STATES = (RUNNING, FINISHED, STOPPED, INTERRUPTED, DIVERGED, CRASHED)

LIFECYCLE = ("started", "finished", "stopped", "diverged", "error")

# Live-quality keys a metrics record may carry (on `log.eval_every` steps), best first: the first
# one present in every run is `compare`'s default metric. d_acc is a health figure, not quality.
QUALITY_KEYS = metrics_vocab.QUALITY_KEYS
SHOWN_QUALITY_KEYS = QUALITY_KEYS + ("modes_total", "d_acc")
LOSS_KEYS = ("d_loss", "g_loss")

# The tail of metrics.jsonl read for a summary (a record is ~400 bytes: ~160 records). Quality
# figures come every `eval_every` steps, so when the tail holds none a wider tail is tried once.
TAIL_BYTES = 64 * 1024
WIDE_TAIL_BYTES = 1024 * 1024


@dataclass
class RunState:
    state: str
    note: str = ""                 # why, in words: "ended without a final event", the error, ...
    pid: int | None = None         # the live holder (running only)
    paused: bool = False           # running and paused (from the paused/resumed events)
    last_event: dict[str, Any] | None = None


@dataclass
class RunSummary:
    name: str                      # the directory's name
    path: str
    preset: str                    # [run] name of its config.toml
    state: str
    note: str
    pid: int | None
    paused: bool
    step: int | None               # the newest step recorded (metrics or events)
    total_steps: int | None
    losses: dict[str, float | str] = field(default_factory=dict)   # last d_loss, g_loss (and wasserstein)
    quality: dict[str, float | str] = field(default_factory=dict)  # the newest value of each quality key
    quality_step: int | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)     # active: rule, severity, step, message
    updated: float | None = None   # epoch seconds of the newest write to metrics/events
    age_s: float | None = None     # seconds since then
    best: dict[str, Any] | None = None  # checkpoints/best.safetensors: key, value, step, path

    def to_json(self) -> dict[str, Any]:
        return jsonl.jsonable(asdict(self))


# --- finding runs -------------------------------------------------------------------------------

def is_run_dir(path: Path) -> bool:
    path = Path(path)
    return (path / run_files.CONFIG).is_file() or (path / run_files.EVENTS).is_file()


def find_runs(root: Path) -> list[Path]:
    """The run directories at `root` or one level below it (`runs/<name>/`), sorted by name.

    `root` itself counts when it is a run. Deeper folders are searched too when a child is a
    plain folder (runs/sweep1/<run>/), up to three levels, without following symlinked folders."""
    root = Path(root)
    if is_run_dir(root):
        return [root]
    found: list[Path] = []
    _walk(root, 0, found)
    return sorted(found, key=lambda p: str(p))


def _walk(folder: Path, depth: int, found: list[Path]) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        if is_run_dir(path):
            found.append(path)
        elif depth < 2:
            _walk(path, depth + 1, found)


def newest_run(root: Path) -> Path | None:
    """The run under `root` written to most recently (for `gantui watch` with no argument)."""
    best, best_t = None, -1.0
    for run in find_runs(root):
        t = _updated(run) or 0.0
        if t > best_t:
            best, best_t = run, t
    return best


# --- state ------------------------------------------------------------------------------------

def lifecycle_state(events: Iterable[dict[str, Any]]) -> RunState:
    """The state a run's events say it ended in, ignoring any live holder (pure; see module doc)."""
    last: dict[str, Any] | None = None
    paused = False
    for e in events:
        kind = e.get("kind")
        if kind in LIFECYCLE:
            last = e
            paused = False
        elif kind == "paused":
            paused = True
        elif kind == "resumed":
            paused = False
    if last is None:
        return RunState(CRASHED, "never started: no started event", paused=False)
    kind = last["kind"]
    if kind == "finished":
        return RunState(FINISHED, last_event=last)
    if kind == "stopped":
        reason = str(last.get("reason") or "user")
        if reason == "interrupted":
            return RunState(INTERRUPTED, "interrupted (Ctrl-C or a signal)", last_event=last)
        if reason == "rule" and last.get("rule"):  # a [stop] rule: its name and its sentence
            return RunState(STOPPED, f"stopped by {last.get('rule')}: {last.get('message') or ''}".rstrip(": "),
                            last_event=last)
        return RunState(STOPPED, f"stopped ({reason})", last_event=last)
    if kind == "diverged":
        return RunState(DIVERGED, "NaN/Inf: updates stopped", last_event=last)
    if kind == "error":
        return RunState(CRASHED, str(last.get("message") or "error"), last_event=last)
    # "started" with nothing after it, and (the caller checked) no live process
    return RunState(CRASHED, "ended without a final event (killed or lost power)", paused=paused,
                    last_event=last)


def run_state(run_dir: Path, events: list[dict[str, Any]] | None = None) -> RunState:
    """The run's state: `running` while a live process holds its lock, else from its events."""
    run_dir = Path(run_dir)
    if events is None:
        events = jsonl.read(run_dir / run_files.EVENTS).records
    ended = lifecycle_state(events)
    pid = runlock.holder(run_dir)
    if pid is not None:
        return RunState(RUNNING, "", pid=pid or None, paused=ended.paused, last_event=ended.last_event)
    return ended


# --- alerts -------------------------------------------------------------------------------------

def active_alerts(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alerts raised and not cleared, by replaying the alert events (critical first, then oldest).

    A `started` event clears them: a resumed run's rules start afresh, so an alert the earlier
    process never cleared is not active any more."""
    active: dict[str, dict[str, Any]] = {}
    for e in events:
        kind = e.get("kind")
        if kind == "started":
            active.clear()
        elif kind == "alert":
            rule = str(e.get("rule", "?"))
            if e.get("state") == "raised":
                active[rule] = e
            elif e.get("state") == "cleared":
                active.pop(rule, None)
    alerts = sorted(active.values(), key=lambda r: (r.get("severity") != "critical", _int(r.get("step")) or 0))
    return [{"rule": a.get("rule"), "severity": a.get("severity"), "step": a.get("step"),
             "message": a.get("message", "")} for a in alerts]


# --- summary ----------------------------------------------------------------------------------

def summarize(run_dir: Path, now: float | None = None) -> RunSummary:
    """One run's row for `gantui runs`: reads its files only, never raises for a damaged run."""
    run_dir = Path(run_dir)
    events = jsonl.read(run_dir / run_files.EVENTS).records
    st = run_state(run_dir, events)
    cfg = _config(run_dir)
    metrics = jsonl.read(run_dir / run_files.METRICS, max_bytes=TAIL_BYTES).records
    quality, quality_step = latest_quality(metrics)
    if quality_step is None and _size(run_dir / run_files.METRICS) > TAIL_BYTES:
        quality, quality_step = latest_quality(
            jsonl.read(run_dir / run_files.METRICS, max_bytes=WIDE_TAIL_BYTES).records)

    last = metrics[-1] if metrics else {}
    steps = [s for s in (_int(last.get("step")), *(_int(e.get("step")) for e in events[-3:])) if s is not None]
    losses = {k: last[k] for k in (*LOSS_KEYS, "wasserstein") if k in last}
    updated = _updated(run_dir)
    now = time.time() if now is None else now
    found = best_mod.read(run_dir)
    best = None if found is None else {"key": found[1].key, "value": found[1].value, "step": found[1].step,
                                        "path": str(found[0])}
    return RunSummary(
        name=run_dir.name, path=str(run_dir), preset=str(cfg.get("run", {}).get("name", "")),
        state=st.state, note=st.note, pid=st.pid, paused=st.paused,
        step=max(steps) if steps else None, total_steps=_total_steps(events, cfg),
        losses=losses, quality=quality, quality_step=quality_step, alerts=active_alerts(events),
        updated=updated, age_s=None if updated is None else max(0.0, now - updated), best=best)


def summarize_all(root: Path, now: float | None = None) -> list[RunSummary]:
    return [summarize(run, now) for run in find_runs(root)]


def latest_quality(records: list[dict[str, Any]]) -> tuple[dict[str, Any], int | None]:
    """The newest value of each quality key among `records`, and the step of the newest record with
    a live-quality figure (QUALITY_KEYS: an eval record; None when there is none). d_acc, which may
    come with every record, is shown but does not count as an eval record."""
    quality: dict[str, Any] = {}
    step = None
    for r in reversed(records):
        for k in SHOWN_QUALITY_KEYS:
            if k in r and k not in quality:
                quality[k] = r[k]
        if step is None and any(k in r for k in QUALITY_KEYS):
            step = _int(r.get("step"))
        if len(quality) == len(SHOWN_QUALITY_KEYS):
            break
    return {k: quality[k] for k in SHOWN_QUALITY_KEYS if k in quality}, step


def _total_steps(events: list[dict[str, Any]], cfg: dict[str, Any]) -> int | None:
    # the newest started event knows the total this process ran to (--steps included)
    for e in reversed(events):
        if e.get("kind") in ("started", "finished") and _int(e.get("total_steps")) is not None:
            return _int(e.get("total_steps"))
    return _int(cfg.get("run", {}).get("steps"))


def _config(run_dir: Path) -> dict[str, Any]:
    try:
        return tomllib.loads((run_dir / run_files.CONFIG).read_text())
    except (OSError, ValueError):
        return {}


def _updated(run_dir: Path) -> float | None:
    times = []
    for name in (run_files.METRICS, run_files.EVENTS, run_files.CONFIG):
        try:
            times.append(os.stat(run_dir / name).st_mtime)
        except OSError:
            pass
    return max(times) if times else None


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def number(v: Any) -> float | None:
    """A metric value as a float: JSON numbers, and the "nan"/"inf" strings jsonl writes for them."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


# --- text ---------------------------------------------------------------------------------------

def format_age(seconds: float | None) -> str:
    """12s, 5m, 3h, 2d: how long ago a run last wrote."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m" if s < 36000 else f"{s // 3600}h"
    return f"{s // 86400}d"


def format_value(v: Any) -> str:
    f = number(v)
    if f is None:
        return "-"
    if not math.isfinite(f):
        return str(f)
    if f == int(f) and abs(f) < 1e6:
        return str(int(f))
    if abs(f) >= 1000 or abs(f) < 0.01:
        return f"{f:.2e}"
    return f"{f:.3f}"


# modes_captured is written first, as modes N/total; d_acc is a health figure, with its own column
# (and modes_captured_strict beside it: modes N/total (S strict))
QUALITY_LABELS = {f.key: f.column for f in metrics_vocab.FIGURES
                  if f.key not in ("modes_captured", "modes_captured_strict") and f.quality}
LOSS_FORMAT = "{:.4f}"


def format_figure(key: str, v: Any) -> str:
    """A figure in one format whatever its value (the vocabulary's, `classes 1.00` beside `classes 0.20`,
    never `classes 1`); losses to 4 decimals; huge or tiny values in scientific notation."""
    f = number(v)
    if f is None:
        return "-"
    if not math.isfinite(f):
        return str(f)
    figure = metrics_vocab.BY_KEY.get("modes_captured" if key == "modes_total" else key)
    fmt = figure.fmt if figure is not None else LOSS_FORMAT if key in LOSS_KEYS else None
    if fmt is None or abs(f) >= 1e5 or (f != 0 and abs(f) < 1e-4 and fmt != "{:.0f}"):
        return format_value(f)
    return fmt.format(f)


def format_quality(quality: dict[str, Any]) -> str:
    parts = []
    if "modes_captured" in quality:
        total = quality.get("modes_total")
        strict = quality.get("modes_captured_strict")
        parts.append(f"modes {format_figure('modes_captured', quality['modes_captured'])}"
                     + (f"/{format_figure('modes_total', total)}" if total is not None else "")
                     + (f" ({format_figure('modes_captured', strict)} strict)" if strict is not None else ""))
    parts += [f"{label} {format_figure(k, quality[k])}" for k, label in QUALITY_LABELS.items() if k in quality]
    return " ".join(parts) or "-"


def format_best(best: dict[str, Any] | None) -> str:
    """`fid 12.3@4500`: the best checkpoint's criterion, value and step."""
    if not best:
        return "-"
    return f"{best['key']} {format_value(best['value'])}@{best['step']}"


def format_alerts(alerts: list[dict[str, Any]]) -> str:
    # critical alerts carry a "!" so the column never relies on colour
    return ",".join(("!" if a.get("severity") == "critical" else "") + str(a.get("rule")) for a in alerts) or "-"


def table(summaries: list[RunSummary]) -> str:
    """`gantui runs` as plain aligned text: one row per run, then one line per run that needs words."""
    head = ("NAME", "STATE", "STEP", "D LOSS", "G LOSS", "D ACC", "QUALITY", "BEST", "ALERTS", "AGE")
    rows = []
    for s in summaries:
        state = s.state + (" (paused)" if s.paused else "")
        step = "-" if s.step is None else str(s.step)
        if s.total_steps is not None:
            step += f"/{s.total_steps}"
        rows.append((s.name, state, step, format_figure("d_loss", s.losses.get("d_loss")),
                     format_figure("g_loss", s.losses.get("g_loss")), format_figure("d_acc", s.quality.get("d_acc")),
                     format_quality(s.quality),
                     format_best(s.best), format_alerts(s.alerts), format_age(s.age_s)))
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in (head, *rows)]
    for s in summaries:
        if s.state in (CRASHED, DIVERGED) and s.note:
            lines.append(f"{s.name}: {s.state}: {s.note}")
        elif s.state == STOPPED and s.note.startswith("stopped by"):  # a [stop] rule: why, in words
            lines.append(f"{s.name}: {s.note}")
    return "\n".join(lines)


def rollbacks(run_dir: Path) -> list[dict[str, Any]]:
    """The `rolled_back` events of a run ([recover]), in the order they happened: where the run
    branched. A later rollback to an earlier step moves an earlier one's event into its branch
    file (events.abandoned-<n>.jsonl), so those files are read too."""
    run_dir = Path(run_dir)
    found = {}
    for path in [run_dir / run_files.EVENTS] + sorted(run_dir.glob(run_files.abandoned(run_files.EVENTS, 0).replace("-0.", "-*."))):
        for e in jsonl.read(path).records:
            if e.get("kind") == "rolled_back" and isinstance(e.get("attempt"), int):
                found[e["attempt"]] = {k: e.get(k) for k in ("attempt", "from_step", "to_step", "rule", "fix")}
    return [found[k] for k in sorted(found)]

