"""Hysteresis over a bounded history of per-record verdicts: raise / clear, never flap."""

from __future__ import annotations

import math
from collections import deque
from itertools import islice

from gantui.diagnostics.rules import Obs


def holds(obs: dict[str, Obs]) -> bool:
    return any(o.holds for o in obs.values())


def need(sustain: float, window: int) -> int:
    """Records of `window` that count as 'mostly' (the epsilon keeps 0.8 * 20 == 16, not 17)."""
    return max(1, math.ceil(sustain * window - 1e-9))


class Latch:
    """A rule raises when its condition held in `sustain` of its last `window` records and clears
    when it failed in `sustain` of its last `clear_window` records.

    Each transition starts the other count afresh: a raised alert clears only on records
    seen after it was raised, and a cleared one re-raises only on records after the clear,
    so stale verdicts from before a transition (a clear_window longer than the window, say)
    can never flip the state straight back. The raise window may differ from record to record
    (d_overpowering judges the warm-up over a shorter one); it is passed with each record."""

    def __init__(self, size: int, sustain: float):
        self.sustain = sustain
        self.history: deque[dict[str, Obs]] = deque(maxlen=size)
        # the verdicts counted towards a raise (while down) or a clear (while up)
        self.recent: deque[bool] = deque(maxlen=size)
        self.basis: list[dict[str, Obs]] = []  # the records that decided the last transition
        self.raised = False

    def last(self, n: int) -> list[dict[str, Obs]]:
        start = max(0, len(self.history) - n)
        return list(islice(self.history, start, None))

    def counted(self, window: int) -> tuple[int, int]:
        """(records that held, records seen) among the last `window` counted ones."""
        tail = list(islice(self.recent, max(0, len(self.recent) - window), None))
        return sum(tail), len(tail)

    def push(self, obs: dict[str, Obs], window: int, clear_window: int) -> str | None:
        self.history.append(obs)
        self.recent.append(holds(obs))
        if not self.raised:
            held, _ = self.counted(window)
            if held >= need(self.sustain, window):
                self.raised = True
                self.basis = self.last(min(window, len(self.recent)))
                self.recent.clear()
                return "raised"
        else:
            held, seen = self.counted(clear_window)
            if seen - held >= need(self.sustain, clear_window):
                self.raised = False
                self.basis = self.last(min(clear_window, len(self.recent)))
                self.recent.clear()
                return "cleared"
        return None
