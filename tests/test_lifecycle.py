"""A run directory belongs to one run; a live run is reachable from outside its process.

Real processes throughout: `gantui run` (headless, --detach), `gantui stop`, the control socket,
kill -9, a full disk (a real tmpfs), and the plan/lock/truncation code they go through.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, TINY_RING, cli_in_process, gantui, run_cli
from conftest import wait_until as wait_for
from gantui import config
from gantui.engine import checkpoint_files, jsonl
from gantui.engine.runlock import RunLock, holder
from gantui.engine import protocol
from gantui.live.client import LiveClient


def digests(folder: Path) -> dict[str, str]:
    """Every file of a run directory but the lock (whose content is whoever holds it now)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".gantui.lock"}


def steps_of(run_dir: Path) -> list[int]:
    return [r["step"] for r in jsonl.read(run_dir / "metrics.jsonl").records]


def metric_rows(run_dir: Path) -> int:
    return len(jsonl.read(run_dir / "metrics.jsonl").records)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("used") / "run"
    code, _, err = cli_in_process("run", "ring8", "--headless", "--steps", "60", "--run-dir", run_dir, *TINY_RING)
    assert code == 0, err
    return run_dir


def test_a_used_run_directory_is_refused_and_left_byte_identical(finished, capsys):
    before = digests(finished)
    code, _, err = run_cli(capsys, "run", "ring8", "--headless", "--steps", "20", "--run-dir", finished, *TINY_RING)
    assert code == 2
    assert "already holds a run" in err and f"--resume {finished}" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert digests(finished) == before


def test_a_locked_run_directory_is_refused_naming_the_holder(finished):
    before = digests(finished)
    with RunLock(finished):  # what a live run holds (the same flock, from this process)
        assert holder(finished) == os.getpid()
        for extra in ([], ["--resume", str(finished)]):
            r = gantui("run", "ring8", "--headless", "--steps", "80", "--run-dir", str(finished), *extra, *TINY_RING)
            assert r.returncode == 2, r.stderr
            assert f"process {os.getpid()}" in r.stderr
    assert holder(finished) is None
    assert digests(finished) == before


def test_resume_from_an_older_checkpoint_is_refused_in_place_and_forks_elsewhere(finished, tmp_path, capsys):
    # in process (the CLI's real main): a torch import per call spared
    old = finished / "checkpoints" / "step_00000050.safetensors"
    assert old.is_file() and checkpoint_files.newest_step(finished) == 60
    before = digests(finished)
    code, _, err = run_cli(capsys, "run", "ring8", "--headless", "--steps", "70", "--resume", old, *TINY_RING)
    assert code == 2 and "older than this run's newest checkpoint" in err, err
    assert digests(finished) == before

    fork = tmp_path / "fork"
    code, _, err = run_cli(capsys, "run", "ring8", "--headless", "--steps", "70", "--resume", old, "--run-dir", fork,
                           *TINY_RING)
    assert code == 0, err
    assert digests(finished) == before  # the source run is untouched
    events = jsonl.read(fork / "events.jsonl").records
    forked = [e for e in events if e["kind"] == "forked"]
    assert forked and forked[0]["step"] == 50 and forked[0]["from_checkpoint"] == str(old)
    steps = steps_of(fork)
    assert steps == sorted(set(steps)) and steps[0] == 5 and steps[-1] == 70  # history up to 50, then its own
    assert [s for s in steps if s <= 50] == [s for s in steps_of(finished) if s <= 50]


def test_resume_falls_back_to_the_newest_whole_step_checkpoint(tmp_path, capsys):
    run_dir = tmp_path / "run"
    # the first run in this process (the CLI's real main); the resume in a fresh one
    assert run_cli(capsys, "run", "ring8", "--headless", "--steps", "50", "--run-dir", run_dir, *TINY_RING)[0] == 0
    latest = run_dir / "checkpoints" / "latest.safetensors"
    latest.write_bytes(latest.read_bytes()[: len(latest.read_bytes()) // 2])  # a torn copy
    r = gantui("run", "ring8", "--headless", "--steps", "60", "--resume", str(run_dir), *TINY_RING)
    assert r.returncode == 0, r.stderr
    assert "latest.safetensors is damaged" in r.stderr and "step_00000050.safetensors (step 50)" in r.stderr
    steps = steps_of(run_dir)
    assert steps == sorted(set(steps)) and steps[-1] == 60


def _start(run_dir: Path, steps: int = 1_000_000, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "gantui", "run", "ring8", "--headless", "--steps", str(steps),
                             "--run-dir", str(run_dir), *extra, *TINY_RING, "--set", "log.checkpoint_every=20"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_kill_9_then_resume_continues_with_strictly_increasing_steps_and_no_orphans(tmp_path):
    run_dir = tmp_path / "run"
    for round_ in range(3):
        extra = ("--resume", str(run_dir)) if round_ else ()
        proc = _start(run_dir, 1_000_000, *extra)
        try:
            # past a checkpoint, then a little further, so there are records to drop
            base = metric_rows(run_dir)
            wait_for(lambda: any(e["kind"] == "checkpoint" for e in jsonl.read(run_dir / "events.jsonl").records
                                 if e["step"] > (steps_of(run_dir)[:base] or [0])[-1]) and metric_rows(run_dir) > base + 6,
                     what="a checkpoint and more records")
            # leave debris like a save killed mid-write would
            (run_dir / "checkpoints" / ".latest.safetensors.deadbeef.tmp").write_bytes(b"\0" * 1000)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
    r = gantui("run", "ring8", "--headless", "--steps", str(steps_of(run_dir)[-1] + 10), "--resume", str(run_dir),
               *TINY_RING, "--set", "log.checkpoint_every=20")
    assert r.returncode == 0, r.stderr
    steps = steps_of(run_dir)
    assert all(a < b for a, b in zip(steps, steps[1:])), steps
    assert not list(run_dir.rglob(".*.tmp"))
    events = jsonl.read(run_dir / "events.jsonl").records
    truncated = [e for e in events if e["kind"] == "truncated"]
    assert len(truncated) >= 3 and all(e["dropped"].get("metrics.jsonl", 0) > 0 for e in truncated)
    event_steps = [e["step"] for e in events if e["kind"] in ("started", "checkpoint", "finished")]
    assert event_steps == sorted(event_steps)


def test_detach_returns_then_stop_saves_at_the_last_step(tmp_path):
    run_dir = tmp_path / "run"
    r = gantui("run", "ring8", "--detach", "--steps", "1000000", "--run-dir", str(run_dir), *TINY_RING, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"gantui watch {run_dir}" in r.stdout
    pid = holder(run_dir)
    assert pid is not None and pid != os.getpid()
    # its own session: no controlling terminal of ours can hang it up
    assert os.getsid(pid) == pid
    wait_for(lambda: metric_rows(run_dir) >= 2, what="the detached run's first records")
    r = gantui("stop", str(run_dir), timeout=180)
    assert r.returncode == 0, r.stderr
    assert holder(run_dir) is None
    events = jsonl.read(run_dir / "events.jsonl").records
    assert events[-1]["kind"] == "stopped"
    last_step = steps_of(run_dir)[-1]
    saved = [e for e in events if e["kind"] == "checkpoint"][-1]
    assert saved["step"] >= last_step
    assert checkpoint_files.step_of(run_dir / "checkpoints" / "latest.safetensors") == saved["step"]
    assert not (run_dir / "live.json").exists()


def test_the_control_socket_is_private_and_garbage_never_stops_the_training(tmp_path):
    run_dir = tmp_path / "run"
    proc = _start(run_dir)
    try:
        wait_for(lambda: (run_dir / "live.json").exists() and metric_rows(run_dir) >= 1, what="the live run")
        live = json.loads((run_dir / "live.json").read_text())
        sock_path = Path(live["socket"])
        assert stat.S_IMODE(os.lstat(sock_path).st_mode) == 0o600
        folder = os.lstat(sock_path.parent)
        assert stat.S_IMODE(folder.st_mode) == 0o700 and folder.st_uid == os.getuid()
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(str(sock_path))
            replies = []
            for raw in (b"\xff\xfe garbage\n", b"[1, 2]\n", b'{"cmd": "format_disk"}\n',
                        b'{"cmd": "scale_lr", "which": "g", "factor": 1e9}\n',
                        b'{"cmd": "set_n_critic", "value": "many"}\n'):
                s.sendall(raw)
                replies.append(json.loads(s.makefile("rb").readline()))
            assert all(r["ok"] is False and r["error"] for r in replies)
            s.sendall(b"x" * (protocol.MAX_LINE + 10))  # an overlong line: refused, connection closed
            assert json.loads(s.makefile("rb").readline())["ok"] is False
        rows = metric_rows(run_dir)
        wait_for(lambda: metric_rows(run_dir) >= rows + 3, what="training to carry on after the garbage")
        with LiveClient.connect(run_dir) as client:
            assert client.request("ping")["pid"] == proc.pid
            assert client.request("status")["state"] in ("RUNNING", "SAVING")
            assert client.request("scale_lr", which="d", factor=0.5)["ok"]
        wait_for(lambda: any(e["kind"] == "lr_changed" and e["which"] == "d"
                             for e in jsonl.read(run_dir / "events.jsonl").records), what="the lr_changed event")
        refused = [e for e in jsonl.read(run_dir / "events.jsonl").records if e["kind"] == "control_refused"]
        assert len(refused) >= 5
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert not sock_path.exists() and not (run_dir / "live.json").exists()


def test_a_stale_socket_of_a_killed_run_is_replaced(tmp_path):
    from gantui.live.client import NotLive

    run_dir = tmp_path / "run"
    proc = _start(run_dir)
    try:
        wait_for(lambda: (run_dir / "checkpoints" / "latest.safetensors").exists(), what="a checkpoint")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    stale = Path(json.loads((run_dir / "live.json").read_text())["socket"])
    assert stale.exists() and holder(run_dir) is None
    with pytest.raises(NotLive):
        LiveClient.connect(run_dir)  # nobody holds the run: nobody may be talked to through it
    proc = _start(run_dir, 1_000_000, "--resume", str(run_dir))
    try:
        wait_for(lambda: (protocol.read_live(run_dir) or {}).get("pid") == proc.pid, what="the new owner's live.json")
        with LiveClient.connect(run_dir) as client:
            assert client.request("ping")["pid"] == proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    assert proc.returncode == 130


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs to fill needs root (CI runs as root)")
def test_a_full_disk_ends_with_exit_1_one_line_and_a_loadable_checkpoint(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        run_dir = mnt / "run"
        proc = _start(run_dir)
        try:
            wait_for(lambda: any(e["kind"] == "checkpoint" for e in jsonl.read(run_dir / "events.jsonl").records),
                     what="the first checkpoint")
            good = (run_dir / "checkpoints" / "latest.safetensors").read_bytes()
            filler = mnt / "filler"
            with open(filler, "wb") as f:  # fill every byte that is left
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            out, err = proc.communicate(timeout=180)
        finally:
            proc.kill()
        assert proc.returncode == 1, err
        assert "Traceback" not in err
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert len(lines) == 1 and "No space left on device" in lines[0], err
        filler.unlink()
        from gantui import checkpoint

        tensors, meta = checkpoint.read(run_dir / "checkpoints" / "latest.safetensors")
        assert int(meta["step"]) >= 20 and tensors
        assert good  # the checkpoint before the fault was whole; the one read now is too
        for line in (run_dir / "metrics.jsonl").read_bytes().splitlines():
            json.loads(line)
        assert (run_dir / "metrics.jsonl").read_bytes().endswith(b"\n")
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


def test_a_stop_inside_a_long_critic_loop_takes_effect_mid_step_and_resumes_exactly(tmp_path):
    """n_critic = 100 (the most a preset may ask for): one step is a hundred D updates. A stop sent during the first step is
    obeyed inside it (the checkpoint records how far the critic loop got), and resuming from
    that checkpoint ends bit-identical to a run that was never stopped."""
    import torch
    from safetensors.torch import load_file

    from gantui import checkpoint
    from gantui.engine.trainer import Trainer

    def cfg(steps):
        return config.load("ring8", [s for s in TINY_RING if s != "--set"] + ["loss.n_critic=100", "log.every=1",
                                                                              "model.ema=0.0"]).replace("run", steps=steps)

    straight = Trainer(cfg(2), tmp_path / "straight", device="cpu")
    straight.setup()
    assert straight.run() == "FINISHED"

    seen = []
    split = Trainer(cfg(2), tmp_path / "split", device="cpu")
    split.setup()
    # stop from inside the critic loop: the engine's own hook fires after each critic update
    original = split._between

    def between(done):
        seen.append(done)
        if done == 37:
            split.control.stop(reason="user")
        original(done)

    split._between = between
    assert split.run() == "STOPPED"
    assert split.step == 0 and seen[-1] == 37  # it left the loop at once, inside step 1
    _, meta = checkpoint.read(tmp_path / "split" / "checkpoints" / "latest.safetensors")
    assert json.loads(meta["state"])["critic_done"] == 37

    resumed = Trainer(cfg(2), tmp_path / "split", device="cpu",
                      resume=tmp_path / "split" / "checkpoints" / "latest.safetensors")
    resumed.setup()
    assert resumed.run() == "FINISHED"
    a = load_file(tmp_path / "straight" / "checkpoints" / "latest.safetensors")
    b = load_file(tmp_path / "split" / "checkpoints" / "latest.safetensors")
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


def test_a_pause_inside_a_long_critic_loop_then_n_records_the_step_it_finishes(tmp_path):
    """Paused after 20 of 100 critic updates, `n` finishes that step, which is recorded with every
    metric although it was not a log step; a save sent after `n` saves the finished step."""
    from gantui.engine import events as ev
    from gantui.engine.trainer import Trainer

    cfg = config.load("ring8", [s for s in TINY_RING if s != "--set"] + ["loss.n_critic=100", "log.every=1000"]
                      ).replace("run", steps=1000)
    trainer = Trainer(cfg, tmp_path / "run", device="cpu")
    trainer.setup()
    seen = []
    original = trainer._between

    def between(done):
        if done == 20 and not seen:
            seen.append(done)
            trainer.control.pause()
        return original(done)

    trainer._between = between
    thread = trainer.start()
    wait_for(lambda: trainer.state == ev.PAUSED, what="the pause inside step 1")
    assert trainer.step == 0  # held inside the step, its D updates half done
    trainer.control.step_once()
    trainer.control.save()
    wait_for(lambda: any(e["kind"] == "checkpoint" for e in jsonl.read(tmp_path / "run" / "events.jsonl").records),
             what="the save after n")
    trainer.control.stop()
    thread.join(60)
    records = jsonl.read(tmp_path / "run" / "metrics.jsonl").records
    assert records[0]["step"] == 1
    assert {"d_loss", "g_loss", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "gp"} <= set(records[0])
    saved = [e for e in jsonl.read(tmp_path / "run" / "events.jsonl").records if e["kind"] == "checkpoint"]
    assert saved[0]["step"] == 1
