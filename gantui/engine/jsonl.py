"""JSON Lines files that survive faults: whole-line appends, torn tails skipped and reported.

`metrics.jsonl` and `events.jsonl` are appended by the training process and read by
`gantui watch`, `runs`, `compare`, `export` and `--resume`, possibly while being written.

- Appends write one complete line with one `write()` on an O_APPEND descriptor. If the disk
  fills mid-line (a short write), the partial bytes are cut off again before the error is
  raised, so a reader never sees half a record followed by a good one.
- Readers take complete lines only. A last line without its newline (a writer killed
  mid-write, or still writing) is left out and reported as `torn`; an unparseable line in the
  middle is skipped and counted.
- `truncate_after` drops the records past a checkpoint's step (resume), atomically.

Pure standard library: no torch, no textual.
"""

from __future__ import annotations

import errno
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantui.vocab.files import atomic_write


def jsonable(value: Any) -> Any:
    """JSON has no NaN/Infinity: write them as strings so every line stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def encode(record: dict[str, Any]) -> bytes:
    return (json.dumps(jsonable(record), allow_nan=False) + "\n").encode()


class Appender:
    """One JSONL file open for appending whole lines. Not thread-safe by itself (RunDir locks)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)

    def append(self, record: dict[str, Any]) -> None:
        if self.fd is None:
            raise ValueError(f"{self.path} is closed")
        data = encode(record)
        before = os.fstat(self.fd).st_size
        done = 0
        try:
            # one write() normally; a full disk can take part of a line and return short, and the
            # next write of the rest then fails with the real reason (ENOSPC, EIO, ...)
            while done < len(data):
                n = os.write(self.fd, data[done:])
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
                done += n
        except OSError as e:
            self._cut(before)
            if e.filename is None:
                e.filename = str(self.path)
            raise

    def _cut(self, size: int) -> None:
        try:
            if self.fd is not None and os.fstat(self.fd).st_size > size:
                os.ftruncate(self.fd, size)
        except OSError:
            pass  # the reader skips a torn tail anyway

    def sync(self) -> None:
        if self.fd is not None:
            os.fsync(self.fd)

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)

    @property
    def closed(self) -> bool:
        return self.fd is None


@dataclass
class ReadResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    torn: bool = False          # the last line had no newline (left out)
    bad_lines: int = 0          # complete lines that were not a JSON object (skipped)
    end: int = 0                # byte offset just past the last complete line


def parse_lines(data: bytes, result: ReadResult, base: int = 0) -> None:
    """Complete lines of `data` into `result`; sets torn/end for the remainder."""
    start = 0
    n = len(data)
    while start < n:
        nl = data.find(b"\n", start)
        if nl < 0:
            result.torn = True
            break
        line = data[start:nl].strip()
        start = nl + 1
        result.end = base + start
        if not line:
            continue
        try:
            obj = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            result.bad_lines += 1
            continue
        if isinstance(obj, dict):
            result.records.append(obj)
        else:
            result.bad_lines += 1


def read(path: Path, max_bytes: int | None = None) -> ReadResult:
    """Every complete record of a JSONL file (an absent file reads as empty).

    `max_bytes`: read only the file's last max_bytes (for a quick look at its tail); the first,
    possibly partial line of that window is dropped."""
    result = ReadResult()
    try:
        with open(path, "rb") as f:
            offset = 0
            if max_bytes is not None:
                size = os.fstat(f.fileno()).st_size
                if size > max_bytes:
                    offset = size - max_bytes
                    f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return result
    if offset:
        nl = data.find(b"\n")
        if nl < 0:
            return result
        data, offset = data[nl + 1:], offset + nl + 1
    parse_lines(data, result, offset)
    return result


class Follower:
    """Reads a growing JSONL file incrementally: each `poll()` returns the records completed since."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = Path(path)
        self.offset = offset
        self.torn = False
        self.rewound = False     # the last poll found the file rewritten and read it from the start
        self._inode: int | None = None

    def poll(self, limit: int | None = 1 << 22) -> list[dict[str, Any]]:
        """Records completed since the last poll (at most `limit` bytes read; None: all)."""
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                size = st.st_size
                # rewritten (a resume truncated it, a rollback split it: both replace the file, so the
                # inode changes even when the new file is not shorter)
                self.rewound = size < self.offset or (self._inode is not None and st.st_ino != self._inode)
                self._inode = st.st_ino
                if self.rewound:
                    self.offset = 0
                f.seek(self.offset)
                data = f.read() if limit is None else f.read(limit)
        except FileNotFoundError:
            return []
        result = ReadResult(end=self.offset)
        parse_lines(data, result, self.offset)
        self.offset = result.end
        self.torn = result.torn
        return result.records


def truncate_after(path: Path, step: int) -> tuple[int, bool]:
    """Keep only the records with `step <= step` (and no torn tail), atomically.

    Returns (records dropped, whether a torn tail was dropped). The file is rewritten through a
    temporary file + rename only when something is dropped."""
    path = Path(path)
    result = read(path)
    keep = [r for r in result.records if _step_of(r) <= step]
    dropped = len(result.records) - len(keep)
    if not dropped and not result.torn and not result.bad_lines:
        return 0, False
    atomic_write(path, b"".join(encode(r) for r in keep))
    return dropped, result.torn


def _step_of(record: dict[str, Any]) -> int:
    s = record.get("step")
    return s if isinstance(s, int) and not isinstance(s, bool) else -1


def split_after(path: Path, step: int, branch: Path) -> int:
    """Move the records with `step > step` into `branch` (a new file), keeping the rest in `path`:
    a rollback's abandoned stretch stays readable beside the main history. The branch file is
    written and fsynced before the main file is replaced (atomically), so a crash in between
    leaves a record in both places, never in neither. Returns the records moved."""
    path, branch = Path(path), Path(branch)
    result = read(path)
    keep = [r for r in result.records if _step_of(r) <= step]
    moved = [r for r in result.records if _step_of(r) > step]
    if not moved:
        return 0
    for target, records in ((branch, moved), (path.with_name(f".{path.name}.split.tmp"), keep)):
        with open(target, "wb") as f:
            for r in records:
                f.write(encode(r))
            f.flush()
            os.fsync(f.fileno())
    os.replace(path.with_name(f".{path.name}.split.tmp"), path)
    return len(moved)
