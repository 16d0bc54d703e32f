"""`gantui.track`: a user's own training loop under gantui (examples/dcgan_loop.py as a real process,
and small loops in this process), its run directory, its controls, its ends and its verdict."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import gantui
from conftest import REPO, gantui as gantui_cli, run_cli, wait_until
from gantui import checkpoint, runinfo
from gantui import errors as gantui_errors
from gantui.engine import jsonl
from gantui.engine.runlock import holder
from gantui.live.client import LiveClient
from gantui.vocab import run_files

EXAMPLE = REPO / "examples" / "dcgan_loop.py"
TINY = ["--n-images", "400", "--batchSize", "8", "--ngf", "4", "--ndf", "4", "--manualSeed", "1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def events_of(run_dir: Path) -> list[dict]:
    return jsonl.read(run_dir / run_files.EVENTS).records


def metrics_of(run_dir: Path) -> list[dict]:
    return jsonl.read(run_dir / run_files.METRICS).records


def kinds(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in events_of(run_dir) if e.get("kind") == kind]


def start_example(run_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(EXAMPLE), *TINY, "--run-dir", str(run_dir), *args], cwd=REPO,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_example_script_runs_under_the_real_control_channel_and_gantui_stop(tmp_path, capsys):
    run_dir = tmp_path / "dcgan"
    proc = start_example(run_dir, "--niter", "1000")
    try:
        wait_until(lambda: len(metrics_of(run_dir)) >= 2 or proc.poll() is not None, 120, "the script's records")
        assert proc.poll() is None, proc.stdout.read()
        assert holder(run_dir) == proc.pid  # the script owns the run's lock
        assert runinfo.run_state(run_dir).state == runinfo.RUNNING
        record = metrics_of(run_dir)[-1]
        for key in ("d_loss", "g_loss", "d_real", "d_fake", "grad_norm_g", "grad_norm_d", "sample_std",
                    "sample_pdist", "lr_g", "lr_d", "health"):
            assert key in record, key
        assert "d_overpowering" in record["health"]["levels"]

        with LiveClient.connect(run_dir) as client:
            assert client.request("pause")["ok"]
            wait_until(lambda: kinds(run_dir, "paused"), 60, "the paused event")
            paused = kinds(run_dir, "paused")[-1]
            assert client.request("scale_lr", which="g", factor=2.0)["ok"]  # what `]` sends
            wait_until(lambda: kinds(run_dir, "lr_changed"), 60, "the lr_changed event")
            # a fix that is not a rate (`f` on a critic's alert) is the script's own setting: noted, not applied
            assert client.request("set", key="loss.n_critic", value=2, reason="fix:oscillation")["ok"]
            wait_until(lambda: kinds(run_dir, "note"), 60, "the note about n_critic")
            assert "your script's own setting" in kinds(run_dir, "note")[-1]["message"]
            assert client.request("save")["ok"]  # what `s` sends
            wait_until(lambda: kinds(run_dir, "checkpoint"), 60, "the checkpoint event")
            change = kinds(run_dir, "lr_changed")[-1]
            assert change["which"] == "g" and change["new"] == pytest.approx(2 * change["old"])
            # blocked inside run.step: the commands were obeyed at the step it paused on, no record after it
            assert change["step"] == paused["step"] == kinds(run_dir, "checkpoint")[-1]["step"]
            assert metrics_of(run_dir)[-1]["step"] <= paused["step"]
            assert client.request("step")["ok"]  # `n`: one step through, recorded, then paused again
            wait_until(lambda: metrics_of(run_dir)[-1]["step"] == paused["step"] + 1, 60, "the single step's record")
            assert client.request("status")["state"] == "PAUSED"
            assert client.request("resume")["ok"]
        wait_until(lambda: metrics_of(run_dir)[-1]["step"] > paused["step"], 60, "records after resuming")
        assert metrics_of(run_dir)[-1]["lr_g"] == pytest.approx(2 * change["old"])

        r = gantui_cli("stop", str(run_dir), "--wait", "60")
        assert r.returncode == 0, r.stderr
        assert proc.wait(60) == 0  # run.should_stop ended the script's loop
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert runinfo.run_state(run_dir).state == runinfo.STOPPED
    assert holder(run_dir) is None
    # the checkpoint holds G, D and the script's own optimisers, its G rate doubled
    path = Path(kinds(run_dir, "checkpoint")[-1]["path"])
    tensors, meta = checkpoint.read(path)
    assert any(k.startswith("generator.") for k in tensors) and any(k.startswith("discriminator.") for k in tensors)
    assert any(k.startswith("optim_g.") for k in tensors) and any(k.startswith("optim_d.") for k in tensors)
    groups = __import__("json").loads(meta["optim_g.param_groups"])
    assert groups[0]["lr"] == pytest.approx(2 * 2e-4)
    assert int(meta["step"]) == kinds(run_dir, "stopped")[-1]["step"]

    code, out, _ = run_cli(capsys, "runs", str(tmp_path))
    assert code == 0 and "dcgan" in out and "stopped" in out
    # its Generator class lives in the script itself: nothing can import it, and sample says so in one line
    code, _, err = run_cli(capsys, "sample", str(run_dir), "--out", str(tmp_path / "s.png"), "--trust-code")
    assert code == 2 and "defined in the script itself (__main__)" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.png").exists()
    code, out, err = run_cli(capsys, "export", str(run_dir), "--tensorboard", str(tmp_path / "tb"))
    assert code == 0, err
    from test_export import accumulate, assert_mirrors_run  # skips here when tensorboard is not installed

    assert_mirrors_run(accumulate(tmp_path / "tb" / run_dir.name), run_dir)


class TinyG(nn.Module):
    def __init__(self, nz: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(nz, 64), nn.ReLU(), nn.Linear(64, 2))

    def forward(self, z):
        return self.net(z)


def tiny_loop(run_dir: Path, steps: int, *, crash_at: int | None = None, interrupt_at: int | None = None,
              lr_g: float = 1e-3, lr_d: float = 1e-3, seed: int = 0, **options):
    """A plain non-saturating GAN loop on a 2-D Gaussian, tracked."""
    torch.manual_seed(seed)
    G, D = TinyG(), nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))
    opt_g = torch.optim.Adam(G.parameters(), lr_g, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr_d, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    real_all = torch.randn(512, 2) * 0.5 + 2.0
    with gantui.track(run_dir, G=G, D=D, opt_g=opt_g, opt_d=opt_d, real=real_all, **options) as run:
        for i in range(steps):
            real = real_all[torch.randint(0, 512, (64,))]
            fake = G(torch.randn(64, 8))
            d_real, d_fake = D(real), D(fake.detach())
            d_loss = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            g_loss = bce(D(fake), torch.ones_like(d_fake))
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            run.step(d_loss=d_loss, g_loss=g_loss, d_real=torch.sigmoid(d_real).mean(),
                     d_fake=torch.sigmoid(d_fake).mean())
            if i + 1 == crash_at:
                raise RuntimeError("the script's own bug")
            if i + 1 == interrupt_at:
                raise KeyboardInterrupt
            if run.should_stop:
                break
    return run


def test_a_crash_or_an_interrupt_in_the_loop_leaves_a_readable_run_that_says_so(tmp_path, capsys):
    with pytest.raises(RuntimeError, match="own bug"):
        tiny_loop(tmp_path / "crashed", 30, crash_at=25, log_every=5)
    state = runinfo.run_state(tmp_path / "crashed")
    assert state.state == runinfo.CRASHED and "own bug" in state.note
    assert [m["step"] for m in metrics_of(tmp_path / "crashed")] == [5, 10, 15, 20, 25]
    assert (tmp_path / "crashed" / run_files.TRACEBACK).is_file()
    assert kinds(tmp_path / "crashed", "checkpoint")[-1]["step"] == 25

    with pytest.raises(KeyboardInterrupt):
        tiny_loop(tmp_path / "interrupted", 30, interrupt_at=12, log_every=5)
    assert runinfo.run_state(tmp_path / "interrupted").state == runinfo.INTERRUPTED
    checkpoint.read(checkpoint.resolve(tmp_path / "interrupted"))  # a whole, readable checkpoint

    run = tiny_loop(tmp_path / "done", 20, log_every=5, config={"device": torch.device("cpu"), "lr": 1e-3})
    assert runinfo.run_state(tmp_path / "done").state == runinfo.FINISHED
    assert run.should_stop and holder(tmp_path / "done") is None
    assert runinfo.summarize(tmp_path / "done").step == 20
    assert kinds(tmp_path / "done", "started")[0]["script_config"] == {"device": "cpu", "lr": 1e-3}
    code, out, err = run_cli(capsys, "compare", tmp_path / "crashed", tmp_path / "done", "--metric", "d_loss")
    assert code == 0 and "crashed" in out and "done" in out, err
    code, _, err = run_cli(capsys, "eval", tmp_path / "done")  # not a preset's run: one line, exit 2
    assert code == 2 and "gantui.track" in err and err.count("\n") == 1
    with pytest.raises(gantui_errors.UserError, match="already holds a run"):
        tiny_loop(tmp_path / "done", 5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_d_rate_tenfold_against_a_nearly_frozen_g_raises_d_overpowering(tmp_path, seed):
    run_dir = tmp_path / f"provoked{seed}"
    tiny_loop(run_dir, 120, lr_g=1e-7, lr_d=1e-2, seed=seed, log_every=2)
    records = metrics_of(run_dir)
    # the figures themselves, not the rule: D tells real from fake almost surely, G has not moved
    late = records[-10:]
    assert all(m["d_real"] > 0.95 and m["d_fake"] < 0.05 for m in late), [(m["d_real"], m["d_fake"]) for m in late]
    raised = [e for e in kinds(run_dir, "alert") if e["rule"] == "d_overpowering" and e["state"] == "raised"]
    assert raised, [m["health"]["levels"]["d_overpowering"] for m in records]
    assert records[-1]["health"]["levels"]["d_overpowering"] == "alert"

    # the same loop with both rates at 1e-3 is a fair game: no alert at all (no crying wolf)
    tiny_loop(tmp_path / f"balanced{seed}", 120, seed=seed, log_every=2)
    fair = metrics_of(tmp_path / f"balanced{seed}")[-1]
    assert abs(fair["d_real"] - fair["d_fake"]) < 0.3 and kinds(tmp_path / f"balanced{seed}", "alert") == []


def test_import_gantui_stays_light():
    code = "import sys, gantui; assert callable(gantui.track); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.tmux
@pytest.mark.skipif(__import__("shutil").which("tmux") is None, reason="tmux is not installed")
def test_watch_in_a_real_terminal_shows_the_script_and_pauses_it_and_kill_9_leaves_it_readable(tmp_path):
    from test_tmux import Tmux, step_of

    wait = wait_until

    run_dir = tmp_path / "watched"
    proc = start_example(run_dir, "--niter", "1000")
    term = Tmux()
    try:
        wait_until(lambda: len(metrics_of(run_dir)) >= 1 or proc.poll() is not None, 120, "the script's first record")
        assert proc.poll() is None, proc.stdout.read()
        term.start(f"cd {REPO} && env -u COLUMNS -u LINES TERM=xterm-256color OMP_NUM_THREADS=1 "
                   f"{sys.executable} -m gantui watch {run_dir}; sleep 60", 120, 36)
        wait(lambda: (step_of(term.status()) or 0) >= metrics_of(run_dir)[0]["step"], 60, "watch to show the run")
        wait(lambda: "waiting for the first metrics record" not in term.screen(), 60, "the loss chart")
        screen = term.screen()
        print(screen)
        assert "D " in screen and "Gradients & health" in screen
        term.keys("Space")
        wait(lambda: "PAUSED" in term.status(), 30, "PAUSED on the watcher")
        paused = kinds(run_dir, "paused")[-1]
        term.keys("]")
        wait(lambda: kinds(run_dir, "lr_changed"), 30, "the lr_changed event from ]")
        change = kinds(run_dir, "lr_changed")[-1]
        assert change["which"] == "g" and change["new"] == pytest.approx(2 * change["old"])
        assert change["step"] == paused["step"] and metrics_of(run_dir)[-1]["step"] <= paused["step"]
        term.keys("q")
        wait(lambda: "python" not in term("list-panes", "-F", "#{pane_current_command}", check=False),
             30, "watch to leave")
        assert proc.poll() is None and holder(run_dir) == proc.pid  # q leaves; the script goes on (paused)

        os.kill(proc.pid, signal.SIGKILL)  # killed: no final event, the kernel frees the lock
        proc.wait(30)
        state = runinfo.run_state(run_dir)
        assert state.state == runinfo.CRASHED and "final event" in state.note
        records = metrics_of(run_dir)
        assert records and "health" in records[-1] and runinfo.summarize(run_dir).step >= records[-1]["step"]
    finally:
        term.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class HostCopyForbidden(Exception):
    pass


@pytest.fixture
def no_host_copies(monkeypatch):
    """While on, every tensor -> host copy (item, tolist, cpu, numpy, float(), bool()) raises."""
    def forbid(*args, **kwargs):
        raise HostCopyForbidden

    names = ("item", "tolist", "cpu", "numpy", "__float__", "__bool__", "__int__")
    saved = {name: getattr(torch.Tensor, name) for name in names}

    class Switch:
        def __enter__(self):
            for name in names:
                monkeypatch.setattr(torch.Tensor, name, forbid)

        def __exit__(self, *exc):
            for name, fn in saved.items():
                monkeypatch.setattr(torch.Tensor, name, fn)

    return Switch()


def test_run_step_makes_no_host_copy_between_log_steps(tmp_path, no_host_copies):
    G, D = TinyG(), nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    with gantui.track(tmp_path / "r", G=G, D=D, opt_g=opt_g, opt_d=opt_d, log_every=4, signals=False) as run:
        for i in range(1, 9):
            loss = D(G(torch.randn(8, 8))).mean()
            loss.backward()
            figures = dict(d_loss=loss, g_loss=-loss, d_real=loss.sigmoid(), d_fake=(-loss).sigmoid(),
                           aug_p=__import__("numpy").float32(0.25))
            if i % 4:
                with no_host_copies:
                    run.step(**figures)
            else:
                run.step(**figures)  # the log step: its one host copy
        with no_host_copies, pytest.raises(HostCopyForbidden):
            run._log()  # the switch does catch the log step's copy
    records = metrics_of(tmp_path / "r")
    assert [m["step"] for m in records] == [4, 8] and records[-1]["aug_p"] == 0.25


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_run_step_never_synchronises_the_gpu_between_log_steps(tmp_path):
    dev = torch.device("cuda")
    G, D = TinyG().to(dev), nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1)).to(dev)
    with gantui.track(tmp_path / "r", G=G, D=D, log_every=4, signals=False) as run:
        for i in range(1, 9):
            loss = D(G(torch.randn(8, 8, device=dev))).mean()
            loss.backward()
            if i % 4:
                torch.cuda.set_sync_debug_mode("error")  # any synchronising call raises
                try:
                    run.step(d_loss=loss, g_loss=-loss, d_fake=loss.sigmoid())
                finally:
                    torch.cuda.set_sync_debug_mode("default")
            else:
                run.step(d_loss=loss, g_loss=-loss, d_fake=loss.sigmoid())
    assert [m["step"] for m in metrics_of(tmp_path / "r")] == [4, 8]


def test_a_nan_figure_is_divergence_the_run_ends_and_the_script_is_told(tmp_path):
    G = TinyG()
    with gantui.track(tmp_path / "nan", G=G, log_every=2, signals=False) as run:
        steps = 0
        for i in range(10):
            steps += 1
            run.step(d_loss=torch.tensor(0.5 if i < 5 else float("nan")), g_loss=0.7)
            if run.should_stop:
                break
    assert steps == 6  # told at the first log step that saw the NaN
    assert runinfo.run_state(tmp_path / "nan").state == runinfo.DIVERGED
    assert [e["rule"] for e in kinds(tmp_path / "nan", "alert")] == ["divergence"]
    assert kinds(tmp_path / "nan", "checkpoint") == []  # nothing saved after it


class LabelledG(nn.Module):
    """A conditional G: it needs labels, so gantui cannot draw it on noise alone."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(8 + 3, 2)

    def forward(self, z, y):
        return self.net(torch.cat([z, nn.functional.one_hot(y, 3).float()], 1))


def test_a_g_gantui_cannot_draw_is_said_once_and_the_loop_still_trains(tmp_path, capsys):
    G = LabelledG()
    with gantui.track(tmp_path / "cond", G=G, log_every=2, signals=False) as run:
        for _ in range(4):
            out = G(torch.randn(4, 8), torch.randint(0, 3, (4,)))
            out.pow(2).mean().backward()
            run.step(g_loss=out.pow(2).mean())
    assert "no fixed-noise samples" in capsys.readouterr().err
    assert any("no fixed-noise samples" in e["message"] for e in kinds(tmp_path / "cond", "note"))
    records = metrics_of(tmp_path / "cond")
    assert [m["step"] for m in records] == [2, 4] and "grad_norm_g" in records[-1] and "sample_std" not in records[-1]


def test_the_end_does_not_save_a_step_twice(tmp_path):
    tiny_loop(tmp_path / "r", 20, log_every=5, checkpoint_every=10, signals=False)
    saved = [(e["step"], e["reason"]) for e in kinds(tmp_path / "r", "checkpoint")]
    assert saved == [(10, "scheduled"), (20, "scheduled")]
    assert runinfo.run_state(tmp_path / "r").state == runinfo.FINISHED


def test_live_quality_of_a_tracked_loop_against_its_real_images_leaves_its_rng_alone(tmp_path, monkeypatch):
    from gantui.data.glyphs import render_digits
    from gantui.evaluation import features

    monkeypatch.setenv("GANTUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(features, "DEFAULT_AE_RECIPE", features.AERecipe(steps=15, width=8, batch_size=32))
    monkeypatch.setattr(features, "find_inception_weights", lambda explicit: None)
    monkeypatch.setattr("gantui.tracking.quality.IMAGE_SAMPLES", 250)  # 1,000 as shipped
    real, _ = render_digits(200, seed=3, size=28)
    G = nn.Sequential(nn.Linear(8, 28 * 28), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))
    opt_g = torch.optim.Adam(G.parameters(), 1e-3)
    torch.manual_seed(5)
    with gantui.track(tmp_path / "q", G=G, opt_g=opt_g, real=real, eval_every=4, log_every=2, signals=False) as run:
        drawn = torch.rand(3)  # the feature network trained at track(): the script's RNG must not have moved
        for _ in range(8):
            loss = G(torch.randn(16, 8)).mean()
            opt_g.zero_grad()
            loss.backward()
            opt_g.step()
            run.step(g_loss=loss)
    torch.manual_seed(5)
    assert torch.equal(drawn, torch.rand(3))
    records = metrics_of(tmp_path / "q")
    measured = [m["step"] for m in records if "fid" in m]
    assert measured == [4, 8], measured
    assert all(m["fid"] > 0 and isinstance(m["kid"], float) for m in records if "fid" in m)
    assert any("live quality every 4 steps" in e["message"] for e in kinds(tmp_path / "q", "note"))


class OneClassCollapsedG(nn.Module):
    """A conditional G whose class 1 is one point whatever the noise; classes 0 and 2 spread."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(8, 2)
        self.centres = nn.Parameter(torch.tensor([[-3.0, 0.0], [0.0, 3.0], [3.0, 0.0]]))

    def forward(self, z, y):
        spread = self.net(z) * (y != 1).float().unsqueeze(1)
        return self.centres[y] + spread


def test_a_conditional_g_with_real_labels_gets_its_per_class_spread_and_a_collapse_in_one_class(tmp_path):
    torch.manual_seed(0)
    real_y = torch.arange(600) % 3
    real = torch.tensor([[-3.0, 0.0], [0.0, 3.0], [3.0, 0.0]])[real_y] + 0.5 * torch.randn(600, 2)
    G = OneClassCollapsedG()
    with gantui.track(tmp_path / "cond", G=G, real=(real, real_y), log_every=10, signals=False) as run:
        assert run.fixed_y is not None and run.fixed_y[:4].tolist() == [0, 1, 2, 0]  # K = 3 from the labels
        for _ in range(1200):
            run.step(g_loss=0.7, d_loss=1.3)
        y = torch.tensor([2, 0, 1, 2])
        with torch.no_grad():
            run.samples(G(torch.randn(4, 8), y), labels=y)  # a grid of the script's own, by class
    from gantui.engine import sample_files

    shown = sample_files.load(sample_files.path_for(tmp_path / "cond" / run_files.SAMPLES, 1200))
    assert shown.images.shape == (4, 2) and shown.labels.tolist() == [2, 0, 1, 2]
    records = metrics_of(tmp_path / "cond")
    last = records[-1]
    assert len(last["class_pdist"]) == 3 and last["class_pdist"][1] < 0.01 < last["class_pdist"][0]
    assert last["class_pdist_min"] == last["class_pdist"][1]
    assert last["sample_pdist"] > 0.3  # across classes the batch still spreads: only the per-class figure sees it
    raised = [e for e in kinds(tmp_path / "cond", "alert") if e["rule"] == "mode_collapse" and e["state"] == "raised"]
    assert raised and raised[0]["evidence"]["classes"] == [1], raised


RESUME_LOOP = '''
import os, signal, sys
import torch, torch.nn as nn
import gantui

def loop(run_dir, total, kill_at=0, resume=False):
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt_g = torch.optim.Adam(G.parameters(), 1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 1e-3, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    with gantui.track(run_dir, G=G, D=D, opt_g=opt_g, opt_d=opt_d, log_every=5, checkpoint_every=20,
                      signals=False, resume=resume) as run:
        for step in range(run.steps, total):
            real, fake = torch.randn(32, 2) + 2.0, G(torch.randn(32, 4))
            d_real, d_fake = D(real), D(fake.detach())
            d_loss = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
            opt_d.zero_grad(); d_loss.backward(); opt_d.step()
            g_loss = bce(D(fake), torch.ones_like(d_fake))
            opt_g.zero_grad(); g_loss.backward(); opt_g.step()
            run.step(d_loss=d_loss, g_loss=g_loss)
            if step + 1 == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
    return G, run

if __name__ == "__main__":
    loop(sys.argv[1], 40, kill_at=27)
'''


def test_a_tracked_loop_killed_after_a_checkpoint_resumes_exactly_with_resume_true(tmp_path, monkeypatch):
    (tmp_path / "resume_loop.py").write_text(RESUME_LOOP)
    killed = subprocess.run([sys.executable, str(tmp_path / "resume_loop.py"), str(tmp_path / "r")], env=ENV,
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [m["step"] for m in metrics_of(tmp_path / "r")] == [5, 10, 15, 20, 25]  # step 25 came after the checkpoint
    monkeypatch.syspath_prepend(str(tmp_path))
    import resume_loop

    G, run = resume_loop.loop(tmp_path / "r", 40, resume=True)
    reference, _ = resume_loop.loop(tmp_path / "straight", 40)
    assert all(torch.equal(a, b) for a, b in zip(G.parameters(), reference.parameters()))  # exact
    assert checkpoint.step_of(checkpoint.read(run.resumed_from)[1], run.resumed_from) == 20
    assert [m["step"] for m in metrics_of(tmp_path / "r")] == [5, 10, 15, 20, 25, 30, 35, 40]  # 25 once: re-done
    started = kinds(tmp_path / "r", "started")
    assert len(started) == 2 and started[1]["step"] == 20 and started[1]["resumed_from"] == str(run.resumed_from)
    assert runinfo.run_state(tmp_path / "r").state == runinfo.FINISHED
    # a model other than the one trained is refused before anything changes
    before = (tmp_path / "r" / run_files.METRICS).read_bytes()
    with pytest.raises(gantui_errors.UserError, match="does not match"):
        gantui.track(tmp_path / "r", G=nn.Linear(4, 2), resume=True, signals=False)
    assert (tmp_path / "r" / run_files.METRICS).read_bytes() == before


TRACKED_MODULE = '''
import pathlib
import torch.nn as nn

pathlib.Path(__file__).with_name("imported.marker").write_text("imported")


class TinyImageG(nn.Module):
    def __init__(self, nz=8, width=4):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(nz, width), nn.ReLU(), nn.Linear(width, 28 * 28), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(-1, 1, 28, 28)
'''


def test_a_tracked_g_from_a_module_is_rebuilt_by_sample_only_with_trust_code(tmp_path, capsys, monkeypatch):
    (tmp_path / "tracked_g_module.py").write_text(TRACKED_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import tracked_g_module

    G = tracked_g_module.TinyImageG(width=16)
    with gantui.track(tmp_path / "run", G=G, log_every=2, signals=False, generator_args={"width": 16}) as run:
        for _ in range(4):
            run.step(g_loss=G(torch.randn(4, 8)).mean())
    (tmp_path / "imported.marker").unlink()
    monkeypatch.delitem(sys.modules, "tracked_g_module")
    out = tmp_path / "grid.png"

    code, _, err = run_cli(capsys, "sample", str(tmp_path / "run"), "--out", str(out))
    assert code == 2 and "tracked_g_module:TinyImageG" in err and "--trust-code" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "imported.marker").exists() and "tracked_g_module" not in sys.modules  # nothing imported
    assert not out.exists()

    code, stdout, err = run_cli(capsys, "sample", str(tmp_path / "run"), "--out", str(out), "--trust-code")
    assert code == 0, err
    assert (tmp_path / "imported.marker").exists() and out.is_file() and "from step 4" in stdout + err

    # eval against a folder of real images named on the command line
    from PIL import Image

    from gantui.evaluation import features

    monkeypatch.setattr(features, "DEFAULT_AE_RECIPE", features.AERecipe(steps=2, batch_size=8, width=4))
    (tmp_path / "real").mkdir()
    for i in range(40):
        Image.new("L", (28, 28), 6 * i).save(tmp_path / "real" / f"{i}.png")
    code, stdout, err = run_cli(capsys, "eval", str(tmp_path / "run"), "--json", "--n-samples", "40",
                                "--data-root", str(tmp_path / "real"), "--trust-code")
    assert code == 0, err
    result = __import__("json").loads(stdout)
    assert result["step"] == 4 and result["n_samples"] == 40 and result["fid"] > 0
