"""Paths a user names, validated before anything is written or read: one line for each way they fail.

    check_run_dir(text, flag) -> Path       a directory a run can create and write (it may exist)
    check_input_path(text, flag) -> Path    an existing regular file or directory to read from
    cache_root() -> Path                   where gantui keeps what it can rebuild (features, digits, tracebacks)

Torch-free and cheap: the CLI calls them before any heavy import, so a bad path costs nothing.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gantui.errors import UserError

# Kernel file systems: nothing a run writes belongs there, and writing can have effects (/proc/sys).
PSEUDO_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))
NAME_MAX = 255    # bytes in one path component (Linux, macOS)
PATH_MAX = 4096


def _shown(text: str) -> str:
    return repr(text) if (not text or any(ord(c) < 32 for c in text) or text != text.strip()) else text


def _label(flag: str, text: str) -> str:
    """'--run-dir runs/x' for an option, the path alone for an argument (flag "")."""
    shown = _shown(text)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    return f"{flag} {shown}" if flag else shown


def _basic(text: str | os.PathLike, flag: str) -> Path:
    raw = os.fspath(text)
    if raw == "":
        raise UserError(f"{_label(flag, raw)}: expected a path (an empty path would mean the current directory)")
    if any(ord(c) < 32 for c in raw):
        raise UserError(f"{_label(flag, raw)}: expected a path without control characters")
    if len(raw.encode("utf-8", "surrogateescape")) > PATH_MAX:
        raise UserError(f"{_label(flag, raw)}: the path is longer than {PATH_MAX} bytes")
    path = Path(raw)
    for part in path.parts:
        if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise UserError(f"{_label(flag, raw)}: a path component is longer than {NAME_MAX} bytes")
    return path


def _under_pseudo(path: Path) -> Path | None:
    real = Path(os.path.realpath(path))
    for root in PSEUDO_ROOTS:
        if real == root or root in real.parents:
            return root
    return None


def _nearest_existing(path: Path) -> Path:
    p = Path(os.path.abspath(path))
    while not os.path.lexists(p):
        p = p.parent
    return p


def check_run_dir(text: str | os.PathLike, flag: str = "--run-dir") -> Path:
    """The run directory as given, refused (UserError, one line) when it is empty, names a file, lies
    under a file or a kernel file system (/proc, /sys, /dev), or cannot be created or written."""
    path = _basic(text, flag)
    shown = _label(flag, os.fspath(text))
    root = _under_pseudo(path)
    if root is not None:
        raise UserError(f"{shown}: is under {root}, a kernel file system; choose a directory on a disk")
    if os.path.lexists(path) and not path.is_dir():
        what = "a file" if path.is_file() else "not a directory"
        raise UserError(f"{shown}: is {what}; give a directory (it is created when missing)")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise UserError(f"{shown}: is under {base}, which is a file, not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        reason = "on a read-only file system" if _read_only(base) else "not writable by you"
        where = "it is" if base == Path(os.path.abspath(path)) else f"{base} is"
        raise UserError(f"{shown}: cannot write there ({where} {reason}); choose another directory")
    return path


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_input_path(text: str | os.PathLike, flag: str, what: str = "a checkpoint file or a run directory") -> Path:
    """An existing regular file or directory, else one line: missing, or a device, pipe or socket
    (reading /dev/zero or a FIFO would never end)."""
    path = _basic(text, flag)
    shown = _label(flag, os.fspath(text))
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UserError(f"{shown}: no such file or directory; expected {what}") from None
    except NotADirectoryError:
        raise UserError(f"{shown}: a part of the path is a file, not a directory; expected {what}") from None
    except OSError as e:
        raise UserError(f"{shown}: cannot read: {e.strerror or e}") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UserError(f"{shown}: not a regular file or directory (a device, pipe or socket); expected {what}")
    return path


def cache_root() -> Path:
    """$GANTUI_CACHE, else $XDG_CACHE_HOME/gantui, else ~/.cache/gantui: what gantui can rebuild
    (feature networks, the rendered digits, tracebacks of runs with no directory)."""
    root = os.environ.get("GANTUI_CACHE")
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "gantui"
