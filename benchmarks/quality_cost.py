"""What live quality costs: the same run with `log.eval_every` as shipped and with it off.

    python benchmarks/quality_cost.py                      # every bundled preset, 1,000 steps each
    python benchmarks/quality_cost.py --presets dcgan ring8 --steps 2000 --repeats 3

Each preset runs as shipped through `gantui run --headless` (OMP_NUM_THREADS=1), once with live
quality at the preset's `log.eval_every` scaled so that the run holds at least two measurements
(the preset's own interval when it fits, else steps / 2) and once with `log.eval_every=0`, in
alternating order, `--repeats` times; the training time is read from metrics.jsonl (the `time`
of the last record minus the first), so imports and setup do not count. The feature network of an
image data set is trained (and cached) by a warm-up run first, as it is once per data set.
Cost = (time with quality - time without) / time without, median over the repeats, and the cost
per measurement in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gantui import config  # noqa: E402  (no torch)


def run(preset: str, steps: int, every: int, out: Path) -> tuple[float, int]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "gantui", "run", preset, "--headless", "--steps", str(steps),
                        "--run-dir", str(out), "--set", f"log.eval_every={every}",
                        "--set", f"log.checkpoint_every={steps}", "--set", f"log.sample_every={steps}"],
                       cwd=REPO, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{preset}: exit {r.returncode}: {r.stderr[-400:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    measured = sum(1 for m in records if "modes_captured" in m or "fid" in m)
    return records[-1]["time"] - records[0]["time"], measured


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="*", default=[p.stem for p in config.bundled_presets()])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="quality-cost-"))
    print(f"{'preset':<10} {'eval_every':>10} {'measured':>8} {'off s':>8} {'on s':>8} {'cost':>7} {'s/measure':>9}")
    for preset in args.presets:
        cfg = config.load(preset)
        every = cfg.log.eval_every if 0 < cfg.log.eval_every <= args.steps // 2 else args.steps // 2
        if not cfg.is_toy:
            run(preset, every, every, root / f"{preset}-warm")  # trains and caches the feature network
        on, off, n = [], [], 0
        for i in range(args.repeats):
            order = [(True, "on"), (False, "off")] if i % 2 == 0 else [(False, "off"), (True, "on")]
            for with_quality, tag in order:
                t, measured = run(preset, args.steps, every if with_quality else 0, root / f"{preset}-{tag}-{i}")
                (on if with_quality else off).append(t)
                n = max(n, measured)
        t_on, t_off = statistics.median(on), statistics.median(off)
        cost = (t_on - t_off) / t_off
        per = (t_on - t_off) / n if n else float("nan")
        print(f"{preset:<10} {every:>10} {n:>8} {t_off:>8.1f} {t_on:>8.1f} {cost:>6.1%} {per:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
