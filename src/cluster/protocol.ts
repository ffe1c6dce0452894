/**
 * The cluster's wire, pure (docs/cluster.md): the subjects nodes and fronts use on NATS, the
 * heartbeat each node keeps in the `ps_nodes` KV bucket, the signaling requests a front forwards
 * to a node and the node's replies, and session ids that name their node. Everything read from
 * the bus is checked as client input is: a malformed or oversized message is an error with a
 * stable code (`PS_ERR_BUS_MESSAGE_INVALID`), never a crash.
 */
import { ErrorCodes, PointstreamError } from '../errors.js';
import { isNodeId, subjectTokenOf } from '../bus/layout.js';
import { isStreamName } from '../wire/control.js';

/** Version of this layout (`v` in every JSON message below). */
export const CLUSTER_LAYOUT_VERSION = 1;
/** KV bucket of node heartbeats, key = node id. */
export const NODES_BUCKET = 'ps_nodes';
/** A node that has not written its heartbeat for this long is gone (the bucket's max age). */
export const NODE_TTL_MS = 3_000;
/** How often a node writes its heartbeat. */
export const HEARTBEAT_INTERVAL_MS = 1_000;
/** A heartbeat, a forwarded request or a reply is at most this long (JSON). */
export const MAX_CLUSTER_MESSAGE_BYTES = 256 * 1024;
/** Streams one heartbeat lists at most (a node's `maxSessions` is 64 by default). */
export const MAX_HEARTBEAT_STREAMS = 4096;
/** A gateway that wants previews repeats `ps.want` this often; the ingest node stops after 3 of them are missed. */
export const WANT_INTERVAL_MS = 1_000;
export const WANT_LEASE_MS = 3_000;

/** Signaling requests for node `nodeId` (request/reply: {@link ForwardedRequest} -> {@link ForwardedReply}). */
export function signalSubject(nodeId: string): string {
  return `ps.node.${nodeId}.signal`;
}

/** A viewer gateway asks for previews of a stream (core NATS, an empty message each second). */
export function wantSubject(tenant: string, stream: string): string {
  return `ps.want.${subjectTokenOf(tenant)}.${subjectTokenOf(stream)}`;
}

/** Decimated previews of a stream (core NATS, viewer-wire frame bytes, latest only). */
export function previewSubject(tenant: string, stream: string): string {
  return `ps.preview.${subjectTokenOf(tenant)}.${subjectTokenOf(stream)}`;
}

/** A live stream on a node, as its heartbeat lists it. */
export interface NodeStream {
  readonly tenant: string;
  readonly stream: string;
  readonly session: string;
  /** The session's counters (the front's `/stats` and the viewer page show them). */
  readonly framesReceived?: number;
  readonly framesRejected?: number;
  readonly bytesReceived?: number;
  readonly pointsReceived?: number;
  /** When its last frame arrived (ms since the Unix epoch). */
  readonly lastFrameAt?: number;
}

/** The optional counters of a {@link NodeStream}. */
const STREAM_COUNTERS = [
  'framesReceived',
  'framesRejected',
  'bytesReceived',
  'pointsReceived',
  'lastFrameAt',
] as const;

/** What a node writes to `ps_nodes/<id>` every {@link HEARTBEAT_INTERVAL_MS}. */
export interface NodeHeartbeat {
  readonly v: typeof CLUSTER_LAYOUT_VERSION;
  readonly id: string;
  /** pointstream's version on the node. */
  readonly version: string;
  /** When the node started and when it wrote this (ms since the Unix epoch). */
  readonly startedAt: number;
  readonly at: number;
  /** Live sessions and the node's `maxSessions`. */
  readonly sessions: number;
  readonly maxSessions: number;
  /** Live viewers and the node's `maxViewers`. */
  readonly viewers: number;
  readonly maxViewers: number;
  /** Bytes received from clients per second, over the last few seconds. */
  readonly ingressBytesPerSec: number;
  /** Process CPU over the last interval, in cores (1 = one core busy). */
  readonly cpu: number;
  /** Event-loop delay, p99 over the last interval, in ms. */
  readonly loopLagMs: number;
  /** The node's bus connection and its last publishes are fine. */
  readonly busHealthy: boolean;
  /** SIGTERM: the node takes no new sessions and moves its clients away. */
  readonly draining: boolean;
  readonly streams: readonly NodeStream[];
}

/** A signaling request a front forwards to a node. */
export interface ForwardedRequest {
  readonly v: typeof CLUSTER_LAYOUT_VERSION;
  readonly method: 'POST' | 'PATCH' | 'DELETE';
  /** Path and query as the client sent them, e.g. `/offer?stream=lidar`, `/sessions/<id>`. */
  readonly url: string;
  /** The headers that matter to signaling, lower-case (authorization, content-type, accept...). */
  readonly headers: Readonly<Record<string, string>>;
  /** The client's address (per-client limits on the node). */
  readonly remoteAddress: string;
  readonly body: string;
}

/** A node's reply to a {@link ForwardedRequest}: the HTTP reply the front gives its client. */
export interface ForwardedReply {
  readonly v: typeof CLUSTER_LAYOUT_VERSION;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Headers a front forwards to a node, and a node's reply headers the front passes back. */
export const FORWARDED_REQUEST_HEADERS = ['authorization', 'content-type', 'accept'] as const;
export const FORWARDED_REPLY_HEADERS = ['content-type', 'location', 'retry-after', 'etag'] as const;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function invalid(what: string, why: string): PointstreamError {
  return new PointstreamError(ErrorCodes.BUS_MESSAGE_INVALID, `${what}: ${why}`);
}

/** Encodes any of the JSON messages above; throws when it would exceed the size cap. */
export function encodeClusterMessage(
  message: NodeHeartbeat | ForwardedRequest | ForwardedReply,
): Uint8Array {
  const bytes = encoder.encode(JSON.stringify(message));
  if (bytes.length > MAX_CLUSTER_MESSAGE_BYTES)
    throw invalid('cluster message', `${bytes.length} bytes > ${MAX_CLUSTER_MESSAGE_BYTES}`);
  return bytes;
}

function readObject(bytes: Uint8Array, what: string): Record<string, unknown> {
  if (bytes.length > MAX_CLUSTER_MESSAGE_BYTES)
    throw invalid(what, `${bytes.length} bytes > ${MAX_CLUSTER_MESSAGE_BYTES}`);
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    throw invalid(what, 'not UTF-8 JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid(what, 'not a JSON object');
  const object = value as Record<string, unknown>;
  if (object.v !== CLUSTER_LAYOUT_VERSION)
    throw invalid(what, `layout version ${JSON.stringify(object.v)} (this one reads 1)`);
  return object;
}

const count = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const measure = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0;

function stringRecord(value: unknown, what: string): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid(what, 'headers must be an object');
  const out: Record<string, string> = {};
  for (const [name, field] of Object.entries(value)) {
    if (typeof field !== 'string') throw invalid(what, `header ${name} is not a string`);
    out[name.toLowerCase()] = field;
  }
  return out;
}

/** Reads a node's heartbeat (from `ps_nodes`); throws `PS_ERR_BUS_MESSAGE_INVALID`. */
export function parseHeartbeat(bytes: Uint8Array): NodeHeartbeat {
  const o = readObject(bytes, 'node heartbeat');
  const bad = (field: string): never => {
    throw invalid('node heartbeat', `bad ${field}`);
  };
  if (!isNodeId(o.id)) bad('id');
  if (typeof o.version !== 'string' || o.version.length > 64) bad('version');
  for (const field of ['startedAt', 'at', 'sessions', 'maxSessions', 'viewers', 'maxViewers'])
    if (!count(o[field])) bad(field);
  for (const field of ['ingressBytesPerSec', 'cpu', 'loopLagMs'])
    if (!measure(o[field])) bad(field);
  if (typeof o.busHealthy !== 'boolean') bad('busHealthy');
  if (typeof o.draining !== 'boolean') bad('draining');
  if (!Array.isArray(o.streams) || o.streams.length > MAX_HEARTBEAT_STREAMS) bad('streams');
  const streams = (o.streams as unknown[]).map((entry): NodeStream => {
    const s = entry as Record<string, unknown> | null;
    if (
      typeof s !== 'object' ||
      s === null ||
      typeof s.tenant !== 'string' ||
      s.tenant.length === 0 ||
      s.tenant.length > 128 ||
      !isStreamName(s.stream) ||
      typeof s.session !== 'string' ||
      s.session.length > 128
    )
      return bad('streams entry');
    const counters: Record<string, number> = {};
    for (const field of STREAM_COUNTERS) {
      const value = s[field];
      if (value === undefined) continue;
      if (!count(value)) return bad(`streams entry ${field}`);
      counters[field] = value;
    }
    return { tenant: s.tenant, stream: s.stream, session: s.session, ...counters };
  });
  return { ...(o as unknown as NodeHeartbeat), streams };
}

const METHODS: ReadonlySet<string> = new Set(['POST', 'PATCH', 'DELETE']);

/** Reads a forwarded signaling request (on a node); throws `PS_ERR_BUS_MESSAGE_INVALID`. */
export function parseForwardedRequest(bytes: Uint8Array): ForwardedRequest {
  const o = readObject(bytes, 'forwarded request');
  if (typeof o.method !== 'string' || !METHODS.has(o.method))
    throw invalid('forwarded request', 'bad method');
  if (typeof o.url !== 'string' || !o.url.startsWith('/') || o.url.length > 2048)
    throw invalid('forwarded request', 'bad url');
  if (typeof o.remoteAddress !== 'string' || o.remoteAddress.length > 64)
    throw invalid('forwarded request', 'bad remoteAddress');
  if (typeof o.body !== 'string') throw invalid('forwarded request', 'bad body');
  return {
    v: CLUSTER_LAYOUT_VERSION,
    method: o.method as ForwardedRequest['method'],
    url: o.url,
    headers: stringRecord(o.headers, 'forwarded request'),
    remoteAddress: o.remoteAddress,
    body: o.body,
  };
}

/** Reads a node's reply (on a front); throws `PS_ERR_BUS_MESSAGE_INVALID`. */
export function parseForwardedReply(bytes: Uint8Array): ForwardedReply {
  const o = readObject(bytes, 'forwarded reply');
  if (!count(o.status) || o.status < 100 || o.status > 599)
    throw invalid('forwarded reply', 'bad status');
  if (typeof o.body !== 'string') throw invalid('forwarded reply', 'bad body');
  return {
    v: CLUSTER_LAYOUT_VERSION,
    status: o.status,
    headers: stringRecord(o.headers, 'forwarded reply'),
    body: o.body,
  };
}

/**
 * A session or viewer id on a cluster node: `<nodeId>.<random>` (the random part is base64url,
 * which has no `.`), so a front routes `PATCH`/`DELETE /sessions/<id>` without a lookup.
 */
export function clusterPeerId(nodeId: string, random: string): string {
  return `${nodeId}.${random}`;
}

/** The node a cluster peer id names, or undefined for any other id. */
export function nodeOfPeerId(id: string): string | undefined {
  const dot = id.indexOf('.');
  if (dot <= 0) return undefined;
  const node = id.slice(0, dot);
  return isNodeId(node) ? node : undefined;
}
