"""A run's identity is fixed; what a resume may change is applied and recorded (issue 21).

The real CLI in process (its `main`), on real run directories of the real engine: refusals leave
every byte of the run as it was; allowed changes write a `config_changed` event.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conftest import TINY_RING, run_cli
from gantui import config
from gantui.engine import jsonl
from gantui.vocab import config_keys as identity


def tree(folder: Path) -> dict[str, str]:
    """Every file of a directory (the lock file too) by its SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def events(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in jsonl.read(run_dir / "events.jsonl").records if e["kind"] == kind]


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> Path:
    """A ring8 run of run.steps 40 stopped at step 20 (as `q` stops it): its checkpoint says 40."""
    from gantui.engine import events as ev
    from gantui.engine.control import Stop
    from gantui.engine.trainer import Trainer

    cfg = config.load("ring8", TINY_RING[1::2]).replace("run", steps=40)
    run_dir = tmp_path_factory.mktemp("identity") / "run"
    t = Trainer(cfg, run_dir, device="cpu")

    def stop_at_20(m):
        if isinstance(m, ev.Snapshot) and m.step >= 20:
            t.control.send(Stop(save=True, reason="user"))  # save, then stop (as `q`)

    t.add_listener(stop_at_20)
    t.setup()
    assert t.run() == ev.STOPPED and t.step < 40
    return run_dir


def test_every_config_key_is_classified_identity_or_mutable():
    # a key added to the config without a line in gantui.vocab.config_keys' table fails here, naming it
    keys = identity.flatten(config.Config().to_dict())
    assert [k for k in keys if not identity.is_classified(k)] == []
    assert identity.key_class("loss.kind") == identity.IDENTITY and identity.key_class("model.g_width") == identity.IDENTITY
    assert identity.key_class("optim.g_lr") == identity.MUTABLE and identity.key_class("loss.n_critic") == identity.MUTABLE
    assert identity.key_class("nosuch.key") == identity.IDENTITY  # unclassified: refused, never rewritten


def test_another_presets_loss_or_model_is_refused_in_place_and_changes_nothing(stopped, capsys):
    before = tree(stopped)
    code, _, err = run_cli(capsys, "run", "wgan_gp", "--resume", stopped)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for key in ("model.arch", "data.name", "model.latent_dim"):
        assert key in err, err
    assert f"--resume {stopped} --run-dir NEW_DIR" in err
    code, _, err = run_cli(capsys, "run", "ring8", "--resume", stopped, *TINY_RING, "--set", "loss.kind=ns")
    assert code == 2 and "(loss.kind 'wgan_gp' -> 'ns')" in err, err  # the one differing key
    assert tree(stopped) == before


def test_a_finished_run_resumed_without_more_steps_says_so_and_changes_nothing(tmp_path, capsys):
    run_dir = tmp_path / "done"
    code, _, err = run_cli(capsys, "run", "ring8", "--headless", "--steps", "10", "--run-dir", run_dir, *TINY_RING)
    assert code == 0, err
    before = tree(run_dir)
    for args in (["run", "--resume", run_dir], ["run", "ring8", "--resume", run_dir, *TINY_RING]):
        code, out, err = run_cli(capsys, *args)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "finished, at step 10 of its 10" in err and "--steps" in err, err
        assert tree(run_dir) == before


def test_resume_alone_continues_to_the_runs_own_steps_and_records_allowed_changes(stopped, tmp_path, capsys):
    # a fork first (a new run from the checkpoint may change what it is), then the in-place resumes
    fork = tmp_path / "fork"
    code, _, err = run_cli(capsys, "run", "ring8", *TINY_RING, "--set", "loss.kind=hinge", "--resume", stopped,
                           "--run-dir", fork, "--headless")
    assert code == 0, err
    changed = events(fork, "config_changed")
    assert changed and changed[0]["changes"]["loss.kind"] == {"from": "wgan_gp", "to": "hinge"}
    assert "wgan_gp" not in (fork / "config.toml").read_text() and events(fork, "finished")

    source = tree(stopped)
    code, _, err = run_cli(capsys, "run", "--resume", stopped, "--headless", "--set", "optim.g_lr=3e-4")
    assert code == 0, err
    assert source != tree(stopped)
    steps = [r["step"] for r in jsonl.read(stopped / "metrics.jsonl").records]
    assert steps[-1] == 40 and steps == sorted(set(steps))  # its own run.steps, not ring8's 20,000
    (change,) = events(stopped, "config_changed")
    assert change["changes"] == {"optim.g_lr": {"from": 1e-3, "to": 3e-4}} and change["step"] < 40
    assert config.loads((stopped / "config.toml").read_text()).optim.g_lr == 3e-4



def test_a_tracked_loops_run_is_not_resumed_as_a_preset_and_changes_nothing(tmp_path, capsys):
    from test_track import tiny_loop

    tiny_loop(tmp_path / "mine", 10, log_every=5)
    before = tree(tmp_path / "mine")
    for args in (["run", "--resume", tmp_path / "mine"], ["run", "ring8", "--resume", tmp_path / "mine"]):
        code, _, err = run_cli(capsys, *args)
        assert code == 2 and "gantui.track" in err and len(err.strip().splitlines()) == 1, err
    assert tree(tmp_path / "mine") == before
