"""Errors of the pointstream Python package: one class, :class:`PointstreamError`, whose ``code``
is one of the server's stable ``PS_ERR_*`` codes (docs/errors.md)."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional


class ErrorCodes:
    """The codes the Python package raises itself (the server's receipts and closings carry others)."""

    INVALID_FRAME = "PS_ERR_INVALID_FRAME"
    INVALID_OPTION = "PS_ERR_INVALID_OPTION"
    FRAME_NON_FINITE = "PS_ERR_FRAME_NON_FINITE"
    FRAME_TOO_LARGE = "PS_ERR_FRAME_TOO_LARGE"
    FRAME_LOST = "PS_ERR_FRAME_LOST"
    FRAME_REJECTED = "PS_ERR_FRAME_REJECTED"
    FIELDS_UNSUPPORTED = "PS_ERR_FIELDS_UNSUPPORTED"
    FIELDS_INVALID = "PS_ERR_FIELDS_INVALID"
    SIGNALING_FAILED = "PS_ERR_SIGNALING_FAILED"
    SIGNALING_REJECTED = "PS_ERR_SIGNALING_REJECTED"
    SIGNALING_TLS = "PS_ERR_SIGNALING_TLS"
    UNAUTHORIZED = "PS_ERR_UNAUTHORIZED"
    CONNECT_TIMEOUT = "PS_ERR_CONNECT_TIMEOUT"
    CONNECTION_FAILED = "PS_ERR_CONNECTION_FAILED"
    CHANNEL_CLOSED = "PS_ERR_CHANNEL_CLOSED"
    CONTROL_INVALID = "PS_ERR_CONTROL_INVALID"
    SESSION_CLOSED = "PS_ERR_SESSION_CLOSED"
    SESSION_MOVED = "PS_ERR_SESSION_MOVED"
    PEER_SILENT = "PS_ERR_PEER_SILENT"
    STREAM_REPLACED = "PS_ERR_STREAM_REPLACED"
    ABORTED = "PS_ERR_ABORTED"
    HTTP_BAD_REQUEST = "PS_ERR_HTTP_BAD_REQUEST"
    NO_FRAME_YET = "PS_ERR_NO_FRAME_YET"


class PointstreamError(Exception):
    """An error with a stable ``code`` (``PS_ERR_...``), a message for people and ``details``
    (facts such as ``seq``, ``status``, ``serverCode``, ``retryAfter``)."""

    def __init__(self, code: str, message: str, details: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(f"{message} ({code})")
        self.code: str = code
        self.message: str = message
        self.details: Dict[str, Any] = dict(details or {})

    def to_dict(self) -> Dict[str, Any]:
        """The error as JSON-ready data (code, message, details)."""
        return {"code": self.code, "message": self.message, "details": self.details}
