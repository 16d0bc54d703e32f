"""The monitor on a run's history and on a run in another process; every torch call on one thread.

Real engines throughout: the monitor's own trainer for a resume, a headless `gantui run`
process for `watch`, and the real Trainer for the thread discipline.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import REPO, TINY_RING, gantui, run_cli, wait_until_async
from gantui import config
from gantui.engine import events as ev
from gantui.engine import jsonl
from test_ui import status_of, stop_engine, tiny_cfg, wait_exit


def test_a_resumed_run_opens_with_its_history_on_the_charts(tmp_path, capsys):
    from gantui.ui.launch import monitor_app

    run_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "ring8", "--headless", "--steps", "40", "--run-dir", run_dir, *TINY_RING)
    assert code == 0, err
    first = jsonl.read(run_dir / "metrics.jsonl").records[0]["step"]
    cfg = config.load("ring8", [s for s in TINY_RING if s != "--set"]).replace("run", steps=1_000_000)
    app = monitor_app(cfg, run_dir, "cpu", run_dir / "checkpoints" / "latest.safetensors", color="truecolor")

    async def main():
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_until_async(pilot, lambda: app.info is not None and status_of(app).step > 40, 90, "the resumed run")
            d_loss = app.history.series("d_loss")
            assert d_loss.steps()[0] <= first  # the old records are on the chart, not only the new ones
            assert d_loss.last_step > 40
            await pilot.press("q")
            await wait_exit(app, 30)

    try:
        asyncio.run(main())
    finally:
        stop_engine(app)


def test_watch_follows_a_live_run_in_another_process_and_controls_it(tmp_path):
    from gantui.ui.launch import watch_app

    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gantui", "run", "ring8", "--headless", "--steps", "1000000",
                             "--run-dir", str(run_dir), *TINY_RING], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(jsonl.read(run_dir / "metrics.jsonl").records) < 3:
            assert time.monotonic() < deadline and proc.poll() is None, "the run did not start"
            time.sleep(0.05)
        cfg = config.loads((run_dir / "config.toml").read_text())
        app = watch_app(cfg, run_dir)

        async def main():
            async with app.run_test(size=(120, 36)) as pilot:
                await wait_until_async(pilot, lambda: app.info is not None and app.state == ev.RUNNING, 60, "the live run")
                step = status_of(app).step
                await wait_until_async(pilot, lambda: status_of(app).step > step, 60, "the step to advance")
                await pilot.press("space")
                await wait_until_async(pilot, lambda: app.state == ev.PAUSED, 30, "PAUSED from the other process")
                await pilot.press("right_square_bracket")
                await wait_until_async(pilot, lambda: any(e["kind"] == "lr_changed"
                                                  for e in jsonl.read(run_dir / "events.jsonl").records), 30, "lr")
                await pilot.press("q")
                await wait_exit(app, 30)

        asyncio.run(main())
        assert app.return_code == 0
        assert proc.poll() is None  # q left the monitor; the run goes on
        kinds = [e["kind"] for e in jsonl.read(run_dir / "events.jsonl").records]
        assert "paused" in kinds and "lr_changed" in kinds
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err


def test_every_torch_call_of_a_run_happens_on_the_training_thread(tmp_path, monkeypatch):
    """Headless (`run_headless`, the CLI's path) and the monitor: only the trainer's thread
    touches torch; the main thread and the UI thread see numbers and numpy arrays."""
    from gantui import headless
    from gantui.engine import trainer as trainer_mod
    from gantui.ui.launch import monitor_app

    made = []

    class Recording(trainer_mod.Trainer):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self)

    monkeypatch.setattr(trainer_mod, "Trainer", Recording)
    cfg = tiny_cfg().replace("run", steps=30)
    assert headless.run_headless(cfg, tmp_path / "headless", "cpu", None) == 0
    assert made[-1].torch_threads == {"gantui-trainer"}
    assert threading.current_thread().name not in made[-1].torch_threads

    app = monitor_app(tiny_cfg(), tmp_path / "monitor", "cpu", None, color="truecolor")

    async def main():
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_until_async(pilot, lambda: app.info is not None and status_of(app).step >= 10, 90, "training")
            await pilot.press("s")  # a save asked from the UI thread runs on the training thread
            await wait_until_async(pilot, lambda: any(e["kind"] == "checkpoint" for e in
                                              jsonl.read(tmp_path / "monitor" / "events.jsonl").records), 30, "save")
            await pilot.press("q")
            await wait_exit(app, 30)

    try:
        asyncio.run(main())
    finally:
        stop_engine(app)
    assert made[-1].torch_threads == {"gantui-trainer"}
