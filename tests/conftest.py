"""Shared fixtures: tiny real runs of the real engine (no fakes), reused across test files."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Tests share 2 cores with each other and with the subprocess runs they start; one thread per
# process avoids OpenMP threads spinning against each other.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def wait_until(predicate, timeout: float = 120.0, what: str = "the condition", every: float = 0.05, show=None):
    """Poll a real condition (a file, a lock, a reply) with a generous bound; returns its first truthy
    value, or fails loudly (with `show()`, e.g. the tmux screen, in the message), so a slow machine
    fails the test instead of passing it without proving anything. The one polling helper of the suite."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    shown = f"; the screen:\n{show()}" if show is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{shown}")


async def wait_until_async(pilot, predicate, timeout: float = 120.0, what: str = "the condition"):
    """`wait_until` inside an event loop (a Textual app under a pilot): yields to the loop between looks
    (`pilot.pause`, or asyncio.sleep when `pilot` is None)."""
    import asyncio
    import time

    pause = pilot.pause if pilot is not None else asyncio.sleep
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        await pause(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def run_cli(capsys, *args):
    """gantui's CLI in process (its real `main`): (exit code, stdout, stderr)."""
    from gantui import cli

    capsys.readouterr()
    with pytests_signals(), pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return e.value.code, out, err


@contextlib.contextmanager
def pytests_signals():
    """`run` installs its SIGINT/SIGTERM/SIGHUP handlers for the whole process: put pytest's back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def cli_in_process(*args):
    """`run_cli` where no capsys is at hand (a session or module fixture): gantui's real `main` in this
    process, its output caught; (exit code, stdout, stderr). A finished run made so costs its training
    only, not a fresh interpreter's ~4 s of CPU importing torch."""
    import io

    from gantui import cli

    out, err = io.StringIO(), io.StringIO()
    with (pytests_signals(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err),
          pytest.raises(SystemExit) as e):
        cli.main([str(a) for a in args])
    return e.value.code, out.getvalue(), err.getvalue()


def gantui(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None):
    """Run the real CLI in a subprocess (stdout is a pipe, so `run` is headless)."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "gantui", *args], cwd=cwd or REPO, capture_output=True,
                          text=True, timeout=timeout, env=full_env)


TINY_RING = ["--set", "model.g_width=32", "--set", "model.d_width=32", "--set", "data.batch_size=64",
             "--set", "log.every=5", "--set", "log.sample_every=50", "--set", "log.checkpoint_every=50"]


@pytest.fixture(scope="session")
def ring_run(tmp_path_factory) -> Path:
    """A finished 100-step ring8 run directory, made once per test session."""
    run_dir = tmp_path_factory.mktemp("ring_run") / "run"
    code, _, err = cli_in_process("run", "ring8", "--headless", "--steps", "100", "--run-dir", run_dir, *TINY_RING)
    assert code == 0, err
    return run_dir


def train_run(tmp_path_factory, preset: str, steps: int, *overrides: str) -> Path:
    """A finished run of the real engine, in process, on the CPU."""
    from gantui import config
    from gantui.engine.events import FINISHED
    from gantui.engine.trainer import Trainer

    cfg = config.load(preset, list(overrides)).replace("run", steps=steps)
    run_dir = tmp_path_factory.mktemp(preset) / "run"
    t = Trainer(cfg, run_dir, device="cpu")
    t.setup()
    assert t.run() == FINISHED
    return run_dir



@pytest.fixture(scope="session")
def short_runs(tmp_path_factory) -> list[Path]:
    """Two finished 20-step ring8 runs (seeds 0 and 1) side by side in one folder, made once per session."""
    root = tmp_path_factory.mktemp("short_runs")
    runs = []
    for seed in (0, 1):
        run_dir = root / f"ring8-seed{seed}"
        code, _, err = cli_in_process("run", "ring8", "--headless", "--steps", "20", "--run-dir", run_dir,
                                      *TINY_RING, "--set", f"run.seed={seed}")
        assert code == 0, err
        runs.append(run_dir)
    return runs
