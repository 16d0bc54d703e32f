"""DCGAN-64 images/s on a GPU: the engine as users run it against plain loops. NOT YET RUN ON A GPU
(no device has been lent to this project's sessions so far); `--device cpu` smoke-tests it.

Contenders, one after the other, each in a fresh process (the same start-up for all), the same
model shapes (gantui's DCGAN at 64x64: width 64, latent 100), batch 128, non-saturating BCE loss,
Adam 2e-4 (0.5, 0.999), real data already on the device:

  plain fp32        a loop in the style of pytorch/examples' dcgan (D on real, then on fake.detach(),
                    two backwards; G through D; nn.Sequential models), torch's default settings
  plain switches    the same loop with the engine's speed switches by hand: TF32 matmuls and
                    convolutions, cudnn.benchmark, channels_last, bf16 autocast
  engine fp32       `gantui run` as shipped (headless): fp32 with its CUDA switches (TF32,
                    channels_last, cudnn.benchmark), metrics every 10 steps, samples, checkpoints
  engine bf16       the same with run.precision = "bf16"

Images/s are taken over the same window (from step --warm to the end) by wall-clock stamps, the
engine's from its metrics.jsonl. Targets (issue 10): engine as shipped >= 2x plain fp32, and
within 5% of plain-with-switches at the same precision. Prints a Markdown table for the README,
with the GPU's name, and a JSON line.

    python benchmarks/gpu.py                     # on a CUDA machine
    python benchmarks/gpu.py --batch 128 512 --compile 128 --repeats 1
    python benchmarks/gpu.py --device cpu --steps 30 --warm 10 --batch 8 --repeats 1   # smoke test
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's gantui, not an installed one
SETS = ["data.name='digits'", "data.image_size=64", "model.arch='dcgan'", "model.g_width=64", "model.d_width=64",
        "model.latent_dim=100", "loss.kind='ns'", "loss.n_critic=1", "optim.g_lr=2e-4", "optim.d_lr=2e-4",
        "optim.betas=[0.5, 0.999]", "data.n_samples=20000"]


def plain(device_name: str, steps: int, warm: int, batch: int, switches: bool) -> None:
    """One plain loop in this process; prints {"images_per_s": ...}."""
    import contextlib

    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(REPO / "benchmarks"))
    from overhead import plain_models

    from gantui import config

    cfg = config.load("dcgan", [*SETS, f"data.batch_size={batch}"])
    device = torch.device(device_name)
    if switches and device.type == "cuda":
        torch.backends.cuda.matmul.fp32_precision = "tf32"
        torch.backends.cudnn.conv.fp32_precision = "tf32"
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    G, D = plain_models(cfg, (1, 64, 64))
    G.to(device), D.to(device)
    if switches and device.type == "cuda":
        G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    data = torch.rand(20000, 1, 64, 64, device=device) * 2 - 1
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    amp = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if switches else contextlib.nullcontext
    ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)
    t_warm = None
    for step in range(steps):
        real = data[torch.randint(0, len(data), (batch,), device=device)]
        D.zero_grad()
        with amp():
            err_real = F.binary_cross_entropy_with_logits(D(real).squeeze(1).float(), ones)
        err_real.backward()
        with amp():
            fake = G(torch.randn(batch, 100, device=device))
            err_fake = F.binary_cross_entropy_with_logits(D(fake.detach()).squeeze(1).float(), zeros)
        err_fake.backward()
        opt_d.step()
        G.zero_grad()
        with amp():
            err_g = F.binary_cross_entropy_with_logits(D(fake).squeeze(1).float(), ones)
        err_g.backward()
        opt_g.step()
        if step + 1 == warm:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t_warm = time.time()
    if device.type == "cuda":
        torch.cuda.synchronize()
    print(json.dumps({"images_per_s": (steps - warm) * batch / (time.time() - t_warm)}))


def run_plain(args, switches: bool) -> float:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--plain", args.device, str(args.steps), str(args.warm),
           str(args.batch), "1" if switches else "0"]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"plain loop failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])["images_per_s"]


def run_engine(args, precision: str, run_dir: Path, compiled: bool = False) -> float:
    sets = [*SETS, f"data.batch_size={args.batch}", f"run.precision='{precision}'"]
    if compiled:
        sets.append("run.compile=true")
    cmd = [sys.executable, "-m", "gantui", "run", "dcgan", "--headless", "--steps", str(args.steps),
           "--run-dir", str(run_dir), "--device", args.device, *sum((["--set", s] for s in sets), [])]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"gantui run failed ({r.returncode}): {r.stderr[-2000:]}")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [m for m in rows if m["step"] >= args.warm]
    if len(rows) < 2:
        raise SystemExit("too few metric records after --warm: use more --steps (records every 10 steps)")
    return (rows[-1]["step"] - rows[0]["step"]) * args.batch / (rows[-1]["time"] - rows[0]["time"])


def gpu_name(device: str) -> str:
    if device != "cuda":
        return "CPU (smoke test)"
    r = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.get_device_name(0))"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "unknown GPU"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--plain":
        device, steps, warm, batch, switches = sys.argv[2:7]
        plain(device, int(steps), int(warm), int(batch), switches == "1")
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--warm", type=int, default=100)
    ap.add_argument("--batch", type=int, nargs="+", default=[128], help="one table per batch size")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--compile", type=int, nargs="*", default=[],
                    help="batch sizes at which to add 'engine bf16 + run.compile' (compiling takes a minute)")
    args = ap.parse_args()
    name = gpu_name(args.device)
    results = []
    for batch in args.batch:
        args_b = argparse.Namespace(**{**vars(args), "batch": batch})
        results.append(measure(args_b, name, compiled=batch in args.compile))
    print(json.dumps({"gpu": name, "steps": args.steps, "warm": args.warm, "tables": results,
                      "load_avg": os.getloadavg()[0]}))


def measure(args, name: str, compiled: bool) -> dict:
    got: dict[str, list[float]] = {"plain fp32": [], "plain switches (bf16)": [], "engine fp32": [], "engine bf16": []}
    if compiled:
        got["engine bf16+compile"] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            got["plain fp32"].append(run_plain(args, False))
            got["plain switches (bf16)"].append(run_plain(args, True))
            got["engine fp32"].append(run_engine(args, "fp32", Path(tmp) / f"e32-{i}"))
            got["engine bf16"].append(run_engine(args, "bf16", Path(tmp) / f"e16-{i}"))
            if compiled:
                got["engine bf16+compile"].append(run_engine(args, "bf16", Path(tmp) / f"ec-{i}", compiled=True))
            print(f"batch {args.batch} #{i}: " + "  ".join(f"{k} {v[-1]:,.0f}" for k, v in got.items()), flush=True)
    best = {k: max(v) for k, v in got.items()}
    base = best["plain fp32"]
    print(f"\nDCGAN-64, batch {args.batch}, {name}, best of {args.repeats} ({time.strftime('%Y-%m-%d')}):\n")
    print("| loop | precision | images/s | vs plain fp32 |")
    print("|---|---|---|---|")
    for k, v in best.items():
        print(f"| {k.split(' ')[0]} | {k.split(' ', 1)[1]} | {v:,.0f} | {v / base:.2f}x |")
    print(f"\nengine bf16 / plain with the same switches: {best['engine bf16'] / best['plain switches (bf16)']:.3f}\n",
          flush=True)
    return {"batch": args.batch, "runs": got, "best": best}

if __name__ == "__main__":
    main()
