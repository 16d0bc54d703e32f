"""Precision and speed switches: an fp16 run resumes exactly (its GradScalers restored before
their first use, growth tracker included), on the CPU through the real step and state code;
torch.compile is refused for the losses whose double backward it cannot compile."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY_RING, gantui, run_cli
from gantui.engine import state

FP16 = ["--device", "cpu", *TINY_RING, "--set", "run.precision='fp16'"]


def test_fp16_resume_is_exact_with_its_scalers(tmp_path, capsys):
    straight, split = tmp_path / "straight", tmp_path / "split"
    # the first two runs in this process (the CLI's real main), the resume in a fresh process
    assert run_cli(capsys, "run", "ring8", "--headless", "--steps", "30", "--run-dir", straight, *FP16)[0] == 0
    assert run_cli(capsys, "run", "ring8", "--headless", "--steps", "15", "--run-dir", split, *FP16)[0] == 0
    saved = load_file(split / "checkpoints" / "latest.safetensors")
    # the state a resume must bring back: a scale that backed off from its default, a tracker
    assert int(saved["scaler_d.growth_tracker"]) > 0
    assert float(saved["scaler_d.scale"]) != 2.0 ** 16 or float(saved["scaler_g.scale"]) != 2.0 ** 16
    r = gantui("run", "ring8", "--headless", "--steps", "30", "--resume", str(split), *FP16)
    assert r.returncode == 0, r.stderr
    a = load_file(straight / "checkpoints" / "latest.safetensors")
    b = load_file(split / "checkpoints" / "latest.safetensors")
    assert {"scaler_g.scale", "scaler_g.growth_tracker", "scaler_d.scale", "scaler_d.growth_tracker"} <= set(a)
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


def test_a_scaler_is_restored_before_its_first_use():
    saved = {"scaler_d.scale": torch.tensor(1024.0, dtype=torch.float64),
             "scaler_d.growth_tracker": torch.tensor(7)}
    fresh = torch.amp.GradScaler("cpu")
    state.load_scaler("scaler_d", fresh, saved)  # GradScaler.update(new_scale) would raise here
    assert fresh.state_dict()["scale"] == 1024.0 and fresh.state_dict()["_growth_tracker"] == 7
    assert float(fresh.scale(torch.tensor(1.0))) == 1024.0
    assert state.scaler_tensors("scaler_d", fresh).keys() == saved.keys()


@pytest.mark.parametrize("sets, penalty", [([], "gradient penalty of 'wgan_gp'"),
                                           (["--set", "loss.kind='ns'", "--set", "loss.r1_gamma=1.0"], "R1 penalty")])
def test_compile_is_refused_for_double_backward(tmp_path, sets, penalty):
    r = gantui("run", "ring8", "--headless", "--run-dir", str(tmp_path / "r"), "--set", "run.compile=true", *sets)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "[run] compile" in lines[0] and penalty in lines[0]
    assert not (tmp_path / "r").exists()
