"""Sample quality along one CPU run of the `fashion` preset on the real Fashion-MNIST (by hand; the README's table).

    python benchmarks/fashion_quality.py [--steps 3000] [--every 500] [--n 2000] [--threads 1] [--json]

1. Trains the `fashion` preset headless on the CPU (the real files: data.root, else Debian's
   dataset-fashion-mnist in /usr/share/datasets/fashion-mnist/), keeping a checkpoint every `--every` steps.
2. Evaluates every checkpoint exactly as `gantui eval --n-samples N` does (EMA G, seeded), in the feature
   space gantui picks for Fashion-MNIST (the cached classifier, named in the output), and once real vs
   real (two disjoint draws of N training images) as the floor the numbers fall towards.
3. Prints one Markdown table (or one JSON object with --json).

The feature classifier is trained once into a fresh temporary GANTUI_CACHE unless --cache names one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

KEYS = ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "classes_covered")


def train(run_dir: Path, steps: int, every: int, overrides: list[str]) -> float:
    from gantui import config
    from gantui.engine.events import FINISHED
    from gantui.engine.trainer import Trainer

    cfg = config.load("fashion", [f"log.checkpoint_every={every}", f"log.keep={steps // every + 1}",
                                  *overrides]).replace("run", steps=steps)
    t0 = time.perf_counter()
    t = Trainer(cfg, run_dir, device="cpu")
    t.setup()
    state = t.run()
    if state != FINISHED:
        sys.exit(f"training ended {state}: {t.error}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--every", type=int, default=500, help="checkpoint (and evaluate) every this many steps")
    ap.add_argument("--n", type=int, default=2000, help="generated and real images per evaluation")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--cache", help="GANTUI_CACHE to reuse (default: a fresh temporary one)")
    ap.add_argument("--run-dir", help="keep the run here (default: a temporary folder)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="preset override")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="gantui-fashion-bench-"))
    os.environ["GANTUI_CACHE"] = args.cache or str(tmp / "cache")
    run_dir = Path(args.run_dir) if args.run_dir else tmp / "run"

    from gantui import checkpoint
    from gantui.evaluation import measure

    train_s = train(run_dir, args.steps, args.every, args.set)
    rows = []
    ckpts = sorted((run_dir / "checkpoints").glob("step_*.safetensors"))
    for path in ckpts:
        r = measure.evaluate(path, n_samples=args.n, device="cpu", seed=0, log=lambda m: print(m, file=sys.stderr))
        rows.append({"step": r["step"], **{k: r.get(k) for k in KEYS}})
        print(f"step {r['step']}: FID {r['fid']:.3f}", file=sys.stderr)
    feature_name = r["feature_extractor"]

    loaded = checkpoint.load_generator(ckpts[-1])
    space = measure.feature_space(loaded.config, loaded.info, torch.device("cpu"), log=lambda m: None)
    real = measure.real_images(loaded.config, 2 * args.n, 1, "cpu")  # distinct images: two disjoint halves
    floor = measure.compare_images(real[: args.n], real[args.n:], space)
    rows.append({"step": "real vs real", **{k: floor.get(k) for k in KEYS}})

    result = {"preset": "fashion", "steps": args.steps, "n": args.n, "train_seconds": round(train_s, 1),
              "threads": args.threads, "load_average": os.getloadavg()[0], "feature_extractor": feature_name,
              "rows": rows}
    if args.json:
        print(json.dumps(result))
        return
    print(f"fashion preset, {args.steps} steps on the CPU in {train_s / 60:.1f} min ({args.threads} thread(s), "
          f"load average {os.getloadavg()[0]:.1f}); {args.n} generated vs {args.n} real images per row")
    print(f"features: {feature_name}\n")
    print("| step | FID | KID | precision | recall | density | coverage | classes |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['step']} | {row['fid']:.2f} | {row['kid']:.4f} ± {row['kid_std']:.4f} | "
              f"{row['precision']:.3f} | {row['recall']:.3f} | {row['density']:.3f} | {row['coverage']:.3f} | "
              f"{row['classes_covered']} / 10 |")


if __name__ == "__main__":
    main()
