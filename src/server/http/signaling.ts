import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import cors from '@fastify/cors';
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CLUSTER_LAYOUT_VERSION, FORWARDED_REPLY_HEADERS } from '../../cluster/protocol.js';
import { FORWARDED_REQUEST_HEADERS } from '../../cluster/protocol.js';
import type { ForwardedReply, ForwardedRequest } from '../../cluster/protocol.js';
import { ErrorCodes } from '../../errors.js';
import type { ErrorCode, PointstreamError } from '../../errors.js';
import { LogLimiter } from '../../util/log-limit.js';
import type { Logger } from '../../util/logger.js';
import type { TokenAuth } from '../auth.js';
import type { ServerLimits } from '../types.js';
import { problemOf, sendProblem } from './problem.js';

/** Keep-alive sockets idle this long are closed (fastify's default is 72 s). */
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** How often Node checks request deadlines (its default, 30 s, would let a socket outlive its own by that much). */
const DEADLINE_CHECK_MS = 1_000;
const EVERY_METHOD = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
type Method = (typeof EVERY_METHOD)[number];

/** Options of {@link SignalingHttp}. */
export interface SignalingHttpOptions {
  readonly limits: Pick<
    ServerLimits,
    'maxSdpBytes' | 'requestTimeoutMs' | 'maxConnections' | 'maxConnectionsPerAddress'
  >;
  /** Serve HTTPS with this PEM certificate and key. (plain HTTP) */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer } | undefined;
  /** Bearer-token auth of every request but `OPTIONS`, `/healthz` and {@link isPublic} ones. (none) */
  readonly auth?: TokenAuth | undefined;
  /** Origins allowed to call from a browser (CORS). (none) */
  readonly corsOrigins?: readonly string[] | undefined;
  /** Requests that need no token (the pages' files). */
  readonly isPublic?: ((request: FastifyRequest) => boolean) | undefined;
  /** Makes the id of a new session or viewer. (16 random bytes, base64url; a cluster node prefixes its id) */
  readonly peerId?: (() => string) | undefined;
  readonly log: Logger;
}

/**
 * The HTTP side of signaling: one fastify instance with its deadlines and socket caps, bearer-token
 * auth, the media types signaling takes, one problem reply for every refusal (each logged, at most
 * 20 per 10 s), and `405` with `Allow` for every route registered through {@link route}.
 */
export class SignalingHttp {
  readonly #app: FastifyInstance;
  readonly #options: SignalingHttpOptions;
  readonly #log: Logger;
  /** The token id each authenticated request presented. */
  readonly #tokens = new WeakMap<FastifyRequest, string>();
  /** Methods of each route, for the 405 table. */
  readonly #methods = new Map<string, Method[]>();
  /** Open sockets per remote address. */
  readonly #connections = new Map<string, number>();
  /** Unauthenticated and refused requests are logged at most 20 per 10 s (then counted). */
  readonly #authLog = new LogLimiter(20, 10_000);
  readonly #httpLog = new LogLimiter(20, 10_000);
  #sealed = false;

  constructor(options: SignalingHttpOptions) {
    this.#options = options;
    this.#log = options.log;
    const { limits } = options;
    // Every socket has deadlines: a silent one and a whole request (headers and body) within
    // requestTimeoutMs, a kept-alive one 5 s; unfinished bodies were held open for ever before. No
    // inactivity timeout: it would also cut a slow answer (ICE gathering takes up to its own timeout).
    const deadlines = {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: DEADLINE_CHECK_MS,
    };
    this.#app = Fastify({
      bodyLimit: limits.maxSdpBytes,
      logger: false,
      return503OnClosing: true,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: Math.min(KEEP_ALIVE_TIMEOUT_MS, limits.requestTimeoutMs),
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
    this.#setUp();
  }

  /** The fastify instance, for routes outside signaling (the pages) and `inject` in tests. */
  get app(): FastifyInstance {
    return this.#app;
  }

  /** Whether requests need a bearer token. */
  get authenticates(): boolean {
    return this.#options.auth !== undefined;
  }

  /** The id of the token `request` presented (undefined without auth or on public requests). */
  tokenOf(request: FastifyRequest): string | undefined {
    return this.#tokens.get(request);
  }

  /** The id of a new peer (session or viewer). */
  newPeerId(): string {
    return this.#options.peerId?.() ?? randomBytes(16).toString('base64url');
  }

  /**
   * Runs a request a front forwarded over the bus through these routes (auth, limits, problem
   * replies all apply; `remoteAddress` is the client's, for its per-client limits) and gives the
   * reply to send back. Only the signaling headers are taken from it.
   */
  async inject(request: ForwardedRequest): Promise<ForwardedReply> {
    const headers: Record<string, string> = {};
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = request.headers[name];
      if (value !== undefined) headers[name] = value;
    }
    // A body-less request (DELETE) with a content type would be refused as an empty body.
    if (request.body.length === 0) delete headers['content-type'];
    const response = await this.#app.inject({
      method: request.method,
      url: request.url,
      headers,
      payload: request.body,
      remoteAddress: request.remoteAddress,
    });
    const replyHeaders: Record<string, string> = {};
    for (const name of FORWARDED_REPLY_HEADERS) {
      const value = response.headers[name];
      if (value !== undefined)
        replyHeaders[name] = Array.isArray(value) ? value.join(', ') : String(value);
    }
    return {
      v: CLUSTER_LAYOUT_VERSION,
      status: response.statusCode,
      headers: replyHeaders,
      body: response.body,
    };
  }

  /** Registers a signaling route; its other methods get `405` with `Allow` at {@link seal}. */
  route(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    handler: (request: FastifyRequest, reply: FastifyReply) => unknown,
  ): void {
    if (this.#sealed) throw new Error(`route ${method} ${url} added after seal()`);
    this.#app.route({ method, url, handler });
    const methods = this.#methods.get(url) ?? [];
    methods.push(method);
    this.#methods.set(url, methods);
  }

  /**
   * Answers `405` with `Allow` for every other method of each route registered through {@link route}:
   * `GET` routes also answer `HEAD` (fastify adds it), the others `OPTIONS` (CORS preflight).
   */
  seal(): void {
    this.#sealed = true;
    for (const [url, registered] of this.#methods) {
      const allowed = [...registered];
      if (allowed.includes('GET')) allowed.push('HEAD');
      if (registered.some((method) => method !== 'GET')) allowed.push('OPTIONS');
      const others = EVERY_METHOD.filter(
        (method) => !allowed.includes(method) && method !== 'OPTIONS',
      );
      const allow = allowed.join(', ');
      this.#app.route({
        method: others,
        url,
        handler: (request, reply) => {
          void reply.header('Allow', allow);
          return sendProblem(
            reply,
            405,
            ErrorCodes.HTTP_METHOD_NOT_ALLOWED,
            `${request.method} is not allowed here; use ${allowed.join(' or ')}`,
          );
        },
      });
    }
  }

  /**
   * Listens and resolves to the base URL, e.g. `http://127.0.0.1:8080`; logs where (with
   * `details`), and warns when reachable beyond loopback without TLS or auth.
   */
  async listen(host: string, port: number, details: Record<string, unknown> = {}): Promise<string> {
    if (!this.#sealed) this.seal();
    await this.#app.listen({ host, port });
    const address = this.#app.server.address();
    if (address === null || typeof address === 'string')
      throw new Error('server has no TCP address');
    const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const tls = this.#options.tls !== undefined;
    const auth = this.#options.auth !== undefined;
    const url = `${tls ? 'https' : 'http'}://${urlHost}:${address.port}`;
    this.#log.info(
      { event: 'listening', url, ...details },
      `signaling on ${url}/offer (${tls ? 'HTTPS' : 'plain HTTP'}, ${auth ? 'bearer-token auth' : 'no auth'})`,
    );
    const exposed = !/^(127\.|\[::1\]|localhost)/.test(urlHost);
    if (exposed && (!tls || !auth)) {
      this.#log.warn(
        { event: 'insecure', tls, auth },
        `signaling is reachable beyond loopback ${tls ? '' : 'over plain HTTP '}${auth ? '' : 'without auth'}: use --tls-cert/--tls-key and --token-file`,
      );
    }
    return url;
  }

  async close(): Promise<void> {
    await this.#app.close();
  }

  /**
   * At most `maxConnections` sockets in all (Node refuses the rest) and `maxConnectionsPerAddress`
   * from one address (destroyed at once), so that one client cannot take every socket.
   */
  #capConnections(): void {
    const server = this.#app.server;
    server.maxConnections = this.#options.limits.maxConnections;
    const perAddress = this.#options.limits.maxConnectionsPerAddress;
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

  #setUp(): void {
    const app = this.#app;
    // Only the media types signaling defines; fastify would otherwise take text/plain too.
    app.removeContentTypeParser('text/plain');
    app.addContentTypeParser(
      ['application/sdp', 'application/trickle-ice-sdpfrag'],
      { parseAs: 'string' },
      (_req, body, done) => done(null, body),
    );
    app.addHook('onRequest', async (request, reply) => this.#authenticate(request, reply));
    app.setErrorHandler((error: FastifyError | PointstreamError, request, reply) => {
      const problem = problemOf(error);
      if (problem.internal)
        this.#log.error(
          { event: 'http-error', err: error, url: request.url },
          'signaling request failed',
        );
      else this.#logRejected(request, problem.status, problem.code, problem.message);
      return sendProblem(reply, problem.status, problem.code, problem.message);
    });
    app.setNotFoundHandler((request, reply) =>
      sendProblem(
        reply,
        404,
        ErrorCodes.HTTP_NOT_FOUND,
        `no route for ${request.method} ${request.url.split('?')[0]}`,
      ),
    );
  }

  async #authenticate(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const auth = this.#options.auth;
    if (
      !auth ||
      request.method === 'OPTIONS' ||
      request.url === '/healthz' ||
      this.#options.isPublic?.(request) === true
    )
      return;
    const token = auth.verify(request.headers.authorization);
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
