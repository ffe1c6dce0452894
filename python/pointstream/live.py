"""Live frames over HTTP (docs/protocol.md, "Live frames over HTTP"), with urllib only:
:func:`latest` (the newest frame) and :func:`frames` (frames as they arrive)."""

from __future__ import annotations

import json
import struct
import urllib.parse
from typing import Any, Dict, Iterator, NamedTuple, Optional

import numpy as np

from . import http
from .errors import ErrorCodes, PointstreamError
from .wire import read_npy

#: Largest JSON record and frame accepted from a server (the server's own caps are lower).
MAX_JSON_BYTES = 1 << 20
MAX_NPY_BYTES = 1 << 31


class LiveFrame(NamedTuple):
    """A frame: its points as ``numpy.load`` reads the served ``.npy`` and its metadata (``seq``,
    ``session``, ``stream``, ``points``, ``captureTime``, ``receivedAt``, ``encoding``, ``form``,
    ``dropped``...). Points are an ``(N, 3)`` float32 array, or, for a frame with per-point fields,
    a structured array as recordings hold (``a['x']``, ``a['intensity']``...)."""

    points: np.ndarray
    meta: Dict[str, Any]


def _open(url: str, token: Optional[str], timeout: float, ca: Optional[str]) -> Any:
    """GET ``url``; a refusal raises with the server's own code (``PS_ERR_NO_FRAME_YET``...)."""
    try:
        return http.request("GET", url, token=token, timeout=timeout, ca=ca)
    except PointstreamError as error:
        server_code = error.details.get("serverCode")
        if error.code == ErrorCodes.SIGNALING_REJECTED and isinstance(server_code, str):
            raise PointstreamError(server_code, error.message, error.details) from None
        raise


def _url(url: str, stream: str, what: str) -> str:
    return f"{http.base_url(url)}/streams/{urllib.parse.quote(stream, safe='')}/{what}"


def latest(url: str, stream: str, token: Optional[str] = None, timeout: float = 30.0, ca: Optional[str] = None) -> LiveFrame:
    """The newest verified frame of ``stream`` (``GET /streams/<stream>/latest``).

    Raises :class:`PointstreamError` with the server's code: ``PS_ERR_NO_FRAME_YET`` (no frame
    yet), ``PS_ERR_SESSION_NOT_FOUND`` (no such stream, or another token's),
    ``PS_ERR_UNAUTHORIZED``, ``PS_ERR_TOO_MANY_REQUESTS``...; ``details`` has ``status`` and
    ``retryAfter``. ``PS_ERR_SIGNALING_FAILED`` when the server cannot be reached.
    """
    with _open(_url(url, stream, "latest"), token, timeout, ca) as response:
        data = response.read()
        headers = response.headers
    meta: Dict[str, Any] = {
        "stream": headers.get("Ps-Stream"),
        "session": headers.get("Ps-Session"),
        "seq": int(headers.get("Ps-Seq", "0")),
        "points": int(headers.get("Ps-Points", "0")),
        "captureTime": float(headers["Ps-Capture-Time"]) if headers.get("Ps-Capture-Time") else None,
        "receivedAt": float(headers.get("Ps-Received-At", "0")),
        "encoding": headers.get("Ps-Encoding"),
        "form": headers.get("Ps-Form"),
    }
    return LiveFrame(read_npy(data), meta)


def _read_exactly(response: Any, size: int) -> Optional[bytes]:
    parts = []
    left = size
    while left > 0:
        part = response.read(left)
        if not part:
            return None
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def frames(
    url: str, stream: str, token: Optional[str] = None, timeout: float = 30.0, ca: Optional[str] = None
) -> Iterator[LiveFrame]:
    """Frames of ``stream`` as they arrive (``GET /streams/<stream>/frames``), the newest first.

    A reader slower than the stream gets the newest frame and skips others: ``meta['dropped']``
    counts them. The iterator ends when the stream ends (raising :class:`PointstreamError` with the
    server's code) and raises ``PS_ERR_CONNECTION_FAILED`` when the server goes silent for
    ``timeout`` seconds (it sends a keep-alive every 5 s). Close it (``.close()``) to stop early.
    """
    response = _open(_url(url, stream, "frames"), token, timeout, ca)
    try:
        while True:
            try:
                size = _read_exactly(response, 4)
                if size is None:
                    raise PointstreamError(ErrorCodes.CONNECTION_FAILED, "the server ended the frames response")
                (length,) = struct.unpack("<I", size)
                if length > MAX_JSON_BYTES:
                    raise PointstreamError(ErrorCodes.HTTP_BAD_REQUEST, f"a metadata record of {length} bytes")
                raw_meta = _read_exactly(response, length)
                raw_size = _read_exactly(response, 4)
                if raw_meta is None or raw_size is None:
                    raise PointstreamError(ErrorCodes.CONNECTION_FAILED, "the frames response was cut")
                (npy_bytes,) = struct.unpack("<I", raw_size)
                if npy_bytes > MAX_NPY_BYTES:
                    raise PointstreamError(ErrorCodes.HTTP_BAD_REQUEST, f"a frame of {npy_bytes} bytes")
                data = _read_exactly(response, npy_bytes) if npy_bytes else b""
                if data is None:
                    raise PointstreamError(ErrorCodes.CONNECTION_FAILED, "the frames response was cut")
            except OSError as error:  # socket timeout, reset
                raise PointstreamError(ErrorCodes.CONNECTION_FAILED, f"reading frames failed: {error}") from error
            meta = json.loads(raw_meta)
            kind = meta.get("type")
            if kind == "frame":
                yield LiveFrame(read_npy(data), meta)
            elif kind == "end":
                raise PointstreamError(str(meta.get("code")), str(meta.get("message", "the stream ended")))
    finally:
        response.close()
