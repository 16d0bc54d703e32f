"""The engine's lifetime as the monitor sees it. Pure Python: no textual, and torch only
inside the loader thread.

The app must paint before torch is imported (~2 s), so the trainer is built on a loader
thread started after the first frame: import the trainer module, construct the Trainer with
the bridge as listener, and `start()` it (setup() + run() on the trainer's own thread).
A quit pressed while torch is still importing is remembered and sent as the trainer's very
first command, so it still stops cleanly with a checkpoint.
"""

from __future__ import annotations

import json
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from gantui.engine import events as ev
from gantui.engine.control import Command, Stop
from gantui.engine.protocol import request_of
from gantui.errors import UserError
from gantui.vocab import run_files

TrainerFactory = Callable[[list], Any]
"""listeners -> an object with `.control`, `.start() -> Thread`, `.exit_code`, `.state`
(and optionally `.record_event(kind, **data)`, `.add_listener`): the real Trainer, or a fake."""


def real_trainer_factory(cfg, run_dir: Path, device: str | None, resume: Path | None,
                         owner=None) -> TrainerFactory:
    def build(listeners: list):
        from gantui.engine.trainer import Trainer  # imports torch: seconds, on the loader thread

        from gantui import notify
        from gantui.export import attach_tensorboard

        trainer = Trainer(cfg, Path(run_dir), device=device, resume=resume, listeners=listeners)
        trainer.notifier = notify.for_trainer(cfg, trainer)  # [notify]: a listener like the screen
        if owner is not None:
            owner.attach(trainer)
        attach_tensorboard(trainer)
        return trainer
    return build


class EngineSession:
    """Loader thread + trainer thread, with a stop that works at any moment."""

    watching = False      # the run is this process's: q saves and stops it

    def __init__(self, factory: TrainerFactory, listeners: list, run_dir: Path | None = None,
                 history_total: int | None = None) -> None:
        """`history_total`: replay the run directory's metrics and events first (a resume),
        with this total step count."""
        self._factory = factory
        self.run_dir = run_dir
        self.history_total = history_total
        self._listeners = listeners
        self._lock = threading.Lock()
        self.trainer: Any = None
        self.thread: threading.Thread | None = None
        self._loader: threading.Thread | None = None
        self._pending_stop: str | None = None
        self.load_error: str | None = None          # construction failed (message for the screen)
        self.load_user_error = False
        self.traceback_path: Path | None = None
        self.phase = "starting"                     # starting -> importing -> setting up -> running
        self.started_at = time.monotonic()

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._loader = threading.Thread(target=self._load, name="gantui-loader", daemon=True)
        self._loader.start()

    def _load(self) -> None:
        with self._lock:
            initial = list(self._listeners)
        if self.run_dir is not None and self.history_total is not None:
            # a resumed or forked run: its charts and events start with the history it has
            from gantui.live.follow import replay

            self.phase = "reading the run's history"
            for fn in initial:
                replay(Path(self.run_dir), fn, self.history_total)
        self.phase = "importing torch"
        try:
            trainer = self._factory(initial)
        except UserError as e:
            self.load_error, self.load_user_error = str(e), True
            self.phase = "failed"
            return
        except Exception as e:  # noqa: BLE001 - shown on screen, traceback saved as the engine would
            self.load_error = f"{type(e).__name__}: {e}"
            if self.run_dir is not None:
                try:
                    Path(self.run_dir).mkdir(parents=True, exist_ok=True)
                    self.traceback_path = Path(self.run_dir) / run_files.TRACEBACK
                    self.traceback_path.write_text(traceback.format_exc())
                except OSError:
                    self.traceback_path = None
            self.phase = "failed"
            return
        with self._lock:
            self.trainer = trainer
            for fn in self._listeners[len(initial):]:  # added while the factory ran
                trainer.add_listener(fn)
            if self._pending_stop is not None:
                trainer.control.stop(reason=self._pending_stop, save=True)
            self.phase = "setting up"
            self.thread = trainer.start()

    @property
    def loading(self) -> bool:
        return self._loader is not None and self._loader.is_alive()

    @property
    def control(self):
        t = self.trainer
        return None if t is None else t.control

    def alive(self) -> bool:
        """True while the loader or the trainer thread still runs."""
        if self.loading:
            return True
        return self.thread is not None and self.thread.is_alive()

    def stop(self, reason: str = "user") -> None:
        """Save a checkpoint and stop, whether or not the trainer exists yet."""
        with self._lock:
            if self.trainer is None:
                self._pending_stop = reason
            else:
                self.trainer.control.stop(reason=reason, save=True)

    def wait(self, timeout: float | None = None) -> bool:
        """Join loader then trainer; True when both are done."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for get in (lambda: self._loader, lambda: self.thread):
            t = get()
            if t is None:
                continue
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                return False
        notifier = getattr(self.trainer, "notifier", None)
        if notifier is not None:  # the run's last messages (its end) go out, within their timeout
            notifier.close(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return True

    @property
    def exit_code(self) -> int:
        if self.load_error is not None:
            return 2 if self.load_user_error else 1
        t = self.trainer
        if t is None:
            return 0  # quit before the engine existed: nothing ran, nothing to save
        return int(getattr(t, "exit_code", 0))

    @property
    def state(self) -> str:
        t = self.trainer
        return ev.STARTING if t is None else str(getattr(t, "state", ev.STARTING))

    # --- side channel -------------------------------------------------------------------------
    def add_listener(self, fn) -> None:
        with self._lock:
            if self.trainer is not None and hasattr(self.trainer, "add_listener"):
                self.trainer.add_listener(fn)
            else:
                self._listeners.append(fn)  # the factory has not run yet: it will take it

    def record_event(self, kind: str, run_dir: Path | None = None, **data) -> None:
        """Through the trainer when it can (events.jsonl + listeners); else append the line
        ourselves (an O_APPEND write of one short line does not interleave)."""
        t = self.trainer
        if t is not None and hasattr(t, "record_event") and getattr(t, "_ready", True):
            t.record_event(kind, **data)
            return
        if run_dir is None:
            return
        line = json.dumps({"step": int(getattr(t, "step", 0) or 0), "kind": kind, **data}) + "\n"
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        fd = os.open(Path(run_dir) / run_files.EVENTS, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


# --- a run in another process (gantui watch, --nproc's monitor) --------------------------------

class RemoteControl:
    """The engine's Control (`send(command)`), spoken over a live run's control channel. Requests go out on
    a worker thread, so a key press never waits on the socket; `last_reply` keeps the newest
    answer (an error says why a command was refused)."""

    def __init__(self, run_dir: Path) -> None:
        import queue

        self.run_dir = Path(run_dir)
        self._queue: "queue.Queue[dict | None]" = queue.Queue(maxsize=256)
        self._client = None
        self.last_reply: dict | None = None
        self.sent = 0
        self._thread = threading.Thread(target=self._worker, name="gantui-remote-control", daemon=True)
        self._thread.start()

    def _worker(self) -> None:
        from gantui.live.client import LiveClient, NotLive

        while True:
            req = self._queue.get()
            if req is None:
                break
            try:
                if self._client is None:
                    self._client = LiveClient.connect(self.run_dir, timeout=5.0)
                self.last_reply = self._client.request(**req)
            except NotLive as e:
                self._client = None
                self.last_reply = {"ok": False, "error": str(e)}
            self.sent += 1

    def request(self, cmd: str, **fields) -> None:
        try:
            self._queue.put_nowait({"cmd": cmd, **fields})
        except Exception:  # noqa: BLE001 - a full queue: the user is hammering a key; drop it
            pass

    def send(self, command: Command) -> None:
        """A typed command, as the protocol's request (no reason: the engine records "remote")."""
        req = request_of(command)
        if not req["reason"]:
            del req["reason"]
        self.request(**req)

    def stop_run(self) -> None:
        self.send(Stop(save=True, reason="watch"))

    def close(self) -> None:
        self._queue.put(None)
        if self._client is not None:
            self._client.close()


class RemoteSession:
    """EngineSession's interface over a run directory another process owns: the follower
    publishes its files as engine messages; commands go over the control channel. Leaving
    (`stop`) ends the following, never the run; `stop_run` asks the run itself to stop."""

    watching = True       # the run is another process's: q leaves the monitor, the run goes on

    def __init__(self, run_dir: Path, listeners: list, poll_s: float = 0.25) -> None:
        from gantui.live.follow import RunFollower

        self.run_dir = Path(run_dir)
        self._status_client = None
        self.follower = RunFollower(self.run_dir, listeners, poll_s=poll_s, status=self._status)
        self._control = RemoteControl(self.run_dir)
        self.trainer = None
        self.traceback_path = None
        self.load_user_error = True
        self.phase = "reading the run"
        self.started_at = time.monotonic()

    def _status(self) -> dict | None:
        from gantui.live.client import LiveClient, NotLive

        try:
            if self._status_client is None:
                self._status_client = LiveClient.connect(self.run_dir, timeout=2.0)
            return self._status_client.request("status")
        except NotLive:
            self._status_client = None
            return None

    def start(self) -> None:
        self.follower.start()

    @property
    def load_error(self) -> str | None:
        return self.follower.error

    @property
    def control(self):
        return self._control if self.follower.live_pid is not None else None

    @property
    def live(self) -> bool:
        return self.follower.live_pid is not None

    def alive(self) -> bool:
        return self.follower.alive()

    def stop(self, reason: str = "user") -> None:
        self.follower.stop()
        self._control.close()
        if self._status_client is not None:
            self._status_client.close()

    def stop_run(self) -> None:
        self._control.stop_run()

    def wait(self, timeout: float | None = None) -> bool:
        t = self.follower._thread
        if t is not None:
            t.join(timeout)
        return not self.follower.alive()

    @property
    def exit_code(self) -> int:
        return 2 if self.load_error else 0

    @property
    def state(self) -> str:
        return self.follower.state

    def add_listener(self, fn) -> None:
        self.follower.listeners.append(fn)

    def record_event(self, kind: str, run_dir: Path | None = None, **data) -> None:
        """A watcher writes nothing into a run it does not own."""
