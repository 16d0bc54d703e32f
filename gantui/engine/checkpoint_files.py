"""The checkpoint files of a run directory, read without torch: which exist, which are whole,
which step each holds, and the debris a killed save leaves behind.

A safetensors file is 8 bytes of header length, a JSON header (tensor names, dtypes, shapes,
byte ranges, and our string metadata under `__metadata__`), then the tensor bytes. A file is
*complete* when its header parses, names the metadata a gantui checkpoint carries, and every
byte range it declares lies inside the file (a truncated copy fails that). This is what
`--resume RUN_DIR` uses to fall back from a damaged `latest` to the newest whole step file,
and what `runs`/`--resume` use to learn a checkpoint's step in milliseconds.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

STEP_FILE = re.compile(r"^step_(\d{8,})\.safetensors$")
LATEST = "latest.safetensors"
MAX_HEADER = 100 << 20           # safetensors' own limit on a header (100 MB)
REQUIRED = ("gantui_version", "step", "config", "format_version")


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
            head = f.read(8)
            if len(head) < 8:
                raise Damaged("shorter than a safetensors header")
            n = int.from_bytes(head, "little")
            if n <= 0 or n > MAX_HEADER or 8 + n > size:
                raise Damaged("header length out of range (truncated or not safetensors)")
            raw = f.read(n)
    except OSError as e:
        raise Damaged(f"cannot read: {e.strerror}") from None
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Damaged("header is not JSON") from None
    if not isinstance(obj, dict):
        raise Damaged("header is not a JSON object")
    end = 0
    for name, spec in obj.items():
        if name == "__metadata__":
            continue
        offsets = spec.get("data_offsets") if isinstance(spec, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise Damaged(f"tensor {name!r} has no valid byte range")
        end = max(end, offsets[1])
    if 8 + n + end > size:
        raise Damaged(f"truncated: the header declares {8 + n + end} bytes, the file has {size}")
    return obj


def metadata(path: Path) -> dict[str, str]:
    """The string metadata of a complete gantui checkpoint; Damaged otherwise."""
    meta = header(path).get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise Damaged("metadata is not a JSON object")
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise Damaged(f"not a gantui checkpoint (metadata lacks {', '.join(missing)})")
    return meta


def step_of(path: Path) -> int:
    """The step a complete checkpoint holds; Damaged otherwise."""
    raw = metadata(path).get("step")
    if not (isinstance(raw, str) and raw.isdigit()):
        raise Damaged(f"metadata step {raw!r} is not a step number")
    return int(raw)


def newest_complete(run_dir: Path) -> tuple[Path, int, list[str]]:
    """The checkpoint `--resume RUN_DIR` continues from: `latest` when it is whole, else the
    step file of the highest step that is. Returns (path, step, notes on what was passed over);
    FileNotFoundError when the directory has no whole checkpoint."""
    folder = Path(run_dir) / "checkpoints"
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
    folder = Path(run_dir) / "checkpoints"
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
    for folder in (Path(run_dir), Path(run_dir) / "checkpoints", Path(run_dir) / "samples"):
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
