"""The live monitor: a Textual app over the training engine.

Threads: the engine runs on its own thread and only ever calls the `Bridge` (a listener
that files messages under a lock). This app drains the bridge from a 4 Hz timer on the UI
thread (the status line at 4 Hz, the charts at 2 Hz, the sample grid at most at 1 Hz: a
frame holds the GIL the training needs), and at once when the bridge wakes it for something
the user is waiting on (a state change, an event); a key press also updates the status
line immediately ("PAUSING…"), so it shows its effect well within 200 ms. Commands go the
other way through the engine's thread-safe `Control`. No widget is touched off the UI thread.

A thin app: the poll drains the bridge and hands each pane typed messages (`ui/messages.py`:
run info, metrics, snapshot, events, state, samples); each pane keeps its own state and
handles the messages it cares about. The app keeps what is the app's: the keys, the run's
lifecycle (quit, detach, hang-up, a failed start), the layout and the pace of the redraws.
It is handed a `RunDescription`, built the same way by `gantui run` and `gantui watch`.

Startup: the first frame needs only textual; the trainer (and torch) is built on a loader
thread started after that frame (see `session.EngineSession`).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.message import Message

from gantui.engine import events as ev
from gantui.engine.control import Save, ScaleLr, Step, TogglePause, command_of_fix
from gantui.history import History
from gantui.ui.bridge import Bridge
from gantui.ui.description import RunDescription
from gantui.ui.messages import (AlertsChanged, ChartsDue, EngineFailed, EventsArrived, MetricsArrived,
                                PhaseChanged, RunInfoArrived, SamplesArrived, SnapshotArrived, StateArrived,
                                SystemSampled)
from gantui.ui.session import EngineSession
from gantui.ui.sysinfo import ProcSampler
from gantui.ui.text import exit_lines, system_text
from gantui.ui.widgets import (AlertsPane, Banner, GradientsPane, KeyBar, LossesPane, SamplesPane,
                               StatusLine, TooSmall)
from gantui.ui.widgets.chart import ChartScreen, ChartState
from gantui.ui.widgets.help import HelpScreen
from gantui.ui.widgets.samples import color_mode
from gantui.ui.widgets.status import TERMINAL
from gantui.vocab import run_files
from gantui.vocab.losses import is_critic

__all__ = ["MonitorApp", "RunDescription"]

MIN_WIDTH, MIN_HEIGHT = 60, 16      # below this the panes give way to a message
POLL_S = 0.25                       # 4 Hz: status line, events, state
CHART_S = 0.5                       # 2 Hz: the chart panes (the costly part of a frame)
SAMPLES_S = 1.0                     # at most 1 Hz for the sample grid, however short sample_every is
SYSTEM_S = 1.0                      # the cpu / mem / gpu line
SHORT_MAIN = 15                     # below this many rows for the panes the alerts pane gives way
                                    # (the status line still counts the active alerts)
QUIT_TIMEOUT_S = 15.0               # q waits this long for the engine's final checkpoint


class EngineWake(Message):
    """Posted from the engine thread (via the bridge): drain now. Coalesced in the queue."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EngineWake)


class Frames:
    """When each costly redraw is due: the sample grid and the charts never in one frame."""

    def __init__(self) -> None:
        self.samples_at = self.charts_at = self.system_at = self.chart_screen_at = 0.0
        self.charts_stale = False
        self.pending_samples: ev.Samples | None = None


class MonitorApp(App[int]):
    CSS_PATH = "gantui.tcss"
    TITLE = "gantui"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("space", "toggle_pause", "pause", key_display="space"),
        Binding("n", "step_once", "step"),
        Binding("left_square_bracket", "lr('g', 0.5)", "G lr ÷2", key_display="["),
        Binding("right_square_bracket", "lr('g', 2.0)", "G lr ×2", key_display="]"),
        Binding("left_curly_bracket", "lr('d', 0.5)", "D lr ÷2", key_display="{"),
        Binding("right_curly_bracket", "lr('d', 2.0)", "D lr ×2", key_display="}"),
        Binding("s", "save", "save"),
        Binding("f", "apply_fix", "fix"),
        Binding("p", "chart", "plot"),
        Binding("comma", "sample_history(-1)", "older samples", key_display=","),
        Binding("full_stop", "sample_history(1)", "newer samples", key_display="."),
        Binding("l", "samples_live", "live samples"),
        Binding("a", "alerts_only", "alerts only"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "quit", "quit", priority=True),
        Binding("x", "stop_run", "stop run", show=False),
        # Textual 8 binds ctrl+c to a "press ctrl+q to quit" hint; here it saves and stops
        # like q, but as an interruption: exit code 130, as SIGINT/SIGTERM and headless.
        Binding("ctrl+c", "interrupt", "interrupt", show=False, priority=True),
    ]

    def __init__(self, run: RunDescription | None = None, run_dir: Path | str | None = None, *,
                 session_factory=None, trainer_factory=None, driver_class=None, color: str | None = None,
                 pid: int | None = None) -> None:
        """`run`: what the screen shows before the engine reports (`gantui.ui.launch` builds it from
        the config, for `run` and `watch` alike). `session_factory` (listeners -> session): the run,
        an `EngineSession` on a thread here or (gantui watch) a `RemoteSession` on another process's
        run, where `q` leaves the monitor and the run goes on; `trainer_factory` (listeners ->
        trainer) is short for an `EngineSession` over it. `pid`: the process the system line
        watches (the training process; this one by default)."""
        super().__init__(driver_class=driver_class)
        self.description = run or RunDescription()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._wake_pending = False
        self.bridge = Bridge(wake=self._wake)
        if session_factory is None:
            session_factory = lambda listeners: EngineSession(trainer_factory, listeners, self.run_dir)  # noqa: E731
        self.session = session_factory([self.bridge])
        self.watching = self.session.watching   # the run is another process's: q leaves it running
        self.color = color             # truecolor | 256 | none; None: from the terminal
        self.history = History(capacity=512)  # the charts' records: the losses pane writes, the others read
        self.chart_state = ChartState()       # kept between openings of the chart
        self.info: ev.RunInfo | None = None
        self.state = ev.STARTING
        self._phase = ""
        self.frames = Frames()
        # the process whose CPU / memory the system line shows: this one, or (watch) the trainer's
        self.system = ProcSampler(pid)
        self.quitting = False
        self._quit_at = 0.0
        self.detached = False          # set by the SIGHUP handler: exit, leave the engine running
        self.error: str | None = None  # printed on exit by launch
        self.user_error: str | None = None  # bad input found at setup: launch raises UserError
        self.last_checkpoint_path: str | None = None
        self.terminal_output = None    # the driver's detachable stream (launch sets the driver)
        self.event_loop: asyncio.AbstractEventLoop | None = None
        self.hangup_pending = False    # set by the SIGHUP handler
        self.hangup_hook = None        # launch: record the event, attach the headless printer
        self._hung = False

    # --- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        self.color = self.color or color_mode(self.no_color)
        folder = None if self.run_dir is None else self.run_dir / run_files.SAMPLES
        yield StatusLine(self.description, id="status")
        yield Banner(self.description, id="banner")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield LossesPane(self.history, id="losses")
                yield GradientsPane(self.history, id="grads")
                yield AlertsPane(id="alerts")
            yield SamplesPane(self.description, self.color, folder, id="samples")
        yield TooSmall("", id="too-small")
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        self.event_loop = asyncio.get_running_loop()
        self._main = self.screen
        # looked up once: the poll runs four times a second
        self._status_w = self.query_one(StatusLine)
        self._losses_w = self.query_one(LossesPane)
        self._grads_w = self.query_one(GradientsPane)
        self._alerts_w = self.query_one(AlertsPane)
        self._samples_w = self.query_one(SamplesPane)
        # who hears the run's messages, in this order
        self._panes = (self._status_w, self.query_one(Banner), self._losses_w, self._grads_w,
                       self._alerts_w, self._samples_w)
        self._alerts_w.focus()          # arrows scroll the event log; Tab moves to the samples
        self._apply_size(self.size.width, self.size.height)
        self.set_interval(POLL_S, self._poll)
        # after the first frame: the loader thread's torch import must not delay it
        self.call_after_refresh(self._start_engine)
        if self.hangup_pending:
            self.handle_hangup()

    def _start_engine(self) -> None:
        self.session.start()
        self._phase = self.description.starting_phase(self.session.phase)
        self._status_w.on_phase_changed(PhaseChanged(self._phase))   # the grid keeps "importing torch"

    def on_resize(self, event: Resize) -> None:
        self._apply_size(event.size.width, event.size.height)

    def _apply_size(self, width: int, height: int) -> None:
        main = getattr(self, "_main", None)
        if main is None:
            return
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        main.set_class(small, "-too-small")
        main.set_class(width < 100, "-narrow")
        self._size_grads(width, height)
        if small:
            status = self._status_w.model
            self.query_one(TooSmall).update(
                f"Terminal too small: {width}x{height}.\n"
                f"gantui needs at least {MIN_WIDTH}x{MIN_HEIGHT}; enlarge the window.\n"
                f"Training carries on; q still saves and quits.\n\n"
                f"step {status.step}/{status.total} · {self.state}")

    def _size_grads(self, width: int | None = None, height: int | None = None) -> None:
        """The gradients pane is as tall as its content; on a short terminal the alerts pane gives
        way first, then the lower rows."""
        width = self.size.width if width is None else width
        height = self.size.height if height is None else height
        main_h = height - 2
        short = main_h < SHORT_MAIN
        self._main.set_class(short, "-short")
        left_w = max(10, int(width * (0.6 if width < 100 else 0.55)) - 2)
        self._grads_w.fit(left_w, main_h - 5 - (0 if short else 4))   # losses and alerts keep their minimum

    # --- engine -> UI ---------------------------------------------------------------------------
    def _wake(self) -> None:
        """Engine thread: ask for a drain soon. At most one wake in flight."""
        if not self._wake_pending:
            self._wake_pending = True
            self.post_message(EngineWake())

    def on_engine_wake(self, _: EngineWake) -> None:
        self._poll()

    def deliver(self, message: Message) -> None:
        """Hand one message to every pane that handles it, now, on the UI thread (Textual's
        handler names; synchronous, so a poll's messages are on the panes before its frame)."""
        name = message.handler_name
        for pane in self._panes:
            handler = getattr(pane, name, None)
            if handler is not None:
                handler(message)

    def on_alerts_changed(self, message: AlertsChanged) -> None:
        """The alerts pane says what is active now: the status line and the gauge show it too."""
        self.deliver(message)

    def _poll(self) -> None:
        """Drain the bridge, hand the news to the panes, pace the costly redraws."""
        self._wake_pending = False
        d = self.bridge.drain()
        deliver, frames = self.deliver, self.frames
        if d.info is not None:
            self.info = d.info
            self.system.set_cuda(str(d.info.device).startswith("cuda"))
            deliver(RunInfoArrived(d.info))
        if d.metrics:
            deliver(MetricsArrived(d.metrics))
            frames.charts_stale = True
        if d.snapshot is not None:
            deliver(SnapshotArrived(d.snapshot))
        if d.events:
            self._take_events(d.events)
            deliver(EventsArrived(d.events))
        if d.state is not None:
            self._take_state(d.state)
            deliver(StateArrived(d.state))
        if d.samples is not None:
            frames.pending_samples = d.samples
        # The sample grid and the charts are the costly redraws: never both in one frame.
        now = time.monotonic()
        drew_samples = False
        if frames.pending_samples is not None and now - frames.samples_at >= SAMPLES_S:
            deliver(SamplesArrived(frames.pending_samples))
            frames.pending_samples = None
            frames.samples_at = now
            drew_samples = True
        if frames.charts_stale and not drew_samples and (now - frames.charts_at >= CHART_S or d.state is not None):
            frames.charts_stale = False
            frames.charts_at = now
            deliver(ChartsDue())
            self._size_grads()
        if now - frames.system_at >= SYSTEM_S:
            frames.system_at = now
            deliver(SystemSampled(system_text(*self._system_stats())))
        phase = self.description.starting_phase(self.session.phase)
        phase_changed = phase != self._phase and self.info is None
        if phase_changed:
            self._phase = phase
            deliver(PhaseChanged(phase))
        self._check_lifecycle()
        if (d.info or d.snapshot or d.events or d.state or phase_changed) and self._main.has_class("-too-small"):
            self._apply_size(self.size.width, self.size.height)
        if isinstance(self.screen, ChartScreen) and time.monotonic() - frames.chart_screen_at > 1.0:
            frames.chart_screen_at = time.monotonic()
            self.screen.tick()

    def _system_stats(self) -> tuple:
        try:
            st = self.system.sample()
        except Exception:  # noqa: BLE001 - a figure we cannot read is left out, nothing more
            return (None, None, None)
        return (st.cpu_pct, st.rss_bytes, st.gpu_bytes)

    def _take_events(self, events: list[ev.Event]) -> None:
        """What the app itself keeps of the events: the error to print on exit, the checkpoint."""
        for e in events:
            d = e.data
            if e.kind == "checkpoint":
                self.last_checkpoint_path = str(d.get("path") or "") or self.last_checkpoint_path
            elif e.kind == "error":
                self.error = str(d.get("message", "error"))
                if d.get("user_error"):
                    # bad input found during setup: nothing ran; the CLI contract is one line + exit 2
                    self.user_error = self.error
                    self.exit(return_code=2)
            elif e.kind == "diverged":
                self.error = f"training diverged at step {e.step} (NaN/Inf)"

    def _take_state(self, s: ev.StateChanged) -> None:
        self.state = s.state
        if s.state == ev.STOPPED and not self.watching and not self.quitting:
            # stopped from outside (`gantui stop`): end as if q had been pressed
            self.quitting = True
            self._quit_at = time.monotonic()

    def _check_lifecycle(self) -> None:
        s = self.session
        if s.load_error is not None and self.error is None:
            self.error = s.load_error
            if s.load_user_error:
                self.user_error = s.load_error
                self.exit(return_code=2)
                return
            self.state = ev.CRASHED
            self.deliver(EngineFailed(s.load_error, s.traceback_path))
        if self.quitting and not self.detached:
            if not s.alive():
                self.exit(return_code=s.exit_code)
            elif time.monotonic() - self._quit_at > QUIT_TIMEOUT_S:
                self.error = f"the engine did not stop within {QUIT_TIMEOUT_S:.0f} s"
                self.exit(return_code=s.exit_code if self.info is None else 1)

    # --- keys -----------------------------------------------------------------------------------
    def _control(self):
        """The engine's Control, or None (with a notice) when commands cannot apply now."""
        if self.quitting:
            return None
        if self.state in TERMINAL:
            self.notify(f"the run is {self.state}: q quits", timeout=3)
            return None
        ctrl = self.session.control
        if ctrl is None and self.watching and self.info is not None:
            self.notify("this run is not live: nothing to control (q leaves)", timeout=3)
            return None
        if ctrl is None or self.info is None:
            self.notify("the engine is still starting", timeout=2)
            return None
        return ctrl

    def action_toggle_pause(self) -> None:
        ctrl = self._control()
        if ctrl is None:
            return
        ctrl.send(TogglePause())
        self._status_w.pause_asked()

    def action_step_once(self) -> None:
        ctrl = self._control()
        if ctrl is None:
            return
        if self.state != ev.PAUSED:
            self.notify("n steps once while paused (space pauses)", timeout=2)
            return
        ctrl.send(Step())

    def action_lr(self, which: str, factor: float) -> None:
        ctrl = self._control()
        if ctrl is None:
            return
        ctrl.send(ScaleLr(which=which, factor=factor))
        self._status_w.rate_asked(which)

    def action_save(self) -> None:
        ctrl = self._control()
        if ctrl is None:
            return
        ctrl.send(Save(reason="user"))
        self._status_w.asked("SAVING…")

    def action_apply_fix(self) -> None:
        """f: the newest active alert's fix, when the engine can make it live: a rate change, or a
        live loss setting (n_critic, label smoothing, instance noise, the penalty's weight)."""
        from gantui.diagnostics.actions import describe, normalise

        ctrl = self._control()
        if ctrl is None:
            return
        alert = self._alerts_w.fixable()
        act = normalise(alert.action) if alert is not None else None
        if act is None:
            self.notify("no active alert with a fix that can be applied live", timeout=2)
            return
        command = command_of_fix(act, reason=f"fix:{alert.rule}")
        ctrl.send(command)
        if isinstance(command, ScaleLr):
            self._status_w.rate_asked(*(("g", "d") if command.which == "both" else (command.which,)))
        self._alerts_w.mark_applied(alert)
        self.notify(f"applied: {describe(act)} ({alert.rule})", timeout=3)

    def action_chart(self) -> None:
        if isinstance(self.screen, ChartScreen):
            self.pop_screen()
            return
        critic = self.info is not None and is_critic(self.info.loss_kind)
        grads = self._grads_w
        self.push_screen(ChartScreen(self.history, color=self.color, critic=critic,
                                     health=lambda: grads.health, state=self.chart_state))

    def action_alerts_only(self) -> None:
        self._alerts_w.toggle_alerts_only()

    def action_sample_history(self, delta: int) -> None:
        """`,` / `.`: step through the saved sample files; past the newest: live."""
        self._samples_w.browse(delta)

    def action_samples_live(self) -> None:
        self._samples_w.back_to_live()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        """q: save a checkpoint, stop the engine, exit with its code (0, "stopped")."""
        self.request_quit("user")

    async def action_interrupt(self) -> None:
        """Ctrl-C: the same, as an interruption (exit code 130), as SIGINT does headless."""
        self.request_quit("interrupted")

    def request_quit(self, reason: str = "user") -> None:
        """A finished, diverged or crashed run exits at once; a running one saves and stops
        first (its thread is joined by the poll); one still starting stops right after setup."""
        if self.quitting or self.detached:
            return
        self.quitting = True
        self._quit_at = time.monotonic()
        if self.watching:  # leave the monitor; the run goes on
            self.session.stop(reason)
            self.exit(return_code=0)
            return
        if not self.session.alive():
            self.exit(return_code=self.session.exit_code)
            return
        self.session.stop(reason=reason)
        self._status_w.asked("STOPPING…")

    def action_stop_run(self) -> None:
        """x (watch only): stop the run itself, after a confirmation."""
        if not self.watching:
            self.notify("q saves and stops this run", timeout=2)
            return
        if self._control() is None:
            return
        from gantui.ui.widgets.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.session.stop_run()
                self._status_w.asked("STOPPING…")
                self.notify("asked the run to save a checkpoint and stop", timeout=3)

        self.push_screen(ConfirmScreen("Stop the run? It saves a checkpoint and ends (y / n)"), answered)

    def handle_hangup(self) -> None:
        """On the loop, after SIGHUP: hand the run to the headless printer and leave."""
        if self._hung:
            return
        self._hung = True
        if self.watching:  # nothing runs here: just leave
            self.request_quit("hangup")
            return
        if self.hangup_hook is not None:
            self.hangup_hook()
        self.detach()

    def detach(self) -> None:
        """The terminal hung up: leave the screen, keep the engine running (launch joins it)."""
        self.detached = True
        self.exit(return_code=0)

    # --- after the monitor closed ---------------------------------------------------------------
    def exit_summary(self) -> list[str]:
        """One or two lines for the terminal once the screen is gone (launch prints them)."""
        if self.run_dir is None or self.user_error:
            return []
        session = self.session
        if self.watching:  # the run is another process's: it goes on while its lock is held
            from gantui.engine.runlock import holder

            running = holder(self.run_dir) is not None
        else:
            running = session.alive()
        trainer = session.trainer
        ckpt = getattr(trainer, "last_checkpoint", None) or self.last_checkpoint_path
        latest = self.run_dir / run_files.CHECKPOINTS / run_files.LATEST
        state = str(getattr(trainer, "state", self.state)) if trainer is not None else self.state
        if ckpt and state != ev.DIVERGED and latest.exists():
            ckpt = latest          # what --resume RUN_DIR takes; the step file may be pruned later
        status = self._status_w.model
        step = int(getattr(trainer, "step", status.step) or status.step)
        config = self.run_dir / run_files.CONFIG
        return exit_lines(state=state, step=step, total=status.total, run_dir=self.run_dir,
                          checkpoint=ckpt, config_path=config if config.exists() else None,
                          running=running, code=self.return_code or 0, data_root=self.description.data_root)
