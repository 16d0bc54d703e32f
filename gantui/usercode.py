"""Code a user names in a preset: `"package.module:Name"` for models (`model.generator`,
`model.discriminator`) and data (`data.dataset`).

Trust (the rule): gantui imports such code only when the preset naming it is the one the user
passed on the command line (`gantui run PRESET`). A checkpoint or a run directory that names code
is a stranger's file: `eval`, `sample` and `run --resume` import its modules only with
`--trust-code`, and without it `refuse_untrusted` raises one line naming the import paths and the
flag, before anything is imported (the convention of `trust_remote_code` in the Hugging Face
libraries and `trust_repo` in torch.hub).

Imports resolve against the working directory first (it is put at the front of sys.path, as
`python -m` does), then installed packages. Every failure is a UserError of one line naming the
import path and what was expected; torch is not imported here.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from typing import Any

from gantui.errors import ConfigError, UserError

TRUST_FLAG = "--trust-code"
_SPEC = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class UntrustedCode(UserError):
    """A checkpoint or run directory names code, and --trust-code was not given."""


def check_spec(value: str) -> str | None:
    """A config check: None when `value` is "" or looks like "package.module:Name"."""
    if value == "" or _SPEC.match(value):
        return None
    return 'an import path "package.module:Name" (e.g. "mygan.models:Generator")'


def code_paths(cfg) -> list[str]:
    """The import paths a config names (empty for gantui's own models and data)."""
    found = [cfg.model.generator, cfg.model.discriminator, getattr(cfg.data, "dataset", "")]
    return [p for p in found if p]


def refuse_untrusted(cfg, trusted: bool, where: str, command: str) -> None:
    """Raise UntrustedCode (exit 2) when `cfg`, read from `where` (a checkpoint or run directory),
    names code and the user did not pass --trust-code. Imports nothing."""
    refuse_untrusted_paths(code_paths(cfg), trusted, where, command)


def refuse_untrusted_paths(names: list[str], trusted: bool, where: str, command: str) -> None:
    """As refuse_untrusted, for import paths read some other way (a tracked loop's checkpoint)."""
    if names and not trusted:
        raise UntrustedCode(
            f"{where} names code to import ({', '.join(names)}); gantui imports code named by a "
            f"checkpoint or run directory only when asked: rerun `gantui {command}` with {TRUST_FLAG} "
            f"if you trust it")


def _cwd_on_path() -> None:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def load(spec: str, key: str) -> Any:
    """The object `spec` ("package.module:Name", dotted attributes allowed after the colon) names.
    `key` is the preset key that named it (for the message)."""
    problem = check_spec(spec)
    if problem or not spec:
        raise ConfigError(f"{key} = {spec!r}: expected {problem or 'an import path'}")
    module_name, _, attr = spec.partition(":")
    _cwd_on_path()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        missing = e.name or module_name
        raise ConfigError(
            f"{key} = {spec!r}: no module named {missing!r} (looked in the working directory "
            f"{os.getcwd()} and the installed packages); run gantui from the folder that holds "
            f"{module_name.split('.')[0]}/ or {module_name.split('.')[0]}.py, or install it") from None
    except Exception as e:  # noqa: BLE001 - the user's module failed while importing: say where
        raise ConfigError(f"{key} = {spec!r}: importing {module_name} failed: "
                          f"{type(e).__name__}: {first_line(e)}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = sorted(n for n in vars(module) if not n.startswith("_"))[:12]
            raise ConfigError(f"{key} = {spec!r}: {module_name} has no {attr!r}"
                              + (f" (it defines {', '.join(names)})" if names else ""))
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"{key} = {spec!r}: expected a class or a function, got a {type(obj).__name__}")
    return obj


def call(spec: str, key: str, kwargs: dict, args_key: str) -> Any:
    """Load `spec` and call it with `kwargs` (the preset's [..._args] table); one line on failure."""
    fn = load(spec, key)
    try:
        return fn(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{key} = {spec!r}: calling it with [{args_key}] {_kwargs(kwargs)} failed: "
                          f"{first_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - the user's constructor failed
        raise ConfigError(f"{key} = {spec!r}: building it with [{args_key}] {_kwargs(kwargs)} failed: "
                          f"{type(e).__name__}: {first_line(e)}") from None


def _kwargs(kwargs: dict) -> str:
    return "{" + ", ".join(f"{k} = {v!r}" for k, v in kwargs.items()) + "}" if kwargs else "(none)"


def first_line(e: BaseException, width: int = 200) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= width else text[: width - 3] + "..."

