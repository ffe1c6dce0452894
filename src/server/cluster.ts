/**
 * The server's side of the cluster (`createServer({ bus })`, docs/cluster.md): its membership
 * (heartbeat, forwarded signaling: src/cluster/member.ts, loaded only with a bus), the bus's
 * health as offers see it, draining, and closing the node's sessions when the bus stays down.
 */
import { randomBytes } from 'node:crypto';
import { tenantOf } from '../bus/layout.js';
import type { BusPublisher } from '../bus/publisher.js';
import type { ClusterMember, NodeSample } from '../cluster/member.js';
import { clusterPeerId } from '../cluster/protocol.js';
import { ErrorCodes } from '../errors.js';
import type { Logger } from '../util/logger.js';
import type { Refusal } from './http/problem.js';
import type { SignalingHttp } from './http/signaling.js';
import type { StatsParts } from './stats.js';
import type { ClusterStats, ServerLimits } from './types.js';
import { DEFAULT_VIEWER_OPTIONS } from './viewer.js';
import type { ViewerOptions } from './viewer.js';

/** The bus is unhealthy while disconnected and this long after a frame it did not confirm. */
export const BUS_FAILURE_WINDOW_MS = 5_000;
/** A node whose bus stays unhealthy this long closes its sessions (`PS_ERR_BUS_UNAVAILABLE`). */
export const BUS_GRACE_MS = 5_000;
/** How long a drain waits for sessions to end by default. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
/**
 * A drain lasts at least this long (unless its timeout is shorter): every front reads the
 * `draining` heartbeat and gets a `503` from the node, rather than no answer, before it leaves.
 */
export const MIN_DRAIN_MS = 1_000;
/** How often the bus's health and a drain's progress are checked. */
const CHECK_MS = 250;

/** Session and viewer ids on a cluster node name the node (a front routes PATCH/DELETE by them). */
export function clusterPeerIds(bus: BusPublisher | undefined): (() => string) | undefined {
  if (bus === undefined) return undefined;
  const node = bus.options.nodeId;
  return () => clusterPeerId(node, randomBytes(16).toString('base64url'));
}

/** What {@link NodeCluster} reads of the server: its live sessions, viewers and totals. */
export type ClusterParts = Pick<StatsParts, 'sessions' | 'viewers' | 'totals'>;

/** Options of {@link NodeCluster}. */
export interface NodeClusterOptions {
  readonly bus: BusPublisher | undefined;
  readonly limits: Pick<ServerLimits, 'maxSessions'>;
  readonly viewer?: Partial<Pick<ViewerOptions, 'maxViewers'>> | undefined;
  readonly log: Logger;
  /** Bus unhealthy this long: sessions are closed. ({@link BUS_GRACE_MS}) */
  readonly busGraceMs?: number;
}

/** Draining, bus health and membership of one server; without a bus only draining applies. */
export class NodeCluster {
  readonly #options: NodeClusterOptions;
  readonly #parts: ClusterParts;
  readonly #http: SignalingHttp;
  readonly #bus: BusPublisher | undefined;
  readonly #log: Logger;
  #member: ClusterMember | undefined;
  #draining = false;
  #failed = 0;
  #failedAt = -Infinity;
  #unhealthySince: number | undefined;
  #timer: NodeJS.Timeout | undefined;

  /** `http`: where forwarded requests run. */
  constructor(parts: ClusterParts, http: SignalingHttp, options: NodeClusterOptions) {
    this.#parts = parts;
    this.#http = http;
    this.#options = options;
    this.#bus = options.bus;
    this.#log = options.log.child({ component: 'cluster' });
  }

  /** With a bus: joins the cluster (heartbeat, forwarded signaling) and watches the bus's health. */
  async start(): Promise<void> {
    const bus = this.#bus;
    if (bus === undefined) return;
    const { ClusterMember } = await import('../cluster/member.js');
    this.#member = await ClusterMember.join({
      nc: bus.connection,
      nodeId: bus.options.nodeId,
      sample: () => this.#sample(),
      handle: (request) => this.#http.inject(request),
      log: this.#log,
    });
    this.#timer = setInterval(() => this.#checkBus(), CHECK_MS);
    this.#timer.unref();
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Connected, and no frame failed on it within {@link BUS_FAILURE_WINDOW_MS} (true without a bus). */
  busHealthy(): boolean {
    const bus = this.#bus;
    if (bus === undefined) return true;
    const now = performance.now();
    const failed = bus.stats().framesFailed;
    if (failed !== this.#failed) {
      this.#failed = failed;
      this.#failedAt = now;
    }
    return bus.connected && now - this.#failedAt >= BUS_FAILURE_WINDOW_MS;
  }

  /** Why new sessions are refused now, beyond closing and capacity: draining, an unhealthy bus. */
  refusal(): Refusal | undefined {
    if (this.#draining)
      return {
        status: 503,
        code: ErrorCodes.SHUTTING_DOWN,
        reason: 'node is draining',
        retryAfterSeconds: 1,
      };
    if (!this.busHealthy())
      return {
        status: 503,
        code: ErrorCodes.BUS_UNAVAILABLE,
        reason: 'the bus is unavailable: frames could not be confirmed',
        retryAfterSeconds: 5,
      };
    return undefined;
  }

  stats(): ClusterStats | undefined {
    const bus = this.#bus;
    if (bus === undefined) return undefined;
    const member = this.#member?.stats();
    return {
      nodeId: bus.options.nodeId,
      draining: this.#draining,
      busHealthy: this.busHealthy(),
      lastHeartbeatAt: member?.lastHeartbeatAt,
      heartbeatsFailed: member?.heartbeatsFailed ?? 0,
      forwardedRequests: member?.forwardedRequests ?? 0,
      forwardedRefused: member?.forwardedRefused ?? 0,
    };
  }

  /**
   * Drains: `draining` at once (heartbeat written now, new offers `503`), then every session is
   * moved away (its client reconnects through a front at once), and this resolves once all ended
   * (and at least {@link MIN_DRAIN_MS} passed) or after `timeoutMs`, with how many there were and
   * how many are left.
   */
  async drain(timeoutMs: number): Promise<{ sessions: number; remaining: number; ms: number }> {
    const sessions = this.#parts.sessions;
    const started = performance.now();
    this.#draining = true;
    await this.#member?.beat();
    const count = sessions.size;
    this.#log.info(
      { event: 'draining', sessions: count, timeoutMs },
      `draining: moving ${count} sessions away (at most ${timeoutMs} ms)`,
    );
    const asked = new WeakSet<object>();
    const moveAll = (): void => {
      for (const { session } of [...sessions.values()]) {
        if (asked.has(session)) continue;
        asked.add(session);
        session
          .moveAway()
          .catch((error: unknown) =>
            this.#log.warn({ event: 'move-failed', err: error }, 'a session did not move'),
          );
      }
    };
    moveAll();
    // Offers answered just before the drain may still open sessions: they are moved too.
    const least = Math.min(MIN_DRAIN_MS, timeoutMs);
    let movedMs: number | undefined;
    for (;;) {
      const elapsed = performance.now() - started;
      if (sessions.size === 0) movedMs ??= Math.round(elapsed);
      if (elapsed >= timeoutMs || (sessions.size === 0 && elapsed >= least)) break;
      await new Promise((resolve) => setTimeout(resolve, Math.min(50, CHECK_MS)));
      moveAll();
    }
    const ms = Math.round(performance.now() - started);
    this.#log.info(
      { event: 'drained', sessions: count, remaining: sessions.size, movedMs, ms },
      sessions.size === 0
        ? `drained: ${count} sessions moved in ${movedMs} ms`
        : `drain timed out after ${ms} ms: ${sessions.size} sessions left (closed now)`,
    );
    return { sessions: count, remaining: sessions.size, ms };
  }

  /** Leaves the cluster: the heartbeat key is deleted, forwarded requests no longer answered. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#member?.close();
  }

  #sample(): NodeSample {
    const { sessions, viewers, totals } = this.#parts;
    const streams = [...sessions].map(([id, entry]) => {
      const stats = entry.session.stats();
      return {
        tenant: tenantOf(entry.token),
        stream: entry.session.stream,
        session: id,
        framesReceived: stats.framesReceived,
        framesRejected: stats.framesRejected,
        bytesReceived: stats.bytesReceived,
        pointsReceived: stats.pointsReceived,
        ...(stats.lastFrameAt === undefined ? {} : { lastFrameAt: Math.round(stats.lastFrameAt) }),
      };
    });
    return {
      sessions: sessions.size,
      maxSessions: this.#options.limits.maxSessions,
      viewers: viewers.stats().length,
      maxViewers: this.#options.viewer?.maxViewers ?? DEFAULT_VIEWER_OPTIONS.maxViewers,
      bytesReceived: totals.of().bytesReceived,
      busHealthy: this.busHealthy(),
      draining: this.#draining,
      streams,
    };
  }

  /** After {@link BUS_GRACE_MS} of an unhealthy bus, the sessions go (their clients find a healthy node). */
  #checkBus(): void {
    const now = performance.now();
    if (this.busHealthy()) {
      this.#unhealthySince = undefined;
      return;
    }
    this.#unhealthySince ??= now;
    const grace = this.#options.busGraceMs ?? BUS_GRACE_MS;
    if (now - this.#unhealthySince < grace || this.#parts.sessions.size === 0) return;
    this.#log.warn(
      { event: 'bus-grace-over', sessions: this.#parts.sessions.size, graceMs: grace },
      `bus unavailable for ${grace} ms: closing ${this.#parts.sessions.size} sessions so that their clients move`,
    );
    for (const { session } of [...this.#parts.sessions.values()])
      session.close(ErrorCodes.BUS_UNAVAILABLE, 'the bus is unavailable on this node');
  }
}
