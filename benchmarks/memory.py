"""Memory stays flat: resident memory of a long toy run, sampled as it goes.

    python benchmarks/memory.py --steps 100000

Runs ring8 headless in this process (small widths so 100k steps take minutes on a CPU), with
the shipped log/sample/checkpoint cadence, and prints RSS after warm-up and at the end. The
engine keeps no per-step history: metrics go to disk, the diagnostics keep bounded windows.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

from gantui import config
from gantui.engine import events as ev
from gantui.engine.trainer import Trainer


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--preset", default="ring8")
    args = ap.parse_args()
    cfg = config.load(args.preset, ["model.g_width=64", "model.d_width=64", "loss.n_critic=1"])
    cfg = cfg.replace("run", steps=args.steps)
    marks: dict[int, float] = {}
    every = max(args.steps // 10, 1)

    def listener(msg):
        if isinstance(msg, ev.Snapshot) and msg.step % every == 0:
            marks[msg.step] = rss_mb()

    with tempfile.TemporaryDirectory() as tmp:
        t = Trainer(cfg, tmp, device="cpu", listeners=[listener])
        t.setup()
        t0 = time.perf_counter()
        t.run()
        seconds = time.perf_counter() - t0
    steps = sorted(marks)
    first, last = marks[steps[0]], marks[steps[-1]]
    print(" ".join(f"{s}:{marks[s]:.0f}MB" for s in steps))
    print(f"{args.preset}: {args.steps} steps in {seconds:.0f} s; RSS {first:.1f} MB at step {steps[0]} -> "
          f"{last:.1f} MB at step {steps[-1]}: growth {last - first:+.1f} MB")
