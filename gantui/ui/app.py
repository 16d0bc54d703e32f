"""The live monitor: a Textual app over the training engine.

Threads: the engine runs on its own thread and only ever calls the `Bridge` (a listener
that files messages under a lock). This app drains the bridge from a 4 Hz timer on the UI
thread (the status line at 4 Hz, the charts at 2 Hz, the sample grid at most at 1 Hz: a
frame holds the GIL the training needs), and at once when the bridge wakes it for something
the user is waiting on (a state change, an event); a key press also updates the status
line immediately ("PAUSING…"), so it shows its effect well within 200 ms. Commands go the
other way through the engine's thread-safe `Control`. No widget is touched off the UI thread.

Startup: the first frame needs only textual; the trainer (and torch) is built on a loader
thread started after that frame (see `session.EngineSession`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.message import Message

from gantui.engine import events as ev
from gantui.engine.control import Save, ScaleLr, Step, TogglePause, command_of_fix
from gantui.history import History
from gantui.vocab.losses import is_critic
from gantui.humanize import format_lr
from gantui.ui.bridge import Bridge
from gantui.ui.text import (StatusModel, exit_lines, folder_root, generator_word, health_entries, short_path,
                              system_text)
from gantui.ui.session import EngineSession, real_trainer_factory
from gantui.ui.sysinfo import ProcSampler
from gantui.ui.widgets import (AlertsPane, Banner, GradientsPane, KeyBar, LossesPane, SamplesPane,
                               StatusLine, TooSmall)
from gantui.ui.widgets.alerts import AlertsModel
from gantui.ui.widgets.chart import ChartScreen, ChartState
from gantui.ui.widgets.help import HelpScreen
from gantui.ui.widgets.samples import color_mode
from gantui.vocab import run_files

MIN_WIDTH, MIN_HEIGHT = 60, 16      # below this the panes give way to a message
POLL_S = 0.25                       # 4 Hz: status line, events, state
CHART_S = 0.5                       # 2 Hz: the chart panes (the costly part of a frame)
SAMPLES_S = 1.0                     # at most 1 Hz for the sample grid, however short sample_every is
SYSTEM_S = 1.0                      # the cpu / mem / gpu line
SHORT_MAIN = 15                     # below this many rows for the panes the alerts pane gives way
                                    # (the status line still counts the active alerts)
QUIT_TIMEOUT_S = 15.0               # q waits this long for the engine's final checkpoint
TERMINAL = (ev.FINISHED, ev.STOPPED, ev.DIVERGED, ev.CRASHED)


def with_ratio(m: dict[str, Any]) -> dict[str, Any]:
    """The record plus `grad_ratio` = |grad D| / |grad G| (what the chart plots as the ratio)."""
    d, g = m.get("grad_norm_d"), m.get("grad_norm_g")
    if isinstance(d, (int, float)) and isinstance(g, (int, float)) and g > 0 and "grad_ratio" not in m:
        return {**m, "grad_ratio": d / g}
    return m


class EngineWake(Message):
    """Posted from the engine thread (via the bridge): drain now. Coalesced in the queue."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EngineWake)


@dataclass(frozen=True)
class RunDescription:
    """What the monitor shows of a run's config before the engine reports: the same for `run`
    (the config it trains) and `watch` (the run's config.toml); the defaults when there is none
    (a scripted run)."""

    name: str = "gantui"
    total_steps: int = 0
    generator: str | None = None     # "EMA" | "live": which generator the sample grid shows
    conditional: bool = False
    data_name: str = ""

    @classmethod
    def of(cls, cfg) -> "RunDescription":
        if cfg is None:
            return cls()
        return cls(name=cfg.run.name, total_steps=int(cfg.run.steps or 0), generator=generator_word(cfg),
                   conditional=(cfg.model.arch == "conditional" and not cfg.model.custom) or cfg.model.conditional,
                   data_name=cfg.data.name)


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

    def __init__(self, cfg: Any = None, run_dir: Path | str | None = None, device: str | None = None,
                 resume: Path | None = None, *, trainer_factory=None, start_engine: bool = True,
                 driver_class=None, color: str | None = None, session_factory=None,
                 pid: int | None = None) -> None:
        """`session_factory` (listeners -> session): a run in another process (gantui watch);
        then `q` leaves the monitor and the run goes on. `pid`: the process the system line
        watches (the training process; this one by default)."""
        super().__init__(driver_class=driver_class)
        self.cfg = cfg
        self.description = RunDescription.of(cfg)    # what the screen needs of the config, run and watch alike
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._wake_pending = False
        self.bridge = Bridge(wake=self._wake)
        self.watching = session_factory is not None
        if self.watching:
            self.session = session_factory([self.bridge])
        else:
            factory = trainer_factory or real_trainer_factory(cfg, self.run_dir, device, resume)
            resumed = resume is not None and self.run_dir is not None and (self.run_dir / run_files.METRICS).exists()
            self.session = EngineSession(factory, [self.bridge], self.run_dir,
                                         history_total=self.description.total_steps if resumed else None)
        self.start_engine = start_engine
        self.color = color             # truecolor | 256 | none; None: from the terminal
        self.history = History(capacity=512)
        self.alerts = AlertsModel()
        self.status = StatusModel(
            name=self.description.name,
            total=self.description.total_steps,
            phase="")
        self.info: ev.RunInfo | None = None
        self.state = ev.STARTING
        self._lr: dict[str, float | None] = {"g": None, "d": None}
        self._unconfirmed_lr = {"g": 0, "d": 0}   # rate changes sent, not yet confirmed by an lr_changed
        self.quitting = False
        self._quit_at = 0.0
        self._want_paused: bool | None = None   # what the pause presses so far ask for
        self.detached = False          # set by the SIGHUP handler: exit, leave the engine running
        self.error: str | None = None  # shown in the banner; printed on exit by launch
        self.user_error: str | None = None  # bad input found at setup: launch raises UserError
        self.terminal_output = None    # the driver's detachable stream (launch sets the driver)
        self.event_loop: asyncio.AbstractEventLoop | None = None
        self.hangup_pending = False    # set by the SIGHUP handler
        self.hangup_hook = None        # launch: record the event, attach the headless printer
        self._hung = False
        self.poll_ms: deque[float] = deque(maxlen=512)
        self.polls = 0
        self._last_chart = 0.0
        self._last_charts = 0.0
        self._charts_stale = False
        self._pending_samples: ev.Samples | None = None
        self._last_samples = 0.0
        self.health: list | None = None       # the rules' verdicts in the newest metrics record
        self.chart_state = ChartState()       # kept between openings of the chart
        # the process whose CPU / memory the system line shows: this one, or (watch) the trainer's
        self.system = ProcSampler(pid)
        self._last_system = 0.0
        self._grads_lines = 0
        self.last_checkpoint_path: str | None = None

    # --- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusLine(self.status, id="status")
        yield Banner("", id="banner")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield LossesPane(self.history, id="losses")
                yield GradientsPane(self.history, id="grads")
                yield AlertsPane(self.alerts, id="alerts")
            yield SamplesPane(id="samples")
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
        self._samples_w = samples = self.query_one(SamplesPane)
        samples.color = self.color or color_mode(self.no_color)
        samples.placeholder = "starting… importing torch"
        samples.generator = self.description.generator
        samples.conditional = self.description.conditional
        samples.update_title()
        self._alerts_w.focus()          # arrows scroll the event log; Tab moves to the samples
        self._apply_size(self.size.width, self.size.height)
        self.set_interval(POLL_S, self._poll)
        if self.start_engine:
            # after the first frame: the loader thread's torch import must not delay it
            self.call_after_refresh(self._start_engine)
        if self.hangup_pending:
            self.handle_hangup()

    def _start_engine(self) -> None:
        self.session.start()
        self.status.phase = self._phase_words(self.session.phase)
        self._status_w.refresh()

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
            self.query_one(TooSmall).update(
                f"Terminal too small: {width}x{height}.\n"
                f"gantui needs at least {MIN_WIDTH}x{MIN_HEIGHT}; enlarge the window.\n"
                f"Training carries on; q still saves and quits.\n\n"
                f"step {self.status.step}/{self.status.total} · {self.state}")

    def _size_grads(self, width: int | None = None, height: int | None = None) -> None:
        """The gradients pane is as tall as its content (the health and quality rows come and
        go); on a short terminal the alerts pane gives way first, then the lower rows."""
        width = self.size.width if width is None else width
        height = self.size.height if height is None else height
        main_h = height - 2
        short = main_h < SHORT_MAIN
        self._main.set_class(short, "-short")
        left_w = max(10, int(width * (0.6 if width < 100 else 0.55)) - 2)
        want = self._grads_w.wanted_lines(left_w) + 2
        room = main_h - 5 - (0 if short else 4)          # losses and alerts keep their minimum
        rows = max(4, min(want, room))
        if rows != self._grads_lines:
            self._grads_lines = rows
            self._grads_w.styles.height = rows

    # --- engine -> UI ---------------------------------------------------------------------------
    def _wake(self) -> None:
        """Engine thread: ask for a drain soon. At most one wake in flight."""
        if not self._wake_pending:
            self._wake_pending = True
            self.post_message(EngineWake())

    def on_engine_wake(self, _: EngineWake) -> None:
        self._poll()

    def _poll(self) -> None:
        t0 = time.perf_counter()
        self._wake_pending = False
        d = self.bridge.drain()
        status_dirty = False
        if d.info is not None:
            self._on_info(d.info)
            status_dirty = True
        if d.metrics:
            for m in d.metrics:
                self.history.append(with_ratio(m))
                if "best" in m or "stop_rules" in m:  # the autopilot's state (quality records)
                    self._grads_w.autopilot = {"best": m.get("best"), "stop_rules": m.get("stop_rules")}
            entries = health_entries(d.metrics[-1])
            if entries or self.health is not None:
                self.health = entries or None
                self._grads_w.health = entries
            self._charts_stale = True
        now = time.monotonic()
        if d.snapshot is not None:
            s = d.snapshot
            st = self.status
            st.step = max(st.step, s.step)
            st.total = s.total_steps
            if s.state == ev.RUNNING and self.state != ev.PAUSED:
                # frozen while paused: a single step (n) after a long pause is not the run's speed
                st.eta_s = s.eta_s
                st.steps_per_s = s.metrics.get("steps_per_s")
            st.n_critic = s.n_critic
            for which in ("g", "d"):
                if self._lr[which] is None:
                    self._lr[which] = s.metrics.get(f"lr_{which}")
            status_dirty = True
        for e in d.events:
            self._on_event(e)
            status_dirty = True
        if d.events:
            alerts = self._alerts_w
            alerts.update_title()
            alerts.refresh()
            self._count_alerts()
        if d.state is not None:
            self._on_state(d.state)
            status_dirty = True
        if d.samples is not None:
            self._pending_samples = d.samples
        # The sample grid and the charts are the costly redraws: never both in one frame.
        drew_samples = False
        if self._pending_samples is not None and now - self._last_samples >= SAMPLES_S:
            self._samples_w.set_samples(self._pending_samples)
            self._pending_samples = None
            self._last_samples = now
            drew_samples = True
        if self._charts_stale and not drew_samples and (now - self._last_charts >= CHART_S or d.state is not None):
            self._charts_stale = False
            self._last_charts = now
            self._losses_w.refresh()
            self._grads_w.refresh()
            self._size_grads()
        if now - self._last_system >= SYSTEM_S:
            self._last_system = now
            self._samples_w.show_system(system_text(*self._system_stats()))
        phase = self._phase_words(self.session.phase)
        if phase != self.status.phase and self.info is None:
            self.status.phase = phase
            pane = self._samples_w
            pane.placeholder = f"starting… {phase}"
            pane.refresh()
            status_dirty = True
        self._check_lifecycle()
        if status_dirty:
            self._sync_lr()
            self._status_w.refresh()
            if self._main.has_class("-too-small"):
                self._apply_size(self.size.width, self.size.height)
        if isinstance(self.screen, ChartScreen) and time.monotonic() - self._last_chart > 1.0:
            self._last_chart = time.monotonic()
            self.screen.tick()
        self.polls += 1
        self.poll_ms.append((time.perf_counter() - t0) * 1000)

    def _system_stats(self) -> tuple:
        try:
            st = self.system.sample()
        except Exception:  # noqa: BLE001 - a figure we cannot read is left out, nothing more
            return (None, None, None)
        return (st.cpu_pct, st.rss_bytes, st.gpu_bytes)

    def _count_alerts(self) -> None:
        active = self.alerts.active
        st = self.status
        st.alerts = len(active)
        st.alert_severity = "critical" if any(a.data.get("severity") == "critical" for a in active.values()) \
            else "warning"
        self._grads_w.active_rules = set(active)
        self._grads_w.refresh()

    def _phase_words(self, phase: str) -> str:
        if phase != "setting up":
            return phase
        data = self.description.data_name
        if data == "digits":
            return "drawing digits"          # the offline data set is drawn at start-up
        return f"loading {data}" if data else "building the data and models"

    def _on_info(self, info: ev.RunInfo) -> None:
        self.info = info
        st = self.status
        st.name, st.device, st.total = info.name, info.device, info.total_steps
        st.step = max(st.step, info.start_step)
        st.n_critic = info.n_critic
        st.phase = ""
        self._lr = {"g": info.lr_g, "d": info.lr_d}
        critic = is_critic(info.loss_kind)
        self._losses_w.critic = critic
        self._grads_w.critic = critic
        self._samples_w.placeholder = "waiting for the first samples…"
        self.system.set_cuda(str(info.device).startswith("cuda"))

    def _on_state(self, s: ev.StateChanged) -> None:
        self.state = s.state
        st = self.status
        st.state = s.state
        st.step = max(st.step, s.step)
        if s.state not in (ev.CRASHED,):
            self._lr = {"g": s.lr_g, "d": s.lr_d}
            st.n_critic = s.n_critic
        note = st.state_note
        if note in ("PAUSING…", "RESUMING…") and s.state in (ev.PAUSED, ev.RUNNING) \
                and (s.state == ev.PAUSED) == self._want_paused:
            # the engine reached the state the keys asked for (after any number of presses)
            st.state_note = ""
            self._want_paused = None
        elif s.state in TERMINAL and note != "STOPPING…":
            st.state_note = ""
        if s.state == ev.STOPPED and not self.watching and not self.quitting:
            # stopped from outside (`gantui stop`): end as if q had been pressed
            self.quitting = True
            self._quit_at = time.monotonic()
        if s.state == ev.FINISHED:
            self._show_banner(Text.assemble(("✔ FINISHED ", "bold"),
                                            f"step {st.step}/{st.total} · checkpoints/latest.safetensors "
                                            "written · press q to quit"), error=False)

    def _on_event(self, e: ev.Event) -> None:
        self.alerts.add(e)
        d = e.data
        if e.kind == "lr_changed":
            which = str(d.get("which", ""))
            if self._unconfirmed_lr.get(which):
                self._unconfirmed_lr[which] -= 1
            self.history.mark(e.step, "lr_changed", f"{which.upper()} lr {format_lr(d.get('new'))}")
        elif e.kind in ("paused", "resumed"):
            self.history.mark(e.step, e.kind, e.kind)
        elif e.kind == "config_changed":
            self.history.mark(e.step, "config_changed", "config changed")
        elif e.kind == "rolled_back":  # [recover]: the charts drop the abandoned stretch and mark the branch
            self.history.rewind(e.step)
            self.history.mark(e.step, e.kind, f"rolled back from {d.get('from_step')}")
        elif e.kind == "checkpoint":
            self.status.last_checkpoint = f"@{e.step}"
            if d.get("reason") == "user":  # `s`: the status line says so at once, at any width
                self.status.saved_at = time.monotonic()
            self.last_checkpoint_path = str(d.get("path") or "") or self.last_checkpoint_path
            if self.status.state_note == "SAVING…":
                self.status.state_note = ""
        elif e.kind == "error":
            msg = str(d.get("message", "error"))
            self.error = msg
            if d.get("user_error"):
                # bad input found during setup: nothing ran; the CLI contract is one line + exit 2
                self.user_error = msg
                self.exit(return_code=2)
                return
            tb = d.get("traceback")
            self._show_banner(Text.assemble(
                ("✖ CRASHED ", "bold"), msg,
                f"\n  traceback saved to {tb}" if tb else "",
                "\n  the screen stays until you press q (exit code 1)"))
        elif e.kind == "diverged":
            last = d.get("last_good_checkpoint")
            self.error = f"training diverged at step {e.step} (NaN/Inf)"
            self._show_banner(Text.assemble(
                ("✖ DIVERGED ", "bold"), f"at step {e.step}: NaN/Inf in the losses or weights; training stopped.",
                f"\n  last good checkpoint: {short_path(last, 3) if last else 'none'} · press q to quit"))

    def _show_banner(self, text: Text, error: bool = True) -> None:
        banner = self.query_one(Banner)
        banner.update(text)
        banner.set_class(True, "-shown")
        banner.set_class(not error, "-ok")

    def _sync_lr(self) -> None:
        """The rates the engine confirmed (never a prediction), marked while a change is on its way."""
        st = self.status
        for which in ("g", "d"):
            setattr(st, f"lr_{which}", self._lr[which])
            setattr(st, f"pending_{which}", self._unconfirmed_lr[which] > 0)

    def _check_lifecycle(self) -> None:
        s = self.session
        if s.load_error is not None and self.error is None:
            self.error = s.load_error
            if s.load_user_error:
                self.user_error = s.load_error
                self.exit(return_code=2)
                return
            self.status.state = self.state = ev.CRASHED
            where = f"\n  traceback saved to {s.traceback_path}" if s.traceback_path else ""
            self._show_banner(Text.assemble(("✖ CANNOT START ", "bold"), s.load_error, where,
                                            "\n  press q to quit (exit code 1)"))
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

    def _note(self, note: str) -> None:
        self.status.state_note = note
        self._sync_lr()
        self._status_w.refresh()

    def action_toggle_pause(self) -> None:
        ctrl = self._control()
        if ctrl is None:
            return
        ctrl.send(TogglePause())
        # Presses can outrun the engine: the note follows what the presses so far ask for
        want = not (self._want_paused if self._want_paused is not None else self.state == ev.PAUSED)
        self._want_paused = want
        self._note("PAUSING…" if want else "RESUMING…")

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
        self._unconfirmed_lr[which] += 1
        self._note(self.status.state_note)

    def action_save(self) -> None:
        ctrl = self._control()
        if ctrl is None:
            return
        ctrl.send(Save(reason="user"))
        self._note("SAVING…")

    def action_apply_fix(self) -> None:
        """f: the newest active alert's fix, when the engine can make it live: a rate change, or a
        live loss setting (n_critic, label smoothing, instance noise, the penalty's weight)."""
        from gantui.diagnostics.actions import describe, normalise

        ctrl = self._control()
        if ctrl is None:
            return
        alert = self.alerts.fixable()
        act = normalise(alert.action) if alert is not None else None
        if act is None:
            self.notify("no active alert with a fix that can be applied live", timeout=2)
            return
        command = command_of_fix(act, reason=f"fix:{alert.rule}")
        ctrl.send(command)
        if isinstance(command, ScaleLr):
            for w in (("g", "d") if command.which == "both" else (command.which,)):
                self._unconfirmed_lr[w] += 1
        self.alerts.mark_applied(alert)
        self._alerts_w.refresh()
        self._note(self.status.state_note)
        self.notify(f"applied: {describe(act)} ({alert.rule})", timeout=3)

    def action_chart(self) -> None:
        if isinstance(self.screen, ChartScreen):
            self.pop_screen()
            return
        critic = self.info is not None and is_critic(self.info.loss_kind)
        self.push_screen(ChartScreen(self.history, color=self._samples_w.color, critic=critic,
                                     health=lambda: self.health, state=self.chart_state))

    def action_alerts_only(self) -> None:
        self._alerts_w.toggle_alerts_only()

    def samples_dir(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / run_files.SAMPLES

    def action_sample_history(self, delta: int) -> None:
        """Step through the saved sample files (older: -1, newer: +1); past the newest: live."""
        from gantui.engine import sample_files

        pane = self._samples_w
        folder = self.samples_dir()
        steps = sample_files.steps(folder) if folder is not None else []
        if not steps:
            self._sample_answer("no saved samples yet (every log.sample_every steps)")
            return
        shown = pane.samples.step if pane.samples is not None else None
        if pane.position is None:
            # from live: the newest saved file that is older than the live grid
            older = [s for s in steps if shown is None or s < shown] if delta < 0 else []
            if not older:
                if delta < 0:
                    self._sample_answer("no older saved samples")
                return
            target = older[-1]
        else:
            current = pane.samples.step
            if delta < 0:
                older = [s for s in steps if s < current]
                if not older:
                    self._sample_answer("this is the oldest saved grid")
                    return
                target = older[-1]
            else:
                newer = [s for s in steps if s > current]
                if not newer or (pane.live is not None and newer[0] >= pane.live.step):
                    pane.show_live()
                    return
                target = newer[0]
        try:
            saved = sample_files.load(sample_files.path_for(folder, target))
        except (OSError, ValueError, KeyError) as e:
            self.notify(f"cannot read the samples of step {target}: {e}", timeout=3)
            return
        pane.show_saved(saved, (steps.index(target) + 1, len(steps)))

    def _sample_answer(self, text: str) -> None:
        self.notify(text, timeout=3)
        self._samples_w.say(text)

    def action_samples_live(self) -> None:
        if self._samples_w.position is not None:
            self._samples_w.show_live()

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
        self._note("STOPPING…")

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
                self._note("STOPPING…")
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
        step = int(getattr(trainer, "step", self.status.step) or self.status.step)
        config = self.run_dir / run_files.CONFIG
        return exit_lines(state=state, step=step, total=self.status.total, run_dir=self.run_dir,
                          checkpoint=ckpt, config_path=config if config.exists() else None,
                          running=running, code=self.return_code or 0, data_root=folder_root(self.cfg))
