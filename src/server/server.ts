import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { Socket } from 'node:net';
import cors from '@fastify/cors';
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCodes, PointstreamError, invalidOption } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { RtcOptions } from '../rtc/peer.js';
import {
  DEFAULT_MAX_SDP_BYTES,
  inspectOffer,
  parseSdpFragment,
  withIpCandidatesOnly,
} from '../signaling/sdp.js';
import { SafeEmitter } from '../util/emitter.js';
import { LogLimiter } from '../util/log-limit.js';
import { silentLogger } from '../util/logger.js';
import type { Logger } from '../util/logger.js';
import { DEFAULT_REASSEMBLY_LIMITS } from '../wire/reassembler.js';
import { HOST_IS_LITTLE_ENDIAN } from '../wire/points.js';
import { TokenAuth } from './auth.js';
import { FrameBufferPool } from './buffer-pool.js';
import { DecodePool } from './decode-pool.js';
import { CappedBudget } from './budget.js';
import { ClientLimiter } from './client-limits.js';
import { ServerMetrics } from './metrics.js';
import { FrameRecorder, sessionFolder } from './recorder.js';
import { Session } from './session.js';
import { StreamRegistry, streamOfOffer } from './streams.js';
import { ViewerHub } from './viewer.js';
import { isPublicAsset, registerWebRoutes } from './web.js';
import type { WebRoutes } from './web.js';
import type {
  ReceivedFrame,
  ServerEvents,
  ServerLimits,
  ServerOptions,
  ServerStats,
  SessionEnd,
} from './types.js';

/** What a session must accept whatever else is set: the chunks of the client's default size. */
const CHUNKED_MESSAGE_BYTES = 256 * 1024;
/**
 * What a viewer's peer connection advertises: viewers send the server nothing large, but
 * libdatachannel also refuses to send a message above its own limit, and the server sends viewers
 * messages of up to 256 KiB (docs/protocol.md).
 */
const VIEWER_MAX_MESSAGE_BYTES = 256 * 1024;

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
});

/** PATCHes one session (or viewer) may make: a client sends one, or a few while it gathers. */
export const MAX_PATCHES_PER_SESSION = 16;
/** Remote candidates one session (or viewer) may add over all its PATCHes. */
export const MAX_CANDIDATES_PER_SESSION = 64;
/** Keep-alive sockets idle this long are closed (fastify's default is 72 s). */
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** How often Node checks request deadlines (its default, 30 s, would let a socket outlive its own by that much). */
const DEADLINE_CHECK_MS = 1_000;

/** HTTP status for each error code signaling can answer with. */
const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCodes.SDP_INVALID]: 400,
  [ErrorCodes.SDP_NO_DATACHANNEL]: 400,
  [ErrorCodes.CANDIDATE_REFUSED]: 400,
  [ErrorCodes.TOO_MANY_REQUESTS]: 429,
  [ErrorCodes.SESSION_NOT_FOUND]: 404,
  [ErrorCodes.SESSION_CLOSED]: 409,
  [ErrorCodes.STREAM_INVALID]: 400,
  [ErrorCodes.STREAM_FORBIDDEN]: 403,
  [ErrorCodes.UNAUTHORIZED]: 401,
  [ErrorCodes.CONNECTION_FAILED]: 500,
};

const SESSION_PATH = '/sessions/';

/** Fastify's own request errors, as pointstream codes. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ErrorCodes.HTTP_UNSUPPORTED_MEDIA_TYPE,
  FST_ERR_CTP_BODY_TOO_LARGE: ErrorCodes.HTTP_BODY_TOO_LARGE,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ErrorCodes.HTTP_BAD_REQUEST,
  FST_ERR_CTP_EMPTY_JSON_BODY: ErrorCodes.HTTP_BAD_REQUEST,
  FST_ERR_CTP_INVALID_JSON_BODY: ErrorCodes.HTTP_BAD_REQUEST,
};

function positiveInteger(field: string, value: unknown, min = 1): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw invalidOption(field, `an integer >= ${min}`, value);
  }
  return value;
}

function resolveLimits(limits: Partial<ServerLimits> | undefined): ServerLimits {
  // The per-session and per-client shares follow the frame limits unless set.
  const frames =
    (limits?.maxFramesInReassembly ?? DEFAULT_SERVER_LIMITS.maxFramesInReassembly) *
    (limits?.maxFrameBytes ?? DEFAULT_SERVER_LIMITS.maxFrameBytes);
  const session = limits?.maxSessionReassemblyBytes ?? frames;
  const merged = {
    ...DEFAULT_SERVER_LIMITS,
    maxSessionReassemblyBytes: session,
    maxClientReassemblyBytes: 2 * session,
    ...limits,
  };
  for (const key of Object.keys(merged) as (keyof ServerLimits)[]) {
    if (key === 'allowNonFinite') {
      if (typeof merged.allowNonFinite !== 'boolean')
        throw invalidOption('limits.allowNonFinite', 'a boolean', merged.allowNonFinite);
    } else if (!(key in DEFAULT_SERVER_LIMITS)) {
      throw invalidOption(`limits.${key}`, 'a known limit', key);
    } else positiveInteger(`limits.${key}`, merged[key]);
  }
  return Object.freeze(merged);
}

/**
 * A pointstream server: HTTP signaling plus one RTCPeerConnection per offer. Create it with
 * {@link createServer}.
 */
export class PointstreamServer extends SafeEmitter<ServerEvents> {
  readonly limits: ServerLimits;
  readonly #app: FastifyInstance;
  readonly #rtc: RtcOptions;
  readonly #log: Logger;
  readonly #sessions = new Map<string, Session>();
  readonly #startedAt = Date.now();
  readonly #cpuAtStart = process.cpuUsage();
  #totals: Mutable<ServerStats['totals']> = {
    sessionsOpened: 0,
    sessionsClosed: 0,
    framesReceived: 0,
    framesRejected: 0,
    bytesReceived: 0,
    pointsReceived: 0,
  };
  readonly #iteratorWakers = new Set<() => void>();
  /** Native connections of ended sessions still being released. */
  readonly #teardowns = new Set<Promise<void>>();
  readonly #auth: TokenAuth | undefined;
  readonly #clientLimiter: ClientLimiter;
  /** Viewer offers per client per minute (viewer counts are capped by the hub itself). */
  readonly #viewerLimiter: ClientLimiter;
  readonly #tls: boolean;
  readonly #recorder: FrameRecorder | undefined;
  /** Which token (id) and address created each session: only that token may change or end it. */
  readonly #owners = new Map<
    string,
    { token: string | undefined; keys: string[]; patches: number; candidates: number }
  >();
  /** Totals per token id, for the token's own `/stats` view. */
  readonly #tokenTotals = new Map<string, ServerStats['totals']>();
  /** Unauthenticated and refused requests are logged at most 20 per 10 s (then counted). */
  readonly #authLog = new LogLimiter(20, 10_000);
  readonly #httpLog = new LogLimiter(20, 10_000);
  /** Open sockets per remote address. */
  readonly #connections = new Map<string, number>();
  /** The token id each authenticated request presented. */
  readonly #tokens = new WeakMap<FastifyRequest, string>();
  #reassemblyBytes = 0;
  /** Each client's share of the budget (by token, else by address), while it has sessions. */
  readonly #clientBudgets = new Map<string, { budget: CappedBudget; sessions: number }>();
  readonly #budget = {
    reserve: (bytes: number): boolean => {
      if (this.#reassemblyBytes + bytes > this.limits.maxTotalReassemblyBytes) return false;
      this.#reassemblyBytes += bytes;
      return true;
    },
    release: (bytes: number): void => {
      this.#reassemblyBytes -= bytes;
    },
  };
  readonly #viewers: ViewerHub;
  readonly #streams: StreamRegistry;
  readonly #metrics: ServerMetrics;
  #web: WebRoutes | undefined;
  readonly #pool: FrameBufferPool | undefined;
  /** Encoded frames are decoded here, never on the event loop that serves signaling. */
  readonly #decoder = new DecodePool();
  #closing = false;
  #url = '';

  /** @internal use {@link createServer} */
  constructor(options: ServerOptions) {
    const log = options.logger ?? silentLogger;
    super((error, event) =>
      log.error(
        { event: 'listener-error', listenerOf: event, err: error },
        `a '${event}' listener threw`,
      ),
    );
    this.#log = log;
    this.limits = resolveLimits(options.limits);
    const host = options.host ?? '127.0.0.1';
    // WebRTC binds where HTTP listens unless told otherwise, so that a loopback server stays loopback.
    const bindAddress =
      options.rtc?.bindAddress ??
      (isIP(host) && host !== '0.0.0.0' && host !== '::' ? host : undefined);
    this.#rtc = {
      ...options.rtc,
      ...(bindAddress === undefined ? {} : { bindAddress }),
      // Native stacks buffer a message up to this size before JavaScript sees it, outside any
      // budget: advertise only what a session needs (issue 14: 64 MiB let one session hold 490 MB).
      maxMessageSize:
        options.rtc?.maxMessageSize ??
        Math.max(this.limits.maxPlainMessageBytes, CHUNKED_MESSAGE_BYTES),
    };
    this.#auth = options.tokens === undefined ? undefined : new TokenAuth(options.tokens);
    this.#clientLimiter = new ClientLimiter(
      this.limits.maxSessionsPerClient,
      this.limits.maxOffersPerMinute,
    );
    this.#tls = options.tls !== undefined;
    // Idle buffers are capped like reassembly itself: at most a quarter of its budget.
    this.#pool = options.reuseFrameBuffers
      ? new FrameBufferPool(Math.floor(this.limits.maxTotalReassemblyBytes / 4))
      : undefined;
    this.#recorder =
      options.record === undefined
        ? undefined
        : new FrameRecorder(options.record, log.child({ component: 'recorder' }));
    // Every socket has deadlines: a silent one and a whole request (headers and body) within
    // requestTimeoutMs, a kept-alive one 5 s; unfinished bodies were held open for ever before. No
    // inactivity timeout: it would also cut a slow answer (ICE gathering takes up to its own timeout).
    const deadlines = {
      requestTimeout: this.limits.requestTimeoutMs,
      headersTimeout: this.limits.requestTimeoutMs,
      connectionsCheckingInterval: DEADLINE_CHECK_MS,
    };
    this.#app = Fastify({
      bodyLimit: this.limits.maxSdpBytes,
      logger: false,
      return503OnClosing: true,
      requestTimeout: this.limits.requestTimeoutMs,
      keepAliveTimeout: Math.min(KEEP_ALIVE_TIMEOUT_MS, this.limits.requestTimeoutMs),
      http: deadlines,
      ...(options.tls
        ? { https: { cert: options.tls.cert, key: options.tls.key, ...deadlines } }
        : {}),
    });
    this.#capConnections();
    if (options.corsOrigins && options.corsOrigins.length > 0) {
      void this.#app.register(cors, {
        origin: [...options.corsOrigins],
        methods: ['GET', 'POST', 'PATCH', 'DELETE'],
        allowedHeaders: ['Authorization', 'Content-Type'],
        exposedHeaders: ['Location', 'Retry-After'],
        maxAge: 600,
      });
    }
    this.#streams = new StreamRegistry(this.limits.streamHoldMs, {
      expired: (name) => this.#viewers.onStreamEnded(name),
    });
    this.#viewers = new ViewerHub({
      rtc: { ...this.#rtc, maxMessageSize: VIEWER_MAX_MESSAGE_BYTES },
      log: log.child({ component: 'viewer' }),
      options: options.viewer ?? {},
      canWatch: (request, stream) => {
        const owner = this.#streams.ownerOf(stream);
        return owner !== undefined && owner.token === this.#tokens.get(request);
      },
      streamOf: (sessionId) => this.#sessions.get(sessionId)?.stream,
      sessionOf: (stream) => this.#streams.sessionOf(stream),
      isClosing: () => this.#closing,
      admit: (request) => {
        const token = this.#tokens.get(request);
        const keys = [...(token === undefined ? [] : [`token:${token}`]), `addr:${request.ip}`];
        const refused = this.#viewerLimiter.admit(keys);
        if (refused !== undefined) return refused;
        this.#viewerLimiter.sessionOpened(keys);
        let held = true;
        return {
          release: () => {
            if (held) this.#viewerLimiter.sessionClosed(keys);
            held = false;
          },
        };
      },
    });
    this.#viewerLimiter = new ClientLimiter(
      this.#viewers.options.maxViewersPerClient,
      this.limits.maxOffersPerMinute,
    );
    this.#metrics = new ServerMetrics(() => this.stats());
    this.#routes();
  }

  /** Base URL of the signaling server, e.g. `http://127.0.0.1:8080`. */
  get url(): string {
    return this.#url;
  }

  /** @internal */
  async listen(host: string, port: number): Promise<void> {
    await this.#app.listen({ host, port });
    const address = this.#app.server.address();
    if (address === null || typeof address === 'string')
      throw new Error('server has no TCP address');
    const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.#url = `${this.#tls ? 'https' : 'http'}://${urlHost}:${address.port}`;
    this.#log.info(
      {
        event: 'listening',
        url: this.#url,
        rtcBindAddress: this.#rtc.bindAddress ?? '(all)',
        limits: this.limits,
      },
      `signaling on ${this.#url}/offer (${this.#tls ? 'HTTPS' : 'plain HTTP'}, ${this.#auth ? 'bearer-token auth' : 'no auth'})`,
    );
    const exposed = !/^(127\.|\[::1\]|localhost)/.test(urlHost);
    if (exposed && (!this.#tls || !this.#auth)) {
      this.#log.warn(
        { event: 'insecure', tls: this.#tls, auth: this.#auth !== undefined },
        `signaling is reachable beyond loopback ${this.#tls ? '' : 'over plain HTTP '}${this.#auth ? '' : 'without auth'}: use --tls-cert/--tls-key and --token-file`,
      );
    }
  }

  /**
   * Live sessions and totals since start. With auth on, `GET /stats` lists only the sessions of
   * the token that asks (`token`: its id); the library call lists all.
   */
  stats(token?: string): ServerStats {
    const cpu = process.cpuUsage(this.#cpuAtStart);
    const memory = process.memoryUsage();
    return {
      startedAt: this.#startedAt,
      sessions: [...this.#sessions.values()]
        .filter((session) => token === undefined || this.#owners.get(session.id)?.token === token)
        .map((session) => session.stats()),
      streams: this.#streams.stats((owner) => token === undefined || owner === token),
      reassemblyBytes: this.#reassemblyBytes,
      decode: {
        workers: this.#decoder.size,
        queued: this.#decoder.queued,
        framesDecoded: this.#decoder.framesDecoded,
        decodeMs: Math.round(this.#decoder.decodeMs),
        framesOverBudget: this.#decoder.framesOverBudget,
        sessionsClosedOverBudget: this.#decoder.sessionsClosedOverBudget,
      },
      frameBuffers: this.#pool && {
        allocated: this.#pool.allocated,
        reused: this.#pool.reused,
        idleBytes: this.#pool.idleBytes,
      },
      recording: this.#recordingStats(token),
      viewers: this.#viewers
        .stats()
        .filter(
          (viewer) => token === undefined || this.#streams.ownerOf(viewer.stream)?.token === token,
        ),
      // A token sees its own totals: the others' traffic is theirs.
      totals: { ...(token === undefined ? this.#totals : this.#totalsOf(token)) },
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      memory: {
        rssBytes: memory.rss,
        peakRssBytes: process.resourceUsage().maxRSS * 1024,
        heapUsedBytes: memory.heapUsed,
      },
    };
  }

  /**
   * Frames as an async iterator. At most `maxQueued` frames wait for a slow consumer; when more
   * arrive the oldest waiting one is dropped and a warning is logged (never silently). With
   * `reuseFrameBuffers` on, a frame stays valid until the consumer asks for the next one.
   */
  async *frames(
    options: { maxQueued?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<ReceivedFrame> {
    const maxQueued = positiveInteger('maxQueued', options.maxQueued ?? 8);
    const queue: { frame: ReceivedFrame; release: () => void }[] = [];
    let wake: (() => void) | undefined;
    let dropped = 0;
    let current: (() => void) | undefined;
    const onFrame = (frame: ReceivedFrame): void => {
      if (queue.length >= maxQueued) {
        const old = queue.shift() as { frame: ReceivedFrame; release: () => void };
        old.release();
        dropped++;
        this.#log.warn(
          { event: 'consumer-drop', sessionId: old.frame.sessionId, seq: old.frame.seq, dropped },
          'frames() consumer too slow: oldest queued frame dropped',
        );
      }
      queue.push({ frame, release: frame.retain() });
      wake?.();
    };
    const onAbort = (): void => wake?.();
    this.on('frame', onFrame);
    this.#iteratorWakers.add(onAbort);
    options.signal?.addEventListener('abort', onAbort);
    try {
      while (!options.signal?.aborted) {
        current?.();
        current = undefined;
        const next = queue.shift();
        if (next !== undefined) {
          current = next.release;
          yield next.frame;
          continue;
        }
        if (this.#closing) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      current?.();
      for (const waiting of queue.splice(0)) waiting.release();
      this.off('frame', onFrame);
      this.#iteratorWakers.delete(onAbort);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Stops accepting offers, ends every session (telling clients why) and closes the HTTP server. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    for (const session of [...this.#sessions.values()])
      session.close(ErrorCodes.SESSION_CLOSED, 'server shutting down', { normal: true });
    // Let frames() iterators finish.
    for (const wake of this.#iteratorWakers) wake();
    await this.#viewers.close();
    await this.#app.close();
    await Promise.all([...this.#teardowns]);
    await this.#decoder.close();
    await this.#recorder?.flush();
    this.#streams.clear();
    this.#pool?.clear();
    this.#metrics.close();
    this.#log.info(
      { event: 'closed', ...this.#totals, recording: this.#recorder?.stats() },
      'server closed',
    );
  }

  /** The recorder's figures; a token's view leaves out the last error (another stream's path). */
  #recordingStats(token: string | undefined): ServerStats['recording'] {
    const stats = this.#recorder?.stats();
    return stats === undefined || token === undefined ? stats : { ...stats, lastError: undefined };
  }

  #totalsOf(token: string): Mutable<ServerStats['totals']> {
    let totals = this.#tokenTotals.get(token);
    if (totals === undefined) {
      totals = {
        sessionsOpened: 0,
        sessionsClosed: 0,
        framesReceived: 0,
        framesRejected: 0,
        bytesReceived: 0,
        pointsReceived: 0,
      };
      this.#tokenTotals.set(token, totals);
    }
    return totals;
  }

  /**
   * At most `maxConnections` sockets in all (Node refuses the rest) and `maxConnectionsPerAddress`
   * from one address (destroyed at once), so that one client cannot take every socket.
   */
  #capConnections(): void {
    const server = this.#app.server;
    server.maxConnections = this.limits.maxConnections;
    const perAddress = this.limits.maxConnectionsPerAddress;
    const onConnection = (socket: Socket): void => {
      const address = socket.remoteAddress ?? '';
      const open = (this.#connections.get(address) ?? 0) + 1;
      if (open > perAddress) {
        socket.destroy();
        return;
      }
      this.#connections.set(address, open);
      socket.once('close', () => {
        const left = (this.#connections.get(address) ?? 1) - 1;
        if (left > 0) this.#connections.set(address, left);
        else this.#connections.delete(address);
      });
    };
    // TLS sockets are counted from the TCP connection, before the handshake.
    server.on('connection', onConnection);
  }

  #routes(): void {
    const app = this.#app;
    // Only the media types signaling defines; fastify would otherwise take text/plain too.
    app.removeContentTypeParser('text/plain');
    app.addContentTypeParser(
      ['application/sdp', 'application/trickle-ice-sdpfrag'],
      { parseAs: 'string' },
      (_req, body, done) => done(null, body),
    );
    app.addHook('onRequest', async (request, reply) => {
      if (
        !this.#auth ||
        request.method === 'OPTIONS' ||
        request.url === '/healthz' ||
        (this.#web !== undefined && isPublicAsset(this.#web, request.method, request.url))
      )
        return;
      const token = this.#auth.verify(request.headers.authorization);
      if (token !== undefined) {
        this.#tokens.set(request, token);
        return;
      }
      const presented = request.headers.authorization !== undefined;
      const suppressed = this.#authLog.take();
      if (suppressed !== undefined)
        this.#log.warn(
          {
            event: 'auth-failed',
            method: request.method,
            url: request.url.slice(0, 200),
            remoteAddress: request.ip,
            reason: presented ? 'invalid token' : 'no token',
            suppressed,
          },
          suppressed > 0
            ? `request refused: bad or missing bearer token (and ${suppressed} more not logged)`
            : 'request refused: bad or missing bearer token',
        );
      // An unauthenticated client gets no more of this socket (nor time to finish a body on it).
      void reply.header('Connection', 'close');
      void reply.header(
        'WWW-Authenticate',
        presented
          ? 'Bearer realm="pointstream", error="invalid_token"'
          : 'Bearer realm="pointstream"',
      );
      await sendProblem(
        reply,
        401,
        ErrorCodes.UNAUTHORIZED,
        presented ? 'invalid bearer token' : 'a bearer token is required',
      );
    });
    app.setErrorHandler((error: FastifyError | PointstreamError, request, reply) =>
      this.#sendError(error, request, reply),
    );
    app.setNotFoundHandler((request, reply) =>
      sendProblem(
        reply,
        404,
        ErrorCodes.HTTP_NOT_FOUND,
        `no route for ${request.method} ${request.url.split('?')[0]}`,
      ),
    );

    app.post('/offer', (request, reply) => this.#onOffer(request, reply));
    app.patch(`${SESSION_PATH}:id`, (request, reply) => this.#onTrickle(request, reply));
    app.delete(`${SESSION_PATH}:id`, (request, reply) => this.#onDelete(request, reply));
    app.get('/stats', (request) => this.stats(this.#tokens.get(request)));
    // `auth` lets the viewer page know, before any token, whether to ask for one.
    app.get('/healthz', () => ({
      ok: true,
      sessions: this.#sessions.size,
      auth: this.#auth !== undefined,
    }));
    // Server-wide numbers (as /stats' totals), for any valid token when auth is on.
    app.get('/metrics', async (_request, reply) =>
      reply.type(this.#metrics.contentType).send(await this.#metrics.text()),
    );
    this.#web = registerWebRoutes(app, this.#log.child({ component: 'web' }));
    this.#viewers.register(app);
    const allowed: Record<string, string[]> = {
      '/offer': ['POST', 'OPTIONS'],
      [`${SESSION_PATH}:id`]: ['PATCH', 'DELETE', 'OPTIONS'],
      '/stats': ['GET', 'HEAD'],
      '/healthz': ['GET', 'HEAD'],
      '/metrics': ['GET', 'HEAD'],
      '/viewer/offer': ['POST', 'OPTIONS'],
      '/viewer/peers/:id': ['PATCH', 'DELETE', 'OPTIONS'],
    };
    const every = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
    for (const [url, methods] of Object.entries(allowed)) {
      const others = every.filter((method) => !methods.includes(method) && method !== 'OPTIONS');
      app.route({
        method: others,
        url,
        handler: (request, reply) => {
          void reply.header('Allow', methods.join(', '));
          return sendProblem(
            reply,
            405,
            ErrorCodes.HTTP_METHOD_NOT_ALLOWED,
            `${request.method} is not allowed here; use ${methods.join(' or ')}`,
          );
        },
      });
    }
  }

  async #onOffer(request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const isJson = (request.headers['content-type'] ?? '').startsWith('application/json');
    let sdp: unknown;
    let jsonBody: Record<string, unknown> | undefined;
    if (isJson) {
      const body = request.body as Record<string, unknown> | null;
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new PointstreamError(
          ErrorCodes.SDP_INVALID,
          'JSON body must be an object {"sdp": "...", "type": "offer"}',
        );
      }
      if (body.type !== 'offer')
        throw new PointstreamError(ErrorCodes.SDP_INVALID, 'JSON "type" must be "offer"');
      sdp = body.sdp;
      jsonBody = body;
    } else sdp = request.body;
    const named = streamOfOffer(request.query, jsonBody);
    const token = this.#tokens.get(request);
    // Before anything else about the offer: a name this token may not use is its own mistake.
    const replaces = named === undefined ? undefined : this.#streams.check(named, token);
    if (typeof sdp !== 'string')
      throw new PointstreamError(ErrorCodes.SDP_INVALID, 'the offer SDP must be a string');
    const summary = inspectOffer(sdp);
    const offer = withIpCandidatesOnly(sdp, MAX_CANDIDATES_PER_SESSION);

    if (this.#closing) {
      void reply.header('Retry-After', '5');
      return sendProblem(reply, 503, ErrorCodes.SHUTTING_DOWN, 'server is shutting down');
    }
    if (this.#sessions.size >= this.limits.maxSessions) {
      void reply.header('Retry-After', '5');
      return sendProblem(
        reply,
        503,
        ErrorCodes.SERVER_FULL,
        `server is at its limit of ${this.limits.maxSessions} sessions`,
      );
    }

    const keys = [...(token === undefined ? [] : [`token:${token}`]), `addr:${request.ip}`];
    const refused = this.#clientLimiter.admit(keys) ?? this.#halfOpenRefusal(request.ip);
    if (refused !== undefined) {
      this.#log.warn(
        { event: 'client-limited', remoteAddress: request.ip, token, reason: refused.reason },
        `offer refused: ${refused.reason}`,
      );
      void reply.header('Retry-After', String(refused.retryAfterSeconds));
      return sendProblem(reply, 429, ErrorCodes.TOO_MANY_REQUESTS, refused.reason);
    }

    const id = randomBytes(16).toString('base64url');
    // A client that names no stream gets one of its own, named after its session.
    const stream = named ?? id;
    const folder = sessionFolder(stream, id, Date.now());
    const recording = this.#recorder?.pathOf(folder);
    const log = this.#log.child({ session: id, stream });
    this.#owners.set(id, { token, keys, patches: 0, candidates: 0 });
    const mine = token === undefined ? undefined : this.#totalsOf(token);
    this.#clientLimiter.sessionOpened(keys);
    const clientKey = token === undefined ? `addr:${request.ip}` : `token:${token}`;
    let client = this.#clientBudgets.get(clientKey);
    if (client === undefined) {
      client = {
        budget: new CappedBudget(this.limits.maxClientReassemblyBytes, this.#budget),
        sessions: 0,
      };
      this.#clientBudgets.set(clientKey, client);
    }
    client.sessions++;
    const clientBudget = client;
    const memory = {
      budget: new CappedBudget(this.limits.maxSessionReassemblyBytes, clientBudget.budget),
      pool: this.#pool,
      decoder: this.#decoder,
    };
    const identity = { stream, recording, remoteAddress: request.ip };
    const session = new Session({
      id,
      ...identity,
      rtc: this.#rtc,
      limits: this.limits,
      memory,
      log,
      hooks: {
        frame: (frame) => {
          this.#totals.framesReceived++;
          this.#totals.bytesReceived += frame.byteLength;
          this.#totals.pointsReceived += frame.pointCount;
          if (mine !== undefined) {
            mine.framesReceived++;
            mine.bytesReceived += frame.byteLength;
            mine.pointsReceived += frame.pointCount;
          }
          this.#streams.frame(frame);
          this.#metrics.frame(frame.captureTime, frame.receivedAt);
          this.#recorder?.record(frame, folder);
          try {
            this.#viewers.onFrame(frame);
          } catch (error) {
            // A viewer's problem must never cost ingest a frame.
            log.error({ event: 'viewer-error', err: error }, 'feeding viewers failed');
          }
          this.emit('frame', frame);
        },
        rejected: (sessionId, seq, error) => {
          this.#totals.framesRejected++;
          if (mine !== undefined) mine.framesRejected++;
          this.#streams.rejected(stream);
          this.#metrics.rejected(error.code);
          this.emit('frameRejected', { sessionId, seq, error });
        },
        closed: (end: SessionEnd) => {
          this.#sessions.delete(id);
          const teardown = session.teardown;
          this.#teardowns.add(teardown);
          void teardown.finally(() => this.#teardowns.delete(teardown));
          this.#clientLimiter.sessionClosed(keys);
          if (--clientBudget.sessions === 0) this.#clientBudgets.delete(clientKey);
          this.#owners.delete(id);
          this.#totals.sessionsClosed++;
          if (mine !== undefined) mine.sessionsClosed++;
          this.#streams.closed(stream, id);
          this.#viewers.onSessionClosed(stream, id);
          this.emit('sessionClosed', end);
        },
      },
    });
    this.#sessions.set(id, session);
    this.#totals.sessionsOpened++;
    if (mine !== undefined) mine.sessionsOpened++;
    this.#streams.open(stream, token, id, recording);
    if (replaces !== undefined) {
      // The stream's sender came back (or a second sender took its name): one live session per
      // stream, the newest. The old one's sender is told why and does not reconnect.
      this.#sessions
        .get(replaces)
        ?.close(ErrorCodes.STREAM_REPLACED, `replaced by a new session of stream ${stream}`, {
          normal: true,
        });
    }
    log.info(
      {
        event: 'session-new',
        remoteAddress: request.ip,
        replaces,
        form: isJson ? 'json' : 'sdp',
        offerCandidates: summary.candidates,
        offerMaxMessageSize: summary.maxMessageSize,
      },
      'new session',
    );
    this.emit('session', session.stats());

    let answer: string;
    try {
      answer = await session.answer(offer);
    } catch (error) {
      session.close(
        (error as PointstreamError).code ?? ErrorCodes.SDP_INVALID,
        `offer failed: ${(error as Error).message}`,
      );
      throw error;
    }
    const location = `${SESSION_PATH}${id}`;
    void reply.header('Location', location);
    if (isJson)
      return reply.code(200).send({
        sdp: answer,
        type: 'answer',
        session: id,
        stream,
        ...(recording === undefined ? {} : { recording }),
      });
    return reply.code(201).type('application/sdp').send(answer);
  }

  /**
   * Half-open sessions (ICE not yet connected) of one network prefix (IPv4 /24, IPv6 /48) may take
   * at most `maxHalfOpenPerPrefix` of the session slots, so that offers never followed by a
   * connection from a few networks cannot keep every slot busy. Sessions are at most 64: counting
   * them on each offer costs less than keeping counts in step with every state change.
   */
  #halfOpenRefusal(address: string): { reason: string; retryAfterSeconds: number } | undefined {
    const prefix = networkPrefix(address);
    let halfOpen = 0;
    for (const session of this.#sessions.values()) {
      if (session.state === 'connecting' && networkPrefix(session.remoteAddress ?? '') === prefix)
        halfOpen++;
    }
    if (halfOpen < this.limits.maxHalfOpenPerPrefix) return undefined;
    return {
      reason: `network ${prefix} already has ${halfOpen} sessions not yet connected (limit ${this.limits.maxHalfOpenPerPrefix})`,
      retryAfterSeconds: Math.ceil(this.limits.iceTimeoutMs / 1000),
    };
  }

  #session(request: FastifyRequest): Session {
    const { id } = request.params as { id: string };
    const session = this.#sessions.get(id);
    // Another token's session is answered like a missing one: its existence is not revealed.
    if (session === undefined || this.#owners.get(id)?.token !== this.#tokens.get(request)) {
      throw new PointstreamError(ErrorCodes.SESSION_NOT_FOUND, 'no such session');
    }
    return session;
  }

  #onTrickle(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const session = this.#session(request);
    if (request.headers['content-type'] !== 'application/trickle-ice-sdpfrag') {
      return sendProblem(
        reply,
        415,
        ErrorCodes.HTTP_UNSUPPORTED_MEDIA_TYPE,
        'PATCH takes application/trickle-ice-sdpfrag',
      );
    }
    const owner = this.#owners.get(session.id);
    if (owner !== undefined && ++owner.patches > MAX_PATCHES_PER_SESSION) {
      void reply.header('Retry-After', '60');
      return sendProblem(
        reply,
        429,
        ErrorCodes.TOO_MANY_REQUESTS,
        `at most ${MAX_PATCHES_PER_SESSION} PATCHes per session`,
      );
    }
    const candidates = parseSdpFragment(String(request.body), MAX_CANDIDATES_PER_SESSION);
    if (owner !== undefined && (owner.candidates += candidates.length) > MAX_CANDIDATES_PER_SESSION)
      throw new PointstreamError(
        ErrorCodes.CANDIDATE_REFUSED,
        `at most ${MAX_CANDIDATES_PER_SESSION} candidates per session`,
      );
    session.addRemoteCandidates(candidates);
    return reply.code(204).send();
  }

  #onDelete(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const session = this.#session(request);
    session.close(ErrorCodes.SESSION_CLOSED, 'client closed (DELETE)', { normal: true });
    return reply.code(200).send({ ok: true });
  }

  #sendError(
    error: FastifyError | PointstreamError,
    request: FastifyRequest,
    reply: FastifyReply,
  ): FastifyReply {
    if (error instanceof PointstreamError) {
      const status = HTTP_STATUS[error.code] ?? 400;
      this.#logRejected(request, status, error.code, error.message);
      return sendProblem(reply, status, error.code, error.message);
    }
    const status = error.statusCode ?? 500;
    if (status >= 500) {
      this.#log.error(
        { event: 'http-error', err: error, url: request.url },
        'signaling request failed',
      );
      return sendProblem(reply, 500, ErrorCodes.INTERNAL, 'internal error');
    }
    const code =
      FASTIFY_CODES[error.code] ??
      (status === 413
        ? ErrorCodes.HTTP_BODY_TOO_LARGE
        : status === 415
          ? ErrorCodes.HTTP_UNSUPPORTED_MEDIA_TYPE
          : ErrorCodes.HTTP_BAD_REQUEST);
    this.#logRejected(request, status, code, error.message);
    return sendProblem(reply, status, code, error.message);
  }

  /** One line per refused request, at most 20 per 10 s (then counted in the next line). */
  #logRejected(request: FastifyRequest, status: number, code: ErrorCode, message: string): void {
    const suppressed = this.#httpLog.take();
    if (suppressed === undefined) return;
    this.#log.info(
      {
        event: 'http-rejected',
        method: request.method,
        url: request.url.slice(0, 200),
        status,
        code,
        remoteAddress: request.ip,
        ...(suppressed > 0 ? { suppressed } : {}),
      },
      message.slice(0, 300),
    );
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The network an address belongs to, for half-open slots: IPv4 /24, IPv6 /48. */
export function networkPrefix(address: string): string {
  const v4 = /^(?:::ffff:)?(\d+\.\d+\.\d+)\.\d+$/i.exec(address);
  if (v4) return `${v4[1]}.0/24`;
  const groups = address.split('::')[0]?.split(':') ?? [];
  return `${groups.slice(0, 3).join(':')}::/48`;
}

function sendProblem(
  reply: FastifyReply,
  status: number,
  code: ErrorCode,
  message: string,
): FastifyReply {
  return reply.code(status).type('application/json').send({ error: { code, message } });
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
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8080;
  if (typeof host !== 'string' || host.length === 0)
    throw invalidOption('host', 'a non-empty string', host);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw invalidOption('port', 'an integer in [0, 65535]', port);
  const server = new PointstreamServer(options);
  await server.listen(host, port);
  return server;
}
