"""The up-front memory estimate: parameter counts against the real models, data shapes against the real
data sets, the refusal message, and reading what is available from /proc and the cgroup."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from gantui import config, memory, models
from gantui.data import load_dataset
from gantui.errors import ConfigError
from gantui.models import dcgan

ARCH_CASES = [
    ("ring8", []),
    ("mixture1d", ["model.g_depth=5", "model.d_depth=1", "model.batch_norm_d=true", "loss.kind=ns"]),
    ("vanilla", []),
    ("vanilla", ["model.batch_norm_d=true", "loss.kind=ns"]),
    ("dcgan", []),
    ("dcgan", ["data.image_size=32", "model.batch_norm_d=true", "loss.kind=ns"]),
    ("dcgan", ["data.image_size=64", "model.g_width=16", "model.d_width=24", "model.latent_dim=100"]),
    ("hinge_sn", []),
    ("cgan", []),
    ("cgan", ["model.latent_dim=8", "data.image_size=32"]),
    ("wgan_gp", []),
]


@pytest.mark.parametrize("preset, overrides", ARCH_CASES)
def test_parameter_counts_match_the_real_models(preset, overrides):
    cfg = config.load(preset, overrides + ["data.n_samples=20"])
    info = load_dataset(cfg.data, torch.device("cpu"), 0).info
    assert memory.data_shape(cfg.data) == tuple(info.shape)
    G, D = models.build(cfg, info)
    g, _, d, _ = memory.model_counts(cfg, info.shape)
    assert (g, d) == (models.count_params(G), models.count_params(D))


def test_conv_plans_are_the_models_own():
    assert memory.PLANS == dcgan.PLANS


def test_estimate_grows_with_what_costs_memory():
    base = config.load("dcgan")
    e = memory.estimate(base, (1, 28, 28))
    assert memory.estimate(base.replace("data", batch_size=128), (1, 28, 28)).step == 2 * e.step
    wide = memory.estimate(base.replace("model", g_width=64, d_width=64), (1, 28, 28))
    assert wide.weights > 2 * e.weights  # conv weights grow with width squared, the projection linearly
    rms = base.replace("optim", name="rmsprop")
    assert memory.estimate(rms, (1, 28, 28)).optimizer * 2 == e.optimizer
    # the digits set itself: 60,000 float32 images of 28x28
    assert e.data >= 60000 * 28 * 28 * 4


def test_check_fits_refuses_naming_the_need_and_the_fix():
    cfg = config.load("ring8", ["model.g_width=4096", "model.d_width=4096", "data.batch_size=65536"])
    need = memory.estimate_bytes(cfg, (2,))
    memory.check_fits(cfg, (2,), need, "cpu")  # exactly enough: fine
    memory.check_fits(cfg, (2,), None, "cpu")  # unknown: no check
    with pytest.raises(ConfigError) as e:
        memory.check_fits(cfg, (2,), need - 1, "cuda:0")
    msg = str(e.value)
    assert f"needs about {memory.format_bytes(need)}" in msg and "cuda:0 has" in msg and "batch_size" in msg
    big_model = config.load("ring8", ["model.g_width=4096", "model.d_width=4096", "model.g_depth=64",
                                      "model.d_depth=64", "data.batch_size=1"])
    with pytest.raises(ConfigError, match="g_width"):
        memory.check_fits(big_model, (2,), 10**9, "cpu")


def test_bundled_presets_fit_in_two_gigabytes():
    for path in config.bundled_presets():
        cfg = config.load(str(path))
        memory.check_fits(cfg, memory.data_shape(cfg.data), 2 * 10**9, "cpu")


def test_meminfo_and_cgroup_reading(tmp_path):
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "meminfo").write_text("MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   8000000 kB\n")
    cg = tmp_path / "cg"
    cg.mkdir()
    assert memory.host_available_bytes(proc, cg) == 8000000 * 1024
    (cg / "memory.max").write_text("max\n")
    (cg / "memory.current").write_text("5\n")
    assert memory.host_available_bytes(proc, cg) == 8000000 * 1024  # no cgroup limit
    (cg / "memory.max").write_text(str(3 * 2**30))
    (cg / "memory.current").write_text(str(2**30))
    assert memory.host_available_bytes(proc, cg) == 2 * 2**30  # the container's room is smaller
    assert memory.host_available_bytes(tmp_path / "none", tmp_path / "none") is None


def test_this_host_reports_memory():
    free = memory.host_available_bytes()
    assert free is None or free > 0
    assert memory.available_bytes(torch.device("cpu")) == free or memory.available_bytes("cpu") > 0


# --- the process's own memory, and a folder's ------------------------------------------------------

def test_resident_memory_is_read_from_statm_with_a_fallback(tmp_path):
    page = os.sysconf("SC_PAGE_SIZE")
    (tmp_path / "statm").write_text("90000 1234 300 10 0 5000 0\n")
    assert memory.resident_bytes(tmp_path / "statm") == 1234 * page
    # no statm (not Linux): getrusage's peak, an upper bound of what the process holds now
    fallback = memory.resident_bytes(tmp_path / "absent")
    assert fallback is not None and fallback >= 0.95 * memory.resident_bytes()
    # the real figure agrees with the kernel's own VmRSS line
    vm_rss = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmRSS:"))
    assert abs(memory.resident_bytes() - vm_rss) < 0.1 * vm_rss


def test_peak_adds_what_the_process_holds_but_only_new_memory_must_be_free():
    cfg = config.load("dcgan")
    shape = memory.data_shape(cfg.data)
    e = memory.estimate(cfg, shape, resident=10**9)
    assert e.runtime == 0  # torch is imported in this process already
    assert e.peak == e.total + 10**9
    # the check compares only what is still to be allocated with what is available
    memory.check_fits(cfg, shape, e.total, "cpu", resident=10**9)
    with pytest.raises(ConfigError):
        memory.check_fits(cfg, shape, e.total - 1, "cpu", resident=10**9)
    # read from the process when not given
    assert memory.estimate(cfg, shape).resident > 100 * 10**6


def test_an_estimate_made_before_torch_is_imported_counts_torch():
    code = ("import sys; from gantui import config, memory; cfg = config.load('dcgan'); "
            "e = memory.estimate(cfg, memory.data_shape(cfg.data)); "
            "print('torch' in sys.modules, e.runtime, e.resident, e.peak - e.total)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False" and int(out[1]) == memory.TORCH_RESIDENT
    assert 0 < int(out[2]) < 200 * 10**6 and int(out[3]) == int(out[2])


def test_a_folder_counts_its_uint8_images_file_list_and_spread_chunks(tmp_path):
    from PIL import Image

    for i in range(30):
        (tmp_path / str(i % 3)).mkdir(exist_ok=True)
        Image.new("L", (40, 40), i).save(tmp_path / str(i % 3) / f"{i}.png")
    cfg = config.load("dcgan", [f"data.name=\"folder\"", f"data.root=\"{tmp_path}\"", "data.image_size=32",
                                "data.channels=1"])
    e30 = memory.estimate(cfg, (1, 32, 32), resident=0)
    for i in range(30, 40):
        Image.new("L", (40, 40), i).save(tmp_path / "0" / f"{i}.png")
    e40 = memory.estimate(cfg, (1, 32, 32), resident=0)
    assert e40.data - e30.data == 10 * (32 * 32 + 500)  # one byte a pixel, and the file's path and label
