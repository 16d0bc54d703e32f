"""Safetensors checkpoints: atomic save, safe load, resume, and the generator for sampling.

One file holds everything needed to resume exactly (DESIGN's checkpoint contract):
tensors `generator.*`, `discriminator.*`, `generator_ema.*`, `optim_g.*`, `optim_d.*`,
`rng.*`, `fixed.*`; string metadata `gantui_version`, `step`, `config`, `format_version`
and a few more (`state`: JSON of the trainer's runtime settings, optimiser param groups).

Never pickle: opening a stranger's checkpoint must not be able to run code.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from gantui import __version__
from gantui import config as config_mod
from gantui.errors import CheckpointError, ConfigError

FORMAT_VERSION = "1"
REQUIRED_METADATA = ("gantui_version", "step", "config", "format_version")


# --- files -------------------------------------------------------------------------------

def save(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`.

    A crash at any point leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    blob = st_save(cpu, metadata={k: str(v) for k, v in metadata.items()})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def resolve(path_or_run_dir: str | Path) -> Path:
    """A checkpoint file, or a run directory (its checkpoints/latest.safetensors)."""
    p = Path(path_or_run_dir)
    if p.is_dir():
        for candidate in (p / "checkpoints" / "latest.safetensors", p / "latest.safetensors"):
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"{p}: no checkpoints/latest.safetensors in this run directory")
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint file or run directory")
    return p


def read(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a gantui checkpoint; CheckpointError for anything else."""
    path = resolve(path)
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e.strerror}") from None
    try:
        tensors = st_load(blob)
        metadata = _header_metadata(blob)
    except (SafetensorError, ValueError, json.JSONDecodeError, UnicodeDecodeError, OverflowError) as e:
        raise CheckpointError(
            f"{path}: not a readable safetensors checkpoint (corrupt or truncated: {_short(e)}); "
            f"resume from another file in {path.parent}") from None
    missing = [k for k in REQUIRED_METADATA if k not in metadata]
    if missing:
        raise CheckpointError(f"{path}: not a gantui checkpoint (metadata lacks {', '.join(missing)})")
    if metadata["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {metadata['format_version']} is not supported by gantui "
            f"{__version__} (expects format {FORMAT_VERSION})")
    return tensors, metadata


def _header_metadata(blob: bytes) -> dict[str, str]:
    # The safetensors header is 8 little-endian bytes of length, then JSON; metadata under "__metadata__".
    n = int.from_bytes(blob[:8], "little")
    if n <= 0 or 8 + n > len(blob):
        raise ValueError("header length out of range")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    return dict(header.get("__metadata__") or {})


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:160]


def config_of(metadata: dict[str, str], path: Path | str) -> config_mod.Config:
    try:
        return config_mod.loads(metadata["config"], source=f"{path} (embedded config)")
    except ConfigError as e:
        raise CheckpointError(str(e)) from None


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


def unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], groups_json: str) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    head = prefix + ".state."
    for key, value in tensors.items():
        if key.startswith(head):
            idx, name = key[len(head):].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": json.loads(groups_json)}


def take_module(prefix: str, tensors: dict[str, torch.Tensor], module: torch.nn.Module, path: Path) -> None:
    """Load `prefix.*` into module, refusing any missing, extra or differently shaped tensor by name."""
    expected = module.state_dict()
    head = prefix + "."
    found = {k[len(head):]: v for k, v in tensors.items() if k.startswith(head)}
    for name, want in expected.items():
        if name not in found:
            raise CheckpointError(
                f"{path}: tensor {head}{name} is missing: the checkpoint was made with a different model "
                f"than this config builds (check [model] and [data] against the run's config.toml)")
        got = found[name]
        if tuple(got.shape) != tuple(want.shape):
            raise CheckpointError(
                f"{path}: tensor {head}{name} has shape {list(got.shape)} but this config builds "
                f"{list(want.shape)} (check [model] and [data] against the run's config.toml)")
    extra = sorted(set(found) - set(expected))
    if extra:
        raise CheckpointError(
            f"{path}: tensor {head}{extra[0]} is not in the model this config builds "
            f"(check [model] and [data] against the run's config.toml)")
    module.load_state_dict({k: found[k] for k in expected}, strict=True)


# --- sampling from a checkpoint ---------------------------------------------------------

@dataclass
class LoadedGenerator:
    generator: torch.nn.Module   # eval mode; EMA weights when the checkpoint has them
    config: config_mod.Config
    info: Any                    # gantui.data.DataInfo
    step: int
    fixed_z: torch.Tensor
    fixed_y: torch.Tensor | None
    uses_ema: bool
    path: Path

    def load_dataset(self, device: torch.device | str = "cpu"):
        from gantui.data import load_dataset
        return load_dataset(self.config.data, torch.device(device), self.config.run.seed)

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


def data_info_of(metadata: dict[str, str]):
    from gantui.data import DataInfo
    raw = json.loads(metadata.get("data_info", "{}"))
    if not raw:
        raise CheckpointError("checkpoint lacks data_info metadata")
    return DataInfo(name=raw["name"], shape=tuple(raw["shape"]), n_classes=int(raw["n_classes"]),
                    is_toy=bool(raw["is_toy"]))


def load_generator(path_or_run_dir: str | Path, device: str | torch.device = "cpu") -> LoadedGenerator:
    from gantui import models

    path = resolve(path_or_run_dir)
    tensors, metadata = read(path)
    cfg = config_of(metadata, path)
    info = data_info_of(metadata)
    generator, _ = models.build(cfg, info)
    uses_ema = any(k.startswith("generator_ema.") for k in tensors)
    take_module("generator_ema" if uses_ema else "generator", tensors, generator, path)
    generator.to(device).eval()
    fixed_y = tensors.get("fixed.y")
    return LoadedGenerator(
        generator=generator, config=cfg, info=info, step=int(metadata["step"]),
        fixed_z=tensors["fixed.z"].to(device), fixed_y=None if fixed_y is None else fixed_y.to(device),
        uses_ema=uses_ema, path=path)
