"""Safetensors checkpoints: atomic save, safe load, resume, and the generator for sampling.

One file holds everything needed to resume exactly (DESIGN's checkpoint contract):
tensors `generator.*`, `discriminator.*`, `generator_ema.*`, `optim_g.*`, `optim_d.*`,
`rng.*`, `fixed.*`; string metadata `gantui_version`, `step`, `config`, `format_version`
and a few more (`state`: JSON of the trainer's runtime settings, optimiser param groups).

Never pickle: opening a stranger's checkpoint must not be able to run code.
"""

from __future__ import annotations

import dataclasses
import json
import math
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from gantui import __version__, limits
from gantui import config as config_mod
from gantui.errors import CheckpointError, ConfigError, DataError
from gantui.memory import N_CLASSES, SET_CHANNELS, TOY_DIMS, host_available_bytes, model_counts
from gantui.vocab import safetensors as st_header
from gantui.vocab.files import atomic_write
from gantui.vocab import run_files

FORMAT_VERSION = st_header.FORMAT_VERSION
# A checkpoint is untrusted input: these bound what reading one may cost before anything is checked.
MAX_CONFIG_CHARS = 64 << 10      # the embedded config.toml; a resolved config is about 2 kB
MAX_JSON_CHARS = 1 << 20         # data_info, state, optimiser param groups


# --- files -------------------------------------------------------------------------------

def save(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`.

    A crash at any point leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    blob = st_save(cpu, metadata={k: str(v) for k, v in metadata.items()})
    atomic_write(path, blob, mode=0o600)


def resolve(path_or_run_dir: str | Path) -> Path:
    """A checkpoint file, or a run directory (its checkpoints/latest.safetensors)."""
    p = Path(path_or_run_dir)
    if p.is_dir():
        for candidate in (p / run_files.CHECKPOINTS / run_files.LATEST, p / run_files.LATEST):
            if candidate.is_file():
                return candidate
        if any((p / name).exists() for name in run_files.RUN_FILES):
            raise CheckpointError(f"{p}: no checkpoints/latest.safetensors in this run directory "
                                  f"(it has not saved a checkpoint yet)")
        raise CheckpointError(f"{p}: not a gantui run directory (no config.toml, no checkpoints/); expected a "
                              f"checkpoint file or a run directory, e.g. runs/<name>-<time> (`gantui runs` lists them)")
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint file or run directory")
    return p


def read(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a gantui checkpoint; CheckpointError for anything else.

    The file is untrusted: it must be a regular file (reading /dev/zero would never end), its header
    length must fit inside it before anything else is read, and it must fit in the memory available."""
    path = resolve(path)
    try:
        st = path.stat()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{path}: not a regular file (a device, pipe or socket), so not a checkpoint")
    size = st.st_size
    try:
        with open(path, "rb") as f:
            try:
                header, _ = st_header.read_header(f, size)
            except st_header.HeaderError as e:
                raise _corrupt(path, str(e)) from None
            available = host_available_bytes()
            if available is not None and size > available:
                raise CheckpointError(
                    f"{path}: {size / 1e9:.1f} GB, more than the {available / 1e9:.1f} GB of memory available")
            f.seek(0)
            blob = f.read(size)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e.strerror or e}") from None
    metadata = _checked_metadata(header, path)
    try:
        tensors = st_load(blob)
    except (SafetensorError, ValueError, TypeError, OverflowError, RuntimeError) as e:
        raise CheckpointError(
            f"{path}: not a readable safetensors checkpoint (corrupt or truncated: {_short(e)}); "
            f"resume from another file in {path.parent}") from None
    return tensors, metadata


def _corrupt(path: Path, what: str) -> CheckpointError:
    return CheckpointError(
        f"{path}: not a readable safetensors checkpoint (corrupt or truncated: {what}); "
        f"resume from another file in {path.parent}")


def _checked_metadata(header: dict, path: Path) -> dict[str, str]:
    try:
        metadata = st_header.gantui_metadata(header)
    except st_header.NotGantui as e:
        raise CheckpointError(f"{path}: {e}") from None
    except st_header.HeaderError as e:
        raise _corrupt(path, str(e)) from None
    if metadata["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {_show(metadata['format_version'])} is not supported by gantui "
            f"{__version__} (expects format {FORMAT_VERSION})")
    return metadata


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:160]


def _show(value, width: int = 40) -> str:
    return config_mod.show(value, width)


# --- metadata: every field parsed and checked ------------------------------------------------

@dataclass(frozen=True)
class Meta:
    """A checkpoint's metadata, parsed and cross-checked (config against data_info)."""
    step: int
    config: config_mod.Config
    info: Any                  # gantui.data.DataInfo
    state: dict                # {"base_lr": {"g": float, "d": float}, "n_critic": int}; {} when absent
    version: str


def step_of(metadata: dict[str, str], path: Path | str) -> int:
    """The `step` field: decimal digits, 0 <= step <= 2**62."""
    raw = metadata.get("step")
    step = st_header.parse_step(raw)
    if step is None:
        raise CheckpointError(
            f"{path}: metadata step {_show(raw)} is not a step count (an integer from 0 to 2**62)")
    return step


def config_of(metadata: dict[str, str], path: Path | str) -> config_mod.Config:
    text = metadata.get("config")
    if not isinstance(text, str) or len(text) > MAX_CONFIG_CHARS:
        raise CheckpointError(f"{path}: the embedded config is missing or longer than {MAX_CONFIG_CHARS} characters")
    try:
        return config_mod.loads(text, source=f"{path} (embedded config)")
    except ConfigError as e:
        raise CheckpointError(str(e)) from None


def _json_field(metadata: dict[str, str], key: str, path: Path | str, default=None):
    raw = metadata.get(key)
    if raw is None:
        return default
    if len(raw) > MAX_JSON_CHARS:
        raise CheckpointError(f"{path}: metadata {key} is longer than {MAX_JSON_CHARS} characters")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise CheckpointError(f"{path}: metadata {key} is not valid JSON ({_show(raw)})") from None


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def data_info_of(metadata: dict[str, str], path: Path | str = "checkpoint"):
    """The `data_info` field as a DataInfo: a complete, typed JSON object describing a data set gantui has."""
    from gantui.data import DataInfo

    raw = _json_field(metadata, "data_info", path)
    bad = f"{path}: metadata data_info"
    if not isinstance(raw, dict):
        raise CheckpointError(f"{bad} is missing or not a JSON object")
    missing = [k for k in ("name", "shape", "n_classes", "is_toy") if k not in raw]
    if missing:
        raise CheckpointError(f"{bad} lacks {', '.join(missing)}")
    name, shape, n_classes, is_toy = raw["name"], raw["shape"], raw["n_classes"], raw["is_toy"]
    if name not in config_mod.DATASETS:
        raise CheckpointError(f"{bad} name {_show(name)} is not a data set gantui knows")
    if not isinstance(is_toy, bool) or is_toy != (name in config_mod.TOY_DATASETS):
        raise CheckpointError(f"{bad} is_toy {_show(is_toy)} does not fit data set {name!r}")
    # folders (class subfolders) and data.dataset sets carry their own number of classes
    own_classes = name in ("folder", "dataset") and _is_int(n_classes) and 0 <= n_classes <= limits.MAX_CLASSES
    if not own_classes and (not _is_int(n_classes) or n_classes != N_CLASSES.get(name, 0)):
        raise CheckpointError(f"{bad} n_classes {_show(n_classes)} does not fit data set {name!r}")
    ok_shape = isinstance(shape, list) and all(_is_int(s) for s in shape)
    if ok_shape and is_toy:
        ok_shape = shape == [TOY_DIMS[name]]
    elif ok_shape:
        ok_shape = len(shape) == 3 and shape[0] in (1, 3) and shape[1] == shape[2] and shape[1] in config_mod.IMAGE_SIZES
    if not ok_shape:
        raise CheckpointError(f"{bad} shape {_show(shape)} is not a shape gantui trains on for {name!r}")
    return DataInfo(name=name, shape=tuple(shape), n_classes=n_classes, is_toy=is_toy)


def _state_of(metadata: dict[str, str], path: Path | str) -> dict:
    state = _json_field(metadata, "state", path, default={})
    bad = f"{path}: metadata state"
    if not isinstance(state, dict):
        raise CheckpointError(f"{bad} is not a JSON object")
    if "base_lr" in state:
        lr = state["base_lr"]
        if not isinstance(lr, dict) or not all(
                isinstance(lr.get(k), (int, float)) and not isinstance(lr.get(k), bool)
                and math.isfinite(lr[k]) and lr[k] > 0 for k in ("g", "d")):
            raise CheckpointError(f"{bad} base_lr {_show(lr)} is not two learning rates > 0 (g, d)")
    if "n_critic" in state:
        n = state["n_critic"]
        if not _is_int(n) or not 1 <= n <= limits.MAX_N_CRITIC:
            raise CheckpointError(f"{bad} n_critic {_show(n)} is not an integer from 1 to {limits.MAX_N_CRITIC}")
    if "live" in state:  # loss settings an alert's fix changed while the run trained
        live = state["live"]
        ok = isinstance(live, dict) and all(
            k in ("loss.label_smoothing", "loss.instance_noise", "loss.gp_lambda", "data.augment_p",
                  "data.augment_target")
            and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
            and (k != "loss.label_smoothing" or v < 1) and (not k.startswith("data.") or v <= 1)
            for k, v in live.items())
        if not ok:
            raise CheckpointError(f"{bad} live {_show(live)} is not a set of live loss settings")
    if "critic_done" in state:  # critic updates of the next step already applied (a stop mid-step)
        n = state["critic_done"]
        if not _is_int(n) or not 0 <= n < limits.MAX_N_CRITIC:
            raise CheckpointError(f"{bad} critic_done {_show(n)} is not an integer from 0 to {limits.MAX_N_CRITIC - 1}")
    return state


def cross_check(cfg: config_mod.Config, info, path: Path | str) -> None:
    """The embedded config must describe the data set `data_info` names, at the size of its tensors."""
    d = cfg.data
    if d.name != info.name:
        raise CheckpointError(
            f"{path}: the embedded config trains on {d.name!r} but data_info says {info.name!r}; "
            f"the checkpoint was altered or is damaged")
    if not info.is_toy:
        c, h, _ = info.shape
        if h != d.image_size:
            raise CheckpointError(
                f"{path}: the embedded config has [data] image_size = {d.image_size} but the checkpoint's data "
                f"is {h}x{h} px; the checkpoint was altered or is damaged")
        known = SET_CHANNELS.get(d.name) or d.channels
        if known and c != known:
            raise CheckpointError(
                f"{path}: the embedded config's data has {known} channel(s) but data_info says {c}")


def parse_meta(metadata: dict[str, str], path: Path | str) -> Meta:
    """Every metadata field a loader needs, parsed, range-checked and cross-checked; CheckpointError else."""
    version = metadata.get("gantui_version", "")
    if len(version) > 64:
        raise CheckpointError(f"{path}: metadata gantui_version is not a version ({_show(version)})")
    if metadata.get("source") == "track":  # written by gantui.track (docs/checkpoints.md)
        raise CheckpointError(f"{path}: a checkpoint of your own training loop (gantui.track): continue it from "
                              f"your script with gantui.track(..., resume=True); --resume takes runs of a preset")
    step = step_of(metadata, path)
    cfg = config_of(metadata, path)
    info = data_info_of(metadata, path)
    cross_check(cfg, info, path)
    return Meta(step=step, config=cfg, info=info, state=_state_of(metadata, path), version=version)


# --- state <-> flat tensors -------------------------------------------------------------

def flatten_module(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


def flatten_optimizer(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], str]:
    """Optimiser state tensors under `prefix.state.<param index>.<name>`; param groups as JSON."""
    sd = optimizer.state_dict()
    tensors = {}
    for idx, entry in sd["state"].items():
        for name, value in entry.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{prefix}.state.{idx}.{name}"] = t
    return tensors, json.dumps(sd["param_groups"])


def check_tensor(name: str, got: torch.Tensor, shape, dtype: torch.dtype, path: Path | str,
                 what: str = "this config builds") -> None:
    """Refuse a tensor whose shape or dtype differs from what it is loaded into (an int8 weight would be
    silently cast), or a floating tensor holding NaN/Inf (gantui never saves one: it is damage)."""
    if tuple(got.shape) != tuple(shape):
        raise CheckpointError(
            f"{path}: tensor {name} has shape {list(got.shape)} but {what} {list(shape)} "
            f"(check [model] and [data] against the run's config.toml)")
    if got.dtype != dtype:
        raise CheckpointError(
            f"{path}: tensor {name} has dtype {str(got.dtype).removeprefix('torch.')} but {what} "
            f"{str(dtype).removeprefix('torch.')}; the checkpoint was altered or is damaged")
    if got.is_floating_point() and got.numel() and not bool(torch.isfinite(got).all()):
        raise CheckpointError(f"{path}: tensor {name} holds NaN or Inf values; the checkpoint is damaged")


def take_module(prefix: str, tensors: dict[str, torch.Tensor], module: torch.nn.Module, path: Path) -> None:
    """Load `prefix.*` into module, refusing any missing, extra, differently shaped or typed tensor by name."""
    expected = module.state_dict()
    head = prefix + "."
    found = {k[len(head):]: v for k, v in tensors.items() if k.startswith(head)}
    for name, want in expected.items():
        if name not in found:
            raise CheckpointError(
                f"{path}: tensor {head}{name} is missing: the checkpoint was made with a different model "
                f"than this config builds (check [model] and [data] against the run's config.toml)")
        check_tensor(head + name, found[name], want.shape, want.dtype, path)
    extra = sorted(set(found) - set(expected))
    if extra:
        raise CheckpointError(
            f"{path}: tensor {head}{extra[0]} is not in the model this config builds "
            f"(check [model] and [data] against the run's config.toml)")
    module.load_state_dict({k: found[k] for k in expected}, strict=True)


# --- optimiser state, checked against the live optimiser ---------------------------------------

def _probe_state(optimizer: torch.optim.Optimizer) -> dict[str, bool]:
    """The per-parameter state `optimizer` keeps, {name: is_scalar}, read from one step of a twin
    optimiser (same class and settings) on a throwaway parameter: exact for any optimiser and option
    (Adam's amsgrad adds max_exp_avg_sq, RMSprop's momentum adds momentum_buffer)."""
    p = torch.zeros(2, requires_grad=True)
    defaults = {k: v for k, v in optimizer.defaults.items() if k not in ("fused", "capturable", "foreach")}
    twin = type(optimizer)([p], **defaults)
    p.grad = torch.zeros(2)
    twin.step()
    return {name: v.dim() == 0 for name, v in twin.state[p].items() if torch.is_tensor(v)}


def _value_fits(saved, live) -> bool:
    """A saved hyper-parameter has the live one's type: numbers finite, switches (foreach, fused:
    None or a bool) either, lists as long as the live tuple (betas)."""
    if live is None or isinstance(live, bool):
        return saved is None or isinstance(saved, bool)
    if isinstance(live, (int, float)):
        return isinstance(saved, (int, float)) and not isinstance(saved, bool) and math.isfinite(saved)
    if isinstance(live, (tuple, list)):
        return isinstance(saved, list) and len(saved) == len(live) and all(_value_fits(a, b) for a, b in zip(saved, live))
    if isinstance(live, str):
        return isinstance(saved, str)
    return False


def check_optimizer_state(prefix: str, tensors: dict[str, torch.Tensor], meta: dict[str, str],
                          optimizer: torch.optim.Optimizer, path: Path | str,
                          allow_fresh: bool = False) -> dict[str, Any] | None:
    """The state dict to give `optimizer.load_state_dict`, checked against the live optimiser: param
    groups (count, sizes, hyper-parameter names and types), state names (an Adam state under RMSprop is
    named, not a KeyError), dtypes and shapes per parameter. A checkpoint without optimiser state is
    refused, since the resume would not be exact; `allow_fresh=True` returns None instead (the caller
    keeps the fresh optimiser and says so)."""
    kind = type(optimizer).__name__
    head = prefix + ".state."
    entries = {k[len(head):]: v for k, v in tensors.items() if k.startswith(head)}
    groups_key = f"{prefix}.param_groups"
    if not entries and groups_key not in meta:
        if allow_fresh:
            return None
        raise CheckpointError(
            f"{path}: holds no {prefix} optimiser state, so the resume would start a fresh {kind} and not "
            f"continue exactly; resume from a complete checkpoint")
    groups = _json_field(meta, groups_key, path)
    live_groups = optimizer.param_groups
    if not isinstance(groups, list) or len(groups) != len(live_groups) or not all(isinstance(g, dict) for g in groups):
        raise CheckpointError(
            f"{path}: metadata {groups_key} is not {len(live_groups)} parameter group(s) of {kind}")
    params: dict[int, torch.Tensor] = {}
    for i, (saved, live) in enumerate(zip(groups, live_groups)):
        ids = saved.get("params")
        if not isinstance(ids, list) or len(ids) != len(live["params"]) or not all(_is_int(x) for x in ids):
            raise CheckpointError(
                f"{path}: {groups_key}[{i}] holds {_show(ids)} parameters but this config's model has "
                f"{len(live['params'])}; check [model] against the run's config.toml")
        for key in sorted(set(live) - {"params"}):
            if key not in saved:
                raise CheckpointError(
                    f"{path}: {groups_key}[{i}] lacks {key!r}, a setting of {kind}: the checkpoint was made "
                    f"with another optimiser; resume with the [optim] name the run was started with")
            if not _value_fits(saved[key], live[key]):
                raise CheckpointError(f"{path}: {groups_key}[{i}] {key} = {_show(saved[key])} does not fit {kind}")
        extra = sorted(set(saved) - set(live))
        if extra:
            raise CheckpointError(
                f"{path}: {groups_key}[{i}] has {extra[0]!r}, not a setting of {kind}: the checkpoint was made "
                f"with another optimiser; resume with the [optim] name the run was started with")
        for idx, p in zip(ids, live["params"]):
            if idx in params:
                raise CheckpointError(f"{path}: {groups_key} names parameter {idx} twice")
            params[idx] = p
    names = _probe_state(optimizer)
    state: dict[int, dict[str, torch.Tensor]] = {}
    def order(key: str):  # parameter order, so the first problem named is the first in the model
        idx = key.partition(".")[0]
        return (int(idx) if idx.isdigit() and len(idx) < 10 else 1 << 62, key)

    for key in sorted(entries, key=order):
        value = entries[key]
        idx_text, _, name = key.partition(".")
        full = head + key
        if not idx_text.isascii() or not idx_text.isdigit() or len(idx_text) > 9 or int(idx_text) not in params:
            raise CheckpointError(f"{path}: tensor {full} names no parameter of this config's model")
        if name not in names:
            raise CheckpointError(
                f"{path}: tensor {full} is not state of {kind} (which keeps {', '.join(sorted(names))}): the "
                f"checkpoint was made with another optimiser; resume with the [optim] name the run was started with")
        p = params[int(idx_text)]
        shape = () if names[name] else p.shape
        check_tensor(full, value, shape, torch.float32 if names[name] else p.dtype, path, f"{kind} keeps")
        state.setdefault(int(idx_text), {})[name] = value
    for idx, entry in state.items():
        lacking = sorted(set(names) - set(entry))
        if lacking:
            raise CheckpointError(f"{path}: tensor {head}{idx}.{lacking[0]} is missing ({kind} state)")
    if not state and not allow_fresh:
        raise CheckpointError(
            f"{path}: holds no {prefix} optimiser state, so the resume would start a fresh {kind} and not "
            f"continue exactly; resume from a complete checkpoint")
    return {"state": state, "param_groups": groups}


def load_optimizer(prefix: str, tensors: dict[str, torch.Tensor], meta: dict[str, str],
                   optimizer: torch.optim.Optimizer, path: Path | str, allow_fresh: bool = False) -> bool:
    """check_optimizer_state, then load it. True when loaded; False when absent and allow_fresh."""
    sd = check_optimizer_state(prefix, tensors, meta, optimizer, path, allow_fresh)
    if sd is None:
        return False
    try:
        optimizer.load_state_dict(sd)
    except (KeyError, ValueError, RuntimeError, TypeError) as e:
        raise CheckpointError(f"{path}: {prefix} optimiser state does not load: {_short(e)}") from None
    return True


def check_rng(tensors: dict[str, torch.Tensor], path: Path | str) -> None:
    """rng.cpu must be the CPU generator's state (uint8, its exact length); rng.cuda, if there, uint8 1-D."""
    got = tensors.get("rng.cpu")
    if got is None:
        raise CheckpointError(f"{path}: tensor rng.cpu is missing, so the resume would not be exact")
    check_tensor("rng.cpu", got, torch.get_rng_state().shape, torch.uint8, path, "the CPU generator's state is")
    cuda = tensors.get("rng.cuda")
    if cuda is not None and (cuda.dtype != torch.uint8 or cuda.dim() != 1 or cuda.numel() > 1 << 20):
        raise CheckpointError(f"{path}: tensor rng.cuda is not a CUDA generator state (uint8, 1-D)")


def check_scalers(tensors: dict[str, torch.Tensor], path: Path | str) -> None:
    """fp16 loss scales, when present: scalar float32, finite and > 0; growth trackers: int64 >= 0."""
    for key in ("scaler_g.scale", "scaler_d.scale"):
        t = tensors.get(key)
        if t is None:
            continue
        check_tensor(key, t, (), torch.float32, path, "a loss scale is")
        if not float(t) > 0:
            raise CheckpointError(f"{path}: tensor {key} is {float(t)}, not a loss scale > 0")
    for key in ("scaler_g.growth_tracker", "scaler_d.growth_tracker"):
        t = tensors.get(key)
        if t is None:
            continue
        check_tensor(key, t, (), torch.int64, path, "a growth tracker is")
        if int(t) < 0:
            raise CheckpointError(f"{path}: tensor {key} is {int(t)}, not a count >= 0")


def check_same_data(saved_info, live_info, path: Path | str) -> None:
    """A resume must train on the data the checkpoint was trained on (same set, shape and classes)."""
    if (saved_info.name, tuple(saved_info.shape), saved_info.n_classes) != \
            (live_info.name, tuple(live_info.shape), live_info.n_classes):
        raise CheckpointError(
            f"{path}: trained on {saved_info.name} {tuple(saved_info.shape)} but this config loads "
            f"{live_info.name} {tuple(live_info.shape)}; resume with the preset the run was started with")


def check_fixed(tensors: dict[str, torch.Tensor], cfg: config_mod.Config, info, latent_dim: int,
                path: Path | str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """fixed.z (log.n_samples, latent) float32 and, for labelled data, fixed.y (log.n_samples,) int64
    holding valid class indices."""
    n = cfg.log.n_samples
    z = tensors.get("fixed.z")
    if z is None:
        raise CheckpointError(f"{path}: tensor fixed.z (the fixed noise batch) is missing")
    check_tensor("fixed.z", z, (n, latent_dim), torch.float32, path, "the embedded config gives")
    y = tensors.get("fixed.y")
    if info.n_classes:
        if y is None:
            raise CheckpointError(f"{path}: tensor fixed.y (the fixed labels) is missing")
        check_tensor("fixed.y", y, (n,), torch.int64, path, "the embedded config gives")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= info.n_classes):
            raise CheckpointError(f"{path}: tensor fixed.y holds labels outside 0..{info.n_classes - 1}")
    else:
        y = None
    return z, y


# --- sampling from a checkpoint ---------------------------------------------------------

def local_data_config(data_cfg: config_mod.DataConfig, data_root: str | None) -> config_mod.DataConfig:
    """The checkpoint's data set, located where the user says: `data_root`, else the default `data/`.
    A checkpoint's own root and download flag are never followed: a stranger's file must not make
    `eval` read an arbitrary directory or download into one. A `folder` set has no default."""
    if data_cfg.name == "folder" and data_root is None:
        raise DataError(
            "the checkpoint was trained on an image folder; give --data-root DIR naming the folder of real "
            "images to compare with (the checkpoint's own path is not used)")
    root = data_root if data_root is not None else config_mod.DataConfig().root
    return dataclasses.replace(data_cfg, root=root, download=False)


@dataclass
class LoadedGenerator:
    generator: torch.nn.Module   # eval mode; EMA weights when the checkpoint has them
    config: config_mod.Config    # the embedded config; its data location is not to be followed
    info: Any                    # gantui.data.DataInfo
    step: int
    fixed_z: torch.Tensor
    fixed_y: torch.Tensor | None
    uses_ema: bool
    path: Path

    def load_dataset(self, device: torch.device | str = "cpu", data_root: str | None = None):
        """The real data set, from `data_root` (the user's), never from the checkpoint's own path."""
        from gantui.data import load_dataset
        return load_dataset(local_data_config(self.config.data, data_root), torch.device(device),
                            self.config.run.seed)

    @torch.no_grad()
    def sample(self, n: int, seed: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor | None]:
        """n samples from a private RNG (the global one is left alone). Labels cycle through classes."""
        gen = torch.Generator(device="cpu").manual_seed(seed)
        z = torch.randn(n, self.generator.latent_dim, generator=gen).to(device)
        y = None
        if self.info.n_classes:
            y = (torch.arange(n) % self.info.n_classes).to(device)
        out = []
        for i in range(0, n, 1024):
            out.append(self.generator(z[i:i + 1024], None if y is None else y[i:i + 1024]).float())
        return torch.cat(out), y


def load_generator(path_or_run_dir: str | Path, device: str | torch.device = "cpu", *,
                   trust_code: bool = False, command: str = "eval") -> LoadedGenerator:
    """The generator a checkpoint holds. A checkpoint that names code (your own models or data set)
    is refused unless `trust_code` (gantui.usercode): nothing is imported before that check."""
    from gantui import models, usercode

    path = resolve(path_or_run_dir)
    tensors, metadata = read(path)
    if metadata.get("source") == "track":
        return _load_tracked(path, tensors, metadata, device, trust_code, command)
    meta = parse_meta(metadata, path)
    cfg, info = meta.config, meta.info
    usercode.refuse_untrusted(cfg, trust_code, str(path), command)
    # The embedded config decides the model's size; the file's own tensors bound it, so a tampered
    # config cannot make this allocate more than the file holds (BatchNorm counters aside).
    g_params, _, d_params, _ = model_counts(cfg, info.shape)
    held = sum(t.numel() for t in tensors.values())
    if g_params + d_params > held and not cfg.model.custom:
        raise CheckpointError(
            f"{path}: the embedded config builds {g_params + d_params:,} weights but the file holds "
            f"{held:,} values; the checkpoint was altered or is damaged")
    try:
        generator, _ = models.build(cfg, info)
    except ConfigError as e:
        raise CheckpointError(f"{path}: the embedded config does not build a model: {e}") from None
    uses_ema = any(k.startswith("generator_ema.") for k in tensors)
    take_module("generator_ema" if uses_ema else "generator", tensors, generator, path)
    fixed_z, fixed_y = check_fixed(tensors, cfg, info, generator.latent_dim, path)
    generator.to(device).eval()
    return LoadedGenerator(
        generator=generator, config=cfg, info=info, step=meta.step,
        fixed_z=fixed_z.to(device), fixed_y=None if fixed_y is None else fixed_y.to(device),
        uses_ema=uses_ema, path=path)


def _load_tracked(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str],
                  device: str | torch.device, trust_code: bool, command: str) -> LoadedGenerator:
    """The generator of your own loop's checkpoint (gantui.track), rebuilt from the class recorded at
    track time (`type(G).__module__:__qualname__`) called with the `generator_args` given to track, its
    `generator.*` tensors loaded; imported only with --trust-code. A class defined in the script itself
    (`__main__`) cannot be imported by anyone else: one line says so."""
    from gantui import usercode
    from gantui.models.custom import UserGenerator

    modules = _json_field(metadata, "modules", path, default={})
    spec = modules.get("G") if isinstance(modules, dict) else None
    if not isinstance(spec, str) or not any(k.startswith("generator.") for k in tensors):
        raise CheckpointError(f"{path}: a checkpoint of your own training loop (gantui.track) without a "
                              f"generator: gantui.track was given no G")
    module, _, qualname = spec.partition(":")
    if module == "__main__" or "<locals>" in qualname:
        where = "in the script itself (__main__)" if module == "__main__" else f"inside a function ({qualname})"
        raise CheckpointError(
            f"{path}: a checkpoint of your own training loop (gantui.track) whose generator class "
            f"{qualname.split('.')[-1]} was defined {where}, so gantui cannot import "
            f"it to rebuild G; move the class into a module your script imports (e.g. models.py) and train "
            f"again, or load the checkpoint's generator.* tensors into your class (gantui.checkpoint.read)")
    if usercode.check_spec(spec) is not None:
        raise CheckpointError(f"{path}: metadata modules G {_show(spec)} is not an import path")
    if "data_info" not in metadata:
        raise CheckpointError(f"{path}: a checkpoint of your own training loop (gantui.track) whose G does not draw "
                              f"images gantui evaluates (square, 1 or 3 channels, 28, 32 or 64 px), or from an older "
                              f"gantui: load its generator.* tensors into your class (gantui.checkpoint.read)")
    usercode.refuse_untrusted_paths([spec], trust_code, str(path), command)
    step = step_of(metadata, path)
    cfg = config_of(metadata, path)
    info = data_info_of(metadata, path)
    latent = _json_field(metadata, "latent", path, default={})
    dim, shape = (latent.get("dim"), latent.get("shape")) if isinstance(latent, dict) else (None, None)
    if not _is_int(dim) or not 0 < dim <= limits.MAX_LATENT or shape not in ("flat", "spatial"):
        raise CheckpointError(f"{path}: metadata latent {_show(latent)} is not a latent size and shape")
    args = _json_field(metadata, "generator_args", path, default={})
    if not isinstance(args, dict):
        raise CheckpointError(f"{path}: metadata generator_args {_show(args)} is not a JSON object")
    net = usercode.call(spec, "the tracked run's G", args, "gantui.track(generator_args=...)")
    if not isinstance(net, torch.nn.Module):
        raise CheckpointError(f"{path}: {spec} built a {type(net).__name__}, not a torch.nn.Module")
    take_module("generator", tensors, net, path)
    generator = UserGenerator(net, dim, info.n_classes, spatial=shape == "spatial", where=spec)
    z = tensors.get("fixed.z")
    if z is None or z.dim() not in (2, 4) or z.shape[1] != dim or z.dtype != torch.float32:
        gen = torch.Generator().manual_seed(cfg.run.seed + 1)
        z = torch.randn(16, dim, generator=gen)
    z = z.reshape(z.shape[0], dim)
    fixed_y = (torch.arange(len(z)) % info.n_classes) if info.n_classes else None
    generator.to(device).eval()
    return LoadedGenerator(generator=generator, config=cfg, info=info, step=step, fixed_z=z.to(device),
                           fixed_y=None if fixed_y is None else fixed_y.to(device), uses_ema=False, path=path)
