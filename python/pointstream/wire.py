"""The ``pointstream/1`` wire format (docs/protocol.md, section 3), without any networking: the
``.npy`` payload of a frame, its CRC-32 and its START/DATA chunks. Little-endian throughout."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from .errors import ErrorCodes, PointstreamError

VERSION = 1
START = 1
DATA = 2
START_HEADER_BYTES = 40
DATA_HEADER_BYTES = 12
DTYPE_FLOAT32 = 1
ENCODING_NPY = 1
#: The largest chunk the client sends (where native stacks are fastest); the server's SDP
#: ``a=max-message-size`` lowers it.
DEFAULT_MAX_MESSAGE_BYTES = 262_144
#: RFC 8841: a peer that advertises no maximum takes 64 KiB.
DEFAULT_REMOTE_MESSAGE_BYTES = 65_536

_START = struct.Struct("<BBHIIIIIBBBBdI")
_DATA = struct.Struct("<BBHII")
assert _START.size == START_HEADER_BYTES and _DATA.size == DATA_HEADER_BYTES


def as_points(points: object) -> np.ndarray:
    """``points`` as a C-order little-endian float32 ``(N, 3)`` array (a copy only when needed).

    Raises :class:`PointstreamError` ``PS_ERR_INVALID_FRAME`` for anything but a real numeric
    ``(N, 3)`` array, and ``PS_ERR_FIELDS_UNSUPPORTED`` for structured arrays (per-point fields are
    not sent by this version).
    """
    array = np.asarray(points)
    if array.dtype.names is not None:
        raise PointstreamError(
            ErrorCodes.FIELDS_UNSUPPORTED,
            "structured arrays (per-point fields) are not sent by this version: pass x, y, z as an (N, 3) array",
        )
    if array.ndim != 2 or array.shape[1] != 3:
        raise PointstreamError(
            ErrorCodes.INVALID_FRAME, f"points must be an (N, 3) array of x, y, z; got shape {array.shape}"
        )
    if array.dtype.kind not in "fiu":
        raise PointstreamError(
            ErrorCodes.INVALID_FRAME, f"points must be numbers (float32, float64...); got dtype {array.dtype}"
        )
    return np.ascontiguousarray(array, dtype="<f4")


def npy_header(point_count: int) -> bytes:
    """The ``.npy`` v1.0 header ``numpy.save`` writes for a ``'<f4'`` ``(N, 3)`` C-order array."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f4", "fortran_order": False, "shape": (point_count, 3)}
    )
    return buffer.getvalue()


@dataclass(frozen=True)
class Payload:
    """A frame's payload: a complete ``.npy`` file of its points, and its CRC-32."""

    data: bytes
    point_count: int
    crc32: int

    @staticmethod
    def of(points: np.ndarray) -> "Payload":
        """The payload of a float32 ``(N, 3)`` array (see :func:`as_points`)."""
        header = npy_header(points.shape[0])
        body = points.tobytes()
        return Payload(header + body, points.shape[0], zlib.crc32(body, zlib.crc32(header)))


def chunk_count(payload_bytes: int, max_message: int) -> int:
    """Chunks of a payload: START carries ``max_message - 40`` bytes, each DATA ``max_message - 12``."""
    first = max_message - START_HEADER_BYTES
    if payload_bytes <= first:
        return 1
    per = max_message - DATA_HEADER_BYTES
    return 1 + -(-(payload_bytes - first) // per)


def chunks(payload: Payload, seq: int, capture_time: float, max_message: int) -> Iterator[bytes]:
    """The frame's messages, in order: one START chunk, then DATA chunks (docs/protocol.md, 3)."""
    if max_message < START_HEADER_BYTES + 128:
        raise PointstreamError(ErrorCodes.INVALID_OPTION, f"messages of {max_message} bytes cannot hold a START chunk")
    data = memoryview(payload.data)
    count = chunk_count(len(data), max_message)
    first = max_message - START_HEADER_BYTES
    start = _START.pack(
        VERSION, START, START_HEADER_BYTES, seq, 0, len(data), payload.point_count, payload.crc32,
        DTYPE_FLOAT32, 3, ENCODING_NPY, 0, float(capture_time), count,
    )
    yield start + data[:first]
    offset = first
    per = max_message - DATA_HEADER_BYTES
    for index in range(1, count):
        yield _DATA.pack(VERSION, DATA, DATA_HEADER_BYTES, seq, index) + data[offset : offset + per]
        offset += per


def remote_max_message_size(sdp: str) -> int:
    """The answer's ``a=max-message-size`` (65536 when absent, RFC 8841)."""
    for line in sdp.splitlines():
        if line.startswith("a=max-message-size:"):
            try:
                value = int(line.split(":", 1)[1].strip())
            except ValueError:
                break
            return value if value > 0 else DEFAULT_REMOTE_MESSAGE_BYTES
    return DEFAULT_REMOTE_MESSAGE_BYTES


def read_npy(data: bytes) -> np.ndarray:
    """A ``.npy`` file's array (no pickles)."""
    return np.load(io.BytesIO(data), allow_pickle=False)


def crc32_of(data: bytes, start: Optional[int] = None) -> int:
    """CRC-32 (IEEE, as ``zlib.crc32``)."""
    return zlib.crc32(data) if start is None else zlib.crc32(data, start)
