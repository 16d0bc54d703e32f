"""The training loop. Runs in one background thread; knows nothing about screens.

It publishes RunInfo once, a Snapshot every `log.every` steps, Samples every
`log.sample_every` steps, and Events; it obeys Commands from `self.control` between
optimizer steps. One "step" is one generator update, preceded by `n_critic` critic updates.

Speed: per step the loop only launches the model's own work plus a few `detach()`s. Loss
values stay on the device in a list and are reduced and copied to the host once per log
interval, so CUDA never waits on a per-step sync.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import threading
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from gantui import __version__, checkpoint, losses, models
from gantui.config import Config
from gantui.data import load_dataset
from gantui.diagnostics import Diagnostics
from gantui.engine import events as ev
from gantui.engine.control import Command, Control
from gantui.engine import samplefiles
from gantui.engine.rundir import RunDir
from gantui.errors import UserError
from gantui.pictures import save_samples

FIELD_GRID = 48  # resolution of the discriminator's score field shown behind 2-D toy data


def pick_device(requested: str) -> torch.device:
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise UserError("device 'cuda' was asked for but torch sees no CUDA device; use --device cpu or auto")
        return torch.device("cuda")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Trainer:
    def __init__(self, cfg: Config, run_dir: Path, *, device: str | None = None,
                 resume: Path | None = None, listeners: Sequence[ev.Listener] = ()) -> None:
        self.cfg = cfg
        self.rundir = RunDir(Path(run_dir))
        self.requested_device = device or cfg.run.device
        self.resume_path = resume
        self.control = Control()
        self._listeners: list[ev.Listener] = list(listeners)
        self.state = ev.STARTING
        self.exit_code = 0
        self.step = 0
        self.info: ev.RunInfo | None = None
        self.error: str | None = None
        self.traceback_path: Path | None = None
        self.last_checkpoint: Path | None = None
        self._thread: threading.Thread | None = None
        self._ready = False

    # --- listeners ----------------------------------------------------------------------
    def add_listener(self, fn: ev.Listener) -> None:
        self._listeners.append(fn)

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
        event = ev.Event(self.step, kind, data)
        self.rundir.event(event.record())
        self._publish(event)

    def _set_state(self, state: str) -> None:
        self.state = state
        if self._ready:
            self._publish(ev.StateChanged(self.step, state, self.lr_g, self.lr_d, self.n_critic))

    # --- setup ---------------------------------------------------------------------------
    def setup(self) -> ev.RunInfo:
        cfg = self.cfg
        self.device = pick_device(self.requested_device)
        torch.manual_seed(cfg.run.seed)
        self.data = load_dataset(cfg.data, self.device, cfg.run.seed)
        info = self.data.info
        self.G, self.D = models.build(cfg, info)
        self.G.to(self.device)
        self.D.to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if cfg.model.ema > 0 else None

        opt = cfg.optim
        if opt.name == "adam":
            make = lambda params, lr: torch.optim.Adam(params, lr=lr, betas=tuple(opt.betas))  # noqa: E731
        else:
            make = lambda params, lr: torch.optim.RMSprop(params, lr=lr)  # noqa: E731
        self.opt_g = make(self.G.parameters(), opt.g_lr)
        self.opt_d = make(self.D.parameters(), opt.d_lr)
        self.base_lr = {"g": opt.g_lr, "d": opt.d_lr}
        self.n_critic = cfg.loss.n_critic

        # A fixed noise batch, drawn once from its own generator, so sample grids compare across steps.
        gen = torch.Generator().manual_seed(cfg.run.seed + 1)
        self.fixed_z = torch.randn(cfg.log.n_samples, self.G.latent_dim, generator=gen).to(self.device)
        self.fixed_y = (torch.arange(cfg.log.n_samples) % info.n_classes).to(self.device) if info.n_classes else None

        self.is_cuda = self.device.type == "cuda"
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.run.precision)
        use_amp = self.is_cuda and self.autocast_dtype is not None
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=use_amp and self.autocast_dtype == torch.float16)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=use_amp and self.autocast_dtype == torch.float16)
        self._autocast = (lambda: torch.autocast("cuda", dtype=self.autocast_dtype)) if use_amp else contextlib.nullcontext

        self.conditional = info.n_classes > 0 and cfg.model.arch == "conditional"
        if self.resume_path is not None:
            self._restore(checkpoint.resolve(self.resume_path))
        self._set_lrs()

        # The real reference the screen and the alerts compare against, without touching the global RNG.
        real, _ = self.data.real_batch(max(cfg.log.n_samples, 256), seed=cfg.run.seed + 2)
        self.real_std = float(real.float().flatten(1).std(0).mean())
        self.real_pdist = float(_mean_pdist(real.float().flatten(1)))
        self.real_points = real[: 512].float().cpu().numpy() if info.is_toy else None
        self.diagnostics = Diagnostics(cfg.diagnostics, cfg.loss.kind, self.real_std)

        self.rundir.open(cfg.to_toml())
        self.info = ev.RunInfo(
            name=cfg.run.name, device=str(self.device), run_dir=str(self.rundir.path),
            total_steps=cfg.run.steps, start_step=self.step, data_name=info.name, is_toy=info.is_toy,
            data_dim=info.shape[0] if info.is_toy else 0, loss_kind=cfg.loss.kind, n_critic=self.n_critic,
            lr_g=self.lr_g, lr_d=self.lr_d, real_std=self.real_std)
        self._ready = True
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
                group["lr"] = self.base_lr[which] * k

    @property
    def lr_g(self) -> float:
        return self.opt_g.param_groups[0]["lr"]

    @property
    def lr_d(self) -> float:
        return self.opt_d.param_groups[0]["lr"]

    # --- one step -----------------------------------------------------------------------------
    def _train_step(self, record: bool) -> dict[str, torch.Tensor]:
        """n_critic D updates and one G update. Returns device scalars; never syncs."""
        cfg, kind = self.cfg, self.cfg.loss.kind
        bsz, latent = cfg.data.batch_size, self.G.latent_dim
        out: dict[str, torch.Tensor] = {}
        for i in range(self.n_critic):
            real, y = self.data.sample(bsz)
            y = y if self.conditional else None
            z = torch.randn(bsz, latent, device=self.device)
            with self._autocast():
                with torch.no_grad():
                    fake = self.G(z, y)
                real_out = self.D(real, y)
                fake_out = self.D(fake, y)
                loss_d = losses.d_loss(kind, real_out, fake_out, cfg.loss.label_smoothing)
            if kind == "wgan_gp":
                gp = losses.gradient_penalty(self.D, real, fake.float(), y)
                loss_d = loss_d + cfg.loss.gp_lambda * gp
                out["gp"] = gp.detach()
            if cfg.loss.r1_gamma > 0:
                loss_d = loss_d + 0.5 * cfg.loss.r1_gamma * losses.r1_penalty(self.D, real, y)
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler_d.scale(loss_d).backward()
            if record and i == self.n_critic - 1:
                self.scaler_d.unscale_(self.opt_d)
                out["grad_norm_d"] = _grad_norm(self.D)
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()
            if kind == "wgan":
                with torch.no_grad():
                    for p in self.D.parameters():
                        p.clamp_(-cfg.loss.clip, cfg.loss.clip)
        out["d_loss"] = loss_d.detach()
        if record:
            out["d_real"] = losses.score_metric(kind, real_out.detach()).mean()
            out["d_fake"] = losses.score_metric(kind, fake_out.detach()).mean()

        z = torch.randn(bsz, latent, device=self.device)
        y_g = None
        if self.conditional:
            y_g = torch.randint(0, self.data.info.n_classes, (bsz,), device=self.device)
        self.D.requires_grad_(False)  # the G step needs gradients through D, not of D's weights
        with self._autocast():
            loss_g = losses.g_loss(kind, self.D(self.G(z, y_g), y_g))
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(loss_g).backward()
        self.D.requires_grad_(True)
        if record:
            self.scaler_g.unscale_(self.opt_g)
            out["grad_norm_g"] = _grad_norm(self.G)
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        out["g_loss"] = loss_g.detach()
        if self.G_ema is not None:
            _ema_update(self.G_ema, self.G, self.cfg.model.ema)
        self.step += 1
        if self.cfg.optim.lr_decay != "none":
            self._set_lrs()
        return out

    # --- the loop -------------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        """setup() and run() on a daemon thread (for the monitor)."""
        def target():
            try:
                if not self._ready:
                    self.setup()
            except UserError as e:
                self.error = str(e)
                self.exit_code = 2
                self.state = ev.CRASHED
                self._publish(ev.Event(self.step, "error", {"message": str(e), "user_error": True}))
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

    def run(self) -> str:
        try:
            return self._run()
        except Exception as e:  # noqa: BLE001
            self._crash(e)
            return self.state
        finally:
            self.rundir.close()

    def _crash(self, exc: BaseException) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        self.traceback_path = self.rundir.save_traceback(exc)
        self.exit_code = 1
        with contextlib.suppress(Exception):
            self.record_event("error", message=self.error, traceback=str(self.traceback_path))
        self.state = ev.CRASHED
        self._publish(ev.StateChanged(self.step, ev.CRASHED, 0.0, 0.0, 0))

    def _run(self) -> str:
        cfg = self.cfg
        assert self._ready, "call setup() first"
        self._publish(self.info)
        self.record_event("started", resumed_from=str(self.resume_path) if self.resume_path else None,
                          device=str(self.device), total_steps=cfg.run.steps)
        self._set_state(ev.RUNNING)
        self._acc: list[dict[str, torch.Tensor]] = []
        self._interval_start = time.perf_counter()
        self._interval_step = self.step
        self._rate: float | None = None
        self._publish_samples()
        paused = False
        pending_single = 0

        while self.step < cfg.run.steps:
            for cmd in self.control.drain():
                result = self._apply(cmd, paused)
                if result == "stop":
                    return self.state
                if result == "pause":
                    paused = True
                elif result == "resume":
                    paused = False
                elif result == "step":
                    pending_single += 1
            if paused and not pending_single:
                self.control.wait(0.5)
                continue

            # the last step always records, so the final partial interval has every metric
            record = ((self.step + 1) % cfg.log.every == 0 or bool(pending_single)
                      or self.step + 1 == cfg.run.steps)
            self._acc.append(self._train_step(record))
            if record:
                if not self._log():
                    return self._diverge()
            if pending_single:
                pending_single -= 1
                self._publish(ev.StateChanged(self.step, ev.PAUSED, self.lr_g, self.lr_d, self.n_critic))
            if self.step % cfg.log.sample_every == 0:
                self._publish_samples(save=True)
            if self.step % cfg.log.checkpoint_every == 0 and self.step < cfg.run.steps:
                self._checkpoint(reason="scheduled")

        if self._acc:
            if not self._log():
                return self._diverge()
        if self.step % cfg.log.sample_every != 0:
            self._publish_samples(save=True)
        self._checkpoint(reason="finished")
        self.record_event("finished", total_steps=cfg.run.steps)
        self._set_state(ev.FINISHED)
        return ev.FINISHED

    def _apply(self, cmd: Command, paused: bool) -> str | None:
        name = cmd.name
        if name == "toggle_pause":
            name = "resume" if paused else "pause"
        if name == "pause" and not paused:
            self.record_event("paused")
            self._set_state(ev.PAUSED)
            return "pause"
        if name == "resume" and paused:
            self.record_event("resumed")
            self._interval_start = time.perf_counter()  # a pause must not read as a slow interval
            self._interval_step = self.step
            self._set_state(ev.RUNNING)
            return "resume"
        if name == "step":
            return "step" if paused else None
        if name in ("scale_lr", "set_lr"):
            for which in ("g", "d") if cmd.which == "both" else (cmd.which,):
                old = self.base_lr[which]
                new = old * cmd.value if name == "scale_lr" else cmd.value
                if not (math.isfinite(new) and new > 0):
                    continue
                self.base_lr[which] = new
                self._set_lrs()
                self.record_event("lr_changed", which=which, old=old, new=new,
                                  reason=cmd.reason or "user")
            self._set_state(self.state)
            return None
        if name == "set_n_critic":
            old, self.n_critic = self.n_critic, max(1, int(cmd.value))
            self.record_event("n_critic_changed", old=old, new=self.n_critic)
            self._set_state(self.state)
            return None
        if name == "save":
            self._checkpoint(reason=cmd.reason or "user")
            return None
        if name == "stop":
            if cmd.value:
                self._checkpoint(reason=cmd.reason or "stop")
            self.exit_code = 130 if cmd.reason == "interrupted" else 0
            self.record_event("stopped", reason=cmd.reason or "user")
            self._set_state(ev.STOPPED)
            return "stop"
        return None

    # --- logging ---------------------------------------------------------------------------
    def _log(self) -> bool:
        """Reduce the interval's device scalars with one host copy. False when training diverged."""
        acc, self._acc = self._acc, []
        keys = ("d_loss", "g_loss", "gp")
        means = {k: torch.stack([a[k] for a in acc if k in a]).float().mean() for k in keys if k in acc[-1]}
        last = acc[-1]
        extra = {k: last[k].float() for k in ("d_real", "d_fake", "grad_norm_d", "grad_norm_g") if k in last}
        with torch.no_grad():
            # The live G, not the EMA copy: early EMA weights are mostly the initial ones and would
            # read as a collapse that is not happening.
            samples = self._generate(live=True).float().flatten(1)
            sample_std = samples.std(0).mean()
            sample_pdist = _mean_pdist(samples)
            weights = self._weights_sum()  # NaN/Inf in any weight makes this non-finite
        names = list(means) + list(extra) + ["sample_std", "sample_pdist"]
        values = torch.stack(list(means.values()) + list(extra.values())
                             + [sample_std, sample_pdist, weights]).cpu().tolist()  # the one host copy
        weights_ok = math.isfinite(values.pop())
        now = time.perf_counter()
        done = self.step - self._interval_step
        if done > 0 and now > self._interval_start:
            rate = done / (now - self._interval_start)
            self._rate = rate if self._rate is None else 0.7 * self._rate + 0.3 * rate
        self._interval_start, self._interval_step = now, self.step

        metrics = {"step": self.step, "time": time.time()}
        metrics.update(dict(zip(names, values)))
        if self.real_pdist > 0:
            metrics["sample_pdist"] = metrics["sample_pdist"] / self.real_pdist
        else:
            del metrics["sample_pdist"]  # undefined; a 0 would read as a collapse
        metrics["lr_g"], metrics["lr_d"] = self.lr_g, self.lr_d
        metrics["steps_per_s"] = self._rate or 0.0
        if self.cfg.is_critic:
            metrics["wasserstein"] = metrics["d_real"] - metrics["d_fake"]
            metrics.setdefault("gp", 0.0)
        else:
            metrics.pop("gp", None)
        self.rundir.metric(metrics)
        eta = (self.cfg.run.steps - self.step) / self._rate if self._rate else None
        self._publish(ev.Snapshot(self.step, self.cfg.run.steps, metrics, self.state, self.n_critic, eta))

        finite = all(math.isfinite(v) for k, v in metrics.items() if isinstance(v, float))
        alerts = self.diagnostics.update(metrics)
        if finite and not weights_ok:  # NaN weights that no metric shows yet
            alerts += self.diagnostics.report_divergence(self.step, "weights", metrics=metrics)
        for alert in alerts:
            data = {k: v for k, v in alert.items() if k not in ("step", "kind")}
            self.record_event("alert", **data)
        return finite and weights_ok

    @torch.no_grad()
    def _weights_sum(self) -> torch.Tensor:
        sums = [p.sum() for p in self.G.parameters()] + [p.sum() for p in self.D.parameters()]
        return torch.stack(sums).float().abs().sum()

    def _weights_finite(self) -> bool:
        return bool(torch.isfinite(self._weights_sum()))

    def _diverge(self) -> str:
        """Stop updating at once; the last good checkpoint stays untouched."""
        self.exit_code = 3
        self.record_event("diverged", last_good_checkpoint=str(self.last_checkpoint) if self.last_checkpoint else None)
        self._set_state(ev.DIVERGED)
        return ev.DIVERGED

    @torch.no_grad()
    def _generate(self, live: bool = False) -> torch.Tensor:
        """The fixed-noise batch, from the EMA generator unless `live` (or there is none)."""
        g = self.G if live or self.G_ema is None else self.G_ema
        was_training = g.training
        g.eval()  # no BatchNorm statistics change, so logging never alters the training
        out = g(self.fixed_z, self.fixed_y)
        g.train(was_training)
        return out

    def _publish_samples(self, save: bool = False) -> None:
        images = self._generate().float().cpu().numpy()
        field = extent = None
        if self.data.info.is_toy and images.shape[1] == 2:
            field, extent = self._d_field(images)
        labels = None if self.fixed_y is None else self.fixed_y.cpu().numpy()
        samples = ev.Samples(self.step, images, self.real_points, field, extent, labels)
        self._publish(samples)
        if save:
            save_samples(self.rundir.sample_path(self.step), images, self.real_points)
            samplefiles.save(samplefiles.path_for(self.rundir.samples, self.step), samples)

    @torch.no_grad()
    def _d_field(self, fake: np.ndarray):
        pts = np.concatenate([fake, self.real_points])
        lo, hi = pts.min(0), pts.max(0)
        span = max(float((hi - lo).max()), 1e-3) * 0.6
        mid = (lo + hi) / 2
        extent = (float(mid[0] - span), float(mid[0] + span), float(mid[1] - span), float(mid[1] + span))
        xs = torch.linspace(extent[0], extent[1], FIELD_GRID)
        ys = torch.linspace(extent[2], extent[3], FIELD_GRID)  # row 0 at ymin, as render.density_plot expects
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], -1).reshape(-1, 2).to(self.device)
        was_training = self.D.training
        self.D.eval()  # no spectral-norm power iteration, no dropout draw: the training is untouched
        scores = self.D(grid).float()
        self.D.train(was_training)
        return scores.reshape(FIELD_GRID, FIELD_GRID).cpu().numpy(), extent

    # --- checkpoints ------------------------------------------------------------------------------
    def _checkpoint(self, reason: str) -> Path | None:
        if self.state == ev.DIVERGED or not self._weights_finite():
            return None
        previous = self.state
        self._set_state(ev.SAVING)
        tensors, metadata = self._state_tensors()
        path = self.rundir.checkpoint_path(self.step)
        checkpoint.save(path, tensors, metadata)
        checkpoint.save(self.rundir.latest, tensors, metadata)
        self.rundir.prune_checkpoints(self.cfg.log.keep)
        self.last_checkpoint = path
        self.record_event("checkpoint", path=str(path), reason=reason)
        self._set_state(previous)
        return path

    def _state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        t = checkpoint.flatten_module("generator", self.G)
        t.update(checkpoint.flatten_module("discriminator", self.D))
        if self.G_ema is not None:
            t.update(checkpoint.flatten_module("generator_ema", self.G_ema))
        og, groups_g = checkpoint.flatten_optimizer("optim_g", self.opt_g)
        od, groups_d = checkpoint.flatten_optimizer("optim_d", self.opt_d)
        t.update(og)
        t.update(od)
        t["rng.cpu"] = torch.get_rng_state()
        if self.is_cuda:
            t["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        t["fixed.z"] = self.fixed_z
        if self.fixed_y is not None:
            t["fixed.y"] = self.fixed_y
        for name, scaler in (("scaler_g", self.scaler_g), ("scaler_d", self.scaler_d)):
            if scaler.is_enabled():
                t[f"{name}.scale"] = torch.tensor(scaler.get_scale())
        info = self.data.info
        meta = {
            "gantui_version": __version__,
            "format_version": checkpoint.FORMAT_VERSION,
            "step": str(self.step),
            "config": self.cfg.to_toml(),
            "optim_g.param_groups": groups_g,
            "optim_d.param_groups": groups_d,
            "state": json.dumps({"base_lr": self.base_lr, "n_critic": self.n_critic}),
            "data_info": json.dumps({"name": info.name, "shape": list(info.shape),
                                     "n_classes": info.n_classes, "is_toy": info.is_toy}),
        }
        return t, meta

    def _restore(self, path: Path) -> None:
        tensors, meta = checkpoint.read(path)
        checkpoint.take_module("generator", tensors, self.G, path)
        checkpoint.take_module("discriminator", tensors, self.D, path)
        if self.G_ema is not None:
            prefix = "generator_ema" if any(k.startswith("generator_ema.") for k in tensors) else "generator"
            checkpoint.take_module(prefix, tensors, self.G_ema, path)
        try:
            self.opt_g.load_state_dict(checkpoint.unflatten_optimizer("optim_g", tensors, meta["optim_g.param_groups"]))
            self.opt_d.load_state_dict(checkpoint.unflatten_optimizer("optim_d", tensors, meta["optim_d.param_groups"]))
        except (KeyError, ValueError) as e:
            raise checkpoint.CheckpointError(
                f"{path}: optimiser state does not fit [optim] of this config ({e}); "
                f"resume with the preset the run was started with") from None
        # Rates and n_critic changed from the keyboard live in the checkpoint; a value the user
        # changed in the preset or with --set since then wins over it.
        state = json.loads(meta.get("state", "{}"))
        saved = checkpoint.config_of(meta, path)
        for which, key in (("g", "g_lr"), ("d", "d_lr")):
            if getattr(saved.optim, key) == getattr(self.cfg.optim, key) and which in state.get("base_lr", {}):
                self.base_lr[which] = float(state["base_lr"][which])
        if saved.loss.n_critic == self.cfg.loss.n_critic:
            self.n_critic = int(state.get("n_critic", self.n_critic))
        self.step = int(meta["step"])
        if "fixed.z" in tensors and tensors["fixed.z"].shape == self.fixed_z.shape:
            self.fixed_z = tensors["fixed.z"].to(self.device)
        torch.set_rng_state(tensors["rng.cpu"])
        if self.is_cuda and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        for name, scaler in (("scaler_g", self.scaler_g), ("scaler_d", self.scaler_d)):
            if scaler.is_enabled() and f"{name}.scale" in tensors:
                scaler.update(float(tensors[f"{name}.scale"]))
        self.last_checkpoint = path


def _grad_norm(module: torch.nn.Module) -> torch.Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros((), device=next(module.parameters()).device)
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)).float())


@torch.no_grad()
def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    ema_params = list(ema.parameters())
    torch._foreach_lerp_(ema_params, [p.detach() for p in model.parameters()], 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)


def _mean_pdist(x: torch.Tensor) -> torch.Tensor:
    """Mean pairwise Euclidean distance of a batch (the diversity signal of the collapse alert)."""
    if x.shape[0] < 2:
        return torch.zeros((), device=x.device)
    return torch.pdist(x).mean()
