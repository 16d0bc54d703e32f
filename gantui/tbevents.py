"""TensorBoard event files, written with the standard library alone (no TensorFlow, no protobuf).

An event file is a sequence of TFRecords, each holding one serialized `tensorboard.Event`:

    uint64 length | uint32 masked_crc32c(length) | bytes data | uint32 masked_crc32c(data)
    (little-endian; masked = ((crc >> 15) | (crc << 17)) + 0xa282ead8, mod 2**32)

The few protobuf messages gantui writes are encoded by hand below, with the field numbers of
TensorBoard's own `event.proto`, `summary.proto` and `tensor.proto`:

    Event        wall_time 1 (double), step 2 (int64), file_version 3 (string), summary 5, session_log 7
    SessionLog   status 1 (enum, START = 1)
    Summary      value 1 (repeated Value)
    Value        tag 1, simple_value 2 (float), image 4, tensor 8, metadata 9
    Image        height 1, width 2, colorspace 3 (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA), encoded_image_string 4
    SummaryMetadata  plugin_data 1 { plugin_name 1, content 2 }
    TensorProto  dtype 1 (DT_STRING = 7), tensor_shape 2 (empty = a scalar), string_val 8

Scalars are `simple_value`s, sample grids PNG `Image`s, and text is the text plugin's form (a
scalar string tensor with plugin_name "text"), which is what TensorBoard's `EventAccumulator`,
and so the importers of W&B and Aim, read. `tests/test_export.py` reads them back with it.
"""

from __future__ import annotations

import math
import struct
from typing import Iterator

FILE_VERSION = "brain.Event:2"  # tells TensorBoard to purge orphaned steps on SessionLog START only
DT_STRING = 7
SESSION_START = 1


# --- CRC32C (Castagnoli), table-driven -------------------------------------------------------

def _table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One TFRecord."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def records(data: bytes) -> Iterator[bytes]:
    """The payloads of the complete, intact TFRecords in `data`; stops at the first torn or bad one."""
    pos, n = 0, len(data)
    while pos + 12 <= n:
        length_b = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", length_b)
        (crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        end = pos + 12 + length + 4
        if crc != masked_crc32c(length_b) or end > n:
            return
        payload = data[pos + 12:pos + 12 + length]
        if struct.unpack("<I", data[end - 4:end])[0] != masked_crc32c(payload):
            return
        yield payload
        pos = end


# --- protobuf wire format ---------------------------------------------------------------------

def _varint(n: int) -> bytes:
    if n < 0:
        n &= 0xFFFFFFFFFFFFFFFF  # int64 two's complement, as protobuf does
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _int(field: int, n: int) -> bytes:
    return _key(field, 0) + _varint(n)


def _bytes(field: int, data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return _key(field, 2) + _varint(len(data)) + data


def _double(field: int, x: float) -> bytes:
    return _key(field, 1) + struct.pack("<d", x)


def _float(field: int, x: float) -> bytes:
    return _key(field, 5) + struct.pack("<f", x)


def event_step(payload: bytes) -> int | None:
    """The `step` field of a serialized Event (for pruning a file past a resume's step)."""
    pos, n = 0, len(payload)
    try:
        while pos < n:
            key, pos = _read_varint(payload, pos)
            field, wire = key >> 3, key & 7
            if field == 2 and wire == 0:
                step, _ = _read_varint(payload, pos)
                return step - (1 << 64) if step >= 1 << 63 else step
            if wire == 0:
                _, pos = _read_varint(payload, pos)
            elif wire == 1:
                pos += 8
            elif wire == 2:
                length, pos = _read_varint(payload, pos)
                pos += length
            elif wire == 5:
                pos += 4
            else:
                return None
    except IndexError:
        return None
    return 0  # step absent: proto3 default


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


# --- messages ---------------------------------------------------------------------------------

FLOAT32_MAX = 3.4028234663852886e38


def scalar_value(tag: str, value: float) -> bytes:
    # simple_value is a float32: a larger double (a gradient norm blowing up) reads as +-inf, not an error
    if math.isfinite(value) and abs(value) > FLOAT32_MAX:
        value = math.copysign(math.inf, value)
    return _bytes(1, tag) + _float(2, value)


def text_value(tag: str, text: str) -> bytes:
    # The text plugin's summary: metadata naming the plugin (content = TextPluginData(version=0),
    # which serializes to nothing), and a scalar DT_STRING tensor holding the text.
    metadata = _bytes(1, _bytes(1, "text") + _bytes(2, b""))
    tensor = _int(1, DT_STRING) + _bytes(2, b"") + _bytes(8, text)
    return _bytes(1, tag) + _bytes(9, metadata) + _bytes(8, tensor)


def image_value(tag: str, png: bytes) -> bytes:
    height, width, colorspace = png_info(png)
    image = _int(1, height) + _int(2, width) + _int(3, colorspace) + _bytes(4, png)
    return _bytes(1, tag) + _bytes(4, image)


def summary_event(step: int, wall_time: float, values: list[bytes]) -> bytes:
    summary = b"".join(_bytes(1, v) for v in values)
    return _double(1, wall_time) + _int(2, step) + _bytes(5, summary)


def file_version_event(wall_time: float) -> bytes:
    return _double(1, wall_time) + _bytes(3, FILE_VERSION)


def session_start_event(step: int, wall_time: float) -> bytes:
    """TensorBoard drops every point with a step >= `step` read before this (a restart)."""
    return _double(1, wall_time) + _int(2, step) + _bytes(7, _int(1, SESSION_START))


# PNG colour type -> TensorBoard colorspace
_COLORSPACE = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


def png_info(png: bytes) -> tuple[int, int, int]:
    """(height, width, colorspace) from a PNG's IHDR chunk; ValueError for anything else."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    width, height = struct.unpack(">II", png[16:24])
    return height, width, _COLORSPACE.get(png[25], 3)
