"""`gantui runs` and gantui/runinfo.py: run state, losses, quality and alerts read from run files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gantui import runinfo
from gantui.engine.runlock import RunLock
from tests.conftest import REPO, gantui


def write_jsonl(path: Path, records: list[dict], torn: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + torn)


def make_run(root: Path, name: str, events: list[dict], metrics: list[dict] | None = None, torn: str = "") -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "config.toml").write_text('[run]\nname = "ring8"\nsteps = 100\n')
    write_jsonl(run / "events.jsonl", events, torn)
    write_jsonl(run / "metrics.jsonl", metrics or [])
    return run


START = {"step": 0, "kind": "started", "total_steps": 100}

STATE_TABLE = [
    ("finished", [START, {"step": 100, "kind": "checkpoint"}, {"step": 100, "kind": "finished"}], "finished"),
    ("interrupted", [START, {"step": 40, "kind": "stopped", "reason": "interrupted"}], "interrupted"),
    ("stopped by user", [START, {"step": 40, "kind": "stopped", "reason": "user"}], "stopped"),
    ("stopped by gantui stop", [START, {"step": 40, "kind": "stopped", "reason": "stop"}], "stopped"),
    ("diverged", [START, {"step": 30, "kind": "alert", "rule": "divergence", "state": "raised"},
                  {"step": 30, "kind": "diverged"}], "diverged"),
    ("error", [START, {"step": 7, "kind": "error", "message": "RuntimeError: boom"}], "crashed"),
    ("killed: started and nothing after", [START, {"step": 50, "kind": "checkpoint"}], "crashed"),
    ("killed after a resume", [START, {"step": 40, "kind": "stopped", "reason": "interrupted"},
                               {"step": 40, "kind": "started"}, {"step": 60, "kind": "lr_changed"}], "crashed"),
    ("resumed and finished", [START, {"step": 40, "kind": "stopped", "reason": "interrupted"},
                              {"step": 40, "kind": "started"}, {"step": 100, "kind": "finished"}], "finished"),
    ("hang-up after finishing does not count", [START, {"step": 100, "kind": "finished"},
                                                {"step": 100, "kind": "hangup"}], "finished"),
    ("never started", [], "crashed"),
]


@pytest.mark.parametrize("label,events,state", STATE_TABLE, ids=[t[0] for t in STATE_TABLE])
def test_state_from_the_last_lifecycle_event(tmp_path, label, events, state):
    run = make_run(tmp_path, "r", events)
    assert runinfo.run_state(run).state == state
    assert runinfo.summarize(run).state == state


def test_a_crash_says_why(tmp_path):
    killed = runinfo.run_state(make_run(tmp_path, "killed", [START]))
    assert "without a final event" in killed.note
    error = runinfo.run_state(make_run(tmp_path, "error", [START, {"step": 3, "kind": "error", "message": "OSError: disk full"}]))
    assert "disk full" in error.note


def test_a_torn_last_event_is_ignored(tmp_path):
    # a writer killed mid-line: the half line is not an event, the state comes from the last whole one
    run = make_run(tmp_path, "r", [START, {"step": 40, "kind": "stopped", "reason": "user"}],
                   torn='{"step": 100, "kind": "fini')
    assert runinfo.run_state(run).state == "stopped"


def test_a_live_lock_holder_reads_as_running(tmp_path):
    run = make_run(tmp_path, "r", [START, {"step": 10, "kind": "paused"}])
    with RunLock(run):
        st = runinfo.run_state(run)
        assert st.state == "running"
        assert st.pid == os.getpid()
        assert st.paused
        assert runinfo.summarize(run).state == "running"
    # released (the process "died" without a final event): crashed
    assert runinfo.run_state(run).state == "crashed"


def test_active_alerts_replay_raise_and_clear(tmp_path):
    def alert(step, rule, state, severity="warning"):
        return {"step": step, "kind": "alert", "rule": rule, "state": state, "severity": severity, "message": f"{rule} {state}"}

    events = [START, alert(600, "oscillation", "raised"), alert(700, "mode_collapse", "raised"),
              alert(800, "oscillation", "cleared"), alert(900, "d_overpowering", "raised")]
    run = make_run(tmp_path, "r", events)
    assert [a["rule"] for a in runinfo.summarize(run).alerts] == ["mode_collapse", "d_overpowering"]
    # a resume starts the rules afresh: alerts of the earlier process are no longer active
    resumed = make_run(tmp_path, "r2", events + [{"step": 900, "kind": "started"}])
    assert runinfo.summarize(resumed).alerts == []
    # critical first
    crit = make_run(tmp_path, "r3", events + [alert(950, "divergence", "raised", "critical")])
    assert runinfo.summarize(crit).alerts[0]["rule"] == "divergence"


def test_latest_quality_is_found_beyond_the_short_tail(tmp_path):
    # quality figures only on eval records; 3,000 plain records after the last one (~1 MB... less than WIDE)
    # d_acc may come with every record: it must not hide the older eval record
    plain = {"d_loss": 0.5, "g_loss": 1.5, "grad_norm_d": 1.0, "grad_norm_g": 1.0, "sample_std": 0.4, "steps_per_s": 10.0,
             "d_acc": 0.75}
    metrics = [{"step": 10, **plain, "modes_captured": 6, "modes_total": 8, "hq_fraction": 0.5},
               {"step": 20, **plain, "modes_captured": 8, "modes_total": 8, "hq_fraction": 0.9}]
    metrics += [{"step": 20 + i, **plain} for i in range(1, 800)]
    run = make_run(tmp_path, "r", [START], metrics)
    assert (run / "metrics.jsonl").stat().st_size > runinfo.TAIL_BYTES
    s = runinfo.summarize(run)
    assert s.quality == {"modes_captured": 8, "hq_fraction": 0.9, "modes_total": 8, "d_acc": 0.75}
    assert s.quality_step == 20
    assert s.step == 819
    assert "modes 8/8" in runinfo.table([s])


def test_find_runs_nested_and_skips_non_runs(tmp_path):
    make_run(tmp_path, "a", [START])
    make_run(tmp_path / "sweep", "b", [START])
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "not-a-run" / "notes.txt").write_text("x")
    make_run(tmp_path, ".hidden", [START])
    assert [p.name for p in runinfo.find_runs(tmp_path)] == ["a", "b"]
    # a run directory given directly is itself the list
    assert runinfo.find_runs(tmp_path / "a") == [tmp_path / "a"]


def test_real_finished_runs_summarized(short_runs):
    for run in short_runs:
        s = runinfo.summarize(run)
        last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
        assert (s.state, s.step, s.total_steps, s.preset) == ("finished", 20, 20, "ring8")
        assert s.losses["d_loss"] == last["d_loss"] and s.losses["g_loss"] == last["g_loss"]
        assert s.age_s is not None and s.age_s >= 0


def test_runs_cli_json_and_table(short_runs):
    root = short_runs[0].parent
    r = gantui("runs", str(root), "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(row["name"], row["state"], row["step"], row["total_steps"]) for row in rows] == [
        ("ring8-seed0", "finished", 20, 20), ("ring8-seed1", "finished", 20, 20)]
    table = gantui("runs", str(root))
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "STATE", "STEP"]
    assert lines[1].split()[:3] == ["ring8-seed0", "finished", "20/20"]


def test_runs_cli_bad_directory_is_one_line_exit_2(tmp_path):
    r = gantui("runs", str(tmp_path / "nope"))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "nope" in r.stderr


def test_reading_runs_never_imports_torch(short_runs):
    code = ("import sys; from gantui import runinfo, compare, export; "
            f"runinfo.summarize_all({str(short_runs[0].parent)!r}); "
            "print(sorted(m for m in ('torch', 'numpy', 'textual') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_newest_run_is_the_one_written_last(tmp_path):
    old = make_run(tmp_path, "old", [START])
    new = make_run(tmp_path, "new", [START])
    for name in ("config.toml", "events.jsonl", "metrics.jsonl"):
        os.utime(old / name, (2_000_000_000, 2_000_000_000))
        os.utime(new / name, (1_000_000_000, 1_000_000_000))
    assert runinfo.newest_run(tmp_path) == old
    assert runinfo.newest_run(tmp_path / "nothing-here") is None
