"""The real app in a real terminal: `gantui run` inside tmux (TERM=xterm-256color), driven
with send-keys and read with capture-pane, on a tiny real ring8 run.

Skipped only when tmux is not installed (.ci/run installs it). Each test uses its own tmux
server socket and kills it afterwards, so a developer's own tmux sessions are never touched.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.tmux,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]

TINY = ["model.g_width=32", "model.d_width=32", "data.batch_size=32", "loss.n_critic=1",
        "log.every=5", "log.sample_every=50", "log.checkpoint_every=100000", "log.n_samples=128",
        "optim.lr_decay='none'"]


class Tmux:
    def __init__(self) -> None:
        self.socket = f"gantui-test-{uuid.uuid4().hex[:8]}"
        self.pid: int | None = None
        self.socket_path = ""

    def __call__(self, *args: str, check: bool = True) -> str:
        r = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30)
        if check and r.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def start(self, command: str, width: int = 120, height: int = 36) -> None:
        self("new-session", "-d", "-s", "run", "-x", str(width), "-y", str(height), command)
        self.pid = int(self("display-message", "-p", "-t", "run", "#{pane_pid}").strip())
        self.socket_path = self("display-message", "-p", "#{socket_path}").strip()

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "run", check=False)

    def status(self) -> str:
        lines = self.screen().splitlines()
        return lines[0] if lines else ""

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", "run", *keys)

    def close(self) -> None:
        """Kill the server; a gantui still running there detaches (that is the feature), so
        stop it too: SIGTERM saves and stops it, like Ctrl-C in a headless run."""
        gantui_pids = _children(self.pid) if self.pid else []
        self("kill-server", check=False)
        if self.socket_path:
            Path(self.socket_path).unlink(missing_ok=True)
        for pid in gantui_pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 15
            while Path(f"/proc/{pid}").exists() and not _zombie(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if Path(f"/proc/{pid}").exists() and not _zombie(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def tmux():
    t = Tmux()
    yield t
    t.close()


def gantui_command(run_dir: Path, steps: int, *, exec_: bool = False, rc_file: Path | None = None) -> str:
    sets = " ".join(f"--set {shlex.quote(s)}" for s in TINY)
    cmd = (f"{shlex.quote(sys.executable)} -m gantui run ring8 --steps {steps} "
           f"--run-dir {shlex.quote(str(run_dir))} {sets}")
    env = "env TERM=xterm-256color OMP_NUM_THREADS=1 COLORTERM="
    line = f"cd {shlex.quote(str(REPO))} && {'exec ' if exec_ else ''}{env} {cmd}"
    if rc_file is not None:
        line += f"; echo $? > {shlex.quote(str(rc_file))}"
    return line


def wait(cond, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def step_of(status: str) -> int | None:
    m = re.search(r"step (\d+)/", status)
    return int(m.group(1)) if m else None


def lr_of(status: str, which: str) -> float | None:
    m = re.search(rf"{which} lr (\S+)", status)
    try:
        return float(m.group(1).rstrip("…")) if m else None
    except ValueError:
        return None


def events_of(run_dir: Path) -> list[dict]:
    path = run_dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_keys_in_a_real_terminal(tmux, tmp_path):
    """Step advances; space -> PAUSED and the step stops; ] doubles the shown G lr; space
    resumes; s writes a new step checkpoint; at 80x24 step and both rates stay visible;
    q exits 0 within 20 s leaving latest.safetensors; events.jsonl has the rate change."""
    run_dir, rc = tmp_path / "run", tmp_path / "rc"
    tmux.start(gantui_command(run_dir, 1_000_000, rc_file=rc), 120, 36)

    first = wait(lambda: (step_of(tmux.status()) or 0) >= 5 and step_of(tmux.status()), 120, "training")
    wait(lambda: (step_of(tmux.status()) or 0) > first, 30, "the step counter to advance")
    assert "Losses" in tmux.screen() and "Samples" in tmux.screen()

    tmux.keys("Space")
    wait(lambda: "PAUSED" in tmux.status(), 10, "PAUSED")
    paused_at = step_of(tmux.status())
    time.sleep(1.0)
    assert step_of(tmux.status()) == paused_at and "PAUSED" in tmux.status()

    lr_g = lr_of(tmux.status(), "G")
    tmux.keys("]")
    wait(lambda: lr_of(tmux.status(), "G") == pytest.approx(2 * lr_g) and "…" not in tmux.status(),
         10, "the doubled G lr")

    tmux.keys("Space")
    wait(lambda: "RUNNING" in tmux.status() and (step_of(tmux.status()) or 0) > paused_at, 30, "resume")

    before = set((run_dir / "checkpoints").glob("step_*.safetensors"))
    tmux.keys("s")
    wait(lambda: set((run_dir / "checkpoints").glob("step_*.safetensors")) - before, 30, "a new checkpoint")

    tmux("resize-window", "-t", "run", "-x", "80", "-y", "24")
    wait(lambda: len(tmux.screen().splitlines()[0]) <= 80 and lr_of(tmux.status(), "D") is not None, 10,
         "the 80x24 layout")
    small = tmux.status()
    assert step_of(small) is not None and lr_of(small, "G") == pytest.approx(2 * lr_g) and lr_of(small, "D")

    started = time.monotonic()
    tmux.keys("q")
    wait(lambda: rc.exists() and rc.read_text().strip(), 20, "exit after q")
    assert time.monotonic() - started < 20
    assert rc.read_text().strip() == "0"
    assert (run_dir / "checkpoints" / "latest.safetensors").exists()
    changes = [e for e in events_of(run_dir) if e["kind"] == "lr_changed"]
    assert changes and changes[0]["which"] == "g" and changes[0]["new"] == pytest.approx(2 * changes[0]["old"])


@pytest.mark.slow
def test_killing_the_terminal_leaves_the_run_training(tmux, tmp_path):
    """SIGHUP (tmux kill-session) under a running monitor: the run carries on headless,
    metrics.jsonl keeps growing, events.jsonl records the hang-up, console.log gets the
    progress, and the run finishes with latest.safetensors."""
    run_dir = tmp_path / "run"
    steps = 2000
    tmux.start(gantui_command(run_dir, steps, exec_=True), 120, 36)
    pid = tmux.pid
    wait(lambda: (step_of(tmux.status()) or 0) >= 10, 120, "training")
    metrics = run_dir / "metrics.jsonl"
    n_before = len(metrics.read_text().splitlines())

    tmux("kill-session", "-t", "run")
    time.sleep(1.0)
    assert Path(f"/proc/{pid}").exists(), "the process died with its terminal"
    wait(lambda: len(metrics.read_text().splitlines()) > n_before + 5, 60, "metrics.jsonl to keep growing")
    wait(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 300, "the run to finish", every=0.5)

    kinds = [e["kind"] for e in events_of(run_dir)]
    assert "hangup" in kinds and kinds[-1] == "finished"
    last = json.loads(metrics.read_text().splitlines()[-1])
    assert last["step"] == steps
    assert (run_dir / "checkpoints" / "latest.safetensors").exists()
    log = (run_dir / "console.log").read_text()
    assert "hung up" in log and f"step {steps}/{steps}" in log and "exit code 0" in log


def _children(pid: int) -> list[int]:
    """pid and its descendants (the pane runs a shell, which runs python)."""
    out = [pid]
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for k in kids:
        out += _children(int(k))
    return out


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True
