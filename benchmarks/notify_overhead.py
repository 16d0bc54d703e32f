"""What [notify] costs training when the receiver hangs: the same run (mixture1d, a D so fast that
alerts are raised and notified) with no notifier and with a webhook that accepts every request
and never answers (notify.timeout_s = 5, min_interval_s = 0), alternated, several repeats.
Reports the training loop's time (Trainer.run, which does not wait for deliveries), as wall
clock and as the CPU time of the thread that trains (`time.thread_time`, which other processes on
a shared machine do not inflate), and the median overhead of each. Target: < 1 % (a hanging
receiver must never slow training).

    OMP_NUM_THREADS=1 python benchmarks/notify_overhead.py [--steps 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ALERTING = ["optim.d_lr=2e-3", "optim.g_lr=1e-7", "diagnostics.warmup_steps=50", "log.every=5",
            "model.g_width=16", "model.d_width=16", "log.eval_every=0", "notify.min_interval_s=0"]


def hanging_server():
    release = threading.Event()
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            hits.append(1)
            release.wait(600)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/", hits, release


def one(steps: int, webhook: str | None, out: Path) -> tuple[float, float, int]:
    from gantui import config, notify
    from gantui.engine.trainer import Trainer

    sets = ALERTING + ([f'notify.webhook="{webhook}"', "notify.timeout_s=5"] if webhook else [])
    cfg = config.load("mixture1d", sets).replace("run", steps=steps)
    trainer = Trainer(cfg, Path(tempfile.mkdtemp(dir=out)), device="cpu")
    notifier = notify.for_trainer(cfg, trainer)
    trainer.setup()
    t0, c0 = time.perf_counter(), time.thread_time()
    trainer.run()
    seconds, cpu = time.perf_counter() - t0, time.thread_time() - c0
    queued = 0
    if notifier is not None:
        queued = notifier.sent + notifier.failed + notifier.dropped + notifier._queue.qsize()
        notifier.close(0.0)
    return seconds, cpu, queued


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    url, hits, release = hanging_server()
    out = Path(tempfile.mkdtemp(prefix="gantui-notify-"))
    one(200, None, out)  # warm-up: imports, allocator
    base, hang = [], []
    for i in range(a.repeats):
        b = one(a.steps, None, out)
        h = one(a.steps, url, out)
        base.append(b)
        hang.append(h)
        print(f"repeat {i}: no notifier {b[0]:.2f} s wall, {b[1]:.2f} s CPU; hanging webhook {h[0]:.2f} s wall, "
              f"{h[1]:.2f} s CPU ({h[2]} messages, {len(hits)} requests hanging so far)", flush=True)
    for what, k in (("wall", 0), ("training-thread CPU", 1)):
        overhead = [(h[k] - b[k]) / b[k] for b, h in zip(base, hang)]
        print(f"{what}: no notifier median {statistics.median(x[k] for x in base):.2f} s, hanging webhook "
              f"{statistics.median(x[k] for x in hang):.2f} s; overhead median {100 * statistics.median(overhead):+.2f} % "
              f"(per repeat: {', '.join(f'{100 * o:+.1f}%' for o in overhead)})")
    release.set()


if __name__ == "__main__":
    main()
