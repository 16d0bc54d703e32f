"""What the training process costs the machine: CPU %, resident memory, and on CUDA the device
memory it holds. Read from /proc (Linux) without torch, by whoever calls `sample()` (the
monitor's UI thread, once a second): never on the training thread.

The process is a parameter: the monitor's own pid when it trains in-process, the training
process's pid under `gantui watch` (`gantui.engine.runlock.holder(run_dir)`).

GPU memory comes from `pynvml` when it can be imported (an optional extra: not a dependency);
otherwise `gpu_bytes` stays None. `gpu_probe` is the hook to replace it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class SysStats:
    cpu_pct: float | None       # of one core, over the interval since the previous sample
    rss_bytes: int | None
    gpu_bytes: int | None = None


def read_cpu_ticks(pid: int, proc: str = "/proc") -> int | None:
    """utime + stime of the process, in clock ticks (fields 14 and 15 of /proc/PID/stat)."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    # the command name (field 2) may hold spaces and ')': split after its last ')'
    fields = data[data.rfind(")") + 2:].split()
    try:
        return int(fields[11]) + int(fields[12])
    except (IndexError, ValueError):
        return None


def read_rss(pid: int, proc: str = "/proc") -> int | None:
    """Resident set size in bytes (field 2 of /proc/PID/statm, in pages)."""
    try:
        with open(f"{proc}/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return None


def nvml_probe() -> Callable[[int], int | None] | None:
    """pid -> device bytes it holds (summed over GPUs), via pynvml; None if unavailable."""
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # noqa: BLE001 - not installed, no driver, no GPU: no figure
        return None

    def probe(pid: int) -> int | None:
        total, seen = 0, False
        for h in handles:
            try:
                procs = pynvml.nvmlDeviceGetComputeRunningProcesses(h)
            except Exception:  # noqa: BLE001
                continue
            for p in procs:
                if p.pid == pid and p.usedGpuMemory:
                    total += int(p.usedGpuMemory)
                    seen = True
        return total if seen else None
    return probe


class ProcSampler:
    """CPU % between consecutive samples, RSS, and (when `cuda`) device memory of one pid."""

    def __init__(self, pid: int | None = None, *, cuda: bool = False, proc: str = "/proc",
                 clock: Callable[[], float] = time.monotonic,
                 gpu_probe: Callable[[int], int | None] | None = None) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.proc = proc
        self.clock = clock
        self._cuda = cuda
        self.gpu_probe = gpu_probe
        self._probed = gpu_probe is not None
        self._last: tuple[float, int] | None = None

    def set_cuda(self, cuda: bool) -> None:
        self._cuda = cuda

    def sample(self) -> SysStats:
        now, ticks = self.clock(), read_cpu_ticks(self.pid, self.proc)
        cpu = None
        if ticks is not None:
            if self._last is not None and now > self._last[0]:
                cpu = 100.0 * (ticks - self._last[1]) / CLK_TCK / (now - self._last[0])
            self._last = (now, ticks)
        gpu = None
        if self._cuda:
            if not self._probed:
                self.gpu_probe, self._probed = nvml_probe(), True
            if self.gpu_probe is not None:
                try:
                    gpu = self.gpu_probe(self.pid)
                except Exception:  # noqa: BLE001
                    gpu = None
        return SysStats(cpu, read_rss(self.pid, self.proc), gpu)
