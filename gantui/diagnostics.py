"""Alert rules over the metric stream. Pure Python: no torch, no textual.

(Skeleton: thresholds first so config can validate `[diagnostics]`; the rules follow.)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    """Defaults of the alert rules; a preset's [diagnostics] table overrides any of them."""

    window: int = 20          # log records a condition must hold before an alert is raised
    clear_window: int = 20    # log records it must fail before the alert clears
