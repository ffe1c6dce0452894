import type { BusPublisher } from '../bus/publisher.js';
import { ErrorCodes } from '../errors.js';
import type { RtcOptions } from '../rtc/peer.js';
import { SafeEmitter } from '../util/emitter.js';
import { silentLogger } from '../util/logger.js';
import type { Logger } from '../util/logger.js';
import { HOST_IS_LITTLE_ENDIAN } from '../wire/points.js';
import { TokenAuth } from './auth.js';
import { ReassemblyBudgets } from './budget.js';
import { FrameBufferPool } from './buffer-pool.js';
import { busConfirm, openBus } from './bus.js';
import { DEFAULT_DRAIN_TIMEOUT_MS, NodeCluster, clusterPeerIds } from './cluster.js';
import { DecodePool } from './decode-pool.js';
import { FrameIterators } from './frame-iterator.js';
import type { FramesOptions } from './frame-iterator.js';
import { offerLogFields } from './http/session-offer.js';
import type { AdmittedSession, SessionEntry } from './http/session-resource.js';
import { SignalingHttp } from './http/signaling.js';
import { listenAddressOf, resolveLimits, sessionRtcOptions } from './limits.js';
import { ServerMetrics } from './metrics.js';
import { FrameRecorder, sessionFolder } from './recorder.js';
import { registerServerRoutes } from './routes.js';
import { Session } from './session.js';
import { serverStats } from './stats.js';
import type { StatsParts } from './stats.js';
import { StreamRegistry } from './streams.js';
import { TrafficTotals } from './totals.js';
import { ViewerHub } from './viewer.js';
import { isPublicAsset } from './web.js';
import type { WebRoutes } from './web.js';
import type { ReceivedFrame, ServerEvents, ServerLimits, ServerOptions } from './types.js';
import type { ServerStats, SessionEnd } from './types.js';

export { DEFAULT_PORT, DEFAULT_SERVER_LIMITS } from './limits.js';

/**
 * A pointstream server: HTTP signaling ({@link SignalingHttp}) plus one RTCPeerConnection per offer.
 * It wires its parts together and keeps the registry of live sessions. Create it with
 * {@link createServer}.
 */
export class PointstreamServer extends SafeEmitter<ServerEvents> {
  readonly limits: ServerLimits;
  readonly #http: SignalingHttp;
  readonly #rtc: RtcOptions;
  readonly #log: Logger;
  readonly #sessions = new Map<string, SessionEntry>();
  readonly #totals = new TrafficTotals();
  readonly #iterators: FrameIterators;
  /** What `/stats` reports on. */
  readonly #parts: StatsParts;
  /** Native connections of ended sessions still being released. */
  readonly #teardowns = new Set<Promise<void>>();
  readonly #recorder: FrameRecorder | undefined;
  readonly #budgets: ReassemblyBudgets;
  readonly #viewers: ViewerHub;
  readonly #streams: StreamRegistry;
  readonly #metrics: ServerMetrics;
  #web: WebRoutes | undefined;
  readonly #pool: FrameBufferPool | undefined;
  /** Encoded frames are decoded here, never on the event loop that serves signaling. */
  readonly #decoder = new DecodePool();
  readonly #bus: BusPublisher | undefined;
  /** Membership (with a bus), draining, the bus's health. */
  readonly #cluster: NodeCluster;
  #closing = false;
  #url = '';

  /** @internal use {@link createServer} (which connects the `bus` first) */
  constructor(options: ServerOptions, bus?: BusPublisher) {
    const log = options.logger ?? silentLogger;
    super((error, event) =>
      log.error(
        { event: 'listener-error', listenerOf: event, err: error },
        `a '${event}' listener threw`,
      ),
    );
    this.#log = log;
    this.#bus = bus;
    const limits = (this.limits = resolveLimits(options.limits));
    this.#rtc = sessionRtcOptions(options, limits);
    // Idle buffers are capped like reassembly itself: at most a quarter of its budget.
    this.#pool = options.reuseFrameBuffers
      ? new FrameBufferPool(Math.floor(limits.maxTotalReassemblyBytes / 4))
      : undefined;
    this.#recorder =
      options.record === undefined
        ? undefined
        : new FrameRecorder(options.record, log.child({ component: 'recorder' }));
    this.#budgets = new ReassemblyBudgets({
      maxTotalBytes: limits.maxTotalReassemblyBytes,
      maxClientBytes: limits.maxClientReassemblyBytes,
      maxSessionBytes: limits.maxSessionReassemblyBytes,
    });
    this.#http = new SignalingHttp({
      limits,
      tls: options.tls,
      auth: options.tokens === undefined ? undefined : new TokenAuth(options.tokens),
      corsOrigins: options.corsOrigins,
      peerId: clusterPeerIds(bus),
      isPublic: (request) =>
        this.#web !== undefined && isPublicAsset(this.#web, request.method, request.url),
      log,
    });
    this.#streams = new StreamRegistry(limits.streamHoldMs, {
      expired: (name) => this.#viewers.onStreamEnded(name),
    });
    this.#viewers = new ViewerHub({
      rtc: this.#rtc,
      log: log.child({ component: 'viewer' }),
      options: options.viewer ?? {},
      streams: this.#streams,
      bus,
    });
    this.#parts = {
      startedAt: Date.now(),
      cpuAtStart: process.cpuUsage(),
      sessions: this.#sessions,
      streams: this.#streams,
      budgets: this.#budgets,
      decoder: this.#decoder,
      pool: this.#pool,
      recorder: this.#recorder,
      viewers: this.#viewers,
      totals: this.#totals,
      bus,
      cluster: () => this.#cluster.stats(),
    };
    this.#cluster = new NodeCluster(this.#parts, this.#http, { ...options, bus, log, limits });
    this.#metrics = new ServerMetrics(() => this.stats(), bus !== undefined);
    this.#iterators = new FrameIterators({ source: this, log });
    this.#web = registerServerRoutes({
      http: this.#http,
      log,
      limits,
      sessions: this.#sessions,
      streams: this.#streams,
      viewers: this.#viewers,
      events: this,
      metrics: this.#metrics,
      stats: (token) => this.stats(token),
      isClosing: () => this.#closing || this.#cluster.draining,
      refusal: () => this.#cluster.refusal(),
      open: (id, admitted) => this.#openSession(id, admitted),
    });
  }

  /** Base URL of the signaling server, e.g. `http://127.0.0.1:8080`. */
  get url(): string {
    return this.#url;
  }

  /** @internal */
  async listen(host: string, port: number): Promise<void> {
    await this.#viewers.started();
    this.#url = await this.#http.listen(host, port, {
      rtcBindAddress: this.#rtc.bindAddress ?? '(all)',
      limits: this.limits,
    });
    await this.#cluster.start();
  }

  /** Live sessions and totals since start; `token` (auth on: the asker's id) shows only its own. */
  stats(token?: string): ServerStats {
    return serverStats(this.#parts, token);
  }

  /**
   * Frames as an async iterator. At most `maxQueued` frames wait for a slow consumer; when more
   * arrive the oldest waiting one is dropped and a warning is logged (never silently). With
   * `reuseFrameBuffers` on, a frame stays valid until the consumer asks for the next one.
   */
  frames(options: FramesOptions = {}): AsyncGenerator<ReceivedFrame> {
    return this.#iterators.frames(options);
  }

  /** Drains ({@link NodeCluster.drain}: offers `503`, sessions moved away), then closes. */
  async drain(options: { readonly timeoutMs?: number } = {}): Promise<void> {
    if (this.#closing || this.#cluster.draining) return;
    await this.#cluster.drain(options.timeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS);
    await this.close();
  }

  /** Stops accepting offers, ends every session (telling clients why) and closes the HTTP server. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    // Out of the cluster first (the heartbeat key goes), so that fronts stop placing here.
    await this.#cluster.close();
    // After a drain that timed out, the clients left are still told to move.
    const code = this.#cluster.draining ? ErrorCodes.SESSION_MOVED : ErrorCodes.SESSION_CLOSED;
    for (const { session } of [...this.#sessions.values()])
      session.close(code, 'server shutting down', { normal: true });
    this.#iterators.close();
    await this.#viewers.close(code);
    await this.#http.close();
    await Promise.all([...this.#teardowns]);
    await this.#bus?.close();
    await this.#decoder.close();
    await this.#recorder?.flush();
    this.#streams.clear();
    this.#pool?.clear();
    this.#metrics.close();
    this.#log.info(
      { event: 'closed', ...this.#totals.of(), recording: this.#recorder?.stats() },
      'server closed',
    );
  }

  /** Makes and registers the session of an admitted offer. */
  #openSession(id: string, admitted: AdmittedSession): Session {
    const { request, offer, ticket } = admitted;
    const token = this.#http.tokenOf(request);
    // A client that names no stream gets one of its own, named after its session.
    const stream = offer.stream ?? id;
    const startedAt = Date.now();
    const folder = sessionFolder(stream, id, startedAt);
    const recording = this.#recorder?.pathOf(folder);
    const log = this.#log.child({ session: id, stream });
    const tally = this.#totals.open(token);
    // Each client's share of the budget is counted by token, else by address.
    const share = this.#budgets.forSession(
      token === undefined ? `addr:${request.ip}` : `token:${token}`,
    );
    const memory = { budget: share.budget, pool: this.#pool, decoder: this.#decoder };
    const identity = { stream, recording, remoteAddress: request.ip };
    const session = new Session({
      id,
      ...identity,
      rtc: this.#rtc,
      limits: this.limits,
      memory,
      log,
      confirm: busConfirm(this.#bus, { id, stream, token, startedAt }),
      hooks: {
        frame: (frame) => {
          tally.frame(frame);
          this.#streams.frame(frame);
          this.#metrics.frame(frame.captureTime, frame.receivedAt);
          this.#recorder?.record(frame, folder);
          this.#viewers.onFrame(frame);
          this.emit('frame', frame);
        },
        rejected: (sessionId, seq, error) => {
          tally.rejected();
          this.#streams.rejected(stream);
          this.#metrics.rejected(error.code);
          this.emit('frameRejected', { sessionId, seq, error });
        },
        closed: (end: SessionEnd) => {
          this.#sessions.delete(id);
          const teardown = session.teardown;
          this.#teardowns.add(teardown);
          void teardown.finally(() => this.#teardowns.delete(teardown));
          ticket.release();
          share.release();
          tally.closed();
          this.#streams.closed(stream, id);
          this.#viewers.onSessionClosed(stream, id);
          this.emit('sessionClosed', end);
        },
      },
    });
    this.#sessions.set(id, { session, token });
    this.#streams.open(stream, token, id, recording);
    // The stream's sender came back (or a second sender took its name): one live session per
    // stream, the newest. The old one's sender is told why and does not reconnect.
    const why = `replaced by a new session of stream ${stream}`;
    if (offer.replaces !== undefined)
      this.#sessions
        .get(offer.replaces)
        ?.session.close(ErrorCodes.STREAM_REPLACED, why, { normal: true });
    log.info({ event: 'session-new', ...offerLogFields(offer, request.ip) }, 'new session');
    this.emit('session', session.stats());
    return session;
  }
}

/**
 * Starts a pointstream server and resolves once it listens. `await server.close()` ends it.
 *
 * @example
 * const server = await createServer({ host: '127.0.0.1', port: 0 });
 * server.on('frame', (frame) => console.log(frame.seq, frame.points.length / 3));
 */
export async function createServer(options: ServerOptions = {}): Promise<PointstreamServer> {
  if (!HOST_IS_LITTLE_ENDIAN) throw new Error('pointstream needs a little-endian host');
  const { host, port } = listenAddressOf(options);
  // A bus that cannot be reached, or holds an unusable stream, stops the start here.
  const bus = await openBus(options.bus, options.logger ?? silentLogger);
  try {
    const server = new PointstreamServer(options, bus);
    await server.listen(host, port);
    return server;
  } catch (error) {
    await bus?.close();
    throw error;
  }
}
