"""HTTP with the server (urllib only): offers, session DELETE and the live-frames endpoints.
Errors become :class:`PointstreamError` with the server's code when it sent one."""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Mapping, Optional, Tuple

from .errors import ErrorCodes, PointstreamError


def base_url(url: str) -> str:
    """``http(s)://host:port`` from the server's URL as ``serve`` logs it, or its ``/offer`` URL."""
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise PointstreamError(ErrorCodes.INVALID_OPTION, f"url must be an http:// or https:// URL; got {url!r}")
    parts = urllib.parse.urlsplit(url)
    path = parts.path.rstrip("/")
    if path.endswith("/offer"):
        path = path[: -len("/offer")]
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def ssl_context(ca: Optional[str]) -> Optional[ssl.SSLContext]:
    """A context trusting the PEM file ``ca`` (a private certificate), else the system's (None)."""
    return None if ca is None else ssl.create_default_context(cafile=ca)


def headers_for(token: Optional[str], extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """Request headers: ``Authorization: Bearer`` when there is a token."""
    headers = dict(extra or {})
    if token:
        headers["Authorization"] = "Bearer " + token
    return headers


def request(
    method: str,
    url: str,
    *,
    token: Optional[str] = None,
    body: Optional[bytes] = None,
    headers: Optional[Mapping[str, str]] = None,
    timeout: float = 30.0,
    ca: Optional[str] = None,
) -> Any:
    """Opens ``url`` and returns the response (a file-like object to read and close).

    Raises ``PS_ERR_UNAUTHORIZED`` (401), ``PS_ERR_SIGNALING_REJECTED`` (other refusals: details
    ``status``, ``serverCode``, ``retryAfter``), ``PS_ERR_SIGNALING_TLS`` and
    ``PS_ERR_SIGNALING_FAILED`` (no answer).
    """
    req = urllib.request.Request(url, data=body, headers=headers_for(token, headers), method=method)
    try:
        return urllib.request.urlopen(req, timeout=timeout, context=ssl_context(ca))
    except urllib.error.HTTPError as error:
        raise problem_of(error) from None
    except (ssl.SSLError, ssl.CertificateError) as error:
        raise PointstreamError(ErrorCodes.SIGNALING_TLS, f"TLS with {url} failed: {error}") from error
    except urllib.error.URLError as error:
        if isinstance(error.reason, ssl.SSLError):
            raise PointstreamError(ErrorCodes.SIGNALING_TLS, f"TLS with {url} failed: {error.reason}") from error
        raise PointstreamError(ErrorCodes.SIGNALING_FAILED, f"cannot reach {url}: {error.reason}") from error
    except (socket.timeout, TimeoutError, OSError) as error:
        raise PointstreamError(ErrorCodes.SIGNALING_FAILED, f"cannot reach {url}: {error}") from error


def problem_of(error: urllib.error.HTTPError) -> PointstreamError:
    """The server's ``{"error": {"code", "message"}}`` answer as an error."""
    try:
        problem = json.loads(error.read() or b"{}").get("error", {})
    except (ValueError, AttributeError, OSError):
        problem = {}
    finally:
        error.close()
    server_code = problem.get("code") if isinstance(problem, dict) else None
    message = problem.get("message") if isinstance(problem, dict) else None
    retry_after = error.headers.get("Retry-After") if error.headers else None
    details: Dict[str, Any] = {"status": error.code, "serverCode": server_code}
    if retry_after is not None and retry_after.isdigit():
        details["retryAfter"] = int(retry_after)
    if error.code == 401:
        return PointstreamError(ErrorCodes.UNAUTHORIZED, message or "the server refused the token", details)
    return PointstreamError(
        ErrorCodes.SIGNALING_REJECTED,
        f"the server answered {error.code}: {message or error.reason} ({server_code})",
        details,
    )


def post_offer(
    base: str, sdp: str, stream: Optional[str], token: Optional[str], timeout: float, ca: Optional[str]
) -> Tuple[Dict[str, Any], Optional[str]]:
    """POSTs a JSON offer to ``<base>/offer``; returns the answer and its ``Location``."""
    offer: Dict[str, Any] = {"sdp": sdp, "type": "offer"}
    if stream is not None:
        offer["stream"] = stream
    with request(
        "POST",
        base + "/offer",
        token=token,
        body=json.dumps(offer).encode(),
        headers={"Content-Type": "application/json"},
        timeout=timeout,
        ca=ca,
    ) as response:
        answer = json.loads(response.read())
        return answer, response.headers.get("Location")


def delete(base: str, location: str, token: Optional[str], ca: Optional[str]) -> None:
    """``DELETE`` of a session resource (ends it; errors are ignored: the session may be gone)."""
    try:
        with request("DELETE", urllib.parse.urljoin(base + "/", location), token=token, timeout=5, ca=ca) as r:
            r.read()
    except PointstreamError:
        pass
