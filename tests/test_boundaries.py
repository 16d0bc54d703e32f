"""Architecture boundaries that keep the engine usable without a screen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


from conftest import REPO


def test_import_linter_contracts_hold():
    """The layers of pyproject.toml: the engine and the floors never import textual, the UI or any
    shell room (cli, headless, nproc, live, export, evaluate, ...), and no layer imports one above it."""
    # lint-imports comes with the [test] extra and sits beside this interpreter in the venv
    exe = Path(sys.executable).parent / "lint-imports"
    assert exe.exists(), "lint-imports missing: install the [test] extra (import-linter)"
    r = subprocess.run([str(exe), "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Layers: shells above the engine above the floors KEPT" in r.stdout
    assert "The engine and the floors never import a shell room, not even lazily KEPT" in r.stdout
    assert "The ground floor (gantui.vocab) needs neither torch nor textual KEPT" in r.stdout
    assert "4 kept, 0 broken" in r.stdout


def test_engine_runs_without_textual_loaded():
    code = ("import sys; from gantui import config; from gantui.engine.trainer import Trainer; "
            "import tempfile; t = Trainer(config.load('ring8', ['model.g_width=8','model.d_width=8']).replace('run', steps=3), "
            "tempfile.mkdtemp()); t.setup(); t.run(); print('textual' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
