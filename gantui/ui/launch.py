"""Open the monitor on a real terminal, and keep the run alive when the terminal goes away.

Importing this module is free: textual is imported inside `run_monitor` only.

Hang-up (SIGHUP: ssh dropped, tmux session killed, terminal closed): the screen is given up
but the training is not. The handler silences the screen at once (the driver's stream drops
every further write, so Textual's writer thread can neither die on EIO nor block), points
fds 0/1/2 at /dev/null and <run-dir>/console.log, and then, on the event loop, records a
"hangup" event, attaches a plain progress printer to the engine and closes the app. The
main thread then joins the engine like `--headless` would and returns its exit code.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from gantui.headless import CONSOLE_LOG, redirect_std_fds
from gantui.vocab import run_files


class DetachableStream:
    """Wraps the terminal stream Textual writes to. After `detach()` (or the first OSError,
    e.g. EIO on a hung-up tty) writes are dropped instead of raising in Textual's writer thread."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self.detached = False

    def detach(self) -> None:
        self.detached = True

    def write(self, text: str) -> int:
        if not self.detached:
            try:
                return self._stream.write(text)
            except (OSError, ValueError):
                self.detached = True
        return len(text)

    def flush(self) -> None:
        if not self.detached:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self.detached = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def detachable_driver_class():
    """Textual's Linux driver writing through a DetachableStream; None elsewhere (Windows)."""
    try:
        from textual.drivers.linux_driver import LinuxDriver
    except Exception:  # noqa: BLE001 - no termios: let Textual pick its own driver
        return None

    class DetachableDriver(LinuxDriver):
        def __init__(self, app, **kw) -> None:
            super().__init__(app, **kw)
            self._file = DetachableStream(self._file)
            app.terminal_output = self._file

    return DetachableDriver


class Hangup:
    """What happens when the terminal goes away. `on_signal` runs on the main thread as a
    Python signal handler; everything that takes a lock runs later, on the event loop."""

    def __init__(self, app, run_dir: Path) -> None:
        self.app = app
        self.run_dir = Path(run_dir)
        self.happened = False
        self.log: Any = None
        self.redirect = redirect_std_fds   # tests replace these two: they act on the process
        self.watchdog = True

    def on_signal(self, signum, frame) -> None:
        if self.happened:
            return
        self.happened = True
        out = getattr(self.app, "terminal_output", None)
        if out is not None:
            out.detach()  # not one more byte to the dead terminal
        try:
            self.redirect(self.run_dir / CONSOLE_LOG)
        except OSError:
            pass
        self.app.hangup_pending = True
        if self.watchdog:
            threading.Thread(target=self._watchdog, name="gantui-hangup-watchdog", daemon=True).start()
        loop = getattr(self.app, "event_loop", None)
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.app.handle_hangup)
        # (before the loop runs, on_mount sees hangup_pending and calls handle_hangup)

    def _watchdog(self, grace_s: float = 10.0) -> None:
        """Belt and braces: if the app never manages to close without its terminal, the
        process still ends once the training has (with the training's exit code)."""
        session = self.app.session
        while not session.wait(timeout=1.0):
            pass
        time.sleep(grace_s)
        code = session.exit_code
        try:
            if self.log is not None:
                self.log.write(f"gantui: the screen did not close; exiting with code {code}\n")
                self.log.flush()
        finally:
            os._exit(code)

    def on_loop(self) -> None:
        """On the event loop (app.handle_hangup calls this before detaching)."""
        from gantui.headless import PlainPrinter

        self.log = open(self.run_dir / CONSOLE_LOG, "a", buffering=1)
        self.log.write(f"gantui: terminal hung up at {time.strftime('%Y-%m-%d %H:%M:%S')}; "
                       "training continues headless\n")
        session = self.app.session
        session.add_listener(PlainPrinter(self.log))
        try:
            session.record_event("hangup", run_dir=self.run_dir, action="detached",
                                 console_log=str(self.run_dir / CONSOLE_LOG))
        except Exception as e:  # noqa: BLE001 - the training matters more than the record
            self.log.write(f"gantui: could not record the hang-up event: {e}\n")

    def finish(self) -> int:
        """Main thread, after the app closed: wait for the training like --headless does."""
        session = self.app.session
        while not session.wait(timeout=0.5):
            pass  # short waits keep the main thread free to take SIGINT/SIGTERM
        code = session.exit_code
        if self.log is not None:
            self.log.write(f"gantui: training ended ({session.state}), exit code {code}\n")
            self.log.flush()
        return code


def monitor_app(cfg, run_dir, device=None, resume=None, *, trainer_factory=None, owner=None, driver_class=None,
                color: str | None = None):
    """The monitor over a run this process trains (`gantui run`): the config's description and an
    engine session; a resume replays the run's metrics and events so far onto the charts."""
    from gantui.ui.app import MonitorApp
    from gantui.ui.description import RunDescription
    from gantui.ui.session import EngineSession, real_trainer_factory

    run_dir = Path(run_dir)
    run = RunDescription.of(cfg)
    factory = trainer_factory or real_trainer_factory(cfg, run_dir, device, resume, owner=owner)
    resumed = resume is not None and (run_dir / run_files.METRICS).exists()
    return MonitorApp(run, run_dir, session_factory=lambda listeners: EngineSession(
        factory, listeners, run_dir, history_total=run.total_steps if resumed else None),
        driver_class=driver_class, color=color)


def watch_app(cfg, run_dir, *, driver_class=None, color: str | None = None):
    """The monitor over a run another process owns, or a finished one (`gantui watch`): the
    description of the run's config.toml, and a session that follows the run's files."""
    from gantui.engine.runlock import holder
    from gantui.ui.app import MonitorApp
    from gantui.ui.description import RunDescription
    from gantui.ui.session import RemoteSession

    run_dir = Path(run_dir)
    return MonitorApp(RunDescription.of(cfg), run_dir,
                      session_factory=lambda listeners: RemoteSession(run_dir, listeners),
                      driver_class=driver_class, color=color, pid=holder(run_dir))


def run_monitor(cfg, run_dir, device, resume, *, trainer_factory=None, owner=None) -> int:
    """The live monitor for one run; returns the process exit code (see DESIGN).
    `trainer_factory` (listeners -> trainer) replaces the real Trainer in demos; `owner` (the
    run's lock and control channel) is connected to the trainer once it exists."""
    from gantui.errors import UserError

    run_dir = Path(run_dir)
    app = monitor_app(cfg, run_dir, device, resume, trainer_factory=trainer_factory, owner=owner,
                      driver_class=detachable_driver_class())
    hangup = Hangup(app, run_dir)
    app.hangup_hook = hangup.on_loop

    def on_interrupt(signum, frame) -> None:
        # Ctrl-C arrives as a key inside the app; a real SIGINT/SIGTERM (kill, or
        # TEXTUAL_ALLOW_SIGNALS) saves and stops with exit code 130, as headless does.
        loop = getattr(app, "event_loop", None)
        if hangup.happened or loop is None or loop.is_closed():
            app.session.stop(reason="interrupted")
        else:
            loop.call_soon_threadsafe(app.request_quit, "interrupted")

    handlers = {signal.SIGINT: on_interrupt, signal.SIGTERM: on_interrupt}
    if hasattr(signal, "SIGHUP"):  # not on Windows
        handlers[signal.SIGHUP] = hangup.on_signal
    previous = {}
    for sig, handler in handlers.items():
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread (tests) or no such signal
            pass
    try:
        app.run()
        if hangup.happened:
            return hangup.finish()
    finally:
        for sig, handler in previous.items():
            if hangup.happened and sig == getattr(signal, "SIGHUP", None):
                signal.signal(sig, signal.SIG_IGN)  # the terminal stays gone
            else:
                signal.signal(sig, handler)
    if app.user_error:
        raise UserError(app.user_error)
    if app.session.alive() and not app.quitting:
        # The app closed without q (an unexpected error in the UI): the run must not die
        # with it unsaved. Save, stop, and report.
        print("gantui: the monitor closed unexpectedly; saving a checkpoint and stopping the run…",
              file=sys.stderr)
        app.session.stop(reason="interrupted")
        app.session.wait(timeout=60)
        return 1
    code = app.return_code
    if code is None:
        code = app.session.exit_code
    if app.error and code != 0:
        where = getattr(app.session.trainer, "traceback_path", None) or app.session.traceback_path
        print(f"gantui: {app.error}" + (f" (traceback saved to {where})" if where else ""), file=sys.stderr)
    for line in app.exit_summary():  # the final checkpoint and how to resume, as the screen closes
        print(line, file=sys.stderr, flush=True)
    return int(code)


def run_watch(run_dir: Path) -> int:
    """`gantui watch`: the monitor on a run another process owns (or a finished one). `q` leaves;
    the run goes on. Returns 0, or 2 when the directory is not a run."""
    from gantui import config
    from gantui.errors import UserError

    run_dir = Path(run_dir)
    try:
        cfg = config.loads((run_dir / run_files.CONFIG).read_text(), source=str(run_dir / run_files.CONFIG))
    except OSError:
        raise UserError(f"{run_dir}: not a gantui run directory (no config.toml)") from None
    app = watch_app(cfg, run_dir, driver_class=detachable_driver_class())

    def leave(signum, frame) -> None:
        loop = getattr(app, "event_loop", None)
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(app.request_quit, "user")

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            try:
                previous[sig] = signal.signal(sig, leave)
            except (ValueError, OSError):
                pass
    try:
        app.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if app.session.load_error:
        raise UserError(app.session.load_error)
    for line in app.exit_summary():
        print(line, file=sys.stderr, flush=True)
    return 0
