import type { FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCodes, PointstreamError } from '../../errors.js';
import type { ErrorCode } from '../../errors.js';
import { parseSdpFragment } from '../../signaling/sdp.js';
import type { IceCandidate } from '../../signaling/sdp.js';
import type { Logger } from '../../util/logger.js';
import type { Ticket } from './admission.js';
import { sendProblem, sendRefusal } from './problem.js';
import type { Refusal } from './problem.js';
import type { SignalingHttp } from './signaling.js';

/** PATCHes one peer (session or viewer) may make: a client sends one, or a few while it gathers. */
export const MAX_PATCHES_PER_PEER = 16;
/** Remote candidates one peer may add over its offer and all its PATCHes. */
export const MAX_CANDIDATES_PER_PEER = 64;

/** What the resource needs of a peer (a session or a viewer). */
export interface PeerLike {
  readonly id: string;
  /** Answers the offer; rejects with a PointstreamError when it cannot. */
  answer(offerSdp: string): Promise<string>;
  addRemoteCandidates(candidates: readonly IceCandidate[]): void;
}

/** An offer, read and checked: the SDP to answer (IP candidates only) and what the kind needs. */
export interface ReadOffer {
  readonly sdp: string;
}

/** How one kind of peer is made, found and ended; the resource does the HTTP around it. */
export interface PeerResourceHooks<P extends PeerLike, O extends ReadOffer> {
  /** Reads and checks an offer request; anything wrong throws a PointstreamError (a `4xx`). */
  read(request: FastifyRequest): O;
  /** Why no peer can be taken now (`503`: shutting down, full), if so. */
  unavailable(): Refusal | undefined;
  /** Counts the offer against its client's limits: a refusal (`429`) or the slot it holds. */
  admit(request: FastifyRequest, offer: O): Refusal | Ticket;
  /** Makes and registers the peer; the peer gives `ticket` back when it ends. */
  create(context: {
    readonly id: string;
    readonly request: FastifyRequest;
    readonly offer: O;
    readonly ticket: Ticket;
  }): P;
  /** The answer's reply (status, body); `Location` is set already. */
  answered(context: {
    readonly peer: P;
    readonly offer: O;
    readonly answer: string;
    readonly reply: FastifyReply;
  }): FastifyReply;
  /** The peer `id` names, if `request` may change it: another token's peer is not revealed. */
  find(request: FastifyRequest, id: string): P | undefined;
  /** Ends a peer whose answer failed. */
  failed(peer: P, code: ErrorCode, reason: string): void;
  /** Ends a peer its client DELETEd. */
  deleted(peer: P): void;
}

/** Options of {@link registerPeerResource}. */
export interface PeerResourceOptions<P extends PeerLike, O extends ReadOffer> {
  readonly http: SignalingHttp;
  /** What the peers are called in replies: `session`, `viewer`. */
  readonly noun: string;
  /** Where offers are posted, e.g. `/offer`. */
  readonly offerPath: string;
  /** Where each peer lives, before its id, e.g. `/sessions/` (`Location`, `PATCH`, `DELETE`). */
  readonly peerPath: string;
  readonly log: Logger;
  readonly hooks: PeerResourceHooks<P, O>;
}

/**
 * A WebRTC peer as an HTTP resource (WHIP-style): `POST <offerPath>` creates it and answers,
 * `PATCH <peerPath><id>` trickles candidates (`application/trickle-ice-sdpfrag`, at most
 * {@link MAX_PATCHES_PER_PEER} PATCHes and {@link MAX_CANDIDATES_PER_PEER} candidates), `DELETE`
 * ends it. Sessions and viewers both live here; their hooks say what differs.
 */
export function registerPeerResource<P extends PeerLike, O extends ReadOffer>(
  options: PeerResourceOptions<P, O>,
): void {
  const { http, noun, hooks } = options;
  /** PATCHes and candidates each peer has used (gone with the peer). */
  const trickled = new WeakMap<P, { patches: number; candidates: number }>();

  const find = (request: FastifyRequest): P => {
    const { id } = request.params as { id: string };
    const peer = hooks.find(request, id);
    if (peer === undefined)
      throw new PointstreamError(ErrorCodes.SESSION_NOT_FOUND, `no such ${noun}`);
    return peer;
  };

  http.route('POST', options.offerPath, async (request, reply) => {
    const offer = hooks.read(request);
    const refused = hooks.unavailable() ?? hooks.admit(request, offer);
    if ('status' in refused) {
      if (refused.status === 429)
        options.log.warn(
          {
            event: 'client-limited',
            remoteAddress: request.ip,
            token: http.tokenOf(request),
            reason: refused.reason,
          },
          `offer refused: ${refused.reason}`,
        );
      return sendRefusal(reply, refused);
    }
    const id = http.newPeerId();
    const peer = hooks.create({ id, request, offer, ticket: refused });
    let answer: string;
    try {
      answer = await peer.answer(offer.sdp);
    } catch (error) {
      hooks.failed(
        peer,
        (error as PointstreamError).code ?? ErrorCodes.SDP_INVALID,
        `offer failed: ${(error as Error).message}`,
      );
      throw error;
    }
    void reply.header('Location', `${options.peerPath}${id}`);
    return hooks.answered({ peer, offer, answer, reply });
  });

  http.route('PATCH', `${options.peerPath}:id`, (request, reply) => {
    const peer = find(request);
    if (request.headers['content-type'] !== 'application/trickle-ice-sdpfrag')
      return sendProblem(
        reply,
        415,
        ErrorCodes.HTTP_UNSUPPORTED_MEDIA_TYPE,
        'PATCH takes application/trickle-ice-sdpfrag',
      );
    let used = trickled.get(peer);
    if (used === undefined) trickled.set(peer, (used = { patches: 0, candidates: 0 }));
    if (++used.patches > MAX_PATCHES_PER_PEER)
      return sendRefusal(reply, {
        status: 429,
        code: ErrorCodes.TOO_MANY_REQUESTS,
        reason: `at most ${MAX_PATCHES_PER_PEER} PATCHes per ${noun}`,
        retryAfterSeconds: 60,
      });
    const candidates = parseSdpFragment(String(request.body), MAX_CANDIDATES_PER_PEER);
    if ((used.candidates += candidates.length) > MAX_CANDIDATES_PER_PEER)
      throw new PointstreamError(
        ErrorCodes.CANDIDATE_REFUSED,
        `at most ${MAX_CANDIDATES_PER_PEER} candidates per ${noun}`,
      );
    peer.addRemoteCandidates(candidates);
    return reply.code(204).send();
  });

  http.route('DELETE', `${options.peerPath}:id`, (request, reply) => {
    hooks.deleted(find(request));
    return reply.code(200).send({ ok: true });
  });
}
