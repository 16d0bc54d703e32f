"""Checkpoints are untrusted input: every tampered field is refused with one line and exit 2, through
the real `gantui eval` / `gantui sample` path, and the optimiser state is checked against the live
optimiser before a resume loads it. The checkpoints are real ones from tiny runs of the real engine,
altered the way an attacker (or a damaged disk) would."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_cli, train_run
from safetensors import safe_open
from safetensors.torch import save

from gantui import checkpoint, cli, config
from gantui.errors import CheckpointError


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    return train_run(tmp_path_factory, "ring8", 5, "model.g_width=16", "model.d_width=16", "log.every=5") \
        / "checkpoints" / "latest.safetensors"


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return train_run(tmp_path_factory, "dcgan", 2, "data.n_samples=100", "model.g_width=8", "model.d_width=8",
                     "log.every=1") / "checkpoints" / "latest.safetensors"


def raw(path):
    """Tensors and metadata read without gantui's checks (the attacker's view)."""
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())


def tamper(src, dst, meta=None, tensors=None, drop=()):
    t, m = raw(src)
    m.update(meta or {})
    t.update(tensors or {})
    for k in drop:
        t.pop(k, None)
        m.pop(k, None)
    dst.write_bytes(save(t, metadata=m))
    return dst




def assert_one_line(code, err, *words):
    """Exit 2 and one error line, last; eval may print a progress line or two before it."""
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) <= 3 and lines[-1].startswith("gantui: ") and err.count("gantui: ") == 1, err
    assert "Traceback" not in err
    err = lines[-1]
    for w in words:
        assert w in err, (w, err)


def ema_weight(tensors):
    return next(k for k in tensors if k.startswith("generator_ema.") and k.endswith("weight"))


# --- metadata fields --------------------------------------------------------------------------

BAD_STEPS = ["abc", "-5", "1e20", "100000000000000000000", "", " 7", "٣"]


@pytest.mark.parametrize("step", BAD_STEPS)
def test_step_must_be_an_integer_in_range(ring, tmp_path, capsys, step):
    bad = tamper(ring, tmp_path / "c.safetensors", meta={"step": step})
    for cmd in (["eval", bad, "--n-samples", "10"], ["sample", bad, "--out", tmp_path / "x.npy"]):
        code, out, err = run_cli(capsys, *cmd)
        assert_one_line(code, err, "step", "2**62")
    assert not (tmp_path / "x.npy").exists()


def test_largest_step_is_accepted(ring):
    assert checkpoint.step_of({"step": str(2**62)}, "c") == 2**62
    with pytest.raises(CheckpointError):
        checkpoint.step_of({"step": str(2**62 + 1)}, "c")


@pytest.mark.parametrize("info, words", [
    ("{", ["data_info", "not valid JSON"]),
    ('{"name": "ring8"}', ["data_info lacks shape, n_classes, is_toy"]),
    ('{"name": "ring8", "shape": ["2"], "n_classes": 0, "is_toy": true}', ["shape"]),
    ('{"name": "ring8", "shape": [2], "n_classes": "0", "is_toy": true}', ["n_classes"]),
    ('{"name": "ring8", "shape": [2], "n_classes": 0, "is_toy": 1}', ["is_toy"]),
    ('{"name": "imagenet", "shape": [2], "n_classes": 0, "is_toy": true}', ["imagenet"]),
    ('[1, 2]', ["data_info is missing or not a JSON object"]),
    ('[' * 100000 + ']' * 100000, ["data_info"]),
])
def test_data_info_must_be_complete_and_typed(ring, tmp_path, capsys, info, words):
    bad = tamper(ring, tmp_path / "c.safetensors", meta={"data_info": info})
    code, _, err = run_cli(capsys, "eval", bad, "--n-samples", "10")
    assert_one_line(code, err, *words)


def test_missing_data_info_and_fixed_noise_are_refused(ring, tmp_path, capsys):
    code, _, err = run_cli(capsys, "eval", tamper(ring, tmp_path / "a.safetensors", drop=["data_info"]))
    assert_one_line(code, err, "data_info is missing")
    code, _, err = run_cli(capsys, "sample", tamper(ring, tmp_path / "b.safetensors", drop=["fixed.z"]),
                           "--out", tmp_path / "x.npy")
    assert_one_line(code, err, "fixed.z", "missing")
    short_z = tamper(ring, tmp_path / "c.safetensors", tensors={"fixed.z": torch.zeros(3, 2)})
    code, _, err = run_cli(capsys, "eval", short_z)
    assert_one_line(code, err, "fixed.z", "shape")


@pytest.mark.parametrize("text, words", [
    ("[run]\nx = " + "[" * 5000 + "]" * 5000, ["embedded config", "nested too deeply"]),
    ("[model]\narch = 'mlp'\ng_width = 4096\ng_depth = 64\n[data]\nname = 'ring8'\n[log]\nn_samples = 512",
     ["embedded config builds", "weights but the file holds"]),
    ("[model]\ng_width = 99999999999999999999999", ["embedded config", "g_width"]),
    ("# padding\n" * 10000, ["embedded config is missing or longer than"]),
    ("\x00\x01", ["embedded config", "not valid TOML"]),
])
def test_absurd_embedded_config_is_refused_before_anything_is_built(ring, tmp_path, capsys, text, words):
    bad = tamper(ring, tmp_path / "c.safetensors", meta={"config": text})
    code, _, err = run_cli(capsys, "eval", bad, "--n-samples", "10")
    assert_one_line(code, err, *words)


def test_int8_generator_weight_is_refused_not_truncated(ring, tmp_path, capsys):
    t, _ = raw(ring)
    key = ema_weight(t)
    bad = tamper(ring, tmp_path / "c.safetensors", tensors={key: t[key].to(torch.int8)})
    code, _, err = run_cli(capsys, "sample", bad, "--out", tmp_path / "x.npy")
    assert_one_line(code, err, key, "dtype int8", "float32")


def test_nan_weight_is_refused(ring, tmp_path, capsys):
    t, _ = raw(ring)
    key = ema_weight(t)
    w = t[key].clone()
    w.view(-1)[0] = float("nan")
    code, _, err = run_cli(capsys, "eval", tamper(ring, tmp_path / "c.safetensors", tensors={key: w}))
    assert_one_line(code, err, key, "NaN")


# --- the embedded config against data_info and the tensors --------------------------------------

def test_grid25_config_on_ring8_tensors_is_a_mismatch(ring, tmp_path, capsys):
    _, m = raw(ring)
    text = m["config"].replace('name = "ring8"\nbatch_size', 'name = "grid25"\nbatch_size')
    assert text != m["config"]
    code, _, err = run_cli(capsys, "eval", tamper(ring, tmp_path / "c.safetensors", meta={"config": text}))
    assert_one_line(code, err, "'grid25'", "data_info says 'ring8'")


def test_image_size_64_over_28_px_tensors_is_a_mismatch(digits, tmp_path, capsys):
    _, m = raw(digits)
    text = m["config"].replace("image_size = 28", "image_size = 64")
    assert text != m["config"]
    code, _, err = run_cli(capsys, "eval", tamper(digits, tmp_path / "c.safetensors", meta={"config": text}))
    assert_one_line(code, err, "image_size = 64", "28x28")
    # and when data_info is altered to agree, the tensors themselves disagree
    info = json.loads(m["data_info"])
    info["shape"] = [1, 64, 64]
    both = tamper(digits, tmp_path / "d.safetensors", meta={"config": text, "data_info": json.dumps(info)})
    code, _, err = run_cli(capsys, "eval", both)
    assert_one_line(code, err, "shape")


# --- a stranger's checkpoint never steers where eval reads or downloads -------------------------

def as_set(src, dst, name, root, download=True):
    _, m = raw(src)
    text = m["config"].replace('name = "digits"', f'name = "{name}"').replace('root = "data"', f'root = "{root}"')
    text = text.replace("download = true", f"download = {'true' if download else 'false'}")
    info = json.loads(m["data_info"])
    info["name"] = name
    if name == "folder":
        info["n_classes"] = 0
    return tamper(src, dst, meta={"config": text, "data_info": json.dumps(info)})


def test_folder_checkpoint_needs_the_users_data_root(digits, tmp_path, capsys):
    evil = tmp_path / "evil"
    evil.mkdir()
    bad = as_set(digits, tmp_path / "c.safetensors", "folder", str(evil))
    code, _, err = run_cli(capsys, "eval", bad, "--n-samples", "10")
    assert_one_line(code, err, "--data-root")
    assert str(evil) not in err


def test_download_is_never_honoured_and_the_checkpoint_root_is_never_read(digits, tmp_path, capsys, monkeypatch):
    import socket

    def no_network(*a, **k):
        raise AssertionError("eval tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setenv("GANTUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "anywhere"
    bad = as_set(digits, tmp_path / "c.safetensors", "mnist", str(target), download=True)
    code, _, err = run_cli(capsys, "eval", bad, "--n-samples", "10")
    assert_one_line(code, err, "mnist", "--data-root")
    assert not target.exists()  # not even created: the checkpoint's root is not followed
    empty = tmp_path / "mine"
    empty.mkdir()
    code, _, err = run_cli(capsys, "eval", bad, "--n-samples", "10", "--data-root", empty)
    assert_one_line(code, err, str(empty), "download is off")
    assert not target.exists()


# --- files that are not checkpoints --------------------------------------------------------------

def test_dev_zero_and_lying_headers_are_refused_without_reading_them(tmp_path, capsys):
    code, _, err = run_cli(capsys, "eval", "/dev/zero")
    assert_one_line(code, err, "/dev/zero", "not a regular file")
    with pytest.raises(CheckpointError, match="not a regular file"):  # the reader's own guard, for --resume
        checkpoint.read("/dev/zero")
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes((10**15).to_bytes(8, "little") + b"{}")
    code, _, err = run_cli(capsys, "sample", huge, "--out", tmp_path / "x.npy")
    assert_one_line(code, err, "header length", "does not fit")
    from gantui.memory import host_available_bytes

    sparse = tmp_path / "sparse.safetensors"
    with open(sparse, "wb") as f:  # more than this machine has free, without using the disk (sparse)
        f.write((2).to_bytes(8, "little") + b"{}")
        f.truncate(4 * host_available_bytes())
    code, _, err = run_cli(capsys, "eval", sparse)
    assert_one_line(code, err, "memory available")


# --- optimiser state against the live optimiser (what --resume calls) -----------------------------

def live_models(path):
    from gantui import models

    tensors, meta = checkpoint.read(path)
    parsed = checkpoint.parse_meta(meta, path)
    G, D = models.build(parsed.config, parsed.info)
    return tensors, meta, G, D


def test_matching_optimizer_state_loads_exactly(ring):
    tensors, meta, G, D = live_models(ring)
    opt = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.9))
    assert checkpoint.load_optimizer("optim_g", tensors, meta, opt, ring) is True
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], tensors["optim_g.state.0.exp_avg"])


def test_adam_checkpoint_under_rmsprop_names_the_key(ring):
    tensors, meta, G, _ = live_models(ring)
    opt = torch.optim.RMSprop(G.parameters(), lr=1e-3)
    with pytest.raises(CheckpointError) as e:
        checkpoint.load_optimizer("optim_g", tensors, meta, opt, ring)
    msg = str(e.value)
    assert "RMSprop" in msg and "another optimiser" in msg and "\n" not in msg


def test_adam_state_tensors_under_rmsprop_groups_name_the_tensor(ring):
    tensors, meta, G, _ = live_models(ring)
    opt = torch.optim.RMSprop(G.parameters(), lr=1e-3)
    groups = json.loads(meta["optim_g.param_groups"])
    groups[0] = {**opt.state_dict()["param_groups"][0], "params": groups[0]["params"]}
    meta = {**meta, "optim_g.param_groups": json.dumps(groups)}
    with pytest.raises(CheckpointError, match=r"tensor optim_g\.state\.0\.exp_avg.* is not state of RMSprop"):
        checkpoint.check_optimizer_state("optim_g", tensors, meta, opt, ring)


def test_wrong_shape_or_dtype_of_optimizer_state_is_refused(ring):
    tensors, meta, G, _ = live_models(ring)
    opt = torch.optim.Adam(G.parameters(), betas=(0.5, 0.9))
    key = "optim_g.state.0.exp_avg"
    wrong = {**tensors, key: torch.zeros(3, 3)}
    with pytest.raises(CheckpointError, match=rf"{key} has shape \[3, 3\]"):
        checkpoint.check_optimizer_state("optim_g", wrong, meta, opt, ring)
    typed = {**tensors, key: tensors[key].to(torch.float16)}
    with pytest.raises(CheckpointError, match=rf"{key} has dtype float16"):
        checkpoint.check_optimizer_state("optim_g", typed, meta, opt, ring)
    lacking = {k: v for k, v in tensors.items() if k != "optim_g.state.1.exp_avg_sq"}
    with pytest.raises(CheckpointError, match=r"optim_g\.state\.1\.exp_avg_sq is missing"):
        checkpoint.check_optimizer_state("optim_g", lacking, meta, opt, ring)
    with pytest.raises(CheckpointError, match="names no parameter"):
        checkpoint.check_optimizer_state("optim_g", {**tensors, "optim_g.state.999.exp_avg": torch.zeros(1)},
                                         meta, opt, ring)


def test_missing_optimizer_state_is_refused_unless_a_fresh_one_is_allowed(ring):
    tensors, meta, G, _ = live_models(ring)
    bare = {k: v for k, v in tensors.items() if not k.startswith("optim_g.")}
    bare_meta = {k: v for k, v in meta.items() if k != "optim_g.param_groups"}
    opt = torch.optim.Adam(G.parameters(), betas=(0.5, 0.9))
    with pytest.raises(CheckpointError, match="not\\s+continue exactly"):
        checkpoint.load_optimizer("optim_g", bare, bare_meta, opt, ring)
    assert checkpoint.load_optimizer("optim_g", bare, bare_meta, opt, ring, allow_fresh=True) is False
    assert opt.state_dict()["state"] == {}
    # groups present but every state tensor gone: the same refusal
    with pytest.raises(CheckpointError, match="not\\s+continue exactly"):
        checkpoint.load_optimizer("optim_g", bare, meta, opt, ring)


def test_rng_state_is_checked(ring):
    tensors, _, _, _ = live_models(ring)
    checkpoint.check_rng(tensors, ring)
    with pytest.raises(CheckpointError, match="rng.cpu has shape"):
        checkpoint.check_rng({**tensors, "rng.cpu": tensors["rng.cpu"][:10]}, ring)
    with pytest.raises(CheckpointError, match="rng.cpu is missing"):
        checkpoint.check_rng({k: v for k, v in tensors.items() if k != "rng.cpu"}, ring)


def test_config_field_of_a_good_checkpoint_roundtrips(ring):
    _, meta = checkpoint.read(ring)
    parsed = checkpoint.parse_meta(meta, ring)
    assert parsed.step == 5 and parsed.info.name == "ring8" and parsed.config.data.name == "ring8"
    assert parsed.config == config.loads(meta["config"])


def test_loss_scales_and_resume_data_are_checked(ring):
    from gantui.data import DataInfo

    tensors, meta, _, _ = live_models(ring)
    checkpoint.check_scalers({**tensors, "scaler_g.scale": torch.tensor(65536.0)}, ring)
    for bad in (torch.tensor(-1.0), torch.tensor(float("nan")), torch.tensor([1.0]), torch.tensor(1, dtype=torch.int64)):
        with pytest.raises(CheckpointError, match="scaler_g.scale"):
            checkpoint.check_scalers({**tensors, "scaler_g.scale": bad}, ring)
    saved = checkpoint.parse_meta(meta, ring).info
    checkpoint.check_same_data(saved, DataInfo("ring8", (2,), 0, True), ring)
    with pytest.raises(CheckpointError, match="trained on ring8 .* loads grid25"):
        checkpoint.check_same_data(saved, DataInfo("grid25", (2,), 0, True), ring)
