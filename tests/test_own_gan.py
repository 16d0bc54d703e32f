"""Your own GAN in a preset (README "Your own GAN"): the user's classes and data, imported from the
working directory, trained by the real engine through the real CLI (in process, `gantui.cli.main`).

The models live in tests/data/own_gan/, copied into an empty working directory as a user would keep
them beside a preset: the DCGAN of pytorch/examples (64 px, a D ending in a Sigmoid that returns (N,)),
an MLP WGAN-GP in the shape of eriklindernoren/PyTorch-GAN (32 px, flat latent, (N, 1) scores), a
conditional pair, a data.dataset function, a module that writes a file when imported (trust), and
models wrong in the ways users get them wrong. Real Fashion-MNIST images, written as PNG files in
class subfolders, are the data (skipped where Debian's dataset-fashion-mnist is not installed).
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_cli

FASHION = Path("/usr/share/datasets/fashion-mnist")
MODULES = REPO / "tests" / "data" / "own_gan"
USER_MODULES = ("examples_dcgan", "mlp_wgan_gp", "marker", "broken", "import_fails", "cond", "mydata")

pytestmark = pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").exists(),
                                reason="Fashion-MNIST files absent (apt-get install dataset-fashion-mnist)")


def write_pngs(folder: Path, n: int, classes: bool = True) -> None:
    import numpy as np
    from PIL import Image

    images = np.frombuffer(gzip.open(FASHION / "train-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
    labels = np.frombuffer(gzip.open(FASHION / "train-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
    images = images.reshape(-1, 28, 28)
    for i in range(n):
        d = folder / str(labels[i]) if classes else folder
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(d / f"{i:05d}.png")


def forget_user_modules() -> None:
    """In-process runs share sys.modules: drop the user's modules so the next import is a real one."""
    for name in USER_MODULES:
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("own_gan")
    for f in MODULES.glob("*.py"):
        shutil.copy(f, root / f.name)
    write_pngs(root / "fmnist", 160)
    write_pngs(root / "few", 12, classes=False)
    return root


@pytest.fixture(autouse=True)
def in_work(work, monkeypatch):
    monkeypatch.chdir(work)
    monkeypatch.setenv("GANTUI_CACHE", str(work / "cache"))
    monkeypatch.setenv("GANTUI_TEST_MARKER", str(work / "imported.marker"))
    forget_user_modules()
    yield
    forget_user_modules()


def preset(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


DCGAN_64 = """
[run]
name = "pytorch-examples-dcgan"
steps = 8
seed = 3
[data]
name = "folder"
root = "fmnist"
image_size = 64
channels = 1
batch_size = 8
[model]
generator = "examples_dcgan:Generator"
discriminator = "examples_dcgan:Discriminator"
latent_dim = 16
d_output = "probabilities"
ema = 0.9
[model.generator_args]
ngpu = 1
[model.discriminator_args]
ngpu = 1
[loss]
kind = "ns"
[optim]
g_lr = 2e-4
d_lr = 2e-4
[log]
every = 2
sample_every = 4
checkpoint_every = 4
eval_every = 0
n_samples = 16
"""

WGAN_GP_32 = """
[run]
name = "pytorch-gan-wgan-gp"
steps = 6
[data]
name = "folder"
root = "fmnist"
image_size = 32
labels = "none"
batch_size = 16
[model]
generator = "mlp_wgan_gp:Generator"
discriminator = "mlp_wgan_gp:Discriminator"
latent_dim = 16
[loss]
kind = "wgan_gp"
n_critic = 2
[log]
every = 2
sample_every = 3
checkpoint_every = 3
eval_every = 0
n_samples = 16
"""


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_the_pytorch_examples_dcgan_trains_at_64px_and_resumes_exactly(capsys, work):
    p = preset(work / "dcgan64.toml", DCGAN_64)
    code, out, err = run_cli(capsys, "run", p, "--headless", "--run-dir", "dc-straight")
    assert code == 0, err
    assert "reading fmnist/: 160/160 images" in out  # the progress line of the first read
    assert "memory estimate:" in out and "resident at the peak" in out
    started = json.loads((work / "dc-straight" / "events.jsonl").read_text().splitlines()[0])
    assert started["kind"] == "started" and started["memory_estimate"] > 0.4e9  # this process (torch) counted
    straight = records(work / "dc-straight")
    assert straight[-1]["step"] == 8 and all(r["d_real"] <= 1 for r in straight)
    cfg = (work / "dc-straight" / "config.toml").read_text()
    assert 'generator = "examples_dcgan:Generator"' in cfg and "[model.generator_args]\nngpu = 1" in cfg

    ckpt = work / "dc-straight" / "checkpoints" / "step_00000004.safetensors"
    forget_user_modules()
    code, _, err = run_cli(capsys, "run", p, "--headless", "--resume", ckpt, "--run-dir", "dc-untrusted")
    assert code == 2 and "examples_dcgan:Generator" in err and "--trust-code" in err, err
    assert "examples_dcgan" not in sys.modules and not (work / "dc-untrusted").exists()
    code, _, err = run_cli(capsys, "run", "--resume", "dc-straight", "--steps", "10", "--headless")  # no preset:
    assert code == 2 and "--trust-code" in err and "examples_dcgan" not in sys.modules, err  # the run's own code

    code, _, err = run_cli(capsys, "run", p, "--headless", "--resume", ckpt, "--run-dir", "dc-resumed",
                           "--trust-code")
    assert code == 0, err
    resumed = {r["step"]: r for r in records(work / "dc-resumed")}
    later = [r for r in straight if r["step"] > 4]
    assert len(later) == 2
    for r in later:
        for key in ("d_loss", "g_loss", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "sample_std"):
            assert resumed[r["step"]][key] == r[key], (r["step"], key)


def test_an_mlp_wgan_gp_trains_at_32px_then_samples_and_evaluates_with_trust(capsys, work, monkeypatch):
    from gantui.evaluation import features

    p = preset(work / "wgan32.toml", WGAN_GP_32)
    code, _, err = run_cli(capsys, "run", p, "--headless", "--run-dir", "wg")
    assert code == 0, err
    last = records(work / "wg")[-1]
    assert last["step"] == 6 and "gp" in last and "wasserstein" in last

    forget_user_modules()
    code, _, err = run_cli(capsys, "sample", "wg", "--out", "s.png")
    assert code == 2 and "mlp_wgan_gp:Generator" in err and not (work / "s.png").exists(), err
    code, out, err = run_cli(capsys, "sample", "wg", "--out", "s.png", "--n", "9", "--trust-code")
    assert code == 0 and (work / "s.png").stat().st_size > 0, err

    monkeypatch.setattr(features, "DEFAULT_AE_RECIPE", features.AERecipe(steps=10, batch_size=16, width=8))
    code, out, err = run_cli(capsys, "eval", "wg", "--json", "--n-samples", "40", "--data-root", "fmnist",
                             "--trust-code")
    assert code == 0, err
    result = json.loads(out)
    assert result["step"] == 6 and result["fid"] > 0 and result["n_samples"] == 40


def test_eval_of_a_checkpoint_naming_code_imports_nothing_without_trust_code(capsys, work, monkeypatch):
    from gantui.evaluation import features

    marker = work / "imported.marker"
    p = preset(work / "marker.toml", DCGAN_64.replace("examples_dcgan:", "marker:").replace("steps = 8", "steps = 2"))
    code, _, err = run_cli(capsys, "run", p, "--headless", "--run-dir", "mk")
    assert code == 0 and marker.exists(), err  # the preset on the command line: imported
    marker.unlink()
    forget_user_modules()

    for args in (["eval", "mk", "--data-root", "fmnist"], ["sample", "mk", "--out", "m.png"]):
        code, _, err = run_cli(capsys, *args)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert "marker:Generator" in err and "--trust-code" in err, err
        assert not marker.exists() and "marker" not in sys.modules

    monkeypatch.setattr(features, "DEFAULT_AE_RECIPE", features.AERecipe(steps=10, batch_size=16, width=8))
    monkeypatch.setattr(features, "DEFAULT_RECIPE", features.Recipe(n_train=100, n_test=40, epochs=1, batch_size=16))
    code, out, err = run_cli(capsys, "eval", "mk", "--json", "--n-samples", "30", "--data-root", "fmnist",
                             "--trust-code")
    assert code == 0 and marker.exists(), err
    assert json.loads(out)["step"] == 2


def test_a_conditional_pair_gets_labels_from_class_subfolders(capsys, work):
    p = preset(work / "cond.toml", """
[run]
steps = 4
[data]
name = "folder"
root = "fmnist"
image_size = 32
labels = "subfolders"
batch_size = 16
[model]
generator = "cond:CondG"
discriminator = "cond:CondD"
latent_dim = 16
conditional = true
spectral_norm = true
[loss]
kind = "hinge"
[log]
every = 2
eval_every = 0
n_samples = 20
""")
    code, _, err = run_cli(capsys, "run", p, "--headless", "--run-dir", "cd")
    assert code == 0, err
    import torch

    from gantui import checkpoint

    tensors, meta = checkpoint.read(work / "cd")
    assert json.loads(meta["data_info"])["n_classes"] == 10
    assert any("parametrizations.weight" in k for k in tensors if k.startswith("discriminator.net."))
    assert tensors["fixed.y"].tolist()[:11] == list(range(10)) + [0] and tensors["fixed.y"].dtype == torch.int64


def test_a_data_dataset_function_trains(capsys, work):
    p = preset(work / "ds.toml", WGAN_GP_32.replace('name = "folder"\nroot = "fmnist"', 'dataset = "mydata:blobs"')
               .replace('labels = "none"\n', ""))
    code, out, err = run_cli(capsys, "run", p, "--headless", "--run-dir", "dsr")
    assert code == 0, err
    assert "reading mydata:blobs: 64/64 items" in out
    assert records(work / "dsr")[-1]["step"] == 6


def test_the_memory_check_measures_your_models_and_counts_a_folder_as_uint8(work):
    import torch

    from gantui import config, memory
    from gantui.data import UnitView, load_dataset
    from gantui.models import build
    from gantui.models.measure import activation_counts

    cfg = config.loads(DCGAN_64)
    ds = load_dataset(cfg.data, torch.device("cpu"), 0)
    assert isinstance(ds.x, UnitView) and ds.x.raw.dtype == torch.uint8 and ds.info.n_classes == 10
    assert ds.nbytes() == 160 * 64 * 64 + 160 * 8
    assert memory.data_count(cfg.data) == 160
    G, D = build(cfg, ds.info)
    g_params, g_acts, d_params, d_acts = activation_counts(G, D, 16)
    assert g_params == sum(p.numel() for p in G.parameters()) and d_params == sum(p.numel() for p in D.parameters())
    # G's last layer alone keeps its 64x64 output for tanh's backward; D saves at least its input
    assert g_acts >= 64 * 64 and d_acts >= 64 * 64
    # the measured models are in the check: it passes with exactly their estimate, refuses one byte less
    without = memory.estimate(cfg, ds.info.shape, counts=(0, 0, 0, 0), data_bytes=0)
    est = memory.check_measured(cfg, ds.info.shape, G, D, available=None, where="cpu", data_bytes=0)
    assert est.total - without.total >= 4 * (g_params + d_params) * 2  # weights, gradients and Adam's two states
    memory.check_measured(cfg, ds.info.shape, G, D, available=est.total, where="cpu", data_bytes=0)
    with pytest.raises(Exception) as refused:
        memory.check_measured(cfg, ds.info.shape, G, D, available=est.total - 1, where="cpu", data_bytes=0)
    assert "needs about" in str(refused.value)


# --- wrong models and data: one line, exit 2, before training, no run directory ----------------------

BASE = WGAN_GP_32.replace('root = "fmnist"', 'root = "few"').replace("steps = 6", "steps = 2")
G_LINE = 'generator = "mlp_wgan_gp:Generator"'
D_LINE = 'discriminator = "mlp_wgan_gp:Discriminator"'


def variant(*pairs: tuple[str, str]) -> str:
    text = BASE
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    return text


CASES = {
    "module not found": (variant((G_LINE, 'generator = "nosuchpkg.models:G"')), ["nosuchpkg.models:G", "no module"]),
    "module fails to import": (variant((G_LINE, 'generator = "import_fails:G"')),
                               ["import_fails:G", "fancylib"]),
    "missing name": (variant((G_LINE, 'generator = "broken:Generator"')), ["broken:Generator", "has no"]),
    "not callable": (variant((G_LINE, 'generator = "broken:not_a_class"')), ["broken:not_a_class", "a class or a function"]),
    "factory returns no module": (variant((D_LINE, 'discriminator = "broken:returns_a_string"')),
                                  ["broken:returns_a_string", "torch.nn.Module"]),
    "args rejected": (variant() + "\n[model.generator_args]\ndepth = 3\n",
                      ["mlp_wgan_gp:Generator", "depth"]),
    "G output shape": (variant((G_LINE, 'generator = "broken:WrongSize"')), ["broken:WrongSize", "(2, 1, 32, 32)"]),
    "G output range": (variant((G_LINE, 'generator = "broken:NoTanh"')), ["broken:NoTanh", "tanh"]),
    "G crashes": (variant((G_LINE, 'generator = "broken:Crashes"')), ["broken:Crashes", "not finished"]),
    "D values": (variant((D_LINE, 'discriminator = "broken:TwoScores"')), ["broken:TwoScores", "one score per image"]),
    "latent size": (variant(("latent_dim = 16", "latent_dim = 8")), ["mlp_wgan_gp:Generator", "latent_dim"]),
    "probabilities with wgan_gp": (variant((D_LINE, D_LINE + '\nd_output = "probabilities"')),
                                   ["d_output", "wgan_gp", "'ns' or 'minimax'"]),
    "probabilities but logits": (variant((D_LINE, D_LINE + '\nd_output = "probabilities"'), ('"wgan_gp"', '"ns"')),
                                 ["mlp_wgan_gp:Discriminator", "d_output = 'logits'"]),
    "half a pair": (variant((D_LINE + "\n", "")), ["discriminator", "pairs"]),
    "bad import path": (variant((G_LINE, 'generator = "mlp_wgan_gp.Generator"')), ["package.module:Name"]),
    "data wrong size for G": (variant(("image_size = 32", "image_size = 64")), ["mlp_wgan_gp:Generator", "(2, 1, 64, 64)"]),
    "labels from no subfolders": (variant(('labels = "none"', 'labels = "subfolders"')), ["few", "class subfolder"]),
    "conditional without labels": (variant((D_LINE, D_LINE + "\nconditional = true")), ["conditional", "labelled"]),
    "dataset not a Dataset": (variant(('name = "folder"\nroot = "few"', 'dataset = "broken:needs_labels_dataset"'),
                                      ('labels = "none"\n', "")), ["broken:needs_labels_dataset", "map-style"]),
    "dataset out of range": (variant(('name = "folder"\nroot = "few"', 'dataset = "mydata:unscaled"'),
                                     ('labels = "none"\n', "")), ["mydata:unscaled", "[-1, 1]"]),
    "128 px with gantui's models": (variant((G_LINE + "\n", ""), (D_LINE + "\n", ""), ("latent_dim = 16", "arch = 'dcgan'"),
                                            ("image_size = 32", "image_size = 128")), ["image_size", "your own models"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_wrong_model_or_data_gets_one_line_and_exit_2_before_training(capsys, work, case):
    text, words = CASES[case]
    p = preset(work / "wrong.toml", text)
    code, out, err = run_cli(capsys, "run", p, "--headless", "--run-dir", "wrong-run")
    assert code == 2, (case, err)
    assert err.count("\n") == 1 and err.startswith("gantui: ") and "Traceback" not in err, err
    for w in words:
        assert w in err, (case, w, err)
    assert not (work / "wrong-run").exists() and not (work / "runs").exists()


def test_live_quality_trains_its_feature_network_before_step_1(capsys, work, monkeypatch):
    from gantui.evaluation import features

    monkeypatch.setattr(features, "DEFAULT_AE_RECIPE", features.AERecipe(steps=10, batch_size=16, width=8))
    p = preset(work / "lq.toml", WGAN_GP_32.replace("eval_every = 0", "eval_every = 2").replace("steps = 6", "steps = 2"))
    code, out, err = run_cli(capsys, "run", p, "--headless", "--run-dir", "lq")
    assert code == 0, err
    lines = out.splitlines()
    started = next(i for i, line in enumerate(lines) if line.startswith("gantui "))
    prepared = next(i for i, line in enumerate(lines) if "live quality: gantui-folder-ae" in line)  # ready
    assert prepared < started, out  # trained at setup, before the run's first line and step 1
    assert records(work / "lq")[-1]["fid"] > 0
