"""The engine, end to end, with short real runs: run directory contract, resume, commands, signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO, TINY_RING, gantui, run_cli, wait_until
from gantui import checkpoint, config
from gantui.engine import events as ev
from gantui.engine.trainer import Trainer

METRIC_KEYS = {"step", "time", "d_loss", "g_loss", "d_real", "d_fake", "grad_norm_d", "grad_norm_g",
               "lr_g", "lr_d", "sample_std", "steps_per_s"}


def tiny_cfg(steps=40, **sets):
    overrides = [s.split("--set ")[-1] for s in TINY_RING if s != "--set"]
    overrides += [f"{k.replace('__', '.')}={v}" for k, v in sets.items()]
    return config.load("ring8", overrides).replace("run", steps=steps)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_dir_contract(ring_run):
    assert (ring_run / "config.toml").is_file()
    assert config.loads((ring_run / "config.toml").read_text()).run.steps == 100
    metrics = read_jsonl(ring_run / "metrics.jsonl")
    assert [m["step"] for m in metrics] == list(range(5, 101, 5))
    for m in metrics:
        assert METRIC_KEYS | {"gp", "wasserstein"} <= set(m)
        assert all(isinstance(m[k], (int, float)) for k in METRIC_KEYS)
    events = read_jsonl(ring_run / "events.jsonl")
    assert all({"step", "kind"} <= set(e) for e in events)
    assert [e["kind"] for e in events][0] == "started"
    assert events[-1]["kind"] == "finished"
    # the step-0 grid too (the untrained generator: the screen's first picture, kept)
    assert sorted(p.name for p in (ring_run / "samples").iterdir()) == [
        "step_00000000.npz", "step_00000000.png", "step_00000050.npz", "step_00000050.png", "step_00000100.npz", "step_00000100.png"]
    from gantui.engine import sample_files
    s = sample_files.load(ring_run / "samples" / "step_00000100.npz")
    assert s.step == 100 and s.images.shape == (512, 2) and s.real.shape[1] == 2
    assert s.field.shape == (48, 48) and len(s.extent) == 4
    ckpts = sorted(p.name for p in (ring_run / "checkpoints").iterdir())
    assert ckpts == ["latest.safetensors", "step_00000050.safetensors", "step_00000100.safetensors"]


def test_checkpoint_contract(ring_run):
    tensors, meta = checkpoint.read(ring_run / "checkpoints" / "latest.safetensors")
    assert meta["step"] == "100"
    assert meta["format_version"] == checkpoint.FORMAT_VERSION
    assert meta["gantui_version"]
    assert config.loads(meta["config"]).data.name == "ring8"
    prefixes = {k.split(".")[0] for k in tensors}
    assert {"generator", "discriminator", "generator_ema", "optim_g", "optim_d", "rng", "fixed"} <= prefixes
    assert tensors["rng.cpu"].dtype == torch.uint8
    assert any(k.startswith("optim_d.state.0.exp_avg") for k in tensors)


def test_resume_is_bit_identical_to_a_straight_run(tmp_path, capsys):
    straight, split = tmp_path / "straight", tmp_path / "split"
    # the two first runs in this process (the CLI's real main); the resume in a fresh process, so
    # nothing but the checkpoint can carry the state across
    assert run_cli(capsys, "run", "ring8", "--headless", "--steps", "60", "--run-dir", straight, *TINY_RING)[0] == 0
    assert run_cli(capsys, "run", "ring8", "--headless", "--steps", "30", "--run-dir", split, *TINY_RING)[0] == 0
    r = gantui("run", "ring8", "--headless", "--steps", "60", "--resume", str(split), *TINY_RING)
    assert r.returncode == 0, r.stderr
    a = load_file(straight / "checkpoints" / "latest.safetensors")
    b = load_file(split / "checkpoints" / "latest.safetensors")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert different == []
    # the resumed run carried on in its own directory, from step 30
    assert read_jsonl(split / "metrics.jsonl")[-1]["step"] == 60


# The bad-input cases below run the CLI's real main() in this process (the same error path as
# the console script; tests/test_cli_errors.py also checks it through a real process), which
# spares a torch import per case.

def test_resume_refuses_a_mismatched_checkpoint(ring_run, capsys):
    code, _, err = run_cli(capsys, "run", "ring8", "--headless", "--steps", "120", "--resume", ring_run, "--run-dir",
                           ring_run.parent / "other", *TINY_RING[:-6], "--set", "model.g_width=48")
    assert code == 2
    assert "generator." in err and "shape" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "empty"])
def test_bad_checkpoints_exit_2_with_one_line(ring_run, tmp_path, damage, capsys):
    blob = (ring_run / "checkpoints" / "latest.safetensors").read_bytes()
    bad = tmp_path / f"{damage}.safetensors"
    bad.write_bytes({"truncated": blob[: len(blob) // 2], "corrupt": b"\x13\x37" * 64 + blob[128:],
                     "empty": b""}[damage])
    for args in (["run", "ring8", "--headless", "--resume", str(bad), "--run-dir", str(tmp_path / "r")],
                 ["sample", str(bad), "--out", str(tmp_path / "x.npy")]):
        code, _, err = run_cli(capsys, *args)
        assert code == 2, (args, err)
        assert str(bad) in err
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


def test_bad_input_exits_2_without_traceback(tmp_path, capsys):
    cases = [
        ["run", "nope_preset", "--headless"],
        ["run", "ring8", "--headless", "--set", "optim.d_lr=-1"],
        ["run", "ring8", "--headless", "--set", "loss.kind=wgan_xx"],
        ["run", "ring8", "--headless", "--resume", str(tmp_path / "missing")],
        ["run", "ring8", "--headless", "--device", "tpu"],
        ["run", "ring8", "--headless", "--steps", "0"],
        ["run", "ring8", "--headless", "--run-dir", str(tmp_path / "m"),
         "--set", "data.name=mnist", "--set", f"data.root={tmp_path}", "--set", "data.download=false",
         "--set", "model.arch=dcgan"],
    ]
    for args in cases:
        code, out, err = run_cli(capsys, *args)
        assert code == 2, (args, out, err)
        assert "Traceback" not in err, args
        assert err.startswith("gantui: "), (args, err)
        assert len(err.strip().splitlines()) <= 2, (args, err)


def test_offline_mnist_message_says_where_and_suggests_digits(tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", "dcgan", "--headless", "--run-dir", tmp_path / "r", "--set", "data.name=mnist",
                           "--set", f"data.root={tmp_path / 'data'}")
    assert code == 2
    assert str(tmp_path / "data") in err
    assert "digits" in err


class Recorder:
    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()

    def __call__(self, msg):
        with self.lock:
            self.messages.append(msg)

    def of(self, kind):
        with self.lock:
            return [m for m in self.messages if isinstance(m, kind)]

    def events(self, kind):
        return [m for m in self.of(ev.Event) if m.kind == kind]


def test_commands_pause_step_rates_save_stop(tmp_path):
    rec = Recorder()
    trainer = Trainer(tiny_cfg(steps=100_000), tmp_path / "run", listeners=[rec])
    trainer.setup()
    trainer.start()
    ctl = trainer.control
    assert wait_until(lambda: trainer.step >= 5)
    ctl.pause()
    assert wait_until(lambda: trainer.state == ev.PAUSED)
    frozen = rec.events("paused")[0].step
    ctl.step_once()
    # Commands are obeyed in order, at step boundaries: a save sent after the single step is
    # taken at the step the engine is at then. Its step proves both claims with the engine's own
    # records: paused means no steps, and `n` means exactly one.
    ctl.save()
    assert wait_until(lambda: len(rec.events("checkpoint")) == 1)
    assert rec.events("checkpoint")[0].step == frozen + 1
    assert trainer.step == frozen + 1
    assert [s.step for s in rec.of(ev.Snapshot) if s.step > frozen] == [frozen + 1]  # one record, for it
    g0, d0 = trainer.lr_g, trainer.lr_d
    ctl.scale_lr("g", 2.0)
    ctl.scale_lr("d", 0.5)
    assert wait_until(lambda: len(rec.events("lr_changed")) == 2)
    assert trainer.lr_g == pytest.approx(2 * g0) and trainer.lr_d == pytest.approx(0.5 * d0)
    ctl.set_n_critic(2)
    saved = Path(rec.events("checkpoint")[0].data["path"])
    assert saved.is_file() and saved.name == f"step_{frozen + 1:08d}.safetensors"
    ctl.resume()
    assert wait_until(lambda: trainer.step > frozen + 3)
    ctl.stop()
    assert trainer.join(30)
    assert trainer.state == ev.STOPPED and trainer.exit_code == 0
    kinds = [e["kind"] for e in read_jsonl(tmp_path / "run" / "events.jsonl")]
    for kind in ("paused", "lr_changed", "n_critic_changed", "checkpoint", "resumed", "stopped"):
        assert kind in kinds
    lr_events = [e for e in read_jsonl(tmp_path / "run" / "events.jsonl") if e["kind"] == "lr_changed"]
    assert {(e["which"], e["new"] / e["old"]) for e in lr_events} == {("g", 2.0), ("d", 0.5)}
    # the stop saved a checkpoint at the step it stopped
    _, meta = checkpoint.read(tmp_path / "run" / "checkpoints" / "latest.safetensors")
    assert int(meta["step"]) == trainer.step
    assert json.loads(meta["state"])["n_critic"] == 2


def test_snapshots_and_samples_are_published(tmp_path):
    rec = Recorder()
    trainer = Trainer(tiny_cfg(steps=20), tmp_path / "run", listeners=[rec])
    trainer.setup()
    assert trainer.run() == ev.FINISHED
    assert len(rec.of(ev.RunInfo)) == 1
    snaps = rec.of(ev.Snapshot)
    assert [s.step for s in snaps] == [5, 10, 15, 20]
    assert snaps[-1].eta_s is not None
    samples = rec.of(ev.Samples)
    assert samples[0].images.shape == (512, 2) and samples[0].real.shape[1] == 2
    assert samples[0].field.shape == (48, 48) and len(samples[0].extent) == 4


@pytest.mark.parametrize("steps", [1, 7])
def test_a_run_ending_between_log_steps_records_every_metric(tmp_path, steps):
    trainer = Trainer(tiny_cfg(steps=steps), tmp_path / "run")  # log.every = 5
    trainer.setup()
    assert trainer.run() == ev.FINISHED
    last = read_jsonl(tmp_path / "run" / "metrics.jsonl")[-1]
    assert last["step"] == steps
    assert METRIC_KEYS | {"gp", "wasserstein"} <= set(last)


def test_sample_std_is_the_fixed_batch_feature_std(tmp_path):
    trainer = Trainer(tiny_cfg(steps=5), tmp_path / "run")
    trainer.setup()
    trainer.run()
    last = read_jsonl(tmp_path / "run" / "metrics.jsonl")[-1]
    with torch.no_grad():
        expected = trainer._generate(live=True).float().std(0).mean().item()
    assert last["sample_std"] == pytest.approx(expected, rel=1e-5)


def test_sigint_saves_and_exits_130(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "gantui", "run", "ring8", "--headless", "--steps", "1000000",
                             "--run-dir", str(run_dir), *TINY_RING], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: (run_dir / "metrics.jsonl").exists()
                        and len((run_dir / "metrics.jsonl").read_text().splitlines()) >= 2, timeout=120)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert (run_dir / "checkpoints" / "latest.safetensors").is_file()
    kinds = [e["kind"] for e in read_jsonl(run_dir / "events.jsonl")]
    assert "stopped" in kinds and kinds[-1] == "stopped"


def test_divergence_stops_at_once_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    run_dir = tmp_path / "run"
    # the good run in this process (the CLI's real main); the diverging resume in a fresh one (its exit code)
    assert run_cli(capsys, "run", "ring8", "--headless", "--steps", "20", "--run-dir", run_dir, *TINY_RING)[0] == 0
    good = (run_dir / "checkpoints" / "latest.safetensors").read_bytes()
    # absurd rates (and no gradient penalty to hold the critic) blow the weights up to NaN/Inf
    r = gantui("run", "ring8", "--headless", "--steps", "3000", "--resume", str(run_dir), *TINY_RING,
               "--set", "optim.d_lr=1e6", "--set", "optim.g_lr=1e6", "--set", "loss.gp_lambda=0",
               "--set", "log.checkpoint_every=5")
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "diverged" in r.stderr
    events = read_jsonl(run_dir / "events.jsonl")
    diverged = [e for e in events if e["kind"] == "diverged"]
    assert len(diverged) == 1
    assert (run_dir / "checkpoints" / "latest.safetensors").read_bytes() == good  # untouched
    tensors, meta = checkpoint.read(run_dir / "checkpoints" / "latest.safetensors")
    assert int(meta["step"]) == 20
    assert all(torch.isfinite(v).all() for v in tensors.values() if v.is_floating_point())
    assert read_jsonl(run_dir / "metrics.jsonl")[-1]["step"] == diverged[0]["step"]  # no step after it
    alerts = [e for e in events if e["kind"] == "alert" and e["rule"] == "divergence"]
    assert alerts and alerts[0]["severity"] == "critical"


def test_help_does_not_import_torch_or_textual():
    code = "import sys, gantui.cli; print(' '.join(m for m in ('torch', 'textual') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0 and out.stdout.strip() == ""
    r = gantui("--help")
    assert r.returncode == 0 and "run" in r.stdout and "eval" in r.stdout


def test_nothing_unpickles():
    """No call of torch.load or pickle anywhere in the package (docs may still mention them)."""
    import ast

    offenders = []
    for path in (REPO / "gantui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                offenders += [f"{path}: import {a.name}" for a in node.names if a.name in ("pickle", "dill")]
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if isinstance(owner, ast.Name) and (owner.id, node.func.attr) in (
                        ("torch", "load"), ("pickle", "load"), ("pickle", "loads")):
                    offenders.append(f"{path}:{node.lineno}: {owner.id}.{node.func.attr}")
    assert offenders == []


def test_presets_command_lists_descriptions():
    r = gantui("presets")
    assert r.returncode == 0
    lines = dict(line.split(None, 1) for line in r.stdout.strip().splitlines())
    assert "WGAN-GP" in lines["wgan_gp"]
    assert len(lines) == len(config.bundled_presets())
