import type { BusOptions, BusStats } from '../bus/publisher.js';
import type { PreviewStats } from '../cluster/previews.js';
import type { ErrorCode, PointstreamError } from '../errors.js';
import type { RtcOptions } from '../rtc/peer.js';
import type { Logger } from '../util/logger.js';
import type { PointEncodingName } from '../wire/encodings/index.js';
import type { FieldTable, PointFields } from '../wire/fields.js';
import type { ReassemblyLimits } from '../wire/reassembler.js';

/** A verified frame, as consumers of the server receive it. */
export interface ReceivedFrame {
  readonly sessionId: string;
  /** The stream the session feeds (docs/protocol.md, "Streams"): the same across reconnects. */
  readonly stream: string;
  /** Sender's sequence number (pointstream/1), or the server's count of the session's frames (plain form). */
  readonly seq: number;
  readonly pointCount: number;
  /** x, y, z interleaved, N x 3 little-endian float32: a view over the received bytes, not a copy. */
  readonly points: Float32Array;
  /** `pointstream/1` frames carry a complete `.npy` file or encoded points; plain frames their message bytes. */
  readonly form: 'chunked' | 'plain-npy' | 'plain-raw';
  /** How the points travelled (docs/encodings.md); `points` is float32 whatever it was. */
  readonly encoding: PointEncodingName;
  /**
   * The complete `.npy` file as received (`numpy.load` reads it as it is), sharing memory with
   * `points`; undefined for plain raw frames (`encodeNpyHeader([n, 3])` + the points make one)
   * and for encoded frames.
   */
  readonly npy: Uint8Array | undefined;
  /** The encoded payload as received (`q16`, `qrice`), to store or forward without re-encoding. */
  readonly encoded: Uint8Array | undefined;
  /**
   * Per-point fields by name, in the sender's order (docs/protocol.md, "Per-point fields");
   * {@link NO_FIELDS} when the frame has none. Raw columns are views into `payload`, valid as
   * long as `points` (`retain()` covers them); coded ones are decoded.
   */
  readonly fields: PointFields;
  /** The frame's field table (names, types, codecs, sizes); undefined without fields. */
  readonly fieldTable: FieldTable | undefined;
  /**
   * With fields: the whole payload in the protocol's layout (points part, then the columns), which
   * `crc32` covers; `npy`/`encoded` are its points part. Undefined without fields.
   */
  readonly payload: Uint8Array | undefined;
  /** Bytes of payload received for this frame. */
  readonly byteLength: number;
  /** Sender's capture time (ms since the Unix epoch, sender's clock); undefined in the plain form. */
  readonly captureTime: number | undefined;
  /** Server clock (ms since the Unix epoch) when the frame was verified. */
  readonly receivedAt: number;
  /** CRC-32 of the payload, verified; undefined in the plain form (it carries none). */
  readonly crc32: number | undefined;
  /** Milliseconds from the first chunk's arrival to verification (0 in the plain form). */
  readonly assemblyMs: number;
  /**
   * With `reuseFrameBuffers` on, `points`, `npy`, `encoded`, `payload` and raw `fields` are valid only until the `'frame'` listeners
   * return; `retain()` keeps them valid until the function it returns is called (once). Without
   * reuse it does nothing: the buffers are the frame's own.
   */
  retain(): () => void;
}

export interface FrameRejection {
  readonly sessionId: string;
  readonly seq: number | undefined;
  readonly error: PointstreamError;
}

export type SessionState = 'connecting' | 'connected' | 'closed';

/** What `GET /stats` and `server.stats()` report of one session. */
export interface SessionStats {
  readonly id: string;
  /** The stream this session feeds. */
  readonly stream: string;
  /** Where this session is recorded, when the server records. */
  readonly recording: string | undefined;
  readonly state: SessionState;
  readonly remoteAddress: string | undefined;
  readonly protocol: string | undefined;
  readonly createdAt: number;
  readonly framesReceived: number;
  readonly framesRejected: number;
  readonly bytesReceived: number;
  readonly pointsReceived: number;
  readonly lastFrameAt: number | undefined;
  /** Worker time its encoded frames took to decode, in ms. */
  readonly decodeMs: number;
  /** Frames refused `PS_ERR_DECODE_BUDGET` (decode time or queue over budget). */
  readonly framesOverBudget: number;
}

/** What `GET /stats` reports of one stream: its sessions' totals, and the live one. */
export interface StreamStats {
  readonly name: string;
  /** `live` with a session; `waiting` between sessions, until `streamHoldMs` has passed. */
  readonly state: 'live' | 'waiting';
  /** The live session, if any. */
  readonly session: string | undefined;
  /** Where the live (or last) session records, when the server records. */
  readonly recording: string | undefined;
  readonly createdAt: number;
  readonly sessionsOpened: number;
  readonly framesReceived: number;
  readonly framesRejected: number;
  readonly bytesReceived: number;
  readonly pointsReceived: number;
  readonly lastFrameAt: number | undefined;
}

export interface SessionEnd {
  readonly stats: SessionStats;
  /** Why it ended: a stable code (`PS_ERR_SESSION_CLOSED` for an orderly end). */
  readonly code: ErrorCode;
  readonly reason: string;
  /** Frames that were being reassembled when the session ended. */
  readonly framesLost: number;
  /**
   * Ended on purpose, after the client's last frame: the client closed (its channel, its peer
   * connection, or DELETE) or the server shut down. False for failures, lost connections and
   * timeouts (idle, connect), which the server logs as warnings.
   */
  readonly normal: boolean;
}

export interface ServerStats {
  readonly startedAt: number;
  readonly sessions: readonly SessionStats[];
  /** Streams, live or between sessions (with auth on, the asking token's). */
  readonly streams: readonly StreamStats[];
  readonly totals: {
    readonly sessionsOpened: number;
    readonly sessionsClosed: number;
    readonly framesReceived: number;
    readonly framesRejected: number;
    readonly bytesReceived: number;
    readonly pointsReceived: number;
  };
  /** Bytes held in reassembly by all sessions (capped by `maxTotalReassemblyBytes`). */
  readonly reassemblyBytes: number;
  /** Decoding of encoded frames on worker threads, and its abuse (`PS_ERR_DECODE_BUDGET`). */
  readonly decode: {
    readonly workers: number;
    /** Frames waiting for a worker or being decoded. */
    readonly queued: number;
    readonly framesDecoded: number;
    readonly decodeMs: number;
    readonly framesOverBudget: number;
    readonly sessionsClosedOverBudget: number;
  };
  /** Frame buffer reuse, when `reuseFrameBuffers` is on: buffers allocated, reused and idle. */
  readonly frameBuffers:
    { readonly allocated: number; readonly reused: number; readonly idleBytes: number } | undefined;
  /** The recording, when `record` is on. */
  readonly recording: RecorderStats | undefined;
  /** The bus, when `bus` is on: connected, frames published and failed, pending acks. */
  readonly bus: BusStats | undefined;
  /** The node in its cluster, when `bus` is on: its id, draining, bus health, last heartbeat. */
  readonly cluster: ClusterStats | undefined;
  /** Live browser viewers (with auth on, those of the asking token's sessions). */
  readonly viewers: readonly ViewerStats[];
  /** Previews across nodes (docs/bus.md, "Viewer previews"), with a bus only. */
  readonly viewerPreviews: PreviewStats | undefined;
  /** CPU seconds used by the server process since it started (user + system). */
  readonly cpuSeconds: number;
  readonly memory: {
    readonly rssBytes: number;
    readonly peakRssBytes: number;
    readonly heapUsedBytes: number;
  };
}

/** What `/stats` shows of the node's cluster membership (`cluster`, with a bus). */
export interface ClusterStats {
  readonly nodeId: string;
  readonly draining: boolean;
  readonly busHealthy: boolean;
  /** When the last heartbeat was written (ms since the Unix epoch). */
  readonly lastHeartbeatAt: number | undefined;
  readonly heartbeatsFailed: number;
  /** Signaling requests fronts forwarded here, and those refused (malformed, too many at once). */
  readonly forwardedRequests: number;
  readonly forwardedRefused: number;
}

/** Limits of the server beyond those of frame reassembly. */
export interface ServerLimits extends ReassemblyLimits {
  /** Most sessions at once; beyond it offers get `503` with `Retry-After`. Default 64. */
  readonly maxSessions: number;
  /** Largest signaling request body in bytes. Default 32 KiB. */
  readonly maxSdpBytes: number;
  /** Time for ICE and DTLS to bring the channel up after the answer. Default 15000 ms. */
  readonly connectTimeoutMs: number;
  /** A connected session that receives no frame bytes (binary message) for this long is closed. Default 30000 ms. */
  readonly idleTimeoutMs: number;
  /** Rejected frames in a row after which a session is closed. Default 16. */
  readonly maxConsecutiveRejections: number;
  /** Bytes all sessions together may hold in reassembly; beyond it frames get `PS_ERR_SERVER_MEMORY`. Default 1 GiB. */
  readonly maxTotalReassemblyBytes: number;
  /**
   * Worker time (ms) one session's encoded frames may take to decode per second, on average (a
   * bucket of one second's worth); beyond it frames get `PS_ERR_DECODE_BUDGET`. Default 1000.
   */
  readonly decodeMsPerSecond: number;
  /** Encoded frames one session may have waiting for or in decode; beyond it `PS_ERR_DECODE_BUDGET`. Default 4. */
  readonly maxFramesInDecode: number;
  /**
   * Bytes one session (all its channels) may hold in reassembly; beyond it its frames get
   * `PS_ERR_SERVER_MEMORY`. Default `maxFramesInReassembly x maxFrameBytes` (128 MiB).
   */
  readonly maxSessionReassemblyBytes: number;
  /**
   * Bytes one client (its token, or its address when there are no tokens) may hold in reassembly
   * over all its sessions. Default twice `maxSessionReassemblyBytes` (256 MiB).
   */
  readonly maxClientReassemblyBytes: number;
  /** Data channels one session may have open; more are closed with `PS_ERR_TOO_MANY_CHANNELS`. Default 4. */
  readonly maxChannelsPerSession: number;
  /**
   * A frame that receives no chunk for this long is rejected (`PS_ERR_FRAME_INCOMPLETE`) and its
   * memory released, at most half as long again later (checked every half period). Default 10000 ms.
   */
  readonly frameStallMs: number;
  /**
   * Largest message a session accepts (advertised as SDP `max-message-size`, never below the
   * 256 KiB chunks need): a plain-form frame must fit, and clients chunk up to it. The native
   * stack buffers up to this much per message outside any budget. Default 256 KiB.
   */
  readonly maxPlainMessageBytes: number;
  /** Sessions one client (one token, and one remote address) may hold at once; beyond it `429`. Default 8. */
  readonly maxSessionsPerClient: number;
  /** Offers one client (one token, and one remote address) may make per minute; beyond it `429`. Default 60. */
  readonly maxOffersPerMinute: number;
  /**
   * How long a stream keeps its name (and owner token), its viewers and its `/stats` entry after
   * its last session ended, so that a reconnecting sender finds them again. Default 300000 ms.
   */
  readonly streamHoldMs: number;
  /**
   * A whole HTTP request (headers and body) must arrive within this; an idle socket is closed after
   * it too. Default 10000 ms.
   */
  readonly requestTimeoutMs: number;
  /** Most HTTP sockets open at once; beyond it new ones are refused. Default 1024. */
  readonly maxConnections: number;
  /** Most HTTP sockets open at once from one address; beyond it new ones are closed. Default 64. */
  readonly maxConnectionsPerAddress: number;
  /** A session whose ICE has not connected this long after its offer is closed. Default 5000 ms. */
  readonly iceTimeoutMs: number;
  /** Sessions not yet connected that one network (IPv4 /24, IPv6 /48) may hold; beyond it `429`. Default 16. */
  readonly maxHalfOpenPerPrefix: number;
  /**
   * A session's channel that sent nothing else for this long sends `{"type":"heartbeat"}` (to
   * clients that asked for heartbeats), so that clients notice a dead server; announced in the
   * hello. Default 500 ms.
   */
  readonly heartbeatMs: number;
  /**
   * `Session.moveAway()` (draining) closes a session itself with `PS_ERR_SESSION_MOVED` when the
   * client has not closed it this long after being told to move. Default 5000 ms.
   */
  readonly moveTimeoutMs: number;
}

/** Options of {@link createServer}. Every field is optional; defaults are in parentheses. */
export interface ServerOptions {
  /** Interface for HTTP signaling. (`'127.0.0.1'`; the CLI defaults to `0.0.0.0`) */
  readonly host?: string;
  /** Port for HTTP signaling; 0 picks a free one. (8080) */
  readonly port?: number;
  /** WebRTC settings. `bindAddress` defaults to `host` when `host` is a specific address. */
  readonly rtc?: RtcOptions;
  readonly limits?: Partial<ServerLimits>;
  /** Serve signaling over HTTPS with this PEM certificate (chain) and key. (plain HTTP) */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /**
   * Bearer tokens, any of which grants access (one per client lets you revoke one). When set,
   * every endpoint but `/healthz` needs `Authorization: Bearer <token>`, and a session can only be
   * changed or ended with the token that created it. (no auth)
   */
  readonly tokens?: readonly string[];
  /**
   * Record every verified frame as `.npy` (`<dir>/<stream>/<UTC time>_<session>/<seq>.npy` and a
   * `manifest.jsonl` per session). Writing never holds up ingest. (off)
   */
  readonly record?: RecordOptions;
  /** Origins allowed to call signaling from a browser (CORS), e.g. `https://viewer.example`. (none) */
  readonly corsOrigins?: readonly string[];
  /**
   * Reuse frame buffers instead of allocating one per frame: less CPU and steadier memory (measured
   * in bench/), but a frame's `points` and `npy` are then only valid during the `'frame'`
   * listeners unless you call `frame.retain()`. The CLI's `serve` turns it on. (false)
   */
  readonly reuseFrameBuffers?: boolean;
  /** Live browser viewers (`POST /viewer/offer`) and their point budget. */
  readonly viewer?: ViewerOptions;
  /** Where the library logs (pino-compatible). (silent) */
  readonly logger?: Logger;
  /**
   * Publish every verified frame to NATS JetStream (docs/bus.md); a receipt is then `ok: true`
   * only once the bus has acknowledged the whole frame, else `ok: false` with
   * `PS_ERR_BUS_UNAVAILABLE`. `createServer` rejects when the bus cannot be reached. (off)
   */
  readonly bus?: BusOptions;
}

/** Events of a server; each carries one payload. */
export interface ServerEvents {
  /** A session was created for an offer. */
  session: SessionStats;
  /**
   * A frame arrived and was verified (and, with a bus, is on it). Listeners run before the
   * receipt is sent.
   */
  frame: ReceivedFrame;
  /** A frame was rejected (its sender gets a receipt with the same code). */
  frameRejected: FrameRejection;
  /** A session ended, for whatever reason. */
  sessionClosed: SessionEnd;
}

/** Options of a recording: where, and how much may wait for the disk. */
export interface RecordOptions {
  /**
   * Directory for recordings: `<dir>/<stream>/<UTC time>_<session>/<seq>.npy` plus a
   * `manifest.jsonl` beside them; session folders sort by start time.
   */
  readonly dir: string;
  /**
   * Bytes of frames that may wait for the disk, counted as held in memory (an encoded frame: its
   * payload and its decoded points); beyond it frames are not recorded (and counted). Default 256 MiB.
   */
  readonly maxQueuedBytes?: number;
}

export interface RecorderStats {
  readonly dir: string;
  readonly framesRecorded: number;
  /** Frames the disk could not take (queue full, disk full, no permission...). */
  readonly framesNotRecorded: number;
  readonly bytesWritten: number;
  /** Memory held by frames waiting for the disk (what `maxQueuedBytes` bounds). */
  readonly queuedBytes: number;
  readonly lastError: string | undefined;
}

/** Options of the live viewers a server feeds (`ServerOptions.viewer`); defaults in parentheses. */
export interface ViewerOptions {
  /** Most points sent per frame; larger frames are decimated with an even stride. (250000) */
  readonly maxPoints?: number;
  /** Most frames per second sent to one viewer. (10) */
  readonly maxFps?: number;
  /** Most viewers at once; beyond it `POST /viewer/offer` gets `503` with `Retry-After`. (16) */
  readonly maxViewers?: number;
  /** A viewer whose channel has not opened this long after its offer is closed. (15000 ms) */
  readonly connectTimeoutMs?: number;
  /** A viewer that leaves a frame unacknowledged this long is closed (a hung page). (30000 ms) */
  readonly ackTimeoutMs?: number;
  /** An open viewer sent no frame this long (its stream sends nothing) is closed. (60000 ms) */
  readonly idleTimeoutMs?: number;
  /** Most viewers one client (one token, and one remote address) may hold at once; beyond it `429`. (4) */
  readonly maxViewersPerClient?: number;
}

/** What one viewer reports (`ViewerHub.stats()`). */
export interface ViewerStats {
  readonly id: string;
  /** The stream watched: the viewer follows it from session to session. */
  readonly stream: string;
  /** The session of the last frame sent, if any. */
  readonly sessionId: string | undefined;
  readonly state: 'connecting' | 'open' | 'closed';
  readonly framesSent: number;
  readonly framesDropped: number;
  readonly bytesSent: number;
}
