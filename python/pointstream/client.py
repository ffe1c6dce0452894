"""The blocking client, for scripts and Jupyter alike: ``client = pointstream.connect(url)``,
``receipt = client.send(points)``. Its asyncio loop runs in a thread of its own, so it works
whether or not the caller has a running loop (Jupyter has one; ``asyncio.run`` would fail there).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Awaitable, Mapping, Optional, TypeVar

from . import aio
from .aio import AsyncClient, Receipt, Stats

T = TypeVar("T")


class Sent:
    """A frame handed to the channel; :meth:`receipt` waits for the server's answer."""

    def __init__(self, future: "concurrent.futures.Future[Receipt]", seq: int) -> None:
        self._future = future
        #: The frame's sequence number on the client (the server's in the chunked form).
        self.seq = seq

    def receipt(self, timeout: Optional[float] = None) -> Receipt:
        """The :class:`Receipt`; raises :class:`PointstreamError` (rejected, lost)."""
        return self._future.result(timeout)

    def done(self) -> bool:
        """Whether the receipt (or the error) is there."""
        return self._future.done()


class Client:
    """A blocking pointstream client (see :func:`connect`); use it as a context manager."""

    def __init__(self, url: str, token: Optional[str] = None, stream: Optional[str] = None, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pointstream", daemon=True)
        self._thread.start()
        try:
            self._client: AsyncClient = self._run(aio.connect(url, token, stream, **options))
        except BaseException:
            self._stop()
            raise

    def _run(self, coroutine: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()  # type: ignore[arg-type]

    @property
    def session(self) -> str:
        """The current session id (a new one after each reconnect)."""
        return self._client.session

    @property
    def stream(self) -> str:
        """The stream the frames feed."""
        return self._client.stream

    @property
    def recording(self) -> Optional[str]:
        """Where the server records this session (a directory on the server), when it records."""
        return self._client.recording

    @property
    def stats(self) -> Stats:
        """Counts so far: frames sent, acknowledged, rejected, lost, reconnects..."""
        return self._client.stats

    def send(
        self,
        points: Any,
        capture_time: Optional[float] = None,
        timeout: Optional[float] = None,
        fields: Optional[Mapping[str, Any]] = None,
    ) -> Receipt:
        """Sends an ``(N, 3)`` array (with ``fields``, name -> ``(N,)`` array), or a structured
        array with fields ``x``, ``y``, ``z`` and per-point fields, and returns its
        :class:`Receipt` once the server verified it.

        Raises :class:`PointstreamError` with the server's code when it rejects the frame (e.g.
        ``PS_ERR_FRAME_TOO_MANY_POINTS``), ``PS_ERR_FRAME_LOST`` when no receipt came.
        """
        return self.submit(points, capture_time, fields).receipt(timeout)

    def submit(
        self, points: Any, capture_time: Optional[float] = None, fields: Optional[Mapping[str, Any]] = None
    ) -> Sent:
        """Sends without waiting for the receipt (at most ``max_in_flight`` frames are unacknowledged:
        this blocks while that many are); returns a :class:`Sent`."""
        seq = self._client._next_seq
        future = self._run(self._client.submit(points, capture_time, fields))
        chained: "concurrent.futures.Future[Receipt]" = concurrent.futures.Future()

        def copy(done: "asyncio.Future[Receipt]") -> None:
            error = done.exception()
            if error is not None:
                chained.set_exception(error)
            else:
                chained.set_result(done.result())

        self._loop.call_soon_threadsafe(future.add_done_callback, copy)
        return Sent(chained, seq)

    def close(self, wait: Optional[float] = None) -> None:
        """Waits for receipts in flight, ends the session and stops the client's thread."""
        if self._thread.is_alive():
            try:
                self._run(self._client.close(wait))
            finally:
                self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_thread", None) is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)


def connect(url: str, token: Optional[str] = None, stream: Optional[str] = None, **options: Any) -> Client:
    """Connects to a pointstream server and returns a blocking :class:`Client` whose session is open.

    ``url``: the server (``http(s)://host:port``) or its ``/offer`` URL. ``token``: a bearer token.
    ``stream``: the stream's name (kept across reconnects). Other options (docs/python.md):
    ``plain``, ``max_in_flight``, ``max_message_bytes``, ``connect_timeout``, ``receipt_timeout``,
    ``liveness_timeout``, ``reconnect``, ``max_reconnects``, ``host_addresses``, ``ice_servers``,
    ``ca``, ``check_finite``.
    """
    return Client(url, token, stream, **options)
