/**
 * Signaling requests forwarded to a node over NATS request/reply (docs/cluster.md): the request
 * as the node's own HTTP routes take it ({@link ForwardedRequest}), the node's reply as the front
 * sends it back. A node that is not there (`no responders`), too slow or garbled is a failure with
 * a reason, never an exception: the front decides what the client gets.
 */
import type { FastifyRequest } from 'fastify';
import { errors } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  CLUSTER_LAYOUT_VERSION,
  FORWARDED_REPLY_HEADERS,
  FORWARDED_REQUEST_HEADERS,
  encodeClusterMessage,
  parseForwardedReply,
  signalSubject,
} from '../cluster/protocol.js';
import type { ForwardedReply, ForwardedRequest } from '../cluster/protocol.js';
import type { ForwardFailure } from './metrics.js';

/** How a forwarded request ended: the node's reply, or why there is none. */
export type ForwardOutcome =
  | { readonly ok: true; readonly reply: ForwardedReply; readonly seconds: number }
  | { readonly ok: false; readonly reason: ForwardFailure; readonly message: string };

/**
 * The request as a node takes it: the body re-serialised as text (a JSON body as
 * `JSON.stringify` gives it, an SDP or trickle body as sent, none as ''), the headers signaling
 * reads, and the client's address (the node's per-client limits count it).
 */
export function forwardedRequestOf(request: FastifyRequest): ForwardedRequest {
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = request.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  const body: unknown = request.body;
  // What fastify parsed as JSON goes back as JSON, whatever it holds (`"x"` and `null` too), so the
  // node reads the body the client sent.
  const json = /^application\/(?:[\w.+-]+\+)?json\b/i.test(headers['content-type'] ?? '');
  return {
    v: CLUSTER_LAYOUT_VERSION,
    method: request.method as ForwardedRequest['method'],
    url: request.url,
    headers,
    remoteAddress: request.ip,
    body:
      body === undefined
        ? ''
        : json
          ? JSON.stringify(body)
          : typeof body === 'string'
            ? body
            : Buffer.isBuffer(body)
              ? body.toString('utf8')
              : JSON.stringify(body),
  };
}

/** Only the reply headers the contract passes back (a node cannot set others on the front). */
export function replyHeadersOf(reply: ForwardedReply): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of FORWARDED_REPLY_HEADERS) {
    const value = reply.headers[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** Sends `request` to node `nodeId` and waits at most `timeoutMs` for its reply. */
export async function forwardToNode(
  nc: NatsConnection,
  nodeId: string,
  request: ForwardedRequest,
  timeoutMs: number,
): Promise<ForwardOutcome> {
  const started = performance.now();
  let data: Uint8Array;
  try {
    data = (
      await nc.request(signalSubject(nodeId), encodeClusterMessage(request), {
        timeout: timeoutMs,
      })
    ).data;
  } catch (error) {
    const reason: ForwardFailure =
      error instanceof errors.NoRespondersError ||
      (error as Error).cause instanceof errors.NoRespondersError
        ? 'no_responders'
        : error instanceof errors.TimeoutError ||
            (error as Error).cause instanceof errors.TimeoutError
          ? 'timeout'
          : 'error';
    return { ok: false, reason, message: (error as Error).message };
  }
  try {
    const reply = parseForwardedReply(data);
    return { ok: true, reply, seconds: (performance.now() - started) / 1000 };
  } catch (error) {
    return { ok: false, reason: 'invalid_reply', message: (error as Error).message };
  }
}
