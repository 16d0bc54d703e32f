"""Runs the engine without a screen: a rich progress bar on a terminal, plain lines otherwise.

SIGINT and SIGTERM ask the engine to save a checkpoint and stop; the exit code is then 130.
A rank of a distributed run (`strategy`) prints only from rank 0, and treats SIGHUP as a stop
too: torchrun passes a hang-up on to its workers and kills them 30 s later.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import TextIO

from gantui.config import Config
from gantui.engine import events as ev
from gantui.errors import UserError
from gantui.export import attach_tensorboard
from gantui.humanize import format_duration
from gantui.vocab import run_files

CONSOLE_LOG = run_files.CONSOLE_LOG


def redirect_std_fds(log_path: Path) -> None:
    """stdin <- /dev/null, stdout and stderr -> log_path (appending), at the fd level so that
    C extensions, warnings and thread tracebacks follow too (the terminal is gone)."""
    import os

    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    try:
        for fd in (1, 2):
            os.dup2(log_fd, fd)
        os.dup2(null_fd, 0)
    finally:
        os.close(log_fd)
        os.close(null_fd)


def describe_event(event: ev.Event) -> str | None:
    """One human line for the events worth printing (None for the rest)."""
    d = event.data
    if event.kind == "alert":
        glyph = "!!" if d.get("severity") == "critical" else "!"
        if d.get("state") == "raised":
            return f"{glyph} alert {d.get('rule')}: {d.get('message')} Fix: {d.get('fix')}"
        return f"alert cleared: {d.get('rule')}"
    if event.kind == "checkpoint":
        return f"checkpoint {d.get('path')} ({d.get('reason')})"
    if event.kind == "lr_changed":
        return f"{d.get('which', '?').upper()} lr {d.get('old'):.1e} -> {d.get('new'):.1e}"
    if event.kind == "diverged":
        return f"!! diverged: NaN/Inf in the losses or weights; last good checkpoint: {d.get('last_good_checkpoint')}"
    if event.kind == "error":
        return f"error: {d.get('message')}" + (f" (traceback: {d['traceback']})" if d.get("traceback") else "")
    if event.kind == "best":
        return f"best {d.get('key')} {d.get('value'):.4g} -> {d.get('path')}"
    if event.kind == "stopped" and d.get("rule"):
        return f"stopped by {d.get('rule')}: {d.get('message')}"
    if event.kind == "note":
        return f"note: {d.get('message')}"
    if event.kind == "config_changed":
        changes = d.get("changes") if isinstance(d.get("changes"), dict) else {}
        parts = [f"{k} {c.get('from')!r} -> {c.get('to')!r}" if isinstance(c, dict) else str(k)
                 for k, c in changes.items()]
        return "config changed on resume: " + (", ".join(parts) or "(no keys)")
    if event.kind == "rolled_back":
        return (f"!! rolled back from step {d.get('from_step')} to {d.get('to_step')} ({d.get('rule')}); "
                f"fix: {d.get('fix') or 'none'}; attempt {d.get('attempt')} of {d.get('max_attempts')}")
    if event.kind == "recover_failed":
        return f"!! recovery gave up ({d.get('rule')}): {d.get('reason')}"
    if event.kind == "notify_failed":
        return f"notification failed ({d.get('receiver')}): {d.get('error')}"
    if event.kind in ("paused", "resumed", "stopped", "finished", "hangup"):
        return event.kind
    if event.kind == "note":  # setup's progress: reading a folder, training the feature network
        return str(d.get("message"))
    return None


class PlainPrinter:
    """A listener that prints periodic progress lines and every notable event to a stream."""

    def __init__(self, stream: TextIO, every_s: float = 5.0) -> None:
        self.stream = stream
        self.every_s = every_s
        self._last = 0.0
        self._snapshot: ev.Snapshot | None = None

    def line(self, snap: ev.Snapshot) -> str:
        m = snap.metrics
        return (f"step {snap.step}/{snap.total_steps}  {m.get('steps_per_s', 0):.1f} it/s  "
                f"ETA {format_duration(snap.eta_s)}  D {m.get('d_loss', float('nan')):.4f}  "
                f"G {m.get('g_loss', float('nan')):.4f}")

    def __call__(self, msg: ev.Message) -> None:
        if isinstance(msg, ev.RunInfo):
            self._print(f"gantui {msg.name}: {msg.data_name}, {msg.loss_kind}, device {msg.device}, "
                        f"steps {msg.start_step}->{msg.total_steps}, run dir {msg.run_dir}")
        elif isinstance(msg, ev.Snapshot):
            self._snapshot = msg
            now = time.monotonic()
            if now - self._last >= self.every_s or msg.step >= msg.total_steps:
                self._last = now
                self._print(self.line(msg))
        elif isinstance(msg, ev.Event):
            text = describe_event(msg)
            if text:
                self._print(f"[step {msg.step}] {text}")

    def _print(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass


class RichProgress:
    """A listener that drives a rich progress bar (step, it/s, ETA, D/G loss) on a terminal."""

    def __init__(self, console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} it/s"), TimeRemainingColumn(),
            TextColumn("D {task.fields[d]}  G {task.fields[g]}  {task.fields[state]}"),
            console=console, refresh_per_second=4)
        self.task = None

    def __call__(self, msg: ev.Message) -> None:
        if isinstance(msg, ev.RunInfo):
            self.progress.start()
            self.task = self.progress.add_task(msg.name, total=msg.total_steps, completed=msg.start_step,
                                               rate="-", d="-", g="-", state="")
            self.console.print(f"run dir [bold]{msg.run_dir}[/] · device {msg.device}")
        elif self.task is None:
            return
        elif isinstance(msg, ev.Snapshot):
            m = msg.metrics
            self.progress.update(self.task, completed=msg.step, rate=f"{m.get('steps_per_s', 0):.1f}",
                                 d=f"{m.get('d_loss', float('nan')):.3f}", g=f"{m.get('g_loss', float('nan')):.3f}")
        elif isinstance(msg, ev.StateChanged):
            self.progress.update(self.task, completed=msg.step,
                                 state="" if msg.state == ev.RUNNING else msg.state)
        elif isinstance(msg, ev.Event):
            text = describe_event(msg)
            if text and msg.kind != "checkpoint":
                self.console.print(f"[step {msg.step}] {text}", markup=False, highlight=False)

    def stop(self) -> None:
        self.progress.stop()

    def detach(self) -> None:
        """Stop drawing without a final frame (the terminal is gone)."""
        self.progress.live.transient = True
        self.progress.live.stop()


def run_headless(cfg: Config, run_dir: Path, device: str | None, resume: Path | None, *, owner=None,
                 strategy=None) -> int:
    """Train without a screen. Setup and training run on the trainer's own thread (every torch
    call of the run happens there); this thread only prints and takes signals."""
    run_dir = Path(run_dir)
    stop_asked: list[bool] = []
    hung_up: list[bool] = []
    trainer = None
    progress = None
    main = strategy is None or strategy.is_main
    who = "gantui" if main else f"gantui (rank {strategy.rank})"

    def on_stop(signum, frame):
        stop_asked.append(True)
        if trainer is not None:
            trainer.control.stop(reason="interrupted", save=True)

    def on_hangup(signum, frame):
        # The terminal is gone (SSH dropped): keep training, print to the run's console.log.
        if hung_up:
            return
        hung_up.append(True)
        if progress is not None:
            trainer.remove_listener(progress)
            with contextlib.suppress(Exception):
                progress.detach()
        log_path = run_dir / CONSOLE_LOG
        with contextlib.suppress(OSError):
            redirect_std_fds(log_path)
        log = open(log_path, "a", buffering=1)
        log.write(f"gantui: terminal hung up at {time.strftime('%Y-%m-%d %H:%M:%S')}; training continues headless\n")
        if trainer is not None:
            trainer.add_listener(PlainPrinter(log))
            with contextlib.suppress(Exception):
                trainer.record_event("hangup", action="continued", console_log=str(log_path))

    # Signals are taken from the first moment: torch takes seconds to import, and a Ctrl-C or a
    # hang-up in that window must be handled like any other.
    handlers = {signal.SIGINT: on_stop, signal.SIGTERM: on_stop}
    if hasattr(signal, "SIGHUP"):
        handlers[signal.SIGHUP] = on_hangup if strategy is None else on_stop
    previous = {s: signal.signal(s, h) for s, h in handlers.items()}
    try:
        from gantui.engine.trainer import Trainer

        trainer = Trainer(cfg, run_dir, device=device, resume=resume, strategy=strategy)
    except BaseException:
        for s, handler in previous.items():
            signal.signal(s, handler)
        raise
    if owner is not None:
        owner.attach(trainer)
    attach_tensorboard(trainer)
    notifier = None
    if main:
        from gantui import notify

        notifier = notify.for_trainer(cfg, trainer)  # [notify]: a listener, like the printers below
    if not main:
        pass  # rank 0 speaks for the run
    elif hung_up:
        trainer.add_listener(PlainPrinter(open(run_dir / CONSOLE_LOG, "a", buffering=1)))
    elif sys.stdout.isatty():
        from rich.console import Console

        progress = RichProgress(Console())
        trainer.add_listener(progress)
    else:
        trainer.add_listener(PlainPrinter(sys.stdout))
    if stop_asked:
        trainer.control.stop(reason="interrupted", save=True)
    thread = trainer.start()
    try:
        while thread.is_alive():
            thread.join(0.2)  # short joins keep the main thread free to take signals
    finally:
        for s, handler in previous.items():
            if not (hung_up and s == getattr(signal, "SIGHUP", None)):
                signal.signal(s, handler)
        if progress is not None and not hung_up:
            progress.stop()
        if notifier is not None:
            notifier.close()  # the run's end (or crash) goes out, within notify.timeout_s
    if trainer.exit_code == 2 and trainer.error and trainer.state == ev.CRASHED and not trainer._ready:
        raise UserError(trainer.error)  # bad input found at setup: one line, exit 2
    if trainer.state == ev.CRASHED:
        where = f" (traceback saved to {trainer.traceback_path})" if trainer.traceback_path else ""
        verb = "could not start" if not trainer._ready else "training stopped"
        last = f"; last checkpoint: {trainer.last_checkpoint or 'none'}" if strategy is not None and main else ""
        print(f"{who}: {verb}: {trainer.error}{where}{last}", file=sys.stderr)
    elif not main:
        pass
    elif trainer.exit_code == 4 and trainer.error:
        print(f"gantui: stopped at step {trainer.step}: {trainer.error}; last checkpoint: "
              f"{trainer.last_checkpoint or 'none'}", file=sys.stderr)
    elif trainer.state == ev.DIVERGED:
        print(f"gantui: training diverged at step {trainer.step} (NaN/Inf); last good checkpoint: "
              f"{trainer.last_checkpoint or 'none'}", file=sys.stderr)
    return trainer.exit_code
