"""[notify]: real runs through the CLI (`gantui run --headless`, in process) with a webhook on a
local HTTP server (127.0.0.1) and a command that writes its stdin to a file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from notify_receiver import Receiver

from gantui.engine import jsonl

# mixture1d with a D 2e4 times faster than G: d_overpowering and mode_collapse are raised by step 150
ALERTING = ["--set", "optim.d_lr=2e-3", "--set", "optim.g_lr=1e-7", "--set", "diagnostics.warmup_steps=50",
            "--set", "log.every=5", "--set", "model.g_width=16", "--set", "model.d_width=16",
            "--set", "notify.min_interval_s=0"]
# every shell metacharacter, and commands that would leave files behind if a shell ever ran them
EVIL_NAME = "run;touch PWNED1&&touch PWNED2|touch PWNED3`touch PWNED4`$(touch PWNED5)>PWNED6<x'\"*?~!#"

WRITER = """import sys
data = sys.stdin.buffer.read()
with open(sys.argv[1], "ab") as f:
    f.write(data + b"\\n")
"""


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


def toml_list(items) -> str:
    return "[" + ", ".join(json.dumps(str(x)) for x in items) + "]"


def test_alerts_and_end_reach_webhook_and_command_once_and_the_name_stays_data(capsys, tmp_path, monkeypatch,
                                                                              receiver):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    out = tmp_path / "received.jsonl"
    run_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "mixture1d", "--headless", "--steps", "150", "--run-dir", run_dir,
                           *ALERTING, "--set", f"run.name={json.dumps(EVIL_NAME)}",
                           "--set", f'notify.webhook="{receiver.url}"',
                           "--set", f"notify.command={toml_list([sys.executable, script, out])}")
    assert code == 0, err
    events = jsonl.read(run_dir / "events.jsonl").records
    raised = sorted((e["step"], e["rule"]) for e in events if e["kind"] == "alert" and e["state"] == "raised")
    assert len(raised) >= 1
    got = receiver.of(run_dir)
    assert sorted((b["step"], b["rule"]) for b in got if b["kind"] == "alert") == raised
    (end,) = [b for b in got if b["category"] == "end"]
    finished = [e for e in events if e["kind"] == "finished"][0]
    assert end["kind"] == "finished" and end["step"] == finished["step"] == 150 and end["text"].startswith("gantui ")
    alert = next(b for b in got if b["kind"] == "alert")
    assert {"text", "rule", "message", "fix", "evidence", "severity", "step", "run"} <= set(alert)
    # the command got the same messages, each one JSON document on stdin, the run name as data only
    lines = out.read_bytes().splitlines()
    sent = [json.loads(x) for x in lines]
    assert len(sent) == len(got) and all(s["run"] == EVIL_NAME for s in sent)
    assert [s["kind"] for s in sent] == [b["kind"] for b in got]
    assert sent[-1] == end
    assert not [p for p in tmp_path.rglob("PWNED*")] and not list(Path.cwd().glob("PWNED*"))
    assert not [e for e in events if e["kind"] == "notify_failed"]


def test_a_hanging_receiver_does_not_stall_training_and_its_failures_are_events(capsys, tmp_path, receiver):
    """The receiver takes every request and never answers. Were delivery on the training thread,
    the first alert would hold training for notify.timeout_s and its `notify_failed` would come
    before `finished`; delivered in the background, training ends first and the failure follows."""
    run_dir = tmp_path / "run"
    before = receiver.hung
    code, _, err = run_cli(capsys, "run", "mixture1d", "--headless", "--steps", "150", "--run-dir", run_dir,
                           *ALERTING, "--set", f'notify.webhook="{receiver.url}hang"', "--set", "notify.timeout_s=3")
    assert code == 0, err
    assert not receiver.release.is_set()           # the receiver never answered
    metrics = jsonl.read(run_dir / "metrics.jsonl").records
    assert [m["step"] for m in metrics][-1] == 150 and len(metrics) == 30   # every step trained and logged
    events = jsonl.read(run_dir / "events.jsonl").records
    kinds = [e["kind"] for e in events]
    failed = [e for e in events if e["kind"] == "notify_failed"]
    assert receiver.hung - before >= 1 and failed
    assert kinds.index("notify_failed") > kinds.index("finished")
    assert all(e["receiver"] == "webhook" and "timed out" in e["error"] for e in failed)
    assert failed[0]["event"] == "alert"


def test_a_crash_is_notified(capsys, tmp_path, monkeypatch, receiver):
    from gantui.engine import step as step_mod

    real = step_mod.GanStep.__call__
    calls = []

    def broken(self, *args, **kwargs):  # an unexpected bug on the 12th step
        calls.append(1)
        if len(calls) == 12:
            raise RuntimeError("an unexpected bug")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(step_mod.GanStep, "__call__", broken)
    run_dir = tmp_path / "run"
    monkeypatch.setenv("GANTUI_TEST_HOOK", receiver.url)     # the URL from the environment: in no file
    code, _, err = run_cli(capsys, "run", "mixture1d", "--headless", "--steps", "30", "--run-dir", run_dir,
                           "--set", 'notify.webhook_env="GANTUI_TEST_HOOK"', "--set", "model.g_width=16")
    assert code == 1
    (crash,) = [b for b in receiver.of(run_dir) if b["category"] == "crash"]
    assert crash["kind"] == "error" and "an unexpected bug" in crash["text"] and crash["step"] == 11
    assert receiver.url not in (run_dir / "config.toml").read_text()


def test_a_webhook_env_that_is_not_set_is_one_line_exit_2(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("GANTUI_TEST_UNSET", raising=False)
    code, _, err = run_cli(capsys, "run", "mixture1d", "--headless", "--steps", "5", "--run-dir", tmp_path / "r",
                           "--set", 'notify.webhook_env="GANTUI_TEST_UNSET"')
    assert code == 2 and "GANTUI_TEST_UNSET is not set" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r" / "metrics.jsonl").exists()


def test_the_rate_limit_holds_back_alerts_counts_them_and_never_a_stop_or_end(tmp_path):
    from gantui import config
    from gantui.engine import events as ev
    from gantui.notify import Notifier

    script, out = tmp_path / "writer.py", tmp_path / "got.jsonl"
    script.write_text(WRITER)
    cfg = config.loads(f"[notify]\ncommand = {toml_list([sys.executable, script, out])}\nmin_interval_s = 10.0\n")
    now = [0.0]
    n = Notifier(cfg.notify, "r", tmp_path, clock=lambda: now[0])
    for t, step, kind, data in [(0, 1, "alert", {"rule": "a", "state": "raised"}),
                                (1, 2, "alert", {"rule": "b", "state": "raised"}),
                                (2, 3, "alert", {"rule": "a", "state": "cleared"}),   # not notified at all
                                (3, 4, "alert", {"rule": "c", "state": "raised"}),
                                (4, 5, "stopped", {"reason": "user"}),
                                (11, 6, "alert", {"rule": "d", "state": "raised"}),
                                (20, 7, "finished", {"total_steps": 7})]:
        now[0] = t
        n(ev.Event(step, kind, data))
    assert n.close(30)
    got = [json.loads(x) for x in out.read_bytes().splitlines()]
    assert [(g["step"], g["kind"]) for g in got] == [(1, "alert"), (5, "stopped"), (7, "finished")]
    assert got[1]["suppressed"] == 2 and got[2]["suppressed"] == 1   # b, c before the stop; d after it


def test_a_command_that_hangs_is_killed_at_the_timeout_and_logged(tmp_path):
    from gantui import config
    from gantui.engine import events as ev
    from gantui.notify import Notifier

    hang = "import sys, time; sys.stdin.read(); time.sleep(60)"
    cfg = config.loads(f"[notify]\ncommand = {toml_list([sys.executable, '-c', hang])}\ntimeout_s = 0.5\n")
    logged = []
    n = Notifier(cfg.notify, "r", tmp_path, lambda kind, **data: logged.append((kind, data)))
    n(ev.Event(7, "finished", {"total_steps": 7}))
    assert n.close(30)
    ((kind, data),) = logged
    assert kind == "notify_failed" and data["receiver"] == "command" and data["event"] == "finished"
    assert "no exit within" in data["error"] and n.failed == 1
