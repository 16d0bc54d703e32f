"""Numbers as the screen and the logs show them: learning rates, durations. Pure, standard
library only: the monitor's first frame needs these before numpy is imported (gantui.render
re-exports them)."""

from __future__ import annotations

import math


def format_lr(x: float | str | None) -> str:
    """A learning rate as the status line shows it: scientific, one decimal ('1.0e-04')."""
    if x is None:
        return "-"
    v = float(x)
    if not math.isfinite(v):
        return str(v)
    return f"{v:.1e}"


def format_duration(seconds: float | None) -> str:
    """'7:40' below an hour, '1:02:03' above; '--:--' when unknown."""
    if seconds is None:
        return "--:--"
    s = float(seconds)
    if not math.isfinite(s) or s < 0:
        return "--:--"
    total = int(round(s))
    h, rem = divmod(total, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"
