import type { SafeEmitter } from '../util/emitter.js';
import type { Logger } from '../util/logger.js';
import { registerSessionResource } from './http/session-resource.js';
import type { AdmittedSession, SessionEntry } from './http/session-resource.js';
import { LiveFrames } from './http/live-frames.js';
import type { Refusal } from './http/problem.js';
import type { SignalingHttp } from './http/signaling.js';
import { registerViewerResource } from './http/viewer-offer.js';
import type { ServerMetrics } from './metrics.js';
import type { Session } from './session.js';
import type { StreamRegistry } from './streams.js';
import type { ServerEvents, ServerLimits, ServerStats } from './types.js';
import type { ViewerHub } from './viewer.js';
import { registerWebRoutes } from './web.js';
import type { WebRoutes } from './web.js';

/** What the server's routes answer from. */
export interface ServerRoutesOptions {
  readonly http: SignalingHttp;
  readonly log: Logger;
  readonly limits: ServerLimits;
  readonly sessions: ReadonlyMap<string, SessionEntry>;
  readonly streams: StreamRegistry;
  readonly viewers: ViewerHub;
  /** The server's events: its verified frames feed `GET /streams/<name>/latest` and `/frames`. */
  readonly events: Pick<SafeEmitter<ServerEvents>, 'on'>;
  readonly metrics: ServerMetrics;
  /** `/stats` for a token (auth on: its id), or for all. */
  readonly stats: (token: string | undefined) => ServerStats;
  readonly isClosing: () => boolean;
  /** Why new sessions are refused now (draining, an unhealthy bus), if so. */
  readonly refusal: () => Refusal | undefined;
  /** Makes and registers the session of an admitted offer. */
  readonly open: (id: string, admitted: AdmittedSession) => Session;
}

/**
 * Registers every route of a server (sessions, `/stats`, `/healthz`, `/metrics`, the pages,
 * viewers) and seals the route table. Returns the pages' routes (public assets).
 */
export function registerServerRoutes(options: ServerRoutesOptions): WebRoutes {
  const { http, log, limits, sessions, streams, metrics } = options;
  registerSessionResource({
    http,
    log,
    limits,
    sessions,
    claim: (stream, token) => streams.check(stream, token),
    isClosing: options.isClosing,
    refusal: options.refusal,
    open: options.open,
  });
  http.route('GET', '/stats', (request) => options.stats(http.tokenOf(request)));
  // `auth` lets the viewer page know, before any token, whether to ask for one.
  http.route('GET', '/healthz', () => ({
    ok: true,
    sessions: sessions.size,
    auth: http.authenticates,
  }));
  // Server-wide numbers (as /stats' totals), for any valid token when auth is on.
  http.route('GET', '/metrics', async (_request, reply) =>
    reply.type(metrics.contentType).send(await metrics.text()),
  );
  const web = registerWebRoutes(http.app, log.child({ component: 'web' }));
  registerViewerResource({
    http,
    hub: options.viewers,
    maxOffersPerMinute: limits.maxOffersPerMinute,
    log,
    streams,
    streamOf: (sessionId) => sessions.get(sessionId)?.session.stream,
    isClosing: options.isClosing,
  });
  // Live frames over HTTP: readers are limited as viewers are (counted apart from them).
  const live = new LiveFrames({
    http,
    streams,
    log: log.child({ component: 'live-frames' }),
    registry: metrics.registry,
    limits: {
      maxReaders: options.viewers.options.maxViewers,
      maxReadersPerClient: options.viewers.options.maxViewersPerClient,
      maxReadersPerMinute: limits.maxOffersPerMinute,
    },
    isClosing: options.isClosing,
  });
  options.events.on('frame', (frame) => live.onFrame(frame));
  options.events.on('sessionClosed', (end) => live.sessionClosed(end.stats.stream));
  http.seal();
  return web;
}
