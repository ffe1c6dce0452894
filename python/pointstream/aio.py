"""The asyncio client: ``client = await pointstream.aio.connect(url)``, ``await client.send(points)``.

One :class:`_Connection` is one session (one RTCPeerConnection, one channel); :class:`AsyncClient`
keeps the stream across them: it reconnects after a lost connection, ``PS_ERR_SESSION_MOVED`` and
``PS_ERR_PEER_SILENT`` as ``pointstream send`` does (docs/protocol.md, "Moving a session").
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

import aioice.ice
import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from . import http
from .errors import ErrorCodes, PointstreamError
from .wire import DEFAULT_MAX_MESSAGE_BYTES, Payload, as_frame, chunks, remote_max_message_size

log = logging.getLogger("pointstream")

PROTOCOL = "pointstream/1"
HEARTBEAT_REQUEST = '{"type":"heartbeat"}'
#: Endings after which the client connects again (others end the client).
RECONNECTABLE = frozenset(
    {
        ErrorCodes.CONNECTION_FAILED,
        ErrorCodes.CHANNEL_CLOSED,
        ErrorCodes.SESSION_CLOSED,
        ErrorCodes.CONNECT_TIMEOUT,
        ErrorCodes.SIGNALING_FAILED,
        ErrorCodes.SIGNALING_REJECTED,
        ErrorCodes.SESSION_MOVED,
        ErrorCodes.PEER_SILENT,
    }
)
#: Endings after which the first attempt goes at once (a node drained or died).
IMMEDIATE = frozenset({ErrorCodes.SESSION_MOVED, ErrorCodes.PEER_SILENT})

# aiortc gathers host candidates on every interface (aioice.ice.get_host_addresses) and has no
# option to choose: `host_addresses` restricts them per connection through a context variable
# (gathering runs in the task that calls setLocalDescription). Unset, aioice's own list is used.
_host_addresses: contextvars.ContextVar[Optional[Sequence[str]]] = contextvars.ContextVar(
    "pointstream_host_addresses", default=None
)
_aioice_host_addresses = aioice.ice.get_host_addresses


def _chosen_host_addresses(use_ipv4: bool, use_ipv6: bool) -> List[str]:
    chosen = _host_addresses.get()
    return list(chosen) if chosen is not None else _aioice_host_addresses(use_ipv4, use_ipv6)


aioice.ice.get_host_addresses = _chosen_host_addresses


@dataclass(frozen=True)
class Options:
    """Options of :func:`connect`; defaults in parentheses (docs/python.md)."""

    #: Bearer token for a server with auth. (none)
    token: Optional[str] = None
    #: The stream's name, kept across reconnects. (the server names it after the session)
    stream: Optional[str] = None
    #: The plain form: one message per frame, a whole ``.npy`` file. (False: ``pointstream/1`` chunks)
    plain: bool = False
    #: Largest chunk; the server's ``a=max-message-size`` lowers it. (262144)
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    #: Frames sent but not acknowledged at once; the hello's ``maxFramesInReassembly`` lowers it. (2)
    max_in_flight: int = 2
    #: Seconds for signaling, ICE, DTLS and the hello. (15)
    connect_timeout: float = 15.0
    #: Seconds a frame may wait for its receipt once sent; then it is lost. (10)
    receipt_timeout: float = 10.0
    #: Silence (seconds) after which a server that sends heartbeats counts as gone. (2.5)
    liveness_timeout: float = 2.5
    #: Reconnect after a lost connection (the stream and frame numbers go on). (True)
    reconnect: bool = True
    #: Reconnect attempts per outage. (5)
    max_reconnects: int = 5
    #: Local addresses to offer ICE candidates on, e.g. ``["127.0.0.1"]``. (every interface)
    host_addresses: Optional[Sequence[str]] = None
    #: STUN/TURN servers, as aiortc's ``RTCIceServer``. (none: the server learns our address)
    ice_servers: Sequence[RTCIceServer] = ()
    #: PEM file of a CA to trust for an HTTPS server with a private certificate. (system CAs)
    ca: Optional[str] = None
    #: Check coordinates are finite before sending (when the server refuses NaN). (True)
    check_finite: bool = True


@dataclass(frozen=True)
class Receipt:
    """The server's receipt of one frame (``ok`` is always true when returned by ``send``)."""

    seq: int
    ok: bool
    points: int
    received_at: float
    session: str
    stream: str
    #: Seconds from the first byte handed to the channel to the receipt.
    latency: float
    code: Optional[str] = None
    message: Optional[str] = None


@dataclass
class Stats:
    """Counts of a client's life (all its sessions)."""

    frames_sent: int = 0
    frames_acked: int = 0
    frames_rejected: int = 0
    frames_lost: int = 0
    bytes_sent: int = 0
    reconnects: int = 0
    moves: int = 0
    peer_silent: int = 0
    sessions: List[str] = field(default_factory=list)
    rejections: Dict[str, int] = field(default_factory=dict)
    latencies: List[float] = field(default_factory=list)


@dataclass
class _Pending:
    seq: int
    points: int
    started: float
    future: "asyncio.Future[Receipt]"
    timer: Optional[asyncio.TimerHandle] = None


class _Connection:
    """One session: signaling, the channel, hello, receipts, heartbeats and the in-flight bound."""

    def __init__(self, base: str, options: Options, stats: Stats) -> None:
        self.base = base
        self.options = options
        self.stats = stats
        self.loop = asyncio.get_running_loop()
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=list(options.ice_servers)))
        self.channel = self.pc.createDataChannel("points", protocol="" if options.plain else PROTOCOL)
        self.hello: "asyncio.Future[Dict[str, Any]]" = self.loop.create_future()
        self.ended: "asyncio.Future[PointstreamError]" = self.loop.create_future()
        self.location: Optional[str] = None
        self.session = ""
        self.stream = ""
        self.recording: Optional[str] = None
        self.max_message = options.max_message_bytes
        self.max_in_flight = options.max_in_flight
        self.allow_non_finite = False
        #: Whether the server reads field tables (its hello's ``"fields": true``).
        self.fields = False
        self.moving = False
        self.pending: Dict[int, _Pending] = {}
        self.plain_seq = 0
        self._changed = asyncio.Event()
        self._last_message = time.monotonic()
        self._tasks: List["asyncio.Task[Any]"] = []
        self._closing: Optional["asyncio.Task[None]"] = None
        self.channel.bufferedAmountLowThreshold = 1 << 20
        self.channel.on("message", self._on_message)
        self.channel.on("close", lambda: self.end(ErrorCodes.CHANNEL_CLOSED, "the data channel closed"))
        self.channel.on("bufferedamountlow", self._changed.set)
        self.pc.on("connectionstatechange", self._on_state)

    async def open(self) -> None:
        """Signaling, ICE, DTLS, the channel and the hello, within ``connect_timeout``."""
        try:
            await asyncio.wait_for(self._open(), self.options.connect_timeout)
        except asyncio.TimeoutError:
            self.end(ErrorCodes.CONNECT_TIMEOUT, f"no hello within {self.options.connect_timeout} s")
        except PointstreamError as error:
            self.end(error.code, error.message, error.details)
        if self.ended.done():
            await self.close_peer()
            raise self.ended.result()

    async def _open(self) -> None:
        token = _host_addresses.set(self.options.host_addresses)
        try:
            await self.pc.setLocalDescription(await self.pc.createOffer())
        finally:
            _host_addresses.reset(token)
        self._hear_packets()
        answer, self.location = await self.loop.run_in_executor(
            None,
            http.post_offer,
            self.base,
            self.pc.localDescription.sdp,
            self.options.stream,
            self.options.token,
            self.options.connect_timeout,
            self.options.ca,
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("sdp"), str):
            raise PointstreamError(ErrorCodes.SIGNALING_REJECTED, "the server's answer has no SDP")
        remote = remote_max_message_size(answer["sdp"])
        self.max_message = remote if self.options.plain else min(remote, self.options.max_message_bytes)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        done, _ = await asyncio.wait([self.hello, self.ended], return_when=asyncio.FIRST_COMPLETED)
        if self.hello in done:
            self._started(self.hello.result())

    def _started(self, hello: Dict[str, Any]) -> None:
        self.session = str(hello.get("session", ""))
        self.stream = str(hello.get("stream", ""))
        self.recording = hello.get("recording")
        self.allow_non_finite = hello.get("allowNonFinite") is True
        self.fields = hello.get("fields") is True
        in_reassembly = hello.get("maxFramesInReassembly")
        if isinstance(in_reassembly, int) and in_reassembly > 0:
            self.max_in_flight = max(1, min(self.max_in_flight, in_reassembly))
        heartbeat = hello.get("heartbeatMs")
        if isinstance(heartbeat, (int, float)) and heartbeat > 0:
            self.channel.send(HEARTBEAT_REQUEST)
            self._tasks.append(self.loop.create_task(self._watch_liveness()))
        self.stats.sessions.append(self.session)

    def _hear_packets(self) -> None:
        """Counts every SCTP packet from the server as a sign of life, not only messages.

        aiortc is CPU-bound: while it sends, its UDP socket can overflow and drop the server's
        packets, and a dropped heartbeat comes again only after an SCTP retransmission timeout
        (1 s, doubling), so messages alone fell silent for seconds from a live server. Its SACKs
        keep arriving. aiortc has no public hook for this: the transport's `_handle_data` (aiortc
        1.4, Debian 12) is wrapped when it exists, else only messages count.
        """
        sctp = self.pc.sctp
        handle = getattr(sctp, "_handle_data", None)
        if sctp is None or handle is None:
            return

        async def heard(data: bytes) -> None:
            self._last_message = time.monotonic()
            await handle(data)

        sctp._handle_data = heard  # type: ignore[method-assign]

    async def _watch_liveness(self) -> None:
        timeout = self.options.liveness_timeout
        step = min(0.25, timeout / 4)
        while not self.ended.done():
            before = time.monotonic()
            await asyncio.sleep(step)
            # Time this loop could not run (a busy loop: aiortc is CPU-bound, a starved machine, a
            # blocking caller) is not silence from the server: its messages wait to be read.
            late = time.monotonic() - before - step
            if late > 0.02:
                self._last_message += late
            if time.monotonic() - self._last_message > timeout:
                self.end(ErrorCodes.PEER_SILENT, f"nothing from the server for {timeout} s")

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self.end(ErrorCodes.CONNECTION_FAILED, f"the connection {self.pc.connectionState}")

    def _on_message(self, message: Any) -> None:
        self._last_message = time.monotonic()
        if not isinstance(message, str):
            return
        try:
            control = json.loads(message)
            kind = control["type"]
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable control message from the server (%s): %.200s", ErrorCodes.CONTROL_INVALID, message)
            return
        if kind == "hello" and not self.hello.done():
            self.hello.set_result(control)
        elif kind == "receipt":
            self._on_receipt(control)
        elif kind == "closing":
            code = str(control.get("code", ErrorCodes.SESSION_CLOSED))
            reason = str(control.get("message", "the server closed the session"))
            if code == ErrorCodes.SESSION_MOVED:
                self.moving = True
                self._changed.set()
                self._tasks.append(self.loop.create_task(self._move_away(reason)))
            else:
                self.end(code, reason)

    def _on_receipt(self, receipt: Dict[str, Any]) -> None:
        seq = receipt.get("seq")
        pending = self.pending.pop(seq, None) if isinstance(seq, int) else None
        if pending is None:
            return
        if pending.timer is not None:
            pending.timer.cancel()
        self._changed.set()
        ok = receipt.get("ok") is True
        result = Receipt(
            seq=pending.seq,
            ok=ok,
            points=int(receipt.get("points", pending.points) or 0),
            received_at=float(receipt.get("receivedAt", 0) or 0),
            session=self.session,
            stream=self.stream,
            latency=time.monotonic() - pending.started,
            code=receipt.get("code"),
            message=receipt.get("message"),
        )
        if pending.future.done():
            return
        if ok:
            self.stats.frames_acked += 1
            self.stats.latencies.append(result.latency)
            pending.future.set_result(result)
        else:
            code = str(result.code or ErrorCodes.FRAME_REJECTED)
            self.stats.frames_rejected += 1
            self.stats.rejections[code] = self.stats.rejections.get(code, 0) + 1
            pending.future.set_exception(
                PointstreamError(code, str(result.message or "frame rejected"), {"seq": pending.seq})
            )

    async def _move_away(self, reason: str) -> None:
        """``PS_ERR_SESSION_MOVED``: no new frame; receipts of those in flight for at most 3 s; then end."""
        deadline = time.monotonic() + 3.0
        while self.pending and time.monotonic() < deadline and not self.ended.done():
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.01, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                pass
        self.stats.moves += 1
        self.end(ErrorCodes.SESSION_MOVED, reason)

    def end(self, code: str, message: str, details: Optional[Dict[str, Any]] = None) -> None:
        """Ends the connection once: frames still in flight are reported lost."""
        if self.ended.done():
            return
        if code == ErrorCodes.PEER_SILENT:
            self.stats.peer_silent += 1
        error = PointstreamError(code, message, details)
        self.ended.set_result(error)
        for pending in self.pending.values():
            if pending.timer is not None:
                pending.timer.cancel()
            if not pending.future.done():
                self.stats.frames_lost += 1
                pending.future.set_exception(
                    PointstreamError(
                        ErrorCodes.FRAME_LOST,
                        f"frame {pending.seq} had no receipt when the connection ended: {message}",
                        {"seq": pending.seq, "cause": code},
                    )
                )
        self.pending.clear()
        self._changed.set()
        self._closing = self.loop.create_task(self.close_peer())

    def _lost(self, pending: _Pending) -> None:
        if self.pending.pop(pending.seq, None) is None or pending.future.done():
            return
        self.stats.frames_lost += 1
        pending.future.set_exception(
            PointstreamError(
                ErrorCodes.FRAME_LOST,
                f"frame {pending.seq} had no receipt within {self.options.receipt_timeout} s",
                {"seq": pending.seq},
            )
        )
        self._changed.set()

    def refusal(self) -> Optional[PointstreamError]:
        """Why a new frame cannot go on this connection now, if so."""
        if self.ended.done():
            return self.ended.result()
        if self.moving:
            return PointstreamError(ErrorCodes.SESSION_MOVED, "the server is moving this session")
        return None

    async def submit(self, payload: Payload, seq: int, capture_time: float) -> "asyncio.Future[Receipt]":
        """Sends one frame once fewer than ``max_in_flight`` are unacknowledged; its receipt's future.

        Raises (nothing sent) when the connection ended or is moving away.
        """
        while True:
            refused = self.refusal()
            if refused is not None:
                raise refused
            if len(self.pending) < self.max_in_flight:
                break
            self._changed.clear()
            await self._changed.wait()
        if self.options.plain and len(payload.data) > self.max_message:
            raise PointstreamError(
                ErrorCodes.FRAME_TOO_LARGE,
                f"a plain-form frame of {len(payload.data)} bytes is over the server's message limit of "
                f"{self.max_message} (serve --max-plain-bytes), or use the chunked form",
                {"bytes": len(payload.data), "limit": self.max_message},
            )
        if self.options.plain:
            seq = self.plain_seq
            self.plain_seq += 1
        pending = _Pending(seq, payload.point_count, time.monotonic(), self.loop.create_future())
        # Retrieved here so that a frame nobody waits for does not log "exception never retrieved".
        pending.future.add_done_callback(lambda f: f.cancelled() or f.exception())
        # A frame started is finished even if the session moves meanwhile (docs/protocol.md).
        self.pending[seq] = pending
        self.stats.frames_sent += 1
        messages = [payload.data] if self.options.plain else chunks(payload, seq, capture_time, self.max_message)
        for message in messages:
            await self._drain()
            if self.ended.done():
                break
            self.channel.send(message)
            self.stats.bytes_sent += len(message)
        if seq in self.pending:
            pending.timer = self.loop.call_later(self.options.receipt_timeout, self._lost, pending)
        return pending.future

    async def _drain(self) -> None:
        """Waits while the channel holds more than 4 MiB (resumes on ``bufferedamountlow``)."""
        while self.channel.bufferedAmount > (4 << 20) and not self.ended.done():
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), 0.5)
            except asyncio.TimeoutError:
                pass

    async def close(self, wait: float) -> None:
        """Waits up to ``wait`` s for receipts, then ends the session (``DELETE``) and the peer."""
        deadline = time.monotonic() + wait
        while self.pending and not self.ended.done() and time.monotonic() < deadline:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.01, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                pass
        if not self.ended.done() and self.location is not None:
            await self.loop.run_in_executor(None, http.delete, self.base, self.location, self.options.token, self.options.ca)
            # The server closes the channel after a DELETE: wait for it (1.5 s), as the Node client does.
            try:
                await asyncio.wait_for(asyncio.shield(self.ended), 1.5)
            except asyncio.TimeoutError:
                pass
        self.end(ErrorCodes.SESSION_CLOSED, "closed by the client")
        await self.close_peer()

    async def close_peer(self) -> None:
        """Closes the peer connection and stops the helper tasks."""
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current and not task.done():
                task.cancel()
        await self.pc.close()


class AsyncClient:
    """A stream's sender across sessions. Make it with :func:`connect`; use as ``async with``."""

    def __init__(self, url: str, options: Options) -> None:
        self.base = http.base_url(url)
        self.options = options
        self.stats = Stats()
        self._connection: Optional[_Connection] = None
        self._next_seq = 0
        self._closed = False
        self._lock = asyncio.Lock()

    @property
    def session(self) -> str:
        """The current (or last) session id."""
        return self._connection.session if self._connection else ""

    @property
    def stream(self) -> str:
        """The stream the frames feed (the server's name for it)."""
        return self._connection.stream if self._connection else (self.options.stream or "")

    @property
    def recording(self) -> Optional[str]:
        """Where the server records the current session, when it records."""
        return self._connection.recording if self._connection else None

    async def _connect(self) -> _Connection:
        connection = _Connection(self.base, self.options, self.stats)
        await connection.open()
        # Reconnects keep the stream the server named (a client that named none got one).
        if self.options.stream is None and connection.stream:
            self.options = _replace(self.options, stream=connection.stream)
        self._connection = connection
        return connection

    async def _live_connection(self) -> _Connection:
        """The open connection, after reconnecting when the last one ended for a reason that allows it."""
        async with self._lock:
            connection = self._connection
            if connection is None:
                return await self._connect()
            if connection.moving and not connection.ended.done():
                await asyncio.shield(connection.ended)  # moving: its frames in flight finish first
            refused = connection.refusal()
            if refused is None:
                return connection
            if self._closed:
                raise PointstreamError(ErrorCodes.SESSION_CLOSED, "the client is closed")
            if not self.options.reconnect or refused.code not in RECONNECTABLE:
                raise refused
            return await self._reconnect(refused)

    async def _reconnect(self, why: PointstreamError) -> _Connection:
        last = why
        for attempt in range(1, self.options.max_reconnects + 1):
            if attempt > 1 or why.code not in IMMEDIATE:
                retry_after = last.details.get("retryAfter")
                delay = min(float(retry_after), 30.0) if isinstance(retry_after, int) else min(8.0, 0.5 * 2 ** (attempt - 1))
                await asyncio.sleep(delay)
            try:
                connection = await self._connect()
                self.stats.reconnects += 1
                log.info("reconnected after %s: session %s", why.code, connection.session)
                return connection
            except PointstreamError as error:
                last = error
                retryable = error.code in RECONNECTABLE and (
                    error.code != ErrorCodes.SIGNALING_REJECTED or error.details.get("status") in (429, 503)
                )
                if not retryable:
                    raise
        raise last

    async def submit(
        self, points: Any, capture_time: Optional[float] = None, fields: Optional[Mapping[str, Any]] = None
    ) -> "asyncio.Future[Receipt]":
        """Hands a frame to the channel (waiting while ``max_in_flight`` frames are unacknowledged)
        and returns the future of its :class:`Receipt`; the future raises :class:`PointstreamError`
        with the server's code when the frame is rejected, ``PS_ERR_FRAME_LOST`` when it is lost.

        ``points``: an ``(N, 3)`` array, or a structured array with fields ``x``, ``y``, ``z`` and
        per-point fields (``intensity``...); ``fields``: name -> ``(N,)`` array with an ``(N, 3)``
        array. Raises ``PS_ERR_FIELDS_INVALID`` (a field's name or type) and
        ``PS_ERR_FIELDS_UNSUPPORTED`` (the server does not read fields) before sending anything."""
        frame = as_frame(points, fields)
        payload = Payload.of_frame(frame, self.options.plain)
        when = time.time() * 1000.0 if capture_time is None else float(capture_time)
        while True:
            connection = await self._live_connection()
            if self.options.check_finite and not connection.allow_non_finite and not np.isfinite(frame.points).all():
                raise PointstreamError(
                    ErrorCodes.FRAME_NON_FINITE, "a coordinate is NaN or infinite and the server refuses them"
                )
            if payload.field_count and not connection.fields:
                raise PointstreamError(
                    ErrorCodes.FIELDS_UNSUPPORTED,
                    "this server does not read per-point fields (its hello lacks \"fields\": true): "
                    "send x, y, z only, or upgrade the server",
                )
            try:
                future = await connection.submit(payload, self._next_seq, when)
            except PointstreamError as error:
                if error.code == ErrorCodes.FRAME_TOO_LARGE:
                    raise
                # Nothing was sent: the next connection takes the frame (unless the ending is final).
                continue
            self._next_seq += 1
            return future

    async def send(
        self, points: Any, capture_time: Optional[float] = None, fields: Optional[Mapping[str, Any]] = None
    ) -> Receipt:
        """Sends a frame (see :meth:`submit`) and returns its :class:`Receipt` once the server
        verified it; raises :class:`PointstreamError` with the server's code (``PS_ERR_FRAME_*``...) otherwise."""
        return await (await self.submit(points, capture_time, fields))

    async def close(self, wait: Optional[float] = None) -> None:
        """Waits for the receipts in flight (``receipt_timeout``), ends the session and the peer."""
        self._closed = True
        if self._connection is not None:
            await self._connection.close(self.options.receipt_timeout if wait is None else wait)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _replace(options: Options, **changes: Any) -> Options:
    values = {name: getattr(options, name) for name in Options.__dataclass_fields__}
    values.update(changes)
    return Options(**values)


def options_of(**kwargs: Any) -> Options:
    """:class:`Options` from keyword arguments, refusing unknown ones (``PS_ERR_INVALID_OPTION``)."""
    unknown = sorted(set(kwargs) - set(Options.__dataclass_fields__))
    if unknown:
        raise PointstreamError(ErrorCodes.INVALID_OPTION, f"unknown option(s) {', '.join(unknown)}")
    options = Options(**kwargs)
    if options.max_in_flight < 1 or options.max_message_bytes < 1024:
        raise PointstreamError(ErrorCodes.INVALID_OPTION, "max_in_flight must be >= 1 and max_message_bytes >= 1024")
    return options


async def connect(url: str, token: Optional[str] = None, stream: Optional[str] = None, **options: Any) -> AsyncClient:
    """Connects to a pointstream server (``http(s)://host:port``, or its ``/offer`` URL) and
    returns an :class:`AsyncClient` whose session is open (its ``hello`` arrived).

    Options are the fields of :class:`Options` (``plain``, ``host_addresses``, ``ca``...).
    Raises :class:`PointstreamError`: ``PS_ERR_UNAUTHORIZED``, ``PS_ERR_SIGNALING_*``,
    ``PS_ERR_CONNECT_TIMEOUT``...
    """
    client = AsyncClient(url, options_of(token=token, stream=stream, **options))
    async with client._lock:
        await client._connect()
    return client


__all__ = ["AsyncClient", "Options", "Receipt", "Stats", "connect"]
