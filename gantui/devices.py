"""Which device a run or an evaluation uses, and whether the GPUs go round: one place for the
judgement, asked by `run`, `eval`, the `--nproc` launcher (before torchrun starts) and every rank."""

from __future__ import annotations

import torch

from gantui.errors import UserError

NO_CUDA = "device 'cuda' was asked for but torch sees no CUDA device; use --device cpu or auto"


def wants_cuda(requested: str | None) -> bool:
    """'auto' (or None): CUDA when torch sees a device; 'cuda': it must see one; 'cpu': no."""
    if requested in (None, "auto"):
        return torch.cuda.device_count() > 0
    if requested == "cuda":
        if torch.cuda.device_count() == 0:
            raise UserError(NO_CUDA)
        return True
    if requested == "cpu":
        return False
    raise UserError(f"--device {requested!r}: expected one of auto, cpu, cuda")


def pick_device(requested: str | torch.device | None) -> torch.device:
    if isinstance(requested, torch.device):
        return requested  # chosen by the caller (a rank of a distributed run: its own GPU)
    return torch.device("cuda" if wants_cuda(requested) else "cpu")


def check_gpus_for(nproc: int) -> None:
    """A CUDA run uses one GPU per process on a machine."""
    count = torch.cuda.device_count()
    if count < nproc:
        raise UserError(f"--nproc {nproc}: this machine has {count} CUDA device(s) and a CUDA run uses one per "
                        f"process; use --nproc {count} or fewer (or --device cpu)")
