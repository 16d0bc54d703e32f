"""A run directory as the engine's message stream, for a monitor in another process.

`replay` publishes what a run has already written (metrics as Snapshots, events as Events, the
newest samples), so a monitor opened on a resumed or running run starts with its history.
`RunFollower` then follows the files as they grow and asks the run's control channel for its
state while it is live; when no process owns the run, the state comes from its events.

Reads files only (JSONL through gantui.engine.jsonl, samples through sample_files): no torch,
no textual. The same messages as the in-process engine, so the same screen shows them.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from gantui.engine import events as ev
from gantui.engine import jsonl, sample_files
from gantui.engine.runlock import holder
from gantui.runinfo import LIFECYCLE  # one list of lifecycle events, shared with `gantui runs`
from gantui.vocab import run_files

MAX_REPLAY = 4096          # metric records handed to a monitor at start (thinned evenly beyond that)
MAX_REPLAY_EVENTS = 2000   # the newest events handed over at start

Listener = Callable[[ev.Message], None]


def thinned(records: list[dict[str, Any]], limit: int = MAX_REPLAY) -> list[dict[str, Any]]:
    """At most ~limit records spread evenly over the run, always keeping the newest."""
    if len(records) <= limit:
        return records
    stride = -(-len(records) // limit)
    out = records[::stride]
    if out[-1] is not records[-1]:
        out.append(records[-1])
    return out


def run_info(run_dir: Path) -> ev.RunInfo | None:
    """What the screen's header needs, from config.toml and the newest `started` event."""
    from gantui import config

    run_dir = Path(run_dir)
    try:
        cfg = config.loads((run_dir / run_files.CONFIG).read_text(), source=str(run_dir / run_files.CONFIG))
    except (OSError, config.ConfigError):
        return None
    started = [e for e in jsonl.read(run_dir / run_files.EVENTS).records if e.get("kind") == "started"]
    device = str(started[-1].get("device", "?")) if started else "?"
    start_step = int(started[-1].get("step", 0) or 0) if started else 0
    dims = {"ring8": 2, "grid25": 2, "mixture1d": 1}
    return ev.RunInfo(
        name=cfg.run.name, device=device, run_dir=str(run_dir), total_steps=cfg.run.steps,
        start_step=start_step, data_name=cfg.data.name, is_toy=cfg.is_toy, data_dim=dims.get(cfg.data.name, 0),
        loss_kind=cfg.loss.kind, n_critic=cfg.loss.n_critic, lr_g=cfg.optim.g_lr, lr_d=cfg.optim.d_lr,
        real_std=0.0)


def final_state(events: list[dict[str, Any]]) -> str:
    """The state word the newest lifecycle event left the run in, for a run no process owns
    (gantui.runinfo's rules: the same words `gantui runs` prints, upper-cased for the screen)."""
    from gantui.runinfo import lifecycle_state

    return lifecycle_state(events).state.upper()


def snapshot_of(m: dict[str, Any], total: int, state: str) -> ev.Snapshot:
    step = int(m.get("step", 0) or 0)
    rate = m.get("steps_per_s")
    eta = (total - step) / rate if isinstance(rate, (int, float)) and rate > 0 else None
    return ev.Snapshot(step, total, m, state, 0, eta)


def event_of(e: dict[str, Any]) -> ev.Event:
    data = {k: v for k, v in e.items() if k not in ("step", "kind")}
    return ev.Event(int(e.get("step", 0) or 0), str(e.get("kind", "")), data)


def replay(run_dir: Path, publish: Listener, total_steps: int, state: str = ev.STARTING) -> int:
    """Publish what a run has written so far: its events (the newest MAX_REPLAY_EVENTS) and its
    metrics (thinned to about MAX_REPLAY). Returns the number of metric records read."""
    run_dir = Path(run_dir)
    events = jsonl.read(run_dir / run_files.EVENTS).records
    metrics = jsonl.read(run_dir / run_files.METRICS).records
    for e in events[-MAX_REPLAY_EVENTS:]:
        publish(event_of(e))
    for m in thinned(metrics):
        publish(snapshot_of(m, total_steps, state))
    return len(metrics)


def newest_samples(run_dir: Path) -> ev.Samples | None:
    for step in reversed(sample_files.steps(Path(run_dir) / run_files.SAMPLES)):
        try:
            return sample_files.load(sample_files.path_for(Path(run_dir) / run_files.SAMPLES, step))
        except (OSError, ValueError, KeyError):
            continue  # being written, or damaged: the one before will do
    return None


class RunFollower:
    """Publishes a run directory's history, then its growth, to `listeners` on its own thread.

    `status` (optional) is called while the run is live and returns the control channel's
    status reply (state, step, rates, n_critic); the follower turns it into StateChanged."""

    def __init__(self, run_dir: Path, listeners: list[Listener], *, poll_s: float = 0.25,
                 status: Callable[[], dict[str, Any] | None] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.listeners = listeners
        self.poll_s = poll_s
        self.status = status
        self.info: ev.RunInfo | None = None
        self.state = ev.STARTING
        self.live_pid: int | None = None
        self.error: str | None = None
        self._metrics = jsonl.Follower(self.run_dir / run_files.METRICS)
        self._events = jsonl.Follower(self.run_dir / run_files.EVENTS)
        self._sample_step = -1
        self._lifecycle: list[dict[str, Any]] = []
        self._attempt = 0                            # the newest [recover] rollback published
        self._shown: set[tuple[Any, Any]] = set()    # (step, kind) of every event published (a few per checkpoint)
        self._last_state: tuple | None = None
        self._last_metrics: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _publish(self, msg: ev.Message) -> None:
        for fn in list(self.listeners):
            try:
                fn(msg)
            except Exception:  # noqa: BLE001 - a broken consumer must not stop the follower
                pass

    def start(self) -> "RunFollower":
        self._thread = threading.Thread(target=self._run, name="gantui-follower", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- the thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._follow()
        except Exception as e:  # noqa: BLE001 - shown on screen rather than lost in a thread
            self.error = f"{self.run_dir}: cannot follow this run: {type(e).__name__}: {e}"

    def _follow(self) -> None:
        self.info = run_info(self.run_dir)
        if self.info is None:
            self.error = f"{self.run_dir}: not a gantui run directory (no readable config.toml)"
            return
        self._publish(self.info)
        self._replay()
        while not self._stop.is_set():
            self._poll()
            self._stop.wait(self.poll_s)

    def _replay(self) -> None:
        info = self.info
        metrics = self._metrics.poll(limit=None)
        events = self._events.poll(limit=None)
        self._lifecycle = [e for e in events if e.get("kind") in LIFECYCLE]
        self._update_state()
        for e in events[-MAX_REPLAY_EVENTS:]:
            self._note_rollback(e)
            self._publish(event_of(e))
        if metrics:
            self._last_metrics = metrics[-1]
            self._update_state()
        for m in thinned(metrics):
            self._publish(snapshot_of(m, info.total_steps, self.state))
        s = newest_samples(self.run_dir)
        if s is not None:
            self._sample_step = s.step
            self._publish(s)

    def _poll(self) -> None:
        info = self.info
        events = self._events.poll()
        if self._events.rewound:
            events = self._after_rollback(events)
        for e in events:
            self._note_rollback(e)
            if e.get("kind") in LIFECYCLE:
                self._lifecycle.append(e)
            self._publish(event_of(e))
        for m in self._metrics.poll():
            self._last_metrics = m
            self._publish(snapshot_of(m, info.total_steps, self.state))
        steps = sample_files.steps(self.run_dir / run_files.SAMPLES)
        if steps and steps[-1] > self._sample_step:
            s = newest_samples(self.run_dir)
            if s is not None and s.step > self._sample_step:
                self._sample_step = s.step
                self._publish(s)
        self._update_state()

    def _note_rollback(self, e: dict[str, Any]) -> None:
        self._shown.add((e.get("step"), e.get("kind")))
        if e.get("kind") == "rolled_back" and isinstance(e.get("attempt"), int):
            self._attempt = max(self._attempt, e["attempt"])

    def _after_rollback(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """events.jsonl was rewritten ([recover] moved a stretch into a branch file) and re-read from
        its start: everything before the newest unseen `rolled_back` was published already."""
        marks = [i for i, e in enumerate(events) if e.get("kind") == "rolled_back"
                 and isinstance(e.get("attempt"), int) and e["attempt"] > self._attempt]
        if marks:
            return events[marks[-1]:]
        # read between the rewrite and the rollback's own event: the file holds the kept prefix,
        # published already (and whatever follows it that was not)
        return [e for e in events if (e.get("step"), e.get("kind")) not in self._shown]

    def _update_state(self) -> None:
        self.live_pid = holder(self.run_dir)
        reply = None
        if self.live_pid is not None and self.status is not None:
            try:
                reply = self.status()
            except Exception:  # noqa: BLE001 - the channel went away: the files still speak
                reply = None
        if reply and reply.get("ok"):
            key = (reply.get("state"), reply.get("step"), reply.get("lr_g"), reply.get("lr_d"), reply.get("n_critic"))
            state = str(reply.get("state") or ev.RUNNING)
            lr_g, lr_d = reply.get("lr_g") or 0.0, reply.get("lr_d") or 0.0
            msg = ev.StateChanged(int(reply.get("step") or 0), state, float(lr_g), float(lr_d),
                                  int(reply.get("n_critic") or 0))
        else:
            state = ev.RUNNING if self.live_pid is not None else final_state(self._lifecycle)
            last = self._last_metrics
            step = int(last.get("step", 0) or 0)
            key = (state, step)
            msg = ev.StateChanged(step, state, float(last.get("lr_g") or 0.0), float(last.get("lr_d") or 0.0),
                                  self.info.n_critic if self.info else 0)
        self.state = state
        if key != self._last_state:
            self._last_state = key
            self._publish(msg)

