"""Preset TOML -> frozen, validated config.

The schema is the dataclasses below: a field's type is the type a preset must give, and
its `check` metadata the allowed values. Unknown keys, wrong types and out-of-range values
raise ConfigError naming the file, the dotted key and what is expected, so the CLI can
print one line and exit 2. `--set section.key=value` overrides go through the same checks.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gantui.diagnostics import Thresholds
from gantui.errors import ConfigError


def _presets_dir() -> Path:
    """The bundled presets: gantui/presets/ in an installed wheel, else the checkout's top-level presets/
    (one folder in the repository; pyproject's package-dir ships it as gantui/presets)."""
    here = Path(__file__).resolve().parent
    return here / "presets" if (here / "presets").is_dir() else here.parent / "presets"


PRESETS_DIR = _presets_dir()

DATASETS = ("digits", "ring8", "grid25", "mixture1d", "mnist", "fashion_mnist", "cifar10", "folder")
TOY_DATASETS = ("ring8", "grid25", "mixture1d")
LOSSES = ("ns", "minimax", "wgan", "wgan_gp", "lsgan", "hinge")
CRITIC_LOSSES = ("wgan", "wgan_gp")


# --- checks: each returns None when fine, else the words "expected ..." -------------------

def one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(v):
        return None if v in choices else "one of " + ", ".join(repr(c) for c in choices)
    return check


def positive(v) -> str | None:
    return None if v > 0 else "a number > 0"


def non_negative(v) -> str | None:
    return None if v >= 0 else "a number >= 0"


def unit_interval(v) -> str | None:
    return None if 0 <= v < 1 else "a number in [0, 1)"


def at_least(n: int) -> Callable[[Any], str | None]:
    def check(v):
        return None if v >= n else f"an integer >= {n}"
    return check


def betas(v) -> str | None:
    ok = len(v) == 2 and all(0 <= b < 1 for b in v)
    return None if ok else "two numbers in [0, 1), e.g. [0.5, 0.999]"


def image_size(v) -> str | None:
    return None if v in (28, 32, 64) else "one of 28, 32, 64"


def _f(default, check=None, doc=""):
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: default, metadata={"check": check, "doc": doc})
    return field(default=default, metadata={"check": check, "doc": doc})


@dataclass(frozen=True)
class RunConfig:
    name: str = _f("gantui")
    description: str = _f("")
    seed: int = _f(0, non_negative)
    steps: int = _f(20000, at_least(1), "total G steps; --steps overrides; resume continues to it")
    device: str = _f("auto", one_of("auto", "cpu", "cuda"))
    precision: str = _f("fp32", one_of("fp32", "bf16", "fp16"))
    compile: bool = _f(False, None, "torch.compile G and D (not with wgan_gp or R1: double backward)")


@dataclass(frozen=True)
class DataConfig:
    name: str = _f("digits", one_of(*DATASETS))
    batch_size: int = _f(64, at_least(1))
    image_size: int = _f(28, image_size)
    root: str = _f("data", None, "where torchvision sets and image folders live")
    download: bool = _f(True)
    n_samples: int = _f(60000, at_least(10), "digits: how many images to draw")
    modes: int = _f(2, at_least(1), "mixture1d: number of bumps")
    channels: int = _f(0, non_negative, "folder: 1 or 3 to force; 0 keeps the files' own")


@dataclass(frozen=True)
class ModelConfig:
    arch: str = _f("dcgan", one_of("mlp", "dcgan", "conditional"))
    latent_dim: int = _f(64, at_least(1))
    g_width: int = _f(64, at_least(1))
    d_width: int = _f(64, at_least(1))
    g_depth: int = _f(3, at_least(1), "mlp: hidden layers")
    d_depth: int = _f(3, at_least(1), "mlp: hidden layers")
    spectral_norm: bool = _f(False)
    batch_norm_d: bool = _f(False, None, "BatchNorm in D (never with gradient penalty)")
    dropout_d: float = _f(0.0, unit_interval)
    ema: float = _f(0.0, unit_interval, "EMA decay of G weights for sampling; 0 = off")
    sync_bn: bool = _f(False, None, "distributed CUDA runs: BatchNorm statistics over every rank's batch")


@dataclass(frozen=True)
class LossConfig:
    kind: str = _f("wgan_gp", one_of(*LOSSES))
    n_critic: int = _f(1, at_least(1))
    gp_lambda: float = _f(10.0, non_negative)
    r1_gamma: float = _f(0.0, non_negative, "R1 penalty on real data; 0 = off")
    clip: float = _f(0.01, positive, "wgan only")
    label_smoothing: float = _f(0.0, unit_interval, "one-sided: real target = 1 - label_smoothing")


@dataclass(frozen=True)
class OptimConfig:
    name: str = _f("adam", one_of("adam", "rmsprop"))
    g_lr: float = _f(1e-4, positive)
    d_lr: float = _f(1e-4, positive)
    betas: list = _f([0.5, 0.999], betas)
    lr_decay: str = _f("none", one_of("none", "linear"), "linear: decay both rates to zero at decay_steps")
    decay_steps: int = _f(0, non_negative, "horizon of the decay; 0 = run.steps (then --steps changes the schedule)")


@dataclass(frozen=True)
class LogConfig:
    every: int = _f(10, at_least(1))
    sample_every: int = _f(250, at_least(1))
    checkpoint_every: int = _f(1000, at_least(1))
    keep: int = _f(3, non_negative)
    n_samples: int = _f(64, at_least(1), "size of the fixed-noise sample batch")
    eval_every: int = _f(500, non_negative, "steps between live quality measurements (FID/KID, modes); 0 = off")
    tensorboard: bool = _f(False, None, "also write TensorBoard event files to <run-dir>/tensorboard/ while training")


@dataclass(frozen=True)
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    log: LogConfig = field(default_factory=LogConfig)
    diagnostics: Thresholds = field(default_factory=Thresholds)

    @property
    def is_toy(self) -> bool:
        return self.data.name in TOY_DATASETS

    @property
    def is_critic(self) -> bool:
        return self.loss.kind in CRITIC_LOSSES

    def replace(self, section: str, **changes) -> "Config":
        return dataclasses.replace(self, **{section: dataclasses.replace(getattr(self, section), **changes)})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        return dumps_toml(self.to_dict())


# --- loading -----------------------------------------------------------------------------

def _type_name(tp) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list"}[tp]


def _coerce(value, tp, where: str):
    """Check a TOML value against a field type. Ints are accepted where floats are expected."""
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is list:
        if isinstance(value, list):
            return [float(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in value]
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def _build_section(cls, table: dict, source: str, section: str):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in table.items():
        where = f"{source}: [{section}] {key}"
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{where}: unknown key (known keys: {known})")
        tp = hints[key]
        v = _coerce(value, tp, where)
        check = fields[key].metadata.get("check")
        if check is not None and v is not None:
            problem = check(v)
            if problem:
                raise ConfigError(f"{where}: expected {problem}, got {value!r}")
        values[key] = v
    return cls(**values)


def from_dict(raw: dict, source: str = "<config>") -> Config:
    sections = {f.name: f for f in dataclasses.fields(Config)}
    built = {}
    for name, table in raw.items():
        if name not in sections:
            raise ConfigError(f"{source}: unknown section [{name}] (known: {', '.join(sections)})")
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        built[name] = _build_section(typing.get_type_hints(Config)[name], table, source, name)
    cfg = Config(**built)
    _cross_checks(cfg, source)
    return cfg


def _cross_checks(cfg: Config, source: str) -> None:
    if cfg.data.name in TOY_DATASETS and cfg.model.arch != "mlp":
        raise ConfigError(
            f"{source}: [model] arch: expected 'mlp' for toy data {cfg.data.name!r}, got {cfg.model.arch!r}")
    if cfg.model.arch == "conditional" and cfg.data.name in TOY_DATASETS + ("folder",):
        raise ConfigError(
            f"{source}: [model] arch: 'conditional' needs labelled data (digits, mnist, fashion_mnist, cifar10), "
            f"got [data] name = {cfg.data.name!r}")
    if cfg.loss.kind == "wgan_gp" and cfg.model.batch_norm_d:
        raise ConfigError(f"{source}: [model] batch_norm_d: expected false with the gradient penalty of 'wgan_gp'")
    if cfg.run.compile and (cfg.loss.kind == "wgan_gp" or cfg.loss.r1_gamma > 0):
        penalty = "the gradient penalty of 'wgan_gp'" if cfg.loss.kind == "wgan_gp" else "the R1 penalty"
        raise ConfigError(f"{source}: [run] compile: torch.compile cannot compile the double backward of "
                          f"{penalty}; set compile = false")


def parse_toml_file(path: Path) -> dict:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such preset file (run `gantui presets` to list the bundled ones)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def parse_override(text: str) -> tuple[str, str, Any]:
    """'data.batch_size=128' -> ('data', 'batch_size', 128). Values are TOML; bare words are strings."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected SECTION.KEY=VALUE, e.g. --set data.batch_size=128")
    key, _, raw = text.partition("=")
    key = key.strip()
    if key.count(".") != 1 or not all(key.split(".")):
        raise ConfigError(f"--set {text!r}: expected SECTION.KEY=VALUE, e.g. --set optim.g_lr=2e-4")
    section, name = key.split(".")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # `--set data.name=ring8` reads better than `data.name='"ring8"'`
    return section, name, value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for text in overrides:
        section, name, value = parse_override(text)
        merged.setdefault(section, {})
        if not isinstance(merged[section], dict):
            raise ConfigError(f"--set {text!r}: [{section}] is not a table")
        merged[section][name] = value
    return merged


def resolve_preset_path(preset: str) -> Path:
    """A path to a TOML file, or the name of a bundled preset (`wgan_gp`)."""
    path = Path(preset)
    if path.suffix == ".toml" or path.exists() or "/" in preset:
        return path
    bundled = PRESETS_DIR / f"{preset}.toml"
    if bundled.exists():
        return bundled
    names = ", ".join(p.stem for p in bundled_presets())
    raise ConfigError(f"{preset}: no such preset file or bundled preset (bundled: {names})")


def load(preset: str | Path, overrides: list[str] | None = None) -> Config:
    path = resolve_preset_path(str(preset))
    raw = parse_toml_file(path)
    raw = apply_overrides(raw, overrides or [])
    return from_dict(raw, source=str(path) if not overrides else f"{path} (with --set)")


def loads(text: str, source: str = "<config>") -> Config:
    try:
        return from_dict(tomllib.loads(text), source)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from None


def bundled_presets() -> list[Path]:
    return sorted(PRESETS_DIR.glob("*.toml"))


def preset_description(path: Path) -> str:
    """The [run] description, read without validating the whole file (for `gantui presets`)."""
    try:
        return str(tomllib.loads(path.read_text()).get("run", {}).get("description", ""))
    except (OSError, tomllib.TOMLDecodeError):
        return "(unreadable)"


# --- writing -----------------------------------------------------------------------------

def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def dumps_toml(tables: dict) -> str:
    """Tables of scalars and lists, which is all a config holds."""
    lines = []
    for section, table in tables.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
        lines.append("")
    return "\n".join(lines)
