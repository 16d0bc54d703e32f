"""`gantui run … --detach`: the same run, headless, in a process of its own session (no
controlling terminal, so a closed SSH window cannot reach it), output to `console.log`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from gantui.engine.runlock import holder
from gantui.vocab import run_files

START_TIMEOUT_S = 60.0


def detach_run(args: list[str], run_dir: Path) -> int:
    """Start `gantui run <args> --headless --run-dir run_dir` in the background; return once it
    owns the run directory (exit 0), or with its exit code if it ends before that."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / run_files.CONSOLE_LOG
    with open(log_path, "ab") as log, open(os.devnull, "rb") as null:
        proc = subprocess.Popen([sys.executable, "-m", "gantui", "run", *args, "--headless", "--run-dir", str(run_dir)],
                                stdin=null, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                close_fds=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            for line in tail:
                print(line, file=sys.stderr)
            return code
        if holder(run_dir) == proc.pid:
            print(f"gantui: training in the background (pid {proc.pid}), run directory {run_dir}")
            print(f"  watch it:  gantui watch {run_dir}")
            print(f"  stop it:   gantui stop {run_dir}    (output: {log_path})")
            return 0
        time.sleep(0.1)
    print(f"gantui: the run (pid {proc.pid}) has not started within {START_TIMEOUT_S:.0f} s; see {log_path}",
          file=sys.stderr)
    return 0
