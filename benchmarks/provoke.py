"""Provoke every alert with real training, and check the bundled presets stay silent.

Each provoking config is a bundled preset with a few `--set` overrides that cause one known
failure; it runs (1,500 steps unless the config says otherwise) per seed with the SHIPPED
diagnostics (warm-up 500 steps, 20-record windows), and counts as "fired" when its rule is raised
in the run's events.jsonl -- by a deadline where the config has one (the early D overpowering:
step 200) -- AND the failure is confirmed independently of the rules, from the raw metrics or
from samples of the final checkpoint (`confirm`). The healthy set is every bundled preset run as
shipped; it counts, per rule, the runs in which that rule never fired. Runs are real CPU/GPU
training through the CLI (`gantui run ... --headless`), at most `--jobs` at a time (each with
OMP_NUM_THREADS=1).

Some provocations need the engine's live-quality keys (`modes_captured` ..., `class_pdist`): a
run whose metrics lack them is reported as "needs <keys>", not as a miss. Where the config has
`log.eval_every`, toy provocations set it to 100 so 1,500 steps give enough quality records.

    python benchmarks/provoke.py                           # all provoking configs x 3 seeds + every preset
    python benchmarks/provoke.py --only provoked --seeds 0 1 2 3 4 5
    python benchmarks/provoke.py --only provoked --rules d_overpowering mode_dropping
    python benchmarks/provoke.py --only provoked --configs d_overpowering-early
    python benchmarks/provoke.py --only healthy --presets dcgan ring8 --steps 3000
    python benchmarks/provoke.py --list                    # print the configs, run nothing

Resumable: every run lives in `--out DIR/<name>` (default runs/provoke) with its verdict in
provoke.json; a later call with the same --out reuses finished runs (`--force` reruns them),
so an interrupted benchmark picks up where it stopped; the table covers the runs selected by
the flags, reused or new.

It prints one line per run as it finishes (exit code, seconds, every alert raised with its
step, what the independent check found), then the table

    rule / config | provoked fired / total | healthy silent / total

For divergence "fired" also needs exit code 3 and checkpoints/latest.safetensors byte-identical
to the good checkpoint written before the absurd rates were applied (resume from it).
On a 2-core CPU (2 jobs) the first version (7 configs) took 20 min: the provoked set about 3 min
per seed, the healthy set about 11 min (wgan_gp alone 5.5 min: 5 critic steps per G step).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
import dataclasses
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gantui import config  # noqa: E402  (light: no torch)
from gantui.diagnostics import RULES, Diagnostics  # noqa: E402

STEPS = 1500
TOY = ("ring8", "grid25", "mixture1d")
QUALITY_TOY = ("modes_captured", "modes_total", "hq_fraction")


@dataclass(frozen=True)
class Provocation:
    rule: str
    preset: str
    sets: tuple[str, ...]
    why: str
    good_steps: int = 0   # >0: train this many steps as shipped first, then resume with `sets`
    variant: str = ""     # tells apart two configs for one rule (run names, table rows)
    steps: int = STEPS
    by_step: int | None = None       # the rule must be raised by this step
    confirm: str = ""                # name of the independent check (CONFIRM), "" = none
    needs: tuple[str, ...] = ()      # metric keys the rule reads that the engine must record

    @property
    def name(self) -> str:
        return f"{self.rule}-{self.variant}" if self.variant else self.rule


# the shipped cgan as it collapses within each class by about step 1,400 (issue 8), pinned here so
# the provocation keeps failing after the preset itself is fixed
CGAN_COLLAPSING = ("model.latent_dim=64", "model.g_width=32", "model.d_width=32", "model.spectral_norm=false",
                   "model.ema=0", "loss.kind=ns", "loss.n_critic=1", "loss.label_smoothing=0", "optim.g_lr=2e-4",
                   "optim.d_lr=2e-4", "optim.betas=[0.5,0.999]")

PROVOCATIONS = (
    Provocation("d_overpowering", "vanilla", ("optim.d_lr=2e-3", "optim.g_lr=1e-7"),
                "D at 10x the shipped rate against a G at 1e-7 (nearly frozen): D(x)=1, D(G(z))=0 within 100 steps",
                confirm="d_pinned"),
    Provocation("d_overpowering", "dcgan", ("optim.d_lr=2e-3", "optim.g_lr=1e-7"),
                "conv D at 10x its rate against a frozen G: pinned at its floor from step 20, so the alert "
                "must come inside the warm-up", variant="early", steps=400, by_step=200, confirm="d_pinned"),
    Provocation("d_overpowering", "vanilla", ("loss.label_smoothing=0.1", "optim.d_lr=2e-3", "optim.g_lr=1e-7"),
                "600 healthy steps, then one-sided label smoothing 0.1 with a fast D and a frozen G: past the "
                "warm-up, D closes on its smoothed floor (loss 0.33, D(x) 0.9), which the old fixed limits "
                "(0.1, 0.9) could never see", good_steps=600, variant="smoothed", confirm="smoothed_floor"),
    Provocation("divergence", "ring8", ("optim.d_lr=1e6", "optim.g_lr=1e6", "loss.gp_lambda=0"),
                "50 good steps as shipped, then resume with rates of 1e6 and no gradient penalty", good_steps=50),
    Provocation("mode_collapse", "ring8",
                ("loss.kind=ns", "loss.n_critic=1", "model.ema=0", "optim.g_lr=5e-3", "optim.d_lr=5e-4",
                 "optim.betas=[0.9,0.999]"),
                "plain non-saturating GAN, G 10x faster than D, beta1 0.9: G collapses onto one point",
                confirm="few_modes"),
    Provocation("mode_collapse", "cgan", CGAN_COLLAPSING,
                "the shipped cgan's settings before issue 8: classes stay distinct (sample_pdist ~0.9) but each "
                "class's samples are nearly identical (within-class spread 0.11-0.23 of the real class's from "
                "step 200 on)", variant="per-class", confirm="class_spread", needs=("class_pdist",)),
    Provocation("mode_dropping", "mixture1d", ("optim.g_lr=5e-3", "optim.d_lr=2e-4"),
                "two bumps, G at 5x its rate against D at 1/5: sharp samples on one bump from about step 200 on "
                "(seeds 0-2; with D as shipped, seeds 1 and 2 recover by step 600)", confirm="few_modes",
                needs=QUALITY_TOY),
    Provocation("mode_dropping", "ring8",
                ("loss.kind=ns", "loss.n_critic=1", "optim.g_lr=1e-3", "optim.d_lr=1e-3", "optim.betas=[0.9,0.999]"),
                "issue 19's toy generator that never reaches the data: a plain GAN with Adam's default betas at "
                "1e-3 on ring8; its samples are a streak off the ring (0 of 8 modes from step 300 on), never "
                "sharp enough to count modes", variant="unreached", steps=3000, confirm="few_modes",
                needs=QUALITY_TOY),
    Provocation("mode_dropping", "grid25",
                ("loss.kind=ns", "loss.n_critic=1", "optim.g_lr=1e-3", "optim.d_lr=1e-3", "optim.betas=[0.5,0.999]"),
                "issue 19's partial coverage on a toy mixture: a plain GAN on grid25 (PacGAN's table); seed 0 "
                "covers 20 of 25 modes with a whole column of the grid empty while 47 % of its samples are "
                "high quality", variant="partial", steps=3000, confirm="few_modes", needs=QUALITY_TOY),
    Provocation("mode_dropping", "dcgan", ("model.latent_dim=2", "log.eval_every=100"),
                "issue 19's model that misses several classes: the shipped dcgan with a 2-D latent (an odd latent "
                "shape): a handful of recurring shapes from a few hundred steps on; seed 0 gives no 0, 4 or 6 "
                "at step 800 (its sample grid, by eye, and the classifier)", variant="classes",
                confirm="starved_classes"),
    Provocation("mode_dropping", "wgan_clip", ("optim.g_lr=5e-5", "optim.d_lr=5e-5"),
                "issue 19's model that produces one class: the wgan_clip preset at the WGAN paper's RMSprop 5e-5 "
                "(its rate before issue 19): every sample a grey blob the classifier reads as a 1 (FID 69-77)",
                variant="one-class", steps=2500, confirm="starved_classes"),
    Provocation("mode_collapse", "dcgan",
                ('data.name="folder"', 'data.root="{shapes}"', "optim.g_lr=2e-3", "optim.betas=[0.9,0.999]"),
                "issue 19's collapse inside the warm-up on a user's small folder: the shipped dcgan on 1,000 "
                "rendered shapes (tests/shapes.py) with G at 10x its rate and Adam's beta1 0.9: every latent "
                "gives the same block within a few hundred steps", variant="folder", steps=600, by_step=600,
                confirm="flat_samples"),
    Provocation("oscillation", "mixture1d",
                ("data.modes=1", "data.batch_size=1024", "optim.g_lr=5e-3", "optim.d_lr=5e-2", "optim.betas=[0.8,0.9]"),
                "one bump; D at 50x the shipped rate, Adam betas (0.8, 0.9): both losses swing with a ~20-step "
                "period, i.e. up and down on alternate 10-step records"),
    Provocation("oscillation", "mixture1d",
                ("data.batch_size=1024", "optim.g_lr=5e-3", "optim.d_lr=5e-2", "optim.betas=[0.8,0.9]"),
                "the same on the shipped two bumps: the swing is weaker, G partly collapses, and the rule "
                "fires in about 2 of 3 seeds", variant="2modes"),
    Provocation("vanishing_gradients", "vanilla", ("loss.kind=minimax", "optim.d_lr=5e-3", "optim.g_lr=1e-7"),
                "saturating minimax G loss against a fast D: |grad G| ~ D(G(z)) -> 0"),
    Provocation("exploding_gradients", "ring8", ("loss.kind=wgan", "loss.clip=1e9", "model.ema=0"),
                "WGAN critic with clipping switched off (clip 1e9): unbounded critic, gradient norms in the 1000s"),
)


def has_eval_every() -> bool:
    return "eval_every" in {f.name for f in dataclasses.fields(config.LogConfig)}


def quality_sets(preset: str) -> tuple[str, ...]:
    """Live quality every 100 steps on toy runs, where the engine has the key."""
    return ("log.eval_every=100",) if preset in TOY and has_eval_every() else ()


# checks on samples read the checkpoint at the alert (a G may recover later): keep one every 100 steps
SAMPLE_CHECKS = ("few_modes", "class_spread", "flat_samples", "starved_classes")
KEEP_CHECKPOINTS = ("log.checkpoint_every=100", "log.keep=100")


def shapes_folder(out: Path, n: int = 1000) -> Path:
    """A user's small folder of images: n rendered shapes (tests/shapes.py), written once under `out`."""
    folder = out / f"shapes-{n}"
    if not (folder.is_dir() and len(list(folder.iterdir())) >= n):
        sys.path.insert(0, str(REPO / "tests"))
        from shapes import write_shapes

        folder.mkdir(parents=True, exist_ok=True)
        write_shapes(folder, n, seed=0)
    return folder


def extra_sets(p: Provocation) -> tuple[str, ...]:
    return quality_sets(p.preset) + (KEEP_CHECKPOINTS if p.confirm in SAMPLE_CHECKS else ())


@dataclass
class Job:
    name: str
    preset: str
    sets: tuple[str, ...] = ()
    rule: str | None = None          # the rule a provoked run must fire; None for a healthy run
    seed: int | None = None
    good_steps: int = 0
    config: str = ""                 # the Provocation's name
    steps: int = STEPS
    by_step: int | None = None
    confirm: str = ""
    needs: tuple[str, ...] = ()


def jobs_for(args) -> list[Job]:
    jobs = []
    if args.only in (None, "provoked"):
        for p in PROVOCATIONS:
            if (args.rules and p.rule not in args.rules) or (args.configs and p.name not in args.configs):
                continue
            sets = tuple(x.replace("{shapes}", str(shapes_folder(args.out))) for x in p.sets)
            for s in args.seeds:
                jobs.append(Job(f"{p.name}-s{s}", p.preset, sets + extra_sets(p), p.rule, s,
                                p.good_steps, p.name, p.steps, p.by_step, p.confirm, p.needs))
    if args.only in (None, "healthy"):
        for path in config.bundled_presets():
            if args.presets and path.stem not in args.presets:
                continue
            jobs.append(Job(f"healthy-{path.stem}", path.stem, steps=args.steps or STEPS))
    return jobs


# --- running ---------------------------------------------------------------------------------

def gantui(*args: str, timeout: float, stdout: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "gantui", *args], cwd=REPO, env=env, timeout=timeout,
                          stdout=subprocess.PIPE if stdout else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def set_args(sets) -> list[str]:
    return [x for s in sets for x in ("--set", s)]


def run_job(job: Job, out: Path, force: bool, timeout: float) -> dict:
    run_dir = out / job.name
    verdict = run_dir / "provoke.json"
    if verdict.exists() and not force:
        return {**json.loads(verdict.read_text()), "reused": True}
    shutil.rmtree(run_dir, ignore_errors=True)
    seed = set_args([f"run.seed={job.seed}"]) if job.seed is not None else []
    t0 = time.perf_counter()
    result: dict = {"name": job.name, "config": job.config, "preset": job.preset, "rule": job.rule,
                    "seed": job.seed, "sets": list(job.sets), "by_step": job.by_step}
    try:
        if job.good_steps:
            first = gantui("run", job.preset, "--headless", "--steps", str(job.good_steps), "--run-dir",
                           str(run_dir), *seed, timeout=timeout)
            latest = run_dir / "checkpoints" / "latest.safetensors"
            if first.returncode != 0 or not latest.exists():
                raise RuntimeError(f"the good run exited {first.returncode}: {first.stderr.strip()[-300:]}")
            good = latest.read_bytes()
            r = gantui("run", job.preset, "--headless", "--steps", str(job.steps), "--resume", str(run_dir),
                       *seed, *set_args(job.sets), timeout=timeout)
            if job.rule == "divergence":  # the others train on from the good checkpoint, as they should
                result["checkpoint_intact"] = latest.exists() and latest.read_bytes() == good
        else:
            r = gantui("run", job.preset, "--headless", "--steps", str(job.steps), "--run-dir", str(run_dir),
                       *seed, *set_args(job.sets), timeout=timeout)
        result["exit_code"] = r.returncode
        if r.returncode not in (0, 3):
            result["error"] = r.stderr.strip()[-300:]
    except (subprocess.TimeoutExpired, RuntimeError) as e:
        result["exit_code"] = None
        result["error"] = str(e)[-300:]
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["alerts"] = raised_alerts(run_dir)
    result.update(replay(run_dir))
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    result["missing_keys"] = [k for k in job.needs if not any(k in m for m in metrics)]
    if result.get("exit_code") == 0 and job.preset in TOY:
        result["modes"] = count_modes(run_dir)
    if job.confirm and result.get("exit_code") == 0:
        try:
            result["confirm"] = CONFIRM[job.confirm](run_dir, metrics, job)
        except Exception as e:  # noqa: BLE001 - a failed check is reported, not fatal to the benchmark
            result["confirm"] = {"ok": False, "why": f"check failed: {e}"}
    result["ok"] = verdict_of(result)
    run_dir.mkdir(parents=True, exist_ok=True)
    verdict.write_text(json.dumps(result, indent=1))
    return result


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def raised_alerts(run_dir: Path) -> list[list]:
    """[rule, step] of every alert raise, in order."""
    return [[e["rule"], e["step"]] for e in read_jsonl(run_dir / "events.jsonl")
            if e.get("kind") == "alert" and e.get("state") == "raised"]


def replay(run_dir: Path) -> dict:
    """Replays metrics.jsonl through the shipped rules (they are pure functions of the records)
    for how close the run came to the oscillation rule: the peak jump/level over windows whose
    flip rate passed its limit, and the most records of any 20-record window that held."""
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    cfg_path = run_dir / "config.toml"
    if not metrics or not cfg_path.exists():
        return {}
    cfg = config.loads(cfg_path.read_text(), str(cfg_path))
    t = cfg.diagnostics
    diag = Diagnostics(t, cfg.loss.kind, 0.0, label_smoothing=cfg.loss.label_smoothing, n_critic=cfg.loss.n_critic)
    peak, held = 0.0, []
    for m in metrics:
        diag.update(m)
        if m.get("step", 0) < t.warmup_steps or diag.diverged:
            continue
        obs = diag.oscillation.observe(m, diag.ctx) or {}
        for k, o in obs.items():
            if o.evidence.get(f"{k}_flip_rate", 0.0) > t.osc_flip_rate:
                peak = max(peak, o.value)
        held.append(any(o.holds for o in obs.values()))
    most = max((sum(held[i:i + t.window]) for i in range(max(1, len(held) - t.window + 1))), default=0)
    return {"osc_peak": round(peak, 3), "osc_most_held": most}


def count_modes(run_dir: Path) -> dict | None:
    """Modes of a toy run's generator (a run directory: its latest checkpoint; or a checkpoint
    file): `hit` = modes nearest to at least 5 % of 2,500 samples, `captured` = modes with a sample
    within 3 std of their mean (DESIGN's rule)."""
    try:
        import torch

        from gantui.checkpoint import load_generator
        from gantui.data import toy
    except ImportError:
        return None
    loaded = load_generator(run_dir)
    with torch.no_grad():
        samples, _ = loaded.sample(2500, seed=0)
    means = toy.means(loaded.config.data.name, loaded.config.data.modes)
    dist, nearest = torch.cdist(samples.float(), means).min(1)
    counts = torch.bincount(nearest, minlength=len(means))
    captured = torch.unique(nearest[dist <= 3 * toy.std(loaded.config.data.name)]).numel()
    return {"hit": int((counts >= 0.05 * len(samples)).sum()), "captured": int(captured), "total": len(means)}


# --- independent checks: the failure, seen without the rules ----------------------------------

def _records(metrics: list[dict], lo: int = 0, hi: int | None = None) -> list[dict]:
    return [m for m in metrics if m.get("step", 0) >= lo and (hi is None or m["step"] <= hi)]


def confirm_d_pinned(run_dir: Path, metrics: list[dict], job: Job) -> dict:
    """D tells real from fake perfectly in most raw records (up to the deadline where there is one)."""
    recs = _records(metrics, 20, job.by_step)
    sure = sum(m["d_real"] > 0.99 and m["d_fake"] < 0.01 for m in recs)
    return {"ok": bool(recs) and sure >= 0.8 * len(recs), "why": f"D(x)>0.99 & D(G(z))<0.01 in {sure}/{len(recs)}"}


def confirm_smoothed_floor(run_dir: Path, metrics: list[dict], job: Job) -> dict:
    """From 300 steps after the switch, D has won within smoothing's range: in most records its
    loss is within 0.15 of H(0.9) = 0.325 and D(x) - D(G(z)) above 0.75, and its loss never goes
    below the floor (so the old fixed 0.1 could never have been crossed)."""
    floor = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    recs = _records(metrics, job.good_steps + 300)
    won = sum(m["d_loss"] < floor + 0.15 and m["d_real"] - m["d_fake"] > 0.75 for m in recs)
    lowest = min((m["d_loss"] for m in recs), default=math.nan)
    ok = bool(recs) and won >= 0.8 * len(recs) and lowest >= floor - 0.01
    return {"ok": ok, "why": f"D loss < {floor + 0.15:.3f} with gap > 0.75 in {won}/{len(recs)}, lowest {lowest:.3f}"}


def checkpoint_at_alert(run_dir: Path, job: Job) -> Path:
    """The first step checkpoint at or after the rule's raise (else the latest)."""
    steps = [step for rule, step in raised_alerts(run_dir) if rule == job.rule]
    kept = sorted(run_dir.glob("checkpoints/step_*.safetensors"))
    after = [c for c in kept if steps and int(c.stem.split("_")[1]) >= steps[0]]
    return after[0] if after else run_dir


def confirm_few_modes(run_dir: Path, metrics: list[dict], job: Job) -> dict:
    """The generator at the alert: its 2,500 samples reach at most 80 % of the modes."""
    where = checkpoint_at_alert(run_dir, job)
    modes = count_modes(where)
    if not modes:
        return {"ok": False, "why": "no checkpoint to sample"}
    few = modes["hit"] <= 0.8 * modes["total"] or modes["captured"] <= 0.8 * modes["total"]
    return {"ok": few, "why": f"{where.name}: modes hit {modes['hit']}/{modes['total']}, captured {modes['captured']}"}


def confirm_class_spread(run_dir: Path, metrics: list[dict], job: Job) -> dict:
    """The generator at the alert, 50 samples per class, against 200 real images per class: the
    mean pairwise distance within a class, generated / real, is below 0.25 for some classes."""
    import torch

    from gantui.checkpoint import load_generator
    from gantui.data import load_dataset

    loaded = load_generator(checkpoint_at_alert(run_dir, job))
    n_classes = loaded.info.n_classes
    with torch.no_grad():
        fake, y = loaded.sample(50 * n_classes, seed=0)
    real, ry = load_dataset(loaded.config.data, "cpu", 0).real_batch(400 * n_classes, seed=7)
    ratios = []
    for c in range(n_classes):
        f = fake[y == c].flatten(1).double()
        r = real[ry == c][:200].flatten(1).double()
        ratios.append(float(torch.pdist(f).mean() / torch.pdist(r).mean()))
    low = [c for c, v in enumerate(ratios) if v < 0.25]
    return {"ok": bool(low), "why": f"within-class spread / real's: min {min(ratios):.2f}, classes below 0.25: {low}"}


def confirm_flat_samples(run_dir: Path, metrics: list[dict], job: Job) -> dict:
    """The generator at the alert: 64 samples' per-pixel spread (std across samples, averaged over
    pixels, images in [-1, 1]) is under 0.01: every latent gives the same image."""
    import torch

    from gantui.checkpoint import load_generator

    where = checkpoint_at_alert(run_dir, job)
    with torch.no_grad():
        x, _ = load_generator(where).sample(64, seed=1)
    spread = float(x.float().std(0).mean())
    return {"ok": spread < 0.01, "why": f"{where.name}: per-pixel spread across 64 samples {spread:.4f}"}


def confirm_starved_classes(run_dir: Path, metrics: list[dict], job: Job) -> dict:
    """The generator at the alert, judged afresh by `gantui eval --json` (2,000 new samples, another
    seed than the live records'): each class the alert named starved gets under 20 % of its fair
    share of the classified samples (the rule's limit is 10 %: this asks the failure to be plain)."""
    where = checkpoint_at_alert(run_dir, job)
    named = next((e["evidence"].get("starved", []) for e in read_jsonl(run_dir / "events.jsonl")
                  if e.get("kind") == "alert" and e.get("state") == "raised" and e.get("rule") == job.rule), [])
    r = gantui("eval", str(where), "--json", "--n-samples", "2000", "--seed", "1", timeout=600, stdout=True)
    counts = json.loads(r.stdout)["class_counts"] if r.returncode == 0 else []
    if not counts or not named:
        return {"ok": False, "why": f"{where.name}: eval exit {r.returncode}, classes named {named}"}
    fair = sum(counts) / len(counts)
    low = [c for c in named if counts[c] < 0.2 * fair]
    return {"ok": len(low) == len(named),
            "why": f"{where.name}: classified samples per class {counts}; named {named}, under 20 % of share: {low}"}


CONFIRM = {"d_pinned": confirm_d_pinned, "starved_classes": confirm_starved_classes,
           "smoothed_floor": confirm_smoothed_floor,
           "few_modes": confirm_few_modes, "class_spread": confirm_class_spread,
           "flat_samples": confirm_flat_samples}


def verdict_of(r: dict) -> bool:
    """Provoked: its rule fired (by the deadline, if any) and the independent check agrees
    (divergence: exit 3 and the good checkpoint intact). Healthy: finished (exit 0); which rules
    stayed silent is counted per rule in the table."""
    fired = {a[0] for a in r["alerts"]}
    if r["rule"] is None:
        return r.get("exit_code") == 0
    if r["rule"] == "divergence":
        return "divergence" in fired and r.get("exit_code") == 3 and bool(r.get("checkpoint_intact"))
    steps = [step for rule, step in r["alerts"] if rule == r["rule"]]
    in_time = bool(steps) and (r.get("by_step") is None or min(steps) <= r["by_step"])
    confirmed = r.get("confirm", {"ok": True})["ok"]
    return in_time and confirmed and r.get("exit_code") == 0


def needs_engine(r: dict) -> bool:
    """A provoked run that could not fire: the engine did not record the keys its rule reads."""
    return bool(r.get("missing_keys")) and not r["ok"]


# --- reporting ---------------------------------------------------------------------------------

def line(r: dict) -> str:
    alerts = ", ".join(f"{rule}@{step}" for rule, step in r["alerts"]) or "none"
    if r["rule"]:
        state = "FIRED" if r["ok"] else f"needs {', '.join(r['missing_keys'])}" if needs_engine(r) else "missed"
        what = f"-> {r['rule']}: {state}"
    else:
        what = "finished" if r["ok"] else "did not finish"
    extra = [f"exit {r.get('exit_code')}", f"{r['seconds']:.0f}s"]
    if r.get("by_step"):
        extra.append(f"deadline step {r['by_step']}")
    if "checkpoint_intact" in r:
        extra.append("checkpoint intact" if r["checkpoint_intact"] else "CHECKPOINT CHANGED")
    if "confirm" in r:
        extra.append(("confirmed: " if r["confirm"]["ok"] else "NOT confirmed: ") + r["confirm"]["why"])
    if "osc_peak" in r:
        extra.append(f"osc peak {r['osc_peak']:.2f} ({r['osc_most_held']}/20 held)")
    if r.get("modes"):
        m = r["modes"]
        extra.append(f"modes hit {m['hit']}/{m['total']}, captured {m['captured']}/{m['total']}")
    if r.get("reused"):
        extra.append("reused")
    text = f"{r['name']:<32} {what:<40} alerts: {alerts}  [{'; '.join(extra)}]"
    if r.get("error"):
        text += f"\n    error: {r['error']}"
    return text


def table(results: list[dict]) -> str:
    provoked = [r for r in results if r["rule"]]
    healthy = [r for r in results if r["rule"] is None]
    rows = [("rule / config", "provoked fired / total", "healthy silent / total")]

    def fired(rs: list[dict]) -> str:
        waiting = sum(needs_engine(r) for r in rs)
        text = f"{sum(r['ok'] for r in rs)} / {len(rs) - waiting}"
        return text + (f" ({waiting} need engine keys)" if waiting else "")
    for rule in RULES:
        # a healthy run that did not finish proves nothing about silence: it counts against
        silent = sum(r["ok"] and rule not in {a[0] for a in r["alerts"]} for r in healthy)
        quiet = f"{silent} / {len(healthy)}" if healthy else "-"
        mine = [r for r in provoked if r["rule"] == rule]
        configs = [p.name for p in PROVOCATIONS if p.rule == rule]
        rows.append((rule, fired(mine) if mine else "-", quiet))
        if len(configs) > 1:  # one row per config under the rule's total
            for c in configs:
                sub = [r for r in mine if r.get("config", r["rule"]) == c]
                if sub:
                    rows.append((f"  {c}", fired(sub), ""))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    out = [" | ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out)


def describe() -> str:
    lines = ["provoked (shipped diagnostics; seed via --set run.seed=N):"]
    for p in PROVOCATIONS:
        sets = " ".join(f"--set {s}" for s in p.sets + extra_sets(p))
        pre = f"[{p.good_steps} steps as shipped, then --resume with] " if p.good_steps else ""
        when = f", raised by step {p.by_step}" if p.by_step else ""
        lines.append(f"  {p.name:<28} gantui run {p.preset} --steps {p.steps} {pre}{sets}\n"
                     f"  {'':<28} ({p.why}{when}; check: {p.confirm or 'none'})")
    lines.append(f"healthy: every bundled preset as shipped, --steps {STEPS} (or --steps): "
                 + ", ".join(p.stem for p in config.bundled_presets()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=("provoked", "healthy"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of each provoking config")
    ap.add_argument("--rules", nargs="+", choices=list(RULES), help="provoke only these rules")
    ap.add_argument("--configs", nargs="+", choices=[p.name for p in PROVOCATIONS], help="only these configs")
    ap.add_argument("--steps", type=int, help=f"steps of each healthy run (default {STEPS})")
    ap.add_argument("--presets", nargs="+", help="healthy runs of only these presets")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "provoke", help="where the runs live")
    ap.add_argument("--jobs", type=int, default=2, help="training processes at once")
    ap.add_argument("--force", action="store_true", help="rerun runs that already have a verdict")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per training process")
    ap.add_argument("--list", action="store_true", help="print the configs and exit")
    args = ap.parse_args(argv)
    if args.list:
        print(describe())
        return 0
    jobs = jobs_for(args)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{len(jobs)} runs in {args.out}, {args.jobs} at a time", flush=True)
    results = []
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = {pool.submit(run_job, j, args.out, args.force, args.timeout): j for j in jobs}
        for fut in as_completed(futures):
            r = fut.result()
            results.append(r)
            print(line(r), flush=True)
    order = {j.name: i for i, j in enumerate(jobs)}
    results.sort(key=lambda r: order[r["name"]])
    print(f"\n{len(results)} runs, {math.ceil(time.perf_counter() - t0)} s wall\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
