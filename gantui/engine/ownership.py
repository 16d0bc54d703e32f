"""A run directory belongs to one run. Deciding where a `run` writes, and owning it while it does.

`plan(...)` (torch-free, instant) turns the command line into one of:
  new     a fresh run; the directory must not hold a run already
  resume  continue a run in its own directory from its newest checkpoint (`latest`, or the
          newest whole step file when `latest` is missing or damaged); records past the
          checkpoint's step are dropped, and the drop is an event
  fork    continue from a checkpoint in a new directory (`--resume CKPT --run-dir NEW`, or a
          checkpoint older than its run's newest: refused in place, since continuing there
          would overwrite the newer timeline); the new directory gets the history up to the
          checkpoint and a `forked` event naming where it came from
and refuses everything else with one line (exit 2) before anything is written.

`Owner` then holds the run: the lock (kernel-released, so kill -9 never leaves it stuck), the
orphans of a killed save removed, the JSONL files cut back for a resume, and the control
channel open for `watch`, `stop` and `--nproc`'s monitor.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gantui.engine import checkpoint_files, jsonl
from gantui.engine.rundir import default_run_dir
from gantui.engine.runlock import RunLock, RunLocked, holder
from gantui.errors import UserError
from gantui.vocab import run_files

RUN_FILES = run_files.RUN_FILES
LEFT_BY_A_REFUSED_START = {run_files.LOCK, run_files.LIVE}   # what Owner itself writes before the run does


@dataclass
class Plan:
    mode: str                          # new | resume | fork
    run_dir: Path
    checkpoint: Path | None = None     # what to resume from
    step: int = 0                      # the checkpoint's step
    source_dir: Path | None = None     # the run a fork or resume comes from
    notes: list[str] = field(default_factory=list)   # told to the user (fallbacks taken)
    config_changes: dict = field(default_factory=dict)  # {key: {"from", "to"}}: a `config_changed` event


def holds_run(path: Path) -> bool:
    """The directory already holds (part of) a run."""
    path = Path(path)
    if not path.is_dir():
        return False
    if any((path / f).exists() for f in RUN_FILES):
        return True
    return bool(checkpoint_files.step_checkpoints(path / run_files.CHECKPOINTS)) or (path / run_files.CHECKPOINTS / checkpoint_files.LATEST).exists()


def _refuse_used(path: Path) -> None:
    pid = holder(path)
    if pid is not None:
        raise UserError(str(RunLocked(path, pid)))
    if holds_run(path):
        raise UserError(f"--run-dir {path}: already holds a run; continue it with `--resume {path}`, "
                        f"or choose another --run-dir (nothing was changed)")


def _run_of(ckpt: Path) -> Path | None:
    """The run directory a checkpoint file belongs to (its checkpoints/ folder's parent)."""
    parent = ckpt.resolve().parent
    if parent.name == run_files.CHECKPOINTS and any((parent.parent / f).exists() for f in RUN_FILES):
        return parent.parent
    return None


def plan(name: str, run_dir: Path | None, resume: Path | None) -> Plan:
    if resume is None:
        target = Path(run_dir) if run_dir is not None else default_run_dir(name)
        _refuse_used(target)
        return Plan("new", target)

    resume = Path(resume)
    notes: list[str] = []
    live_dir = resume if resume.is_dir() else _run_of(resume) if resume.is_file() else None
    if live_dir is not None and run_dir in (None, live_dir) and holder(live_dir) is not None:
        raise UserError(str(RunLocked(Path(live_dir), holder(live_dir))))
    if resume.is_dir():
        source = resume
        try:
            ckpt, step, notes = checkpoint_files.newest_complete(resume)
        except FileNotFoundError:
            raise UserError(f"--resume {resume}: no complete checkpoint in {resume / 'checkpoints'}") from None
    elif resume.is_file():
        try:
            step = checkpoint_files.step_of(resume)
        except checkpoint_files.Damaged as e:
            raise UserError(f"--resume {resume}: not a usable checkpoint ({e})") from None
        ckpt, source = resume, _run_of(resume)
    else:
        raise UserError(f"--resume {resume}: no such checkpoint file or run directory")

    target = Path(run_dir) if run_dir is not None else (source if source is not None else default_run_dir(name))
    in_place = source is not None and target.resolve() == Path(source).resolve()
    if in_place:
        newest = checkpoint_files.newest_step(source)
        if newest is not None and step < newest:
            raise UserError(
                f"--resume {resume}: step {step} is older than this run's newest checkpoint (step {newest}); "
                f"continuing here would overwrite the newer ones: fork it instead with "
                f"`--resume {ckpt} --run-dir NEW_DIR`")
        return Plan("resume", Path(source), ckpt, step, Path(source), notes)
    _refuse_used(target)
    return Plan("fork", target, ckpt, step, Path(source) if source is not None else None, notes)


class Owner:
    """Held by the training process from before its first write to after its last."""

    def __init__(self, plan: Plan, *, channel: bool = True) -> None:
        self.plan = plan
        self.lock = RunLock(plan.run_dir)
        self.want_channel = channel
        self.channel = None
        self.status = None
        # a directory this run creates is removed again if the start is refused before the run
        # wrote anything (a missing data.root): only the lock and the channel's note are then in it
        run_dir = Path(plan.run_dir)
        self._made = [d for d in (run_dir, *run_dir.parents) if not d.exists()]   # deepest first

    def __enter__(self) -> "Owner":
        p = self.plan
        try:
            self.lock.acquire()
        except RunLocked as e:
            raise UserError(str(e)) from None
        except OSError as e:
            raise UserError(f"--run-dir {p.run_dir}: cannot create the run directory: {e.strerror}") from None
        try:
            self._prepare()
            if self.want_channel:
                self._open_channel()
        except BaseException:
            self.lock.release()
            raise
        return self

    def _prepare(self) -> None:
        p = self.plan
        if p.mode in ("new", "fork"):
            # checked again under the lock: another process may have started here meanwhile
            if holds_run(p.run_dir):
                raise UserError(f"--run-dir {p.run_dir}: already holds a run; continue it with "
                                f"`--resume {p.run_dir}`, or choose another --run-dir")
        checkpoint_files.remove_orphans(p.run_dir)
        if p.mode == "resume":
            dropped = {}
            for name in run_files.HISTORY:
                n, torn = jsonl.truncate_after(p.run_dir / name, p.step)
                if n or torn:
                    dropped[name] = n
            for note in p.notes:
                print(f"gantui: {note}; resuming from {p.checkpoint.name} (step {p.step})", file=sys.stderr)
            if dropped or p.notes:
                _append_event(p.run_dir, {"step": p.step, "kind": "truncated", "to_step": p.step,
                                          "dropped": dropped, "checkpoint": str(p.checkpoint),
                                          "notes": p.notes})
        elif p.mode == "fork":
            self._copy_history()
        if p.mode in ("resume", "fork") and p.config_changes:
            _append_event(p.run_dir, {"step": p.step, "kind": "config_changed", "changes": p.config_changes})

    def _copy_history(self) -> None:
        """The new run starts with the history of the one it forks, up to the fork point."""
        p = self.plan
        if p.source_dir is not None:
            for name in run_files.HISTORY:
                records = [r for r in jsonl.read(p.source_dir / name).records if _step(r) <= p.step]
                if records:
                    with open(p.run_dir / name, "wb") as f:
                        for r in records:
                            f.write(jsonl.encode(r))
        _append_event(p.run_dir, {"step": p.step, "kind": "forked", "from_checkpoint": str(p.checkpoint),
                                  "from_run": str(p.source_dir) if p.source_dir else None})

    def _open_channel(self) -> None:
        from gantui.engine.channel import ChannelServer, LiveStatus
        from gantui.engine.protocol import ChannelError

        self.status = LiveStatus()
        try:
            self.channel = ChannelServer(self.plan.run_dir, self.status).start()
        except (ChannelError, OSError) as e:
            # The run matters more than the remote control: train without it, and say so.
            print(f"gantui: no control channel for this run ({e}); `watch` will follow its files "
                  f"but cannot control it", file=sys.stderr)
            self.channel = None

    def attach(self, trainer) -> None:
        """Connect the channel to a trainer (its Control and its events) once it exists."""
        if self.status is not None:
            trainer.add_listener(self.status)
        if self.channel is not None:
            self.channel.attach(trainer.control.send, trainer.record_event)

    def __exit__(self, *exc) -> None:
        try:
            if self.channel is not None:
                self.channel.close()
            self._remove_if_unused()
        finally:
            self.lock.release()

    def _remove_if_unused(self) -> None:
        p = self.plan
        if not self._made or p.mode != "new":
            return
        try:
            names = set(os.listdir(p.run_dir))
            if names <= LEFT_BY_A_REFUSED_START:
                for name in names:
                    os.unlink(p.run_dir / name)
                for folder in self._made:   # the run directory, then the parents made for it
                    os.rmdir(folder)
        except OSError:
            pass  # a file appeared meanwhile, or it is gone already: leave it as it is


def _step(record: dict) -> int:
    s = record.get("step")
    return s if isinstance(s, int) and not isinstance(s, bool) else -1


def _append_event(run_dir: Path, record: dict) -> None:
    os.makedirs(run_dir, exist_ok=True)
    app = jsonl.Appender(Path(run_dir) / run_files.EVENTS)
    try:
        app.append(record)
    finally:
        app.close()
