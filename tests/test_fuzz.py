"""Seeded fuzzing of everything a user or a file can hand gantui: mutated presets, `--set` values, CLI
arguments, and checkpoint bytes and metadata. Every case must end with exit 0 (valid input) or 2 (bad
input, one line; Typer's short usage message for usage errors), never a traceback, never exit 1.

The CLI runs in process through `gantui.cli.main`, the console script's own entry point. `run` never
trains here: the engine's entry points are replaced by a stand-in that builds the configured models on
torch's meta device (no memory) and returns 0, so every validation must happen before training starts,
and a configuration that validates is known to build.
"""

from __future__ import annotations

import json
import random
import struct

import pytest
import torch
from conftest import train_run
from safetensors import safe_open
from safetensors.torch import save

from gantui import cli, config, memory, models
from gantui.data import DataInfo

SEED = 20240612
FIELDS = {
    "run": ["name", "description", "seed", "steps", "device", "precision"],
    "data": ["name", "batch_size", "image_size", "root", "download", "n_samples", "modes", "channels"],
    "model": ["arch", "latent_dim", "g_width", "d_width", "g_depth", "d_depth", "spectral_norm", "batch_norm_d",
              "dropout_d", "ema"],
    "loss": ["kind", "n_critic", "gp_lambda", "r1_gamma", "clip", "label_smoothing"],
    "optim": ["name", "g_lr", "d_lr", "betas", "lr_decay", "decay_steps"],
    "log": ["every", "sample_every", "checkpoint_every", "keep", "n_samples"],
    "diagnostics": ["window", "sustain", "warmup_steps", "enabled", "osc_jump", "collapse_std"],
}
PRESETS = [p.stem for p in config.bundled_presets()]


def toml_values(rng: random.Random) -> str:
    """One TOML value (or something that is not one), biased towards edges."""
    kind = rng.randrange(14)
    if kind == 0:
        return str(rng.choice([0, 1, -1, 2, 3, 28, 64, 100, 1024, 2**31, 2**63 - 1, 2**63, 2**70, -(2**64)]))
    if kind == 1:
        return rng.choice(["nan", "inf", "-inf", "1e308", "1e-308", "0.0", "-0.0", "0.5", "0.999", "1.0", "1e-4"])
    if kind == 2:
        return rng.choice(["true", "false"])
    if kind == 3:
        return json.dumps(rng.choice(["ring8", "mlp", "adam", "wgan_gp", "cpu", "", "..", "../x", "a/b", "é",
                                      "x" * rng.choice([50, 101, 5000]), "a\u0000b", "line\nbreak"]))
    if kind == 4:
        return "[" + ", ".join(toml_values(rng) for _ in range(rng.randrange(4))) + "]"
    if kind == 5:
        depth = rng.choice([2, 10, 200, 3000])
        return "[" * depth + "1" + "]" * depth
    if kind == 6:
        return "{a = " + toml_values(rng) + "}"
    if kind == 7:
        return rng.choice(['"unterminated', "'", "[1, 2", "{", "= =", "0x1F", "1_000", "1979-05-27", "+5"])
    if kind == 8:
        return rng.choice(["ring8", "digits", "folder", "cifar10", "conditional", "rmsprop", "linear", "bf16"])
    if kind == 9:
        return str(rng.randint(-5, 5000))
    if kind == 10:
        return repr(rng.uniform(-2, 2))
    if kind == 11:
        return "[" + ", ".join(repr(rng.uniform(0, 1)) for _ in range(2)) + "]"
    if kind == 12:
        return '["a", "b"]' if rng.random() < 0.5 else '[[0.5], [0.9]]'
    return rng.choice(["[0.5, \"x\"]", "[]", "[true, false]", "[1, 2]"])


def mutate_preset(rng: random.Random, text: str) -> bytes:
    lines = text.splitlines()
    op = rng.randrange(9)
    if op == 0 and lines:  # change a value
        i = rng.randrange(len(lines))
        if "=" in lines[i]:
            lines[i] = lines[i].split("=")[0] + "= " + toml_values(rng)
    elif op == 1:  # add a key, known or not
        section = rng.choice(list(FIELDS))
        key = rng.choice(FIELDS[section] + ["bogus", "Batch_Size", "x.y", "\"quoted key\""])
        lines += [f"[{section}]" if rng.random() < 0.3 else "", f"{key} = {toml_values(rng)}"]
    elif op == 2 and lines:  # drop lines
        del lines[rng.randrange(len(lines))]
    elif op == 3:  # a stray section
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(["[trainer]", "[run.sub]", "[[run]]", "[", "[]"]))
    elif op == 4:  # bytes: flip some
        blob = bytearray(text.encode())
        for _ in range(rng.randint(1, 8)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        return bytes(blob)
    elif op == 5:  # truncate
        return text.encode()[: rng.randrange(len(text) + 1)]
    elif op == 6:  # another encoding
        return text.encode(rng.choice(["utf-16", "utf-32", "latin-1", "utf-8-sig"]), errors="replace") \
            + rng.choice([b"", "é".encode("latin-1")])
    elif op == 7:  # random bytes
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
    else:  # several value changes
        for _ in range(3):
            i = rng.randrange(len(lines))
            if "=" in lines[i]:
                lines[i] = lines[i].split("=")[0] + "= " + toml_values(rng)
    return "\n".join(lines).encode("utf-8", errors="surrogateescape")


# Hostile files the random mutations reach only by luck, always included.
FIXED_PRESETS = [
    b"[run]\nx = " + b"[" * 3000 + b"]" * 3000,
    b"[run]\nx = " + b"{a = " * 1000 + b"1" + b"}" * 1000,
    b"[optim]\nbetas = " + b"[" * 300 + b"0.5" + b"]" * 300,
    "[run]\nname = 'x'\n".encode("utf-16"),
    b"\x00" * 64,
    b"\xff" * 64,
    b"",
]


def preset_cases(n: int) -> list:
    rng = random.Random(SEED)
    texts = {name: (config.PRESETS_DIR / f"{name}.toml").read_text() for name in PRESETS}
    random_cases = [mutate_preset(rng, texts[rng.choice(PRESETS)]) for _ in range(n - len(FIXED_PRESETS))]
    return [("preset", None, blob) for blob in FIXED_PRESETS + random_cases]


def set_cases(n: int) -> list:
    rng = random.Random(SEED + 1)
    cases = []
    for _ in range(n):
        section = rng.choice(list(FIELDS) + ["bogus"])
        key = rng.choice(FIELDS.get(section, ["x"]) + ["nope"])
        shape = rng.randrange(10)
        if shape == 0:
            text = rng.choice(["data.batch_size", "=3", ".x=1", "a.b.c=1", "data.=1", "data batch_size=1", ""])
        else:
            text = f"{section}.{key}={toml_values(rng)}"
        cases.append(("set", rng.choice(PRESETS), [text] + ([f"run.steps={rng.randint(0, 9)}"] if shape == 1 else [])))
    return cases


OPTIONS = {
    "run": ["--steps", "--run-dir", "--set", "--resume", "--device", "--headless", "--bogus"],
    "eval": ["--n-samples", "--seed", "--device", "--json", "--data-root", "--inception-weights", "--n"],
    "sample": ["--n", "--seed", "--out", "--ansi", "--steps"],
    "presets": ["--json"],
}
ARG_VALUES = ["", "0", "-1", "1", "7", "abc", "1e10", str(2**63), str(2**70), "10", "50000", "50001", "/dev/zero",
              "/proc/x", "{file}", "{file}/sub", "{ckpt}", "{tmp}/out.npy", "{tmp}/out.png", "{tmp}/out.gif", "cpu",
              "cuda", "tpu", "ring8", "data.batch_size=8", "--", "-h"]


def arg_cases(n: int) -> list:
    rng = random.Random(SEED + 2)
    cases = []
    for _ in range(n):
        command = rng.choice(list(OPTIONS) + ["bogus", "--version"])
        argv = [command]
        if command in ("run", "eval", "sample") and rng.random() < 0.9:
            argv.append(rng.choice(["ring8", "{ckpt}", "{file}", "/dev/zero", "", "nope", "{tmp}"])
                        if command != "run" else rng.choice(PRESETS + ["nope", "", "{file}", "/dev/zero"]))
        for _ in range(rng.randint(0, 3)):
            opt = rng.choice(OPTIONS.get(command, ["--x"]))
            argv.append(opt)
            if opt not in ("--headless", "--json", "--ansi") and rng.random() < 0.9:
                argv.append(rng.choice(ARG_VALUES))
        if command == "sample" and "--out" not in argv and rng.random() < 0.7:
            argv += ["--out", "{tmp}/s.npy"]
        if command == "eval" and "--n-samples" not in argv:
            argv += ["--n-samples", "20"]  # keeps the successful cases quick
        cases.append(("args", None, argv))
    return cases


def checkpoint_cases(n: int) -> list:
    rng = random.Random(SEED + 3)
    return [("ckpt", rng.choice(["ring", "digits"]), rng.randrange(10**9)) for _ in range(n)]


CASES = preset_cases(120) + set_cases(90) + arg_cases(80) + checkpoint_cases(110)


# --- the harness -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    ring = train_run(tmp_path_factory, "ring8", 5, "model.g_width=16", "model.d_width=16", "log.every=5",
                     "log.n_samples=16")
    digits = train_run(tmp_path_factory, "dcgan", 2, "data.n_samples=100", "model.g_width=8", "model.d_width=8",
                       "log.every=1", "log.n_samples=8")
    return {"ring": ring / "checkpoints" / "latest.safetensors",
            "digits": digits / "checkpoints" / "latest.safetensors"}


def stand_in_engine(cfg, run_dir, device, resume, owner=None):
    """What run_headless / run_monitor receive once the CLI has validated everything: the models must
    build for this config (on the meta device: no memory is used), and nothing trains."""
    shape = memory.data_shape(cfg.data)
    info = DataInfo(cfg.data.name, shape, memory.N_CLASSES.get(cfg.data.name, 0), len(shape) == 1)
    with torch.device("meta"):
        models.build(cfg, info)
    return 0


@pytest.fixture(autouse=True)
def sandbox(tmp_path, monkeypatch):
    import gantui.headless
    import gantui.ui.launch

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GANTUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(gantui.headless, "run_headless", stand_in_engine)
    monkeypatch.setattr(gantui.ui.launch, "run_monitor", stand_in_engine)


def run_cli(capsys, argv):
    capsys.readouterr()
    try:
        cli.main(argv)
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def check(code, err, argv):
    lines = err.splitlines()
    assert "Traceback" not in err, (argv, err)
    assert code in (0, 2), (argv, code, err)
    usage = "Usage:" in err or "╭─ Error" in err or err.startswith("Error: ")  # Typer's usage messages
    if code == 2 and usage:
        assert len(lines) <= 12, (argv, err)
    elif code == 2:
        assert lines and lines[-1].startswith("gantui: ") and err.count("gantui: ") == 1, (argv, err)
        assert len(lines) <= 3, (argv, err)  # eval's progress line(s), then the one error line
    else:
        assert len(lines) <= 3, (argv, err)


def tampered_checkpoint(src, dst, seed: int) -> None:
    rng = random.Random(seed)
    blob = bytearray(src.read_bytes())
    header_len = struct.unpack("<Q", bytes(blob[:8]))[0]
    op = rng.randrange(8)
    if op == 0:  # flip header bytes
        for _ in range(rng.randint(1, 6)):
            blob[8 + rng.randrange(header_len)] = rng.randrange(256)
    elif op == 1:  # flip data bytes
        for _ in range(rng.randint(1, 50)):
            blob[8 + header_len + rng.randrange(len(blob) - 8 - header_len)] = rng.randrange(256)
    elif op == 2:  # truncate
        del blob[rng.randrange(len(blob)):]
    elif op == 3:  # lie about the header length
        blob[:8] = struct.pack("<Q", rng.choice([0, 1, header_len - 1, header_len + 1, 2**63, len(blob)]))
    else:  # rewrite metadata or tensors through safetensors, as a deliberate tamperer would
        with safe_open(str(src), "pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            meta = dict(f.metadata())
        if op == 4:
            key = rng.choice(list(meta))
            meta[key] = rng.choice([toml_values(rng), "", "{}", "[]", "null", json.dumps({"name": "ring8"}),
                                    "x" * 100000, meta[key].replace("0", "9"), meta[key][: len(meta[key]) // 2]])
        elif op == 5:
            meta.pop(rng.choice(list(meta)))
        elif op == 6:
            key = rng.choice(list(tensors))
            t = tensors[key]
            tensors[key] = rng.choice([t.to(torch.int8), t.to(torch.float64), t.to(torch.float16), t.flatten(),
                                       torch.zeros(3), t * float("inf"), t.reshape(-1)[:1]])
        else:
            tensors.pop(rng.choice(list(tensors)))
        blob = bytearray(save(tensors, metadata=meta))
    dst.write_bytes(bytes(blob))


@pytest.mark.parametrize("case", range(len(CASES)))
def test_fuzz_case(case, capsys, tmp_path, checkpoints):
    kind, preset, payload = CASES[case]
    if kind == "preset":
        path = tmp_path / "p.toml"
        path.write_bytes(payload)
        argv = ["run", str(path), "--headless", "--run-dir", str(tmp_path / "run")]
    elif kind == "set":
        argv = ["run", preset, "--headless", "--run-dir", str(tmp_path / "run")]
        for text in payload:
            argv += ["--set", text]
    elif kind == "args":
        (tmp_path / "afile").write_text("not a checkpoint")
        subs = {"{file}": str(tmp_path / "afile"), "{ckpt}": str(checkpoints["ring"]), "{tmp}": str(tmp_path)}
        argv = []
        for a in payload:
            for k, v in subs.items():
                a = a.replace(k, v)
            argv.append(a)
    else:
        bad = tmp_path / "c.safetensors"
        tampered_checkpoint(checkpoints[preset], bad, payload)
        if preset == "ring" and payload % 2:
            argv = ["eval", str(bad), "--n-samples", "50", "--json"]
        else:
            argv = ["sample", str(bad), "--out", str(tmp_path / "x.npy"), "--n", "8"]
    code, out, err = run_cli(capsys, argv)
    check(code, err, argv)
    if kind == "ckpt" and code == 2:
        assert not (tmp_path / "x.npy").exists() and out == ""

