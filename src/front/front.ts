/**
 * A front: the cluster's public signaling address (docs/cluster.md). It holds no session: each
 * offer is placed on a node with room ({@link Placement}), forwarded to it over NATS and answered
 * with the node's own reply, so media flows from the client to the node directly; trickle PATCHes
 * and DELETEs go to the node their peer id names. Any number of fronts can run side by side.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { tenantOf } from '../bus/layout.js';
import { redactUrl } from '../bus/stream-config.js';
import { NodeDirectory } from '../cluster/directory.js';
import { nodeOfPeerId } from '../cluster/protocol.js';
import type { NodeHeartbeat } from '../cluster/protocol.js';
import { ErrorCodes, PointstreamError, invalidOption } from '../errors.js';
import { TokenAuth } from '../server/auth.js';
import { ClientAdmission } from '../server/http/admission.js';
import { sendProblem, sendRefusal } from '../server/http/problem.js';
import { SignalingHttp } from '../server/http/signaling.js';
import { DEFAULT_SERVER_LIMITS, listenAddressOf } from '../server/limits.js';
import { isPublicAsset, registerWebRoutes } from '../server/web.js';
import type { WebRoutes } from '../server/web.js';
import { LogLimiter } from '../util/log-limit.js';
import { silentLogger } from '../util/logger.js';
import type { Logger } from '../util/logger.js';
import { withDefaults } from '../util/options.js';
import { isStreamName } from '../wire/control.js';
import { forwardToNode, forwardedRequestOf, replyHeadersOf } from './forward.js';
import type { ForwardOutcome } from './forward.js';
import { FrontMetrics } from './metrics.js';
import { Placement } from './placement.js';
import type { PlacementKind, WatchedStream } from './placement.js';
import type { FrontLimits, FrontOptions, FrontStats } from './types.js';

/** Limits of a front unless told otherwise: a server's. */
export const DEFAULT_FRONT_LIMITS: FrontLimits = Object.freeze({
  maxSdpBytes: DEFAULT_SERVER_LIMITS.maxSdpBytes,
  maxOffersPerMinute: DEFAULT_SERVER_LIMITS.maxOffersPerMinute,
  requestTimeoutMs: DEFAULT_SERVER_LIMITS.requestTimeoutMs,
  maxConnections: DEFAULT_SERVER_LIMITS.maxConnections,
  maxConnectionsPerAddress: DEFAULT_SERVER_LIMITS.maxConnectionsPerAddress,
});
export const DEFAULT_FORWARD_TIMEOUT_MS = 10_000;
/** How long NATS may take to answer at start. */
const CONNECT_TIMEOUT_MS = 5_000;
/** `Retry-After` of a `503` when no node has room: a node's heartbeat comes each second. */
const FULL_RETRY_AFTER_S = 1;

/** The routes of a peer resource: where offers go, where each peer lives. */
const RESOURCES = [
  { kind: 'session', offerPath: '/offer', peerPath: '/sessions/', noun: 'session' },
  { kind: 'viewer', offerPath: '/viewer/offer', peerPath: '/viewer/peers/', noun: 'viewer' },
] as const;

/** A running front. Create it with {@link createFront}; `await front.close()` ends it. */
export class PointstreamFront {
  readonly limits: FrontLimits;
  readonly forwardTimeoutMs: number;
  readonly #nc: NatsConnection;
  readonly #directory: NodeDirectory;
  readonly #http: SignalingHttp;
  readonly #log: Logger;
  readonly #placement: Placement;
  readonly #metrics: FrontMetrics;
  readonly #admission: ClientAdmission;
  readonly #totals = { placements: 0, refusals: 0, forwardFailures: 0, forwardTimeouts: 0 };
  /** Refusals and skipped nodes are logged at most 20 per 10 s each (then counted). */
  readonly #refusalLog = new LogLimiter(20, 10_000);
  readonly #skipLog = new LogLimiter(20, 10_000);
  #web: WebRoutes | undefined;
  #url = '';
  #closed = false;

  /** @internal use {@link createFront} (which connects to NATS first) */
  constructor(
    options: FrontOptions,
    limits: FrontLimits,
    nc: NatsConnection,
    directory: NodeDirectory,
  ) {
    this.limits = limits;
    this.forwardTimeoutMs = options.forwardTimeoutMs ?? DEFAULT_FORWARD_TIMEOUT_MS;
    this.#nc = nc;
    this.#directory = directory;
    this.#log = options.logger ?? silentLogger;
    this.#placement = new Placement({ random: options.random });
    this.#metrics = new FrontMetrics(() => this.#directory.nodes().length);
    // The front counts offers per minute only: how many sessions a client holds is the nodes' to
    // count (each knows its own, and the front never learns when one ends).
    this.#admission = new ClientAdmission({
      maxPerClient: Number.MAX_SAFE_INTEGER,
      maxOffersPerMinute: limits.maxOffersPerMinute,
    });
    this.#http = new SignalingHttp({
      limits,
      tls: options.tls,
      auth: options.tokens === undefined ? undefined : new TokenAuth(options.tokens),
      corsOrigins: options.corsOrigins,
      isPublic: (request) =>
        this.#web !== undefined && isPublicAsset(this.#web, request.method, request.url),
      log: this.#log,
    });
    this.#routes();
  }

  /** Base URL of the front, e.g. `http://127.0.0.1:8080`. */
  get url(): string {
    return this.#url;
  }

  /** @internal */
  async listen(host: string, port: number, bus: string): Promise<void> {
    this.#url = await this.#http.listen(host, port, {
      role: 'front',
      bus: redactUrl(bus),
      forwardTimeoutMs: this.forwardTimeoutMs,
    });
  }

  /**
   * The cluster as this front sees it: fresh nodes with their load, streams and their nodes, and
   * this front's totals. `token` (a token id, as `GET /stats` with auth on): only that token's
   * tenant's streams; without one, every stream.
   */
  stats(token?: string): FrontStats {
    const now = performance.now();
    const entries = this.#directory.nodes();
    const tenant = tenantOf(token);
    const live = entries.flatMap(({ heartbeat }) =>
      heartbeat.streams
        .filter((s) => token === undefined || s.tenant === tenant)
        .map((s) => ({ ...s, node: heartbeat.id })),
    );
    return {
      nodes: entries.map(({ heartbeat: h, receivedAt }) => ({
        id: h.id,
        version: h.version,
        sessions: h.sessions,
        maxSessions: h.maxSessions,
        viewers: h.viewers,
        maxViewers: h.maxViewers,
        reservedSessions: this.#placement.load(h, 'session').reserved,
        ingressBytesPerSec: h.ingressBytesPerSec,
        cpu: h.cpu,
        loopLagMs: h.loopLagMs,
        busHealthy: h.busHealthy,
        draining: h.draining,
        heartbeatAgeMs: Math.max(0, Math.round(now - receivedAt)),
        uptimeMs: Math.max(0, h.at - h.startedAt),
      })),
      sessions: live.map((s) => ({ id: s.session, stream: s.stream, node: s.node })),
      streams: live.map((s) => ({
        name: s.stream,
        state: 'live' as const,
        session: s.session,
        node: s.node,
        // The live session's counters, from its node's heartbeat (at most a second old).
        framesReceived: s.framesReceived ?? 0,
        framesRejected: s.framesRejected ?? 0,
        bytesReceived: s.bytesReceived ?? 0,
        pointsReceived: s.pointsReceived ?? 0,
        lastFrameAt: s.lastFrameAt,
      })),
      totals: { ...this.#totals },
    };
  }

  /** Stops taking requests, then leaves NATS. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#http.close();
    this.#directory.close();
    await this.#nc.close().catch(() => undefined);
    this.#log.info({ event: 'closed', ...this.#totals }, 'front closed');
  }

  #routes(): void {
    const http = this.#http;
    for (const resource of RESOURCES) {
      http.route('POST', resource.offerPath, (request, reply) =>
        this.#offer(resource.kind, request, reply),
      );
      for (const method of ['PATCH', 'DELETE'] as const)
        http.route(method, `${resource.peerPath}:id`, (request, reply) =>
          this.#toPeer(resource.noun, request, reply),
        );
    }
    http.route('GET', '/stats', (request) => this.stats(http.tokenOf(request)));
    // `auth` lets the viewer page know, before any token, whether to ask for one.
    http.route('GET', '/healthz', () => ({
      ok: true,
      nodes: this.#directory.nodes().length,
      auth: http.authenticates,
    }));
    http.route('GET', '/metrics', async (_request, reply) =>
      reply.type(this.#metrics.contentType).send(await this.#metrics.text()),
    );
    this.#web = registerWebRoutes(http.app, this.#log.child({ component: 'web' }));
    http.seal();
  }

  /** `POST /offer` or `/viewer/offer`: placed on a node, forwarded, the node's reply returned. */
  async #offer(
    kind: PlacementKind,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<unknown> {
    const admitted = this.#admission.admit(this.#http.tokenOf(request), request.ip);
    if ('status' in admitted) return sendRefusal(reply, admitted);
    admitted.release();
    const forwarded = forwardedRequestOf(request);
    const watch = kind === 'viewer' ? this.#watchedStream(request) : undefined;
    const exclude = new Set<string>();
    for (;;) {
      const nodes = this.#directory.nodes().map((entry) => entry.heartbeat);
      this.#placement.prune(nodes.map((node) => node.id));
      const node = this.#placement.choose(nodes, kind, { exclude, watch });
      if (node === undefined) {
        this.#totals.refusals++;
        this.#metrics.refused(kind);
        const suppressed = this.#refusalLog.take();
        if (suppressed !== undefined)
          this.#log.warn(
            {
              event: 'placement-refused',
              kind,
              nodes: nodes.length,
              tried: [...exclude],
              ...(suppressed > 0 ? { suppressed } : {}),
            },
            `no node has room for a ${kind} (${nodes.length} nodes, ${exclude.size} tried)`,
          );
        return sendRefusal(reply, {
          status: 503,
          code: ErrorCodes.SERVER_FULL,
          reason:
            nodes.length === 0
              ? 'no ingest node is available'
              : `no ingest node has room for a ${kind}`,
          retryAfterSeconds: FULL_RETRY_AFTER_S,
        });
      }
      const outcome = await forwardToNode(this.#nc, node.id, forwarded, this.forwardTimeoutMs);
      if (!outcome.ok || outcome.reply.status === 503) {
        // Skipped at once: a node that is gone, stuck or refusing is not asked again until its
        // next heartbeat.
        this.#failed(node, kind, outcome);
        exclude.add(node.id);
        continue;
      }
      this.#metrics.answered(request.method, outcome.seconds);
      const { status } = outcome.reply;
      if (status >= 200 && status < 300) {
        // Reserved until the node's heartbeat lists the session (`Location: /sessions/<id>`).
        const location = outcome.reply.headers.location ?? '';
        const peer = location.slice(location.lastIndexOf('/') + 1);
        this.#placement.answered(node, kind, peer === '' ? undefined : peer);
        this.#totals.placements++;
        this.#metrics.placed(node.id, kind);
        this.#log.debug({ event: 'placed', kind, node: node.id, status }, `${kind} placed`);
      } else this.#placement.release(node, kind);
      return this.#send(reply, outcome);
    }
  }

  /** `PATCH`/`DELETE` of a session or viewer: to the node its id names. */
  async #toPeer(noun: string, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const { id } = request.params as { id: string };
    const nodeId = nodeOfPeerId(id);
    const missing = (): FastifyReply =>
      sendProblem(reply, 404, ErrorCodes.SESSION_NOT_FOUND, `no such ${noun}`);
    if (nodeId === undefined || this.#directory.node(nodeId) === undefined) return missing();
    const outcome = await forwardToNode(
      this.#nc,
      nodeId,
      forwardedRequestOf(request),
      this.forwardTimeoutMs,
    );
    if (outcome.ok) {
      this.#metrics.answered(request.method, outcome.seconds);
      return this.#send(reply, outcome);
    }
    const node = this.#directory.node(nodeId)?.heartbeat;
    this.#count(nodeId, outcome);
    if (outcome.reason === 'no_responders') {
      if (node !== undefined) this.#directory.forget(nodeId);
      return missing();
    }
    return sendRefusal(reply, {
      status: 503,
      code: ErrorCodes.BUS_UNAVAILABLE,
      reason: `node ${nodeId} did not answer (${outcome.reason})`,
      retryAfterSeconds: 1,
    });
  }

  /** A viewer offer's stream (the node that ingests it is preferred), if it names one. */
  #watchedStream(request: FastifyRequest): WatchedStream | undefined {
    const body = request.body as Record<string, unknown> | null | undefined;
    if (typeof body !== 'object' || body === null) return undefined;
    const tenant = tenantOf(this.#http.tokenOf(request));
    if (isStreamName(body.stream)) return { tenant, stream: body.stream };
    if (typeof body.session === 'string')
      return { tenant, stream: '', node: nodeOfPeerId(body.session) };
    return undefined;
  }

  #failed(node: NodeHeartbeat, kind: PlacementKind, outcome: ForwardOutcome): void {
    this.#placement.release(node, kind);
    this.#directory.forget(node.id);
    this.#count(node.id, outcome);
    const suppressed = this.#skipLog.take();
    if (suppressed === undefined) return;
    const why = outcome.ok ? `503 ${outcome.reply.body.slice(0, 200)}` : outcome.message;
    this.#log.warn(
      {
        event: 'node-skipped',
        node: node.id,
        kind,
        reason: outcome.ok ? 'unavailable' : outcome.reason,
        ...(suppressed > 0 ? { suppressed } : {}),
      },
      `node ${node.id} skipped: ${why}`,
    );
  }

  #count(nodeId: string, outcome: ForwardOutcome): void {
    if (outcome.ok) return;
    this.#totals.forwardFailures++;
    if (outcome.reason === 'timeout') this.#totals.forwardTimeouts++;
    this.#metrics.failed(nodeId, outcome.reason);
  }

  #send(reply: FastifyReply, outcome: ForwardOutcome & { ok: true }): FastifyReply {
    const { status, body } = outcome.reply;
    return reply.code(status).headers(replyHeadersOf(outcome.reply)).send(body);
  }
}

/**
 * Starts a front and resolves once it listens: connects to NATS (`PS_ERR_BUS_UNAVAILABLE` when it
 * cannot), reads the node directory, then serves the same HTTP API as a server.
 *
 * @example
 * const front = await createFront({ bus: 'nats://127.0.0.1:4222', port: 8080 });
 */
export async function createFront(options: FrontOptions): Promise<PointstreamFront> {
  if (typeof options?.bus !== 'string' || !/^(nats|tls|ws|wss):\/\/\S+$/.test(options.bus))
    throw invalidOption('bus', 'a NATS URL, nats://HOST:PORT', options?.bus);
  const timeout = options.forwardTimeoutMs;
  if (timeout !== undefined && (!Number.isInteger(timeout) || timeout < 1))
    throw invalidOption('forwardTimeoutMs', 'a positive integer', timeout);
  const limits = withDefaults<FrontLimits>(DEFAULT_FRONT_LIMITS, options.limits);
  const { host, port } = listenAddressOf({ host: options.host, port: options.port });
  const log = options.logger ?? silentLogger;
  const where = redactUrl(options.bus);
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: options.bus.split(',').map((server) => server.trim()),
      name: 'pointstream-front',
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      timeout: CONNECT_TIMEOUT_MS,
    });
  } catch (error) {
    throw new PointstreamError(
      ErrorCodes.BUS_UNAVAILABLE,
      `cannot reach the bus at ${where}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  let directory: NodeDirectory | undefined;
  try {
    try {
      directory = await NodeDirectory.open(nc, { log: log.child({ component: 'directory' }) });
    } catch (error) {
      throw new PointstreamError(
        ErrorCodes.BUS_UNAVAILABLE,
        `cannot read the node directory at ${where} (is JetStream on?): ${(error as Error).message}`,
        { cause: error },
      );
    }
    const front = new PointstreamFront(options, limits, nc, directory);
    await front.listen(host, port, options.bus);
    return front;
  } catch (error) {
    directory?.close();
    await nc.close().catch(() => undefined);
    throw error;
  }
}
