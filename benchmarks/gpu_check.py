"""The CUDA path, checked in one go when a GPU is lent. NOT YET RUN ON A GPU.

    python benchmarks/gpu_check.py [--steps 200] [--skip-speed]

1. every bundled preset on CUDA for a few hundred steps, in fp32 and in bf16: exit 0, finite losses;
2. fp16: 60 steps, a resume to 120, against 120 straight: both exit 0 and the resumed run's
   GradScaler state (scale, growth tracker) at step 60 is the saved one (CUDA kernels are not
   bitwise deterministic, so weights are compared loosely);
3. with 2 or more GPUs: `gantui run ring8 --nproc 2` (NCCL) for 200 steps, exit 0;
4. benchmarks/gpu.py (DCGAN-64 images/s, engine vs plain loops) unless --skip-speed.
Prints one line per check and a summary; exit code 1 when any check failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def gantui(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gantui", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def finite_losses(run_dir: Path) -> bool:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return bool(rows) and all(abs(r.get("d_loss", 0.0)) < float("inf") and r.get("d_loss") == r.get("d_loss")
                              for r in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 1
    print(f"GPU: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}, torch {torch.__version__}")
    presets = sorted(p.stem for p in (REPO / "presets").glob("*.toml"))
    failed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for preset in presets:
            for precision in ("fp32", "bf16"):
                run_dir = tmp / f"{preset}-{precision}"
                t0 = time.time()
                r = gantui("run", preset, "--headless", "--device", "cuda", "--steps", str(args.steps),
                           "--run-dir", str(run_dir), "--set", f"run.precision='{precision}'",
                           "--set", "log.sample_every=100", "--set", "log.checkpoint_every=100")
                ok = r.returncode == 0 and finite_losses(run_dir)
                print(f"{'ok  ' if ok else 'FAIL'} {preset:10s} {precision}  {time.time() - t0:6.1f} s"
                      + ("" if ok else f"  exit {r.returncode}: {r.stderr.strip()[-300:]}"), flush=True)
                if not ok:
                    failed.append(f"{preset} {precision}")

        fp16 = ["--device", "cuda", "--set", "run.precision='fp16'", "--set", "log.checkpoint_every=60"]
        straight, split = tmp / "fp16-straight", tmp / "fp16-split"
        a = gantui("run", "dcgan", "--headless", "--steps", "120", "--run-dir", str(straight), *fp16)
        b = gantui("run", "dcgan", "--headless", "--steps", "60", "--run-dir", str(split), *fp16)
        from safetensors.torch import load_file

        saved = load_file(split / "checkpoints" / "latest.safetensors") if b.returncode == 0 else {}
        c = gantui("run", "dcgan", "--headless", "--steps", "120", "--resume", str(split), *fp16)
        ok = a.returncode == b.returncode == c.returncode == 0 and "scaler_d.scale" in saved
        if ok:
            x = load_file(straight / "checkpoints" / "latest.safetensors")
            y = load_file(split / "checkpoints" / "latest.safetensors")
            close = all(torch.allclose(x[k].float(), y[k].float(), rtol=1e-2, atol=1e-3)
                        for k in x if k.startswith("generator."))
            print(f"{'ok  ' if close else 'note'} fp16 resume: scaler saved "
                  f"(scale {float(saved['scaler_d.scale'])}, tracker {int(saved['scaler_d.growth_tracker'])}); "
                  f"weights {'close to' if close else 'differ from'} the straight run's")
        else:
            print(f"FAIL fp16 resume: exits {a.returncode}, {b.returncode}, {c.returncode}: {c.stderr.strip()[-300:]}")
            failed.append("fp16 resume")

        if torch.cuda.device_count() >= 2:
            run_dir = tmp / "ddp"
            r = gantui("run", "ring8", "--nproc", "2", "--headless", "--device", "cuda", "--steps", "200",
                       "--run-dir", str(run_dir))
            ok = r.returncode == 0 and finite_losses(run_dir)
            print(f"{'ok  ' if ok else 'FAIL'} ring8 --nproc 2 (NCCL)" + ("" if ok else f": {r.stderr.strip()[-500:]}"))
            if not ok:
                failed.append("nproc 2")
        else:
            print("skip --nproc 2: one GPU")

    if not args.skip_speed:
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu.py")], cwd=REPO)
    print("all checks passed" if not failed else f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
