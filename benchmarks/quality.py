"""Mode coverage of the shipped toy presets, by DESIGN's definitions, on 2,500 samples.

Trains each preset headless as shipped (or reuses a run dir), then counts independently of
`gantui eval`: a sample is high quality when within 3 std of its nearest mean; a mode is
captured when at least one high-quality sample is nearest to it.

    python benchmarks/quality.py                 # ring8 and grid25, trains both (a few minutes each)
    python benchmarks/quality.py --run-dir runs/grid25-...   # judge an existing run
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from gantui.checkpoint import load_generator
from gantui.data import toy


def judge(run_dir: Path, n: int = 2500, seed: int = 0) -> dict:
    loaded = load_generator(run_dir)
    name = loaded.config.data.name
    samples, _ = loaded.sample(n, seed)
    means = toy.means(name, loaded.config.data.modes).float()
    d = torch.cdist(samples.float(), means)
    dist, nearest = d.min(1)
    hq = dist <= 3 * toy.std(name)
    captured = torch.unique(nearest[hq]).numel()
    return {"preset": name, "step": loaded.step, "ema": loaded.uses_ema, "modes": captured,
            "modes_total": len(means), "hq_fraction": hq.float().mean().item()}


def train(preset: str, run_dir: Path, extra: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "gantui", "run", preset, "--headless", "--run-dir", str(run_dir), *extra],
                       stdout=subprocess.DEVNULL)
    if r.returncode != 0:
        raise SystemExit(f"{preset}: training exited {r.returncode}")
    return time.perf_counter() - t0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", action="append")
    ap.add_argument("--run-dir", type=Path)
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    if args.run_dir:
        print(judge(args.run_dir))
        raise SystemExit(0)
    extra = [x for s in args.set for x in ("--set", s)]
    for preset in args.preset or ["ring8", "grid25"]:
        run_dir = Path(tempfile.mkdtemp(prefix=f"quality-{preset}-"))
        seconds = train(preset, run_dir, extra)
        print({**judge(run_dir), "train_seconds": round(seconds, 1), "run_dir": str(run_dir)}, flush=True)
