"""`gantui stop RUN_DIR`: ask a live run to save a checkpoint and end, and wait until it has."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from gantui.engine import jsonl
from gantui.engine.runlock import holder
from gantui.errors import UserError
from gantui.live.client import LiveClient, NotLive
from gantui.vocab import run_files
from gantui.engine.control import Stop


def stop_run(run_dir: Path, wait_s: float = 120.0) -> int:
    run_dir = Path(run_dir)
    pid = holder(run_dir)
    if pid is None:
        raise UserError(f"{run_dir}: no live run here (nothing to stop)")
    try:
        with LiveClient.connect(run_dir, timeout=10.0) as client:
            reply = client.send(Stop(save=True, reason="gantui stop"))
    except NotLive as e:
        raise UserError(str(e)) from None
    if not reply.get("ok"):
        raise UserError(f"{run_dir}: the run refused to stop: {reply.get('error')}")
    print(f"gantui: asked the run (pid {pid}) to save a checkpoint and stop…", file=sys.stderr)
    deadline = time.monotonic() + wait_s
    while holder(run_dir) is not None:
        if time.monotonic() > deadline:
            print(f"gantui: the run has not ended after {wait_s:.0f} s; it may be inside a long step",
                  file=sys.stderr)
            return 1
        time.sleep(0.2)
    saved = [e for e in jsonl.read(run_dir / run_files.EVENTS).records if e.get("kind") == "checkpoint"]
    where = saved[-1].get("path") if saved else None
    print(f"gantui: stopped; last checkpoint {where or 'none'}" if where else "gantui: stopped")
    return 0
