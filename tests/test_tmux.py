"""The real app in a real terminal: `gantui run` inside tmux (TERM=xterm-256color), driven
with send-keys and read with capture-pane, on a tiny real ring8 run.

Skipped only when tmux is not installed (.ci/run installs it). Each test uses its own tmux
server socket and kills it afterwards, so a developer's own tmux sessions are never touched.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conftest import REPO
from conftest import wait_until as _wait_until

# each look reads the screen through a tmux subprocess: 10 looks a second, not conftest's 20
wait_until = functools.partial(_wait_until, every=0.1)

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
        # a config of our own (not the developer's): keep the pane, and what the command printed
        # last, after the command ends. (Setting the option on a live session would let tmux fall
        # back to its default 80x24 for a moment, which a starting app may see.)
        conf = Path(tempfile.mkdtemp(prefix="gantui-tmux-")) / "tmux.conf"
        conf.write_text("set-option -g remain-on-exit on\n")
        self("-f", str(conf), "new-session", "-d", "-s", "run", "-x", str(width), "-y", str(height), command)
        self.pid = int(self("display-message", "-p", "-t", "run", "#{pane_pid}").strip())
        self.socket_path = self("display-message", "-p", "#{socket_path}").strip()


    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "run", check=False)

    def scrollback(self) -> str:
        """The screen with its scrollback, wrapped lines joined (what was printed after the app)."""
        return self("capture-pane", "-p", "-J", "-S", "-200", "-t", "run", check=False)

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


def gantui_command(run_dir: Path, steps: int, *, exec_: bool = False, rc_file: Path | None = None,
                   preset: str = "ring8", extra: tuple[str, ...] = ()) -> str:
    sets = " ".join(f"--set {shlex.quote(s)}" for s in TINY + list(extra))
    cmd = (f"{shlex.quote(sys.executable)} -m gantui run {preset} --steps {steps} "
           f"--run-dir {shlex.quote(str(run_dir))} {sets}")
    # -u COLUMNS/LINES: under pytest the process environment holds COLUMNS=80 LINES=24 (set below
    # os.environ, so a tmux server started from here passes them on), and the app would believe
    # them instead of the pane's real size
    env = "env -u COLUMNS -u LINES TERM=xterm-256color OMP_NUM_THREADS=1 COLORTERM="
    line = f"cd {shlex.quote(str(REPO))} && {'exec ' if exec_ else ''}{env} {cmd}"
    if rc_file is not None:
        line += f"; echo $? > {shlex.quote(str(rc_file))}"
    return line


def stays(cond, seconds: float, every: float = 0.1) -> bool:
    """cond() holds at every look for `seconds` (an observation window, not a wait for an event)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not cond():
            return False
        time.sleep(every)
    return True


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


ELLIPSIS_OK = ("PAUSING…", "RESUMING…", "STOPPING…", "SAVING…", "STARTING…")


def cut_text(screen: str) -> list[str]:
    """Lines below the status line that end a title, legend or label with '…' (how a pane or a
    border title shows text that did not fit)."""
    return [line for line in screen.splitlines()[1:] if "…" in line]


def legend_words(screen: str) -> list[str]:
    """The words of the toy plot's legend line (the one with 'real' in it)."""
    line = next((x for x in screen.splitlines() if " real" in x and " fake" in x), "")
    return line.split("│")[-2].split() if line.count("│") >= 2 else line.split()


def on_screen(tmux, test, timeout: float, what: str):
    """Wait until test(screen) is truthy; returns the screen (or what test returned if not a bool)."""
    def look():
        screen = tmux.screen()
        value = test(screen)
        return (screen if value is True else value) if value else None
    return wait_until(look, timeout, what, show=tmux.screen)


def check_80x24(tmux, what: str) -> str:
    """No text cut mid-word at 80x24, and the status line keeps the step and both rates."""
    def drawn(s: str) -> bool:
        lines = s.splitlines()
        return (len(lines) > 2 and max(len(x) for x in lines) <= 80 and step_of(lines[0]) is not None
                and lr_of(lines[0], "D") is not None and "Losses" in lines[1] and "╮╭" in lines[1]
                and "D/G ratio" in s and "q quit" in s)
    screen = on_screen(tmux, drawn, 30, f"the 80x24 layout ({what})")
    lines = screen.splitlines()
    assert len(lines) <= 24 and max(len(x) for x in lines) <= 80, screen
    status = lines[0]
    assert step_of(status) is not None and lr_of(status, "G") and lr_of(status, "D"), status
    assert cut_text(screen) == [], f"{what}: cut text on\n{screen}"
    samples_title = lines[1].split("╮╭")[-1]             # the right half of the panes' top border
    assert re.search(r"step \d+", samples_title), lines[1]
    ratio = next(x for x in lines if "D/G ratio" in x)
    assert re.search(r"D/G ratio +(--|[\d.e+-]+×)", ratio), ratio
    return screen


def test_keys_and_screens_in_a_real_terminal(tmux, tmp_path):
    """ring8 in tmux at 120x36. Keys: the step advances; space -> PAUSED and the step stops;
    ] doubles the shown G lr; space resumes; s writes a new step checkpoint. Screens: `p`
    lists |grad D| and a log-scale toggle; after 50 pause/resume presses End brings the event
    log back to the run's first event; `,` shows an earlier saved step in the samples title.
    At 80x24 nothing is cut and the status keeps the step and both rates. `q` exits 0 within
    20 s, leaving latest.safetensors, the rate change in events.jsonl, and on the terminal the
    final checkpoint's path and a resume command."""
    run_dir, rc = tmp_path / "run", tmp_path / "rc"
    tmux.start(gantui_command(run_dir, 1_000_000, rc_file=rc), 120, 36)
    samples = run_dir / "samples"

    first = wait_until(lambda: (step_of(tmux.status()) or 0) >= 5 and step_of(tmux.status()), 120, "training",
                 show=tmux.screen)
    wait_until(lambda: (step_of(tmux.status()) or 0) > first, 30, "the step counter to advance")
    assert "Losses" in tmux.screen() and "Samples" in tmux.screen()

    tmux.keys("Space")
    wait_until(lambda: "PAUSED" in tmux.status(), 30, "PAUSED", show=tmux.screen)
    paused_at = step_of(tmux.status())
    assert stays(lambda: step_of(tmux.status()) == paused_at and "PAUSED" in tmux.status(), 1.0)

    lr_g = lr_of(tmux.status(), "G")
    tmux.keys("]")
    wait_until(lambda: lr_of(tmux.status(), "G") == pytest.approx(2 * lr_g) and "…" not in tmux.status(),
         30, "the doubled G lr", show=tmux.screen)

    tmux.keys("Space")
    wait_until(lambda: "RUNNING" in tmux.status() and (step_of(tmux.status()) or 0) > paused_at, 30, "resume")

    before = set((run_dir / "checkpoints").glob("step_*.safetensors"))
    tmux.keys("s")
    wait_until(lambda: set((run_dir / "checkpoints").glob("step_*.safetensors")) - before, 30, "a new checkpoint")

    wait_until(lambda: len(list(samples.glob("step_*.npz"))) >= 2, 180, "two saved sample grids", show=tmux.screen)
    tmux.keys("p")
    chart = on_screen(tmux, lambda s: "l log scale: off" in s, 20, "the chart")
    assert "|grad D|" in chart and "|grad G|" in chart and "learning rates" in chart
    tmux.keys("2", "l")
    on_screen(tmux, lambda s: "|grad D| · whole run · log scale" in s and "l log scale: on" in s, 30,
              "|grad D| on a log scale")
    tmux.keys("p")
    on_screen(tmux, lambda s: "Losses" in s, 30, "the main screen")

    for _ in range(5):                                   # 50 presses, in five bursts of ten
        tmux.keys(*["Space"] * 10)
    wait_until(lambda: sum(e["kind"] in ("paused", "resumed") for e in events_of(run_dir)) >= 52, 60,
         "50 more pause/resume events", show=tmux.screen)
    on_screen(tmux, lambda s: "RUNNING" in s.splitlines()[0] and "…" not in s.splitlines()[0], 20, "running again")

    def logged(s: str) -> bool:   # the pane has drawn them all: the first event is pushed out of view
        m = re.search(r"(\d+) events", s)
        return bool(m) and int(m.group(1)) >= 53 and "started" not in s
    on_screen(tmux, logged, 20, "the event log with every press")
    tmux.keys("End")
    # the oldest lines: the setup's memory estimate (CPU runs) and the started event
    on_screen(tmux, lambda s: "▶ started · step 0" in s or "note: memory estimate" in s, 30, "the first event")

    live = int(re.search(r"step (\d+)", tmux.screen().splitlines()[1].split("╮╭")[-1]).group(1))
    title = None
    for _ in range(3):
        # On a loaded CI machine one ',' in about fifteen runs went unanswered while the screen kept
        # updating (cause not found: the app logged every key in 10 loaded reproductions); a user
        # would press again, and so does this test. A ',' that never works still fails it.
        tmux.keys(",")
        try:
            title = on_screen(tmux, lambda s: next((x for x in s.splitlines() if "· history" in x), None), 10,
                              "a saved grid in the samples title")
            break
        except AssertionError:
            continue
    assert title, f"',' pressed three times and no saved grid in the samples title:\n{tmux.screen()}"
    shown = int(re.search(r"step (\d+) · history", title).group(1))
    assert shown < live and (samples / f"step_{shown:08d}.npz").exists()
    tmux.keys("l")
    on_screen(tmux, lambda s: "· history" not in s, 30, "back to live")

    tmux("resize-window", "-t", "run", "-x", "80", "-y", "24")
    small = check_80x24(tmux, "ring8").splitlines()[0]
    assert lr_of(small, "G") == pytest.approx(2 * lr_g)

    started = time.monotonic()
    tmux.keys("q")
    wait_until(lambda: rc.exists() and rc.read_text().strip(), 20, "exit after q", show=tmux.screen)
    assert time.monotonic() - started < 20
    assert rc.read_text().strip() == "0"
    after = wait_until(lambda: "resume:" in (s := tmux.scrollback()) and s, 30, "the exit summary", show=tmux.scrollback)
    assert "gantui: stopped at step" in after, after
    assert f"checkpoint: {run_dir}/checkpoints/latest.safetensors" in after, after
    assert f"resume: gantui run --resume {run_dir}" in after, after
    assert (run_dir / "checkpoints" / "latest.safetensors").exists()
    changes = [e for e in events_of(run_dir) if e["kind"] == "lr_changed"]
    assert changes and changes[0]["which"] == "g" and changes[0]["new"] == pytest.approx(2 * changes[0]["old"])


@pytest.mark.parametrize("preset,extra,key,code,word", [
    ("wgan_gp", ("data.n_samples=256", "model.g_width=16", "model.d_width=16", "data.batch_size=16"),
     "q", "0", "stopped"),
    ("mixture1d", (), "C-c", "130", "interrupted"),
], ids=["wgan_gp-q", "mixture1d-ctrl-c"])
def test_80x24_layouts_and_exit_codes(tmux, tmp_path, preset, extra, key, code, word):
    """At 80x24 from the start: no text cut mid-word; q exits 0, Ctrl-C exits 130 (as headless
    SIGINT does), each after saving, with the summary on the terminal."""
    run_dir, rc = tmp_path / "run", tmp_path / "rc"
    tmux.start(gantui_command(run_dir, 1_000_000, rc_file=rc, preset=preset, extra=extra), 80, 24)
    on_screen(tmux, lambda s: (step_of(s.splitlines()[0]) or 0) >= 5 and "waiting" not in s, 180, "training")
    screen = check_80x24(tmux, preset)
    if preset == "mixture1d":
        words = legend_words(screen)
        assert "real" in words and "fake" in words, screen
        assert all(w in ("real", "fake", "both", "x", "█", "▒", "░")
                   or re.fullmatch(r"-?[\d.e+-]+\.\.-?[\d.e+-]+", w) for w in words), words
    tmux.keys(key)
    wait_until(lambda: rc.exists() and rc.read_text().strip(), 30, f"exit after {key}", show=tmux.screen)
    assert rc.read_text().strip() == code
    after = wait_until(lambda: "resume:" in (s := tmux.scrollback()) and s, 30, "the exit summary", show=tmux.scrollback)
    assert f"gantui: {word} at step" in after and f"{run_dir}/checkpoints/latest.safetensors" in after, after
    assert (run_dir / "checkpoints" / "latest.safetensors").exists()


@pytest.mark.slow
def test_killing_the_terminal_leaves_the_run_training(tmux, tmp_path):
    """SIGHUP (tmux kill-session) under a running monitor: the run carries on headless,
    metrics.jsonl keeps growing, events.jsonl records the hang-up, console.log gets the
    progress, and the run finishes with latest.safetensors."""
    run_dir = tmp_path / "run"
    steps = 2000
    tmux.start(gantui_command(run_dir, steps, exec_=True), 120, 36)
    pid = tmux.pid
    wait_until(lambda: (step_of(tmux.status()) or 0) >= 10, 120, "training")
    metrics = run_dir / "metrics.jsonl"
    n_before = len(metrics.read_text().splitlines())

    tmux("kill-session", "-t", "run")
    time.sleep(1.0)
    assert Path(f"/proc/{pid}").exists(), "the process died with its terminal"
    wait_until(lambda: len(metrics.read_text().splitlines()) > n_before + 5, 60, "metrics.jsonl to keep growing")
    wait_until(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 300, "the run to finish", every=0.5)

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
