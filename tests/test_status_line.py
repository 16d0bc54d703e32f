"""The status line's pause note follows what the presses ask for, through a burst whose states
arrive after the note cleared (the tmux test's 50 presses once left 'PAUSING…' on a running run)."""

from __future__ import annotations

from gantui.engine import events as ev
from gantui.ui.description import RunDescription
from gantui.ui.messages import StateArrived
from gantui.ui.widgets.status import StatusLine


def arrive(line: StatusLine, state: str) -> None:
    line.on_state_arrived(StateArrived(ev.StateChanged(10, state, 1e-3, 1e-3, 1)))


def test_a_press_after_a_burst_asks_for_the_state_after_every_press_so_far():
    line = StatusLine(RunDescription())
    arrive(line, ev.RUNNING)
    for _ in range(4):                      # four presses: pause, resume, pause, resume
        line.pause_asked()
    assert line.model.state_note == "RESUMING…"
    arrive(line, ev.PAUSED)                 # the first toggle's state
    arrive(line, ev.RUNNING)                # the second's: what the presses ask for, the note clears
    assert line.model.state_note == ""
    arrive(line, ev.PAUSED)                 # the third's, still on its way when the note cleared
    line.pause_asked()                      # the fifth press: five toggles from running end paused
    assert line.model.state_note == "PAUSING…"
    arrive(line, ev.RUNNING)                # the fourth's
    assert line.model.state_note == "PAUSING…"
    arrive(line, ev.PAUSED)                 # the fifth's
    assert line.model.state_note == ""


def test_once_the_presses_settled_a_press_starts_from_the_engines_state(monkeypatch):
    from gantui.ui.widgets import status

    clock = [100.0]
    monkeypatch.setattr(status.time, "monotonic", lambda: clock[0])
    line = StatusLine(RunDescription())
    arrive(line, ev.RUNNING)
    line.pause_asked()
    arrive(line, ev.PAUSED)
    assert line.model.state_note == ""
    clock[0] += status.PRESSES_SETTLED_S + 1
    arrive(line, ev.RUNNING)                # another client resumed it meanwhile
    line.pause_asked()
    assert line.model.state_note == "PAUSING…"
