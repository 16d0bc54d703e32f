"""What the monitor's panes hear: one typed Textual message per kind of news from the run.

The app's poll drains the bridge (`ui/bridge.py`) and hands each pane the messages below; a pane
keeps its own state and handles only the messages it cares about (`on_<message_name>`, Textual's
handler names). The app delivers them synchronously, in this order, from its poll on the UI
thread (`MonitorApp.deliver`): a record is on the pane before the frame that draws it, and a
test that waits for the screen sees what the poll drained. Nothing here talks to the engine.

Order inside one poll: RunInfoArrived, MetricsArrived, SnapshotArrived, EventsArrived,
StateArrived, then (when due) SamplesArrived, ChartsDue, SystemSampled, PhaseChanged.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from gantui.engine import events as ev


class RunInfoArrived(Message):
    """The engine started: what the run is (name, device, loss, rates, n_critic)."""

    def __init__(self, info: ev.RunInfo) -> None:
        super().__init__()
        self.info = info


class MetricsArrived(Message):
    """Every metrics record since the previous poll, oldest first (with `grad_ratio` added)."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        super().__init__()
        self.records = records


class SnapshotArrived(Message):
    """The newest snapshot: step, total, speed, ETA, n_critic."""

    def __init__(self, snapshot: ev.Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class EventsArrived(Message):
    """Every event since the previous poll, oldest first (alerts, rate changes, checkpoints...)."""

    def __init__(self, events: list[ev.Event]) -> None:
        super().__init__()
        self.events = events


class StateArrived(Message):
    """The run's state changed (RUNNING, PAUSED, FINISHED...), with the rates the engine confirms."""

    def __init__(self, state: ev.StateChanged) -> None:
        super().__init__()
        self.state = state


class SamplesArrived(Message):
    """New live samples; delivered at most once a second (`SAMPLES_S`), never in a chart frame."""

    def __init__(self, samples: ev.Samples) -> None:
        super().__init__()
        self.samples = samples


class ChartsDue(Message):
    """Redraw the charts now: records arrived and the chart frame is due (`CHART_S`)."""


class SystemSampled(Message):
    """The machine's figures (cpu, memory, gpu) as one line of words."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class PhaseChanged(Message):
    """What the engine is doing while it starts ("importing torch", "drawing digits")."""

    def __init__(self, phase: str) -> None:
        super().__init__()
        self.phase = phase


class EngineFailed(Message):
    """The engine could not start (not a user error): why, and where its traceback is."""

    def __init__(self, message: str, traceback_path: Any = None) -> None:
        super().__init__()
        self.message = message
        self.traceback_path = traceback_path


class AlertsChanged(Message):
    """Posted by the alerts pane after events changed what is active: rule -> severity."""

    def __init__(self, active: dict[str, str]) -> None:
        super().__init__()
        self.active = active

    @property
    def severity(self) -> str:
        return "critical" if "critical" in self.active.values() else "warning"
