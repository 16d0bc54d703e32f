"""Hysteresis over a bounded history of per-record verdicts: raise / clear, never flap, never forgive
a failure that comes back."""

from __future__ import annotations

import math
from collections import deque
from itertools import islice
from typing import Any

from gantui.diagnostics.rules import Obs


def holds(obs: dict[str, Obs]) -> bool:
    return any(o.holds for o in obs.values())


def need(sustain: float, window: int) -> int:
    """Records of `window` that count as 'mostly' (the epsilon keeps 0.8 * 20 == 16, not 17)."""
    return max(1, math.ceil(sustain * window - 1e-9))


def quiet(clear_window: int) -> int:
    """The newest records that must all be clean before an alert clears: a quarter of the clear
    window (at least one). 'Failed in most of the window' alone would clear a generator that keeps
    returning to a single point every few records."""
    return max(1, clear_window // 4)


class Latch:
    """A rule raises when its condition held in `sustain` of its last `window` records and clears
    when it failed in `sustain` of its last `clear_window` records AND in every one of the newest
    quarter of them (a recovery that lasts, not a lull).

    Each transition starts the other count afresh: a raised alert clears only on records
    seen after it was raised, and a cleared one re-raises only on records after the clear,
    so stale verdicts from before a transition (a clear_window longer than the window, say)
    can never flip the state straight back. Once a rule has cleared, a recurrence raises it again
    on `relapse` (less than `sustain`) of the window: a collapse that comes and goes is not
    forgiven. The raise window may differ from record to record (d_overpowering judges the
    warm-up over a shorter one); it is passed with each record."""

    def __init__(self, size: int, sustain: float, relapse: float | None = None):
        self.sustain = sustain
        self.relapse = sustain if relapse is None else min(relapse, sustain)
        self.history: deque[dict[str, Obs]] = deque(maxlen=size)
        # the verdicts counted towards a raise (while down) or a clear (while up)
        self.recent: deque[bool] = deque(maxlen=size)
        self.basis: list[dict[str, Obs]] = []  # the records that decided the last transition
        self.raised = False
        self.cleared_once = False  # cleared before: a recurrence needs only `relapse` of the window

    def last(self, n: int) -> list[dict[str, Obs]]:
        start = max(0, len(self.history) - n)
        return list(islice(self.history, start, None))

    def counted(self, window: int) -> tuple[int, int]:
        """(records that held, records seen) among the last `window` counted ones."""
        tail = list(islice(self.recent, max(0, len(self.recent) - window), None))
        return sum(tail), len(tail)

    def raise_need(self, window: int) -> int:
        return need(self.relapse if self.cleared_once else self.sustain, window)

    def push(self, obs: dict[str, Obs], window: int, clear_window: int) -> str | None:
        self.history.append(obs)
        self.recent.append(holds(obs))
        if not self.raised:
            held, _ = self.counted(window)
            if held >= self.raise_need(window):
                self.raised = True
                self.basis = self.last(min(window, len(self.recent)))
                self.recent.clear()
                return "raised"
        else:
            held, seen = self.counted(clear_window)
            tail, _ = self.counted(quiet(clear_window))
            if seen - held >= need(self.sustain, clear_window) and tail == 0:
                self.raised = False
                self.cleared_once = True
                self.basis = self.last(min(clear_window, len(self.recent)))
                self.recent.clear()
                return "cleared"
        return None

    # -- checkpoints -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JSON-safe: every verdict as {condition: [holds, value, evidence]}."""
        def enc(obs: dict[str, Obs]) -> dict[str, list]:
            return {k: [o.holds, o.value, o.evidence] for k, o in obs.items()}
        n_basis = len(self.basis)
        return {"history": [enc(o) for o in self.history], "recent": list(self.recent),
                "basis": [enc(o) for o in self.basis[-n_basis:]], "raised": self.raised,
                "cleared_once": self.cleared_once}

    def load(self, state: dict[str, Any], conditions: Any = None) -> None:
        """Restore `state()` (untrusted: a checkpoint's metadata). Every verdict must name one of
        `conditions` and carry a finite value; ValueError/TypeError/KeyError otherwise."""
        def dec(obs: dict[str, list]) -> dict[str, Obs]:
            out = {}
            for k, (h, v, ev) in obs.items():
                if conditions is not None and k not in conditions:
                    raise ValueError(f"unknown condition {k!r}")
                if not isinstance(h, bool) or not isinstance(ev, dict) or not math.isfinite(float(v)):
                    raise ValueError("malformed verdict")
                out[str(k)] = Obs(h, float(v), dict(ev))
            if not out:
                raise ValueError("empty verdict")
            return out
        size = self.history.maxlen
        history = [dec(o) for o in state["history"][-size:]]
        recent = [bool(x) for x in state["recent"][-size:]]
        basis = [dec(o) for o in state["basis"][-size:]]
        self.history.clear()
        self.history.extend(history)
        self.recent.clear()
        self.recent.extend(recent)
        self.basis = basis
        self.raised = bool(state["raised"])
        self.cleared_once = bool(state["cleared_once"])
