"""`gantui watch` when its output is not a terminal (`gantui watch RUN | cat`, a log file, cron):
progress lines, as a headless `run` prints them, instead of the full screen drawn into a pipe.

Reads the run's files only (no torch, no textual): a header naming the run, the newest progress
line, then every event and a progress line every few seconds while the run is live, and a last
line when it ends. Sleeps between polls (one a second): waiting costs well under 1% of a core.
`--no-follow` prints one line, where the run stands, and leaves.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from gantui.engine import events as ev
from gantui.engine import jsonl
from gantui.engine.runlock import holder
from gantui.errors import UserError
from gantui.headless import PlainPrinter, describe_event
from gantui.live.follow import event_of, run_info, snapshot_of
from gantui.runinfo import LIFECYCLE, lifecycle_state

POLL_S = 1.0        # between reads of the run's files
EVERY_S = 5.0       # between progress lines (events print as they come)


def _progress(printer: PlainPrinter, record: dict[str, Any] | None, total: int, state: str) -> str:
    if record is None:
        return f"step 0/{total}  (no metrics yet)"
    return printer.line(snapshot_of(record, total, state))


def watch_lines(run_dir: Path, *, follow: bool = True, out: TextIO | None = None, poll_s: float = POLL_S,
                every_s: float = EVERY_S, stop: threading.Event | None = None) -> int:
    out = out or sys.stdout
    stop = stop or threading.Event()
    run_dir = Path(run_dir)
    info = run_info(run_dir)
    if info is None:
        raise UserError(f"{run_dir}: not a gantui run directory (no readable config.toml)")
    printer = PlainPrinter(out)
    metrics, events = jsonl.Follower(run_dir / "metrics.jsonl"), jsonl.Follower(run_dir / "events.jsonl")
    history = metrics.poll(limit=None)
    lifecycle = [e for e in events.poll(limit=None) if e.get("kind") in LIFECYCLE]
    last = history[-1] if history else None
    pid = holder(run_dir)

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    try:
        if not follow or pid is None:
            state = f"live (pid {pid})" if pid is not None else lifecycle_state(lifecycle).state
            say(f"{run_dir}: {state}; {_progress(printer, last, info.total_steps, ev.RUNNING)}")
            return 0
        say(f"gantui watch {run_dir}: {info.name}, {info.data_name}, {info.loss_kind}; live (pid {pid}); "
            f"following (Ctrl-C leaves, the run goes on)")
        say(_progress(printer, last, info.total_steps, ev.RUNNING))
        shown = time.monotonic()
        while True:
            ended = holder(run_dir) is None   # read before the files: their last lines are then in
            for e in events.poll():
                if e.get("kind") in LIFECYCLE:
                    lifecycle.append(e)
                text = describe_event(event_of(e))
                if text:
                    say(f"[step {e.get('step', '?')}] {text}")
            new = metrics.poll()
            if new:
                last = new[-1]
                if time.monotonic() - shown >= every_s:
                    say(_progress(printer, last, info.total_steps, ev.RUNNING))
                    shown = time.monotonic()
            if ended:
                say(f"{run_dir}: {lifecycle_state(lifecycle).state}; "
                    f"{_progress(printer, last, info.total_steps, ev.RUNNING)}")
                return 0
            if stop.wait(poll_s):
                return 0
    except BrokenPipeError:  # `| head` closed the pipe: leave quietly, the run goes on
        try:
            sys.stdout = open("/dev/null", "w")  # noqa: SIM115 - the interpreter flushes it at exit
        except OSError:
            pass
        return 0
