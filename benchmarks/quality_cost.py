"""What live quality costs, per preset: one measurement's CPU time against the training's CPU time for
the steps between two measurements.

    OMP_NUM_THREADS=1 python benchmarks/quality_cost.py                 # every bundled preset
    OMP_NUM_THREADS=1 python benchmarks/quality_cost.py --presets dcgan ring8 --steps 200 --every 500

Each preset, as shipped, trains `--steps` steps in this process on the CPU with one thread
(`gantui.engine.trainer.Trainer`, live quality off while it trains), then its live quality is
measured `--measures` times on the trained generator. Times are the training thread's CPU time
(`time.thread_time`), which a busy shared machine inflates far less than wall-clock time, and the
wall time beside it. Reported:

- `step ms`: training CPU time per step (setup and the first 10 steps, warm-up, excluded);
- `prepare s`: the one-time work (the feature network loaded or trained once per data set, the real
  reference's features and statistics); done before the first step, not inside the training;
- `measure s`: the median measurement's CPU time (the first one, which warms caches, excluded);
- `cost@N`: measure / (N x step): the share of training time live quality takes at every N steps
  (`--every`, default 500), and at the preset's own `log.eval_every`.

Measurements cost the same on any weights (the generator and the feature network have fixed sizes),
so a short training suffices for the step time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from gantui import config  # noqa: E402
from gantui.engine.trainer import Trainer  # noqa: E402


def clocks() -> tuple[float, float]:
    return time.thread_time(), time.perf_counter()


def measure_preset(preset: str, steps: int, measures: int, root: Path) -> dict:
    cfg = config.load(preset, ["log.eval_every=0", f"log.checkpoint_every={steps + 1}",
                               f"log.sample_every={steps + 1}"]).replace("run", steps=steps)
    shipped = config.load(preset).log.eval_every
    t = Trainer(cfg, root / preset, device="cpu")
    t.setup()
    marks: dict[int, tuple[float, float]] = {}

    def on_snapshot(msg):
        if getattr(msg, "step", None) is not None and type(msg).__name__ == "Snapshot":
            marks[msg.step] = clocks()

    t.add_listener(on_snapshot)
    t.run()
    first = min(s for s in marks if s >= 10)
    last = max(marks)
    step_cpu = (marks[last][0] - marks[first][0]) / (last - first)
    step_wall = (marks[last][1] - marks[first][1]) / (last - first)

    q = t.quality
    c0, w0 = clocks()
    if hasattr(q, "prepare"):  # (older versions set up inside the first measurement)
        q.prepare()
    c1, w1 = clocks()
    cpu, wall = [], []
    for _ in range(measures + 1):
        a = clocks()
        out = q.measure()
        b = clocks()
        cpu.append(b[0] - a[0])
        wall.append(b[1] - a[1])
    if not out:
        raise SystemExit(f"{preset}: live quality failed: {q.failed}")
    return {"preset": preset, "step_cpu": step_cpu, "step_wall": step_wall, "prepare_cpu": c1 - c0,
            "prepare_wall": w1 - w0, "measure_cpu": statistics.median(cpu[1:]),
            "measure_wall": statistics.median(wall[1:]), "shipped_every": shipped}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="*", default=[p.stem for p in config.bundled_presets()])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--measures", type=int, default=3)
    ap.add_argument("--every", type=int, default=500)
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="quality-cost-"))
    print(f"gantui from {Path(config.__file__).parent}, torch {torch.__version__}, {torch.get_num_threads()} thread, "
          f"CPU time of the training thread")
    print(f"{'preset':<10} {'step ms':>8} {'prepare s':>9} {'measure s':>9} {'(wall)':>7} "
          f"{'cost@' + str(args.every):>9} {'shipped':>8} {'cost@shipped':>12}")
    for preset in args.presets:
        try:
            r = measure_preset(preset, args.steps, args.measures, root)
        except SystemExit as e:
            print(f"{preset:<10} skipped: {e}", flush=True)
            continue
        cost = r["measure_cpu"] / (args.every * r["step_cpu"])
        every = r["shipped_every"]
        shipped = f"{r['measure_cpu'] / (every * r['step_cpu']):.1%}" if every else "off"
        print(f"{preset:<10} {1000 * r['step_cpu']:>8.1f} {r['prepare_cpu']:>9.2f} {r['measure_cpu']:>9.3f} "
              f"{r['measure_wall']:>7.3f} {cost:>9.1%} {every:>8} {shipped:>12}", flush=True)


if __name__ == "__main__":
    main()
