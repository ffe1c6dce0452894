"""The ``pointstream/1`` wire format (docs/protocol.md, section 3), without any networking: the
``.npy`` payload of a frame, its CRC-32 and its START/DATA chunks. Little-endian throughout."""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass
from typing import Dict, Iterator, Mapping, Optional, Sequence, Tuple

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
    ``(N, 3)`` array (structured arrays go through :func:`as_frame`).
    """
    array = np.asarray(points)
    if array.dtype.names is not None:
        raise PointstreamError(
            ErrorCodes.INVALID_FRAME,
            "a structured array (per-point fields) is a frame with fields: send it as it is (client.send)",
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


#: Field type ids of docs/protocol.md ("Per-point fields"), by little-endian NumPy dtype.
FIELD_TYPES: Dict[str, int] = {"<f4": 1, "|u1": 2, "<u2": 3, "<u4": 4, "<f8": 5, "|i1": 6, "<i2": 7, "<i4": 8}
FIELD_FLAG = 0x01
MAX_FIELDS = 32
MAX_FIELD_NAME_BYTES = 64
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_TABLE = struct.Struct("<IB3x")
_ENTRY = struct.Struct("<BBBxId")
CODEC_RAW = 0


def _invalid(message: str) -> PointstreamError:
    return PointstreamError(ErrorCodes.FIELDS_INVALID, message)


def check_field_name(name: object) -> str:
    """``name`` when it is a valid field name (1-64 of A-Za-z0-9_, no leading digit, not x/y/z)."""
    if not isinstance(name, str) or _FIELD_NAME.fullmatch(name) is None:
        raise _invalid(
            f"field name {name!r} is not 1-{MAX_FIELD_NAME_BYTES} of A-Z a-z 0-9 _ (not starting with a digit)"
        )
    if name in ("x", "y", "z"):
        raise _invalid(f"field name {name!r} is taken by the coordinates")
    return name


def field_column(name: str, values: object, point_count: int) -> np.ndarray:
    """A field's values as a C-order little-endian column of one of the protocol's types
    (bool becomes ``|u1``); ``PS_ERR_FIELDS_INVALID`` for other dtypes or another length."""
    column = np.asarray(values)
    if column.ndim != 1 or column.shape[0] != point_count:
        raise _invalid(f"field {name!r} has shape {column.shape}; it needs one value per point: ({point_count},)")
    dtype = column.dtype
    if dtype.kind == "b":
        dtype = np.dtype("|u1")
    elif dtype.kind in "fiu" and dtype.names is None and dtype.subdtype is None:
        dtype = dtype.newbyteorder("<")
    if dtype.str not in FIELD_TYPES:
        raise _invalid(
            f"field {name!r} has dtype {column.dtype}; fields are float32, float64, uint8, uint16, uint32, "
            "int8, int16, int32 or bool"
        )
    return np.ascontiguousarray(column, dtype=dtype)


@dataclass(frozen=True)
class Frame:
    """A frame to send: float32 ``(N, 3)`` points and its fields (name -> ``(N,)`` column)."""

    points: np.ndarray
    fields: Tuple[Tuple[str, np.ndarray], ...] = ()


def as_frame(points: object, fields: Optional[Mapping[str, object]] = None) -> Frame:
    """A :class:`Frame` of an ``(N, 3)`` array (and ``fields``, name -> ``(N,)`` array) or of a
    structured array with fields ``x``, ``y``, ``z`` (any real dtype) and others (its fields; an
    ``(H, W)`` organised array is sent as its ``H * W`` points in C order).

    Raises ``PS_ERR_INVALID_FRAME`` (points) or ``PS_ERR_FIELDS_INVALID`` (a field's name, type
    or length; more than 32 fields).
    """
    array = np.asarray(points)
    names = array.dtype.names
    if names is None:
        xyz = as_points(array)
        given = list((fields or {}).items())
    else:
        if fields:
            raise _invalid("pass fields in the structured array or in fields=, not both")
        missing = [axis for axis in ("x", "y", "z") if axis not in names]
        if missing:
            raise PointstreamError(
                ErrorCodes.INVALID_FRAME,
                f"a structured array needs fields x, y and z; {', '.join(missing)} missing (has {', '.join(names)})",
            )
        flat = array.reshape(-1)
        xyz = np.empty((flat.shape[0], 3), dtype="<f4")
        for axis, name in enumerate(("x", "y", "z")):
            column = flat[name]
            if column.ndim != 1 or column.dtype.kind not in "fiu":
                raise PointstreamError(
                    ErrorCodes.INVALID_FRAME, f"field {name} must be numbers (float32, float64...); got {column.dtype}"
                )
            xyz[:, axis] = column
        given = [(name, flat[name]) for name in names if name not in ("x", "y", "z")]
    if len(given) > MAX_FIELDS:
        raise _invalid(f"{len(given)} fields; at most {MAX_FIELDS} per frame")
    seen = set()
    columns = []
    for name, values in given:
        check_field_name(name)
        if name in seen:
            raise _invalid(f"field {name!r} is given twice")
        seen.add(name)
        columns.append((name, field_column(name, values, xyz.shape[0])))
    return Frame(xyz, tuple(columns))


def _aligned(offset: int) -> int:
    return (offset + 7) & ~7


def field_table(points_bytes: int, fields: Sequence[Tuple[str, np.ndarray]]) -> bytes:
    """The START header's field table for raw columns (docs/protocol.md, "Per-point fields")."""
    parts = [_TABLE.pack(points_bytes, len(fields))]
    for name, column in fields:
        encoded = name.encode("ascii")
        parts.append(_ENTRY.pack(FIELD_TYPES[column.dtype.str], CODEC_RAW, len(encoded), column.nbytes, 0.0))
        parts.append(encoded)
    return b"".join(parts)


def structured_dtype(fields: Sequence[Tuple[str, np.ndarray]]) -> np.dtype:
    """The plain form's packed structured dtype: x, y, z ``'<f4'`` then the fields."""
    return np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4")] + [(name, c.dtype.str) for name, c in fields])


def npy_header(point_count: int) -> bytes:
    """The ``.npy`` v1.0 header ``numpy.save`` writes for a ``'<f4'`` ``(N, 3)`` C-order array."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f4", "fortran_order": False, "shape": (point_count, 3)}
    )
    return buffer.getvalue()


@dataclass(frozen=True)
class Payload:
    """A frame's payload: a complete ``.npy`` file of its points (then, with fields, each raw
    column at the next multiple of 8 bytes), its CRC-32 and its field table (``b""`` without)."""

    data: bytes
    point_count: int
    crc32: int
    table: bytes = b""
    #: Fields the frame carries (in the table, or in the plain form's structured ``.npy``).
    field_count: int = 0

    @staticmethod
    def of(points: np.ndarray, fields: Sequence[Tuple[str, np.ndarray]] = ()) -> "Payload":
        """The chunked form's payload of a float32 ``(N, 3)`` array (see :func:`as_points`) and
        its checked fields (see :func:`as_frame`)."""
        header = npy_header(points.shape[0])
        parts = [header, points.tobytes()]
        size = len(header) + points.nbytes
        points_bytes = size
        for _, column in fields:
            start = _aligned(size)
            if start > size:
                parts.append(bytes(start - size))
            parts.append(column.tobytes())
            size = start + column.nbytes
        data = b"".join(parts)
        table = field_table(points_bytes, fields) if fields else b""
        return Payload(data, points.shape[0], zlib.crc32(data), table, len(fields))

    @staticmethod
    def of_frame(frame: Frame, plain: bool = False) -> "Payload":
        """The payload of a :class:`Frame`: chunked (``.npy`` + raw columns and the table) or, for
        the plain form, one ``.npy`` (``(N, 3)`` without fields, structured with them)."""
        if not plain or not frame.fields:
            return Payload.of(frame.points, frame.fields)
        records = np.empty(frame.points.shape[0], dtype=structured_dtype(frame.fields))
        for axis, name in enumerate(("x", "y", "z")):
            records[name] = frame.points[:, axis]
        for name, column in frame.fields:
            records[name] = column
        buffer = io.BytesIO()
        np.save(buffer, records, allow_pickle=False)
        data = buffer.getvalue()
        return Payload(data, frame.points.shape[0], zlib.crc32(data), b"", len(frame.fields))



def chunk_count(payload_bytes: int, max_message: int, header_length: int = START_HEADER_BYTES) -> int:
    """Chunks of a payload: START carries ``max_message - header_length`` bytes (40, or 40 + the
    field table), each DATA ``max_message - 12``."""
    first = max_message - header_length
    if payload_bytes <= first:
        return 1
    per = max_message - DATA_HEADER_BYTES
    return 1 + -(-(payload_bytes - first) // per)


def chunks(payload: Payload, seq: int, capture_time: float, max_message: int) -> Iterator[bytes]:
    """The frame's messages, in order: one START chunk (with the field table, if any), then DATA
    chunks (docs/protocol.md, 3)."""
    header_length = START_HEADER_BYTES + len(payload.table)
    if max_message < header_length + 128:
        raise PointstreamError(ErrorCodes.INVALID_OPTION, f"messages of {max_message} bytes cannot hold a START chunk")
    data = memoryview(payload.data)
    count = chunk_count(len(data), max_message, header_length)
    first = max_message - header_length
    start = _START.pack(
        VERSION, START, header_length, seq, 0, len(data), payload.point_count, payload.crc32,
        DTYPE_FLOAT32, 3, ENCODING_NPY, FIELD_FLAG if payload.table else 0, float(capture_time), count,
    )
    yield start + payload.table + data[:first]
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
