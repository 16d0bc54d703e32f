"""GPU memory and utilisation for the monitor's status line (`nvidia-smi`-class figures).

Import is free (no torch, no NVML at import). Call `gpu_status()` from the monitor's own thread
at its refresh pace, never from the training thread; each call costs a few NVML queries
(microseconds) and nothing on the GPU's queue.

Sources, in order:
  - NVML through `nvidia-ml-py` (`pip install gantui[gpu]`), when installed: device-wide memory
    used/total and utilisation of every visible GPU. Works in any process, a `gantui watch` or
    the `--nproc` launcher's monitor included (they never import torch).
  - torch.cuda, only when this process already imported torch and initialised CUDA (the
    training process itself): device-wide memory used/total (`cudaMemGetInfo`); utilisation is
    then unknown (torch reads it through NVML too).
Returns [] when neither applies (no GPU, or a CPU-only process).
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass

GIB = 1024 ** 3


@dataclass(frozen=True)
class GpuStatus:
    index: int
    name: str
    used_bytes: int
    total_bytes: int
    util_percent: float | None   # None when unknown (no NVML)
    source: str                  # "nvml" | "torch"


_lock = threading.Lock()
_nvml = None          # the pynvml module once initialised; False when it cannot be
_handles: list = []


def _nvml_handles():
    global _nvml, _handles
    with _lock:
        if _nvml is None:
            try:
                import pynvml

                pynvml.nvmlInit()
                _handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
                _nvml = pynvml
            except Exception:  # noqa: BLE001 - not installed, no driver, no GPU: just no NVML
                _nvml = False
        return (_nvml, _handles) if _nvml else (None, [])


def visible_indices(count: int) -> list[int]:
    """The NVML indices of the GPUs this process may use (CUDA_VISIBLE_DEVICES, when numeric)."""
    spec = os.environ.get("CUDA_VISIBLE_DEVICES")
    if spec is None:
        return list(range(count))
    out = []
    for part in spec.split(","):
        part = part.strip()
        if not part.isdigit():
            return list(range(count))  # UUIDs or MIG names: show them all
        if int(part) < count:
            out.append(int(part))
    return out


def gpu_status() -> list[GpuStatus]:
    nvml, handles = _nvml_handles()
    if nvml is not None and handles:
        out = []
        for i in visible_indices(len(handles)):
            try:
                h = handles[i]
                mem = nvml.nvmlDeviceGetMemoryInfo(h)
                util = nvml.nvmlDeviceGetUtilizationRates(h).gpu
                name = nvml.nvmlDeviceGetName(h)
                out.append(GpuStatus(i, name.decode() if isinstance(name, bytes) else str(name),
                                     int(mem.used), int(mem.total), float(util), "nvml"))
            except Exception:  # noqa: BLE001 - a GPU that stops answering is left out
                continue
        return out
    torch = sys.modules.get("torch")  # only if the training already imported it
    if torch is None or not torch.cuda.is_initialized():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        try:
            free, total = torch.cuda.mem_get_info(i)
            out.append(GpuStatus(i, torch.cuda.get_device_name(i), int(total - free), int(total), None, "torch"))
        except Exception:  # noqa: BLE001
            continue
    return out


def describe(statuses: list[GpuStatus]) -> str:
    """'GPU0 12.3/80.0 GiB 97%' per GPU, for a status line; '' when there is none."""
    parts = []
    for s in statuses:
        util = f" {s.util_percent:.0f}%" if s.util_percent is not None else ""
        parts.append(f"GPU{s.index} {s.used_bytes / GIB:.1f}/{s.total_bytes / GIB:.1f} GiB{util}")
    return "  ".join(parts)
