"""The one-line status bar, the key bar, the error banner and the too-small notice."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static

from gantui.engine import events as ev
from gantui.ui.description import RunDescription
from gantui.ui.keys import bar_keys
from gantui.ui.messages import (AlertsChanged, EngineFailed, EventsArrived, PhaseChanged, RunInfoArrived,
                                SnapshotArrived, StateArrived)
from gantui.ui.text import StatusModel, short_path, status_text
from gantui.ui.widgets.base import Pane

TERMINAL = (ev.FINISHED, ev.STOPPED, ev.DIVERGED, ev.CRASHED)


class StatusLine(Pane):
    """run · device · step · it/s · ETA · G lr · D lr · n_critic · ckpt · STATE, fitted to the width.

    Owns its `StatusModel`: fills it from the run's messages (the rates only as the engine
    confirms them, marked '…' while a change the keys asked for is on its way) and from the keys'
    requests (`asked`, `pause_asked`, `rate_asked`)."""

    def __init__(self, run: RunDescription, **kw) -> None:
        super().__init__(**kw)
        self.model = StatusModel(name=run.name, total=run.total_steps, phase="")
        self._lr: dict[str, float | None] = {"g": None, "d": None}
        self._unconfirmed_lr = {"g": 0, "d": 0}   # rate changes sent, not yet confirmed by an lr_changed
        self._want_paused: bool | None = None     # what the pause presses so far ask for
        self._pressed_at = 0.0                    # the latest space press (time.monotonic)

    def draw(self) -> Text:
        return status_text(self.model, self.size.width, max_lines=max(1, self.size.height))

    def _changed(self) -> None:
        st = self.model
        for which in ("g", "d"):
            setattr(st, f"lr_{which}", self._lr[which])
            setattr(st, f"pending_{which}", self._unconfirmed_lr[which] > 0)
        self.refresh()

    # --- the run's messages ---------------------------------------------------------------------
    def on_run_info_arrived(self, message: RunInfoArrived) -> None:
        info, st = message.info, self.model
        st.name, st.device, st.total = info.name, info.device, info.total_steps
        st.step = max(st.step, info.start_step)
        st.n_critic = info.n_critic
        st.phase = ""
        self._lr = {"g": info.lr_g, "d": info.lr_d}
        self._changed()

    def on_snapshot_arrived(self, message: SnapshotArrived) -> None:
        s, st = message.snapshot, self.model
        st.step = max(st.step, s.step)
        st.total = s.total_steps
        if s.state == ev.RUNNING and st.state != ev.PAUSED:
            # frozen while paused: a single step (n) after a long pause is not the run's speed
            st.eta_s = s.eta_s
            st.steps_per_s = s.metrics.get("steps_per_s")
        st.n_critic = s.n_critic
        for which in ("g", "d"):
            if self._lr[which] is None:
                self._lr[which] = s.metrics.get(f"lr_{which}")
        self._changed()

    def on_events_arrived(self, message: EventsArrived) -> None:
        st = self.model
        for e in message.events:
            if e.kind == "lr_changed":
                which = str(e.data.get("which", ""))
                if self._unconfirmed_lr.get(which):
                    self._unconfirmed_lr[which] -= 1
            elif e.kind == "checkpoint":
                st.last_checkpoint = f"@{e.step}"
                if e.data.get("reason") == "user":  # `s`: the status line says so at once, at any width
                    st.saved_at = time.monotonic()
                if st.state_note == "SAVING…":
                    st.state_note = ""
        self._changed()

    def on_state_arrived(self, message: StateArrived) -> None:
        s, st = message.state, self.model
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
        elif s.state in TERMINAL and note != "STOPPING…":
            st.state_note = ""
        if note not in ("PAUSING…", "RESUMING…") and time.monotonic() - self._pressed_at > PRESSES_SETTLED_S:
            # Forget what the presses asked for only once they have settled: states of toggles still on
            # their way (a burst of presses) arrive after the note cleared, and a press judged from
            # one of them would invert every later note. Settled, the next press starts from the
            # engine's state (another client may have paused it meanwhile).
            self._want_paused = None
        self._changed()

    def on_alerts_changed(self, message: AlertsChanged) -> None:
        self.model.alerts = len(message.active)
        self.model.alert_severity = message.severity
        self.refresh()

    def on_phase_changed(self, message: PhaseChanged) -> None:
        self.model.phase = message.phase
        self.refresh()

    def on_engine_failed(self, message: EngineFailed) -> None:
        self.model.state = ev.CRASHED
        self.refresh()

    # --- the keys' requests, shown until the engine confirms them -------------------------------
    def asked(self, note: str | None = None) -> None:
        """A key's request: 'SAVING…', 'STOPPING…' (None: keep the note, redraw the rates)."""
        if note is not None:
            self.model.state_note = note
        self._changed()

    def pause_asked(self) -> None:
        """space: presses can outrun the engine; the note follows what the presses so far ask for."""
        want = not (self._want_paused if self._want_paused is not None else self.model.state == ev.PAUSED)
        self._want_paused = want
        self._pressed_at = time.monotonic()
        self.asked("PAUSING…" if want else "RESUMING…")

    def rate_asked(self, *which: str) -> None:
        """A rate change was sent for G and/or D: '…' after the rate until the engine confirms it."""
        for w in which:
            self._unconfirmed_lr[w] += 1
        self.asked()


PRESSES_SETTLED_S = 2.0   # the engine applies a toggle at its next step: well within this, at any speed
                          # a monitored run has (a step of several seconds delays the note, never the pause)

# (key shown, words, priority) from gantui.ui.keys: the last to go at small widths are the contract keys.
KEYS = bar_keys(watching=False)
WATCH_KEYS = bar_keys(watching=True)   # q leaves, x stops the run


def key_text(width: int, keys=KEYS) -> Text:
    """'space pause  n step  [ ] G lr …' dropping the lowest-priority keys until it fits."""
    keys = list(keys)

    def length(ks) -> int:
        return sum(len(k) + 1 + len(w) for k, w, _ in ks) + 2 * (len(ks) - 1)

    while len(keys) > 1 and length(keys) > width:
        keys.pop(min(range(len(keys)), key=lambda i: (keys[i][2], -i)))
    t = Text(no_wrap=True, overflow="crop")
    for i, (k, w, _) in enumerate(keys):
        if i:
            t.append("  ")
        t.append(k, "bold reverse")
        t.append(" " + w)
    return t


class KeyBar(Pane):
    """The footer: the key contract, always visible (Textual's Footer spends a cell per
    bracket, which does not fit 80 columns)."""

    def draw(self) -> Text:
        return key_text(self.size.width, WATCH_KEYS if getattr(self.app, "watching", False) else KEYS)


class Banner(Static):
    """A crash, a divergence, a setup error or the end of the run: stays until the user quits."""

    def __init__(self, run: RunDescription, **kw) -> None:
        super().__init__("", **kw)
        self._step, self._total = 0, run.total_steps

    def show(self, text: Text, error: bool = True) -> None:
        self.update(text)
        self.set_class(True, "-shown")
        self.set_class(not error, "-ok")

    def on_run_info_arrived(self, message: RunInfoArrived) -> None:
        self._total = message.info.total_steps
        self._step = max(self._step, message.info.start_step)

    def on_snapshot_arrived(self, message: SnapshotArrived) -> None:
        self._total = message.snapshot.total_steps
        self._step = max(self._step, message.snapshot.step)

    def on_state_arrived(self, message: StateArrived) -> None:
        self._step = max(self._step, message.state.step)
        if message.state.state == ev.FINISHED:
            self.show(Text.assemble(("✔ FINISHED ", "bold"),
                                    f"step {self._step}/{self._total} · checkpoints/latest.safetensors "
                                    "written · press q to quit"), error=False)

    def on_events_arrived(self, message: EventsArrived) -> None:
        for e in message.events:
            d = e.data
            if e.kind == "error" and not d.get("user_error"):  # bad input: the app exits with one line
                tb = d.get("traceback")
                self.show(Text.assemble(
                    ("✖ CRASHED ", "bold"), str(d.get("message", "error")),
                    f"\n  traceback saved to {tb}" if tb else "",
                    "\n  the screen stays until you press q (exit code 1)"))
            elif e.kind == "diverged":
                last = d.get("last_good_checkpoint")
                self.show(Text.assemble(
                    ("✖ DIVERGED ", "bold"), f"at step {e.step}: NaN/Inf in the losses or weights; training stopped.",
                    f"\n  last good checkpoint: {short_path(last, 3) if last else 'none'} · press q to quit"))

    def on_engine_failed(self, message: EngineFailed) -> None:
        tb = message.traceback_path
        self.show(Text.assemble(("✖ CANNOT START ", "bold"), message.message,
                                f"\n  traceback saved to {tb}" if tb else "",
                                "\n  press q to quit (exit code 1)"))


class TooSmall(Static):
    """Shown instead of the panes below the minimum size; training carries on regardless."""
