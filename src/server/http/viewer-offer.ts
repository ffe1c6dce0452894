import type { FastifyRequest } from 'fastify';
import { ErrorCodes, PointstreamError } from '../../errors.js';
import { inspectOffer, maxMessageSizeOf, withIpCandidatesOnly } from '../../signaling/sdp.js';
import type { Logger } from '../../util/logger.js';
import { tenantOf } from '../../bus/layout.js';
import { isStreamName } from '../../wire/control.js';
import { VIEWER_DATA_HEADER_BYTES, VIEWER_START_BYTES } from '../../wire/viewer.js';
import type { StreamRegistry } from '../streams.js';
import type { ViewerHub } from '../viewer.js';
import { ClientAdmission } from './admission.js';
import { MAX_CANDIDATES_PER_PEER, registerPeerResource } from './peer-resource.js';
import type { ReadOffer } from './peer-resource.js';
import type { SignalingHttp } from './signaling.js';

/** Largest message Chromium accepts; a smaller `a=max-message-size` in the offer wins. */
const MAX_VIEWER_MESSAGE_BYTES = 262_144;
/** RFC 8841: a peer that advertises no maximum takes 64 KiB. */
const DEFAULT_REMOTE_MESSAGE_BYTES = 65_536;

/** A viewer's offer, read and checked. */
interface ViewerOffer extends ReadOffer {
  readonly stream: string;
  /** A stream ingested on another node of the cluster: of this tenant, there. */
  readonly remote: { readonly tenant: string; readonly node: string } | undefined;
  readonly maxMessageBytes: number;
}

/** Options of {@link registerViewerResource}. */
export interface ViewerResourceOptions {
  readonly http: SignalingHttp;
  readonly hub: ViewerHub;
  /** Offers per client per minute (viewers per client are the hub's `maxViewersPerClient`). */
  readonly maxOffersPerMinute: number;
  readonly log: Logger;
  /** Streams: who owns each (only its token may watch it), and its live session. */
  readonly streams: Pick<StreamRegistry, 'ownerOf' | 'sessionOf'>;
  /** The stream a live session feeds (viewer offers may name a session, as before streams). */
  streamOf(sessionId: string): string | undefined;
  /** Whether the server is shutting down. */
  isClosing(): boolean;
}

/**
 * `POST /viewer/offer` (JSON `{"sdp", "type": "offer", "stream"}`), `PATCH` and
 * `DELETE /viewer/peers/<id>`: the viewers' peer resource over `options.hub`.
 */
export function registerViewerResource(options: ViewerResourceOptions): void {
  const { http, hub, streams } = options;
  // A stream's viewers are its owner's: with auth on, another token's stream is not revealed.
  const canWatch = (token: string | undefined, stream: string): boolean => {
    const owner = streams.ownerOf(stream);
    return owner !== undefined && owner.token === token;
  };
  const admission = new ClientAdmission({
    maxPerClient: hub.options.maxViewersPerClient,
    maxOffersPerMinute: options.maxOffersPerMinute,
  });
  const read = (request: FastifyRequest): ViewerOffer => {
    const body = request.body as Record<string, unknown> | null | undefined;
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new PointstreamError(
        ErrorCodes.SDP_INVALID,
        'body must be JSON {"sdp": "...", "type": "offer", "stream": "<name>"}',
      );
    let stream: string | undefined;
    if (body.stream !== undefined) {
      if (!isStreamName(body.stream))
        throw new PointstreamError(
          ErrorCodes.STREAM_INVALID,
          'JSON "stream" must be a stream name',
        );
      stream = body.stream;
    } else {
      // Before streams, viewers named a session: watch its stream.
      const sessionId = body.session;
      if (typeof sessionId !== 'string' || sessionId.length === 0 || sessionId.length > 64)
        throw new PointstreamError(
          ErrorCodes.SDP_INVALID,
          'JSON "stream" must be a stream name (or "session" a session id)',
        );
      stream = options.streamOf(sessionId);
    }
    // Before anything else: another token's stream is answered like a missing one. A stream this
    // node does not ingest may run on another node (a cluster): tenants are named by token ids, so
    // the directory only finds the token's own streams.
    const token = http.tokenOf(request);
    const where =
      stream === undefined || streams.ownerOf(stream) !== undefined
        ? undefined
        : hub.locate(token, stream);
    if (stream === undefined || (where === undefined && !canWatch(token, stream)))
      throw new PointstreamError(ErrorCodes.SESSION_NOT_FOUND, 'no such stream');
    if (body.type !== 'offer')
      throw new PointstreamError(ErrorCodes.SDP_INVALID, 'JSON "type" must be "offer"');
    if (typeof body.sdp !== 'string')
      throw new PointstreamError(ErrorCodes.SDP_INVALID, 'the offer SDP must be a string');
    inspectOffer(body.sdp);
    const maxMessageBytes = Math.min(
      maxMessageSizeOf(body.sdp) ?? DEFAULT_REMOTE_MESSAGE_BYTES,
      MAX_VIEWER_MESSAGE_BYTES,
    );
    if (maxMessageBytes < VIEWER_START_BYTES + VIEWER_DATA_HEADER_BYTES)
      throw new PointstreamError(
        ErrorCodes.SDP_INVALID,
        `a=max-message-size ${maxMessageBytes} is too small for viewer frames`,
      );
    return {
      sdp: withIpCandidatesOnly(body.sdp, MAX_CANDIDATES_PER_PEER),
      stream,
      maxMessageBytes,
      remote: where && { tenant: tenantOf(token), node: where.node },
    };
  };

  registerPeerResource({
    http,
    noun: 'viewer',
    offerPath: '/viewer/offer',
    peerPath: '/viewer/peers/',
    log: options.log,
    hooks: {
      read,
      unavailable: () => {
        if (hub.isClosed || options.isClosing())
          return {
            status: 503,
            code: ErrorCodes.SHUTTING_DOWN,
            reason: 'server is shutting down',
            retryAfterSeconds: 5,
          };
        if (hub.isFull)
          return {
            status: 503,
            code: ErrorCodes.SERVER_FULL,
            reason: `server is at its limit of ${hub.options.maxViewers} viewers`,
            retryAfterSeconds: 5,
          };
        return undefined;
      },
      admit: (request) => admission.admit(http.tokenOf(request), request.ip),
      create: ({ id, request, offer, ticket }) =>
        hub.open({
          id,
          stream: offer.stream,
          maxMessageBytes: offer.maxMessageBytes,
          remoteAddress: request.ip,
          release: () => ticket.release(),
          ...(offer.remote ? { remote: { tenant: offer.remote.tenant } } : {}),
        }),
      answered: ({ peer, answer, reply, offer }) =>
        reply.code(200).send({
          sdp: answer,
          type: 'answer',
          viewer: peer.id,
          stream: peer.stream,
          ...(offer.remote === undefined
            ? { session: streams.sessionOf(peer.stream) ?? '' }
            : hub.origin(peer)),
        }),
      find: (request, id) => {
        const viewer = hub.get(id);
        if (viewer === undefined) return undefined;
        const token = http.tokenOf(request);
        const remote = hub.remoteTenantOf(viewer);
        const mine =
          remote === undefined ? canWatch(token, viewer.stream) : remote === tenantOf(token);
        return mine ? viewer : undefined;
      },
      failed: (viewer, code, reason) => viewer.close(code, reason),
      deleted: (viewer) => viewer.close(ErrorCodes.SESSION_CLOSED, 'ended by the viewer (DELETE)'),
    },
  });
}
