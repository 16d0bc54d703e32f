"""Commands into the training thread: thread-safe, applied between optimizer steps.

Any thread may call these methods; the trainer drains the queue at the top of each step
and blocks on `wait_while_paused` while paused, so a paused run costs no CPU.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str            # pause | resume | toggle_pause | step | scale_lr | set_lr | set_n_critic | set | save | stop
    which: str = ""      # "g" | "d" | "both" for rate commands; the config key for `set`
    value: float = 0.0
    reason: str = ""     # for stop: "user" | "interrupted" | "hangup"; for save: who asked


class Control:
    def __init__(self) -> None:
        self._queue: deque[Command] = deque()
        self._wake = threading.Condition()

    # --- any thread -------------------------------------------------------------------
    def send(self, command: Command) -> None:
        with self._wake:
            self._queue.append(command)
            self._wake.notify_all()

    def pause(self) -> None:
        self.send(Command("pause"))

    def resume(self) -> None:
        self.send(Command("resume"))

    def toggle_pause(self) -> None:
        self.send(Command("toggle_pause"))

    def step_once(self) -> None:
        self.send(Command("step"))

    def scale_lr(self, which: str, factor: float) -> None:
        self.send(Command("scale_lr", which=which, value=factor))

    def set_lr(self, which: str, value: float) -> None:
        self.send(Command("set_lr", which=which, value=value))

    def set_n_critic(self, n: int) -> None:
        self.send(Command("set_n_critic", value=n))

    def save(self, reason: str = "user") -> None:
        self.send(Command("save", reason=reason))

    def stop(self, reason: str = "user", save: bool = True) -> None:
        self.send(Command("stop", value=1.0 if save else 0.0, reason=reason))

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

    def has(self, name: str) -> bool:
        """A command of this name is waiting."""
        with self._wake:
            return any(c.name == name for c in self._queue)

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


def command_for(action, reason: str) -> Command | None:
    """The command that applies an alert's live fix (`gantui.diagnostics.actions`): what the
    monitor's `f` key sends, and what a rollback of [recover] applies. None when `action` is not
    one the engine can apply live."""
    from gantui.diagnostics.actions import normalise

    act = normalise(action)
    if act is None:
        return None
    if act["kind"] == "scale_lr":
        return Command("scale_lr", which=act["which"], value=float(act["factor"]), reason=reason)
    return Command("set", which=act["key"], value=act["value"], reason=reason)
