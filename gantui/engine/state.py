"""What a checkpoint holds and how a run is restored from one (DESIGN's checkpoint contract).

Tensors: `generator.*`, `discriminator.*`, `generator_ema.*`, `optim_g.*`, `optim_d.*`, `rng.*`
(every rank's, for a distributed run), `fixed.*`, `scaler_*.*`; metadata: `gantui_version`,
`format_version`, `step`, `config`, the optimisers' param groups, `state` (the runtime settings
changed from the keyboard: base rates, n_critic; and `critic_done` for a checkpoint taken in
the middle of a step's critic loop), `data_info` and `diagnostics` (the alert rules' memory as
JSON: latches, raised alerts, baselines, peaks, best coverage; a resume is judged like an
uninterrupted run).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gantui import __version__, checkpoint
from gantui.config import Config
from gantui.engine.parts import Parts


@dataclass
class Runtime:
    """The trainer's settings that change while it runs and must survive a resume."""

    step: int = 0
    base_lr: dict[str, float] = field(default_factory=dict)
    n_critic: int = 1
    critic_done: int = 0     # critic updates of the step `step + 1` already applied (mid-step save)
    live: dict[str, float] = field(default_factory=dict)  # loss settings changed live by a fix


def rng_tensors(parts: Parts) -> dict[str, torch.Tensor]:
    t = {"rng.cpu": torch.get_rng_state()}
    if parts.is_cuda:
        t["rng.cuda"] = torch.cuda.get_rng_state(parts.device)
    return t


def set_rng(parts: Parts, tensors: dict[str, torch.Tensor], prefix: str = "rng") -> None:
    torch.set_rng_state(tensors[f"{prefix}.cpu"])
    if parts.is_cuda and f"{prefix}.cuda" in tensors:
        torch.cuda.set_rng_state(tensors[f"{prefix}.cuda"], parts.device)


def scaler_tensors(name: str, scaler) -> dict[str, torch.Tensor]:
    """A GradScaler's scale and growth tracker (both needed for the next steps to match)."""
    if not scaler.is_enabled():
        return {}
    sd = scaler.state_dict()
    return {f"{name}.scale": torch.tensor(float(sd["scale"]), dtype=torch.float32),
            f"{name}.growth_tracker": torch.tensor(int(sd["_growth_tracker"]), dtype=torch.int64)}


def load_scaler(name: str, scaler, tensors: dict[str, torch.Tensor]) -> None:
    """Restore a scaler through its state_dict, which works before its first step (update()
    with a new scale does not: it asserts the scaler has been used)."""
    if not scaler.is_enabled() or f"{name}.scale" not in tensors:
        return
    sd = scaler.state_dict()
    sd["scale"] = float(tensors[f"{name}.scale"])
    if f"{name}.growth_tracker" in tensors:
        sd["_growth_tracker"] = int(tensors[f"{name}.growth_tracker"])
    scaler.load_state_dict(sd)


def to_tensors(cfg: Config, parts: Parts, rt: Runtime,
               extra_rng: dict[str, torch.Tensor] | None = None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    t = checkpoint.flatten_module("generator", parts.G)
    t.update(checkpoint.flatten_module("discriminator", parts.D))
    if parts.G_ema is not None:
        t.update(checkpoint.flatten_module("generator_ema", parts.G_ema))
    og, groups_g = checkpoint.flatten_optimizer("optim_g", parts.opt_g)
    od, groups_d = checkpoint.flatten_optimizer("optim_d", parts.opt_d)
    t.update(og)
    t.update(od)
    t.update(rng_tensors(parts))
    if extra_rng:
        t.update(extra_rng)
    t["fixed.z"] = parts.fixed_z
    if parts.fixed_y is not None:
        t["fixed.y"] = parts.fixed_y
    t.update(scaler_tensors("scaler_g", parts.scaler_g))
    t.update(scaler_tensors("scaler_d", parts.scaler_d))
    info = parts.data.info
    meta = {
        "gantui_version": __version__,
        "format_version": checkpoint.FORMAT_VERSION,
        "step": str(rt.step),
        "config": cfg.to_toml(),
        "optim_g.param_groups": groups_g,
        "optim_d.param_groups": groups_d,
        "state": json.dumps({"base_lr": rt.base_lr, "n_critic": rt.n_critic, "critic_done": rt.critic_done,
                             "live": rt.live}),
        "data_info": json.dumps({"name": info.name, "shape": list(info.shape),
                                 "n_classes": info.n_classes, "is_toy": info.is_toy}),
    }
    return t, meta


def diagnostics_metadata(diagnostics) -> dict[str, str]:
    """The alert rules' state for a checkpoint's metadata ({} when it would not fit)."""
    try:
        text = json.dumps(diagnostics.state(), separators=(",", ":"), allow_nan=False, default=str)
    except ValueError:  # a non-finite number would not be valid JSON: leave the state out
        return {}
    return {"diagnostics": text} if len(text) <= checkpoint.MAX_JSON_CHARS else {}


def restore_diagnostics(diagnostics, meta: dict[str, str]) -> str | None:
    """Load the rules' state saved with a checkpoint into `diagnostics`; a note for the event log
    when it is missing or unreadable (the rules then start afresh; the resume itself never fails
    on the monitor's memory), None when restored."""
    raw = meta.get("diagnostics")
    if raw is None:
        return "alert rules start afresh: the checkpoint carries no rule state (an older gantui)"
    try:
        state = json.loads(raw) if len(raw) <= checkpoint.MAX_JSON_CHARS else None
    except (ValueError, RecursionError):  # untrusted input: '[' * 100000 nests past Python's stack
        state = None
    if not diagnostics.load_state(state):
        return "alert rules start afresh: the checkpoint's rule state is unreadable"
    return None


def restore(path: Path, cfg: Config, parts: Parts, rt: Runtime) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Load a checkpoint into `parts` and `rt`, refusing with one line (CheckpointError) anything
    that would not continue this run exactly: every metadata field is parsed and range-checked,
    the data must be the one it was trained on, and every tensor (weights, optimiser states, RNG,
    scalers, fixed noise) is checked for name, dtype and shape before anything is loaded.
    Returns (tensors, metadata) for callers that restore more (a distributed run's per-rank RNG)."""
    tensors, meta = checkpoint.read(path)
    parsed = checkpoint.parse_meta(meta, path)
    checkpoint.check_same_data(parsed.info, parts.data.info, path)
    checkpoint.check_rng(tensors, path)
    checkpoint.check_scalers(tensors, path)
    checkpoint.take_module("generator", tensors, parts.G, path)
    checkpoint.take_module("discriminator", tensors, parts.D, path)
    if parts.G_ema is not None:
        prefix = "generator_ema" if any(k.startswith("generator_ema.") for k in tensors) else "generator"
        checkpoint.take_module(prefix, tensors, parts.G_ema, path)
    # An optimiser that has not stepped yet has no state to save: G's before the first step, D's
    # before the first critic update. Anywhere else a missing state would make the resume inexact.
    critic_done = int(parsed.state.get("critic_done", 0))
    checkpoint.load_optimizer("optim_g", tensors, meta, parts.opt_g, path, allow_fresh=parsed.step == 0)
    checkpoint.load_optimizer("optim_d", tensors, meta, parts.opt_d, path,
                              allow_fresh=parsed.step == 0 and critic_done == 0)
    # Rates and n_critic changed from the keyboard live in the checkpoint; a value the user
    # changed in the preset or with --set since then wins over it.
    state, saved = parsed.state, parsed.config
    for which, key in (("g", "g_lr"), ("d", "d_lr")):
        if getattr(saved.optim, key) == getattr(cfg.optim, key) and which in state.get("base_lr", {}):
            rt.base_lr[which] = float(state["base_lr"][which])
    if saved.loss.n_critic == cfg.loss.n_critic:
        rt.n_critic = int(state.get("n_critic", rt.n_critic))
    for key, value in state.get("live", {}).items():  # "loss.label_smoothing": 0.1, ...
        section, name = key.split(".", 1)
        if getattr(getattr(saved, section), name) == getattr(getattr(cfg, section), name):
            rt.live[key] = value
    rt.critic_done = critic_done
    rt.step = parsed.step
    z = tensors.get("fixed.z")
    if z is not None and z.shape == parts.fixed_z.shape:
        checkpoint.check_tensor("fixed.z", z, parts.fixed_z.shape, torch.float32, path)
        parts.fixed_z = z.to(parts.device)
    set_rng(parts, tensors)
    load_scaler("scaler_g", parts.scaler_g, tensors)
    load_scaler("scaler_d", parts.scaler_d, tensors)
    return tensors, meta
