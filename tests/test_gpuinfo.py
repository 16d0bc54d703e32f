"""gantui.engine.gpuinfo: free to import, honest when there is no GPU, one short text per GPU."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO
from gantui.engine.gpuinfo import GIB, GpuStatus, describe, gpu_status, visible_indices


def test_importing_it_imports_neither_torch_nor_nvml():
    code = "import sys, gantui.engine.gpuinfo; print('torch' in sys.modules, 'pynvml' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["False", "False"], r.stderr


def test_no_gpu_reads_as_none_without_touching_cuda():
    import torch

    if torch.cuda.is_available():  # on a GPU machine the figures are real; nothing to check here
        return
    assert gpu_status() == []
    assert not torch.cuda.is_initialized()  # asking did not create a CUDA context


def test_describe_one_gpu_per_part():
    a = GpuStatus(0, "H200", int(12.25 * GIB), 140 * GIB, 97.0, "nvml")
    b = GpuStatus(1, "H200", 3 * GIB, 140 * GIB, None, "torch")
    assert describe([a, b]) == "GPU0 12.2/140.0 GiB 97%  GPU1 3.0/140.0 GiB"
    assert describe([]) == ""


def test_visible_devices_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    assert visible_indices(4) == [2, 0]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-1234")
    assert visible_indices(2) == [0, 1]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_indices(3) == [0, 1, 2]
