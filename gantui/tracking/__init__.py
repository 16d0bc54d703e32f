"""Your own training loop under gantui: `gantui.track(...)` (see gantui.tracking.run).

A shell room, like `headless`: it owns a run's lock and control channel. The engine never imports it.
"""

from gantui.tracking.run import TrackedRun


def track(run_dir, *, G=None, D=None, opt_g=None, opt_d=None, loss="ns", config=None, real=None,
          **options) -> TrackedRun:
    return TrackedRun(run_dir, G=G, D=D, opt_g=opt_g, opt_d=opt_d, loss=loss, config=config, real=real, **options)


__all__ = ["TrackedRun", "track"]
