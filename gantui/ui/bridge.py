"""Engine thread -> UI thread hand-off. Pure Python: no textual, no torch.

The trainer calls listeners on its own thread, possibly hundreds of times a second. The
bridge is that listener. It never touches a widget; it files each message under a lock
in O(1) and the UI takes everything at once a few times a second (`drain`):

- the newest Snapshot / Samples / StateChanged only (coalesced: an older one is useless),
- every Snapshot's metrics, in a bounded deque (the UI appends them to its History, so the
  charts miss nothing; if the UI ever fell `max_metrics` records behind, the oldest go),
- every Event, in a bounded deque.

`wake` (optional) is called, outside the lock, when something the user is waiting to see
arrives (a state change or an event): the app sets it to a thread-safe post_message, so a
key press shows its effect well before the next poll.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from gantui.engine import events as ev


@dataclass
class Drained:
    """What arrived since the previous drain."""

    info: ev.RunInfo | None = None            # set on the drain that first sees it
    snapshot: ev.Snapshot | None = None       # newest, or None when no new one arrived
    samples: ev.Samples | None = None
    state: ev.StateChanged | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    events: list[ev.Event] = field(default_factory=list)
    dropped: int = 0                          # metrics records lost to the bound (UI far behind)

    def __bool__(self) -> bool:
        return bool(self.info or self.snapshot or self.samples or self.state or self.metrics or self.events)


class Bridge:
    def __init__(self, max_metrics: int = 4096, max_events: int = 512,
                 wake: Callable[[], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._info: ev.RunInfo | None = None
        self._info_new = False
        self._snapshot: ev.Snapshot | None = None
        self._samples: ev.Samples | None = None
        self._state: ev.StateChanged | None = None
        self._metrics: deque[dict[str, Any]] = deque(maxlen=max_metrics)
        self._events: deque[ev.Event] = deque(maxlen=max_events)
        self._dropped = 0
        self.wake = wake
        self.messages = 0  # total received (tests and the benchmark read it)

    # --- engine thread ------------------------------------------------------------------
    def __call__(self, msg: ev.Message) -> None:
        urgent = False
        with self._lock:
            self.messages += 1
            if isinstance(msg, ev.Snapshot):
                self._snapshot = msg
                if len(self._metrics) == self._metrics.maxlen:
                    self._dropped += 1
                self._metrics.append(msg.metrics)
            elif isinstance(msg, ev.StateChanged):
                self._state = msg
                urgent = True
            elif isinstance(msg, ev.Event):
                self._events.append(msg)
                urgent = True
            elif isinstance(msg, ev.Samples):
                self._samples = msg
            elif isinstance(msg, ev.RunInfo):
                self._info = msg
                self._info_new = True
                urgent = True
        wake = self.wake
        if urgent and wake is not None:
            wake()

    # --- UI thread ------------------------------------------------------------------------
    def drain(self) -> Drained:
        with self._lock:
            out = Drained(
                info=self._info if self._info_new else None,
                snapshot=self._snapshot, samples=self._samples, state=self._state,
                metrics=list(self._metrics), events=list(self._events), dropped=self._dropped)
            self._info_new = False
            self._snapshot = self._samples = self._state = None
            self._metrics.clear()
            self._events.clear()
            self._dropped = 0
        return out

    @property
    def info(self) -> ev.RunInfo | None:
        return self._info
