/**
 * A node's membership of the cluster (docs/cluster.md): its heartbeat in the `ps_nodes` bucket
 * every {@link HEARTBEAT_INTERVAL_MS} (deleted on close, so that fronts see it gone at once), and
 * the signaling requests fronts forward to it on `ps.node.<id>.signal`, answered by the node's own
 * HTTP routes. Nothing here is fatal: a heartbeat that cannot be written is logged (rate-limited)
 * and tried again at the next beat; a malformed request gets a `400` reply.
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { IntervalHistogram } from 'node:perf_hooks';
import type { KV } from '@nats-io/kv';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { ErrorCodes } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { LogLimiter } from '../util/log-limit.js';
import type { Logger } from '../util/logger.js';
import { openNodesBucket } from './directory.js';
import {
  CLUSTER_LAYOUT_VERSION,
  HEARTBEAT_INTERVAL_MS,
  NODE_TTL_MS,
  encodeClusterMessage,
  parseForwardedRequest,
  signalSubject,
} from './protocol.js';
import type { ForwardedReply, ForwardedRequest, NodeHeartbeat, NodeStream } from './protocol.js';

/** Forwarded requests a node runs at once; beyond it they are answered `503`. */
export const MAX_CONCURRENT_FORWARDED = 32;
/** Event-loop delay is sampled this often (ms). */
const LOOP_RESOLUTION_MS = 10;
/** How long closing waits for the heartbeat's key to be deleted. */
const CLOSE_WAIT_MS = 2_000;
/** Ingress bytes per second are averaged over this window. */
export const INGRESS_WINDOW_MS = 5_000;

/** What the node reports of itself at each beat (the member adds rates, CPU and loop lag). */
export interface NodeSample {
  readonly sessions: number;
  readonly maxSessions: number;
  readonly viewers: number;
  readonly maxViewers: number;
  /** Bytes received from clients since start (the rate is computed here). */
  readonly bytesReceived: number;
  readonly busHealthy: boolean;
  readonly draining: boolean;
  readonly streams: readonly NodeStream[];
}

/** Options of {@link ClusterMember.join}. */
export interface ClusterMemberOptions {
  /** The node's NATS connection (the bus publisher's). */
  readonly nc: NatsConnection;
  readonly nodeId: string;
  /** The node's current numbers, asked at each beat. */
  readonly sample: () => NodeSample;
  /** Runs a forwarded request through the node's HTTP routes. */
  readonly handle: (request: ForwardedRequest) => Promise<ForwardedReply>;
  /** Forwarded requests run at once. ({@link MAX_CONCURRENT_FORWARDED}) */
  readonly maxConcurrent?: number;
  /** Heartbeat period. ({@link HEARTBEAT_INTERVAL_MS}) */
  readonly intervalMs?: number;
  readonly log: Logger;
}

/** What `/stats` shows of the membership. */
export interface MemberStats {
  /** When the last heartbeat was written (ms since the Unix epoch), if any. */
  readonly lastHeartbeatAt: number | undefined;
  readonly heartbeatsFailed: number;
  readonly forwardedRequests: number;
  readonly forwardedRefused: number;
}

let packageVersion: string | undefined;
/** pointstream's version (package.json, two levels up from src/cluster and dist/cluster). */
function versionOf(): string {
  if (packageVersion === undefined) {
    try {
      const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
      const { version } = JSON.parse(text) as { version?: unknown };
      packageVersion = typeof version === 'string' ? version : '0.0.0';
    } catch {
      packageVersion = '0.0.0';
    }
  }
  return packageVersion.slice(0, 64);
}

/** A reply carrying a problem body, as signaling's own refusals do. */
export function problemReply(
  status: number,
  code: ErrorCode,
  message: string,
  headers: Record<string, string> = {},
): ForwardedReply {
  return {
    v: CLUSTER_LAYOUT_VERSION,
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
    body: JSON.stringify({ error: { code, message } }),
  };
}

/** A node in the cluster: heartbeat writer and forwarded-signaling responder. */
export class ClusterMember {
  readonly nodeId: string;
  readonly startedAt = Date.now();
  readonly #options: ClusterMemberOptions;
  readonly #kv: KV;
  readonly #log: Logger;
  readonly #loop: IntervalHistogram;
  readonly #maxConcurrent: number;
  readonly #heartbeatLog = new LogLimiter(1, 10_000);
  readonly #requestLog = new LogLimiter(20, 10_000);
  /** (time, bytes received) at each beat, oldest first, over the ingress window. */
  readonly #ingress: { at: number; bytes: number }[] = [];
  #cpu = { at: performance.now(), usage: process.cpuUsage() };
  #timer: NodeJS.Timeout | undefined;
  #subscription: Subscription | undefined;
  #writing: Promise<void> = Promise.resolve();
  /** Writes queued or running: a beat on the timer is skipped while one is (a slow bus). */
  #pending = 0;
  #running = 0;
  #closed = false;
  #lastHeartbeatAt: number | undefined;
  #heartbeatsFailed = 0;
  #forwarded = 0;
  #refused = 0;

  private constructor(options: ClusterMemberOptions, kv: KV) {
    this.#options = options;
    this.nodeId = options.nodeId;
    this.#kv = kv;
    this.#log = options.log;
    this.#maxConcurrent = options.maxConcurrent ?? MAX_CONCURRENT_FORWARDED;
    this.#loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  }

  /** Opens the bucket, writes the first heartbeat, then beats and answers forwarded signaling. */
  static async join(options: ClusterMemberOptions): Promise<ClusterMember> {
    const kv = await openNodesBucket(options.nc);
    const member = new ClusterMember(options, kv);
    member.#loop.enable();
    member.#subscription = options.nc.subscribe(signalSubject(options.nodeId), {
      callback: (error, msg) => {
        if (error === null) member.#onRequest(msg);
      },
    });
    await member.beat();
    member.#timer = setInterval(() => {
      if (member.#pending === 0) void member.beat();
    }, options.intervalMs ?? HEARTBEAT_INTERVAL_MS);
    member.#timer.unref();
    member.#log.info(
      { event: 'cluster-joined', node: options.nodeId, subject: signalSubject(options.nodeId) },
      `cluster: node ${options.nodeId} joined`,
    );
    return member;
  }

  stats(): MemberStats {
    return {
      lastHeartbeatAt: this.#lastHeartbeatAt,
      heartbeatsFailed: this.#heartbeatsFailed,
      forwardedRequests: this.#forwarded,
      forwardedRefused: this.#refused,
    };
  }

  /** Writes the heartbeat now (also called at once when draining starts); never rejects. */
  beat(): Promise<void> {
    if (this.#closed) return this.#writing;
    // One write at a time, in order: a late write must not overwrite a newer one.
    this.#pending++;
    this.#writing = this.#writing.then(() => this.#write()).finally(() => this.#pending--);
    return this.#writing;
  }

  /** Stops beating and answering, and deletes the node's key so that fronts see it gone at once. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#loop.disable();
    this.#subscription?.unsubscribe();
    // Bounded: with the bus down the key expires on its own within its TTL.
    const deleted = this.#writing
      .then(() => this.#kv.delete(this.nodeId))
      .catch((error: unknown) => {
        this.#log.warn(
          { event: 'heartbeat-delete-failed', err: error },
          `cluster: could not delete this node's heartbeat (it expires within its TTL): ${(error as Error).message}`,
        );
      });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      deleted,
      new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS))),
    ]);
    clearTimeout(timer);
  }

  /** The heartbeat with this moment's numbers. */
  heartbeat(): NodeHeartbeat {
    const sample = this.#options.sample();
    const now = performance.now();
    // Ingress over the window: the oldest sample within it against this one.
    this.#ingress.push({ at: now, bytes: sample.bytesReceived });
    while (this.#ingress.length > 2 && now - this.#ingress[1]!.at >= INGRESS_WINDOW_MS)
      this.#ingress.shift();
    const first = this.#ingress[0]!;
    const ingress =
      now > first.at ? ((sample.bytesReceived - first.bytes) * 1000) / (now - first.at) : 0;
    // CPU of the process since the last beat, in cores.
    const usage = process.cpuUsage(this.#cpu.usage);
    const cpu = now > this.#cpu.at ? (usage.user + usage.system) / 1000 / (now - this.#cpu.at) : 0;
    this.#cpu = { at: now, usage: process.cpuUsage() };
    // The histogram holds each sampling interval whole: the lag is what exceeds the interval.
    const lag = this.#loop.count > 0 ? this.#loop.percentile(99) / 1e6 - LOOP_RESOLUTION_MS : 0;
    this.#loop.reset();
    return {
      v: CLUSTER_LAYOUT_VERSION,
      id: this.nodeId,
      version: versionOf(),
      startedAt: this.startedAt,
      at: Date.now(),
      sessions: sample.sessions,
      maxSessions: sample.maxSessions,
      viewers: sample.viewers,
      maxViewers: sample.maxViewers,
      ingressBytesPerSec: Math.max(0, Math.round(ingress)),
      cpu: Math.max(0, Math.round(cpu * 1000) / 1000),
      loopLagMs: Number.isFinite(lag) ? Math.max(0, Math.round(lag * 10) / 10) : 0,
      busHealthy: sample.busHealthy,
      draining: sample.draining,
      streams: sample.streams.slice(0, 4096),
    };
  }

  async #write(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#kv.put(this.nodeId, encodeClusterMessage(this.heartbeat()));
      this.#lastHeartbeatAt = Date.now();
    } catch (error) {
      this.#heartbeatsFailed++;
      const suppressed = this.#heartbeatLog.take();
      if (suppressed !== undefined)
        this.#log.warn(
          { event: 'heartbeat-failed', err: error, suppressed },
          `cluster: heartbeat not written (${(error as Error).message}); fronts stop placing here after ${NODE_TTL_MS / 1000} s`,
        );
    }
  }

  #onRequest(msg: Msg): void {
    if (this.#closed || msg.reply === undefined || msg.reply === '') return;
    const respond = (reply: ForwardedReply): void => {
      try {
        msg.respond(encodeClusterMessage(reply));
      } catch (error) {
        // Too large or the connection is gone: the front times out and skips this node.
        this.#log.warn(
          { event: 'forward-reply-failed', err: error },
          `cluster: could not reply to a forwarded request: ${(error as Error).message}`,
        );
        try {
          msg.respond(
            encodeClusterMessage(problemReply(500, ErrorCodes.INTERNAL, 'reply could not be sent')),
          );
        } catch {
          // nothing more to do
        }
      }
    };
    let request: ForwardedRequest;
    try {
      request = parseForwardedRequest(msg.data);
    } catch (error) {
      this.#refused++;
      this.#logRefused('forward-invalid', (error as Error).message);
      respond(problemReply(400, ErrorCodes.BUS_MESSAGE_INVALID, (error as Error).message));
      return;
    }
    if (this.#running >= this.#maxConcurrent) {
      this.#refused++;
      this.#logRefused('forward-busy', `${this.#running} forwarded requests already running`);
      respond(
        problemReply(
          503,
          ErrorCodes.SERVER_FULL,
          `node ${this.nodeId} is running ${this.#running} forwarded requests already`,
          { 'retry-after': '1' },
        ),
      );
      return;
    }
    this.#running++;
    this.#forwarded++;
    this.#options
      .handle(request)
      .then(respond, (error: unknown) => {
        this.#log.error(
          { event: 'forward-failed', err: error, url: request.url.slice(0, 200) },
          'cluster: a forwarded request failed',
        );
        respond(problemReply(500, ErrorCodes.INTERNAL, 'internal error'));
      })
      .finally(() => this.#running--);
  }

  #logRefused(event: string, message: string): void {
    const suppressed = this.#requestLog.take();
    if (suppressed !== undefined)
      this.#log.warn({ event, suppressed }, `cluster: forwarded request refused: ${message}`);
  }
}
