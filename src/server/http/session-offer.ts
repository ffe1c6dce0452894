import type { FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCodes, PointstreamError } from '../../errors.js';
import { inspectOffer, withIpCandidatesOnly } from '../../signaling/sdp.js';
import type { OfferSummary } from '../../signaling/sdp.js';
import { streamOfOffer } from '../streams.js';
import { MAX_CANDIDATES_PER_PEER } from './peer-resource.js';
import type { ReadOffer } from './peer-resource.js';

/** A sender's offer (`POST /offer`), read and checked. */
export interface SessionOffer extends ReadOffer {
  /** JSON `{"sdp", "type": "offer"}` (answered in JSON), else a bare `application/sdp` body. */
  readonly json: boolean;
  /** The stream it names (body `stream` or `?stream=`), if any. */
  readonly stream: string | undefined;
  /** The live session of that stream, which the new one replaces. */
  readonly replaces: string | undefined;
  readonly summary: OfferSummary;
}

/**
 * Reads `POST /offer`: `application/sdp`, or JSON `{"sdp", "type": "offer", "stream"?}`.
 * `claim(stream)` checks that the request's token may use the stream's name (throwing if not) and
 * gives the session it replaces; it runs before the SDP is looked at, since a name the token may
 * not use is its own mistake.
 */
export function readSessionOffer(
  request: FastifyRequest,
  claim: (stream: string) => string | undefined,
): SessionOffer {
  const json = (request.headers['content-type'] ?? '').startsWith('application/json');
  let sdp: unknown;
  let jsonBody: Record<string, unknown> | undefined;
  if (json) {
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
  const stream = streamOfOffer(request.query, jsonBody);
  const replaces = stream === undefined ? undefined : claim(stream);
  if (typeof sdp !== 'string')
    throw new PointstreamError(ErrorCodes.SDP_INVALID, 'the offer SDP must be a string');
  const summary = inspectOffer(sdp);
  return {
    sdp: withIpCandidatesOnly(sdp, MAX_CANDIDATES_PER_PEER),
    json,
    stream,
    replaces,
    summary,
  };
}

/** What the `session-new` log line says of the offer. */
export function offerLogFields(
  offer: SessionOffer,
  remoteAddress: string,
): Record<string, unknown> {
  return {
    remoteAddress,
    replaces: offer.replaces,
    form: offer.json ? 'json' : 'sdp',
    offerCandidates: offer.summary.candidates,
    offerMaxMessageSize: offer.summary.maxMessageSize,
  };
}

/** Answers a session's offer in the offer's own form: JSON `200`, or `201` `application/sdp`. */
export function sendSessionAnswer(
  reply: FastifyReply,
  offer: SessionOffer,
  answer: string,
  session: { readonly id: string; readonly stream: string; readonly recording: string | undefined },
): FastifyReply {
  if (offer.json)
    return reply.code(200).send({
      sdp: answer,
      type: 'answer',
      session: session.id,
      stream: session.stream,
      ...(session.recording === undefined ? {} : { recording: session.recording }),
    });
  return reply.code(201).type('application/sdp').send(answer);
}
