import { isIP } from 'node:net';
import { invalidOption } from '../errors.js';
import type { RtcOptions } from '../rtc/peer.js';
import { DEFAULT_MAX_SDP_BYTES } from '../signaling/sdp.js';
import { withDefaults } from '../util/options.js';
import { DEFAULT_REASSEMBLY_LIMITS } from '../wire/reassembler.js';
import type { ServerLimits, ServerOptions } from './types.js';

/** What a session must accept whatever else is set: the chunks of the client's default size. */
export const CHUNKED_MESSAGE_BYTES = 256 * 1024;

export const DEFAULT_SERVER_LIMITS: ServerLimits = Object.freeze({
  ...DEFAULT_REASSEMBLY_LIMITS,
  maxSessions: 64,
  maxSdpBytes: DEFAULT_MAX_SDP_BYTES,
  connectTimeoutMs: 15_000,
  idleTimeoutMs: 30_000,
  maxConsecutiveRejections: 16,
  maxTotalReassemblyBytes: 1024 * 1024 * 1024,
  decodeMsPerSecond: 1000,
  maxFramesInDecode: 4,
  maxSessionsPerClient: 8,
  maxSessionReassemblyBytes:
    DEFAULT_REASSEMBLY_LIMITS.maxFramesInReassembly * DEFAULT_REASSEMBLY_LIMITS.maxFrameBytes,
  maxClientReassemblyBytes:
    2 * DEFAULT_REASSEMBLY_LIMITS.maxFramesInReassembly * DEFAULT_REASSEMBLY_LIMITS.maxFrameBytes,
  maxChannelsPerSession: 4,
  frameStallMs: 10_000,
  maxPlainMessageBytes: CHUNKED_MESSAGE_BYTES,
  maxOffersPerMinute: 60,
  streamHoldMs: 300_000,
  requestTimeoutMs: 10_000,
  maxConnections: 1024,
  maxConnectionsPerAddress: 64,
  iceTimeoutMs: 5_000,
  maxHalfOpenPerPrefix: 16,
  heartbeatMs: 500,
  moveTimeoutMs: 5_000,
});

/**
 * The server's limits: `limits` over the defaults (an `undefined` one keeps its default), each checked (a positive integer, or a boolean
 * for `allowNonFinite`; an unknown name throws). The per-session and per-client reassembly shares
 * follow the frame limits unless set.
 */
export function resolveLimits(limits: Partial<ServerLimits> | undefined): ServerLimits {
  const frames =
    (limits?.maxFramesInReassembly ?? DEFAULT_SERVER_LIMITS.maxFramesInReassembly) *
    (limits?.maxFrameBytes ?? DEFAULT_SERVER_LIMITS.maxFrameBytes);
  const session = limits?.maxSessionReassemblyBytes ?? frames;
  const merged = withDefaults<ServerLimits>(
    {
      ...DEFAULT_SERVER_LIMITS,
      maxSessionReassemblyBytes: session,
      maxClientReassemblyBytes: 2 * session,
    },
    limits,
  );
  for (const key of Object.keys(merged) as (keyof ServerLimits)[]) {
    const value = merged[key];
    if (key === 'allowNonFinite') {
      if (typeof value !== 'boolean')
        throw invalidOption('limits.allowNonFinite', 'a boolean', value);
    } else if (!(key in DEFAULT_SERVER_LIMITS)) {
      throw invalidOption(`limits.${key}`, 'a known limit', key);
    } else if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw invalidOption(`limits.${key}`, 'an integer >= 1', value);
    }
  }
  return Object.freeze(merged);
}

/** The WebRTC settings of sessions: `options.rtc`, with what the server's host and limits imply. */
export function sessionRtcOptions(options: ServerOptions, limits: ServerLimits): RtcOptions {
  const host = options.host ?? '127.0.0.1';
  // WebRTC binds where HTTP listens unless told otherwise, so that a loopback server stays loopback.
  const bindAddress =
    options.rtc?.bindAddress ??
    (isIP(host) && host !== '0.0.0.0' && host !== '::' ? host : undefined);
  return {
    ...options.rtc,
    ...(bindAddress === undefined ? {} : { bindAddress }),
    // Native stacks buffer a message up to this size before JavaScript sees it, outside any
    // budget: advertise only what a session needs (issue 14: 64 MiB let one session hold 490 MB).
    maxMessageSize:
      options.rtc?.maxMessageSize ?? Math.max(limits.maxPlainMessageBytes, CHUNKED_MESSAGE_BYTES),
  };
}

/** Port for HTTP signaling when none is given (`ServerOptions.port`; the CLI's too). */
export const DEFAULT_PORT = 8080;

/** Where to listen: `options.host` (`127.0.0.1`) and `options.port` (8080), checked. */
export function listenAddressOf(options: ServerOptions): { host: string; port: number } {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? DEFAULT_PORT;
  if (typeof host !== 'string' || host.length === 0)
    throw invalidOption('host', 'a non-empty string', host);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw invalidOption('port', 'an integer in [0, 65535]', port);
  return { host, port };
}
