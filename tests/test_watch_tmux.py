"""Coming back to a run in a real terminal: the monitor's terminal is killed, the run goes on,
`gantui watch` in a new terminal shows it with its history and controls it; `q` leaves it
running; `gantui stop` ends it with a checkpoint at its last step."""

from __future__ import annotations

import shlex
import sys

from conftest import REPO, gantui
from gantui.engine import checkpoint_files, jsonl
from gantui.engine.runlock import holder
from test_tmux import Tmux, events_of, gantui_command, pytestmark, step_of, wait_until  # noqa: F401 (marks)


def metrics_of(run_dir):
    return jsonl.read(run_dir / "metrics.jsonl").records


def test_watch_reattaches_controls_and_leaves_a_run_that_lost_its_terminal(tmp_path):
    run_dir = tmp_path / "run"
    first, second = Tmux(), Tmux()
    try:
        first.start(gantui_command(run_dir, 1_000_000), 120, 36)
        wait_until(lambda: len(metrics_of(run_dir)) >= 6, 120, "the monitored run's first records")
        pid = holder(run_dir)
        assert pid is not None
        first("kill-server")  # the terminal goes away: SIGHUP
        wait_until(lambda: any(e["kind"] == "hangup" for e in events_of(run_dir)), 30, "the hangup event")
        hung_at = len(metrics_of(run_dir))
        wait_until(lambda: len(metrics_of(run_dir)) > hung_at + 2, 60, "training to go on without its terminal")
        assert holder(run_dir) == pid

        second.start(f"cd {shlex.quote(str(REPO))} && env TERM=xterm-256color OMP_NUM_THREADS=1 "
                     f"{shlex.quote(sys.executable)} -m gantui watch {shlex.quote(str(run_dir))}; sleep 60", 120, 36)
        wait_until(lambda: (step_of(second.status()) or 0) > metrics_of(run_dir)[0]["step"], 60, "watch to show the run")
        shown = step_of(second.status())
        wait_until(lambda: (step_of(second.status()) or 0) > shown, 60, "the step to advance on the watcher")
        screen = second.screen()
        # the history before the hang-up is on the chart: its min/max columns are filled in
        assert "waiting for the first metrics record" not in screen and "D " in screen

        second.keys("Space")
        wait_until(lambda: "PAUSED" in second.status(), 30, "PAUSED on the watcher")
        paused = [e for e in events_of(run_dir) if e["kind"] == "paused"][-1]
        second.keys("]")
        wait_until(lambda: any(e["kind"] == "lr_changed" and e["which"] == "g" for e in events_of(run_dir)), 30,
             "the lr_changed event")
        change = [e for e in events_of(run_dir) if e["kind"] == "lr_changed"][-1]
        assert change["new"] == 2 * change["old"]
        assert change["step"] == paused["step"]  # no step was taken while paused
        assert metrics_of(run_dir)[-1]["step"] <= paused["step"]
        second.keys("Space")
        wait_until(lambda: any(e["kind"] == "resumed" for e in events_of(run_dir)), 30, "resumed")

        second.keys("q")
        wait_until(lambda: "gantui" not in second("list-panes", "-F", "#{pane_current_command}", check=False)
             and "python" not in second("list-panes", "-F", "#{pane_current_command}", check=False),
             30, "watch to leave")
        rows = len(metrics_of(run_dir))
        wait_until(lambda: len(metrics_of(run_dir)) > rows + 2, 60, "the run to go on after q in watch")
        assert holder(run_dir) == pid

        r = gantui("stop", str(run_dir), timeout=180)
        assert r.returncode == 0, r.stderr
        assert holder(run_dir) is None
        last = metrics_of(run_dir)[-1]["step"]
        stopped = [e for e in events_of(run_dir) if e["kind"] == "stopped"][-1]
        assert stopped["step"] >= last
        assert checkpoint_files.step_of(run_dir / "checkpoints" / "latest.safetensors") == stopped["step"]
    finally:
        second.close()
        first.close()
