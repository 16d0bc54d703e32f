"""The one reading of a safetensors header and of a gantui checkpoint's metadata, torch-free.

A safetensors file is 8 bytes of header length (little-endian), a JSON header (tensor names, dtypes,
shapes, byte ranges, and string metadata under `__metadata__`), then the tensor bytes. Both the
loader (gantui.checkpoint, before torch sees a byte) and the run directory's checks
(gantui.engine.checkpoint_files: which files are whole, which step) read a header through here.

Header limit: MAX_HEADER_BYTES = 16 MiB, not safetensors' own 100 MB. A gantui header is a few tens
of kB (about a hundred tensors and a 2 kB config), so 16 MiB leaves a 400x margin, while a hostile
or damaged file can make a reader (also `gantui runs`, which scans every run) allocate and parse at
most 16 MiB of JSON, not 100 MB. A file with a larger header is no gantui checkpoint.
"""

from __future__ import annotations

import json
from typing import BinaryIO

from gantui import limits

MAX_HEADER_BYTES = 16 << 20
REQUIRED_METADATA = ("gantui_version", "step", "config", "format_version")
FORMAT_VERSION = "1"


class HeaderError(ValueError):
    """Not a whole safetensors file; the message says why (without the path)."""


class NotGantui(ValueError):
    """A safetensors file whose metadata lacks what every gantui checkpoint carries."""


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:120]


def read_header(f: BinaryIO, size: int) -> tuple[dict, int]:
    """(header, header length) of the file `f` (at offset 0) of `size` bytes; HeaderError otherwise.
    The length must fit inside the file before anything else is read."""
    head = f.read(8)
    if len(head) < 8:
        raise HeaderError(f"{size} bytes, shorter than a header")
    n = int.from_bytes(head, "little")
    if n < 2 or n > MAX_HEADER_BYTES or 8 + n > size:
        raise HeaderError(f"header length {n} does not fit a file of {size} bytes")
    raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise HeaderError(f"header is not JSON: {_short(e)}") from None
    if not isinstance(header, dict):
        raise HeaderError("header is not a JSON object")
    return header, n


def check_byte_ranges(header: dict, n: int, size: int) -> None:
    """Every tensor's byte range lies inside the file (a truncated copy fails this); HeaderError."""
    end = 0
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        offsets = spec.get("data_offsets") if isinstance(spec, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise HeaderError(f"tensor {name!r} has no valid byte range")
        end = max(end, offsets[1])
    if 8 + n + end > size:
        raise HeaderError(f"truncated: the header declares {8 + n + end} bytes, the file has {size}")


def gantui_metadata(header: dict) -> dict[str, str]:
    """The string metadata of a gantui checkpoint: HeaderError when it is not a table of strings,
    NotGantui when it lacks a required field."""
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise HeaderError("metadata is not a table of strings")
    missing = [k for k in REQUIRED_METADATA if k not in metadata]
    if missing:
        raise NotGantui(f"not a gantui checkpoint (metadata lacks {', '.join(missing)})")
    return dict(metadata)


def parse_step(raw) -> int | None:
    """The `step` field as an int: decimal digits, 0 <= step <= limits.MAX_CHECKPOINT_STEP; else None."""
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit() or len(raw) > 19 \
            or int(raw) > limits.MAX_CHECKPOINT_STEP:
        return None
    return int(raw)
