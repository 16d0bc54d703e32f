"""Provoke a divergence and a collapse with [recover] on, on several seeds, and report what the
recovery did: rollbacks, fixes applied, exit code, live quality before the provocation and at the end.

Provocations are live commands (the same path as the monitor's keys and `gantui` remote control):
at step K a listener sends `set_lr` -- an absurd 1e30 to both rates (divergence, NaN within a few
steps) or 0.05 to G's (mode collapse on mixture1d within ~100 steps). `once` sends it once;
`keep` sends it again after every rollback (the provocation stays on: the run must stop after
recover.max_attempts with the failure's exit code: 3 for divergence, 4 for an alert).

    python benchmarks/recover.py                     # both provocations x once/keep x seeds 0 1 2
    python benchmarks/recover.py --seeds 0 --cases collapse-once
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BASE = ["log.every=5", "log.sample_every=50", "log.checkpoint_every=50", "log.eval_every=50",
        "diagnostics.warmup_steps=100", "model.g_width=32", "model.d_width=32", "recover.enabled=true",
        "recover.grace_steps=25", "recover.max_attempts=3"]
CASES = {
    # name: (rule in recover.on, which rates, value, expected exit with the provocation kept on)
    "divergence": ("divergence", "both", 1e30, 3),
    "collapse": ("mode_collapse", "g", 5e-2, 4),
}


def run(case: str, keep: bool, seed: int, steps: int, k: int, out: Path, preset: str = "mixture1d") -> dict:
    from gantui import config, runinfo
    from gantui.engine import events as ev
    from gantui.engine.control import SetLr
    from gantui.engine.trainer import Trainer

    rule, which, value, _ = CASES[case]
    cfg = config.load(preset, BASE + [f"run.seed={seed}", f'recover.on=["{rule}"]']).replace("run", steps=steps)
    run_dir = out / f"{preset}-{case}-{'keep' if keep else 'once'}-{seed}"
    trainer = Trainer(cfg, run_dir, device="cpu")
    fired = []

    def provoke(msg):
        if isinstance(msg, ev.Snapshot) and msg.step >= k and not fired:
            fired.append(msg.step)
            for w in (("g", "d") if which == "both" else (which,)):
                trainer.control.send(SetLr(which=w, value=value, reason="provocation"))
        elif isinstance(msg, ev.Event) and msg.kind == "rolled_back" and keep:
            fired.clear()

    trainer.add_listener(provoke)
    t0 = time.time()
    trainer.setup()
    trainer.run()
    metrics = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    key = "w1" if preset == "mixture1d" else "hq_fraction"   # w1: lower is better; hq_fraction: higher
    quality = [m for m in metrics if key in m]
    before = [m[key] for m in quality if m["step"] < k]
    steps_ok = all(a["step"] < b["step"] for a, b in zip(metrics, metrics[1:]))
    return {"preset": preset, "case": case, "keep": keep, "seed": seed, "exit": trainer.exit_code, "seconds": round(time.time() - t0, 1),
            "rollbacks": [(b["from_step"], b["to_step"], b["fix"]) for b in runinfo.rollbacks(run_dir)],
            f"best_{key}_before": (min if key == "w1" else max)(before) if before else None,
            f"final_{key}": quality[-1][key] if quality else None,
            "final_step": metrics[-1]["step"], "steps_increasing": steps_ok,
            "branch_files": sorted(p.name for p in run_dir.glob("*.abandoned-*.jsonl"))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--cases", nargs="+", default=[f"{c}-{m}" for c in CASES for m in ("once", "keep")])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--k", type=int, default=150)
    ap.add_argument("--preset", default="mixture1d", help="mixture1d (both cases) or ring8 (divergence)")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = Path(tempfile.mkdtemp(prefix="gantui-recover-"))
    for case in a.cases:
        name, mode = case.rsplit("-", 1)
        for seed in a.seeds:
            print(json.dumps(run(name, mode == "keep", seed, a.steps, a.k, out, a.preset)), flush=True)


if __name__ == "__main__":
    main()
