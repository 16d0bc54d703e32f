"""[recover]: real (short) mixture1d runs, provoked by live commands at a step -- the same Control
path the monitor's keys use -- roll back, apply the alert's fix and finish; with the provocation
kept on they stop after max_attempts with the failure's exit code. benchmarks/recover.py runs the
same provocations on more seeds and steps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from notify_receiver import Receiver

from gantui import config
from gantui.engine import jsonl

BASE = ["log.every=5", "log.sample_every=50", "log.checkpoint_every=50", "log.eval_every=50", "log.keep=0",
        "diagnostics.warmup_steps=100", "model.g_width=32", "model.d_width=32", "recover.enabled=true",
        "recover.grace_steps=25"]
K = 150            # the provocation's step
PRESET_LR = 1e-3   # mixture1d's g_lr and d_lr


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


def train(run_dir: Path, rule: str, which: str, value: float, steps: int, *, keep: bool, attempts: int = 3,
          webhook: str = ""):
    """A mixture1d run with [recover] on `rule`; at step K a listener sets the rates `which` to `value`
    (again after every rollback when `keep`). Returns (trainer, events, metrics)."""
    from gantui import notify
    from gantui.engine import events as ev
    from gantui.engine.control import SetLr
    from gantui.engine.trainer import Trainer

    sets = BASE + [f'recover.on=["{rule}"]', f"recover.max_attempts={attempts}", "notify.min_interval_s=0"]
    if webhook:
        sets.append(f'notify.webhook="{webhook}"')
    cfg = config.load("mixture1d", sets).replace("run", steps=steps)
    trainer = Trainer(cfg, run_dir, device="cpu")
    notifier = notify.for_trainer(cfg, trainer)  # what the shells add; None without a webhook
    fired: list[int] = []

    def provoke(msg):
        if isinstance(msg, ev.Snapshot) and msg.step >= K and not fired:
            fired.append(msg.step)
            for w in (("g", "d") if which == "both" else (which,)):
                trainer.control.send(SetLr(which=w, value=value, reason="provocation"))
        elif isinstance(msg, ev.Event) and msg.kind == "rolled_back" and keep:
            fired.clear()

    trainer.add_listener(provoke)
    trainer.setup()
    trainer.run()
    if notifier is not None:
        assert notifier.close(30)
    events = jsonl.read(run_dir / "events.jsonl").records
    metrics = jsonl.read(run_dir / "metrics.jsonl").records
    return trainer, events, metrics


def kinds(events, kind):
    return [e for e in events if e["kind"] == kind]


def increasing(metrics):
    steps = [m["step"] for m in metrics]
    return all(a < b for a, b in zip(steps, steps[1:]))


@pytest.fixture(scope="module")
def diverged_once(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("recover") / "div"
    return run_dir, *train(run_dir, "divergence", "both", 1e30, 300, keep=False)


def test_a_divergence_rolls_back_halves_the_rates_and_finishes(diverged_once):
    run_dir, trainer, events, metrics = diverged_once
    assert trainer.exit_code == 0 and trainer.state == "FINISHED"
    (rb,) = kinds(events, "rolled_back")
    assert rb["rule"] == "divergence" and rb["fix"] == "halve both rates"
    assert rb["to_step"] <= K < rb["from_step"] and rb["step"] == rb["to_step"]
    # the fix, applied through the live command path, on the rates the checkpoint restored
    fixes = [e for e in kinds(events, "lr_changed") if e["reason"] == "recover:divergence"]
    assert sorted(e["which"] for e in fixes) == ["d", "g"]
    assert all(e["old"] == PRESET_LR and e["new"] == PRESET_LR / 2 for e in fixes)
    # main history: strictly increasing steps to the end; quality back near its best before K
    assert increasing(metrics) and metrics[-1]["step"] == 300
    w1 = [m for m in metrics if "w1" in m]
    best = min(m["w1"] for m in w1 if m["step"] < K)
    assert w1[-1]["step"] == 300 and w1[-1]["w1"] <= 1.25 * best
    assert all(isinstance(m["d_loss"], float) for m in metrics)  # no NaN record left in it


def test_the_abandoned_stretch_stays_readable_in_branch_files(diverged_once):
    run_dir, _, events, _ = diverged_once
    (rb,) = kinds(events, "rolled_back")
    branch = jsonl.read(run_dir / "metrics.abandoned-1.jsonl").records
    assert rb["abandoned"]["metrics"] == str(run_dir / "metrics.abandoned-1.jsonl")
    assert branch and all(rb["to_step"] < m["step"] <= rb["from_step"] for m in branch)
    assert branch[-1]["d_loss"] in ("nan", "inf", "-inf") or branch[-1]["g_loss"] in ("nan", "inf", "-inf")
    lost = jsonl.read(run_dir / "events.abandoned-1.jsonl").records
    assert any(e["kind"] == "alert" and e["rule"] == "divergence" for e in lost)
    assert any(e["kind"] == "lr_changed" and e["new"] == 1e30 for e in lost + events)


def test_recovery_keeps_a_point_to_roll_back_to_with_keep_0_and_prefers_best(diverged_once):
    from gantui.engine.recovery import Recovery

    run_dir, trainer, events, _ = diverged_once
    folder = run_dir / "checkpoints"
    assert not list(folder.glob("step_*.safetensors"))       # log.keep = 0
    points = sorted((folder / "rollback").glob("step_*.safetensors"))
    assert points and len(points) <= trainer.recovery.points
    rec = Recovery(trainer.cfg.recover, trainer.cfg.log, window=20)
    alert = {"rule": "divergence", "step": 290}
    assert rec.target(folder, alert, 290).kind == "rollback point"
    shutil.copy(points[0], folder / "best.safetensors")       # the seam for [run] best_by's file
    got = rec.target(folder, alert, 290)
    assert got.kind == "best" and got.path.name == "best.safetensors"
    (folder / "best.safetensors").unlink()


def test_a_divergence_kept_on_stops_after_max_attempts_with_exit_3(tmp_path):
    trainer, events, metrics = train(tmp_path / "run", "divergence", "both", 1e30, 260, keep=True, attempts=2)
    assert trainer.exit_code == 3 and trainer.state == "DIVERGED"
    assert len(kinds(events, "rolled_back")) == 2 and kinds(events, "recover_failed")
    assert (tmp_path / "run" / "metrics.abandoned-2.jsonl").exists()
    assert kinds(events, "diverged")


def test_a_collapse_rolls_back_halves_g_and_recovers_then_kept_on_stops_with_4(tmp_path, receiver):
    trainer, events, metrics = train(tmp_path / "once", "mode_collapse", "g", 5e-2, 400, keep=False)
    assert trainer.exit_code == 0 and trainer.state == "FINISHED"
    (rb,) = kinds(events, "rolled_back")
    assert rb["rule"] == "mode_collapse" and rb["fix"] == "halve G's rate" and rb["to_step"] <= K
    lost = jsonl.read(tmp_path / "once" / "events.abandoned-1.jsonl").records
    assert any(e["kind"] == "alert" and e["rule"] == "mode_collapse" and e["state"] == "raised" for e in lost)
    (fix,) = [e for e in kinds(events, "lr_changed") if e["reason"] == "recover:mode_collapse"]
    assert fix["which"] == "g" and fix["new"] == PRESET_LR / 2
    assert increasing(metrics) and metrics[-1]["step"] == 400
    before = [m for m in metrics if "w1" in m and m["step"] < K]
    assert metrics[-1]["sample_std"] >= 0.5 * max(m["sample_std"] for m in before)  # not collapsed
    assert metrics[-1]["w1"] <= 1.25 * min(m["w1"] for m in before)

    # kept on: 2 rollbacks, then a stop with exit code 4; the webhook hears every step of it once
    run_dir = tmp_path / "keep"
    trainer, events, _ = train(run_dir, "mode_collapse", "g", 5e-2, 400, keep=True, attempts=2,
                               webhook=receiver.url)
    assert trainer.exit_code == 4 and trainer.state == "STOPPED"
    assert len(kinds(events, "rolled_back")) == 2
    (stop,) = kinds(events, "stopped")
    assert stop["reason"] == "recover" and stop["rule"] == "mode_collapse"
    got = receiver.of(run_dir)
    every = events + [e for n in (1, 2) for e in jsonl.read(run_dir / f"events.abandoned-{n}.jsonl").records]
    raised = [(e["step"], e["rule"]) for e in every if e["kind"] == "alert" and e["state"] == "raised"]
    assert len(raised) >= 3
    assert sorted((b["step"], b["rule"]) for b in got if b["kind"] == "alert") == sorted(raised)
    assert [b["kind"] for b in got if b["category"] == "recover"].count("rolled_back") == 2
    (sent_stop,) = [b for b in got if b["kind"] == "stopped"]
    assert sent_stop["rule"] == "mode_collapse" and "stopped" in sent_stop["text"]


@pytest.mark.parametrize("setting, words", [
    ('recover.on=["divergence","nope"]', "[recover] on: expected alert rule names"),
    ("recover.max_attempts=0", "[recover] max_attempts: expected an integer from 1"),
    ('notify.on=["alert","lunch"]', "[notify] on: expected a list of 'alert'"),
    ('notify.command=["", "x"]', "[notify] command: expected an argv list"),
    ('notify.webhook="file:///etc/passwd"', "[notify] webhook: expected"),
])
def test_bad_recover_and_notify_keys_are_one_line_exit_2(capsys, tmp_path, setting, words):
    code, _, err = run_cli(capsys, "run", "mixture1d", "--headless", "--steps", "5",
                           "--run-dir", tmp_path / "r", "--set", setting)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_watch_compare_and_the_monitor_show_where_the_run_branched(diverged_once, capsys):
    from gantui.engine import events as ev
    from gantui.ui.text import event_line
    from gantui.ui.widgets.alerts import AlertsModel, is_alert

    run_dir, _, events, _ = diverged_once
    (rb,) = kinds(events, "rolled_back")
    event = ev.Event(rb["step"], "rolled_back", {k: v for k, v in rb.items() if k not in ("step", "kind")})
    line = event_line(event).plain
    assert line.startswith("↶") and f"rolled back from step {rb['from_step']} to {rb['to_step']}" in line
    assert "halve both rates" in line and is_alert(event)
    model = AlertsModel()
    model.add(ev.Event(rb["from_step"], "alert", {"rule": "divergence", "state": "raised", "action": None}))
    model.add(event)
    assert not model.active            # the screen's raised alerts belonged to the abandoned stretch
    code, out, _ = run_cli(capsys, "compare", run_dir, run_dir, "--metric", "d_loss")
    assert code == 0 and f"rolled back from step {rb['from_step']} to {rb['to_step']} (divergence" in out
    code, out, _ = run_cli(capsys, "compare", run_dir, "--json")
    (got,) = json.loads(out)["runs"][0]["rollbacks"]
    assert (got["from_step"], got["to_step"], got["fix"]) == (rb["from_step"], rb["to_step"], "halve both rates")


def test_watch_following_a_run_that_rolls_back_shows_each_event_once(diverged_once, tmp_path):
    """A live `watch` re-reads events.jsonl from its start when a rollback rewrites it: the events it
    had shown must not come twice, the rollback and what follows must come."""
    from conftest import wait_until

    from gantui.engine import events as ev
    from gantui.engine.jsonl import Appender, split_after
    from gantui.live.follow import RunFollower

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(diverged_once[0] / "config.toml", run_dir / "config.toml")
    out = Appender(run_dir / "events.jsonl")
    for step, kind in [(0, "started"), (50, "checkpoint"), (120, "lr_changed"), (125, "diverged")]:
        out.append({"step": step, "kind": kind})
    seen: list[tuple[int, str]] = []
    follower = RunFollower(run_dir, [lambda m: seen.append((m.step, m.kind)) if isinstance(m, ev.Event) else None],
                           poll_s=0.05).start()
    try:
        wait_until(lambda: len(seen) == 4, 30, "the first four events")
        out.close()
        split_after(run_dir / "events.jsonl", 100, run_dir / "events.abandoned-1.jsonl")  # what branch() does
        out = Appender(run_dir / "events.jsonl")
        out.append({"step": 100, "kind": "rolled_back", "attempt": 1, "from_step": 125, "to_step": 100})
        out.append({"step": 105, "kind": "checkpoint"})
        wait_until(lambda: len(seen) >= 6, 30, "the rollback and the event after it")
    finally:
        follower.stop()
        out.close()
    assert seen == [(0, "started"), (50, "checkpoint"), (120, "lr_changed"), (125, "diverged"),
                    (100, "rolled_back"), (105, "checkpoint")]
