"""How much does the engine cost? Steps/s of gantui's Trainer against a bare loop.

The bare loop trains the same models, on the same data tensor, with the same losses, batch and
n_critic, and does nothing else: no metrics, no samples, no checkpoints, no commands. The engine
runs as shipped (log every 10 steps, samples every 250, checkpoints every 1000), listeners and all.

    python benchmarks/overhead.py                       # ring8 and wgan_gp, CPU
    python benchmarks/overhead.py --preset dcgan --steps 300 --device cuda
    python benchmarks/overhead.py --gpu-images          # DCGAN-64 images/s vs a plain fp32 loop (CUDA)

Run by hand on an otherwise idle machine; numbers go in the README.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time

import torch

from gantui import config, losses, models
from gantui.data import load_dataset
from gantui.engine.trainer import Trainer, pick_device


def bare_loop(cfg, device, steps: int) -> float:
    torch.manual_seed(cfg.run.seed)
    data = load_dataset(cfg.data, device, cfg.run.seed)
    G, D = models.build(cfg, data.info)
    G.to(device), D.to(device)
    opt = cfg.optim
    make = (lambda p, lr: torch.optim.Adam(p, lr=lr, betas=tuple(opt.betas))) if opt.name == "adam" \
        else (lambda p, lr: torch.optim.RMSprop(p, lr=lr))
    opt_g, opt_d = make(G.parameters(), opt.g_lr), make(D.parameters(), opt.d_lr)
    kind, bsz, latent = cfg.loss.kind, cfg.data.batch_size, G.latent_dim
    cond = cfg.model.arch == "conditional"

    def step():
        for _ in range(cfg.loss.n_critic):
            real, y = data.sample(bsz)
            y = y if cond else None
            with torch.no_grad():
                fake = G(torch.randn(bsz, latent, device=device), y)
            loss = losses.d_loss(kind, D(real, y), D(fake, y), cfg.loss.label_smoothing)
            if kind == "wgan_gp":
                loss = loss + cfg.loss.gp_lambda * losses.gradient_penalty(D, real, fake, y)
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
            if kind == "wgan":
                with torch.no_grad():
                    for p in D.parameters():
                        p.clamp_(-cfg.loss.clip, cfg.loss.clip)
        y = torch.randint(0, data.info.n_classes, (bsz,), device=device) if cond else None
        D.requires_grad_(False)
        g = losses.g_loss(kind, D(G(torch.randn(bsz, latent, device=device), y), y))
        opt_g.zero_grad(set_to_none=True)
        g.backward()
        D.requires_grad_(True)
        opt_g.step()

    for _ in range(min(20, steps)):  # warm-up
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps / (time.perf_counter() - t0)


def engine(cfg, device, steps: int) -> float:
    warm = 20
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg.replace("run", steps=warm + steps), tmp, device=str(device.type))
        trainer.setup()
        marks = {}

        def listener(msg):  # the time at which the warm-up ended, seen from inside the run
            if getattr(msg, "step", None) == warm and "t0" not in marks:
                sync(device)
                marks["t0"] = time.perf_counter()

        trainer.add_listener(listener)
        trainer.run()
        sync(device)
        return steps / (time.perf_counter() - marks["t0"])


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def compare(preset: str, steps: int, device_name: str, repeats: int) -> None:
    cfg = config.load(preset, ["log.every=10"])
    device = pick_device(device_name)
    bare, eng = [], []
    for _ in range(repeats):  # interleave, so drift in machine load hits both alike
        bare.append(bare_loop(cfg, device, steps))
        eng.append(engine(cfg, device, steps))
    b, e = max(bare), max(eng)
    print(f"{preset:10s} {device.type:4s} bare {b:8.1f} steps/s   engine {e:8.1f} steps/s   ratio {e / b:.3f}"
          f"   (best of {repeats} x {steps} steps)")


def gpu_images(steps: int) -> None:
    """DCGAN at 64x64 on CUDA: images/s of the engine against a plain fp32 loop of the same model."""
    cfg = config.load("dcgan", ["data.image_size=64", "data.batch_size=128", "model.g_width=64",
                                "model.d_width=64", "data.n_samples=20000"])
    device = pick_device("cuda")
    bsz = cfg.data.batch_size
    b = bare_loop(cfg, device, steps) * bsz
    e = engine(cfg, device, steps) * bsz
    print(f"dcgan-64 cuda fp32: bare {b:,.0f} images/s, engine {e:,.0f} images/s, ratio {e / b:.3f}")
    for precision in ("bf16",):
        with contextlib.suppress(Exception):
            e2 = engine(cfg.replace("run", precision=precision), device, steps) * bsz
            print(f"dcgan-64 cuda {precision} (engine, autocast): {e2:,.0f} images/s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", action="append", help="preset(s) to time (default: ring8 and wgan_gp)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--gpu-images", action="store_true")
    args = ap.parse_args()
    if args.gpu_images:
        gpu_images(args.steps)
    else:
        for preset in args.preset or ["ring8", "wgan_gp"]:
            compare(preset, args.steps, args.device, args.repeats)
