"""Preset TOML -> frozen, validated config.

The schema is the dataclasses below: a field's type is the type a preset must give (lists
name their element type: `list[float]`), and its `check` metadata the allowed values. Unknown
keys, wrong types, non-finite floats and out-of-range values raise ConfigError naming the file,
the dotted key and what is expected, so the CLI can print one line and exit 2. Sizes that
become allocations and counts that become loops are bounded above too (gantui.limits says why).
Files must be UTF-8 (UTF-16, Latin-1 and binary files are named as such) and nest no deeper
than tomllib can parse. `--set section.key=value` overrides go through the same checks.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gantui import limits
from gantui.vocab import criteria
from gantui.diagnostics import RULES, Thresholds
from gantui.errors import ConfigError
from gantui.vocab.losses import LOSS_KINDS, PROBABILITY_LOSSES, is_critic


def _presets_dir() -> Path:
    """The bundled presets: gantui/presets/ in an installed wheel, else the checkout's top-level presets/
    (one folder in the repository; pyproject's package-dir ships it as gantui/presets)."""
    here = Path(__file__).resolve().parent
    return here / "presets" if (here / "presets").is_dir() else here.parent / "presets"


PRESETS_DIR = _presets_dir()

DATASETS = ("digits", "ring8", "grid25", "mixture1d", "mnist", "fashion_mnist", "cifar10", "folder", "dataset")
TOY_DATASETS = ("ring8", "grid25", "mixture1d")
IMAGE_SIZES = (28, 32, 64, 128)
BUILTIN_IMAGE_SIZES = (28, 32, 64)   # gantui's own conv models; a user's models may take 128


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


def fraction_at_most(hi: float) -> Callable[[Any], str | None]:
    def check(v) -> str | None:
        return None if 0 <= v <= hi else f"a number in [0, {hi:g}]"
    return check


def open_unit_interval(v) -> str | None:
    return None if 0 < v < 1 else "a number in (0, 1)"


def int_range(lo: int, hi: int) -> Callable[[Any], str | None]:
    """Sizes that become allocations, counts that become loops: bounded above too (see gantui.limits)."""
    def check(v):
        return None if lo <= v <= hi else f"an integer from {lo:,} to {hi:,}"
    return check


def betas(v) -> str | None:
    ok = len(v) == 2 and all(0 <= b < 1 for b in v)
    return None if ok else "two numbers in [0, 1), e.g. [0.5, 0.999]"


def image_size(v) -> str | None:
    return None if v in IMAGE_SIZES else "one of " + ", ".join(map(str, IMAGE_SIZES))


def import_path(v: str) -> str | None:
    from gantui.usercode import check_spec

    return check_spec(v)


def kwargs_table(v: dict) -> str | None:
    for k, x in v.items():
        if not k.isidentifier():
            return "keyword arguments: names that are Python identifiers"
        if isinstance(x, dict):
            return "keyword arguments of numbers, strings, booleans or lists (no nested tables)"
    return None


def channels(v) -> str | None:
    return None if v in (0, 1, 3) else "0 (the files' own), 1 or 3"


def run_name(v: str) -> str | None:
    """A plain file name: the run directory is runs/<name>-<time>, and must stay under runs/."""
    if v in ("", ".", "..") or "/" in v or "\\" in v:
        return "a plain file name (no '/', not '.' or '..'), e.g. \"my-run\""
    if len(v) > limits.MAX_RUN_NAME:
        return f"a name of at most {limits.MAX_RUN_NAME} characters"
    return plain_text(v)


def plain_text(v: str) -> str | None:
    # NUL cannot be in a path (the OS refuses it) and a newline would break one-line messages.
    if any(ord(c) < 32 and c != "\t" for c in v):
        return "text without control characters"
    return None


def _f(default, check=None, doc=""):
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"check": check, "doc": doc})
    return field(default=default, metadata={"check": check, "doc": doc})


@dataclass(frozen=True)
class RunConfig:
    name: str = _f("gantui", run_name, "a plain file name: the run directory is runs/<name>-<time>")
    description: str = _f("", plain_text)
    seed: int = _f(0, int_range(0, limits.MAX_SEED), "0 to 2**63 - 1 (torch seeds are 64-bit)")
    steps: int = _f(20000, int_range(1, limits.MAX_STEPS), "total G steps; --steps overrides; resume continues to it")
    device: str = _f("auto", one_of("auto", "cpu", "cuda"))
    precision: str = _f("fp32", one_of("fp32", "bf16", "fp16"))
    compile: bool = _f(False, None, "torch.compile G and D (not with wgan_gp or R1: double backward)")
    best_by: str = _f("auto", one_of("auto", *criteria.KEYS),
                      "live-quality key that picks checkpoints/best.safetensors; auto = fid (images), mode_score (toy)")


@dataclass(frozen=True)
class DataConfig:
    name: str = _f("digits", one_of(*DATASETS))
    batch_size: int = _f(64, int_range(1, limits.MAX_BATCH))
    image_size: int = _f(28, image_size)
    root: str = _f("data", plain_text, "where torchvision sets and image folders live")
    download: bool = _f(True)
    n_samples: int = _f(60000, int_range(10, limits.MAX_DIGITS), "digits: how many images to draw")
    modes: int = _f(2, int_range(1, limits.MAX_MODES), "mixture1d: number of bumps")
    channels: int = _f(0, channels, "folder: 1 or 3 to force; 0 keeps the files' own")
    labels: str = _f("auto", one_of("auto", "none", "subfolders"),
                     "folder: class subfolders as labels (auto: when every image sits in a class subfolder)")
    dataset: str = _f("", import_path, '"package.module:function" returning a map-style Dataset; "" = off')
    # memorisation (gantui.data.holdout, gantui.augment): the d_overfitting rule and its fix
    holdout: float = _f(0.05, fraction_at_most(0.25),
                        "share of the real images never trained on (at least 64 are held out; off below 256 "
                        "images and for toy data); 0 = off")
    augment: str = _f("none", one_of("none", "diffaugment", "ada"),
                      "augment every image D sees: DiffAugment's colour, translation, cutout; ada adapts p")
    augment_p: float = _f(0.0, fraction_at_most(1.0), "probability per image and transform; 0 = the method's own "
                                              "(diffaugment 1, ada starts at 0)")
    augment_target: float = _f(0.6, open_unit_interval, "ada: the r_t that p steers D's outputs towards (ADA's 0.6)")
    augment_images: int = _f(100_000, int_range(1, 10**9), "ada: images D sees for p to move from 0 to 1")


@dataclass(frozen=True)
class ModelConfig:
    arch: str = _f("dcgan", one_of("mlp", "dcgan", "conditional"))
    latent_dim: int = _f(64, int_range(1, limits.MAX_LATENT))
    g_width: int = _f(64, int_range(1, limits.MAX_WIDTH))
    d_width: int = _f(64, int_range(1, limits.MAX_WIDTH))
    g_depth: int = _f(3, int_range(1, limits.MAX_DEPTH), "mlp: hidden layers")
    d_depth: int = _f(3, int_range(1, limits.MAX_DEPTH), "mlp: hidden layers")
    spectral_norm: bool = _f(False)
    batch_norm_d: bool = _f(False, None, "BatchNorm in D (never with gradient penalty)")
    dropout_d: float = _f(0.0, unit_interval)
    ema: float = _f(0.0, unit_interval, "EMA decay of G weights for sampling; 0 = off")
    sync_bn: bool = _f(False, None, "distributed CUDA runs: BatchNorm statistics over every rank's batch")
    generator: str = _f("", import_path, '"package.module:Name": your generator class or factory; "" = arch')
    discriminator: str = _f("", import_path, '"package.module:Name": your discriminator class or factory')
    generator_args: dict = _f({}, kwargs_table, "keyword arguments for model.generator")
    discriminator_args: dict = _f({}, kwargs_table, "keyword arguments for model.discriminator")
    d_output: str = _f("logits", one_of("logits", "probabilities"), "what your D returns")
    latent_shape: str = _f("auto", one_of("auto", "flat", "spatial"), "your G's input: (N, Z) or (N, Z, 1, 1)")
    conditional: bool = _f(False, None, "your G and D take labels: G(z, y), D(x, y)")

    @property
    def custom(self) -> bool:
        return bool(self.generator or self.discriminator)


@dataclass(frozen=True)
class LossConfig:
    kind: str = _f("wgan_gp", one_of(*LOSS_KINDS))
    # Bounded above: every G step runs n_critic D steps, and past the WGAN paper's largest schedule (100)
    # G hardly learns while one step takes minutes (see gantui.limits.MAX_N_CRITIC).
    n_critic: int = _f(1, int_range(1, limits.MAX_N_CRITIC), "D steps per G step, 1 to 100")
    gp_lambda: float = _f(10.0, non_negative)
    r1_gamma: float = _f(0.0, non_negative, "R1 penalty on real data; 0 = off")
    clip: float = _f(0.01, positive, "wgan only")
    label_smoothing: float = _f(0.0, unit_interval, "one-sided: real target = 1 - label_smoothing")
    instance_noise: float = _f(0.0, non_negative, "std of Gaussian noise added to D's real and fake inputs; 0 = off")


@dataclass(frozen=True)
class OptimConfig:
    name: str = _f("adam", one_of("adam", "rmsprop"))
    g_lr: float = _f(1e-4, positive)
    d_lr: float = _f(1e-4, positive)
    betas: list[float] = _f([0.5, 0.999], betas)
    lr_decay: str = _f("none", one_of("none", "linear"), "linear: decay both rates to zero at decay_steps")
    decay_steps: int = _f(0, int_range(0, limits.MAX_STEPS),
                          "horizon of the decay; 0 = run.steps (then --steps changes the schedule)")


@dataclass(frozen=True)
class LogConfig:
    every: int = _f(10, int_range(1, limits.MAX_STEPS))
    sample_every: int = _f(250, int_range(1, limits.MAX_STEPS))
    checkpoint_every: int = _f(1000, int_range(1, limits.MAX_STEPS))
    keep: int = _f(3, int_range(0, limits.MAX_KEEP))
    # At least 2: the collapse signals (sample std, pairwise distance) are undefined on one sample.
    n_samples: int = _f(64, int_range(limits.MIN_FIXED_SAMPLES, limits.MAX_FIXED_SAMPLES),
                        "size of the fixed-noise sample batch, 2 to 1024")
    eval_every: int = _f(500, int_range(0, limits.MAX_STEPS),
                         "steps between live quality measurements (FID/KID, modes); 0 = off")
    tensorboard: bool = _f(False, None, "also write TensorBoard event files to <run-dir>/tensorboard/ while training")


def alert_rules(v: list[str]) -> str | None:
    rules = [r for r in RULES if r != "divergence"]  # a divergence stops the run by itself
    return None if all(x in rules for x in v) else "a list of alert rules from " + ", ".join(rules)


def quality_targets(v: dict[str, float]) -> str | None:
    return None if all(k in criteria.KEYS for k in v) else (
        "a table of live-quality keys and values, e.g. {fid = 5.0}; keys from " + ", ".join(criteria.KEYS))


@dataclass(frozen=True)
class StopConfig:
    """Stop rules (gantui.engine.stoprules); each is off at its default."""
    patience: int = _f(0, int_range(0, limits.MAX_STEPS),
                       "stop after this many live-quality measurements without improving run.best_by; 0 = off")
    min_delta: float = _f(0.0, non_negative, "an improvement must beat the best so far by more than this")
    target: dict[str, float] = _f({}, quality_targets, "stop when a live-quality key reaches a value, e.g. {fid = 5.0}")
    max_minutes: float = _f(0.0, non_negative, "stop after this many minutes of training (this process); 0 = off")
    on_alerts: list[str] = _f([], alert_rules, "stop when one of these alerts has been raised for after_steps steps")
    after_steps: int = _f(1000, int_range(0, limits.MAX_STEPS), "how long an on_alerts alert must stay raised")


# --- [recover] and [notify] (the autopilot's acting and telling halves) ---------------------

NOTIFY_ON = ("alert", "stop", "recover", "end", "crash")


def rule_names(v: list) -> str | None:
    from gantui.diagnostics import RULES

    bad = [x for x in v if x not in RULES]
    return None if not bad else f"alert rule names ({', '.join(RULES)}); {show(bad[0])} is not one"


def notify_events(v: list) -> str | None:
    bad = [x for x in v if x not in NOTIFY_ON]
    return None if not bad else f"a list of {', '.join(repr(k) for k in NOTIFY_ON)}; {show(bad[0])} is not one"


def argv(v: list) -> str | None:
    """An argv list run without a shell: a program and its arguments, as given, nothing substituted."""
    if v and not v[0]:
        return "an argv list whose first item names the program, e.g. [\"/usr/local/bin/notify-me\"]"
    return next((f"arguments {p}" for p in map(plain_text, v) if p), None)


def http_url(v: str) -> str | None:
    if not v:
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(v)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        return "\"\" (off) or an http:// or https:// URL"
    return plain_text(v)


def env_name(v: str) -> str | None:
    ok = not v or (v.replace("_", "a").isalnum() and v.isascii() and not v[0].isdigit())
    return None if ok else "\"\" or an environment variable name, e.g. \"GANTUI_WEBHOOK\""


@dataclass(frozen=True)
class RecoverConfig:
    enabled: bool = _f(False, None, "roll back and apply the fix when the run diverges or an alert of `on` stays")
    on: list[str] = _f(["divergence"], rule_names, "alert rule names; `divergence` = NaN/Inf")
    grace_steps: int = _f(500, int_range(0, limits.MAX_STEPS), "steps an alert of `on` may stay raised")
    max_attempts: int = _f(3, int_range(1, 100), "rollbacks before the run stops with the failure's exit code")


@dataclass(frozen=True)
class NotifyConfig:
    command: list[str] = _f([], argv, "argv list run (no shell) with each event as JSON on stdin; [] = off")
    webhook: str = _f("", http_url, "URL that receives each event as a JSON POST with a `text` field; \"\" = off")
    webhook_env: str = _f("", env_name, "an environment variable holding the webhook URL (kept out of files)")
    on: list[str] = _f(list(NOTIFY_ON), notify_events, "which events are sent")
    min_interval_s: float = _f(10.0, non_negative, "alerts within this many seconds of the previous message are held back (counted)")
    timeout_s: float = _f(10.0, positive, "a receiver taking longer is given up on (logged as an event)")


@dataclass(frozen=True)
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    log: LogConfig = field(default_factory=LogConfig)
    diagnostics: Thresholds = field(default_factory=Thresholds)
    stop: StopConfig = field(default_factory=StopConfig)
    recover: RecoverConfig = field(default_factory=RecoverConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)

    @property
    def is_toy(self) -> bool:
        return self.data.name in TOY_DATASETS

    @property
    def is_critic(self) -> bool:
        return is_critic(self.loss.kind)

    def replace(self, section: str, **changes) -> "Config":
        return dataclasses.replace(self, **{section: dataclasses.replace(getattr(self, section), **changes)})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        return dumps_toml(self.to_dict())


# --- loading -----------------------------------------------------------------------------

def _type_name(tp) -> str:
    if typing.get_origin(tp) is dict:
        return "a table of finite numbers, e.g. {fid = 5.0}"
    if typing.get_origin(tp) is list:
        return "a list of " + {float: "finite numbers", int: "integers", str: "strings"}[typing.get_args(tp)[0]]
    return {int: "an integer", float: "a finite number", str: f"a string of at most {limits.MAX_STRING} characters",
            bool: "true or false", list: "a list", dict: "a table of keyword arguments"}[tp]


def show(value, width: int = 60) -> str:
    """repr of a value from a file, cut to `width` characters: a message stays one short line."""
    try:
        text = repr(value)
    except RecursionError:
        return "(a deeply nested value)"
    return text if len(text) <= width else text[: width - 3] + "..."


def _key(key: str) -> str:
    """A key as written when it is a plain name, else its (cut) repr: quotes, control characters escaped."""
    return key if key.isidentifier() and len(key) <= 40 else show(key, 40)


def _scalar(value, tp):
    """value as tp, or None when it is not one (ints are accepted where floats are expected)."""
    if tp is bool:
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):
        return None
    if tp is int:
        return value if isinstance(value, int) else None
    if tp is float:
        if isinstance(value, (int, float)):
            try:
                v = float(value)
            except OverflowError:
                return None
            return v if math.isfinite(v) else None
        return None
    if tp is str:
        return value if isinstance(value, str) and len(value) <= limits.MAX_STRING else None
    return None


def _coerce(value, tp, where: str):
    """Check a TOML value against a field type: scalars, or lists of one scalar type (`list[float]`)."""
    if tp is dict:
        if isinstance(value, dict) and len(value) <= 64:
            return dict(value)
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {show(value)}")

    if typing.get_origin(tp) is dict:
        _, item = typing.get_args(tp)
        if isinstance(value, dict) and len(value) <= 64:
            items = {k: _scalar(x, item) for k, x in value.items()}
            if all(x is not None for x in items.values()):
                return items
    elif typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, list) and len(value) <= 64:
            items = [_scalar(x, item) for x in value]
            if all(x is not None for x in items):
                return items
    else:
        v = _scalar(value, tp)
        if v is not None:
            return v
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {show(value)}")


def _build_section(cls, table: dict, source: str, section: str):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in table.items():
        where = f"{source}: [{section}] {_key(key)}"
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{where}: unknown key (known keys: {known})")
        tp = hints[key]
        v = _coerce(value, tp, where)
        check = fields[key].metadata.get("check")
        if check is not None and v is not None:
            problem = check(v)
            if problem:
                raise ConfigError(f"{where}: expected {problem}, got {show(value)}")
        if tp is int and not -limits.MAX_TOML_INT <= v <= limits.MAX_TOML_INT:
            raise ConfigError(f"{where}: expected an integer within 64 bits, got {show(value)}")
        values[key] = v
    return cls(**values)


def from_dict(raw: dict, source: str = "<config>") -> Config:
    sections = {f.name: f for f in dataclasses.fields(Config)}
    data = raw.get("data")
    if isinstance(data, dict) and data.get("dataset") and "name" not in data:
        raw = {**raw, "data": {**data, "name": "dataset"}}  # data.dataset alone says where the data come from
    built = {}
    for name, table in raw.items():
        if name not in sections:
            raise ConfigError(f"{source}: unknown section [{_key(name)}] (known: {', '.join(sections)})")
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [{name}] must be a table, got {show(table)}")
        built[name] = _build_section(typing.get_type_hints(Config)[name], table, source, name)
    cfg = Config(**built)
    _cross_checks(cfg, source)
    return cfg


def _cross_checks(cfg: Config, source: str) -> None:
    _own_gan_checks(cfg, source)
    if cfg.data.name in TOY_DATASETS and cfg.model.arch != "mlp":
        raise ConfigError(
            f"{source}: [model] arch: expected 'mlp' for toy data {cfg.data.name!r}, got {cfg.model.arch!r}")
    if cfg.model.arch == "conditional" and cfg.data.name in TOY_DATASETS + ("folder",):
        raise ConfigError(
            f"{source}: [model] arch: 'conditional' needs labelled data (digits, mnist, fashion_mnist, cifar10), "
            f"got [data] name = {cfg.data.name!r}")
    # ADA steers by the sign of D's output; a critic's score has no fixed zero to take a sign from
    if cfg.data.augment == "ada" and cfg.loss.kind in ("wgan", "wgan_gp"):
        raise ConfigError(f"{source}: [data] augment: 'ada' needs a loss whose D output has a decision point "
                          f"(ns, minimax, lsgan, hinge), got [loss] kind = {cfg.loss.kind!r}; use 'diffaugment'")
    # Gradient penalties are per sample; BatchNorm mixes the samples of a batch, so the penalty's
    # gradient is not the one it is meant to be (and double backward through BN is not supported well).
    if cfg.loss.kind == "wgan_gp" and cfg.model.batch_norm_d:
        raise ConfigError(f"{source}: [model] batch_norm_d: expected false with the gradient penalty of 'wgan_gp'")
    if cfg.loss.r1_gamma > 0 and cfg.model.batch_norm_d:
        raise ConfigError(
            f"{source}: [model] batch_norm_d: expected false with the R1 penalty ([loss] r1_gamma = "
            f"{cfg.loss.r1_gamma}); set one of them off")
    is_toy = cfg.data.name in TOY_DATASETS
    if cfg.run.best_by != "auto":
        problem = criteria.valid_for(cfg.run.best_by, cfg.data.name, is_toy)
        if problem:
            raise ConfigError(f"{source}: [run] best_by: expected 'auto' or {problem}, got {cfg.run.best_by!r}")
    for key in cfg.stop.target:
        problem = criteria.valid_for(key, cfg.data.name, is_toy)
        if problem:
            raise ConfigError(f"{source}: [stop] target: key {_key(key)}: expected {problem}")
    if cfg.log.eval_every == 0 and (cfg.stop.patience or cfg.stop.target):
        rule = "patience" if cfg.stop.patience else "target"
        raise ConfigError(f"{source}: [stop] {rule}: needs live quality, but [log] eval_every = 0; "
                          f"set eval_every > 0 or remove {rule}")
    if cfg.run.compile and (cfg.loss.kind == "wgan_gp" or cfg.loss.r1_gamma > 0):
        penalty = "the gradient penalty of 'wgan_gp'" if cfg.loss.kind == "wgan_gp" else "the R1 penalty"
        raise ConfigError(f"{source}: [run] compile: torch.compile cannot compile the double backward of "
                          f"{penalty}; set compile = false")


def _own_gan_checks(cfg: Config, source: str) -> None:
    """Your own models and data (README "Your own GAN"): the keys that only mean something together."""
    m, d = cfg.model, cfg.data
    if m.custom and not (m.generator and m.discriminator):
        missing = "generator" if not m.generator else "discriminator"
        raise ConfigError(f"{source}: [model] {missing}: expected an import path \"package.module:Name\" too "
                          f"(your own models come in pairs: set model.generator and model.discriminator)")
    if not m.custom:
        for key, default in (("generator_args", {}), ("discriminator_args", {}), ("d_output", "logits"),
                             ("conditional", False)):
            if getattr(m, key) != default:
                raise ConfigError(f"{source}: [model] {key}: applies to your own models; set model.generator "
                                  f"and model.discriminator (\"package.module:Name\") or remove it")
    if m.d_output == "probabilities" and cfg.loss.kind not in PROBABILITY_LOSSES:
        raise ConfigError(
            f"{source}: [model] d_output = 'probabilities' with [loss] kind = {cfg.loss.kind!r}: a D that ends in "
            f"a sigmoid trains with the BCE losses only ('ns' or 'minimax'); for {cfg.loss.kind} remove the "
            f"sigmoid from {m.discriminator} and set model.d_output = 'logits'")
    if d.image_size not in BUILTIN_IMAGE_SIZES and not m.custom:
        raise ConfigError(f"{source}: [data] image_size = {d.image_size}: gantui's own models take "
                          f"{', '.join(map(str, BUILTIN_IMAGE_SIZES))}; {d.image_size} needs your own models "
                          f"(model.generator, model.discriminator)")
    if (d.name == "dataset") != bool(d.dataset):
        raise ConfigError(f"{source}: [data] name = {d.name!r}: expected data.dataset = \"package.module:function\" "
                          f"with data.name = 'dataset' (or leave data.name out)")
    if m.conditional and d.name in TOY_DATASETS or (m.conditional and d.name == "folder" and d.labels == "none"):
        raise ConfigError(f"{source}: [model] conditional = true needs labelled data (digits, mnist, fashion_mnist, "
                          f"cifar10, a folder of class subfolders, or a data.dataset giving labels), got "
                          f"[data] name = {d.name!r}" + (" with labels = 'none'" if d.name == "folder" else ""))


def decode_toml_bytes(blob: bytes, source: str) -> str:
    """UTF-8 text of a TOML file (the spec's only encoding), or one line saying what the bytes are."""
    if blob.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"{source}: the file is UTF-16 text; TOML files are UTF-8: save it as UTF-8")
    if blob.startswith(b"\xef\xbb\xbf"):
        blob = blob[3:]  # a UTF-8 byte-order mark (Windows editors): harmless, skip it
    if b"\x00" in blob[:8192]:
        raise ConfigError(f"{source}: a binary file, not TOML text")
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError as e:
        line = blob[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"{source}: not UTF-8 text (byte 0x{blob[e.start]:02x} on line {line}); TOML files are UTF-8: "
            f"save it as UTF-8") from None


def parse_toml_text(text: str, source: str) -> dict:
    """tomllib.loads with every failure as one ConfigError line (including nesting too deep to parse)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {str(e).splitlines()[0] if str(e) else e!r}") from None
    except RecursionError:
        raise ConfigError(f"{source}: arrays or tables nested too deeply; a preset needs at most one level") from None


def parse_toml_file(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            blob = f.read(limits.MAX_PRESET_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such preset file (run `gantui presets` to list the bundled ones)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(blob) > limits.MAX_PRESET_BYTES:
        raise ConfigError(f"{path}: larger than {limits.MAX_PRESET_BYTES // 1024} KiB; not a preset file")
    return parse_toml_text(decode_toml_bytes(blob, str(path)), str(path))


def parse_override(text: str) -> tuple[str, str, Any]:
    """'data.batch_size=128' -> ('data', 'batch_size', 128). Values are TOML; bare words are strings."""
    if len(text) > limits.MAX_OVERRIDE:
        raise ConfigError(f"--set {show(text)}: longer than {limits.MAX_OVERRIDE} characters")
    if "=" not in text:
        raise ConfigError(f"--set {show(text)}: expected SECTION.KEY=VALUE, e.g. --set data.batch_size=128")
    key, _, raw = text.partition("=")
    key = key.strip()
    if key.count(".") != 1 or not all(key.split(".")):
        raise ConfigError(f"--set {show(text)}: expected SECTION.KEY=VALUE, e.g. --set optim.g_lr=2e-4")
    section, name = key.split(".")
    raw = raw.strip()
    if "\n" in raw or "\r" in raw:
        raise ConfigError(f"--set {show(text)}: the value spans lines; give one TOML value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # `--set data.name=ring8` reads better than `data.name='"ring8"'`
    except RecursionError:
        raise ConfigError(f"--set {show(text)}: the value is nested too deeply") from None
    return section, name, value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for text in overrides:
        section, name, value = parse_override(text)
        merged.setdefault(section, {})
        if not isinstance(merged[section], dict):
            raise ConfigError(f"--set {show(text)}: [{section}] is not a table")
        merged[section][name] = value
    return merged


def resolve_preset_path(preset: str) -> Path:
    """A path to a TOML file, or the name of a bundled preset (`wgan_gp`)."""
    if not preset or "\x00" in preset:
        raise ConfigError(f"{show(preset)}: expected a preset file or a bundled preset name (see `gantui presets`)")
    path = Path(preset)
    if path.suffix == ".toml" or path.exists() or "/" in preset:
        return path
    bundled = PRESETS_DIR / f"{preset}.toml"
    if bundled.exists():
        return bundled
    stems = [p.stem for p in bundled_presets()]
    close = difflib.get_close_matches(preset.replace("-", "_").lower(), stems, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(f"{show(preset)}: no such preset file or bundled preset; {hint}(bundled: {', '.join(stems)})")


def load(preset: str | Path, overrides: list[str] | None = None) -> Config:
    path = resolve_preset_path(str(preset))
    raw = parse_toml_file(path)
    raw = apply_overrides(raw, overrides or [])
    return from_dict(raw, source=str(path) if not overrides else f"{path} (with --set)")


def loads(text: str, source: str = "<config>") -> Config:
    return from_dict(parse_toml_text(text, source), source)


def bundled_presets() -> list[Path]:
    return sorted(PRESETS_DIR.glob("*.toml"))


def preset_description(path: Path) -> str:
    """The [run] description, read without validating the whole file (for `gantui presets`)."""
    try:
        return str(tomllib.loads(path.read_text(encoding="utf-8")).get("run", {}).get("description", ""))
    except (OSError, ValueError, RecursionError, AttributeError):
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
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_value(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {v!r} as TOML")


def dumps_toml(tables: dict) -> str:
    """Tables of scalars and lists, which is all a config holds."""
    lines = []
    for section, table in tables.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict))
        lines.append("")
        for k, sub in table.items():
            if isinstance(sub, dict) and sub:  # [model.generator_args]: keyword arguments
                lines.append(f"[{section}.{k}]")
                lines.extend(f"{_toml_key(a)} = {_toml_value(v)}" for a, v in sub.items())
                lines.append("")
    return "\n".join(lines)


def _toml_key(k: str) -> str:
    return k if k.isidentifier() else _toml_value(k)
