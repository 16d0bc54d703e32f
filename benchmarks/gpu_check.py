"""The CUDA path, checked in one go when a GPU is lent.

    python benchmarks/gpu_check.py [--steps 200] [--jobs 6] [--skip-speed]

1. every bundled preset on CUDA for a few hundred steps, in fp32 and in bf16: exit 0, finite
   losses (several runs at once: this is a correctness check, not a timing);
2. fp16: 60 steps, a resume to 120, against 120 straight: both exit 0, the GradScaler state
   (scale, growth tracker) is saved, and the resumed run's weights land near the straight run's
   (CUDA kernels are not bitwise deterministic, so they are compared loosely);
3. no per-step device sync: the real Trainer on CUDA with torch's sync debug mode on during
   every step that does not record metrics (dcgan and wgan_gp, fp32 and bf16; ring8 fp32);
   any synchronising call there is counted and named by file and line;
4. distributed: the engine's DDP strategy on a one-rank NCCL group on the GPU (DDP wrapping,
   gradient penalty through DDP, rank 0's writes; one GPU cannot hold two NCCL ranks), `--nproc 2` on a one-GPU machine refused with one line
   (exit 2), and with 2 or more GPUs `--nproc 2` for real;
5. the monitor's GPU figures (engine/gpuinfo.py) read from NVML and from torch.cuda;
6. benchmarks/gpu.py (DCGAN-64 images/s, engine vs plain loops) unless --skip-speed.
Prints one line per check and a summary; exit code 1 when any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
DEVICE = "cuda"  # --device cpu smoke-tests this script where no GPU is


def gantui(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gantui", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def finite_losses(run_dir: Path) -> bool:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return False
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return bool(rows) and all(abs(r.get("d_loss", 0.0)) < float("inf") and r.get("d_loss") == r.get("d_loss")
                              for r in rows)


def report(ok: bool, what: str, detail: str = "") -> bool:
    print(f"{'ok  ' if ok else 'FAIL'} {what}" + (f"  {detail}" if detail else ""), flush=True)
    return ok


# --- 3. the sync probe, run in its own process -------------------------------------------------
def sync_probe(preset: str, precision: str, steps: int, device: str) -> None:
    """Train `preset` on CUDA with the real Trainer and count synchronising CUDA calls made
    during the steps that record nothing (torch.cuda.set_sync_debug_mode), printed as JSON."""
    import warnings

    import torch

    from gantui import config
    from gantui.engine.trainer import Trainer

    cfg = config.load(preset, [f"run.precision='{precision}'", "log.every=25", "log.sample_every=100000",
                               "log.checkpoint_every=100000", "log.eval_every=0"]).replace("run", steps=steps)
    with tempfile.TemporaryDirectory() as tmp:
        t = Trainer(cfg, Path(tmp) / "run", device=device)
        t.setup()
        inner = t.stepper
        seen = {"quiet_steps": 0, "syncs": 0, "where": {}}

        def watched(fn, *args, **kwargs):
            if device != "cuda":
                return fn(*args, **kwargs)
            torch.cuda.set_sync_debug_mode("warn")
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    out = fn(*args, **kwargs)
            finally:
                torch.cuda.set_sync_debug_mode("default")
            for w in caught:
                if "synchroniz" in str(w.message):
                    seen["syncs"] += 1
                    key = f"{Path(w.filename).name}:{w.lineno}"
                    seen["where"][key] = seen["where"].get(key, 0) + 1
            return out

        class Probe:
            def __call__(self, n_critic, record, **kw):
                if record:
                    return inner(n_critic, record, **kw)
                seen["quiet_steps"] += 1
                return watched(inner, n_critic, record, **kw)

            def update_ema(self, step):
                return watched(inner.update_ema, step)

            def __getattr__(self, name):
                return getattr(inner, name)

        t.stepper = Probe()
        state = t.run()
        # the control: a call that does synchronise must be seen, or the probe is blind
        quiet = dict(seen)
        seen["syncs"] = 0
        watched(lambda: torch.ones(1, device=device).sum().item())
        print(json.dumps({"preset": preset, "precision": precision, "state": state, **quiet,
                          "control_syncs": seen["syncs"]}))


# --- 4. DDP through NCCL on one GPU, in its own process -----------------------------------------
def ddp_probe(preset: str, steps: int, device: str) -> None:
    """The engine's DDP strategy on a one-rank NCCL process group (a machine with one GPU cannot
    hold two NCCL ranks): DistributedDataParallel wrapping, D frozen for the G step, gradient
    penalty's double backward through DDP, metrics combined, rank-0 writes, RNG gathered."""
    import torch
    import torch.distributed as dist

    from gantui import config
    from gantui.engine import distributed
    from gantui.engine.trainer import Trainer

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
    dev = torch.device(device, 0) if device == "cuda" else torch.device("cpu")
    if device == "cuda":
        torch.cuda.set_device(dev)
        dist.init_process_group("cpu:gloo,cuda:nccl", rank=0, world_size=1, device_id=dev)
    else:
        dist.init_process_group("gloo", rank=0, world_size=1)
    strategy = distributed.DDP(0, 1, 0, dev)
    cfg = config.load(preset, ["log.every=20", "log.checkpoint_every=50", "log.eval_every=0"]).replace("run", steps=steps)
    with tempfile.TemporaryDirectory() as tmp:
        t = Trainer(cfg, Path(tmp) / "run", strategy=strategy)
        t.setup()
        wrapped = type(t.stepper.D_train).__name__
        state = t.run()
        rows = [json.loads(x) for x in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
        from safetensors import safe_open
        with safe_open(str(Path(tmp) / "run" / "checkpoints" / "latest.safetensors"), "pt") as f:
            meta = f.metadata()
        print(json.dumps({"state": state, "records": len(rows), "last": rows[-1].get("d_loss"), "d_model": wrapped,
                          "world_size": meta.get("world_size")}))
    strategy.close()


def run_ddp_probe(preset: str) -> bool:
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--ddp-probe", preset, "100", DEVICE],
                       cwd=REPO, capture_output=True, text=True, timeout=600, env=ENV)
    try:
        got = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return report(False, f"DDP {preset} one NCCL rank", f"exit {r.returncode}: {r.stderr.strip()[-600:]}")
    ok = r.returncode == 0 and got["state"] == "FINISHED" and got["records"] >= 5 and got["last"] == got["last"]
    return report(ok, f"DDP {preset} one {'NCCL' if DEVICE == 'cuda' else 'gloo'} rank", json.dumps(got))


def run_probe(preset: str, precision: str) -> bool:
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--sync-probe", preset, precision, "150", DEVICE],
                       cwd=REPO, capture_output=True, text=True, timeout=600, env=ENV)
    try:
        got = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return report(False, f"sync probe {preset} {precision}", f"exit {r.returncode}: {r.stderr.strip()[-400:]}")
    ok = (got["state"] == "FINISHED" and got["quiet_steps"] > 100 and got["syncs"] == 0
          and (DEVICE == "cpu" or got["control_syncs"] >= 1))
    return report(ok, f"sync probe {preset:8s} {precision}",
                  f"{got['syncs']} synchronising calls in {got['quiet_steps']} steps that record nothing"
                  + (f" at {got['where']}" if got["where"] else ""))


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--sync-probe":
        sync_probe(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--ddp-probe":
        ddp_probe(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=6, help="preset runs at once in check 1")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--device", default="cuda", help="cpu: a smoke test of this script (the GPU-only checks skipped)")
    ap.add_argument("--presets", nargs="*", help="only these presets in check 1")
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.device
    import torch

    if DEVICE == "cpu":
        print("smoke test on the CPU: GPU-only checks skipped")
    elif not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 1
    n_gpus = torch.cuda.device_count()
    print(f"GPU: {torch.cuda.get_device_name(0) if n_gpus else 'none'} x{n_gpus}, torch {torch.__version__}, "
          f"CUDA {torch.version.cuda}, python {sys.version.split()[0]}", flush=True)
    presets = args.presets or sorted(p.stem for p in (REPO / "presets").glob("*.toml"))
    failed: list[str] = []
    t_all = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)

        # 1. every preset, fp32 and bf16
        def one(job):
            preset, precision = job
            run_dir = tmp / f"{preset}-{precision}"
            t0 = time.time()
            r = gantui("run", preset, "--headless", "--device", DEVICE, "--steps", str(args.steps),
                       "--run-dir", str(run_dir), "--set", f"run.precision='{precision}'",
                       "--set", "log.sample_every=100", "--set", "log.checkpoint_every=100")
            ok = r.returncode == 0 and finite_losses(run_dir)
            detail = f"{time.time() - t0:5.1f} s" + ("" if ok else f"  exit {r.returncode}: {r.stderr.strip()[-400:]}")
            return job, ok, detail

        jobs = [(p, prec) for p in presets for prec in ("fp32", "bf16")]
        with ThreadPoolExecutor(args.jobs) as pool:
            for (preset, precision), ok, detail in pool.map(one, jobs):
                if not report(ok, f"{preset:10s} {precision}", detail):
                    failed.append(f"{preset} {precision}")
        # the checkpoints of a CUDA run sample and evaluate (on the CPU: a user's laptop)
        ck = tmp / "dcgan-bf16" / "checkpoints" / "latest.safetensors"
        if ck.exists():
            s = gantui("sample", str(ck), "--out", str(tmp / "grid.png"))
            e = gantui("eval", str(ck), "--n-samples", "500", "--device", "cpu", "--json")
            if not report(s.returncode == 0 and e.returncode == 0, "a CUDA bf16 checkpoint samples and evaluates on the CPU",
                          f"sample exit {s.returncode}, eval exit {e.returncode} {(s.stderr + e.stderr).strip()[-300:]}"):
                failed.append("cuda checkpoint on cpu")

        # 2. fp16 with its scaler, and its resume
        fp16 = ["--device", DEVICE, "--set", "run.precision='fp16'", "--set", "log.checkpoint_every=60"]
        straight, split = tmp / "fp16-straight", tmp / "fp16-split"
        with ThreadPoolExecutor(2) as pool:
            fa = pool.submit(gantui, "run", "dcgan", "--headless", "--steps", "120", "--run-dir", str(straight), *fp16)
            fb = pool.submit(gantui, "run", "dcgan", "--headless", "--steps", "60", "--run-dir", str(split), *fp16)
            a, b = fa.result(), fb.result()
        from safetensors.torch import load_file

        saved = load_file(split / "checkpoints" / "latest.safetensors") if b.returncode == 0 else {}
        c = gantui("run", "dcgan", "--headless", "--steps", "120", "--resume", str(split), *fp16)
        ok = a.returncode == b.returncode == c.returncode == 0 and "scaler_d.scale" in saved
        if ok:
            x = load_file(straight / "checkpoints" / "latest.safetensors")
            y = load_file(split / "checkpoints" / "latest.safetensors")
            gen = [k for k in x if k.startswith("generator.") and x[k].is_floating_point()]
            rel = max(float((x[k].float() - y[k].float()).norm() / (x[k].float().norm() + 1e-12)) for k in gen)
            report(True, "fp16 resume", f"scaler saved (scale {float(saved['scaler_d.scale'])}, tracker "
                   f"{int(saved['scaler_d.growth_tracker'])}); resumed G vs straight G: largest relative "
                   f"difference {rel:.2e} over {len(gen)} tensors")
        else:
            report(False, "fp16 resume", f"exits {a.returncode}, {b.returncode}, {c.returncode}: "
                   f"{(a.stderr + b.stderr + c.stderr).strip()[-400:]}")
            failed.append("fp16 resume")

        # 3. no per-step sync
        probes = [("dcgan", "fp32"), ("dcgan", "bf16"), ("wgan_gp", "fp32"), ("wgan_gp", "bf16"), ("ring8", "fp32")]
        with ThreadPoolExecutor(len(probes)) as pool:
            for (preset, precision), ok in zip(probes, pool.map(lambda j: run_probe(*j), probes)):
                if not ok:
                    failed.append(f"sync {preset} {precision}")

        # 4. distributed
        with ThreadPoolExecutor(2) as pool:
            for preset, ok in zip(("dcgan", "wgan_gp"), pool.map(run_ddp_probe, ("dcgan", "wgan_gp"))):
                if not ok:
                    failed.append(f"ddp {preset}")
        if DEVICE == "cpu":
            pass
        elif n_gpus >= 2:
            run_dir = tmp / "ddp"
            r = gantui("run", "ring8", "--nproc", "2", "--headless", "--device", DEVICE, "--steps", "200",
                       "--run-dir", str(run_dir))
            if not report(r.returncode == 0 and finite_losses(run_dir), "ring8 --nproc 2 (NCCL)", r.stderr.strip()[-500:]):
                failed.append("nproc 2")
        else:
            r = gantui("run", "ring8", "--nproc", "2", "--headless", "--device", DEVICE, "--steps", "20",
                       "--run-dir", str(tmp / "refused"))
            lines = r.stderr.strip().splitlines()
            if not report(r.returncode == 2 and len(lines) == 1, "--nproc 2 on one GPU refused with one line",
                          f"exit {r.returncode}: {r.stderr.strip()[-300:]}"):
                failed.append("nproc refused")

        # 5. the monitor's GPU figures
        if DEVICE == "cpu":
            print(f"checks took {time.time() - t_all:.0f} s")
            return 1 if failed else 0
        code = ("import json, torch; from gantui.engine import gpuinfo as g; a = g.describe(g.gpu_status()); "
                "g._nvml = False; torch.zeros(1, device='cuda'); b = g.describe(g.gpu_status()); print(json.dumps([a, b]))")
        r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, env=ENV)
        try:
            nvml_line, torch_line = json.loads(r.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            nvml_line = torch_line = ""
        if not report(nvml_line.startswith("GPU0") and torch_line.startswith("GPU0"), "monitor GPU figures",
                      f"NVML: {nvml_line!r}; torch.cuda: {torch_line!r} {r.stderr.strip()[-300:]}"):
            failed.append("gpuinfo")
    print(f"checks took {time.time() - t_all:.0f} s", flush=True)

    if not args.skip_speed:
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu.py")], cwd=REPO, env=ENV)
    print("all checks passed" if not failed else f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
