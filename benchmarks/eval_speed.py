"""How long `gantui eval` takes on digits, on the CPU (by hand; figures for the README).

    python benchmarks/eval_speed.py [--n 10000] [--checkpoint CKPT_OR_RUN] [--device cpu] [--threads N]

1. Without --checkpoint, trains a throwaway DCGAN on digits for a few steps (speed does not depend on
   how good the generator is; only its architecture and the data set matter).
2. Trains the feature classifier in a fresh, temporary GANTUI_CACHE with the default recipe and reports
   its held-out accuracy and training time: what a first `gantui eval` on digits pays, once.
3. Runs the whole evaluation of N generated vs N real images with that cached classifier, stage by stage
   (imports excluded), then once more through the real CLI in a subprocess (imports included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class Stopwatch:
    def __init__(self):
        self.stages: dict[str, float] = {}

    def __call__(self, name: str):
        watch = self

        class _Stage:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                watch.stages[name] = time.perf_counter() - self.t0

        return _Stage()


def throwaway_checkpoint(root: Path) -> Path:
    from gantui import config
    from gantui.engine.trainer import Trainer

    cfg = config.load("dcgan", ["data.n_samples=1000", "log.every=5"]).replace("run", steps=10)
    t = Trainer(cfg, root / "run", device="cpu")
    t.setup()
    t.run()
    return root / "run"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="generated (and real) images")
    ap.add_argument("--checkpoint", help="a digits checkpoint or run dir (default: a throwaway one)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="gantui-eval-bench-"))
    os.environ["GANTUI_CACHE"] = str(tmp / "cache")  # fresh: the classifier is trained here, once

    from gantui import checkpoint
    from gantui.evaluation import measure
    from gantui import devices
    from gantui.evaluation import image_metrics as im

    target = Path(args.checkpoint) if args.checkpoint else throwaway_checkpoint(tmp)
    dev = devices.pick_device(args.device)
    loaded = checkpoint.load_generator(target, dev)
    if loaded.info.is_toy:
        sys.exit(f"{target}: a toy-data checkpoint; this benchmark times image evaluation")

    clf = measure.feature_space(loaded.config, loaded.info, dev, log=lambda m: print(m, file=sys.stderr)).classifier

    watch = Stopwatch()
    cpu0 = time.process_time()
    with watch("load checkpoint"):
        loaded = checkpoint.load_generator(target, dev)
    with watch("feature network (cached)"):
        space = measure.feature_space(loaded.config, loaded.info, dev, log=lambda m: None)
    with watch(f"generate {args.n}"), torch.inference_mode():
        fake, _ = loaded.sample(args.n, 0, dev)
    with watch(f"real images {args.n}"):
        real = measure.real_images(loaded.config, args.n, measure.REAL_SEED_BASE, dev)
    with watch("features (both sets)"):
        real_f, _ = space.embed(real)
        fake_f, probs = space.embed(fake)
    with watch("FID"):
        fid = im.frechet_distance(real_f, fake_f)
    with watch(f"KID ({im.KID_SUBSETS} subsets of {im.kid_subset_size(args.n, args.n)})"):
        im.kernel_inception_distance(real_f, fake_f)
    with watch("precision/recall/density/coverage"):
        im.manifold_metrics(real_f, fake_f)
    with watch("class coverage"):
        im.class_report(probs)
    in_process = sum(watch.stages.values())
    cpu_s = time.process_time() - cpu0  # all threads; a busy machine inflates wall time far more than this

    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "gantui", "eval", str(target), "--json", "--n-samples", str(args.n),
                        "--device", args.device], capture_output=True, text=True, env=os.environ.copy())
    cli_time = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"gantui eval failed: {r.stderr.strip()}")
    cli = json.loads(r.stdout)

    figures = {
        "n": args.n, "device": str(dev), "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "classifier_accuracy": clf.accuracy, "classifier_train_s": round(clf.train_seconds, 1),
        "stages_s": {k: round(v, 2) for k, v in watch.stages.items()},
        "eval_in_process_s": round(in_process, 1), "eval_in_process_cpu_s": round(cpu_s, 1),
        "eval_cli_s": round(cli_time, 1), "load_average": os.getloadavg()[0],
        "fid_matches_cli": abs(cli["fid"] - fid) < 1e-6 * max(1.0, fid),
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"feature classifier (first eval only): {clf.accuracy:.2%} held-out accuracy; drawing its data and "
          f"training took {clf.train_seconds:.1f} s")
    print(f"evaluating {args.n} digits on {dev} ({torch.get_num_threads()} threads), feature network cached:")
    for k, v in watch.stages.items():
        print(f"  {k:<38} {v:6.2f} s")
    print(f"  {'total, in process':<38} {in_process:6.2f} s  ({cpu_s:.1f} s of CPU time)")
    print(f"  {'`gantui eval --json` (with imports)':<38} {cli_time:6.2f} s")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
