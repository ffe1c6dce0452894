/**
 * The JetStream stream that holds frames: its settings, and the check of a stream that exists
 * already. Pure (no connection): the publisher creates the stream with {@link busStreamConfig} or
 * refuses an existing one that {@link streamMismatches} finds unusable; it never changes one.
 */
import { invalidOption } from '../errors.js';
import { BUS_CHUNK_BYTES, DEFAULT_BUS_STREAM, FRAME_SUBJECT_PREFIX, isNodeId } from './layout.js';

/** Options of the bus publisher (`createServer({ bus })`, `serve --bus`); defaults in parentheses. */
export interface BusOptions {
  /** NATS server URL, e.g. `nats://127.0.0.1:4222`; several separated by commas (a cluster). */
  readonly url: string;
  /** This node's id in every chunk's `Ps-Node` (`[A-Za-z0-9_-]{1,64}`). (the host name, sanitised) */
  readonly nodeId?: string;
  /** The JetStream stream frames go to. (`PS_FRAMES`) */
  readonly streamName?: string;
  /** How long the stream keeps a message, when this node creates it. (60000 ms) */
  readonly maxAgeMs?: number;
  /** Bytes the stream keeps at most, when this node creates it. (4 GiB) */
  readonly maxBytes?: number;
  /**
   * What the stream does when full: `old` drops the oldest messages (ingest never waits for a
   * consumer; a consumer that falls behind counts what it missed), `new` refuses new ones (their
   * frames' receipts fail with `PS_ERR_BUS_UNAVAILABLE`). (`old`)
   */
  readonly discard?: 'old' | 'new';
  /** Copies of each message in a NATS cluster (1-5; 3 survives the loss of a server). (1) */
  readonly replicas?: number;
  /** How long a chunk's PubAck may take before its frame's receipt fails. (5000 ms) */
  readonly publishTimeoutMs?: number;
}

/** {@link BusOptions} with every default applied. */
export type ResolvedBusOptions = Required<BusOptions>;

export const DEFAULT_BUS_OPTIONS = Object.freeze({
  streamName: DEFAULT_BUS_STREAM,
  maxAgeMs: 60_000,
  maxBytes: 4 * 1024 * 1024 * 1024,
  discard: 'old',
  replicas: 1,
  publishTimeoutMs: 5_000,
} as const);

/** The stream's subjects: every tenant and stream. */
export const BUS_SUBJECTS = `${FRAME_SUBJECT_PREFIX}.>`;
/**
 * Room for a chunk's headers (about 450 bytes are used, 600 with a LiDAR's fields) on top of its
 * payload; a frame whose headers need more travels in smaller parts (`chunkBytesOf`).
 */
export const BUS_HEADER_ALLOWANCE = 4096;
/** The largest message the publisher sends: the stream's `max_msg_size`, and what NATS must carry. */
export const BUS_MAX_MESSAGE_BYTES = BUS_CHUNK_BYTES + BUS_HEADER_ALLOWANCE;
/** Parts of the largest frame (64 MiB): a per-subject message limit under it would cut frames. */
const MAX_PARTS = Math.ceil((64 * 1024 * 1024) / (BUS_CHUNK_BYTES - BUS_HEADER_ALLOWANCE));
/**
 * JetStream's duplicate window for `Nats-Msg-Id` (its default, or the max age when shorter): a
 * chunk published again within it is stored once.
 */
const DUPLICATE_WINDOW_MS = 120_000;
const NANOS_PER_MS = 1_000_000;
const STREAM_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const URL_SCHEMES = new Set(['nats:', 'tls:']);

/** The host name as a node id: characters outside `[A-Za-z0-9_-]` become `-`, at most 64. */
export function nodeIdOf(hostname: string): string {
  const id = hostname.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 64);
  return id.length > 0 ? id : 'node';
}

/** A URL as it may be logged: any user and password replaced by `***`. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/g, '//***@');
}

/** Checks `options` and applies the defaults; a bad field throws a `TypeError` naming it. */
export function resolveBusOptions(options: BusOptions, hostname: string): ResolvedBusOptions {
  if (typeof options !== 'object' || options === null)
    throw invalidOption('bus', 'an object with a url', options);
  const { url } = options;
  if (typeof url !== 'string' || url.trim().length === 0)
    throw invalidOption('bus.url', 'a NATS URL such as nats://127.0.0.1:4222', url);
  for (const server of url.split(',')) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(server.includes('://') ? server.trim() : `nats://${server.trim()}`);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || !URL_SCHEMES.has(parsed.protocol) || parsed.hostname === '')
      throw invalidOption('bus.url', 'NATS URLs (nats://host:port, comma-separated)', server);
  }
  const nodeId = options.nodeId ?? nodeIdOf(hostname);
  if (!isNodeId(nodeId)) throw invalidOption('bus.nodeId', '1-64 of A-Z a-z 0-9 _ -', nodeId);
  const streamName = options.streamName ?? DEFAULT_BUS_STREAM;
  if (typeof streamName !== 'string' || !STREAM_NAME.test(streamName))
    throw invalidOption('bus.streamName', '1-64 of A-Z a-z 0-9 _ -', streamName);
  const positive = (field: keyof BusOptions, value: unknown, max: number): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max)
      throw invalidOption(`bus.${field}`, `an integer from 1 to ${max}`, value);
    return value;
  };
  const discard = options.discard ?? DEFAULT_BUS_OPTIONS.discard;
  if (discard !== 'old' && discard !== 'new')
    throw invalidOption('bus.discard', '"old" or "new"', discard);
  return {
    url,
    nodeId,
    streamName,
    // JetStream keeps ages in nanoseconds as an int64.
    maxAgeMs: positive('maxAgeMs', options.maxAgeMs ?? DEFAULT_BUS_OPTIONS.maxAgeMs, 2 ** 53 / 1e6),
    maxBytes: positive('maxBytes', options.maxBytes ?? DEFAULT_BUS_OPTIONS.maxBytes, 2 ** 53),
    discard,
    replicas: positive('replicas', options.replicas ?? DEFAULT_BUS_OPTIONS.replicas, 5),
    publishTimeoutMs: positive(
      'publishTimeoutMs',
      options.publishTimeoutMs ?? DEFAULT_BUS_OPTIONS.publishTimeoutMs,
      600_000,
    ),
  };
}

/** The settings of a frame stream (a subset of JetStream's `StreamConfig`). */
export interface BusStreamConfig {
  readonly name: string;
  readonly subjects: string[];
  readonly retention: 'limits' | 'interest' | 'workqueue';
  readonly storage: 'file' | 'memory';
  /** Nanoseconds (0: no limit). */
  readonly max_age: number;
  /** -1: no limit. */
  readonly max_bytes: number;
  readonly max_msg_size: number;
  readonly max_msgs_per_subject: number;
  readonly discard: 'old' | 'new';
  readonly num_replicas: number;
  /** Nanoseconds. */
  readonly duplicate_window: number;
  readonly allow_direct: boolean;
  readonly no_ack?: boolean;
  readonly sealed?: boolean;
}

/** The stream this node creates when there is none (README, "Beyond one machine"). */
export function busStreamConfig(options: ResolvedBusOptions): BusStreamConfig {
  return {
    name: options.streamName,
    subjects: [BUS_SUBJECTS],
    retention: 'limits',
    storage: 'file',
    max_age: options.maxAgeMs * NANOS_PER_MS,
    max_bytes: options.maxBytes,
    // Refuses an accidental whole-frame publish: every message is one chunk.
    max_msg_size: BUS_MAX_MESSAGE_BYTES,
    max_msgs_per_subject: -1,
    discard: options.discard,
    num_replicas: options.replicas,
    // JetStream refuses a window longer than the max age.
    duplicate_window: Math.min(DUPLICATE_WINDOW_MS, options.maxAgeMs) * NANOS_PER_MS,
    allow_direct: true,
  };
}

/** Whether subject filter `pattern` covers every subject `ps.frames.>` stands for. */
function covers(pattern: string): boolean {
  const have = pattern.split('.');
  const want = BUS_SUBJECTS.split('.');
  for (const [i, token] of have.entries()) {
    if (token === '>') return true;
    const wanted = want[i];
    if (wanted === undefined || wanted === '>') return false;
    if (token !== wanted && token !== '*') return false;
  }
  return false;
}

/**
 * What makes an existing stream unusable for frames, one sentence each (empty: usable). Limits
 * given explicitly in `given` (not defaults) must match too: a node never changes a stream, and
 * silently running under other limits than asked for would be a surprise.
 */
export function streamMismatches(
  existing: Partial<BusStreamConfig>,
  given: BusOptions,
  options: ResolvedBusOptions,
): string[] {
  const problems: string[] = [];
  const subjects = existing.subjects ?? [];
  if (!subjects.some(covers))
    problems.push(`its subjects ${JSON.stringify(subjects)} do not cover ${BUS_SUBJECTS}`);
  if (existing.retention !== undefined && existing.retention !== 'limits')
    problems.push(`its retention is ${existing.retention}, not limits (consumers are independent)`);
  if (existing.no_ack === true) problems.push('it sends no acknowledgements (no_ack)');
  if (existing.sealed === true) problems.push('it is sealed');
  const size = existing.max_msg_size ?? -1;
  if (size > 0 && size < BUS_MAX_MESSAGE_BYTES)
    problems.push(
      `its max_msg_size ${size} is under one chunk with headers (${BUS_MAX_MESSAGE_BYTES})`,
    );
  const perSubject = existing.max_msgs_per_subject ?? -1;
  if (perSubject > 0 && perSubject < MAX_PARTS)
    problems.push(
      `its max_msgs_per_subject ${perSubject} is under the ${MAX_PARTS} parts of the largest frame`,
    );
  const differs = (what: string, asked: unknown, found: unknown): void => {
    if (asked !== found)
      problems.push(`its ${what} is ${String(found)}, not ${String(asked)} as asked`);
  };
  if (given.maxAgeMs !== undefined)
    differs('max age (ms)', options.maxAgeMs, (existing.max_age ?? 0) / NANOS_PER_MS);
  if (given.maxBytes !== undefined) differs('max_bytes', options.maxBytes, existing.max_bytes);
  if (given.discard !== undefined) differs('discard policy', options.discard, existing.discard);
  if (given.replicas !== undefined) differs('replicas', options.replicas, existing.num_replicas);
  return problems;
}
