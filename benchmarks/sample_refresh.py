"""What the time-budgeted sample refresh costs the training (issue 21).

The screen's grid refreshes at least every 3 s early in a run (gantui.engine.trainer
SAMPLE_REFRESH_S). Its cost is one call of the trainer's own `_publish_samples` (G on the fixed
noise, the picture made for the screen) per refresh: this times that call on a preset's real
trainer and divides by the budget, next to the time of a training step.

    python benchmarks/sample_refresh.py [PRESET ...]     (default: wgan_gp dcgan ring8)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from gantui import config
from gantui.engine.trainer import SAMPLE_REFRESH_S, Trainer


def measure(preset: str, steps: int = 20, calls: int = 20) -> dict:
    cfg = config.load(preset).replace("run", steps=steps)
    with tempfile.TemporaryDirectory() as tmp:
        t = Trainer(cfg, Path(tmp) / "run", device="cpu")
        t.setup()
        started = time.perf_counter()
        t.run()
        step_s = (time.perf_counter() - started) / steps
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            t._publish_samples()
            times.append(time.perf_counter() - t0)
    call = statistics.median(times)
    return {"preset": preset, "step_s": step_s, "refresh_s": call, "share": call / SAMPLE_REFRESH_S[0]}


def main() -> None:
    for preset in sys.argv[1:] or ["wgan_gp", "dcgan", "ring8"]:
        r = measure(preset)
        print(f"{r['preset']:<10} step {r['step_s'] * 1e3:7.1f} ms   one refresh {r['refresh_s'] * 1e3:6.1f} ms   "
              f"cost at one refresh per {SAMPLE_REFRESH_S[0]:.0f} s: {r['share']:.2%} of the training time")


if __name__ == "__main__":
    main()
