"""A wheel of gantui works on its own: the presets and the stylesheet ship inside it, and an
installed wheel (not this checkout) lists the presets and trains one from a folder outside the repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

PRESETS = sorted(p.name for p in (REPO / "presets").glob("*.toml"))


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    r = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=_clean_env())
    assert r.returncode == 0, f"{args}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r


@pytest.mark.slow
def test_the_wheel_installed_in_a_fresh_venv_lists_and_runs_presets(tmp_path):
    # Build from a copy of the sources, so no build/ or egg-info lands in the checkout.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("gantui", "presets"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(src)], tmp_path)
    (wheel,) = (tmp_path / "dist").glob("gantui-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"gantui/presets/{p}" for p in PRESETS} <= names
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "gantui").rglob("*.py")}
    assert modules - names == set()  # every module of every package, new ones included
    assert "gantui/ui/gantui.tcss" in names

    # A fresh venv from the base interpreter, the wheel installed into it. torch & co. come from this
    # test's environment through a plain path in a .pth file: a path line is only appended to
    # sys.path, so that environment's own .pth files (an editable gantui's finder) never run.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)], tmp_path)
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).stdout.strip())
    (site / "_gantui_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = _run([str(py), "-c", "import gantui, gantui.config as c; print(gantui.__file__); print(c.PRESETS_DIR)"], outside)
    module, presets_dir = where.stdout.split()
    assert Path(module).is_relative_to(venv) and Path(presets_dir).is_relative_to(venv)

    gantui = str(venv / "bin" / "gantui")
    listed = _run([gantui, "presets"], outside).stdout
    assert sorted(line.split()[0] + ".toml" for line in listed.splitlines()) == PRESETS

    _run([gantui, "run", "ring8", "--headless", "--steps", "20"], outside)
    (run,) = (outside / "runs").iterdir()
    assert (run / "checkpoints" / "latest.safetensors").is_file()
    assert '"kind": "finished"' in (run / "events.jsonl").read_text()
