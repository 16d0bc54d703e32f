"""One error path for the whole CLI: usage errors (Typer's message, exit 2), bad input (one line, exit 2),
anything unexpected (one line naming the saved traceback, exit 1). The commands run in process through
`gantui.cli.main`, the console script's own entry point; one case runs the real `python -m gantui`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_cli, train_run

from gantui import cli, limits, memory




def one_line(code, err, *words, exit_code=2):
    assert code == exit_code, err
    assert err.count("\n") == 1 and err.startswith("gantui: ") and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Every case runs in an empty folder (so nothing lands in the repo) with a private cache, and
    training can never start: were a validation to let a case through, it fails here instead of
    allocating what the case was meant to refuse."""
    import gantui.headless
    import gantui.ui.launch

    def no_training(*a, **k):
        raise AssertionError("training started: validation let this case through")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GANTUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(gantui.headless, "run_headless", no_training)
    monkeypatch.setattr(gantui.ui.launch, "run_monitor", no_training)


# --- usage errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["run", "ring8", "--steps", "abc"], ["--steps", "valid integer"]),
    (["run", "ring8", "--bogus"], ["No such option: --bogus"]),
    (["run"], ["missing PRESET", "gantui run --resume RUN_DIR"]),
    (["run", "ring8", "--set"], ["'--set' requires an argument"]),
    (["eval"], ["Missing argument"]),
    (["sample", "x", "--n", "1e10"], ["--n", "valid integer"]),
    (["frobnicate"], ["no such command"]),
    (["rn"], ["did you mean `gantui run`?"]),
])
def test_usage_errors_get_typers_short_message_and_exit_2(capsys, tmp_path, args, words):
    code, out, err = run_cli(capsys, *args)
    assert code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) <= 8, err
    for w in words:
        assert w in err, (w, err)
    assert not (tmp_path / "runs").exists()


def test_usage_error_through_the_real_console_entry(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "gantui", "run", "ring8", "--steps", "abc"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "Usage:" in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) <= 8


def test_help_stays_instant_no_torch_or_textual_imported():
    code = "import sys, gantui.cli; print('torch' in sys.modules, 'textual' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["False", "False"], r.stderr


def test_the_typer_range_in_pyproject_is_the_tested_one():
    import importlib.metadata

    text = (REPO / "pyproject.toml").read_text()
    assert '"typer>=0.29,<0.30"' in text
    assert importlib.metadata.version("typer").startswith("0.29.")


# --- bad input: one line, exit 2, nothing started --------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["run", "ring8", "--steps", "0"], ["--steps 0", "1 to 1,000,000,000"]),
    (["run", "ring8", "--steps", str(10**12)], ["--steps", "1 to 1,000,000,000"]),
    (["run", "ring8", "--set", "run.name=../../escaped"], ["[run] name", "plain file name", "'../../escaped'"]),
    (["run", "ring8", "--set", "run.name=" + "a" * 300], ["[run] name", "at most 100 characters"]),
    (["run", "ring8", "--set", "log.n_samples=1"], ["[log] n_samples", "2 to 1,024"]),
    (["run", "ring8", "--set", "loss.n_critic=1000000000"], ["[loss] n_critic", "1 to 100"]),
    (["run", "ring8", "--set", "run.seed=1180591620717411303424"], ["[run] seed", "9,223,372,036,854,775,807"]),
    (["run", "ring8", "--set", "model.g_depth=100000"], ["[model] g_depth", "1 to 64"]),
    (["run", "ring8", "--set", 'optim.betas=["a","b"]'], ["[optim] betas", "finite numbers"]),
    (["run", "ring8", "--set", "optim.betas=[[0.5],[0.9]]"], ["[optim] betas"]),
    (["run", "ring8", "--set", 'optim.betas=[0.5,"x"]'], ["[optim] betas"]),
    (["run", "ring8", "--set", "optim.betas=" + "[" * 3000], ["nested too deeply"]),
    (["run", "ring8", "--set", "loss.kind=ns", "--set", "loss.r1_gamma=1", "--set", "model.batch_norm_d=true"],
     ["batch_norm_d", "R1"]),
    (["run", "ring8", "--run-dir", ""], ["--run-dir ''", "empty path"]),
    (["run", "ring8", "--run-dir", "/proc/gantui-run"], ["/proc", "kernel file system"]),
    (["run", "ring8", "--resume", ""], ["--resume ''"]),
    (["run", "ring8", "--resume", "/dev/zero"], ["--resume /dev/zero", "not a regular file"]),
    (["run", "ring8", "--resume", "no/such/run"], ["--resume no/such/run", "no such file"]),
    (["run", "ring8", "--device", "tpu"], ["--device 'tpu'"]),
    (["eval", "/dev/zero"], ["/dev/zero", "not a regular file"]),
    (["eval", str(REPO / "presets")], ["not a gantui run directory", "gantui runs"]),
    (["run", "wgan-gp"], ["'wgan-gp'", "did you mean 'wgan_gp'?"]),
    (["sample", "/dev/zero", "--out", "x.gif"], ["x.gif", "unknown extension"]),
])
def test_bad_input_is_one_line_and_nothing_starts(capsys, tmp_path, args, words):
    code, out, err = run_cli(capsys, *args)
    one_line(code, err, *words)
    assert out == "" and not (tmp_path / "runs").exists()


def test_run_dir_on_a_file_under_a_file_and_unwritable(capsys, tmp_path, monkeypatch):
    f = tmp_path / "afile"
    f.write_text("keep me")
    code, _, err = run_cli(capsys, "run", "ring8", "--run-dir", f)
    one_line(code, err, str(f), "is a file")
    code, _, err = run_cli(capsys, "run", "ring8", "--run-dir", f / "run")
    one_line(code, err, "which is a file")
    assert f.read_text() == "keep me"
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    code, _, err = run_cli(capsys, "run", "ring8", "--run-dir", locked / "run")
    one_line(code, err, "cannot write there", str(locked))


def test_unwritable_run_dir_for_real_when_not_root(capsys, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root may write anywhere; the permission check is covered with a patched os.access")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, _, err = run_cli(capsys, "run", "ring8", "--run-dir", locked / "run")
    one_line(code, err, "not writable by you")


def test_preset_encodings_and_nesting(capsys, tmp_path):
    cases = {
        "binary.toml": (bytes(range(256)) * 4, "a binary file"),
        "latin1.toml": ('[run]\ndescription = "café"\n'.encode("latin-1"), "not UTF-8 text (byte 0xe9 on line 2)"),
        "utf16.toml": ('[run]\nname = "x"\n'.encode("utf-16"), "UTF-16"),
        "deep.toml": (b"[run]\nx = " + b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        "deeptable.toml": (b"[run]\nx = " + b"{a=" * 400 + b"1" + b"}" * 400, "nested too deeply"),
    }
    for name, (blob, words) in cases.items():
        (tmp_path / name).write_bytes(blob)
        code, _, err = run_cli(capsys, "run", tmp_path / name)
        one_line(code, err, name, words)


def test_a_config_that_cannot_fit_in_memory_is_refused_saying_how_much(capsys, monkeypatch):
    monkeypatch.setattr(memory, "host_available_bytes", lambda *a, **k: 2 * 10**9)
    code, _, err = run_cli(capsys, "run", "ring8", "--device", "cpu", "--set", "model.g_width=4096",
                           "--set", "model.d_width=4096", "--set", "data.batch_size=65536")
    one_line(code, err, "needs about", "GB", "2.0 GB available", "batch_size")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return train_run(tmp_path_factory, "ring8", 5, "model.g_width=8", "model.d_width=8", "log.every=5")


@pytest.mark.parametrize("args, words", [
    (["eval", "{run}", "--n-samples", str(10**12)], ["--n-samples", "10 to 50,000"]),
    (["eval", "{run}", "--n-samples", "3"], ["--n-samples 3"]),
    (["eval", "{run}", "--seed", str(2**70)], ["--seed", "0 to 9,223,372,036,854,775,807"]),
    (["eval", "{run}", "--inception-weights", "nope.safetensors"], ["--inception-weights nope.safetensors"]),
    (["eval", "{run}", "--data-root", "/no/such/dir"], ["--data-root /no/such/dir"]),
    (["sample", "{run}", "--out", "x.npy", "--n", str(10**10)], ["--n", "1 to 50,000"]),
    (["sample", "{run}", "--out", "x.npy", "--n", "0"], ["--n 0"]),
    (["sample", "{run}", "--out", "x.npy", "--seed", "-1"], ["--seed -1"]),
])
def test_eval_and_sample_bounds(capsys, tmp_path, tiny, args, words):
    code, out, err = run_cli(capsys, *[str(tiny) if a == "{run}" else a for a in args])
    one_line(code, err, *words)
    assert out == "" and not (tmp_path / "x.npy").exists()


def test_largest_seed_and_sample_count_bounds_are_accepted(capsys, tmp_path, tiny):
    code, _, err = run_cli(capsys, "sample", tiny, "--out", tmp_path / "x.npy", "--n", "10",
                           "--seed", str(limits.MAX_SEED))
    assert code == 0, err


# --- unexpected errors: one line naming the saved traceback, exit 1 --------------------------------

def test_unexpected_error_names_its_saved_traceback(capsys, tmp_path, monkeypatch):
    from gantui import config

    def broken():
        raise RuntimeError("something nobody expected\nsecond line")

    monkeypatch.setattr(config, "bundled_presets", broken)
    code, _, err = run_cli(capsys, "presets")
    one_line(code, err, "unexpected error: RuntimeError: something nobody expected\\nsecond line",
             "traceback saved to", exit_code=1)
    saved = Path(err.split("traceback saved to ")[1].rstrip(")\n"))
    assert saved.parent == tmp_path / "cache" / "tracebacks"
    assert "Traceback" in saved.read_text() and "def broken" not in err


def test_unexpected_error_in_a_run_saves_the_traceback_in_its_run_dir(capsys, tmp_path, monkeypatch):
    import gantui.headless

    def broken(*a, **k):
        raise ValueError("engine blew up")

    monkeypatch.setattr(gantui.headless, "run_headless", broken)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    code, _, err = run_cli(capsys, "run", "ring8", "--headless", "--run-dir", run_dir)
    one_line(code, err, "ValueError: engine blew up", str(run_dir), exit_code=1)
    (saved,) = run_dir.glob("traceback-*.txt")
    assert "engine blew up" in saved.read_text()


def test_a_traceback_that_cannot_be_saved_still_gives_one_line_and_exit_1(capsys, tmp_path, monkeypatch):
    import tempfile

    from gantui import config

    blocker = tmp_path / "blocker"
    blocker.write_text("")
    monkeypatch.setenv("GANTUI_CACHE", str(blocker / "cache"))
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(blocker / "tmp"))
    monkeypatch.setattr(config, "bundled_presets", lambda: 1 / 0)
    code, _, err = run_cli(capsys, "presets")
    one_line(code, err, "ZeroDivisionError", "could not be saved", exit_code=1)
