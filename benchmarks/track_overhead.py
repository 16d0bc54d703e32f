"""What does `run.step` cost a user's own loop? A plain DCGAN loop against the same loop with gantui.track.

The loop is examples/dcgan_loop.py's (pytorch/examples' DCGAN: 64x64 images, ngf = ndf = 64,
batch 64, nz = 100, BCE, Adam) on fixed random images (the data loader is not what is measured).
Two figures:

  inside    the time spent inside `run.step` (log steps included: the one host copy, the gradient
            norms, the fixed-noise batch and its spread, the record, the verdict) as a share of
            the tracked loop's time: the direct measure, robust to a loaded machine.
  a/b       steps/s of the plain loop against the tracked one, alternating blocks in one process
            so that drift in the machine's load hits both alike.

Samples and checkpoints are off in both (`sample_every`/`checkpoint_every` beyond the run): they
are the script's choice of schedule, and a plain loop that saves pays for its own saving too.

    python benchmarks/track_overhead.py                     # the default DCGAN, CPU, 1 thread
    python benchmarks/track_overhead.py --steps 200 --ngf 32 --batch 32 --threads 2
    python benchmarks/track_overhead.py --device cuda

Prints one line and a JSON line; quote it from an otherwise idle machine (the load is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gantui  # noqa: E402


def models(nz: int, ngf: int, ndf: int, nc: int = 1):
    G = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())
    D = nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(), nn.Flatten(0))
    return G, D


def make_step(G, D, optG, optD, real, nz, device):
    criterion = nn.BCELoss()
    n = real.shape[0]
    ones, zeros = torch.ones(n, device=device), torch.zeros(n, device=device)

    def step():
        D.zero_grad()
        output = D(real)
        errD_real = criterion(output, ones)
        errD_real.backward()
        fake = G(torch.randn(n, nz, 1, 1, device=device))
        output = D(fake.detach())
        errD_fake = criterion(output, zeros)
        errD_fake.backward()
        optD.step()
        G.zero_grad()
        output = D(fake)
        errG = criterion(output, ones)
        errG.backward()
        optG.step()
        return errD_real + errD_fake, errG, output
    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100, help="steps per block")
    ap.add_argument("--blocks", type=int, default=3, help="plain/tracked block pairs, alternating")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--ndf", type=int, default=64)
    ap.add_argument("--nz", type=int, default=100)
    ap.add_argument("--log-every", type=int, default=20, help="gantui.track's default")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    G, D = models(args.nz, args.ngf, args.ndf)
    G, D = G.to(device), D.to(device)
    optG = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    real = torch.rand(args.batch, 1, 64, 64, device=device) * 2 - 1
    step = make_step(G, D, optG, optD, real, args.nz, device)
    for _ in range(3):
        step()  # warm-up: allocator, kernels

    plain_t, tracked_t, inside_t = 0.0, 0.0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        never = 10 ** 9
        with gantui.track(Path(tmp) / "run", G=G, D=D, opt_g=optG, opt_d=optD, loss="ns", real=real,
                          log_every=args.log_every, sample_every=never, checkpoint_every=never) as run:
            for _ in range(args.blocks):
                sync()
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    step()
                sync()
                plain_t += time.perf_counter() - t0
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    errD, errG, out = step()
                    t1 = time.perf_counter()
                    run.step(d_loss=errD, g_loss=errG, d_fake=out.mean())
                    inside_t += time.perf_counter() - t1
                sync()
                tracked_t += time.perf_counter() - t0
    n = args.steps * args.blocks
    inside = 100 * inside_t / tracked_t
    ab = 100 * (tracked_t / plain_t - 1)
    load = os.getloadavg()[0]
    print(f"DCGAN 64px ngf={args.ngf} batch={args.batch} on {args.device} ({args.threads} thread(s)): "
          f"plain {plain_t / n * 1000:.1f} ms/step, run.step {inside_t / n * 1000:.2f} ms/step = {inside:.2f}% "
          f"of the tracked loop (a/b: {ab:+.1f}%), log every {args.log_every}, load {load:.1f}")
    print(json.dumps({**vars(args), "plain_ms": plain_t / n * 1000, "inside_ms": inside_t / n * 1000,
                      "inside_pct": inside, "ab_pct": ab, "total_steps": n, "load": load}))


if __name__ == "__main__":
    main()
