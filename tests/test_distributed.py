"""Distributed runs on the CPU: torchrun (and `--nproc`) with gloo and 2 processes, for real.

Few and short: every process imports torch. Ranks are compared tensor for tensor through
GANTUI_RANK_DUMP (each rank writes its whole state when its run ends).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from conftest import REPO, TINY_RING, gantui, run_cli, wait_until
from gantui import checkpoint

TWO = ["--device", "cpu", *TINY_RING]


def torchrun(*args: str, env: dict | None = None, timeout: float = 300, **popen):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "gantui", *args]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    if popen:  # its own session, so that a failed test can kill torchrun and its workers at once
        return subprocess.Popen(cmd, cwd=REPO, env=full_env, start_new_session=True, **popen)
    return subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout)


def descendants(pid: int) -> list[int]:
    out = []
    try:
        kids = [int(k) for t in Path(f"/proc/{pid}/task").iterdir()
                for k in (t / "children").read_text().split()]
    except OSError:
        return out
    for k in kids:
        out += [k, *descendants(k)]
    return out


def kill_group(proc: subprocess.Popen) -> None:
    """After a failed test: kill the process and everything under it (torchrun and its workers
    may live in a session of their own)."""
    for pid in [proc.pid, *descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def rank_dumps(folder: Path) -> tuple[dict, dict, list, list]:
    states, applied = [], []
    for r in (0, 1):
        path = folder / f"rank{r}.safetensors"
        states.append(load_file(path))
        with safe_open(path, "pt") as f:
            applied.append(json.loads(f.metadata()["applied"]))
    return states[0], states[1], applied[0], applied[1]


def differing(a: dict, b: dict) -> list[str]:
    """Tensors that differ between two ranks' states (each rank's own RNG state is meant to)."""
    assert a.keys() == b.keys()
    return [k for k in a if not k.startswith("rng.") and not torch.equal(a[k], b[k])]


def test_two_ranks_train_one_run_that_resumes_exactly(tmp_path, capsys):
    straight, split, dumps = tmp_path / "straight", tmp_path / "split", tmp_path / "dumps"
    r = gantui("run", "ring8", "--nproc", "2", "--headless", "--steps", "40", "--run-dir", str(straight), *TWO,
               env={"GANTUI_RANK_DUMP": str(dumps)})
    assert r.returncode == 0, r.stderr[-3000:]
    assert "[step 40] finished" in r.stdout  # rank 0's progress, relayed by the launching process

    # the ranks end with the same weights, EMA, buffers and optimiser state
    r0, r1, _, _ = rank_dumps(dumps)
    assert differing(r0, r1) == []
    assert not torch.equal(r0["rng.cpu"], r1["rng.cpu"])  # each rank drew its own batches

    # one run directory, written once (by rank 0)
    assert [m["step"] for m in read_jsonl(straight / "metrics.jsonl")] == list(range(5, 41, 5))
    kinds = [e["kind"] for e in read_jsonl(straight / "events.jsonl")]
    assert kinds.count("started") == 1 and kinds.count("finished") == 1
    assert read_jsonl(straight / "events.jsonl")[0]["world_size"] == 2
    assert not (straight / "live.json").exists()  # the control channel went with the run

    # the checkpoint holds every rank's RNG state, and samples and evaluates like any other
    tensors, meta = checkpoint.read(straight / "checkpoints" / "latest.safetensors")
    assert meta["world_size"] == "2" and {"rng.cpu", "rng.rank1.cpu"} <= set(tensors)
    out = tmp_path / "samples.npy"
    assert run_cli(capsys, "sample", straight, "--out", out)[0] == 0  # in process: the CLI's real main()
    assert np.load(out).shape == (64, 2)
    code, stdout, stderr = run_cli(capsys, "eval", straight, "--json", "--n-samples", "500")
    assert code == 0, stderr
    assert json.loads(stdout)

    # 20 steps, then a resume to 40, with torchrun called directly: the same tensors as 40 straight
    first = torchrun("run", "ring8", "--headless", "--steps", "20", "--run-dir", str(split), *TWO)
    assert first.returncode == 0, first.stderr[-3000:]
    second = torchrun("run", "ring8", "--headless", "--steps", "40", "--resume", str(split), *TWO)
    assert second.returncode == 0, second.stderr[-3000:]
    a = load_file(straight / "checkpoints" / "latest.safetensors")
    b = load_file(split / "checkpoints" / "latest.safetensors")
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []

    # and a 2-process checkpoint continues in a single process (rank 0's random stream)
    code, _, err = run_cli(capsys, "run", "ring8", "--headless", "--steps", "45", "--resume", straight, *TWO)
    assert code == 0, err
    assert read_jsonl(straight / "metrics.jsonl")[-1]["step"] == 45


def test_commands_reach_every_rank_at_the_same_step(tmp_path, capsys):
    """Pause, single step, resume and a rate change sent to rank 0's control channel mid-run;
    the run resumes a single-process checkpoint with 2 processes (a fresh stream for rank 1)."""
    from gantui.live.client import LiveClient, NotLive

    run_dir, dumps = tmp_path / "run", tmp_path / "dumps"
    # a BatchNorm D (rank-local statistics between log steps) and two D forwards per update
    bn = [*TWO, "--set", "loss.kind='ns'", "--set", "model.batch_norm_d=true"]
    assert run_cli(capsys, "run", "ring8", "--headless", "--steps", "10", "--run-dir", run_dir, *bn)[0] == 0
    # 150 steps: the commands go out at step 20 or so; if the run ended first, the test fails
    proc = torchrun("run", "ring8", "--headless", "--steps", "150", "--resume", str(run_dir), *bn,
                    env={"GANTUI_RANK_DUMP": str(dumps)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = run_dir / "events.jsonl"

    def kinds():
        return [e["kind"] for e in read_jsonl(events)]

    try:
        def connect():
            try:
                return LiveClient.connect(run_dir)
            except NotLive:
                return None

        client = wait_until(connect, 120, "rank 0's control channel")
        with client:
            wait_until(lambda: read_jsonl(run_dir / "metrics.jsonl")[-1]["step"] >= 20, 120, "step 20")
            assert client.request("pause")["ok"]
            wait_until(lambda: "paused" in kinds(), 60, "the pause")
            rows = len(read_jsonl(run_dir / "metrics.jsonl"))
            assert client.request("step")["ok"]
            wait_until(lambda: len(read_jsonl(run_dir / "metrics.jsonl")) == rows + 1, 60, "one single step")
            assert client.request("resume")["ok"]
            assert client.request("scale_lr", which="g", factor=0.5)["ok"]
        out, err = proc.communicate(timeout=300)
    finally:
        kill_group(proc)
    assert proc.returncode == 0, err[-3000:]
    assert "resuming a checkpoint of 1 process(es) with 2" in err

    r0, r1, applied0, applied1 = rank_dumps(dumps)
    assert [name for _, name in applied0] == ["pause", "step", "resume", "scale_lr"]
    assert applied0 == applied1  # the same commands at the same steps on both ranks
    assert differing(r0, r1) == []
    changed = [e for e in read_jsonl(events) if e["kind"] == "lr_changed"]
    assert [(e["step"], e["new"]) for e in changed] == [(applied0[3][0], 0.0005)]


def test_a_killed_rank_ends_the_run_and_keeps_the_last_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    proc = torchrun("run", "ring8", "--headless", "--steps", "100000", "--run-dir", str(run_dir), *TWO,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        events = run_dir / "events.jsonl"
        wait_until(lambda: events.exists() and '"checkpoint"' in events.read_text(), 180, "a first checkpoint")
        rank0 = json.loads((run_dir / "live.json").read_text())["pid"]
        workers = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        assert rank0 in workers and len(workers) == 2
        rank1 = next(p for p in workers if p != rank0)
        os.kill(rank1, signal.SIGKILL)
        t0 = time.monotonic()
        out, err = proc.communicate(timeout=60)
        assert time.monotonic() - t0 < 60
    finally:
        kill_group(proc)
    assert proc.returncode != 0
    assert all(not Path(f"/proc/{p}").exists() or "zombie" in Path(f"/proc/{p}/status").read_text()
               for p in workers)
    assert "another process of this 2-process run stopped" in err  # rank 0's line
    last = read_jsonl(run_dir / "events.jsonl")[-1]
    assert last["kind"] == "error" and "stopped (it exited or was killed)" in last["message"]
    loaded = checkpoint.load_generator(run_dir)
    assert loaded.step % 50 == 0 and loaded.step > 0  # the last scheduled checkpoint, whole


def test_gan_traps_through_ddp():
    """Gradient penalty and R1 (double backward), D frozen for the G step, BatchNorm D with two
    forwards: through gantui's DDP wrapper, gradients are the mean over the ranks."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(REPO / "tests" / "ddp_math_worker.py")], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("3 cases match") == 2


def test_nproc_refuses_a_bad_count(tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", "ring8", "--nproc", "0", "--headless", "--run-dir", tmp_path / "r")
    assert code == 2
    assert err.strip() == "gantui: --nproc 0: expected an integer >= 1"
    assert not (tmp_path / "r").exists()


def test_sigterm_to_the_launcher_stops_every_rank_with_a_checkpoint(tmp_path):
    from gantui.engine.runlock import holder

    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gantui", "run", "ring8", "--nproc", "2", "--headless",
                             "--steps", "100000", "--run-dir", str(run_dir), *TWO], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_until(lambda: (run_dir / "metrics.jsonl").exists() and len(read_jsonl(run_dir / "metrics.jsonl")) >= 2,
                 180, "the first metric records")
        rank0 = holder(run_dir)
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        kill_group(proc)
    assert proc.returncode == 130, err[-3000:]
    events = read_jsonl(run_dir / "events.jsonl")
    stopped = [e for e in events if e["kind"] == "stopped"]
    assert len(stopped) == 1
    assert checkpoint.read(run_dir / "checkpoints" / "latest.safetensors")[1]["step"] == str(stopped[0]["step"])
    assert holder(run_dir) is None and not Path(f"/proc/{rank0}").exists()
    assert "Traceback" not in err


def test_a_rank_restores_its_own_saved_stream_and_refuses_a_damaged_one():
    """DDP._restore_rng, as rank 1 of 2 would call it on resume (no process group needed)."""
    import pytest

    from gantui import config
    from gantui.engine.distributed import DDP
    from gantui.engine.parts import build
    from gantui.errors import CheckpointError

    cfg = config.load("ring8", ["model.g_width=8", "model.d_width=8"])
    parts = build(cfg, "cpu")
    rank1 = DDP(1, 2, 1, torch.device("cpu"))
    saved = torch.Generator().manual_seed(123).get_state()
    tensors = {"rng.cpu": torch.get_rng_state(), "rng.rank1.cpu": saved}
    rank1._restore_rng(cfg, parts, tensors, {"world_size": "2", "step": "40"}, "ckpt")
    assert torch.equal(torch.get_rng_state(), saved)

    with pytest.raises(CheckpointError, match="rng.rank1.cpu"):
        rank1._restore_rng(cfg, parts, {**tensors, "rng.rank1.cpu": saved[:100]}, {"world_size": "2"}, "ckpt")
    with pytest.raises(CheckpointError, match="world_size"):
        rank1._restore_rng(cfg, parts, tensors, {"world_size": "two"}, "ckpt")


def test_a_diverged_two_rank_run_ends_with_exit_3_and_one_diverged_event(tmp_path):
    run_dir = tmp_path / "run"
    # absurd rates (and no gradient penalty to hold the critic) blow the weights up to NaN/Inf
    r = torchrun("run", "ring8", "--headless", "--steps", "3000", "--run-dir", str(run_dir), *TWO,
                 "--set", "optim.d_lr=1e6", "--set", "optim.g_lr=1e6", "--set", "loss.gp_lambda=0", timeout=180)
    assert r.returncode != 0
    events = read_jsonl(run_dir / "events.jsonl")
    diverged = [e for e in events if e["kind"] == "diverged"]
    assert len(diverged) == 1
    assert read_jsonl(run_dir / "metrics.jsonl")[-1]["step"] == diverged[0]["step"]
    # torchrun's report: a rank ended as diverged (3) and none crashed; the other may be shown
    # as SIGTERMed, since torchrun ends the remaining ranks once the first has exited
    assert "exitcode  : 3" in r.stderr
    assert "exitcode  : 1 " not in r.stderr


def test_nproc_on_cuda_without_a_gpu_is_refused_before_torchrun_starts(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, _, err = run_cli(capsys, "run", "ring8", "--nproc", "2", "--device", "cuda", "--headless",
                           "--run-dir", tmp_path / "r")
    assert code == 2
    assert err.strip() == "gantui: device 'cuda' was asked for but torch sees no CUDA device; use --device cpu or auto"
    assert not (tmp_path / "r").exists()


def test_more_processes_than_gpus_is_refused_with_one_line(tmp_path, capsys, monkeypatch):
    # a one-GPU machine, as the launcher sees it (on a real one the workers would also refuse,
    # but through torchrun's failure report: seen on an H200, hence this check in the launcher)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    code, out, err = run_cli(capsys, "run", "ring8", "--nproc", "2", "--device", "cuda", "--headless",
                             "--run-dir", tmp_path / "r")
    assert code == 2
    assert err.strip() == ("gantui: --nproc 2: this machine has 1 CUDA device(s) and a CUDA run uses one per "
                           "process; use --nproc 1 or fewer (or --device cpu)")
    assert not (tmp_path / "r").exists()
