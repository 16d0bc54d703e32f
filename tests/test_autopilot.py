"""The autopilot of issue 20: the best checkpoint (run.best_by), the [stop] rules, and `--best`.

Real training (tiny mixture1d runs through the CLI's real main), real files; expected values come
from the run's own records and from an independent re-measurement of the saved weights."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import run_cli
from gantui.engine import jsonl

TINY = ["--set", "model.g_width=16", "--set", "model.d_width=16", "--set", "log.every=5",
        "--set", "log.sample_every=1000", "--set", "log.eval_every=20", "--set", "log.checkpoint_every=40"]


def _quality(run_dir) -> list[tuple[int, float]]:
    return [(m["step"], m["mode_score"]) for m in jsonl.read(run_dir / "metrics.jsonl").records
            if "mode_score" in m]


def _events(run_dir, kind: str) -> list[dict]:
    return [e for e in jsonl.read(run_dir / "events.jsonl").records if e["kind"] == kind]


@pytest.fixture(scope="module")
def kept_best(tmp_path_factory):
    """A 200-step run measuring every 20 steps, keeping one step checkpoint."""
    from gantui import cli

    run_dir = tmp_path_factory.mktemp("best") / "run"
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "mixture1d", "--headless", "--steps", "200", "--run-dir", str(run_dir), *TINY,
                  "--set", "log.keep=1"])
    assert e.value.code == 0
    return run_dir


def _remeasure(path):
    """The saved generator measured again by the live-quality function, from the file alone."""
    from gantui import checkpoint, config
    from gantui.engine import parts as parts_mod
    from gantui.engine import state as state_mod
    from gantui.engine.quality import LiveQuality

    _, meta = checkpoint.read(path)
    cfg = config.loads(meta["config"])
    parts = parts_mod.build(cfg, "cpu")
    state_mod.restore(path, cfg, parts, state_mod.Runtime())
    return LiveQuality(cfg, parts).measure(), int(meta["step"]), meta


def test_best_checkpoint_is_the_best_recorded_step_and_survives_keep_1(kept_best):
    quality = _quality(kept_best)
    assert len(quality) == 10
    best_step, best_value = max(quality, key=lambda sv: (sv[1], -sv[0]))  # first step of the maximum
    ckpts = kept_best / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("step_*")) == ["step_00000200.safetensors"]  # keep = 1 pruned
    measured, step, meta = _remeasure(ckpts / "best.safetensors")
    assert step == best_step
    # the measurement's noise: its own fixed noise, so the same weights give the same value
    assert measured["mode_score"] == pytest.approx(best_value, abs=1e-6)
    assert json.loads(meta["best"]) == {"key": "mode_score", "value": best_value, "step": best_step}
    assert _events(kept_best, "best")[-1]["best_step"] == best_step


def test_runs_shows_the_best_and_eval_sample_take_best(kept_best, capsys, tmp_path):
    best_step, best_value = max(_quality(kept_best), key=lambda sv: (sv[1], -sv[0]))
    code, out, err = run_cli(capsys, "runs", kept_best, "--json")
    assert code == 0, err
    row = json.loads(out)[0]
    assert (row["best"]["key"], row["best"]["step"]) == ("mode_score", best_step)
    assert row["best"]["value"] == pytest.approx(best_value)
    code, out, _ = run_cli(capsys, "runs", kept_best)
    assert f"@{best_step}" in out
    code, out, err = run_cli(capsys, "eval", kept_best, "--best", "--json", "--n-samples", "500")
    assert code == 0, err
    assert json.loads(out)["step"] == best_step
    code, _, err = run_cli(capsys, "sample", kept_best, "--best", "--out", tmp_path / "s.npy", "--n", "8")
    assert code == 0, err
    code, _, err = run_cli(capsys, "eval", kept_best / "checkpoints" / "latest.safetensors", "--best")
    assert code == 2 and "run directory" in err


def test_a_plateaued_run_stops_by_patience(tmp_path, capsys):
    # G's learning rate so small that its samples cannot change: the criterion plateaus at once
    run_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "mixture1d", "--headless", "--steps", "400", "--run-dir", run_dir, *TINY,
                           "--set", "optim.g_lr=1e-12", "--set", "stop.patience=3")
    assert code == 0, err
    quality = _quality(run_dir)
    assert [s for s, _ in quality] == [20, 40, 60, 80]       # first value, then 3 without improvement
    stopped = _events(run_dir, "stopped")
    assert len(stopped) == 1 and stopped[0]["rule"] == "patience" and stopped[0]["step"] == 80
    assert stopped[0]["evidence"]["measurements"] == 3
    assert (run_dir / "checkpoints" / "step_00000080.safetensors").is_file()
    code, out, _ = run_cli(capsys, "runs", run_dir)
    assert "stopped by patience" in out


def test_a_target_stop_fires_at_the_target(kept_best, tmp_path, capsys):
    # the first measurement that beats every earlier one (after the first): its value is the target
    quality = _quality(kept_best)
    step, target = next((s, v) for i, (s, v) in enumerate(quality)
                        if i and v > max(x for _, x in quality[:i]))
    run_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "mixture1d", "--headless", "--steps", "200", "--run-dir", run_dir, *TINY,
                           "--set", "log.keep=1", "--set", f"stop.target={{mode_score = {target!r}}}")
    assert code == 0, err
    stopped = _events(run_dir, "stopped")
    assert len(stopped) == 1 and stopped[0]["rule"] == "target" and stopped[0]["step"] == step
    assert stopped[0]["evidence"]["value"] >= target
    assert _quality(run_dir)[-1][0] == step


@pytest.mark.parametrize("override, words", [
    ("stop.patiense=3", "[stop] patiense: unknown key"),
    ("stop.target={fid = 5.0}", "[stop] target: key fid"),
    ("stop.on_alerts=['nope']", "[stop] on_alerts: expected a list of alert rules"),
    ("run.best_by=kid", "[run] best_by"),
])
def test_bad_stop_and_best_keys_are_one_line_and_exit_2(tmp_path, capsys, override, words):
    code, _, err = run_cli(capsys, "run", "mixture1d", "--headless", "--run-dir", tmp_path / "r", "--set", override)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_compare_and_the_monitor_show_the_best(kept_best, capsys):
    from gantui.ui.widgets.metrics import autopilot_items

    best_step, best_value = max(_quality(kept_best), key=lambda sv: (sv[1], -sv[0]))
    code, out, err = run_cli(capsys, "compare", kept_best, "--json")
    assert code == 0, err
    assert json.loads(out)["runs"][0]["best"]["step"] == best_step
    last = [m for m in jsonl.read(kept_best / "metrics.jsonl").records if "best" in m][-1]
    shown = [str(t) for t in autopilot_items({"best": last["best"], "stop_rules": last.get("stop_rules")})]
    assert shown == [f"best mode_score {best_value:.4g}@{best_step}"]


def test_stop_rules_budget_alerts_and_direction_by_hand():
    from gantui.config import StopConfig
    from gantui.engine.stoprules import StopRules

    now = [0.0]
    rules = StopRules(StopConfig(max_minutes=10.0, on_alerts=["mode_collapse"], after_steps=1000,
                                 target={"fid": 5.0}), "fid", clock=lambda: now[0])
    raised = [{"rule": "mode_collapse", "step": 100, "message": "m"}, {"rule": "oscillation", "step": 0}]
    now[0] = 599.0
    assert rules.on_record(1099, raised) is None          # 9.98 min; held 999 steps; oscillation not named
    stop = rules.on_record(1100, raised)
    assert stop.rule == "on_alerts" and stop.evidence["held_steps"] == 1000
    now[0] = 600.0
    assert rules.on_record(10, []).rule == "max_minutes"
    assert rules.on_quality(500, {"fid": 5.1}) is None    # fid: lower is better
    assert rules.on_quality(1000, {"fid": 4.9}).rule == "target"
