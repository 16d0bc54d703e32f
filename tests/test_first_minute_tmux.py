"""The README's first command in a real terminal (tmux): progress shows in the first minute.

The samples pane refreshes on a time budget as well as on steps, so the grid of the full
`wgan_gp` preset (seconds per step on a CPU) changes within 30 s of its first paint; `s` puts
the manual checkpoint on the status line at once. Helpers and the tmux fixture: tests/test_tmux.py.
"""

from __future__ import annotations

import re
import shlex
import sys

from test_tmux import REPO, tmux  # noqa: F401 - `tmux` is the fixture
from test_tmux import wait_until as wait

SAMPLES_STEP = re.compile(r"Samples[^\n]*?step (\d+)")


def grid_step(screen: str) -> int | None:
    m = SAMPLES_STEP.search(screen)
    return int(m.group(1)) if m else None


def test_the_first_commands_grid_changes_within_30_s_and_s_shows_on_the_status_line(tmux, tmp_path):
    run_dir = tmp_path / "first"
    # README: `gantui run presets/wgan_gp.toml` (a run directory of the test's own, nothing else)
    env = "env -u COLUMNS -u LINES TERM=xterm-256color OMP_NUM_THREADS=1 COLORTERM="
    tmux.start(f"cd {shlex.quote(str(REPO))} && {env} {shlex.quote(sys.executable)} -m gantui run "
               f"presets/wgan_gp.toml --run-dir {shlex.quote(str(run_dir))}")
    first = wait(lambda: grid_step(tmux.screen()) is not None and grid_step(tmux.screen()) + 1, 180,
                 "the first sample grid", show=tmux.screen) - 1
    assert (run_dir / "samples" / "step_00000000.png").exists()  # the step-0 grid is saved
    later = wait(lambda: (s := grid_step(tmux.screen())) is not None and s > first and s, 30,
                 f"a newer grid than step {first} within 30 s", every=0.25, show=tmux.screen)
    assert later < 250  # a refresh on the clock, not the preset's sample_every

    tmux.keys("s")
    status = wait(lambda: "saved ckpt @" in tmux.status() and tmux.status(), 60,
                  "the manual checkpoint on the status line", show=tmux.screen)
    step = int(re.search(r"saved ckpt @(\d+)", status).group(1))
    assert (run_dir / "checkpoints" / f"step_{step:08d}.safetensors").exists()
