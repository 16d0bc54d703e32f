"""`gantui runs` on many long runs: how long listing them takes.

    python benchmarks/runs_listing.py --runs 300 --records 20000

Writes N synthetic run directories (config.toml, a metrics.jsonl of M records with a live-quality
record every 50, an events.jsonl with checkpoints and alerts) in a temporary folder, then times
`runinfo.summarize_all` in process and `gantui runs --json` as a fresh process (imports included).
The files are shaped like the engine's, so the reads are the real ones: a tail of metrics.jsonl
(64 KiB, 1 MiB when no quality record is in it), events.jsonl whole, one lock probe per run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gantui import runinfo


def make_runs(root: Path, n: int, records: int) -> int:
    total = 0
    for i in range(n):
        run = root / f"ring8-{i:04d}"
        run.mkdir()
        (run / "config.toml").write_text(f'[run]\nname = "ring8"\nsteps = {records * 10}\n')
        lines = []
        for k in range(1, records + 1):
            r = {"step": k * 10, "time": 1.7e9 + k, "d_loss": -1.0 + 1e-4 * k, "g_loss": 0.5, "gp": 0.1,
                 "d_real": 0.7, "d_fake": 0.2, "grad_norm_d": 1.3, "grad_norm_g": 0.7, "sample_std": 0.4,
                 "sample_pdist": 0.9, "lr_g": 1e-3, "lr_d": 1e-3, "steps_per_s": 40.0, "wasserstein": 0.5}
            if k % 50 == 0:
                r.update(modes_captured=8, modes_total=8, hq_fraction=0.95)
            lines.append(json.dumps(r))
        (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        events = [{"step": 0, "kind": "started", "total_steps": records * 10}]
        for k in range(1000, records * 10 + 1, 1000):
            events.append({"step": k, "kind": "checkpoint", "path": f"step_{k:08d}.safetensors", "reason": "scheduled"})
        events.append({"step": 5000, "kind": "alert", "rule": "oscillation", "state": "raised", "severity": "warning",
                       "message": "m", "evidence": {}, "fix": "f", "action": None})
        events.append({"step": records * 10, "kind": "finished", "total_steps": records * 10})
        (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
        total += (run / "metrics.jsonl").stat().st_size
    return total


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--records", type=int, default=20000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        size = make_runs(root, args.runs, args.records)
        print(f"{args.runs} runs, {args.records} metric records each, {size / 2**20:.0f} MiB of metrics.jsonl")
        t = time.perf_counter()
        rows = runinfo.summarize_all(root)
        dt = time.perf_counter() - t
        assert len(rows) == args.runs and all(r.state == "finished" and r.quality for r in rows)
        print(f"summarize_all in process: {dt:.3f} s ({dt / args.runs * 1000:.2f} ms per run)")
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "gantui", "runs", str(root), "--json"], capture_output=True, text=True)
        dt = time.perf_counter() - t
        assert out.returncode == 0 and len(json.loads(out.stdout)) == args.runs
        print(f"`gantui runs --json` (new process, imports included): {dt:.3f} s")
