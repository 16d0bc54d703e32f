"""What a run is made of, built once at setup on the training thread: the device, the data,
G and D (and the EMA copy), their optimisers, the precision context, the fixed noise.

Speed switches are chosen here, once (nanoGPT's habit): the loop has no precision branches.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Any, Callable

import torch

from gantui import memory, models
from gantui.config import Config
from gantui.data import Dataset, load_dataset
from gantui.errors import UserError


def pick_device(requested: str) -> torch.device:
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise UserError("device 'cuda' was asked for but torch sees no CUDA device; use --device cpu or auto")
        return torch.device("cuda")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class Parts:
    device: torch.device
    data: Dataset
    G: torch.nn.Module
    D: torch.nn.Module
    G_ema: torch.nn.Module | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler_g: Any                      # torch.amp.GradScaler (disabled unless fp16)
    scaler_d: Any
    autocast: Callable[[], Any]        # a context manager factory; nullcontext for fp32
    fixed_z: torch.Tensor
    fixed_y: torch.Tensor | None
    conditional: bool                  # G and D take labels

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"


def make_optimizer(cfg: Config, params, lr: float) -> torch.optim.Optimizer:
    opt = cfg.optim
    if opt.name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(opt.betas))
    return torch.optim.RMSprop(params, lr=lr)


def build(cfg: Config, requested_device: str) -> Parts:
    """Everything the loop needs, seeded from `cfg.run.seed` (torch's global RNG)."""
    device = pick_device(requested_device)
    # Refuse, with how much it needs, a configuration that cannot fit on this device (before
    # anything is allocated; for CUDA this reads the device's free memory).
    memory.check_fits(cfg, memory.data_shape(cfg.data), memory.available_bytes(device), str(device))
    torch.manual_seed(cfg.run.seed)
    data = load_dataset(cfg.data, device, cfg.run.seed)
    info = data.info
    G, D = models.build(cfg, info)
    G.to(device)
    D.to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False) if cfg.model.ema > 0 else None
    opt_g = make_optimizer(cfg, G.parameters(), cfg.optim.g_lr)
    opt_d = make_optimizer(cfg, D.parameters(), cfg.optim.d_lr)

    # A fixed noise batch, drawn once from its own generator, so sample grids compare across steps.
    gen = torch.Generator().manual_seed(cfg.run.seed + 1)
    fixed_z = torch.randn(cfg.log.n_samples, G.latent_dim, generator=gen).to(device)
    fixed_y = (torch.arange(cfg.log.n_samples) % info.n_classes).to(device) if info.n_classes else None

    autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.run.precision)
    use_amp = device.type == "cuda" and autocast_dtype is not None
    fp16 = use_amp and autocast_dtype == torch.float16
    scaler_g = torch.amp.GradScaler("cuda", enabled=fp16)
    scaler_d = torch.amp.GradScaler("cuda", enabled=fp16)
    if use_amp:
        def autocast():
            return torch.autocast("cuda", dtype=autocast_dtype)
    else:
        autocast = contextlib.nullcontext

    return Parts(device=device, data=data, G=G, D=D, G_ema=G_ema, opt_g=opt_g, opt_d=opt_d,
                 scaler_g=scaler_g, scaler_d=scaler_d, autocast=autocast, fixed_z=fixed_z, fixed_y=fixed_y,
                 conditional=info.n_classes > 0 and cfg.model.arch == "conditional")
