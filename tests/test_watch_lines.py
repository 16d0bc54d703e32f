"""`gantui watch RUN | cat`: progress lines, never the screen drawn into a pipe, and no spinning.

Real processes: a headless `gantui run` and `gantui watch` with its stdout a pipe. The CPU the
watcher uses while it waits is read from /proc over an interval that ends on an event (its next
progress line), not over a sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, TINY_RING
from conftest import wait_until as wait_for
from gantui.engine import jsonl
from gantui.engine.runlock import holder

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its reaped children: none here), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_watch_into_a_pipe_prints_progress_lines_follows_to_the_end_and_idles(tmp_path):
    run_dir = tmp_path / "run"
    run = subprocess.Popen([sys.executable, "-m", "gantui", "run", "ring8", "--headless", "--steps", "1000000",
                            "--run-dir", str(run_dir), *TINY_RING], cwd=REPO, env=ENV,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watch = None
    try:
        wait_for(lambda: holder(run_dir) == run.pid and jsonl.read(run_dir / "metrics.jsonl").records, 120,
                 "the run's first metrics")
        once = subprocess.run([sys.executable, "-m", "gantui", "watch", str(run_dir), "--no-follow"], cwd=REPO,
                              env=ENV, capture_output=True, text=True, timeout=60)
        assert once.returncode == 0 and len(once.stdout.splitlines()) == 1, once
        assert f"live (pid {run.pid})" in once.stdout and "step " in once.stdout

        watch = subprocess.Popen([sys.executable, "-m", "gantui", "watch", str(run_dir)], cwd=REPO, env=ENV,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: list[tuple[float, float, str]] = []   # (wall, the watcher's CPU seconds, line)

        def read():
            for line in watch.stdout:
                try:
                    cpu = cpu_seconds(watch.pid)
                except OSError:
                    cpu = float("nan")
                lines.append((time.monotonic(), cpu, line.rstrip("\n")))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        progress = lambda: [x for x in lines if x[2].startswith("step ")]  # noqa: E731
        wait_for(lambda: len(progress()) >= 3, 90, "three progress lines from the watcher")
        (w0, c0, _), (w1, c1, _) = progress()[1], progress()[2]
        assert w1 - w0 >= 2.0  # lines every few seconds, not a flood
        assert (c1 - c0) / (w1 - w0) < 0.05, f"the watcher used {(c1 - c0) / (w1 - w0):.1%} of a core waiting"
        assert "following" in lines[0][2] and str(run_dir) in lines[0][2]

        run.send_signal(signal.SIGTERM)  # the run ends (saved, interrupted): the watcher says so and leaves
        assert watch.wait(60) == 0
        reader.join(10)
        text = "\n".join(x[2] for x in lines)
        assert lines[-1][2].startswith(f"{run_dir}: interrupted") or lines[-1][2].startswith(f"{run_dir}: stopped"), text
        assert "\x1b" not in text and len(text) < 20_000  # no escape codes, no screen
    finally:
        for p in (watch, run):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(30)
