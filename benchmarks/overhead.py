"""What does the engine cost? `gantui run` as users run it, against a plain loop written the obvious way.

The plain loop is what someone would type without gantui: an `nn.Sequential` of the same layer
shapes as the preset's G and D, the same batch, loss, n_critic, penalty and optimiser (torch's
default Adam), data made on the fly (the toy mixture drawn per batch), and nothing else: no
metrics, no samples, no checkpoints, no EMA, no learning-rate schedule, no commands. For image
presets it indexes the same images the engine trains on, held as one tensor: on the CPU a
convolution's speed depends on the pixels (random noise trains ~17% slower than the digits here),
so both sides must see the same ones. The engine runs as shipped, in its own process, the way a
user starts it:

  headless  `gantui run PRESET --headless` (stdout to a pipe: the plain printer)
  monitor   `gantui run PRESET` in a 120x36 pseudo-terminal (the live monitor), when --monitor

Every contender runs in a fresh process (the same interpreter start-up, the same OpenMP setup),
one after the other and repeated in turn, so drift in the machine's load hits all alike. Steps/s
are measured over the same window in each: from step `--warm` to the end, by wall-clock stamps
(the engine's `metrics.jsonl` `time` field; the plain loop stamps itself the same way), so
interpreter start-up, imports and setup are left out of both.

    python benchmarks/overhead.py                                  # ring8 and dcgan, CPU
    python benchmarks/overhead.py --preset ring8 --steps 800 --repeats 3 --monitor
    OMP_NUM_THREADS=1 python benchmarks/overhead.py --preset dcgan

Prints one line per preset and a JSON line; run by hand, on an otherwise idle machine when the
figure is to be quoted (the load average is printed with it). GPU images/s: benchmarks/gpu.py.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pty
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's gantui, not an installed one
COLS, ROWS = 120, 36


# --- the plain loop (runs in its own process: `overhead.py --plain PRESET STEPS WARM`) -----------

def plain_models(cfg, shape):
    """nn.Sequential G and D with the preset's layer shapes (mlp and dcgan archs), in-place
    activations and, for DCGAN, the N(0, 0.02) init, as pytorch/examples' dcgan writes them."""
    from torch import nn

    m = cfg.model
    if m.arch == "mlp":
        dim = math.prod(shape)
        g, d = [], []
        widths = [m.latent_dim] + [m.g_width] * m.g_depth
        for a, b in zip(widths, widths[1:]):
            g += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        g += [nn.Linear(m.g_width, dim)]
        widths = [dim] + [m.d_width] * m.d_depth
        for a, b in zip(widths, widths[1:]):
            d += [nn.Linear(a, b), nn.LeakyReLU(0.2, inplace=True)]
        d += [nn.Linear(m.d_width, 1)]
        return nn.Sequential(*g), nn.Sequential(*d)
    if m.arch == "dcgan":
        from gantui.models.dcgan import PLANS, stage_channels

        c, size = shape[0], shape[1]
        start, stages = PLANS[size]
        ch = stage_channels(m.g_width, stages)
        g = [nn.Linear(m.latent_dim, ch[0] * start * start, bias=False), nn.Unflatten(1, (ch[0], start, start)),
             nn.BatchNorm2d(ch[0]), nn.ReLU(inplace=True)]
        for a, b in zip(ch, ch[1:]):
            g += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
        g += [nn.ConvTranspose2d(ch[-1], c, 4, 2, 1), nn.Tanh()]
        dch = stage_channels(m.d_width, stages)[::-1]
        d = [nn.Conv2d(c, dch[0], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        for a, b in zip(dch, dch[1:]):
            d += [nn.Conv2d(a, b, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        d += [nn.Flatten(), nn.Linear(dch[-1] * start * start, 1)]

        def weights_init(mod):  # pytorch/examples' dcgan
            if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.normal_(mod.weight, 0.0, 0.02)
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
            elif isinstance(mod, nn.BatchNorm2d):
                nn.init.normal_(mod.weight, 1.0, 0.02)
                nn.init.zeros_(mod.bias)

        G, D = nn.Sequential(*g), nn.Sequential(*d)
        G.apply(weights_init)
        D.apply(weights_init)
        return G, D
    raise SystemExit(f"the plain loop knows the mlp and dcgan archs, not {m.arch!r}")


def plain(preset: str, steps: int, warm: int, sets: list[str]) -> None:
    import torch
    import torch.nn.functional as F

    from gantui import config

    cfg = config.load(preset, sets)
    torch.manual_seed(cfg.run.seed)
    bsz, kind = cfg.data.batch_size, cfg.loss.kind
    if cfg.is_toy:
        from gantui.data import toy

        centres, std = toy.means(cfg.data.name, cfg.data.modes), toy.std(cfg.data.name)
        shape = (centres.shape[1],)

        def real_batch():
            return centres[torch.randint(0, len(centres), (bsz,))] + std * torch.randn(bsz, shape[0])
    else:
        from gantui.data import load_dataset

        images = load_dataset(cfg.data, torch.device("cpu"), cfg.run.seed).x  # the engine's pixels
        shape = tuple(images.shape[1:])

        def real_batch():
            return images[torch.randint(0, len(images), (bsz,))]

    G, D = plain_models(cfg, shape)
    o = cfg.optim
    if o.name == "adam":
        opt_g = torch.optim.Adam(G.parameters(), lr=o.g_lr, betas=tuple(o.betas))
        opt_d = torch.optim.Adam(D.parameters(), lr=o.d_lr, betas=tuple(o.betas))
    else:
        opt_g, opt_d = torch.optim.RMSprop(G.parameters(), lr=o.g_lr), torch.optim.RMSprop(D.parameters(), lr=o.d_lr)

    def d_loss(r, f):
        if kind in ("ns", "minimax"):
            return F.binary_cross_entropy_with_logits(r, torch.ones_like(r)) + \
                F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
        if kind in ("wgan", "wgan_gp"):
            return f.mean() - r.mean()
        if kind == "lsgan":
            return 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f ** 2).mean()
        return F.relu(1 - r).mean() + F.relu(1 + f).mean()

    def g_loss(f):
        return F.softplus(-f).mean() if kind == "ns" else 0.5 * ((f - 1) ** 2).mean() if kind == "lsgan" else -f.mean()

    stamps = {}
    for step in range(steps):
        for p in D.parameters():
            p.requires_grad = True
        for _ in range(cfg.loss.n_critic):
            real = real_batch()
            with torch.no_grad():
                fake = G(torch.randn(bsz, cfg.model.latent_dim))
            loss = d_loss(D(real).squeeze(1), D(fake).squeeze(1))
            if kind == "wgan_gp":
                eps = torch.rand(bsz, *[1] * len(shape))
                x = (eps * real + (1 - eps) * fake).requires_grad_(True)
                (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
                loss = loss + cfg.loss.gp_lambda * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
            if cfg.loss.r1_gamma > 0:
                x = real.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
                loss = loss + 0.5 * cfg.loss.r1_gamma * grad.flatten(1).pow(2).sum(1).mean()
            opt_d.zero_grad()
            loss.backward()
            opt_d.step()
            if kind == "wgan":
                for p in D.parameters():
                    p.data.clamp_(-cfg.loss.clip, cfg.loss.clip)
        for p in D.parameters():
            p.requires_grad = False
        loss = g_loss(D(G(torch.randn(bsz, cfg.model.latent_dim))).squeeze(1))
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
        if step + 1 == warm:
            stamps["warm"] = time.time()
    stamps["end"] = time.time()
    print(json.dumps({"steps_per_s": (steps - warm) / (stamps["end"] - stamps["warm"])}))


# --- the contenders, each in a fresh process ----------------------------------------------------------

def env() -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}


def run_plain(args, preset: str) -> float:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--plain", preset, str(args.steps), str(args.warm),
           *args.set]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env())
    if r.returncode != 0:
        raise SystemExit(f"plain loop failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])["steps_per_s"]


def rate_from_metrics(run_dir: Path, warm: int) -> float:
    """Steps/s between the first record at or after `warm` and the last record (wall-clock stamps)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["step"] >= warm]
    if len(rows) < 2:
        raise SystemExit(f"{run_dir}: too few metric records after step {warm}")
    return (rows[-1]["step"] - rows[0]["step"]) / (rows[-1]["time"] - rows[0]["time"])


def gantui_args(args, preset: str, run_dir: Path) -> list[str]:
    return ["run", preset, "--steps", str(args.steps), "--run-dir", str(run_dir), "--device", "cpu",
            *sum((["--set", s] for s in args.set), [])]


def run_headless(args, preset: str, run_dir: Path) -> float:
    cmd = [sys.executable, "-m", "gantui", *gantui_args(args, preset, run_dir), "--headless"]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env())
    if r.returncode != 0:
        raise SystemExit(f"gantui run --headless failed ({r.returncode}): {r.stderr[-2000:]}")
    return rate_from_metrics(run_dir, args.warm)


def run_monitor(args, preset: str, run_dir: Path) -> float:
    """The monitor in a pseudo-terminal; this process plays the terminal (reads all it writes)."""
    import fcntl

    cmd = [sys.executable, "-m", "gantui", *gantui_args(args, preset, run_dir)]
    e = {**env(), "TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS)}
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(REPO)
        os.execve(sys.executable, cmd, e)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))

    def drain():
        while True:
            try:
                ready, _, _ = select.select([fd], [], [], 0.5)
                if ready and not os.read(fd, 65536):
                    return
            except OSError:
                return

    threading.Thread(target=drain, daemon=True).start()
    events = run_dir / "events.jsonl"
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        if events.exists() and '"finished"' in events.read_text():
            break
        time.sleep(0.2)
    os.write(fd, b"q")
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"monitored run exited {code}")
    return rate_from_metrics(run_dir, args.warm)


def compare(args, preset: str) -> dict:
    modes = ["plain", "headless"] + (["monitor"] if args.monitor else [])
    rates: dict[str, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for mode in modes:
                run_dir = Path(tmp) / f"{mode}{i}"
                if mode == "plain":
                    rates[mode].append(run_plain(args, preset))
                elif mode == "headless":
                    rates[mode].append(run_headless(args, preset, run_dir))
                else:
                    rates[mode].append(run_monitor(args, preset, run_dir))
            print(f"  {preset} #{i}: " + "  ".join(f"{m} {rates[m][-1]:.2f}" for m in modes), flush=True)
    best = {m: max(v) for m, v in rates.items()}
    # ratios per round (each engine run against the plain run just before it: load drifts less)
    paired = {m: [e / p for e, p in zip(rates[m], rates["plain"])] for m in modes if m != "plain"}
    out = {"preset": preset, "steps": args.steps, "warm": args.warm, "repeats": args.repeats, "rates": rates,
           "best": best, "ratio_of_best": {m: best[m] / best["plain"] for m in paired},
           "paired_ratio_median": {m: statistics.median(v) for m, v in paired.items()}}
    print(f"{preset:8s} plain {best['plain']:7.2f} steps/s   " + "   ".join(
        f"{m} {best[m]:7.2f} (ratio {out['ratio_of_best'][m]:.3f}, paired median {out['paired_ratio_median'][m]:.3f})"
        for m in paired), flush=True)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--plain":
        preset, steps, warm, *sets = sys.argv[2:]
        plain(preset, int(steps), int(warm), sets)
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", action="append", help="preset(s) to time (default: ring8 and dcgan)")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--warm", type=int, default=100, help="steps left out at the start of every run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--monitor", action="store_true", help="also time the monitor in a pseudo-terminal")
    ap.add_argument("--set", action="append", default=[], help="a preset override for every contender")
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}", flush=True)
    results = [compare(args, p) for p in args.preset or ["ring8", "dcgan"]]
    print(json.dumps({"load_avg_end": os.getloadavg()[0], "results": results}))


if __name__ == "__main__":
    main()
