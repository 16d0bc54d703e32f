"""`gantui run PRESET --nproc N`: a distributed run started for the user with torch's own launcher.

The parent process (this one, torch-free) checks the command line and plans the run directory
as a single run would (bad input: exit 2, one line), then starts

    python -m torch.distributed.run --standalone --nproc_per_node N -m gantui run PRESET --headless --run-dir DIR …

in a process group and session of its own, stdin from /dev/null: torchrun's workers have no
controlling terminal, so no worker can try to draw, and a Ctrl-C on the terminal reaches only
this process. Headless, it relays the workers' output (rank 0's progress lines) and waits. On a
terminal it shows the monitor of `gantui watch` on the run (rank 0's files and control channel)
once rank 0 has written the run's config; `q` there stops the run with a checkpoint, as `q` in a
single-process `run` does (the workers' output is kept meanwhile and its tail shown if they fail).

Stopping: Ctrl-C or SIGTERM asks the run to save a checkpoint and stop through its control
channel (the same request as `gantui stop`): every rank stops at the next log step and torchrun
exits cleanly; the exit code is then 130. A second Ctrl-C, or a run whose channel does not
answer, gets SIGTERM sent to torchrun, which passes it on to its workers (they also save and
stop) and kills what is left 30 s later. A hang-up of the terminal leaves the run going; what
it prints goes on into `<run-dir>/console.log`.

The exit code is the run's: 0 finished (or stopped by request), 130 interrupted, 3 diverged,
1 when a rank failed (torchrun's report names it and its exit signal).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from gantui.errors import UserError
from gantui.vocab import run_files

CHANNEL_WAIT_S = 20.0  # how long a stop request waits for the run's channel before signalling


def torchrun_world() -> int:
    """WORLD_SIZE of a torchrun launch this process belongs to (1 otherwise)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def torchrun_command(nproc: int, gantui_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "gantui", *gantui_args]


def worker_env(nproc: int) -> dict[str, str]:
    env = dict(os.environ)
    # torchrun sets 1 with a warning when unset; share the cores out instead
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def last_checkpoint(run_dir: Path) -> str | None:
    """The path of the newest `checkpoint` event in events.jsonl."""
    found = None
    try:
        lines = (Path(run_dir) / run_files.EVENTS).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("kind") == "checkpoint":
            found = event.get("path")
    return found


def outcome(run_dir: Path) -> str | None:
    """The last run-ending event kind in events.jsonl (finished, stopped, diverged, error)."""
    last = None
    try:
        text = (Path(run_dir) / run_files.EVENTS).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        try:
            kind = json.loads(line).get("kind")
        except (ValueError, AttributeError):
            continue
        if kind in ("finished", "stopped", "diverged", "error", "started"):
            last = kind
    return None if last == "started" else last


class Relay(threading.Thread):
    """Copies a child's output, line by line, to our stream (switched to a file on hang-up;
    held back while the monitor owns the screen, keeping the last lines)."""

    def __init__(self, source, sink: TextIO) -> None:
        super().__init__(daemon=True, name="gantui-relay")
        self.source = source
        self.sink = sink
        self.held: collections.deque[str] | None = None

    def hold(self) -> None:
        self.held = collections.deque(maxlen=40)

    def release(self) -> list[str]:
        held, self.held = list(self.held or ()), None
        return held

    def run(self) -> None:
        for line in iter(self.source.readline, ""):
            if self.held is not None:
                self.held.append(line)
                continue
            try:
                self.sink.write(line)
                self.sink.flush()
            except (OSError, ValueError):
                pass


def terminal_alive() -> bool:
    """False once the terminal hung up (its file operations fail with EIO from then on)."""
    try:
        os.tcgetpgrp(sys.stdout.fileno())
        return True
    except (OSError, ValueError):
        return False


def ask_stop(run_dir: Path, reason: str) -> bool:
    """The stop request of `gantui stop`, sent to rank 0's control channel. False if no answer."""
    from gantui.engine.control import Stop
    from gantui.live.client import LiveClient, NotLive

    try:
        with LiveClient.connect(run_dir, timeout=5.0) as client:
            return bool(client.send(Stop(save=True, reason=reason)).get("ok"))
    except (NotLive, OSError):
        return False


def check_devices(nproc: int, requested: str | None) -> None:
    """A CUDA run uses one GPU per process: refuse more processes than GPUs here, before
    torchrun starts (inside the workers the refusal would come back as torchrun's failure report)."""
    if requested == "cpu":
        return
    from gantui import devices  # torch, for the device count: once, before any worker starts

    if devices.wants_cuda(requested):
        devices.check_gpus_for(nproc)


def launch(nproc: int, gantui_args: list[str], run_dir: Path, headless: bool) -> int:
    """Start torchrun with `nproc` workers running `gantui <gantui_args>` and wait for it."""
    if nproc < 1:
        raise UserError(f"--nproc {nproc}: expected an integer >= 1")
    run_dir = Path(run_dir)
    try:
        proc = subprocess.Popen(torchrun_command(nproc, gantui_args), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                                start_new_session=True, env=worker_env(nproc))
    except OSError as e:
        raise UserError(f"--nproc: cannot start torch's launcher: {e.strerror}") from None
    relays = [Relay(proc.stdout, sys.stdout), Relay(proc.stderr, sys.stderr)]
    for r in relays:
        r.start()

    asked: list[str] = []

    def stop(signum, frame):
        if not asked:
            asked.append("channel")
            threading.Thread(target=_stop_politely, args=(proc, run_dir), daemon=True).start()
        elif asked[-1] != "signal":
            asked.append("signal")
            _signal(proc, signal.SIGTERM)

    def hangup(signum, frame):
        log = open(run_dir / run_files.CONSOLE_LOG, "a", buffering=1)
        log.write(f"gantui: terminal hung up at {time.strftime('%Y-%m-%d %H:%M:%S')}; "
                  f"the {nproc}-process run continues\n")
        for r in relays:
            r.sink = log

    previous = {s: signal.signal(s, h) for s, h in
                ((signal.SIGINT, stop), (signal.SIGTERM, stop), (signal.SIGHUP, hangup))}
    try:
        if not headless:
            monitor(proc, run_dir, relays, nproc, hangup)
        while proc.poll() is None:
            try:
                proc.wait(0.5)  # short waits keep this thread free to take signals
            except subprocess.TimeoutExpired:
                pass
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    for r in relays:
        r.join(5.0)
    kind = outcome(run_dir)
    if not headless and kind in ("finished", "stopped"):
        print(f"gantui: the {nproc}-process run {kind}; last checkpoint {last_checkpoint(run_dir)}", file=sys.stderr)
    if kind == "diverged":
        return 3
    if kind in ("finished", "stopped") and (proc.returncode == 0 or asked):
        return 130 if asked else 0
    print(f"gantui: the {nproc}-process run ended with torchrun exit code {proc.returncode} "
          f"(run dir {run_dir}; its last whole checkpoint is checkpoints/latest.safetensors, if one was saved)",
          file=sys.stderr)
    return proc.returncode or 1


def monitor(proc: subprocess.Popen, run_dir: Path, relays: list[Relay], nproc: int, hangup) -> None:
    """The monitor of `gantui watch` on the run, once rank 0 has written its config; `q` stops
    the run (with a checkpoint); a hang-up leaves it training, its output going to console.log."""
    from gantui.ui.launch import run_watch

    print(f"gantui: starting {nproc} processes (torchrun)…", file=sys.stderr)
    while proc.poll() is None and not (run_dir / run_files.CONFIG).exists():
        time.sleep(0.1)
    if proc.poll() is not None:
        return
    for r in relays:
        r.hold()
    try:
        run_watch(run_dir)
    except UserError as e:
        print(f"gantui: {e}", file=sys.stderr)
    finally:
        held = [r.release() for r in relays]
    if not terminal_alive():
        hangup(signal.SIGHUP, None)
        return
    if proc.poll() is None:
        print("gantui: saving a checkpoint and stopping the run…", file=sys.stderr)
        _stop_politely(proc, run_dir, reason="user")
    else:
        for r, lines in zip(relays, held):
            if proc.returncode:
                r.sink.writelines(lines[-20:])


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.kill(proc.pid, sig)  # torchrun itself: it passes the signal on to its workers
    except ProcessLookupError:
        pass


def _stop_politely(proc: subprocess.Popen, run_dir: Path, reason: str = "user") -> None:
    deadline = time.monotonic() + CHANNEL_WAIT_S
    while proc.poll() is None and time.monotonic() < deadline:
        if ask_stop(run_dir, reason):
            return
        if not (run_dir / run_files.LIVE).exists():
            break  # still starting (nothing trained yet): torchrun's SIGTERM ends it at once
        time.sleep(0.5)  # the channel is up but did not answer: try again
    if proc.poll() is None:
        _signal(proc, signal.SIGTERM)


# --- a rank --------------------------------------------------------------------------------------

def run_rank(cfg, run_dir, resume, device: str | None, on_plan=None) -> int:
    """`gantui run` in a process started by torchrun: join the group, let rank 0 decide and own
    the run directory (the same rules as a single run: new, resume or fork; lock; control
    channel), tell the others where it is, and train headless. `on_plan(plan)`: the CLI's checks of
    the plan (a resume's identity and steps), before anything is written. Returns the exit code."""
    from gantui.engine.distributed import DDP
    from gantui.engine.ownership import Owner
    from gantui.engine.ownership import plan as plan_run
    from gantui.headless import run_headless

    strategy = DDP.start(device)
    try:
        if not strategy.is_main:
            where = strategy.share(None)
            if "error" in where:
                return 2  # rank 0 says why, once
            ckpt = Path(where["checkpoint"]) if where["checkpoint"] else None
            return run_headless(cfg, Path(where["run_dir"]), device, ckpt, strategy=strategy)
        with contextlib.ExitStack() as stack:
            try:
                plan = plan_run(cfg.run.name, run_dir, resume)
                if on_plan is not None:  # the CLI's resume checks (identity, nothing to do), as for one process
                    on_plan(plan)
                owner = stack.enter_context(Owner(plan))
            except BaseException as e:
                strategy.share({"error": str(e) if isinstance(e, UserError) else type(e).__name__})
                raise
            strategy.share({"run_dir": str(plan.run_dir),
                            "checkpoint": str(plan.checkpoint) if plan.checkpoint else None})
            return run_headless(cfg, plan.run_dir, device, plan.checkpoint, owner=owner, strategy=strategy)
    finally:
        strategy.close()
