import type { RtcOptions } from '../rtc/peer.js';
import type { Logger } from '../util/logger.js';
import type { PointEncodingName } from '../wire/encodings/index.js';

/** Options of {@link connect}. Only `signalingUrl` is required; defaults are in parentheses. */
export interface ClientOptions {
  /** The server's offer endpoint, e.g. `https://server:8080/offer`. */
  readonly signalingUrl: string;
  /**
   * The stream this connection feeds: one name per sensor, kept across reconnects, so that its
   * viewers follow it and its recordings land in one folder (1-64 of `A-Z a-z 0-9 . _ -`; with auth
   * on, a name belongs to the token that used it first). Connecting again with the same name
   * replaces the stream's old session. (none: the server names the stream after the session)
   */
  readonly stream?: string;
  /** Bearer token for a server with auth on. */
  readonly token?: string;
  /** PEM CA certificate(s) to trust for an HTTPS server with a private (e.g. self-signed) certificate. */
  readonly ca?: string | Buffer;
  /** Sequence number of the first frame, e.g. to continue numbering after a reconnect. (0) */
  readonly firstSeq?: number;
  /**
   * WebRTC settings (`bindAddress: '127.0.0.1'` keeps a test on loopback). With neither
   * `bindAddress` nor `mtu` set, a server on this machine (the signaling host is loopback or one of
   * its addresses) gets `bindAddress` = that address and `mtu` 4096, which carries about twice the
   * data per CPU second; any other server gets all interfaces and MTU 1280, safe on any network.
   * Setting either turns this off.
   */
  readonly rtc?: RtcOptions;
  /** Time for signaling plus ICE/DTLS until the channel is open. (15000 ms) */
  readonly connectTimeoutMs?: number;
  /** Largest chunk message, header included; the server's advertised maximum caps it. (262144) */
  readonly maxMessageBytes?: number;
  /** Frames sent but not yet acknowledged before `send()` waits for a receipt. (2) */
  readonly maxFramesInFlight?: number;
  /** `send()` pauses while the channel buffers more than this many bytes. (4 MiB) */
  readonly highWaterMark?: number;
  /** ...and resumes when the buffer drains below this. (1 MiB) */
  readonly lowWaterMark?: number;
  /** How long to wait for a frame's receipt before counting it lost. (10000 ms) */
  readonly receiptTimeoutMs?: number;
  /**
   * With a server that announces heartbeats (`heartbeatMs` in its hello), this long without any
   * message from it ends the connection with `PS_ERR_PEER_SILENT` (frames in flight are reported
   * lost): a dead node is noticed in seconds, not at the receipt timeout. (2500 ms)
   */
  readonly livenessTimeoutMs?: number;
  /**
   * How points travel (docs/encodings.md): `raw` float32 (lossless), `q16` (16-bit per axis within
   * the frame's bounds, 6 bytes/point) or `qrice` (quantized to `precision`, delta + Rice coded:
   * 1.6 bytes/point on a LiDAR scan at 1 mm). The server decodes any of them. (`raw`)
   */
  readonly encoding?: PointEncodingName;
  /** Largest error per coordinate for `qrice`, in metres. (0.001) */
  readonly precision?: number;
  /**
   * Largest error per float field of `q16`/`qrice` frames, by field name, in the field's units
   * (`{ intensity: 0.01, time: 1e-6 }`); integer fields and fields it does not name travel
   * losslessly, and `raw` frames carry every field as it is. (none: lossless)
   */
  readonly fieldPrecision?: Readonly<Record<string, number>>;
  /** Cancels connecting. */
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
}

export type { FrameReceipt, SendOptions, SentFrame } from '../sender/types.js';
