"""A scripted stand-in for the Trainer: publishes a fixed, deterministic run and obeys the
Control commands in the simplest way. For layout snapshots and demos only; the behaviour
tests drive the real Trainer. No torch: numpy makes the pictures.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from gantui.engine import events as ev
from gantui.engine.control import (Control, Pause, Resume, Save, ScaleLr, SetLive, SetLr, SetNCritic, Step, Stop,
                                   TogglePause)
from gantui.vocab import run_files


def demo_run(kind: str = "digits", steps: int = 1200, every: int = 10, total: int = 20000):
    """(RunInfo, [Snapshot], Samples, [Event]) of a plausible run, the same every time."""
    rng = np.random.default_rng(0)
    critic = kind == "digits"
    info = ev.RunInfo(
        name="wgan_gp" if kind == "digits" else kind, device="cpu", run_dir="runs/demo",
        total_steps=total, start_step=0, data_name=kind, is_toy=kind != "digits",
        data_dim={"digits": 0, "ring8": 2, "mixture1d": 1}[kind],
        loss_kind="wgan_gp" if critic else "ns", n_critic=5 if critic else 1,
        lr_g=1e-4, lr_d=1e-4, real_std=0.5)
    snaps = []
    for i, step in enumerate(range(every, steps + 1, every)):
        t = step / steps
        d = -1.5 * math.exp(-3 * t) - 0.3 + 0.15 * math.sin(i / 3) + 0.05 * rng.standard_normal()
        g = 1.2 * math.exp(-2 * t) + 0.4 + 0.2 * math.cos(i / 4) + 0.05 * rng.standard_normal()
        m = {"step": step, "time": 1_700_000_000.0 + step / 40, "d_loss": d, "g_loss": g,
             "d_real": 0.9 - 0.3 * t, "d_fake": -0.6 + 0.4 * t,
             "grad_norm_d": 2.0 + math.sin(i / 5), "grad_norm_g": 0.8 + 0.3 * math.cos(i / 7),
             "lr_g": 1e-4, "lr_d": 1e-4, "sample_std": 0.4 + 0.1 * t, "steps_per_s": 41.3}
        if critic:
            m["gp"] = 0.1 + 0.02 * math.sin(i)
            m["wasserstein"] = m["d_real"] - m["d_fake"]
        if step % 200 == 0:                    # live quality, every log.eval_every steps
            q = 1 - math.exp(-3 * t)
            m.update({"digits": {"fid": 80 * (1 - q) + 12, "kid": 0.08 * (1 - q) + 0.01},
                      "ring8": {"modes_captured": round(2 + 6 * q), "hq_fraction": 0.5 + 0.45 * q},
                      "mixture1d": {"w1": 1.2 * (1 - q) + 0.05, "d_acc": 0.9 - 0.3 * q}}[kind])
        m["health"] = demo_health(step, m["grad_norm_d"] / m["grad_norm_g"], m["sample_std"])
        snaps.append(ev.Snapshot(step, total, m, ev.RUNNING, info.n_critic, (total - step) / 41.3))
    if kind == "digits":
        yy, xx = np.mgrid[0:28, 0:28] / 27.0
        images = []
        for k in range(64):
            a = 2 * math.pi * k / 64
            cx, cy = 0.5 + 0.25 * math.cos(a), 0.5 + 0.25 * math.sin(a)
            ring = np.exp(-((np.hypot(xx - cx, yy - cy) - 0.2) ** 2) / 0.004)
            images.append(ring * 2 - 1)
        samples = ev.Samples(steps, np.asarray(images, np.float32)[:, None])
    elif kind == "ring8":
        ang = 2 * np.pi * rng.integers(0, 8, 512) / 8
        real = np.stack([np.cos(ang), np.sin(ang)], 1) + 0.02 * rng.standard_normal((512, 2))
        fake = real[:256] * 0.9 + 0.08 * rng.standard_normal((256, 2))
        gx, gy = np.meshgrid(np.linspace(-1.5, 1.5, 48), np.linspace(1.5, -1.5, 48))
        field = -np.abs(np.hypot(gx, gy) - 1.0)
        samples = ev.Samples(steps, fake.astype(np.float32), real.astype(np.float32), field,
                             (-1.5, 1.5, -1.5, 1.5))
    else:
        real = np.concatenate([rng.normal(-2, 0.35, 256), rng.normal(2, 0.35, 256)])[:, None]
        fake = rng.normal(-1.5, 0.6, 256)[:, None]
        samples = ev.Samples(steps, fake.astype(np.float32), real.astype(np.float32))
    events = [
        ev.Event(0, "started", {"device": "cpu", "total_steps": total}),
        ev.Event(1000, "checkpoint", {"path": "runs/demo/checkpoints/step_00001000.safetensors",
                                      "reason": "scheduled"}),
        ev.Event(1100, "alert", {"rule": "d_overpowering", "state": "raised", "severity": "warning",
                                 "message": "D overpowers G: |grad D| / |grad G| 6.1x, above 5.0x "
                                            "(5x its early baseline) over 8 of the last 10 records",
                                 "evidence": {"grad_ratio": 6.1, "threshold": 5.0, "held": 8, "window": 10},
                                 "fix": "halve D lr",
                                 "action": {"which": "d", "factor": 0.5}}),
    ]
    return info, snaps, samples, events


def demo_health(step: int, ratio: float, sample_std: float) -> dict:
    """Per-rule verdicts in the shape the alert rules write into `record["health"]`
    (gantui.diagnostics.health), consistent with the demo's one alert (d_overpowering, raised at
    step 1100)."""
    over = step >= 1100
    return {
        "levels": {"d_overpowering": "alert" if over else "ok", "oscillation": "ok", "mode_collapse": "ok",
                   "vanishing_gradients": "watch" if 600 <= step < 900 else "ok",
                   "exploding_gradients": "ok", "divergence": "ok"},
        "gauge": {"ratio": 6.1 if over else ratio, "limit": 5.0},
    }


def write_sample_history(run_dir, samples: ev.Samples, steps=(400, 800)) -> None:
    """Saved sample files for earlier steps (as the engine writes every log.sample_every), each
    visibly different, so that stepping back through the history shows something else."""
    from pathlib import Path

    from gantui.engine import sample_files

    folder = Path(run_dir) / run_files.SAMPLES
    for k, step in enumerate(steps):
        images = np.asarray(samples.images)
        if images.ndim == 4:
            images = np.clip(images * (0.3 + 0.3 * k) - 0.4, -1, 1)     # fainter early on
        else:
            images = images * (0.4 + 0.3 * k)                         # toy points still huddled
        old = ev.Samples(step, images.astype(np.float32), samples.real, samples.field, samples.extent,
                         samples.labels)
        sample_files.save(sample_files.path_for(folder, step), old)
    sample_files.save(sample_files.path_for(folder, samples.step), samples)


class ScriptedTrainer:
    """The test double for the engine: publishes `demo_run(kind)` then idles, applying the engine's
    typed commands as the real one does (every command: pause/resume, step, rates, n_critic, live
    settings, save, stop), with the same events and state messages, so every key's path is testable."""

    running: list["ScriptedTrainer"] = []   # started and not yet stopped (tests stop them all)

    @classmethod
    def stop_all(cls) -> None:
        for t in list(cls.running):
            t.control.stop(reason="user", save=False)

    def __init__(self, listeners=(), kind: str = "digits", run_dir=None) -> None:
        self.run_dir = run_dir
        self.control = Control()
        self._listeners = list(listeners)
        self.kind = kind
        self.state = ev.STARTING
        self.exit_code = 0
        self.step = 0
        self._ready = True
        self.lr = {"g": 1e-4, "d": 1e-4}
        self.n_critic = 5 if kind == "digits" else 1
        self.total = 20000
        self.paused = False
        self.settings: dict[str, float] = {}    # live loss settings a `set` changed
        self._last_metrics: dict = {}
        self.recorded: list[ev.Event] = []
        self.published = threading.Event()

    def add_listener(self, fn) -> None:
        self._listeners.append(fn)

    def _publish(self, msg) -> None:
        for fn in list(self._listeners):
            fn(msg)

    def record_event(self, kind: str, **data) -> None:
        e = ev.Event(self.step, kind, data)
        self.recorded.append(e)
        self._publish(e)

    def _state(self, state: str) -> None:
        self.state = state
        self._publish(ev.StateChanged(self.step, state, self.lr["g"], self.lr["d"], self.n_critic))

    def start(self) -> threading.Thread:
        ScriptedTrainer.running.append(self)
        t = threading.Thread(target=self._run_and_forget, name="scripted-trainer", daemon=True)
        t.start()
        return t

    def _run_and_forget(self) -> None:
        try:
            self._run()
        finally:
            if self in ScriptedTrainer.running:
                ScriptedTrainer.running.remove(self)

    def _run(self) -> None:
        info, snaps, samples, events = demo_run(self.kind)
        self._publish(info)
        for e in events:
            self._publish(e)
        for s in snaps:
            self.step = s.step
            self._publish(s)
        self._last_metrics = dict(snaps[-1].metrics)
        if self.run_dir is not None:
            write_sample_history(self.run_dir, samples)
        self._publish(samples)
        self._state(ev.RUNNING)
        self.published.set()
        self.paused = False
        while True:
            for cmd in self.control.drain():
                if self._apply(cmd):
                    return
            self.control.wait(0.05)

    def _apply(self, cmd) -> bool:
        """A command as the engine applies it (the same typed commands, the same events and state
        messages, none of the training). True when the run ends."""
        if isinstance(cmd, TogglePause):
            cmd = Resume(reason=cmd.reason) if self.paused else Pause(reason=cmd.reason)
        if isinstance(cmd, Pause) and not self.paused:
            self.paused = True
            self.record_event("paused")
            self._state(ev.PAUSED)
        elif isinstance(cmd, Resume) and self.paused:
            self.paused = False
            self.record_event("resumed")
            self._state(ev.RUNNING)
        elif isinstance(cmd, Step) and self.paused:
            self.step += 1      # one step: a snapshot at the new step, still paused
            m = dict(self._last_metrics, step=self.step, lr_g=self.lr["g"], lr_d=self.lr["d"])
            self._publish(ev.Snapshot(self.step, self.total, m, ev.PAUSED, self.n_critic, None))
            self._state(ev.PAUSED)
        elif isinstance(cmd, (ScaleLr, SetLr)):
            for w in ("g", "d") if cmd.which == "both" else (cmd.which,):
                old = self.lr[w]
                self.lr[w] = old * cmd.factor if isinstance(cmd, ScaleLr) else cmd.value
                self.record_event("lr_changed", which=w, old=old, new=self.lr[w], reason=cmd.reason or "user")
            self._state(self.state)
        elif isinstance(cmd, SetNCritic) or (isinstance(cmd, SetLive) and cmd.key == "loss.n_critic"):
            old, self.n_critic = self.n_critic, int(cmd.value)
            self.record_event("n_critic_changed", old=old, new=self.n_critic, reason=cmd.reason or "user")
            self._state(self.state)
        elif isinstance(cmd, SetLive):
            old = self.settings.get(cmd.key, 0.0)
            self.settings[cmd.key] = float(cmd.value)
            self.record_event("setting_changed", key=cmd.key, old=old, new=float(cmd.value),
                              reason=cmd.reason or "user")
        elif isinstance(cmd, Save):
            self.record_event("checkpoint", path=f"step_{self.step:08d}.safetensors", reason=cmd.reason or "user")
        elif isinstance(cmd, Stop):
            self.record_event("stopped", reason=cmd.reason)
            self.exit_code = 130 if cmd.reason == "interrupted" else 0
            self._state(ev.STOPPED)
            return True
        return False


def main(argv=None) -> int:
    """`python -m gantui.ui.scripted_run [digits|ring8|mixture1d] [RUN_DIR]`: the monitor over a
    scripted run, to look at the layout without training anything."""
    import sys
    from pathlib import Path

    from gantui.ui.launch import run_monitor

    args = list(sys.argv[1:] if argv is None else argv)
    kind = args[0] if args else "digits"
    run_dir = Path(args[1]) if len(args) > 1 else Path("runs/replay")
    return run_monitor(None, run_dir, "cpu", None, trainer_factory=lambda ls: ScriptedTrainer(ls, kind, run_dir))


if __name__ == "__main__":
    raise SystemExit(main())
