"""One training step: `n_critic` discriminator updates, then one generator update.

The math of a step and nothing else: no commands, no files, no events. It launches the
models' own work plus a few `detach()`s and never reads a value back to the host, so CUDA
never waits on a per-step sync (the fp16 GradScaler is the exception: it checks for Inf
every step, which is why the no-sync promise is made for fp32 and bf16).

`between(done)` is called after each critic update but the last: the loop uses it to pause
or stop inside a long critic loop. It may block, or raise `Interrupted`; the step then ends
where it is, and `critic_done` says how far it got (a checkpoint records it, so a resume
continues the same step exactly). It returns True when the step must be recorded after all
(a single step asked for while paused inside it).
"""

from __future__ import annotations

from typing import Callable

import torch

from gantui import losses
from gantui.config import Config
from gantui.engine.parts import Parts


class Interrupted(Exception):
    """Raised by a `between` callback: leave the step after `done` critic updates."""

    def __init__(self, done: int) -> None:
        super().__init__(done)
        self.done = done


class GanStep:
    def __init__(self, cfg: Config, parts: Parts, *, d_model=None, g_model=None) -> None:
        """`d_model`/`g_model`: the modules to train through (a DDP wrapper, or the bare
        models by default). The bare `parts.D`/`parts.G` are used where no gradient of their
        own weights is wanted (fakes for the D step; D inside the G step)."""
        self.cfg = cfg
        self.p = parts
        self.D_train = d_model if d_model is not None else parts.D
        self.G_train = g_model if g_model is not None else parts.G
        self.kind = cfg.loss.kind
        # the settings an alert's fix may change live (gantui.diagnostics.actions.LIVE_KEYS)
        self.label_smoothing = cfg.loss.label_smoothing
        self.gp_lambda = cfg.loss.gp_lambda
        self.instance_noise = cfg.loss.instance_noise
        self.n_classes = parts.data.info.n_classes
        self.d_params = list(parts.D.parameters())
        self.g_params = list(parts.G.parameters())
        if parts.G_ema is not None:
            self._ema_params = list(parts.G_ema.parameters())
            self._ema_buffers = list(parts.G_ema.buffers())
            self._g_buffers = list(parts.G.buffers())

    def __call__(self, n_critic: int, record: bool, *, start: int = 0,
                 between: Callable[[int], bool] | None = None) -> dict[str, torch.Tensor]:
        """Device scalars of the step (more of them when `record`)."""
        cfg, p, kind = self.cfg, self.p, self.kind
        bsz, latent = cfg.data.batch_size, p.G.latent_dim
        out: dict[str, torch.Tensor] = {}
        for i in range(start, n_critic):
            real, y = p.data.sample(bsz)
            y = y if p.conditional else None
            z = torch.randn(bsz, latent, device=p.device)
            with p.autocast():
                with torch.no_grad():
                    fake = p.G(z, y)
                if self.instance_noise > 0:  # blur both distributions for D (Sønderby et al., 2017)
                    real = real + self.instance_noise * torch.randn_like(real)
                    fake = fake + self.instance_noise * torch.randn_like(fake)
                real_out = self.D_train(real, y)
                fake_out = self.D_train(fake, y)
                loss_d = losses.d_loss(kind, real_out, fake_out, self.label_smoothing)
            if kind == "wgan_gp":
                gp = losses.gradient_penalty(self.D_train, real, fake.float(), y)
                loss_d = loss_d + self.gp_lambda * gp
                out["gp"] = gp.detach()
            if cfg.loss.r1_gamma > 0:
                loss_d = loss_d + 0.5 * cfg.loss.r1_gamma * losses.r1_penalty(self.D_train, real, y)
            p.opt_d.zero_grad(set_to_none=True)
            p.scaler_d.scale(loss_d).backward()
            last = i == n_critic - 1
            if record and last:
                p.scaler_d.unscale_(p.opt_d)
                out["grad_norm_d"] = grad_norm(self.d_params)
            p.scaler_d.step(p.opt_d)
            p.scaler_d.update()
            if kind == "wgan":
                with torch.no_grad():
                    torch._foreach_clamp_min_(self.d_params, -cfg.loss.clip)
                    torch._foreach_clamp_max_(self.d_params, cfg.loss.clip)
            if not last and between is not None and between(i + 1):
                record = True  # paused in this step, then `n`: the step it finishes is recorded
        if start < n_critic:
            out["d_loss"] = loss_d.detach()
            if record:
                real_s, fake_s = losses.score_metric(kind, real_out), losses.score_metric(kind, fake_out)
                out["d_real"], out["d_fake"] = real_s.mean(), fake_s.mean()
                mid = losses.decision_midpoint(kind, self.label_smoothing)
                if mid is not None:
                    # D's accuracy on the last real and fake batches: each on its side of the
                    # midpoint between D's targets (the seeds' "a healthy D: 60-80%" signal)
                    out["d_acc"] = ((real_s > mid).float().mean() + (fake_s < mid).float().mean()) / 2

        z = torch.randn(bsz, latent, device=p.device)
        y_g = torch.randint(0, self.n_classes, (bsz,), device=p.device) if p.conditional else None
        # The G step needs gradients through D, not of D's weights: D runs bare (outside its DDP
        # wrapper, whose hooks would expect a gradient for every weight) with its weights frozen.
        for w in self.d_params:
            w.requires_grad_(False)
        with p.autocast():
            loss_g = losses.g_loss(kind, p.D(self.G_train(z, y_g), y_g))
        p.opt_g.zero_grad(set_to_none=True)
        p.scaler_g.scale(loss_g).backward()
        for w in self.d_params:
            w.requires_grad_(True)
        if record:
            p.scaler_g.unscale_(p.opt_g)
            out["grad_norm_g"] = grad_norm(self.g_params)
        p.scaler_g.step(p.opt_g)
        p.scaler_g.update()
        out["g_loss"] = loss_g.detach()
        return out

    @torch.no_grad()
    def update_ema(self, step: int) -> None:
        """G_ema <- lerp towards G. The decay ramps up from 0.1 as min(decay, (1 + t) / (10 + t))
        (the bias-corrected warm-up of TensorFlow's ExponentialMovingAverage), so the EMA
        generator follows the live one in the first minutes instead of showing the initial
        weights for thousands of steps; it reaches a decay of 0.999 near step 9,000."""
        if self.p.G_ema is None:
            return
        decay = ema_decay(self.cfg.model.ema, step)
        torch._foreach_lerp_(self._ema_params, self.g_params, 1.0 - decay)
        if self._ema_buffers:
            torch._foreach_copy_(self._ema_buffers, self._g_buffers)


def ema_decay(decay: float, step: int) -> float:
    """The EMA decay in force after `step` G updates (step counts from 0)."""
    return min(decay, (1.0 + step) / (10.0 + step))


def grad_norm(params: list[torch.Tensor]) -> torch.Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros((), device=params[0].device)
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)).float())
