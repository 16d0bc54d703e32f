"""What a run is made of, built once at setup on the training thread: the device, the data,
G and D (and the EMA copy), their optimisers, the precision context, the fixed noise.

Speed switches are chosen here, once (nanoGPT's habit): the loop has no precision branches.
  - TF32 matmuls and convolutions on CUDA (fp32 storage, 10-bit mantissa products; on by
    default, like most GAN code bases since Ampere), and cuDNN picking its fastest kernels;
  - channels_last memory for the convolutional models on CUDA;
  - `run.precision`: bf16 autocast (fp32 when the GPU has no bf16: said once on stderr), or fp16
    autocast with a GradScaler per optimiser; on any device, the CPU included (slow there, but
    it is what makes an fp16 resume testable without a GPU);
  - Adam and RMSprop on the multi-tensor (foreach) path on every device (the same numbers);
  - `run.compile = true`: G and D compiled in place with torch.compile (`Module.compile`, so
    state_dict keys and checkpoints are unchanged). Config refuses it for the gradient penalty
    and R1, whose double backward it cannot compile.
"""

from __future__ import annotations

import contextlib
import copy
import sys
from dataclasses import dataclass
from typing import Any, Callable

import torch

from gantui import memory, models
from gantui.augment import Augment
from gantui.config import Config
from gantui.data import Dataset, load_dataset
from gantui.data import holdout
from gantui.devices import pick_device


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
    augment: Augment | None = None     # what D's inputs go through (gantui.augment)
    holdout_note: str | None = None    # why no slice is held out, for the event log
    memory: memory.Estimate | None = None  # the memory estimate the run was checked against

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"


def make_optimizer(cfg: Config, params, lr: float) -> torch.optim.Optimizer:
    """Adam and RMSprop on torch's multi-tensor (foreach) path: the same numbers as the default
    per-tensor loop (which torch picks on the CPU: ~10 small ops per parameter tensor, a visible
    share of a toy MLP's step), in a few ops per step. Its fused kernel would be faster still,
    but changes the last bits, and every run's trajectory with them."""
    opt = cfg.optim
    if opt.name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(opt.betas), foreach=True)
    return torch.optim.RMSprop(params, lr=lr, foreach=True)


def speed_switches(device: torch.device) -> None:
    """Process-wide backend settings for a CUDA run (nothing changes on the CPU)."""
    if device.type != "cuda":
        return
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # the API since torch 2.9
        torch.backends.cuda.matmul.fp32_precision = "tf32"
        torch.backends.cudnn.conv.fp32_precision = "tf32"
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True  # fixed shapes: the autotuned kernels are reused every step


def autocast_dtype(cfg: Config, device: torch.device) -> torch.dtype | None:
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.run.precision)
    if dtype == torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        print(f"gantui: run.precision = 'bf16': {torch.cuda.get_device_name(device)} has no bf16; "
              f"training in fp32", file=sys.stderr)
        return None
    return dtype


def build(cfg: Config, requested_device: str | torch.device, progress=None) -> Parts:
    """Everything the loop needs, seeded from `cfg.run.seed` (torch's global RNG)."""
    device = pick_device(requested_device)
    # Refuse, with how much it needs, a configuration that cannot fit on this device (before
    # anything is allocated; for CUDA this reads the device's free memory).
    available = memory.available_bytes(device)
    resident = None if device.type == "cpu" else 0  # a GPU's free memory is not the process's resident set
    mem = memory.check_fits(cfg, memory.data_shape(cfg.data), available, str(device), resident=resident)
    speed_switches(device)
    torch.manual_seed(cfg.run.seed)
    data = load_dataset(cfg.data, device, cfg.run.seed, progress)
    holdout_note = holdout.apply(data, cfg.data.holdout, cfg.run.seed)
    info = data.info
    G, D = models.build(cfg, info)
    if cfg.model.custom:
        # Your own models: their size is known once built; measured, then checked (gantui.memory).
        available = memory.available_bytes(device)
        mem = memory.check_measured(cfg, info.shape, G, D, available, str(device),
                                    data_bytes=0, resident=resident)  # loaded: in the resident set now
    if progress is not None and device.type == "cpu":  # on CUDA the figures are the device's, not the process's
        progress(memory.describe(mem, available, str(device)))
    G.to(device)
    D.to(device)
    if device.type == "cuda" and not info.is_toy and cfg.model.arch != "mlp" and not cfg.model.custom:
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False) if cfg.model.ema > 0 else None
    opt_g = make_optimizer(cfg, G.parameters(), cfg.optim.g_lr)
    opt_d = make_optimizer(cfg, D.parameters(), cfg.optim.d_lr)

    # A fixed noise batch, drawn once from its own generator, so sample grids compare across steps.
    gen = torch.Generator().manual_seed(cfg.run.seed + 1)
    fixed_z = torch.randn(cfg.log.n_samples, G.latent_dim, generator=gen).to(device)
    fixed_y = (torch.arange(cfg.log.n_samples) % info.n_classes).to(device) if info.n_classes else None

    dtype = autocast_dtype(cfg, device)
    fp16 = dtype == torch.float16
    scaler_g = torch.amp.GradScaler(device.type, enabled=fp16)
    scaler_d = torch.amp.GradScaler(device.type, enabled=fp16)
    if dtype is not None:
        def autocast():
            return torch.autocast(device.type, dtype=dtype)
    else:
        autocast = contextlib.nullcontext
    if cfg.run.compile:
        G.compile()
        D.compile()

    return Parts(device=device, data=data, G=G, D=D, G_ema=G_ema, opt_g=opt_g, opt_d=opt_d,
                 scaler_g=scaler_g, scaler_d=scaler_d, autocast=autocast, fixed_z=fixed_z, fixed_y=fixed_y,
                 conditional=info.n_classes > 0 and getattr(G, "n_classes", 0) > 0,
                 augment=Augment.from_config(cfg.data, device), holdout_note=holdout_note, memory=mem)
