"""The checkpoint files of a run directory, read without torch: which exist, which are whole,
which step each holds, and the debris a killed save leaves behind.

A file is *complete* when its header parses (gantui.vocab.safetensors: the loader's own reading),
names the metadata a gantui checkpoint carries, and every byte range it declares lies inside the
file (a truncated copy fails that). This is what
`--resume RUN_DIR` uses to fall back from a damaged `latest` to the newest whole step file,
and what `runs`/`--resume` use to learn a checkpoint's step in milliseconds.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from gantui.vocab import run_files
from gantui.vocab import safetensors as st_header

STEP_FILE = re.compile(r"^step_(\d{8,})\.safetensors$")
LATEST = run_files.LATEST


class Damaged(ValueError):
    """Not a complete gantui checkpoint; the message says why."""


def step_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of every `step_N.safetensors` in folder, by step ascending."""
    out = []
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    for name in names:
        m = STEP_FILE.match(name)
        if m:
            out.append((int(m.group(1)), Path(folder) / name))
    return sorted(out)


def header(path: Path) -> dict:
    """The parsed safetensors header of a file; Damaged when it is not whole."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            obj, n = st_header.read_header(f, size)
    except OSError as e:
        raise Damaged(f"cannot read: {e.strerror}") from None
    except st_header.HeaderError as e:
        raise Damaged(str(e)) from None
    try:
        st_header.check_byte_ranges(obj, n, size)
    except st_header.HeaderError as e:
        raise Damaged(str(e)) from None
    return obj


def metadata(path: Path) -> dict[str, str]:
    """The string metadata of a complete gantui checkpoint; Damaged otherwise."""
    try:
        return st_header.gantui_metadata(header(path))
    except (st_header.HeaderError, st_header.NotGantui) as e:
        raise Damaged(str(e)) from None


def step_of(path: Path) -> int:
    """The step a complete checkpoint holds; Damaged otherwise."""
    raw = metadata(path).get("step")
    step = st_header.parse_step(raw)
    if step is None:
        raise Damaged(f"metadata step {raw!r} is not a step number")
    return step


def newest_complete(run_dir: Path) -> tuple[Path, int, list[str]]:
    """The checkpoint `--resume RUN_DIR` continues from: `latest` when it is whole, else the
    step file of the highest step that is. Returns (path, step, notes on what was passed over);
    FileNotFoundError when the directory has no whole checkpoint."""
    folder = Path(run_dir) / run_files.CHECKPOINTS
    notes = []
    latest = folder / LATEST
    if latest.exists():
        try:
            return latest, step_of(latest), notes
        except Damaged as e:
            notes.append(f"{latest.name} is damaged ({e})")
    else:
        notes.append(f"{LATEST} is missing")
    for step, path in reversed(step_checkpoints(folder)):
        try:
            return path, step_of(path), notes
        except Damaged as e:
            notes.append(f"{path.name} is damaged ({e})")
    raise FileNotFoundError(str(folder))


def newest_step(run_dir: Path) -> int | None:
    """The highest step any whole checkpoint of the run holds (latest included)."""
    best = None
    folder = Path(run_dir) / run_files.CHECKPOINTS
    candidates = [p for _, p in step_checkpoints(folder)] + [folder / LATEST]
    for path in candidates:
        try:
            s = step_of(path)
        except Damaged:
            continue
        best = s if best is None else max(best, s)
    return best


TEMP_FILE = re.compile(r"^\..+\.tmp$")


def remove_orphans(run_dir: Path) -> list[Path]:
    """Delete the temporary files a killed save left (`.latest.safetensors.x1y2.tmp`, ...).
    Only call with the run's lock held: a live save's own temp file must not be touched."""
    removed = []
    for folder in (Path(run_dir), Path(run_dir) / run_files.CHECKPOINTS, Path(run_dir) / run_files.SAMPLES):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if TEMP_FILE.match(name):
                path = folder / name
                try:
                    if path.is_file():
                        path.unlink()
                        removed.append(path)
                except OSError:
                    pass
    return removed
