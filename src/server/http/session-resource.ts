import type { FastifyRequest } from 'fastify';
import { ErrorCodes } from '../../errors.js';
import type { Logger } from '../../util/logger.js';
import type { Session } from '../session.js';
import type { ServerLimits } from '../types.js';
import { ClientAdmission, halfOpenRefusal } from './admission.js';
import type { Ticket } from './admission.js';
import type { Refusal } from './problem.js';
import { registerPeerResource } from './peer-resource.js';
import { readSessionOffer, sendSessionAnswer } from './session-offer.js';
import type { SessionOffer } from './session-offer.js';
import type { SignalingHttp } from './signaling.js';

/** A live session and the token (id) that created it: only that token may see, change or end it. */
export interface SessionEntry {
  readonly session: Session;
  readonly token: string | undefined;
}

/** An offer admitted: what the server needs to open its session. */
export interface AdmittedSession {
  readonly request: FastifyRequest;
  readonly offer: SessionOffer;
  /** The client's session slot; give it back when the session ends. */
  readonly ticket: Ticket;
}

/** Options of {@link registerSessionResource}. */
export interface SessionResourceOptions {
  readonly http: SignalingHttp;
  readonly log: Logger;
  readonly limits: Pick<
    ServerLimits,
    | 'maxSessions'
    | 'maxSessionsPerClient'
    | 'maxOffersPerMinute'
    | 'maxHalfOpenPerPrefix'
    | 'iceTimeoutMs'
  >;
  /** The server's registry of live sessions (read here, never changed). */
  readonly sessions: ReadonlyMap<string, SessionEntry>;
  /** Whether `token` may name `stream` (throws if not); the live session it replaces. */
  claim(stream: string, token: string | undefined): string | undefined;
  /** Whether the server is shutting down. */
  isClosing(): boolean;
  /** Why new sessions are refused now (a draining node, an unhealthy bus), if so. (none) */
  refusal?(): Refusal | undefined;
  /** Makes and registers the session of an admitted offer. */
  open(id: string, admitted: AdmittedSession): Session;
}

/**
 * `POST /offer` (SDP or JSON), `PATCH` and `DELETE /sessions/<id>`: the senders' peer resource.
 * Beyond the server's session slots (`503`), each client (token, and address) has its own
 * (`maxSessionsPerClient`, `maxOffersPerMinute`) and each network its half-open ones (`429`).
 */
export function registerSessionResource(options: SessionResourceOptions): void {
  const { http, limits, sessions } = options;
  const admission = new ClientAdmission({
    maxPerClient: limits.maxSessionsPerClient,
    maxOffersPerMinute: limits.maxOffersPerMinute,
  });
  registerPeerResource<Session, SessionOffer>({
    http,
    noun: 'session',
    offerPath: '/offer',
    peerPath: '/sessions/',
    log: options.log,
    hooks: {
      read: (request) =>
        readSessionOffer(request, (stream) => options.claim(stream, http.tokenOf(request))),
      unavailable: () => {
        // A draining node says so (the front tries another node), before "shutting down".
        const refused = options.refusal?.();
        if (refused !== undefined) return refused;
        if (options.isClosing())
          return {
            status: 503,
            code: ErrorCodes.SHUTTING_DOWN,
            reason: 'server is shutting down',
            retryAfterSeconds: 5,
          };
        if (sessions.size >= limits.maxSessions)
          return {
            status: 503,
            code: ErrorCodes.SERVER_FULL,
            reason: `server is at its limit of ${limits.maxSessions} sessions`,
            retryAfterSeconds: 5,
          };
        return undefined;
      },
      admit: (request) =>
        admission.admit(http.tokenOf(request), request.ip, () =>
          halfOpenRefusal({
            address: request.ip,
            peers: [...sessions.values()].map((entry) => entry.session),
            limit: limits.maxHalfOpenPerPrefix,
            connectingMs: limits.iceTimeoutMs,
          }),
        ),
      create: ({ id, request, offer, ticket }) => options.open(id, { request, offer, ticket }),
      answered: ({ peer, offer, answer, reply }) => sendSessionAnswer(reply, offer, answer, peer),
      find: (request, id) => {
        const entry = sessions.get(id);
        // Another token's session is answered like a missing one: its existence is not revealed.
        return entry !== undefined && entry.token === http.tokenOf(request)
          ? entry.session
          : undefined;
      },
      failed: (session, code, reason) => session.close(code, reason),
      deleted: (session) =>
        session.close(ErrorCodes.SESSION_CLOSED, 'client closed (DELETE)', { normal: true }),
    },
  });
}
