"""`gantui run PRESET --nproc 2` in a real terminal: the monitor on the 2-process run, keys that
reach both ranks (space pauses, `]` doubles G's rate), `q` that stops the run with a checkpoint."""

from __future__ import annotations

from conftest import TINY_RING  # noqa: F401 (the tiny ring8 of the other tests)
from gantui.engine import checkpoint_files
from gantui.engine.runlock import holder
from test_tmux import Tmux, events_of, gantui_command, pytestmark, step_of, wait_until  # noqa: F401 (marks)


def test_nproc_monitor_keys_control_both_ranks(tmp_path):
    run_dir, rc = tmp_path / "run", tmp_path / "rc"
    term = Tmux()
    try:
        term.start(gantui_command(run_dir, 1_000_000, rc_file=rc).replace(" run ring8 ", " run ring8 --nproc 2 "))
        wait_until(lambda: (step_of(term.status()) or 0) > 0, 240, "the monitor showing the 2-process run")
        assert events_of(run_dir)[0]["world_size"] == 2

        term.keys("Space")
        wait_until(lambda: any(e["kind"] == "paused" for e in events_of(run_dir)), 60, "the paused event")
        wait_until(lambda: "PAUSED" in term.status(), 30, "PAUSED on the monitor")
        term.keys("]")
        wait_until(lambda: any(e["kind"] == "lr_changed" for e in events_of(run_dir)), 60, "the lr_changed event")
        change = [e for e in events_of(run_dir) if e["kind"] == "lr_changed"][-1]
        assert change["which"] == "g" and change["new"] == 2 * change["old"]
        term.keys("Space")
        wait_until(lambda: any(e["kind"] == "resumed" for e in events_of(run_dir)), 60, "the resumed event")

        term.keys("q")
        wait_until(rc.exists, 120, "gantui run --nproc 2 to end after q")
        assert rc.read_text().strip() == "0"
        assert holder(run_dir) is None
        stopped = [e for e in events_of(run_dir) if e["kind"] == "stopped"][-1]
        assert checkpoint_files.step_of(run_dir / "checkpoints" / "latest.safetensors") == stopped["step"]
    finally:
        term.close()
