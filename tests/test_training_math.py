"""The training math on the real code path: each test runs `gantui.engine.trainer.Trainer` for a few steps
and checks what the published algorithm says must have happened, computed here from first principles
(never with the trainer's own helpers). Each names the one-line regression it exists to catch:

- EMA update made a no-op                    -> test_ema_weights_follow_the_exponential_moving_average
- WGAN weight clipping never applied         -> test_wgan_critic_weights_are_clipped_after_every_step
- n_critic ignored                           -> test_n_critic_critic_updates_per_generator_update
- linear learning-rate decay removed         -> test_linear_decay_sets_the_rate_the_schedule_prescribes
- D-step fakes generated with gradients      -> test_the_d_step_never_backpropagates_into_g
- checkpoint not temp file + fsync + rename  -> test_checkpoints_are_fsynced_under_a_temporary_name_then_renamed,
                                                test_a_failed_save_leaves_the_old_checkpoint_whole

Only the trainer's public-ish surface is used: Trainer(cfg, run_dir, device="cpu"), setup(), run(), and the
attributes G, D, G_ema, opt_g, opt_d, step, cfg.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from gantui import config
from gantui.engine.events import CRASHED, FINISHED
from gantui.engine.trainer import Trainer

# Small and quick: no samples or scheduled checkpoints inside the few steps these runs take.
QUIET = ["log.every=5", "log.sample_every=1000", "log.checkpoint_every=1000", "log.n_samples=32"]
SMALL_RING = ["model.g_width=32", "model.d_width=32", "data.batch_size=64", *QUIET]
SMALL_DIGITS = ["data.n_samples=256", *QUIET]


def trainer(tmp_path: Path, preset: str, steps: int, *overrides: str) -> Trainer:
    cfg = config.load(preset, list(overrides)).replace("run", steps=steps)
    t = Trainer(cfg, tmp_path / "run", device="cpu")
    t.setup()
    return t


def finish(t: Trainer) -> None:
    assert t.run() == FINISHED
    assert t.step == t.cfg.run.steps


def params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


# --- EMA -------------------------------------------------------------------------------------------

def test_ema_weights_follow_the_exponential_moving_average(tmp_path):
    decay = 0.9
    t = trainer(tmp_path, "ring8", 1, f"model.ema={decay}", *SMALL_RING)
    theta0 = params(t.G)
    for name, p in t.G_ema.named_parameters():  # the average starts at G's initial weights
        assert torch.equal(p, theta0[name]), name
    finish(t)
    theta1 = params(t.G)
    assert any(not torch.equal(theta0[n], theta1[n]) for n in theta0)  # G did train
    # After one update: ema = d * theta0 + (1 - d) * theta1 (Polyak averaging, as in Karras et al.),
    # where d is the warm-up's decay at the first update, min(0.9, (1 + 0) / (10 + 0)) = 0.1: the
    # average follows G closely at first instead of showing the initial weights for thousands of steps.
    d = 0.1
    for name, p in t.G_ema.named_parameters():
        expected = d * theta0[name] + (1 - d) * theta1[name]
        torch.testing.assert_close(p.detach(), expected, rtol=1e-5, atol=1e-7, msg=name)


def test_the_ema_decay_ramps_up_to_the_configured_one():
    from gantui.engine.step import ema_decay

    # (1 + t) / (10 + t), capped by the preset's decay: 0.1 at the first update, 0.5 at t = 8,
    # 0.9 at t = 80, and the configured 0.999 from t = 8,990 on
    assert ema_decay(0.999, 0) == pytest.approx(0.1)
    assert ema_decay(0.999, 8) == pytest.approx(0.5)
    assert ema_decay(0.999, 80) == pytest.approx(0.9)
    assert ema_decay(0.999, 8989) < 0.999 and ema_decay(0.999, 8990) == pytest.approx(0.999)
    assert ema_decay(0.05, 0) == 0.05


# --- WGAN weight clipping ---------------------------------------------------------------------------

def test_wgan_critic_weights_are_clipped_after_every_step(tmp_path):
    t = trainer(tmp_path, "wgan_clip", 1, *SMALL_DIGITS)
    clip = t.cfg.loss.clip
    assert t.cfg.loss.kind == "wgan" and clip == 0.01
    # DCGAN's N(0, 0.02) init puts plenty of weights beyond the clip: without clipping they stay there.
    assert max(float(p.detach().abs().max()) for p in t.D.parameters()) > 3 * clip
    finish(t)
    biggest = max(float(p.detach().abs().max()) for p in t.D.parameters())
    assert biggest <= clip  # Arjovsky et al. 2017, Algorithm 1: w <- clip(w, -c, c) after each critic update
    assert biggest == pytest.approx(clip)  # and the clip is what bounds them: some sit exactly on it


# --- n_critic --------------------------------------------------------------------------------------

@pytest.mark.parametrize("preset, overrides, n_critic", [
    ("wgan_clip", SMALL_DIGITS, 5),                           # as the shipped preset says
    ("ring8", [*SMALL_RING, "loss.n_critic=3"], 3),           # and as an override says
])
def test_n_critic_critic_updates_per_generator_update(tmp_path, preset, overrides, n_critic):
    steps = 3
    t = trainer(tmp_path, preset, steps, *overrides)
    assert t.cfg.loss.n_critic == n_critic
    finish(t)
    # Adam and RMSprop count their own updates per parameter: the optimisers' word, not the trainer's.
    d_updates = {int(s["step"]) for s in t.opt_d.state.values()}
    g_updates = {int(s["step"]) for s in t.opt_g.state.values()}
    assert g_updates == {steps}
    assert d_updates == {n_critic * steps}


# --- linear learning-rate decay --------------------------------------------------------------------

def test_linear_decay_sets_the_rate_the_schedule_prescribes(tmp_path):
    steps, horizon, base_g, base_d = 20, 40, 1e-3, 4e-4
    t = trainer(tmp_path, "ring8", steps, "optim.lr_decay=linear", f"optim.decay_steps={horizon}",
                f"optim.g_lr={base_g}", f"optim.d_lr={base_d}", *SMALL_RING)
    assert t.opt_g.param_groups[0]["lr"] == pytest.approx(base_g)
    finish(t)
    # lr(s) = base * (1 - s / decay_steps) after s steps; halfway along the horizon here.
    assert t.opt_g.param_groups[0]["lr"] == pytest.approx(base_g * (1 - steps / horizon), rel=1e-9)
    assert t.opt_d.param_groups[0]["lr"] == pytest.approx(base_d * (1 - steps / horizon), rel=1e-9)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [5, 10, 15, 20]
    for r in records:  # the rate in force after each logged step, as the screen and the files show it
        assert r["lr_g"] == pytest.approx(base_g * (1 - r["step"] / horizon), rel=1e-9), r["step"]
        assert r["lr_d"] == pytest.approx(base_d * (1 - r["step"] / horizon), rel=1e-9), r["step"]


def test_linear_decay_reaches_zero_at_the_end_of_the_run_by_default(tmp_path):
    t = trainer(tmp_path, "ring8", 10, "optim.lr_decay=linear", "optim.decay_steps=0", *SMALL_RING)
    finish(t)
    assert t.opt_g.param_groups[0]["lr"] == 0.0 and t.opt_d.param_groups[0]["lr"] == 0.0


# --- the D step does not differentiate through G ------------------------------------------------------

@pytest.mark.parametrize("preset, overrides", [
    ("ring8", [*SMALL_RING, "loss.n_critic=5"]),   # critic loss with gradient penalty
    ("dcgan", SMALL_DIGITS),                       # probability loss, BatchNorm in G
])
def test_the_d_step_never_backpropagates_into_g(tmp_path, preset, overrides):
    steps = 3
    t = trainer(tmp_path, preset, steps, *overrides)
    reached = []
    for name, p in t.G.named_parameters():  # fires whenever a backward pass computes a gradient for p
        p.register_hook(lambda grad, name=name: reached.append(name))
    finish(t)
    n_params = len(list(t.G.parameters()))
    # Only the G step's backward reaches G: once per step. Fakes made with gradients for the D step
    # (no no_grad/detach) would add n_critic more per step, wasting a backward through G each time.
    assert len(reached) == steps * n_params, (len(reached), steps, n_params)


# --- checkpoints: temp file, fsync, rename -------------------------------------------------------------

def _real(path) -> str:
    return os.path.realpath(os.fspath(path))


@pytest.fixture
def file_ops(monkeypatch):
    """Records fsyncs (by the path the descriptor points at) and renames, in order, then does them."""
    log: list[tuple] = []
    real = {name: getattr(os, name) for name in ("fsync", "fdatasync", "replace", "rename")}

    def syncer(name):
        def sync(fd):
            try:
                target = _real(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                target = f"<fd {fd}>"
            log.append(("fsync", target))
            return real[name](fd)
        return sync

    def renamer(name):
        def rename(src, dst, *args, **kwargs):
            log.append(("rename", _real(src), _real(dst)))
            return real[name](src, dst, *args, **kwargs)
        return rename

    for name in ("fsync", "fdatasync"):
        monkeypatch.setattr(os, name, syncer(name))
    for name in ("replace", "rename"):
        monkeypatch.setattr(os, name, renamer(name))
    return log


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name the file an fsync flushes")
def test_checkpoints_are_fsynced_under_a_temporary_name_then_renamed(tmp_path, file_ops):
    t = trainer(tmp_path, "ring8", 2, *SMALL_RING, "log.checkpoint_every=1")
    finish(t)
    folder = tmp_path / "run" / "checkpoints"
    finals = sorted(folder.glob("*.safetensors"))
    assert {p.name for p in finals} >= {"step_00000001.safetensors", "step_00000002.safetensors",
                                        "latest.safetensors"}
    for final in finals:
        renames = [i for i, op in enumerate(file_ops) if op[0] == "rename" and op[2] == _real(final)]
        assert renames, f"{final.name} was written in place, not renamed into place"
        for i in renames:
            src = file_ops[i][1]
            assert Path(src).parent == Path(_real(folder)) and src != _real(final)  # same folder: atomic
            assert ("fsync", src) in file_ops[:i], f"{Path(src).name} was renamed to {final.name} before an fsync"
    assert not [p for p in folder.iterdir() if p not in finals]  # no temporary file left behind


def test_a_failed_save_leaves_the_old_checkpoint_whole(tmp_path, monkeypatch):
    from gantui import checkpoint

    path = tmp_path / "ckpt" / "latest.safetensors"
    checkpoint.save(path, {"w": torch.ones(3)}, {"step": "1"})
    before = path.read_bytes()

    def crash(*args, **kwargs):  # the process dies between writing the new file and renaming it
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError):
        checkpoint.save(path, {"w": torch.zeros(1000)}, {"step": "2"})
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["latest.safetensors"]


@pytest.mark.parametrize("journal_fails", [False, True])
def test_a_write_fault_is_said_once_whether_or_not_the_journal_still_takes_it(tmp_path, monkeypatch, journal_fails):
    # a checkpoint that hits a full disk while events.jsonl still has room: one error, in the journal and
    # on the screen (it used to reach the screen, the progress lines and the notifiers twice); when the
    # journal fails too, the screen still hears it once
    t = trainer(tmp_path, "ring8", 3, *SMALL_RING, "log.checkpoint_every=2")
    heard = []
    t.add_listener(lambda m: heard.append(m) if getattr(m, "kind", None) == "error" else None)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(t, "_checkpoint", full)
    if journal_fails:
        monkeypatch.setattr(t.rundir, "event", full)
    assert t.run() == CRASHED and t.exit_code == 1
    assert len(heard) == 1 and "No space left on device" in heard[0].data["message"]
    assert heard[0].journaled is not journal_fails
    journal = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert len([e for e in journal if e["kind"] == "error"]) == (0 if journal_fails else 1)
