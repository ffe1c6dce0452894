"""``python3 -m pointstream send``: the Node CLI's ``pointstream send`` for Python users, with its
main flags, its ``--json`` summary fields and its exit codes (README "Exit codes")."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import sys
import time
from typing import Any, Dict, List, NoReturn, Optional, Sequence

import numpy as np

from . import aio
from .errors import ErrorCodes, PointstreamError
from .wire import FIELD_TYPES, as_frame, as_points, npy_header

#: Exit codes, as the Node CLI's.
EXIT_OK = 0
EXIT_FRAMES_NOT_ACKED = 1
EXIT_USAGE = 2
EXIT_CONNECT_FAILED = 3
EXIT_UNAUTHORIZED = 4
EXIT_REFUSED = 5
EXIT_TLS = 6
EXIT_INTERRUPTED = 130


def exit_code_for(code: Optional[str], ok: bool) -> int:
    """The exit code for how a run ended (as ``pointstream send``)."""
    if ok:
        return EXIT_OK
    return {
        ErrorCodes.ABORTED: EXIT_INTERRUPTED,
        ErrorCodes.UNAUTHORIZED: EXIT_UNAUTHORIZED,
        ErrorCodes.SIGNALING_REJECTED: EXIT_REFUSED,
        ErrorCodes.SIGNALING_TLS: EXIT_TLS,
        ErrorCodes.SIGNALING_FAILED: EXIT_CONNECT_FAILED,
        ErrorCodes.CONNECT_TIMEOUT: EXIT_CONNECT_FAILED,
    }.get(code or "", EXIT_FRAMES_NOT_ACKED)


def usage_error(message: str) -> NoReturn:
    """A usage error: the message on stderr, exit 2."""
    sys.stderr.write(f"pointstream: {message}\nRun 'python3 -m pointstream send --help' for the options.\n")
    sys.exit(EXIT_USAGE)


def _positive(kind: type, minimum: float) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    """The command line (``send`` only)."""
    main = argparse.ArgumentParser(prog="python3 -m pointstream", description="pointstream for Python")
    commands = main.add_subparsers(dest="command", required=True)
    send = commands.add_parser("send", help="stream frames of points to a server")
    send.add_argument("--signaling", required=True, help="the server's URL, http(s)://HOST:PORT[/offer]")
    send.add_argument("--token", default=os.environ.get("POINTSTREAM_TOKEN"), help="bearer token (env POINTSTREAM_TOKEN)")
    send.add_argument("--token-file", help="file whose first non-comment line is the bearer token")
    send.add_argument("--stream", help="name of the stream, kept across reconnects (default: <host>-<pid>)")
    send.add_argument("--points", type=_positive(int, 1), default=1_000_000, help="points per frame (1000000)")
    send.add_argument("--rate", type=_positive(float, 0), default=4.0, help="frames per second, 0: as fast as possible (4)")
    group = send.add_mutually_exclusive_group()
    group.add_argument("--duration", type=_positive(float, 0), default=60.0, help="seconds to stream (60)")
    group.add_argument("--frames", type=_positive(int, 0), help="number of frames (overrides rate x duration)")
    send.add_argument(
        "--from",
        dest="source",
        help="send the frames of this .npy file ((N, 3) or (K, N, 3)), in a loop; a structured .npy "
        "(x, y, z and per-point fields) is one frame with its fields",
    )
    send.add_argument("--plain", action="store_true", help="the plain form: one message per frame (server: --max-plain-bytes)")
    send.add_argument("--max-in-flight", type=_positive(int, 1), default=2, help="unacknowledged frames before waiting (2)")
    send.add_argument("--chunk-bytes", type=_positive(int, 1024), default=262_144, help="largest chunk, capped by the server (262144)")
    send.add_argument("--connect-timeout", type=_positive(int, 1), default=15_000, help="ms to open the channel (15000)")
    send.add_argument("--liveness-timeout", type=_positive(int, 1), default=2_500, help="ms of server silence before reconnecting (2500)")
    send.add_argument("--no-reconnect", action="store_true", help="stop at the first connection failure")
    send.add_argument("--max-reconnects", type=_positive(int, 0), default=5, help="reconnect attempts per outage (5)")
    send.add_argument("--ca", help="PEM CA certificate to trust for an HTTPS server with a private certificate")
    send.add_argument("--rtc-bind", help="local address for ICE candidates, e.g. 127.0.0.1 (default: every interface)")
    send.add_argument("--seed", type=int, default=None, help="seed of the random points (default: random)")
    send.add_argument("--json", action="store_true", help="print the summary as one JSON line (last line of output)")
    return main


def read_token_file(path: str) -> str:
    """The first token of a token file (blank lines and # comments skipped)."""
    try:
        with open(path, encoding="utf-8") as file:
            for line in file:
                line = line.strip()
                if line and not line.startswith("#"):
                    return line
    except OSError as error:
        usage_error(f"--token-file: cannot read {path!r}: {error.strerror}")
    usage_error(f"--token-file: no token in {path!r}")


#: The protocol's field type names (docs/protocol.md, "Per-point fields"), by type id.
FIELD_TYPE_NAMES = {1: "f32", 2: "u8", 3: "u16", 4: "u32", 5: "f64", 6: "i8", 7: "i16", 8: "i32"}


def load_frames(path: str) -> List[np.ndarray]:
    """Frames of a ``.npy`` file: one ``(N, 3)`` frame, or ``(K, N, 3)`` K frames; a structured
    ``.npy`` (fields ``x``, ``y``, ``z`` and per-point fields, shape ``(N,)`` or organised
    ``(H, W)``) is one frame with its fields, checked here (``PS_ERR_FIELDS_INVALID``)."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise PointstreamError("PS_ERR_SOURCE_UNREADABLE", f"cannot read {path}: {error}") from error
    if array.dtype.names is not None:
        as_frame(array)
        return [array.reshape(-1)]
    if array.ndim == 3:
        return [as_points(frame) for frame in array]
    return [as_points(array)]


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``; 0 when empty (a summary never prints NaN)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


async def run_send(args: argparse.Namespace, stop: asyncio.Event) -> Dict[str, Any]:
    """Streams frames and returns the summary (the same fields as ``pointstream send --json``)."""
    stream = args.stream or f"{socket.gethostname().split('.')[0]}-{os.getpid()}"
    frames = load_frames(args.source) if args.source else None
    rng = np.random.default_rng(args.seed)
    points = frames[0].shape[0] if frames else args.points
    planned = args.frames if args.frames is not None else (
        max(1, int(round(args.rate * args.duration))) if args.rate > 0 else None
    )
    options = dict(
        token=args.token,
        stream=stream,
        plain=args.plain,
        max_in_flight=args.max_in_flight,
        max_message_bytes=args.chunk_bytes,
        connect_timeout=args.connect_timeout / 1000,
        liveness_timeout=args.liveness_timeout / 1000,
        reconnect=not args.no_reconnect,
        max_reconnects=args.max_reconnects,
        host_addresses=[args.rtc_bind] if args.rtc_bind else None,
        ca=args.ca,
    )
    cpu0 = time.process_time()
    client = await aio.connect(args.signaling, **options)
    started = time.monotonic()
    receipts: List["asyncio.Future[aio.Receipt]"] = []
    late = 0
    error: Optional[PointstreamError] = None
    index = 0
    try:
        while not stop.is_set():
            if planned is not None and index >= planned:
                break
            if planned is None and time.monotonic() - started >= args.duration:
                break
            if args.rate > 0:
                due = started + index / args.rate
                wait = due - time.monotonic()
                if wait > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), wait)
                        break
                    except asyncio.TimeoutError:
                        pass
                elif -wait > 0.5 / args.rate:
                    late += 1
            frame = frames[index % len(frames)] if frames else (rng.standard_normal((points, 3), dtype=np.float32) * 50)
            receipts.append(await client.submit(frame))
            index += 1
    except PointstreamError as failure:
        error = failure
    await client.close()
    seconds = max(1e-9, time.monotonic() - started)
    await asyncio.gather(*receipts, return_exceptions=True)
    stats = client.stats
    if error is None and stop.is_set():
        error = PointstreamError(ErrorCodes.ABORTED, "interrupted")
    planned_count = planned if planned is not None else index
    not_sent = max(0, planned_count - stats.frames_sent)
    ok = error is None and stats.frames_acked == planned_count
    if error is not None:
        code: Optional[str] = error.code
        reason = error.message
    elif stats.frames_rejected:
        code, reason = ErrorCodes.FRAME_REJECTED, f"{stats.frames_rejected} frames rejected"
    elif stats.frames_lost:
        code, reason = ErrorCodes.FRAME_LOST, f"{stats.frames_lost} frames lost"
    else:
        code, reason = None, f"all {stats.frames_acked} frames acknowledged"
    latencies = [latency * 1000 for latency in stats.latencies]
    field_list = list(as_frame(frames[0]).fields) if frames else []
    field_bytes = sum(-(-column.nbytes // 8) * 8 for _, column in field_list)
    bytes_per_point = (len(npy_header(points)) + 12 * points + field_bytes) / points if points else 0
    return {
        "ok": ok,
        "reason": reason,
        "stream": client.stream or stream,
        "session": client.session or None,
        "recording": client.recording,
        "sessions": stats.sessions,
        "form": "plain" if args.plain else "chunked",
        "framesPlanned": planned_count,
        "framesSent": stats.frames_sent,
        "framesAcked": stats.frames_acked,
        "framesRejected": stats.frames_rejected,
        "framesLost": stats.frames_lost,
        "framesSkipped": 0,
        "framesNotSent": not_sent,
        "reconnects": stats.reconnects,
        "moves": stats.moves,
        "peerSilent": stats.peer_silent,
        "pointsPerFrame": points,
        "encoding": "raw",
        "bytesPerPoint": round(bytes_per_point, 4),
        "maxError": 0,
        "bytesSent": stats.bytes_sent,
        "seconds": round(seconds, 3),
        "achievedHz": round(stats.frames_acked / seconds, 3),
        "mbPerSec": round(stats.bytes_sent / seconds / 1e6, 3),
        "latencyMs": {
            "p50": round(percentile(latencies, 50), 1),
            "p99": round(percentile(latencies, 99), 1),
            "max": round(max(latencies, default=0.0), 1),
        },
        "lateFrames": late,
        "chunkBytes": args.chunk_bytes,
        "cpuSeconds": round(time.process_time() - cpu0, 3),
        "peakRssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "rejections": stats.rejections,
        "fields": [
            {"name": name, "type": FIELD_TYPE_NAMES[FIELD_TYPES[column.dtype.str]]} for name, column in field_list
        ],
        "errorCode": code if not ok else None,
    }


def format_summary(summary: Dict[str, Any]) -> str:
    """The summary for people (the JSON one has every field)."""
    return "\n".join(
        [
            f"{'OK' if summary['ok'] else 'FAILED'}: {summary['reason']}",
            f"  stream     {summary['stream']}, session {summary['session'] or '-'}"
            + (f", recorded by the server in {summary['recording']}" if summary["recording"] else ""),
            f"  frames     sent {summary['framesSent']}, acknowledged {summary['framesAcked']}, rejected "
            f"{summary['framesRejected']}, lost {summary['framesLost']}, not sent {summary['framesNotSent']} "
            f"(planned {summary['framesPlanned']}), {summary['reconnects']} reconnects",
            f"  rate       {summary['achievedHz']} frames/s achieved, {summary['mbPerSec']} MB/s, "
            f"{summary['pointsPerFrame']:,} points/frame, {summary['lateFrames']} late ({summary['form']} form)",
            f"  latency    p50 {summary['latencyMs']['p50']} ms, p99 {summary['latencyMs']['p99']} ms",
            f"  fields     {', '.join(f['name'] + ' ' + f['type'] for f in summary['fields']) or 'none'}",
            f"  client     {summary['cpuSeconds']} CPU s over {summary['seconds']} s",
        ]
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line; returns the exit code."""
    args = parser().parse_args(argv)
    if args.token_file:
        args.token = read_token_file(args.token_file)
    if args.source and not os.path.exists(args.source):
        usage_error(f"--from: cannot read {args.source!r}")
    stop_flag: Dict[str, Any] = {}

    async def run() -> Dict[str, Any]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        stop_flag["stop"] = lambda: loop.call_soon_threadsafe(stop.set)
        return await run_send(args, stop)

    def interrupted(*_: object) -> None:
        if "stopping" in stop_flag:
            sys.exit(EXIT_INTERRUPTED)
        stop_flag["stopping"] = True
        if "stop" in stop_flag:
            stop_flag["stop"]()

    signal.signal(signal.SIGINT, interrupted)
    try:
        summary = asyncio.run(run())
    except PointstreamError as error:
        if error.code.startswith(("PS_ERR_SOURCE_", "PS_ERR_NPY_")) or error.code in (
            ErrorCodes.INVALID_FRAME,
            ErrorCodes.FIELDS_INVALID,
        ):
            if args.json:
                print(json.dumps({"ok": False, "errorCode": error.code, "reason": error.message}))
            usage_error(f"--from: {error.message} ({error.code})")
        if args.json:
            print(json.dumps({"ok": False, "errorCode": error.code, "reason": error.message}))
        sys.stderr.write(f"pointstream: cannot stream: {error.message} ({error.code})\n")
        code = exit_code_for(error.code, False)
        return EXIT_CONNECT_FAILED if code == EXIT_FRAMES_NOT_ACKED else code
    print(json.dumps(summary) if args.json else format_summary(summary))
    return exit_code_for(summary["errorCode"], summary["ok"])
