"""How close gantui.memory's estimate is to a real run's peak memory, on the CPU.

    python benchmarks/memory_estimate.py

Each configuration trains a few steps in a fresh process; the measured figure is the peak resident set
(VmHWM) minus the resident set just before the trainer is set up (torch already imported), so it holds
what the run itself allocated: the data set, models, optimiser states, activations and allocator slack.
Memory figures do not depend on machine load (unlike times).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CASES = [
    ("ring8", ["model.g_width=1024", "model.d_width=1024", "model.g_depth=4", "model.d_depth=4", "data.batch_size=8192"]),
    ("ring8", ["model.g_width=2048", "model.d_width=2048", "data.batch_size=256"]),
    ("vanilla", ["data.n_samples=2000", "model.g_width=1024", "model.d_width=1024", "data.batch_size=1024"]),
    ("dcgan", ["data.n_samples=2000", "model.g_width=64", "model.d_width=64", "data.batch_size=512"]),
    ("wgan_gp", ["data.n_samples=2000", "model.g_width=32", "model.d_width=32", "data.batch_size=512"]),
    ("dcgan", ["data.n_samples=20000", "data.batch_size=64"]),
]

CHILD = r"""
import json, sys, tempfile
import torch
from gantui import config, memory
from gantui.engine.trainer import Trainer

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

preset, overrides = sys.argv[1], json.loads(sys.argv[2])
cfg = config.load(preset, overrides + ["log.every=1", "log.sample_every=1000", "log.checkpoint_every=1000"]).replace("run", steps=3)
torch.zeros(1) @ torch.zeros(1)  # warm up torch's own lazy allocations before the baseline
before = status("VmRSS")
t = Trainer(cfg, tempfile.mkdtemp(), device="cpu")
t.setup()
t.run()
peak = status("VmHWM")
print(json.dumps({"measured": peak - before, "estimate": memory.estimate_bytes(cfg, t.data.info.shape)}))
"""


def main() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    print(f"{'preset':<10} {'overrides':<80} {'estimate':>10} {'measured':>10} {'ratio':>6}")
    for preset, overrides in CASES:
        r = subprocess.run([sys.executable, "-c", CHILD, preset, json.dumps(overrides)], capture_output=True,
                           text=True, env=env, cwd=REPO)
        if r.returncode != 0:
            print(preset, overrides, "failed:", r.stderr.strip().splitlines()[-1:])
            continue
        d = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"{preset:<10} {' '.join(overrides):<80} {d['estimate'] / 1e6:>8.0f}MB {d['measured'] / 1e6:>8.0f}MB "
              f"{d['estimate'] / d['measured']:>6.2f}")


if __name__ == "__main__":
    main()
