"""The one atomic write: a reader (another process, a crash, a power loss) sees the old file or the
new one, never half of one.

The durability rule: write a temporary file in the same folder, fsync it, rename it over the target,
fsync the folder (so the rename itself survives a power loss). A caller that passes durable=False
skips both fsyncs and says why at the call (a file that is only a view of something durable, written
so often that an fsync would stall the training).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (best effort: some file systems refuse a directory fsync)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path | str, content: bytes | Callable[[BinaryIO], None], *, durable: bool = True,
                 mode: int = 0o666) -> None:
    """Write `content` (bytes, or a function that writes to the open file) to `path` atomically.
    The temporary file is `.<name>.<random>.tmp` beside it (removed on failure; the pattern
    gantui.engine.checkpoint_files.remove_orphans clears after a kill). `mode` before the umask,
    as open() would (0o600 for a file only its owner may read)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(content, (bytes, bytearray, memoryview)):
                f.write(content)
            else:
                content(f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)
