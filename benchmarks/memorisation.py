"""A discriminator that memorises a small real image folder, caught by `d_overfitting`, treated by
augmentation (issue 19; the README's "Memorisation" numbers). By hand, on the CPU, a few minutes a run:

    OMP_NUM_THREADS=1 nice python benchmarks/memorisation.py [--images 400] [--steps 3000] [--seeds 0]
                                                               [--augment none ada] [--json]

1. Writes the first `--images` training images of the real Fashion-MNIST (Debian's
   dataset-fashion-mnist, /usr/share/datasets/fashion-mnist) as PNG files into a folder: a user's
   own small image folder.
2. Trains PRESET below on it (a strong MLP D, 2x512, against a 2x256 G; 5 % held out, which is
   raised to the 64-image minimum), once per seed and per `data.augment`, live quality (FID in the
   folder's own autoencoder feature space, against the training images) every 100 steps.
3. Reads each run's own files: the FID series (best, the step of the best, last), the step at which
   FID first stood 50 % above its best after it (the "quality has collapsed" line), the step at
   which `d_overfitting` was raised (events.jsonl), and D's signals there and at the end.
4. Independently of the rule, scores the last checkpoint's D on every training image, every held-out
   image and 1,000 generated ones: mean probability "real" of each (held-out reals scored like
   fakes while training reals stay confident is memorisation).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")

PRESET = """
[run]
name = "memorise"
description = "a strong MLP D on a few hundred Fashion-MNIST images"
seed = {seed}
steps = {steps}

[data]
name = "folder"
root = "{root}"
batch_size = 32
image_size = 28
holdout = 0.05
augment = "{augment}"

[model]
arch = "mlp"
latent_dim = 64
g_width = 256
d_width = 512
g_depth = 2
d_depth = 2

[loss]
kind = "ns"

[optim]
name = "adam"
g_lr = 2e-4
d_lr = 2e-4
betas = [0.5, 0.999]

[log]
every = 20
eval_every = 100
sample_every = 1000
checkpoint_every = 100000
"""


def write_folder(n: int, out: Path) -> Path:
    import numpy as np
    from PIL import Image

    from gantui.data.vision import read_idx

    if not FASHION.exists():
        sys.exit(f"{FASHION} is missing: apt-get install dataset-fashion-mnist")
    x = read_idx(FASHION)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.ascontiguousarray(x[i])).save(out / f"{i:05d}.png")
    return out


def train(root: Path, run_dir: Path, seed: int, steps: int, augment: str, overrides: list[str]) -> float:
    from gantui import config
    from gantui.engine.events import FINISHED
    from gantui.engine.trainer import Trainer

    preset = run_dir.parent / f"{run_dir.name}.toml"
    preset.write_text(PRESET.format(seed=seed, steps=steps, root=root, augment=augment))
    cfg = config.load(str(preset), overrides)
    t0 = time.perf_counter()
    t = Trainer(cfg, run_dir, device="cpu")
    t.setup()
    if t.run() != FINISHED:
        sys.exit(f"{run_dir}: training ended {t.state}: {t.error}")
    return time.perf_counter() - t0


def read_run(run_dir: Path) -> dict:
    recs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    fid = [(r["step"], r["fid"]) for r in recs if "fid" in r]
    best_step, best = min(fid, key=lambda sv: sv[1])
    collapsed = next((s for s, v in fid if s > best_step and v >= 1.5 * best), None)
    raised = [e for e in events if e["kind"] == "alert" and e.get("rule") == "d_overfitting"
              and e.get("state") == "raised"]
    raise_step = raised[0]["step"] if raised else None
    at = {r["step"]: r for r in recs}

    def signals(step):
        r = at.get(step, {})
        return {k: round(r[k], 3) for k in ("d_rt", "d_holdout_rt", "d_holdout_gap", "augment_p") if k in r}

    fid_at_raise = None
    if raise_step is not None:
        fid_at_raise = min(fid, key=lambda sv: abs(sv[0] - raise_step))[1]
    return {"fid_best": round(best, 2), "fid_best_step": best_step, "fid_last": round(fid[-1][1], 2),
            "fid_last_step": fid[-1][0], "fid_up_50pct_step": collapsed, "raised_step": raise_step,
            "fid_at_raise": None if fid_at_raise is None else round(fid_at_raise, 2),
            "signals_at_raise": signals(raise_step), "signals_last": signals(recs[-1]["step"])}


def score_d(run_dir: Path) -> dict:
    """The last checkpoint's D on every training image, every held-out one and 1,000 samples:
    the mean of sigmoid(D) on each (independent of the probe the rule reads)."""
    import torch

    from gantui import checkpoint, config
    from gantui.engine import parts as parts_mod
    from gantui.engine import state as state_mod
    from gantui.engine.state import Runtime

    path = run_dir / "checkpoints" / "latest.safetensors"
    _, meta = checkpoint.read(path)
    cfg = checkpoint.config_of(meta, path)
    p = parts_mod.build(cfg, "cpu")
    state_mod.restore(path, cfg, p, Runtime())
    p.D.eval()
    p.G.eval()
    with torch.no_grad():
        g = torch.Generator().manual_seed(123)
        fake = p.G(torch.randn(1000, p.G.latent_dim, generator=g))
        out = {name: float(torch.sigmoid(p.D(x)).mean()) for name, x in
               (("train", p.data.x[:]), ("held_out", p.data.holdout_x[:]), ("generated", fake))}
    return {f"p_real_{k}": round(v, 3) for k, v in out.items()} | {"n_train": len(p.data.x),
                                                                 "n_held_out": len(p.data.holdout_x)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--augment", nargs="+", default=["none", "ada"])
    ap.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE overrides for every run")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    base = args.out or Path(tempfile.mkdtemp(prefix="gantui-memorise-"))
    root = write_folder(args.images, base / f"fashion{args.images}")
    rows = []
    for seed in args.seeds:
        for augment in args.augment:
            run_dir = base / f"seed{seed}-{augment}"
            secs = train(root, run_dir, seed, args.steps, augment, args.set)
            row = {"seed": seed, "augment": augment, "steps": args.steps, "minutes": round(secs / 60, 1)}
            row.update(read_run(run_dir))
            row.update(score_d(run_dir))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print("| seed | augment | FID best (step) | FID last | FID +50 % at | d_overfitting raised at (FID then) "
          "| p(real): train / held-out / generated, end |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['augment']} | {r['fid_best']} ({r['fid_best_step']}) | {r['fid_last']} | "
              f"{r['fid_up_50pct_step'] or '-'} | {r['raised_step'] or '-'} ({r['fid_at_raise'] or '-'}) | "
              f"{r['p_real_train']} / {r['p_real_held_out']} / {r['p_real_generated']} |")


if __name__ == "__main__":
    main()
