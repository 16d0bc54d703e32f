"""The control channel of a live run: where its socket lives and what may be said on it.

Transport: a Unix stream socket owned by the training process, mode 0600, in a directory only
its owner can enter (`$XDG_RUNTIME_DIR/gantui/`, else `/tmp/gantui-<uid>/`, mode 0700), named
after the run directory so that a socket left by a killed process is found and replaced by the
next owner. `<run-dir>/live.json` says where it is: {"pid", "socket", "started", "version"}.

Protocol: the client writes one JSON object per line (UTF-8, at most MAX_LINE bytes), the
server answers each with one JSON object per line: {"ok": true, ...} or {"ok": false,
"error": "..."}. Commands are applied by the training loop between optimizer updates (inside a
long critic loop too); "ok" means accepted, and the effect shows in events.jsonl.

  {"cmd": "ping"}                              -> {"ok", "pid", "run_dir", "version"}
  {"cmd": "status"}                            -> {"ok", "state", "step", "total_steps", "lr_g", "lr_d",
                                                   "n_critic", "steps_per_s", "eta_s", "name"}
  {"cmd": "pause" | "resume" | "toggle_pause" | "step" | "save"}
  {"cmd": "stop", "save": true}                saves a checkpoint (unless save is false) and ends the run
  {"cmd": "scale_lr", "which": "g"|"d"|"both", "factor": F}     0.001 <= F <= 1000
  {"cmd": "set_lr", "which": "g"|"d"|"both", "value": V}        0 < V <= 10
  {"cmd": "set_n_critic", "value": N}          1 <= N <= MAX_N_CRITIC
  {"cmd": "set", "key": K, "value": V}         a loss setting an alert's fix may change live:
                                               loss.n_critic, loss.label_smoothing (0 <= V < 1),
                                               loss.instance_noise, loss.gp_lambda (V >= 0)
  any command may carry "reason": a short string recorded with its event (e.g. "fix:d_overpowering")

Anything else (bad JSON, an unknown command, a bad value, an overlong line, a peer of another
uid) is refused with an error reply, logged, and never stops the training.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from gantui.engine.control import COMMAND_TYPES, Command, ScaleLr, SetLive, SetLr, SetNCritic, Stop
from gantui.limits import MAX_N_CRITIC  # the one bound on n_critic, with its reason
from gantui.vocab import run_files

MAX_LINE = 64 * 1024
LIVE_FILE = run_files.LIVE
SIMPLE = ("pause", "resume", "toggle_pause", "step", "save")
COMMANDS = ("ping", "status", "stop", "scale_lr", "set_lr", "set_n_critic", "set") + SIMPLE
LIVE_KEYS = ("loss.n_critic", "loss.label_smoothing", "loss.instance_noise", "loss.gp_lambda")


class ChannelError(Exception):
    """The control channel cannot be used (directory not private, socket missing, ...)."""


class BadRequest(ValueError):
    """A request that is refused; the message goes back to the client."""


def socket_dir() -> Path:
    """A directory only this user can enter, made if needed; ChannelError if it is not private."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base) and os.access(base, os.W_OK | os.X_OK):
        folder = Path(base) / "gantui"
    else:
        folder = Path(tempfile.gettempdir()) / f"gantui-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(folder)
    except OSError as e:
        raise ChannelError(f"{folder}: cannot make the control directory: {e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ChannelError(f"{folder}: not a directory (a link or file is in the way)")
    if st.st_uid != os.getuid():
        raise ChannelError(f"{folder}: owned by uid {st.st_uid}, not by you; remove it or set XDG_RUNTIME_DIR")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(folder, 0o700)
    return folder


def socket_name(run_dir: Path) -> str:
    digest = hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:24]
    return f"{digest}.sock"


def encode(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, allow_nan=False, default=str) + "\n").encode()


def decode(line: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("not JSON: send one JSON object per line") from None
    if not isinstance(obj, dict):
        raise BadRequest("expected a JSON object")
    return obj


def _n_critic(req: dict, what: str) -> int:
    v = req.get("value")
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_N_CRITIC:
        raise BadRequest(f"{what} must be an integer in [1, {MAX_N_CRITIC}]")
    return v


def _number(req: dict, key: str, lo: float, hi: float, *, low_open: bool = False) -> float:
    v = req.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise BadRequest(f"{req.get('cmd')}: {key} must be a number")
    if v > hi or v < lo or (low_open and v <= lo):
        raise BadRequest(f"{req.get('cmd')}: {key} {v} is out of range ({'(' if low_open else '['}{lo}, {hi}])")
    return float(v)


def validate(req: dict[str, Any]) -> dict[str, Any]:
    """The request with its fields checked and normalised; BadRequest otherwise."""
    cmd = req.get("cmd")
    if cmd not in COMMANDS:
        raise BadRequest(f"unknown command {cmd!r} (known: {', '.join(COMMANDS)})")
    reason = req.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 80:
        raise BadRequest(f"{cmd}: reason must be a string of at most 80 characters")
    out: dict[str, Any] = {"cmd": cmd, "reason": reason}
    if cmd in ("scale_lr", "set_lr"):
        which = req.get("which")
        if which not in ("g", "d", "both"):
            raise BadRequest(f"{cmd}: which must be 'g', 'd' or 'both'")
        out["which"] = which
        if cmd == "scale_lr":
            out["value"] = _number(req, "factor", 1e-3, 1e3)
        else:
            out["value"] = _number(req, "value", 0.0, 10.0, low_open=True)
    elif cmd == "set_n_critic":
        out["value"] = _n_critic(req, "set_n_critic: value")
    elif cmd == "set":
        key = req.get("key")
        if key not in LIVE_KEYS:
            raise BadRequest(f"set: key must be one of {', '.join(LIVE_KEYS)}")
        out["key"] = key
        if key == "loss.n_critic":
            out["value"] = _n_critic(req, "set: loss.n_critic")
        elif key == "loss.label_smoothing":
            out["value"] = _number(req, "value", 0.0, 0.999)
        else:
            out["value"] = _number(req, "value", 0.0, 1e6)
    elif cmd == "stop":
        save = req.get("save", True)
        if not isinstance(save, bool):
            raise BadRequest("stop: save must be true or false")
        out["save"] = save
    return out


QUERIES = ("ping", "status")


def parse(line: bytes, default_reason: str = "remote") -> Command | str:
    """The one decoding of a request line: a typed Command for the training loop, or the name of a
    query ("ping", "status") the channel answers itself. BadRequest (the refusal's words) otherwise."""
    req = validate(decode(line))
    cmd, reason = req["cmd"], req["reason"] or default_reason
    if cmd in QUERIES:
        return cmd
    if cmd == "stop":
        return Stop(save=req["save"], reason=reason)
    if cmd == "scale_lr":
        return ScaleLr(which=req["which"], factor=req["value"], reason=reason)
    if cmd == "set_lr":
        return SetLr(which=req["which"], value=req["value"], reason=reason)
    if cmd == "set_n_critic":
        return SetNCritic(value=req["value"], reason=reason)
    if cmd == "set":
        return SetLive(key=req["key"], value=req["value"], reason=reason)
    return COMMAND_TYPES[cmd](reason=reason)


def request_of(command: Command) -> dict[str, Any]:
    """What a client sends for `command` (the inverse of `parse`)."""
    out: dict[str, Any] = {"cmd": command.name, "reason": command.reason}
    if isinstance(command, Stop):
        out["save"] = command.save
    elif isinstance(command, ScaleLr):
        out.update(which=command.which, factor=command.factor)
    elif isinstance(command, SetLr):
        out.update(which=command.which, value=command.value)
    elif isinstance(command, SetNCritic):
        out["value"] = int(command.value)
    elif isinstance(command, SetLive):
        out.update(key=command.key, value=int(command.value) if command.key == "loss.n_critic" else command.value)
    return out


def read_live(run_dir: Path) -> dict[str, Any] | None:
    """`live.json` of a run directory, or None when absent or unreadable."""
    try:
        obj = json.loads((Path(run_dir) / LIVE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None
