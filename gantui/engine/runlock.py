"""One live run per run directory: an advisory `flock` on `<run-dir>/.gantui.lock`.

The process that trains holds an exclusive lock for its whole life; the kernel releases it
when the process ends, however it ends (kill -9 included), so a stale lock never blocks a
resume. The file holds the holder's pid (for the one-line refusal and for `gantui runs`);
the pid is information only, the lock is what counts.

Pure standard library: `gantui runs` and `watch` read this without importing torch.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from gantui.vocab import run_files

LOCK_NAME = run_files.LOCK


class RunLocked(Exception):
    """Another live process holds the run directory."""

    def __init__(self, path: Path, pid: int | None) -> None:
        self.path, self.pid = path, pid
        who = f"process {pid}" if pid else "another process"
        super().__init__(f"{path} is in use by a live run ({who}); "
                         f"watch it with `gantui watch {path}` or stop it with `gantui stop {path}`")


def lock_path(run_dir: Path) -> Path:
    return Path(run_dir) / LOCK_NAME


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class RunLock:
    """Held by the training process (rank 0) from before the first write to after the last."""

    def __init__(self, run_dir: Path) -> None:
        self.path = lock_path(run_dir)
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunLocked(self.path.parent, _read_pid(self.path)) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holder(run_dir: Path) -> int | None:
    """The pid of the live process that holds the run directory, or None when no one does.

    Probes with a shared, non-blocking lock: it succeeds only when no exclusive holder exists.
    (0 is returned for a holder whose pid cannot be read.)"""
    path = lock_path(run_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return _read_pid(path) or 0
        return None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)

