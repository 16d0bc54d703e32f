"""The training loop and its commands. Runs on one thread; knows nothing about screens.

It publishes RunInfo once, a Snapshot every `log.every` steps, Samples every
`log.sample_every` steps, and Events; it obeys Commands from `self.control` between
optimizer steps, and inside a long critic loop (a pause or stop never waits for a step of
many critic updates to end). One "step" is one generator update, preceded by `n_critic`
critic updates.

Every torch call of a run happens on the thread that runs `setup()` and `run()` (`start()`
runs both on one new thread): the data, the models, the steps, the samples drawn for the
screen, the checkpoints. Consumers get plain numbers and numpy arrays. Two threads running
torch's parallel ops each bring their own OpenMP team, which on a small machine halves the
speed; `torch_threads` records which threads touched torch here, so a test can hold the line.

The pieces: `parts` (what is built at setup), `step` (the math of one step), `records` (a
log step's metrics), `samples` (the fixed-noise pictures), `state` (what a checkpoint holds),
`distributed` (what a run of several processes does differently: `Local` is the no-op strategy
of a single process).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from gantui import checkpoint, limits
from gantui.vocab import criteria
from gantui.config import Config
from gantui.diagnostics import Diagnostics
from gantui.engine import best as best_mod
from gantui.engine import distributed
from gantui.engine import events as ev
from gantui.engine import parts as parts_mod
from gantui.engine import sample_files
from gantui.engine import state as state_mod
from gantui.engine import recovery as recovery_mod
from gantui.engine.control import (Command, Control, PauseGate, Save, ScaleLr, SetLive, SetLr, SetNCritic, Step, Stop,
                                   command_of_fix, new_rate)
from gantui.engine.protocol import LIVE_KEYS
from gantui.engine.quality import LiveQuality
from gantui.engine.records import Rate, Recorder
from gantui.engine.rundir import RunDir
from gantui.engine.fixed_samples import SampleMaker
from gantui.engine.step import GanStep, Interrupted
from gantui.engine.stoprules import RuleStop, StopRules
from gantui.errors import UserError
from gantui.pictures import save_samples


STOP = "stop"
SAMPLE_REFRESH_S = (3.0, 30.0)   # the screen's samples: at least this often (first minute, then later)
LIVE_LOSS_KEYS = tuple(k for k in LIVE_KEYS if k.startswith("loss.") and k != "loss.n_critic")  # n_critic: SetNCritic's
LIVE_AUGMENT_KEYS = tuple(k for k in LIVE_KEYS if k.startswith("data.augment"))  # d_overfitting's fix (gantui.augment)


class Trainer(PauseGate):
    def __init__(self, cfg: Config, run_dir: Path, *, device: str | None = None,
                 resume: Path | None = None, listeners: Sequence[ev.Listener] = (),
                 strategy: distributed.Local | None = None) -> None:
        self.cfg = cfg
        self.strategy = strategy or distributed.Local()
        # in a distributed run only rank 0 writes the run directory
        self.rundir = RunDir(Path(run_dir)) if self.strategy.is_main else distributed.NullRunDir(Path(run_dir))
        self.requested_device = device or cfg.run.device
        self.resume_path = resume
        self.control = Control()
        self._listeners: list[ev.Listener] = list(listeners)
        self.state = ev.STARTING
        self.exit_code = 0
        self.rt = state_mod.Runtime(n_critic=cfg.loss.n_critic)
        self.info: ev.RunInfo | None = None
        self.error: str | None = None
        self.traceback_path: Path | None = None
        self.last_checkpoint: Path | None = None
        self.torch_threads: set[str] = set()
        self._at_end: list[Callable[[], None]] = []   # called once the loop has ended (listeners' flush)
        self.paused = False
        self._single = 0            # single steps asked for while paused
        self._thread: threading.Thread | None = None
        self._ready = False
        self._sync_due = True       # a distributed run exchanges commands at the next boundary
        self.applied: list[tuple[int, str]] = []   # (step, command) as applied here
        self.best_path: Path | None = None          # checkpoints/best.safetensors once written
        self.rule_stop: RuleStop | None = None          # the [stop] rule that fired (rank 0)
        self._best_missing_noted = False
        self.recovery = recovery_mod.Recovery(cfg.recover, cfg.log, window=cfg.diagnostics.window)
        self._overdue: dict | None = None   # an alert of [recover] on, raised past its grace
        self._started_at = self._samples_at = time.monotonic()

    # --- the runtime state, by its usual names --------------------------------------------
    @property
    def step(self) -> int:
        return self.rt.step

    @step.setter
    def step(self, value: int) -> None:
        self.rt.step = value

    @property
    def n_critic(self) -> int:
        return self.rt.n_critic

    # --- listeners ----------------------------------------------------------------------
    def add_listener(self, fn: ev.Listener) -> None:
        self._listeners.append(fn)

    def call_at_end(self, fn: Callable[[], None]) -> None:
        """`fn()` once the run has ended, before the run directory is closed (a listener's last flush)."""
        self._at_end.append(fn)

    def remove_listener(self, fn: ev.Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(fn)

    def _publish(self, message: ev.Message) -> None:
        for fn in list(self._listeners):
            try:
                fn(message)
            except Exception:  # a broken consumer must never stop the training
                self.remove_listener(fn)

    def record_event(self, kind: str, **data) -> None:
        """Write an event to events.jsonl and publish it. Safe from any thread."""
        event = ev.Event(self.step, kind, data, journaled=self.rundir.is_open)
        self.rundir.event(event.record())
        self._publish(event)

    def _set_state(self, state: str) -> None:
        self.state = state
        if self._ready:
            self._publish(ev.StateChanged(self.step, state, self.lr_g, self.lr_d, self.n_critic))

    def _touch(self) -> None:
        self.torch_threads.add(threading.current_thread().name)

    # --- setup ---------------------------------------------------------------------------
    def setup(self) -> ev.RunInfo:
        self._touch()
        cfg = self.cfg
        p = self.parts = parts_mod.build(cfg, self.strategy.device(self.requested_device), progress=self._note)
        self.opt_g, self.opt_d = p.opt_g, p.opt_d
        self.rt.base_lr = {"g": cfg.optim.g_lr, "d": cfg.optim.d_lr}
        resumed = None
        if self.resume_path is not None:
            path = checkpoint.resolve(self.resume_path)
            tensors, meta = state_mod.restore(path, cfg, p, self.rt)
            resumed = {"tensors": tensors, "meta": meta, "path": path}
            self.last_checkpoint = path
        d_model, g_model = self.strategy.prepare(cfg, p, resumed)
        self.device, self.data = p.device, p.data
        self.G, self.D, self.G_ema = p.G, p.D, p.G_ema
        self.fixed_z, self.fixed_y = p.fixed_z, p.fixed_y
        self._set_lrs()
        self.stepper = GanStep(cfg, p, d_model=d_model, g_model=g_model)
        for key, value in self.rt.live.items():  # fixes applied live before the checkpoint
            if key in LIVE_AUGMENT_KEYS:
                apply_augment_key(p.augment, key, value)
            else:
                setattr(self.stepper, key.split(".", 1)[1], value)
        if resumed is not None and "augment.p" in resumed["tensors"] and p.augment.on:
            p.augment.p.fill_(float(resumed["tensors"]["augment.p"].flatten()[0].clamp(0, 1)))

        # The real reference the screen and the alerts compare against, without touching the global RNG.
        info = p.data.info
        real, real_y = p.data.real_batch(max(cfg.log.n_samples, 256), seed=cfg.run.seed + 2)
        self.recorder = Recorder(cfg, p, real, real_y, self.strategy)
        self.recorder.label_smoothing = self.stepper.label_smoothing
        self.real_std = self.recorder.real_std
        real_points = real[:512].float().cpu().numpy() if info.is_toy else None
        self.sampler = SampleMaker(p, real_points)
        self.diagnostics = Diagnostics(cfg.diagnostics, cfg.loss.kind, self.real_std,
                                       label_smoothing=self.stepper.label_smoothing, n_critic=self.n_critic)
        diag_note = state_mod.restore_diagnostics(self.diagnostics, resumed["meta"]) if resumed else None
        self.quality = LiveQuality(cfg, p, notify=self._note)
        previous = best_mod.parse(resumed["meta"].get("best")) if resumed else None
        self.best = best_mod.BestTracker(criteria.resolve(cfg.run.best_by, info.is_toy), previous)
        self.stop_rules = StopRules(cfg.stop, self.best.key, self.best.best.value if self.best.best else None)
        if not info.is_toy and self.quality.will_measure(self.step, cfg.run.steps):
            self.quality.prepare()  # the feature network trains before step 1, not at the first measurement

        if self.recovery.enabled and self.strategy.distributed:
            raise UserError("[recover] enabled: rollbacks are not supported in a run of several processes "
                            "(--nproc or torchrun) yet; set recover.enabled = false")
        self.rundir.open(cfg.to_toml())
        device_name = str(p.device) if not self.strategy.distributed else \
            f"{p.device.type} x{self.strategy.world_size} processes"
        self.info = ev.RunInfo(
            name=cfg.run.name, device=device_name, run_dir=str(self.rundir.path),
            total_steps=cfg.run.steps, start_step=self.step, data_name=info.name, is_toy=info.is_toy,
            data_dim=info.shape[0] if info.is_toy else 0, loss_kind=cfg.loss.kind, n_critic=self.n_critic,
            lr_g=self.lr_g, lr_d=self.lr_d, real_std=self.real_std)
        self._ready = True
        if diag_note:
            self._note(diag_note)
        return self.info

    # --- learning rates --------------------------------------------------------------------
    def _decay(self) -> float:
        if self.cfg.optim.lr_decay == "linear":
            horizon = self.cfg.optim.decay_steps or self.cfg.run.steps
            return max(0.0, 1.0 - self.step / horizon)
        return 1.0

    def _set_lrs(self) -> None:
        k = self._decay()
        for which, opt in (("g", self.opt_g), ("d", self.opt_d)):
            for group in opt.param_groups:
                group["lr"] = self.rt.base_lr[which] * k

    @property
    def lr_g(self) -> float:
        return self.opt_g.param_groups[0]["lr"]

    @property
    def lr_d(self) -> float:
        return self.opt_d.param_groups[0]["lr"]

    # --- thread -----------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        """setup() and run() on one new thread: every torch call of the run happens there."""
        def target():
            try:
                if not self._ready:
                    self.setup()
            except UserError as e:
                self.error = str(e)
                self.exit_code = 2
                self.state = ev.CRASHED
                self._publish(ev.Event(self.step, "error", {"message": str(e), "user_error": True}, journaled=False))
                return
            except Exception as e:  # noqa: BLE001 - shown on screen, traceback saved
                self._crash(e)
                return
            self.run()

        self._thread = threading.Thread(target=target, name="gantui-trainer", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # --- the loop -------------------------------------------------------------------------------
    def run(self) -> str:
        try:
            return self._run()
        except OSError as e:
            return self._io_fault(e)
        except Exception as e:  # noqa: BLE001
            self._crash(e)
            return self.state
        finally:
            for fn in self._at_end:
                fn()
            self.rundir.close()
            self.strategy.finish(self)

    def _crash(self, exc: BaseException) -> None:
        self.exit_code = 1  # first: nothing below may leave a crashed run with exit code 0
        self.error = self.strategy.explain(exc) or f"{type(exc).__name__}: {exc}"
        self.state = ev.CRASHED
        with contextlib.suppress(Exception):
            self.traceback_path = self.rundir.save_traceback(exc)
        with contextlib.suppress(Exception):
            self.record_event("error", message=self.error, traceback=str(self.traceback_path))
        self._publish(ev.StateChanged(self.step, ev.CRASHED, 0.0, 0.0, 0))

    def _io_fault(self, exc: OSError) -> str:
        """A write of the run's own files failed (disk full, I/O error, read-only): try one last
        checkpoint, which keeps the previous `latest` if it cannot be written, then stop with 1."""
        saved = None
        with contextlib.suppress(Exception):
            saved = self._checkpoint(reason="io_error", collective=False)
        where = getattr(exc, "filename", None)
        self.error = (f"cannot write the run's files: {exc.strerror or exc}" + (f" ({where})" if where else "")
                      + (f"; checkpoint saved: {saved}" if saved else
                         f"; last checkpoint: {self.last_checkpoint or 'none'}"))
        self.exit_code = 1
        self.state = ev.CRASHED
        try:
            self.record_event("error", message=self.error, io_error=True)
        except Exception:  # noqa: BLE001 - events.jsonl may be the file that failed: the screen still hears it
            self._publish(ev.Event(self.step, "error", {"message": self.error, "io_error": True}, journaled=False))
        self._publish(ev.StateChanged(self.step, ev.CRASHED, 0.0, 0.0, 0))
        return self.state

    def _run(self) -> str:
        cfg = self.cfg
        assert self._ready, "call setup() first"
        self._touch()
        self._publish(self.info)
        self.record_event("started", resumed_from=str(self.resume_path) if self.resume_path else None,
                          device=str(self.device), total_steps=cfg.run.steps,
                          **({"world_size": self.strategy.world_size} if self.strategy.distributed else {}),
                          **({"memory_estimate": self.parts.memory.peak} if self.parts.memory else {}))
        self._set_state(ev.RUNNING)
        if self.parts.holdout_note:
            self._note(self.parts.holdout_note)
        self._acc: list[dict[str, torch.Tensor]] = []
        self.rate = Rate(self.step)
        self._started_at = time.monotonic()
        self._publish_samples(save=self.step == 0)  # the step-0 grid: where the run began
        self.stop_rules.started = self.stop_rules.clock()  # max_minutes counts the training, not the setup
        if self.recovery.enabled:
            self._save_rollback_point()
        while True:
            done = self._train()
            if done is not None:
                return done
            if self._acc and not self._log():
                if self._recover(self._divergence_alert()):
                    continue
                return self._diverge()
            break
        if self.step % cfg.log.sample_every != 0:
            self._publish_samples(save=True)
        self._checkpoint(reason="finished")
        self.record_event("finished", total_steps=cfg.run.steps)
        self._set_state(ev.FINISHED)
        return ev.FINISHED

    def _train(self) -> str | None:
        """Steps until run.steps; the run's final state when it ends early (stopped, diverged, ...)."""
        cfg = self.cfg
        while self.step < cfg.run.steps:
            if self._commands() == STOP:
                return self.state
            if self.paused and not self._single:
                self.strategy.wait_paused(self.control)
                continue

            # the last step always records, so the final partial interval has every metric
            record = ((self.step + 1) % cfg.log.every == 0 or bool(self._single)
                      or self.step + 1 == cfg.run.steps)
            try:
                out = self.stepper(self.n_critic, record, start=self.rt.critic_done,
                                   between=self._between if self.strategy.commands_between_critics else None)
            except Interrupted:
                return self.state  # stopped inside the critic loop (a checkpoint was taken there)
            record = record or bool(self._single)  # paused inside it, then finished by `n`
            self.rt.critic_done = 0
            self.step += 1
            self.stepper.update_ema(self.step - 1)
            if cfg.optim.lr_decay != "none":
                self._set_lrs()
            self._acc.append(out)
            if record and not self._log():
                if self._recover(self._divergence_alert()):
                    continue
                return self._diverge()
            if self._overdue is not None:
                alert, self._overdue = self._overdue, None
                if self._recover(alert):
                    continue
                return self._unrecovered(alert)
            if self._single:
                self._single -= 1
                self._publish(ev.StateChanged(self.step, ev.PAUSED, self.lr_g, self.lr_d, self.n_critic))
            if self.step % cfg.log.sample_every == 0:
                self._publish_samples(save=True)
            elif self._samples_due():
                self._publish_samples()  # the screen's grid, between the saved ones
            if self.step % cfg.log.checkpoint_every == 0 and self.step < cfg.run.steps:
                self._checkpoint(reason="scheduled")
            if self.recovery.point_due(self.step) and self.recovery.healthy(self.diagnostics.health()):
                self._save_rollback_point()
        return None

    # --- commands --------------------------------------------------------------------------------
    def _commands(self) -> str | None:
        """Obey the queued commands in order. A single step asked for while paused runs before
        the commands sent after it (n then s saves the stepped weights). A single process drains
        its queue every step; the ranks of a distributed run get rank 0's commands at log steps
        (and while paused), so that all apply them at the same step."""
        due, self._sync_due = self._sync_due or self.paused, False
        pending = self.strategy.commands(self.control, due)
        for i, cmd in enumerate(pending):
            if self._apply(cmd) == STOP:
                return STOP
            if isinstance(cmd, Step) and self._single:
                self.control.put_back(pending[i + 1:])
                break
        return None

    def _between(self, done: int) -> bool:
        """Inside the critic loop, after `done` updates: obey commands, block while paused.
        True when the step goes on as a single step (`n` while paused here): it must record."""
        if not self.control.pending():
            return False
        if self._single and not self.control.has(Stop):
            return False  # a step asked for with `n` runs whole; what was sent after it waits for it
        self.rt.critic_done = done  # a checkpoint taken now records where in the step it is
        while True:
            if self._commands() == STOP:
                raise Interrupted(done)
            if not self.paused or self._single:
                break
            self.control.wait(0.5)
        self.rt.critic_done = 0
        return bool(self._single)

    def _apply(self, cmd: Command) -> str | None:
        """The one place a command takes effect (typed at the edges: keys, socket, fixes)."""
        self.applied.append((self.step, cmd.name))
        if self._apply_pause(cmd, self.step):
            return None
        if isinstance(cmd, (ScaleLr, SetLr)):
            for which in ("g", "d") if cmd.which == "both" else (cmd.which,):
                if which not in self.rt.base_lr:
                    continue
                old = self.rt.base_lr[which]
                new = new_rate(cmd, old)
                if new is None:
                    continue
                self.rt.base_lr[which] = new
                self._set_lrs()
                self.record_event("lr_changed", which=which, old=old, new=new, reason=cmd.reason or "user")
            self._set_state(self.state)
        elif isinstance(cmd, SetNCritic) or (isinstance(cmd, SetLive) and cmd.key == "loss.n_critic"):
            old, self.rt.n_critic = self.n_critic, min(limits.MAX_N_CRITIC, max(1, int(cmd.value)))
            self.diagnostics.configure(n_critic=self.n_critic)
            self.record_event("n_critic_changed", old=old, new=self.n_critic, reason=cmd.reason or "user")
            self._set_state(self.state)
        elif isinstance(cmd, SetLive) and cmd.key in LIVE_LOSS_KEYS:
            self._set_live(cmd.key, cmd.value, cmd.reason or "user")
        elif isinstance(cmd, SetLive) and cmd.key in LIVE_AUGMENT_KEYS:
            self._set_augment(cmd.key, cmd.value, cmd.reason or "user")
        elif isinstance(cmd, Save):
            self._checkpoint(reason=cmd.reason or "user")
        elif isinstance(cmd, Stop):
            if cmd.save:
                self._checkpoint(reason=cmd.reason or "stop")
            self.exit_code = 130 if cmd.reason == "interrupted" else 0
            rule = self.rule_stop if cmd.reason == "rule" else None
            detail = {"rule": rule.rule, "evidence": rule.evidence, "message": rule.message} if rule else {}
            self.record_event("stopped", reason=cmd.reason or "user", **detail)
            self._set_state(ev.STOPPED)
            return STOP
        return None

    def _set_live(self, key: str, value: float, reason: str) -> None:
        """Change a loss setting from now on (an alert's fix): label smoothing, instance noise, or
        the gradient penalty's weight. Recorded as a `setting_changed` event and in checkpoints."""
        ok = math.isfinite(value) and value >= 0 and (key != "loss.label_smoothing" or value < 1)
        if not ok:
            return
        attr = key.split(".", 1)[1]
        old = getattr(self.stepper, attr)
        setattr(self.stepper, attr, float(value))
        self.rt.live[key] = float(value)
        if key == "loss.label_smoothing":
            self.diagnostics.configure(label_smoothing=float(value))
            self.recorder.label_smoothing = float(value)
        self.record_event("setting_changed", key=key, old=old, new=float(value), reason=reason)

    def _set_augment(self, key: str, value: float, reason: str) -> None:
        """Augment D's inputs from now on (d_overfitting's fix): `data.augment_p` a fixed
        probability, `data.augment_target` ADA towards that r_t from the p in force."""
        aug = self.parts.augment
        if aug is None or not (math.isfinite(value) and 0 <= value <= 1):
            return
        if key == "data.augment_target" and (not 0 < value < 1 or self.cfg.is_critic):
            return  # a critic's score has no sign for ADA to steer by (config refuses "ada" for it too)
        old = {"mode": aug.mode, "p": float(aug.p), "target": aug.target}
        apply_augment_key(aug, key, value)
        self.rt.live[key] = float(value)
        self.record_event("setting_changed", key=key, old=old["target" if key.endswith("target") else "p"],
                          new=float(value), mode=aug.mode, previous_mode=old["mode"], reason=reason)

    # --- logging ---------------------------------------------------------------------------
    def _log(self) -> bool:
        """One metrics record from the interval's device scalars. False when training diverged."""
        self._touch()
        acc, self._acc = self._acc, []
        values, weights_ok = self.recorder.reduce(acc)
        self._sync_due = True
        self.strategy.sync_buffers(self.parts)
        # Divergence is judged on the training's own figures (reduced over the ranks of a
        # distributed run, so every rank decides alike), not on live quality measurements.
        finite = all(math.isfinite(v) for v in values.values() if isinstance(v, float))
        if not self.strategy.is_main:
            return finite and weights_ok  # the same values on every rank: all decide alike
        metrics = {"step": self.step, "time": time.time()}
        metrics.update(values)
        metrics["lr_g"], metrics["lr_d"] = self.lr_g, self.lr_d
        metrics["steps_per_s"] = self.rate.update(self.step)
        quality: dict = {}
        if self.quality.due(self.step):
            quality = self.quality.measure()
            metrics.update(quality)
            self.rate.restart(self.step)  # the measurement's time is not the training's
        improved = bool(quality) and self.best.offer(self.step, quality)
        if quality and self.best.missing and self.best.best is None and not self._best_missing_noted:
            self._best_missing_noted = True
            self._note(f"run.best_by {self.best.key!r} is not measured on this run's data: no best checkpoint")
        if quality and self.best.best is not None:
            metrics["best"] = {"key": self.best.key, "value": self.best.best.value, "step": self.best.best.step}

        # The rules judge the record first, so the record carries their verdict (one source of
        # truth: the screen shows `health`, never a judgement of its own).
        alerts = self.diagnostics.update(metrics)
        if finite and not weights_ok:  # NaN weights that no metric shows yet
            alerts += self.diagnostics.report_divergence(self.step, "weights", metrics=metrics)
        metrics["health"] = self.diagnostics.health_record()
        stop = self.stop_rules.on_quality(self.step, quality) if quality else None
        stop = stop or self.stop_rules.on_record(self.step, self.diagnostics.active())
        if self.stop_rules.active:
            metrics["stop_rules"] = self.stop_rules.state()
        self.rundir.metric(metrics)
        eta = (self.cfg.run.steps - self.step) / self.rate.value if self.rate.value else None
        self._publish(ev.Snapshot(self.step, self.cfg.run.steps, metrics, self.state, self.n_critic, eta))
        for alert in alerts:
            data = {k: v for k, v in alert.items() if k not in ("step", "kind")}
            self.record_event("alert", **data)
        if improved and finite and weights_ok:
            self._save_best()
        if stop is not None and finite and weights_ok and self.rule_stop is None and self.step < self.cfg.run.steps:
            self.rule_stop = stop
            self.control.stop(reason="rule")  # every rank stops at the same step (a distributed run syncs commands)
        if self.recovery.enabled:
            self._overdue = self.recovery.overdue(self.diagnostics.active(), self.step)
        return finite and weights_ok

    def _note(self, message: str) -> None:
        """A line for the screen's event log (e.g. live quality preparing its feature network)."""
        self.record_event("note", message=message)

    def _weights_finite(self) -> bool:
        return all(torch.isfinite(p).all() for p in self.recorder.params)

    def _diverge(self) -> str:
        """Stop updating at once; the last good checkpoint stays untouched."""
        self.exit_code = 3
        self.record_event("diverged", last_good_checkpoint=str(self.last_checkpoint) if self.last_checkpoint else None)
        self._set_state(ev.DIVERGED)
        return ev.DIVERGED

    # --- recovery ([recover]) --------------------------------------------------------------------
    def _divergence_alert(self) -> dict:
        found = [a for a in self.diagnostics.active() if a.get("rule") == recovery_mod.DIVERGENCE]
        return found[0] if found else {"rule": recovery_mod.DIVERGENCE, "step": self.step}

    def _recover(self, alert: dict) -> bool:
        """Roll back to a good checkpoint and apply the alert's fix; False when recovery does not
        cover this alert, its attempts are spent, or there is no checkpoint to go back to."""
        from gantui.diagnostics.actions import describe

        rec, rule = self.recovery, alert.get("rule", "?")
        if not rec.watches(rule):
            return False
        if rec.attempts >= rec.max_attempts:
            self.record_event("recover_failed", rule=rule, attempts=rec.attempts,
                              reason=f"{rec.attempts} of max_attempts = {rec.max_attempts} rollbacks spent")
            return False
        target = rec.target(self.rundir.checkpoints, alert, self.step)
        if target is None:
            self.record_event("recover_failed", rule=rule, attempts=rec.attempts,
                              reason=f"no whole checkpoint from before step {rec.rose_at(alert)}")
            return False
        rec.attempts += 1
        from_step, action = self.step, recovery_mod.fix_for(alert)
        active = self.diagnostics.active()
        self._restore(target.path)
        moved = self.rundir.branch(self.step, rec.attempts)
        for old in active:  # the screen's alert panel: these belong to the abandoned stretch
            self._publish(ev.Event(self.step, "alert", {
                "rule": old["rule"], "state": "cleared", "severity": old["severity"], "evidence": {},
                "message": f"Left behind by the rollback to step {self.step}.", "fix": old["fix"], "action": None},
                journaled=False))
        self.record_event("rolled_back", from_step=from_step, to_step=self.step, fix=describe(action) or None,
                          action=action, rule=rule, alert_step=alert.get("step"), attempt=rec.attempts,
                          max_attempts=rec.max_attempts, checkpoint=str(target.path), target=target.kind,
                          abandoned=moved)
        if action is not None:  # the same command the monitor's `f` sends for this alert
            self._apply(command_of_fix(action, reason=f"recover:{rule}"))
        self._checkpoint(reason="rolled_back")
        self._save_rollback_point()
        self._set_state(ev.RUNNING)
        self._publish_samples()
        return True

    def _restore(self, path: Path) -> None:
        """Put the run back to a checkpoint of its own, in place: weights, optimisers, RNG, step,
        rates, live settings; the rules start afresh (their windows held the abandoned records)."""
        cfg = self.cfg
        self.rt.live = {}
        self.rt.base_lr = {"g": cfg.optim.g_lr, "d": cfg.optim.d_lr}
        self.rt.n_critic = cfg.loss.n_critic
        state_mod.restore(path, cfg, self.parts, self.rt)
        self.fixed_z = self.parts.fixed_z
        self._set_lrs()
        for key in LIVE_LOSS_KEYS:
            attr = key.split(".", 1)[1]
            setattr(self.stepper, attr, float(self.rt.live.get(key, getattr(cfg.loss, attr))))
        self.diagnostics = Diagnostics(cfg.diagnostics, cfg.loss.kind, self.real_std,
                                       label_smoothing=self.stepper.label_smoothing, n_critic=self.n_critic)
        self._acc = []
        self._overdue = None
        self.rate.restart(self.step)
        self.last_checkpoint = path

    def _save_rollback_point(self) -> None:
        """checkpoints/rollback/step_N.safetensors: a healthy state (see gantui.engine.recovery)."""
        if not self.strategy.is_main or not self._weights_finite():
            return
        folder = self.rundir.checkpoints / recovery_mod.ROLLBACK_DIR
        folder.mkdir(exist_ok=True)
        tensors, metadata = state_mod.to_tensors(self.cfg, self.parts, self.rt)
        checkpoint.save(folder / f"step_{self.step:08d}.safetensors", tensors, metadata)
        RunDir(self.rundir.path).prune_checkpoints(self.recovery.points, folder)

    def _unrecovered(self, alert: dict) -> str:
        """An alert of [recover] on outlived its rollbacks: save, stop with exit code 4."""
        self._checkpoint(reason="unrecovered")
        self.exit_code = recovery_mod.EXIT_UNRECOVERED
        self.error = (f"{alert.get('rule')} is still raised after {self.recovery.attempts} rollback(s) "
                      f"(recover.max_attempts = {self.recovery.max_attempts})")
        self.record_event("stopped", reason="recover", rule=alert.get("rule"),
                          evidence={"alert_step": alert.get("step"), "attempts": self.recovery.attempts},
                          message=self.error)
        self._set_state(ev.STOPPED)
        return ev.STOPPED

    def _generate(self, live: bool = False) -> torch.Tensor:
        """The fixed-noise batch, from the EMA generator unless `live` (or there is none)."""
        return self.recorder.generate_live() if live else self.sampler.generate()

    def _samples_due(self) -> bool:
        """The screen's samples also refresh on a time budget: every SAMPLE_REFRESH_S[0] seconds at
        first, growing with the run's age to SAMPLE_REFRESH_S[1], so the first minute shows progress
        however slow a step is, and a long run spends next to nothing on it (one G forward pass
        on the fixed noise per refresh)."""
        if not self.strategy.is_main:
            return False
        now = time.monotonic()
        lo, hi = SAMPLE_REFRESH_S
        return now - self._samples_at >= min(hi, max(lo, 0.1 * (now - self._started_at)))

    def _publish_samples(self, save: bool = False) -> None:
        if not self.strategy.is_main:
            return  # no RNG is drawn for samples, so skipping them leaves the other ranks in step
        self._touch()
        self._samples_at = time.monotonic()
        samples = self.sampler.make(self.step)
        self._publish(samples)
        if save:
            save_samples(self.rundir.sample_path(self.step), samples.images, samples.real)
            sample_files.save(sample_files.path_for(self.rundir.samples, self.step), samples)

    # --- checkpoints ------------------------------------------------------------------------------
    def _checkpoint(self, reason: str, collective: bool = True) -> Path | None:
        """Every rank calls this at the same step (the RNG gather is collective); rank 0 writes.
        `collective=False`: rank 0 alone, after a fault (other ranks' RNG states are not saved)."""
        if self.state == ev.DIVERGED or not self._weights_finite():
            return None
        self._touch()
        extra_rng = {}
        if collective:
            self.strategy.sync_buffers(self.parts)
            extra_rng = self.strategy.gather_rng(self.parts)
        if not self.strategy.is_main:
            return None
        previous = self.state
        self._set_state(ev.SAVING)
        try:
            tensors, metadata = state_mod.to_tensors(self.cfg, self.parts, self.rt, extra_rng=extra_rng)
            metadata.update(self.strategy.metadata() if collective else {})
            metadata.update(state_mod.diagnostics_metadata(self.diagnostics))
            if self.best.best is not None:
                metadata["best"] = self.best.best.to_json()
            path = self.rundir.checkpoint_path(self.step)
            checkpoint.save(path, tensors, metadata)
            checkpoint.save(self.rundir.latest, tensors, metadata)
            self.rundir.sync()  # the records up to this checkpoint are on disk with it
            self.rundir.prune_checkpoints(self.cfg.log.keep)
        finally:
            self._set_state(previous)
        self.last_checkpoint = path
        self.record_event("checkpoint", path=str(path), reason=reason)
        return path

    def _save_best(self) -> Path:
        """checkpoints/best.safetensors: this step's weights, whose live criterion is the best so far.
        Rank 0 alone (live quality is measured there); written like every checkpoint (temporary file,
        fsync, rename), never pruned by `log.keep`. A `best` event names the step, key and value."""
        self._touch()
        tensors, metadata = state_mod.to_tensors(self.cfg, self.parts, self.rt)
        best = self.best.best
        metadata["best"] = best.to_json()
        path = self.rundir.checkpoints / best_mod.BEST
        checkpoint.save(path, tensors, metadata)
        self.best_path = path
        self.record_event("best", path=str(path), key=best.key, value=best.value, best_step=best.step)
        return path


def apply_augment_key(aug, key: str, value: float) -> None:
    if key == "data.augment_p":
        aug.set_p(value)
    elif key == "data.augment_target":
        aug.set_target(value)
