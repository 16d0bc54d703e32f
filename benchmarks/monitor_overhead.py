"""What the live monitor costs the training, measured in a real pseudo-terminal (by hand).

    python benchmarks/monitor_overhead.py [--preset ring8] [--steps 3000] [--repeats 2] [--set K=V ...]

For each repeat it runs the same preset twice, one right after the other:
  headless  `gantui run PRESET --headless` with stdout to a pipe (the plain printer);
  monitor   `gantui run PRESET` inside a 120x36 pty (TERM=xterm-256color), the app open for
            the whole run; this script plays the terminal (reads everything the app writes).
Steps/s come from metrics.jsonl (its `time` stamps), over the same steps in both runs: from
the first record logged after the monitor run's last key press to the end, so process start,
setup and the pauses of the key-latency probe are left out of both. The monitor run also reports:
  first paint   spawn -> the first frame ("STARTING…") on the pty, while torch imports;
  key latency   space written to the pty -> "PAUSING…" drawn (the UI's own feedback) and ->
                "PAUSED" drawn (the engine confirmed it, after finishing its current step);
  frame time    per UI refresh, on the UI thread: the app's poll (drain the bridge, update
                history and models) + Textual's screen update (render dirty panes, composite,
                write). Measured by timing wrappers that this script installs in the child
                (`--child`), so the product code carries no instrumentation.
Prints a table and a JSON line with every figure. Run it on an otherwise idle machine (the
load average is printed): on a busy 2-core box the run-to-run spread is +-20 %.

Experiments, not modes: GANTUI_BENCH_POLL_S=30 slows the app's redraws to one per 30 s
(separates the cost of our redraws from having Textual running at all);
GANTUI_BENCH_SWITCH_S sets the interpreter's GIL switch interval in the monitored process.

Figures (2-core shared dev VM, no GPU, OMP_NUM_THREADS=1, load average 3-5 from other jobs):
  wgan_gp (digits, log.every=5, sample_every=25), 2 pairs: ratio 0.96 (0.97, 0.96);
      frame p50 6 ms / p95 24 ms / max 50 ms; first paint 0.61 s; key feedback 5 ms.
  ring8 as bundled, 3 pairs: median paired ratio 0.96 (0.83, 0.96, 1.09); frame p95 14 ms.
  ring8 shrunk to a 300-450 it/s toy (Python-bound, the worst case for sharing the GIL with
      a UI), 3 pairs at load 3.5: ratio 0.92 (paired 1.01, 0.86, 0.90); at load 5-7 between
      0.78 and 0.92; frame p95 18 ms, max 36 ms; UI thread 3 % of a core.
GANTUI_BENCH_SWITCH_S=0.0005 (a shorter GIL switch interval) made no measurable difference.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import resource
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COLS, ROWS = 120, 36


# --- the child: gantui with timing wrappers around the UI refresh ----------------------------------

def child(argv: list[str]) -> None:
    sys.path.insert(0, str(REPO))  # this checkout's gantui, as `-m gantui` from REPO gets (not an installed one)
    stats_path = Path(os.environ["GANTUI_BENCH_STATS"])
    polls: list[float] = []
    updates: list[float] = []
    frames: list[float] = []
    last_poll = [0.0]

    from textual.screen import Screen

    from gantui.ui.app import MonitorApp

    orig_poll = MonitorApp._poll
    orig_update = Screen._on_timer_update

    def timed_poll(self):
        t0 = time.perf_counter()
        try:
            return orig_poll(self)
        finally:
            last_poll[0] = time.perf_counter() - t0
            polls.append(last_poll[0] * 1000)

    def timed_update(self):
        t0 = time.perf_counter()
        try:
            return orig_update(self)
        finally:
            dt = time.perf_counter() - t0
            updates.append(dt * 1000)
            frames.append((dt + last_poll[0]) * 1000)
            last_poll[0] = 0.0

    MonitorApp._poll = timed_poll
    Screen._on_timer_update = timed_update
    if os.environ.get("GANTUI_BENCH_POLL_S"):  # experiments: how much is our redraw vs Textual itself
        import gantui.ui.app as app_module

        app_module.POLL_S = app_module.CHART_S = float(os.environ["GANTUI_BENCH_POLL_S"])
    if os.environ.get("GANTUI_BENCH_SWITCH_S"):  # experiments: the interpreter's GIL switch interval
        sys.setswitchinterval(float(os.environ["GANTUI_BENCH_SWITCH_S"]))
    start_cpu = time.thread_time()
    start = time.perf_counter()

    def dump() -> None:
        stats_path.write_text(json.dumps({
            "polls_ms": polls, "updates_ms": updates, "frames_ms": frames,
            "ui_thread_cpu_s": time.thread_time() - start_cpu, "wall_s": time.perf_counter() - start}))

    import gantui.cli as cli

    # cli.main (not the console script's entry, which ends with os._exit) raises SystemExit
    sys.argv = ["gantui", *argv]
    try:
        cli.main()
    except SystemExit:
        dump()
        raise
    dump()


# --- the parent ----------------------------------------------------------------------------------

def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def rate_from_metrics(run_dir: Path, from_step: int = 0, after_time: float = 0.0) -> tuple[float, int]:
    """Steps/s over the metrics records from `from_step` (and logged after `after_time`);
    returns (rate, first step used). The first record always goes: it includes warm-up."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows[1:] if r["step"] >= from_step and r["time"] > after_time]
    if len(rows) < 2:
        return float("nan"), from_step
    return (rows[-1]["step"] - rows[0]["step"]) / (rows[-1]["time"] - rows[0]["time"]), rows[0]["step"]


def run_headless(args, run_dir: Path, from_step: int = 0) -> dict:
    cmd = [sys.executable, "-m", "gantui", "run", args.preset, "--headless", "--steps", str(args.steps),
           "--run-dir", str(run_dir), "--device", "cpu", *sum((["--set", s] for s in args.set), [])]
    t0, cpu0 = time.perf_counter(), children_cpu_s()
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"headless run failed ({r.returncode}): {r.stderr[-2000:]}")
    rate, _ = rate_from_metrics(run_dir, from_step)
    return {"steps_per_s": rate, "wall_s": time.perf_counter() - t0, "cpu_s": children_cpu_s() - cpu0}


class PtyReader(threading.Thread):
    """Reads everything the app writes (a terminal must), and timestamps the first time each
    watched string appears after it was armed."""

    def __init__(self, fd: int) -> None:
        super().__init__(daemon=True)
        self.fd = fd
        self.tail = b""
        self.lock = threading.Lock()
        self.watch: dict[bytes, float | None] = {}
        self.done = False

    def arm(self, *needles: str) -> None:
        with self.lock:
            for n in needles:
                self.watch[n.encode()] = None

    def seen(self, needle: str) -> float | None:
        with self.lock:
            return self.watch.get(needle.encode())

    def run(self) -> None:
        while True:
            try:
                r, _, _ = select.select([self.fd], [], [], 0.5)
                if not r:
                    continue
                data = os.read(self.fd, 65536)
            except OSError:
                break
            if not data:
                break
            now = time.perf_counter()
            with self.lock:
                buf = self.tail + data
                for needle, when in self.watch.items():
                    if when is None and needle in buf:
                        self.watch[needle] = now
                self.tail = buf[-256:]
        self.done = True


def wait_for(cond, timeout: float, what: str):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.005)
    raise SystemExit(f"timed out waiting for {what}")


def run_monitor(args, run_dir: Path, stats_path: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "run", args.preset,
           "--steps", str(args.steps), "--run-dir", str(run_dir), "--device", "cpu",
           *sum((["--set", s] for s in args.set), [])]
    env = {**os.environ, "TERM": "xterm-256color", "GANTUI_BENCH_STATS": str(stats_path),
           "COLUMNS": str(COLS), "LINES": str(ROWS)}
    env.pop("COLORTERM", None)
    t_spawn, cpu0 = time.perf_counter(), children_cpu_s()
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.chdir(REPO)
        os.execve(sys.executable, cmd, env)
    import fcntl

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    reader = PtyReader(fd)
    reader.arm("STARTING")
    reader.start()
    first_paint = wait_for(lambda: reader.seen("STARTING"), 60, "the first frame") - t_spawn

    events = run_dir / "events.jsonl"
    wait_for(lambda: events.exists() and '"started"' in events.read_text(), 300, "the run to start")
    time.sleep(2.0)  # a few log intervals of steady state before poking it

    latencies = []
    for i in range(args.key_presses):
        for press_note, confirm in (("PAUSING", "PAUSED"), ("RESUMING", "RUNNING")):
            reader.watch.pop(press_note.encode(), None)
            reader.watch.pop(confirm.encode(), None)
            reader.arm(press_note, confirm)
            t0 = time.perf_counter()
            os.write(fd, b" ")
            # the note may never be drawn when the engine confirms within the same frame
            shown = wait_for(lambda: reader.seen(press_note) or reader.seen(confirm), 10, press_note) - t0
            confirmed = wait_for(lambda: reader.seen(confirm), 30, confirm) - t0
            latencies.append({"key": press_note, "feedback_ms": shown * 1000, "confirmed_ms": confirmed * 1000})
            time.sleep(0.5)
    # steps/s only from the records logged after the last resume: pauses are not slowness
    keys_done = time.time() + 0.5

    wait_for(lambda: '"finished"' in events.read_text(), 3600, "the run to finish")
    t_q = time.perf_counter()
    os.write(fd, b"q")
    _, status = os.waitpid(pid, 0)
    quit_s = time.perf_counter() - t_q
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"monitor run exited {code}")
    stats = json.loads(stats_path.read_text())
    rate, from_step = rate_from_metrics(run_dir, after_time=keys_done)
    return {"steps_per_s": rate, "from_step": from_step, "first_paint_s": first_paint,
            "cpu_s": children_cpu_s() - cpu0,
            "keys": latencies, "quit_s": quit_s, **stats}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="ring8")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--key-presses", type=int, default=3, help="pause/resume pairs per monitor run")
    ap.add_argument("--set", action="append", default=[], help="a preset override, as for gantui run")
    args = ap.parse_args()

    results = {"headless": [], "monitor": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            mon = run_monitor(args, Path(tmp) / f"m{i}", Path(tmp) / f"stats{i}.json")
            results["monitor"].append(mon)
            # headless right after, measured over the same steps (from the monitor's last resume)
            results["headless"].append(run_headless(args, Path(tmp) / f"h{i}", mon["from_step"]))
            print(f"pair #{i}: monitor {mon['steps_per_s']:.1f} steps/s, headless "
                  f"{results['headless'][-1]['steps_per_s']:.1f} steps/s (from step {mon['from_step']})", flush=True)

    h = statistics.median(r["steps_per_s"] for r in results["headless"])
    m = statistics.median(r["steps_per_s"] for r in results["monitor"])
    # each monitor run against the headless run just before it: load drifts less within a pair
    pair_ratios = [mr["steps_per_s"] / hr["steps_per_s"] for hr, mr in zip(results["headless"], results["monitor"])]
    h_cpu = statistics.median(r["cpu_s"] for r in results["headless"])
    m_cpu = statistics.median(r["cpu_s"] for r in results["monitor"])
    mon = results["monitor"]
    polls = sum((r["polls_ms"] for r in mon), [])
    updates = sum((r["updates_ms"] for r in mon), [])
    frames = sum((r["frames_ms"] for r in mon), [])
    feedback = [k["feedback_ms"] for r in mon for k in r["keys"]]
    confirmed = [k["confirmed_ms"] for r in mon for k in r["keys"]]
    ui_cpu = statistics.median(r["ui_thread_cpu_s"] / r["wall_s"] for r in mon)
    summary = {
        "preset": args.preset, "steps": args.steps, "set": args.set, "repeats": args.repeats,
        "cpu_count": os.cpu_count(), "load_avg": os.getloadavg()[0],
        "headless_steps_per_s": h, "monitor_steps_per_s": m, "ratio": m / h,
        "pair_ratios": pair_ratios, "pair_ratio_median": statistics.median(pair_ratios),
        "headless_cpu_s": h_cpu, "monitor_cpu_s": m_cpu,
        "first_paint_s": statistics.median(r["first_paint_s"] for r in mon),
        "key_feedback_ms_median": statistics.median(feedback), "key_feedback_ms_max": max(feedback),
        "key_confirmed_ms_median": statistics.median(confirmed), "key_confirmed_ms_max": max(confirmed),
        "frame_ms_p50": pct(frames, 0.5), "frame_ms_p95": pct(frames, 0.95), "frame_ms_max": max(frames),
        "poll_ms_p95": pct(polls, 0.95), "screen_update_ms_p95": pct(updates, 0.95),
        "frames": len(frames), "ui_thread_cpu_share": ui_cpu,
        "quit_s_max": max(r["quit_s"] for r in mon),
    }
    print()
    print(f"preset {args.preset} ({' '.join(args.set) or 'as bundled'}), {args.steps} steps, CPU, "
          f"{args.repeats} repeats, {os.cpu_count()} cores, load {summary['load_avg']:.1f}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"  steps/s headless {h:8.1f}   monitor {m:8.1f}   ratio of medians {m / h:.3f}, "
          f"median of paired ratios {statistics.median(pair_ratios):.3f} "
          f"({', '.join(f'{r:.2f}' for r in pair_ratios)})")
    print(f"  process CPU per run (median): headless {h_cpu:.1f} s, monitor {m_cpu:.1f} s "
          f"(+{m_cpu - h_cpu:.1f} s for the app, key presses and pauses included)")
    print(f"  first paint {summary['first_paint_s']:.2f} s after spawn")
    print(f"  key: feedback median {summary['key_feedback_ms_median']:.0f} ms (max {summary['key_feedback_ms_max']:.0f}),"
          f" engine-confirmed median {summary['key_confirmed_ms_median']:.0f} ms (max {summary['key_confirmed_ms_max']:.0f})")
    print(f"  UI frame: p50 {summary['frame_ms_p50']:.1f} ms, p95 {summary['frame_ms_p95']:.1f} ms, "
          f"max {summary['frame_ms_max']:.1f} ms over {len(frames)} frames; UI thread CPU {ui_cpu:.1%} of a core")
    print(f"  q -> exit: {summary['quit_s_max']:.2f} s (max)")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
