"""Kill -9 at random moments, then resume: does every run continue, with nothing lost?

    python benchmarks/kill9.py [--kills 30] [--seed 0]

Starts `gantui run ring8 --headless` (tiny model, checkpoints every 20 steps), kills it with
SIGKILL after a random delay (from before torch has imported to well into training), resumes
with `--resume RUN_DIR`, and repeats. After every kill it checks that a whole checkpoint
exists once one was written; at the end it resumes to a final step and checks that every
resume continued, that no temporary file is left, and that the metric steps strictly increase.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gantui.engine import checkpoint_files, jsonl  # noqa: E402

TINY = ["--set", "model.g_width=32", "--set", "model.d_width=32", "--set", "data.batch_size=64",
        "--set", "log.every=5", "--set", "log.sample_every=50", "--set", "log.checkpoint_every=20"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run_dir = Path(tempfile.mkdtemp(prefix="kill9-")) / "run"
    resumed_ok = attempted = 0
    for i in range(args.kills):
        resume = ["--resume", str(run_dir)] if (run_dir / "checkpoints").exists() and \
            checkpoint_files.newest_step(run_dir) is not None else []
        if not resume and run_dir.exists():
            import shutil
            shutil.rmtree(run_dir)  # killed before its first checkpoint: nothing to resume yet
        before = checkpoint_files.newest_step(run_dir) if resume else None
        proc = subprocess.Popen([sys.executable, "-m", "gantui", "run", "ring8", "--headless", "--steps", "1000000",
                                 "--run-dir", str(run_dir), *resume, *TINY], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        delay = rng.uniform(0.5, 9.0)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        newest = checkpoint_files.newest_step(run_dir)
        if resume:
            attempted += 1
            resumed_ok += newest is not None and newest >= before
        steps = [r["step"] for r in jsonl.read(run_dir / "metrics.jsonl").records]
        print(f"kill {i + 1:2d} after {delay:4.1f} s: newest checkpoint {newest}, last metric step "
              f"{steps[-1] if steps else None}{' (resumed)' if resume else ''}", flush=True)
    final = (checkpoint_files.newest_step(run_dir) or 0) + 20
    r = subprocess.run([sys.executable, "-m", "gantui", "run", "ring8", "--headless", "--steps", str(final),
                        "--resume", str(run_dir), *TINY], cwd=REPO, env=env, capture_output=True, text=True)
    steps = [rec["step"] for rec in jsonl.read(run_dir / "metrics.jsonl").records]
    orphans = list(run_dir.rglob(".*.tmp"))
    result = {
        "kills": args.kills, "resumes": attempted, "resumes_that_kept_a_whole_checkpoint": resumed_ok,
        "final_exit": r.returncode, "final_step": steps[-1] if steps else None,
        "steps_strictly_increasing": all(a < b for a, b in zip(steps, steps[1:])),
        "orphan_temp_files": len(orphans),
        "truncations": sum(1 for e in jsonl.read(run_dir / "events.jsonl").records if e["kind"] == "truncated"),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
