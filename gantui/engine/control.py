"""Commands into the training thread: thread-safe, applied between optimizer steps.

Any thread may call these methods; the trainer drains the queue at the top of each step
and blocks on `wait_while_paused` while paused, so a paused run costs no CPU.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

from gantui.engine import events as ev


# --- the commands: built at the edges (keys, the socket's JSON, an alert's fix), applied in one
# place (Trainer._apply). Every command may carry a reason, recorded with its event.

@dataclass(frozen=True, kw_only=True)
class Command:
    name: ClassVar[str] = ""
    reason: str = ""     # for stop: "user" | "interrupted" | "hangup" | "remote"; for a fix: "fix:<rule>"


@dataclass(frozen=True, kw_only=True)
class Pause(Command):
    name: ClassVar[str] = "pause"


@dataclass(frozen=True, kw_only=True)
class Resume(Command):
    name: ClassVar[str] = "resume"


@dataclass(frozen=True, kw_only=True)
class TogglePause(Command):
    name: ClassVar[str] = "toggle_pause"


@dataclass(frozen=True, kw_only=True)
class Step(Command):
    """One step while paused."""
    name: ClassVar[str] = "step"


@dataclass(frozen=True, kw_only=True)
class Save(Command):
    name: ClassVar[str] = "save"


@dataclass(frozen=True, kw_only=True)
class Stop(Command):
    name: ClassVar[str] = "stop"
    save: bool = True    # a checkpoint first


@dataclass(frozen=True, kw_only=True)
class ScaleLr(Command):
    name: ClassVar[str] = "scale_lr"
    which: str           # "g" | "d" | "both"
    factor: float


@dataclass(frozen=True, kw_only=True)
class SetLr(Command):
    name: ClassVar[str] = "set_lr"
    which: str
    value: float


def new_rate(cmd: ScaleLr | SetLr, old: float) -> float | None:
    """The rate a rate command asks for, from the current one; None for a rate no optimiser may take."""
    new = old * cmd.factor if isinstance(cmd, ScaleLr) else cmd.value
    return new if math.isfinite(new) and new > 0 else None


@dataclass(frozen=True, kw_only=True)
class SetNCritic(Command):
    name: ClassVar[str] = "set_n_critic"
    value: int


@dataclass(frozen=True, kw_only=True)
class SetLive(Command):
    """A loss setting an alert's fix may change live (protocol.LIVE_KEYS); loss.n_critic is SetNCritic's."""
    name: ClassVar[str] = "set"
    key: str
    value: float


COMMAND_TYPES: dict[str, type[Command]] = {t.name: t for t in (Pause, Resume, TogglePause, Step, Save, Stop,
                                                               ScaleLr, SetLr, SetNCritic, SetLive)}


class PauseGate:
    """Pause, resume and single steps, judged once for every loop gantui drives: the engine's
    trainer and a user's own loop (gantui.track). The host keeps `paused`, `_single` (steps let
    through while paused), `rate` (its it/s meter), `record_event` and `_set_state`."""

    paused: bool
    _single: int

    def _apply_pause(self, cmd: Command, step: int) -> bool:
        """Applies a pause command at `step`; False for any other command (the host applies it)."""
        if isinstance(cmd, TogglePause):
            cmd = Resume(reason=cmd.reason) if self.paused else Pause(reason=cmd.reason)
        if isinstance(cmd, Pause):
            if not self.paused:
                self.paused = True
                self.record_event("paused")
                self._set_state(ev.PAUSED)
        elif isinstance(cmd, Resume):
            if self.paused:
                self.paused = False
                self.record_event("resumed")
                self.rate.restart(step)  # a pause must not read as a slow interval
                self._set_state(ev.RUNNING)
        elif isinstance(cmd, Step):
            if self.paused:
                self._single += 1
        else:
            return False
        return True


def command_of_fix(action: dict, reason: str) -> Command:
    """An alert's live fix (a normalised gantui.diagnostics.actions dict) as the command that applies it."""
    if action["kind"] == "scale_lr":
        return ScaleLr(which=action["which"], factor=float(action["factor"]), reason=reason)
    return SetLive(key=action["key"], value=action["value"], reason=reason)


def to_record(command: Command) -> dict:
    """A command as plain JSON-able data (the ranks of a distributed run exchange these)."""
    return {"name": command.name, **asdict(command)}


def from_record(record: dict) -> Command:
    """The command `to_record` wrote (trusted data: from rank 0 of the same run)."""
    kind = COMMAND_TYPES[record["name"]]
    return kind(**{f.name: record[f.name] for f in fields(kind) if f.name in record})


class Control:
    def __init__(self) -> None:
        self._queue: deque[Command] = deque()
        self._wake = threading.Condition()

    # --- any thread -------------------------------------------------------------------
    def send(self, command: Command) -> None:
        with self._wake:
            self._queue.append(command)
            self._wake.notify_all()

    # shorthands for scripts and tests
    def pause(self) -> None:
        self.send(Pause())

    def resume(self) -> None:
        self.send(Resume())

    def step_once(self) -> None:
        self.send(Step())

    def scale_lr(self, which: str, factor: float) -> None:
        self.send(ScaleLr(which=which, factor=factor))

    def set_n_critic(self, n: int) -> None:
        self.send(SetNCritic(value=n))

    def save(self, reason: str = "user") -> None:
        self.send(Save(reason=reason))

    def stop(self, reason: str = "user", save: bool = True) -> None:
        self.send(Stop(save=save, reason=reason))

    # --- the training thread ------------------------------------------------------------
    def pending(self) -> bool:
        """A command is waiting (a lock-free check, cheap enough for every critic update)."""
        return bool(self._queue)

    def drain(self) -> list[Command]:
        """All pending commands, oldest first. A bare deque check keeps the hot path lock-free."""
        if not self._queue:
            return []
        with self._wake:
            out = list(self._queue)
            self._queue.clear()
        return out

    def has(self, kind: type[Command]) -> bool:
        """A command of this type is waiting."""
        with self._wake:
            return any(isinstance(c, kind) for c in self._queue)

    def put_back(self, commands: list[Command]) -> None:
        """Return commands to the front of the queue, in their order (they come after a single
        step that must run first)."""
        if commands:
            with self._wake:
                self._queue.extendleft(reversed(commands))

    def wait(self, timeout: float | None = None) -> None:
        """Block until a command arrives (used while paused)."""
        with self._wake:
            if not self._queue:
                self._wake.wait(timeout)
