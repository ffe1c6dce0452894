import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DataChannel } from 'node-datachannel';
import { ErrorCodes, PointstreamError, invalidOption } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { Peer, closeUnwanted } from '../rtc/peer.js';
import type { PeerState, RtcOptions } from '../rtc/peer.js';
import {
  inspectOffer,
  maxMessageSizeOf,
  parseSdpFragment,
  withIpCandidatesOnly,
} from '../signaling/sdp.js';
import type { Logger } from '../util/logger.js';
import {
  VIEWER_DATA_HEADER_BYTES,
  VIEWER_MAX_POINTS,
  VIEWER_PROTOCOL,
  VIEWER_START_BYTES,
  decodeViewerAck,
  encodeViewerControl,
  encodeViewerData,
  encodeViewerFrame,
  encodeViewerStart,
  viewerFrameOfQ16,
  viewerFrameWireBytes,
} from '../wire/viewer.js';
import type { EncodedViewerFrame, ViewerControl } from '../wire/viewer.js';
import { isStreamName } from '../wire/control.js';
import type { ReceivedFrame } from './types.js';

/*
 * The viewer's wire format (START and DATA messages, hello/closing/ack text) is
 * src/wire/viewer.ts, shared with the page; docs/protocol.md, "Live viewer", describes it.
 *
 * One frame is unacknowledged per viewer at most: a frame that arrives while a viewer has one
 * out, or is still sending it, is dropped for that viewer (and counted), never queued, so a slow
 * page costs ingest nothing.
 */

/** Largest message Chromium accepts; a smaller `a=max-message-size` in the offer wins. */
const MAX_VIEWER_MESSAGE_BYTES = 262_144;
/** RFC 8841: a peer that advertises no maximum takes 64 KiB. */
const DEFAULT_REMOTE_MESSAGE_BYTES = 65_536;
/**
 * Frames a viewer may have unacknowledged. 2 would let the next frame travel while the page draws,
 * but measured no better here (250,000 points, SwiftShader, loaded machine: 1.6-1.9 against
 * 2.1-2.2 frames/s, interleaved runs), and the page then skips some of the frames it was sent.
 */
const MAX_FRAMES_IN_FLIGHT = 1;
/** A viewer's channel counts as drained (the last frame has left) below this many buffered bytes. */
const DRAINED_BYTES = 64 * 1024;
/** Path MTU towards browsers: libdatachannel's default, which every browser takes. */
const VIEWER_MTU = 1280;

/** Options of the live viewers a server feeds (`ServerOptions.viewer`); defaults in parentheses. */
export interface ViewerOptions {
  /** Most points sent per frame; larger frames are decimated with an even stride. (250000) */
  readonly maxPoints?: number;
  /** Most frames per second sent to one viewer. (10) */
  readonly maxFps?: number;
  /** Most viewers at once; beyond it `POST /viewer/offer` gets `503` with `Retry-After`. (16) */
  readonly maxViewers?: number;
  /** A viewer whose channel has not opened this long after its offer is closed. (15000 ms) */
  readonly connectTimeoutMs?: number;
  /** A viewer that leaves a frame unacknowledged this long is closed (a hung page). (30000 ms) */
  readonly ackTimeoutMs?: number;
  /** An open viewer sent no frame this long (its stream sends nothing) is closed. (60000 ms) */
  readonly idleTimeoutMs?: number;
  /** Most viewers one client (one token, and one remote address) may hold at once; beyond it `429`. (4) */
  readonly maxViewersPerClient?: number;
}

/** PATCHes one viewer may make, and remote candidates it may add over all of them. */
const MAX_VIEWER_PATCHES = 16;
const MAX_VIEWER_CANDIDATES = 64;

type ResolvedViewerOptions = Required<ViewerOptions>;

export const DEFAULT_VIEWER_OPTIONS: ResolvedViewerOptions = Object.freeze({
  maxPoints: 250_000,
  maxFps: 10,
  maxViewers: 16,
  connectTimeoutMs: 15_000,
  ackTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  maxViewersPerClient: 4,
});

function resolveViewerOptions(options: ViewerOptions): ResolvedViewerOptions {
  const merged = { ...DEFAULT_VIEWER_OPTIONS, ...options };
  for (const key of Object.keys(merged) as (keyof ResolvedViewerOptions)[]) {
    if (!(key in DEFAULT_VIEWER_OPTIONS))
      throw invalidOption(`viewer.${key}`, 'a known option', key);
    const value = merged[key];
    const max = key === 'maxPoints' ? VIEWER_MAX_POINTS : 1_000_000;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max)
      throw invalidOption(`viewer.${key}`, `an integer from 1 to ${max}`, value);
  }
  return Object.freeze(merged);
}

/** What the viewer endpoint needs from its server. */
export interface ViewerDeps {
  readonly rtc: RtcOptions;
  readonly log: Logger;
  readonly options: ViewerOptions;
  /** Whether the request's token may watch this stream (its owner, or any token without auth). */
  canWatch(request: FastifyRequest, stream: string): boolean;
  /** The stream a live session feeds (viewer offers may name a session, as before streams). */
  streamOf(sessionId: string): string | undefined;
  /** The live session of a stream, if any. */
  sessionOf(stream: string): string | undefined;
  /** Whether the server is shutting down. */
  isClosing(): boolean;
  /**
   * Counts a viewer offer against the client's offers per minute and viewers at once; why not, when
   * refused, else the function that gives the client's viewer slot back (called once, at its end).
   */
  admit(
    request: FastifyRequest,
  ): { reason: string; retryAfterSeconds: number } | { release: () => void };
}

/** What one viewer reports (`ViewerHub.stats()`). */
export interface ViewerStats {
  readonly id: string;
  /** The stream watched: the viewer follows it from session to session. */
  readonly stream: string;
  /** The session of the last frame sent, if any. */
  readonly sessionId: string | undefined;
  readonly state: 'connecting' | 'open' | 'closed';
  readonly framesSent: number;
  readonly framesDropped: number;
  readonly bytesSent: number;
}

/** One encoded frame and its DATA messages for one message size. */
interface PreparedFrame {
  readonly sessionId: string;
  readonly frame: EncodedViewerFrame;
  readonly data: Map<number, Uint8Array[]>;
}

const VIEWER_PATH = '/viewer/peers/';

/**
 * Feeds live frames to browser viewers, each over its own peer connection (`POST /viewer/offer`).
 * Ingest never waits for a viewer: `onFrame` is O(1) for a session nobody watches, and otherwise
 * encodes a frame only when one of its viewers is ready for it.
 */
export class ViewerHub {
  readonly #deps: ViewerDeps;
  readonly #options: ResolvedViewerOptions;
  readonly #log: Logger;
  readonly #viewers = new Map<string, Viewer>();
  readonly #byStream = new Map<string, Set<Viewer>>();
  /** The last frame encoded for each watched stream, for viewers that become ready between frames. */
  readonly #latest = new Map<string, PreparedFrame>();
  readonly #teardowns = new Set<Promise<void>>();
  #closed = false;

  constructor(deps: ViewerDeps) {
    this.#deps = deps;
    this.#options = resolveViewerOptions(deps.options);
    this.#log = deps.log;
  }

  get options(): Readonly<Required<ViewerOptions>> {
    return this.#options;
  }

  /** Registers `POST /viewer/offer`, `PATCH` and `DELETE /viewer/peers/<id>`. */
  register(app: FastifyInstance): void {
    app.post('/viewer/offer', (request, reply) => this.#onOffer(request, reply));
    app.patch(`${VIEWER_PATH}:id`, (request, reply) => this.#onTrickle(request, reply));
    app.delete(`${VIEWER_PATH}:id`, (request, reply) => this.#onDelete(request, reply));
  }

  /** Live viewers. */
  stats(): ViewerStats[] {
    return [...this.#viewers.values()].map((viewer) => viewer.stats());
  }

  /** Called for every verified frame; must return at once (never slows ingest). */
  onFrame(frame: ReceivedFrame): void {
    const watchers = this.#byStream.get(frame.stream);
    if (watchers === undefined) return;
    const now = performance.now();
    let prepared: PreparedFrame | undefined;
    for (const viewer of watchers) {
      if (!viewer.isOpen) continue;
      if (!viewer.readyAt(now, this.#options.maxFps)) {
        viewer.framesDropped++;
        continue;
      }
      if (prepared === undefined) {
        // The only copy of the frame's points: taken now, because its buffer may be reused.
        prepared = { sessionId: frame.sessionId, frame: this.#encode(frame), data: new Map() };
        this.#latest.set(frame.stream, prepared);
      }
      viewer.sendFrame(prepared, now);
    }
    // Nobody was ready: the cached older frame is now stale; drop it so nobody is sent it.
    if (prepared === undefined) this.#latest.delete(frame.stream);
  }

  /**
   * The viewer frame of `frame`, the only copy of its points taken (its buffer may be reused).
   * A q16 frame within the budget is forwarded as it arrived; anything else is decimated and
   * quantized.
   */
  #encode(frame: ReceivedFrame): EncodedViewerFrame {
    const { maxPoints } = this.#options;
    if (frame.encoding === 'q16' && frame.encoded !== undefined && frame.pointCount <= maxPoints)
      return viewerFrameOfQ16(
        frame.encoded.slice(),
        frame.pointCount,
        frame.pointCount,
        frame.seq,
        frame.captureTime,
      );
    return encodeViewerFrame(frame.points, frame.seq, frame.captureTime, maxPoints);
  }

  /**
   * A session ended: its stream's viewers stay, for the stream's next session (a sender that
   * reconnects); only its last frame is no longer offered to them.
   */
  onSessionClosed(stream: string, sessionId: string): void {
    if (this.#latest.get(stream)?.sessionId === sessionId) this.#latest.delete(stream);
  }

  /** A stream was forgotten (no session for `streamHoldMs`): its viewers are told and closed. */
  onStreamEnded(stream: string): void {
    this.#latest.delete(stream);
    for (const viewer of this.#byStream.get(stream) ?? [])
      viewer.close(ErrorCodes.SESSION_CLOSED, 'its sender left');
  }

  /** Closes every viewer connection and waits for their native teardown. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const viewer of [...this.#viewers.values()])
      viewer.close(ErrorCodes.SESSION_CLOSED, 'server shutting down');
    await Promise.all([...this.#teardowns]);
  }

  /** The live session of `stream` ('' in hello between sessions). */
  sessionOf(stream: string): string | undefined {
    return this.#deps.sessionOf(stream);
  }

  /** A viewer became ready (opened, or acknowledged a frame): send the cached frame if it is new to it. */
  pump(viewer: Viewer): void {
    const prepared = this.#latest.get(viewer.stream);
    const now = performance.now();
    if (
      prepared &&
      (viewer.lastSeq !== prepared.frame.seq || viewer.sessionId !== prepared.sessionId) &&
      viewer.readyAt(now, this.#options.maxFps)
    )
      viewer.sendFrame(prepared, now);
  }

  viewerClosed(viewer: Viewer, teardown: Promise<void>): void {
    this.#viewers.delete(viewer.id);
    const watchers = this.#byStream.get(viewer.stream);
    watchers?.delete(viewer);
    if (watchers?.size === 0) {
      this.#byStream.delete(viewer.stream);
      this.#latest.delete(viewer.stream);
    }
    this.#teardowns.add(teardown);
    void teardown.finally(() => this.#teardowns.delete(teardown));
  }

  async #onOffer(request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
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
      stream = this.#deps.streamOf(sessionId);
    }
    // Before anything else: another token's stream is answered like a missing one.
    if (stream === undefined || !this.#deps.canWatch(request, stream))
      throw new PointstreamError(ErrorCodes.SESSION_NOT_FOUND, 'no such stream');
    if (body.type !== 'offer')
      throw new PointstreamError(ErrorCodes.SDP_INVALID, 'JSON "type" must be "offer"');
    if (typeof body.sdp !== 'string')
      throw new PointstreamError(ErrorCodes.SDP_INVALID, 'the offer SDP must be a string');
    const sdp = body.sdp;
    inspectOffer(sdp);
    if (this.#closed || this.#deps.isClosing())
      return problem(
        reply.header('Retry-After', '5'),
        503,
        ErrorCodes.SHUTTING_DOWN,
        'server is shutting down',
      );
    const offer = withIpCandidatesOnly(sdp, MAX_VIEWER_CANDIDATES);
    // Viewers still being torn down hold native resources too.
    if (this.#viewers.size + this.#teardowns.size >= this.#options.maxViewers)
      return problem(
        reply.header('Retry-After', '5'),
        503,
        ErrorCodes.SERVER_FULL,
        `server is at its limit of ${this.#options.maxViewers} viewers`,
      );
    const refused = this.#deps.admit(request);
    if ('reason' in refused)
      return problem(
        reply.header('Retry-After', String(refused.retryAfterSeconds)),
        429,
        ErrorCodes.TOO_MANY_REQUESTS,
        refused.reason,
      );
    const id = randomBytes(16).toString('base64url');
    const maxMessageBytes = Math.min(
      maxMessageSizeOf(sdp) ?? DEFAULT_REMOTE_MESSAGE_BYTES,
      MAX_VIEWER_MESSAGE_BYTES,
    );
    if (maxMessageBytes < VIEWER_START_BYTES + VIEWER_DATA_HEADER_BYTES)
      throw new PointstreamError(
        ErrorCodes.SDP_INVALID,
        `a=max-message-size ${maxMessageBytes} is too small for viewer frames`,
      );
    const viewer = new Viewer(
      this,
      id,
      stream,
      maxMessageBytes,
      this.#deps.rtc,
      this.#options,
      this.#log.child({ viewer: id, stream }),
      refused.release,
    );
    this.#viewers.set(id, viewer);
    let watchers = this.#byStream.get(stream);
    if (watchers === undefined) this.#byStream.set(stream, (watchers = new Set()));
    watchers.add(viewer);
    viewer.log.info({ event: 'viewer-new', remoteAddress: request.ip }, 'new viewer');
    let answer: string;
    try {
      answer = await viewer.answer(offer);
    } catch (error) {
      viewer.close(
        (error as PointstreamError).code ?? ErrorCodes.SDP_INVALID,
        `offer failed: ${(error as Error).message}`,
      );
      throw error;
    }
    const location = `${VIEWER_PATH}${id}`;
    void reply.header('Location', location);
    return reply.code(200).send({
      sdp: answer,
      type: 'answer',
      viewer: id,
      stream,
      session: this.#deps.sessionOf(stream) ?? '',
    });
  }

  #viewer(request: FastifyRequest): Viewer {
    const { id } = request.params as { id: string };
    const viewer = this.#viewers.get(id);
    if (viewer === undefined || !this.#deps.canWatch(request, viewer.stream))
      throw new PointstreamError(ErrorCodes.SESSION_NOT_FOUND, 'no such viewer');
    return viewer;
  }

  #onTrickle(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const viewer = this.#viewer(request);
    if (request.headers['content-type'] !== 'application/trickle-ice-sdpfrag')
      return problem(
        reply,
        415,
        ErrorCodes.HTTP_UNSUPPORTED_MEDIA_TYPE,
        'PATCH takes application/trickle-ice-sdpfrag',
      );
    if (++viewer.patches > MAX_VIEWER_PATCHES)
      return problem(
        reply.header('Retry-After', '60'),
        429,
        ErrorCodes.TOO_MANY_REQUESTS,
        `at most ${MAX_VIEWER_PATCHES} PATCHes per viewer`,
      );
    const candidates = parseSdpFragment(String(request.body), MAX_VIEWER_CANDIDATES);
    if ((viewer.candidates += candidates.length) > MAX_VIEWER_CANDIDATES)
      throw new PointstreamError(
        ErrorCodes.CANDIDATE_REFUSED,
        `at most ${MAX_VIEWER_CANDIDATES} candidates per viewer`,
      );
    viewer.addRemoteCandidates(candidates);
    return reply.code(204).send();
  }

  #onDelete(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    this.#viewer(request).close(ErrorCodes.SESSION_CLOSED, 'ended by the viewer (DELETE)');
    return reply.code(200).send({ ok: true });
  }
}

function problem(
  reply: FastifyReply,
  status: number,
  code: ErrorCode,
  message: string,
): FastifyReply {
  return reply.code(status).type('application/json').send({ error: { code, message } });
}

/** One browser viewer: its peer connection, its channel and its place in the frame stream. */
class Viewer {
  readonly id: string;
  readonly stream: string;
  readonly log: Logger;
  readonly #hub: ViewerHub;
  readonly #peer: Peer;
  readonly #maxMessageBytes: number;
  readonly #options: ResolvedViewerOptions;
  #channel: DataChannel | undefined;
  #channelClosed!: () => void;
  readonly #nativeClosed = new Promise<void>((resolve) => (this.#channelClosed = resolve));
  #opened = false;
  #state: 'connecting' | 'open' | 'closed' = 'connecting';
  #connectTimer: NodeJS.Timeout | undefined;
  #ackTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  readonly #release: () => void;
  patches = 0;
  candidates = 0;
  /** Seqs sent and not yet acknowledged, oldest first. */
  readonly #inFlight: number[] = [];
  #lastSentAt = -Infinity;
  lastSeq: number | undefined;
  /** The session of the last frame sent. */
  sessionId: string | undefined;
  framesSent = 0;
  framesDropped = 0;
  bytesSent = 0;

  constructor(
    hub: ViewerHub,
    id: string,
    stream: string,
    maxMessageBytes: number,
    rtc: RtcOptions,
    options: ResolvedViewerOptions,
    log: Logger,
    release: () => void,
  ) {
    this.#release = release;
    this.#hub = hub;
    this.id = id;
    this.stream = stream;
    this.log = log;
    this.#maxMessageBytes = maxMessageBytes;
    this.#options = options;
    // Browsers drop the 4 KiB datagrams that ingest uses on loopback (measured: Chromium 156 lost
    // the connection within 150 ms of the first frame), so viewers keep libdatachannel's default.
    this.#peer = new Peer(
      'viewer',
      { ...rtc, mtu: VIEWER_MTU },
      {
        state: (state) => this.#onPeerState(state),
        dataChannel: (channel) => this.#onDataChannel(channel),
      },
    );
    this.#connectTimer = setTimeout(
      () =>
        this.close(
          ErrorCodes.CONNECT_TIMEOUT,
          `no viewer channel opened within ${options.connectTimeoutMs} ms`,
        ),
      options.connectTimeoutMs,
    );
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  stats(): ViewerStats {
    return {
      id: this.id,
      stream: this.stream,
      sessionId: this.sessionId,
      state: this.#state,
      framesSent: this.framesSent,
      framesDropped: this.framesDropped,
      bytesSent: this.bytesSent,
    };
  }

  async answer(offerSdp: string): Promise<string> {
    const answer = await this.#peer.answer(offerSdp);
    if (this.#state === 'closed')
      throw new PointstreamError(ErrorCodes.SESSION_CLOSED, 'viewer closed while answering');
    return answer;
  }

  addRemoteCandidates(candidates: readonly { candidate: string; mid: string }[]): void {
    this.#peer.addRemoteCandidates(candidates);
  }

  /**
   * Ready for a frame: open, fewer than {@link MAX_FRAMES_IN_FLIGHT} unacknowledged, the last one
   * out of the send buffer, and not sooner than `maxFps` allows.
   */
  readyAt(now: number, maxFps: number): boolean {
    return (
      this.#state === 'open' &&
      this.#inFlight.length < MAX_FRAMES_IN_FLIGHT &&
      (this.#channel?.bufferedAmount() ?? 0) <= DRAINED_BYTES &&
      now - this.#lastSentAt >= 1000 / maxFps
    );
  }

  sendFrame(prepared: PreparedFrame, now: number): void {
    const channel = this.#channel;
    if (channel === undefined || this.#state !== 'open') return;
    let data = prepared.data.get(this.#maxMessageBytes);
    if (data === undefined)
      prepared.data.set(
        this.#maxMessageBytes,
        (data = encodeViewerData(prepared.frame, this.#maxMessageBytes)),
      );
    try {
      channel.sendMessageBinary(encodeViewerStart(prepared.frame, this.framesDropped));
      for (const message of data) channel.sendMessageBinary(message);
    } catch (error) {
      this.close(ErrorCodes.CHANNEL_CLOSED, `send failed: ${(error as Error).message}`);
      return;
    }
    this.#inFlight.push(prepared.frame.seq);
    this.lastSeq = prepared.frame.seq;
    this.sessionId = prepared.sessionId;
    this.#lastSentAt = now;
    this.framesSent++;
    this.bytesSent += viewerFrameWireBytes(prepared.frame, this.#maxMessageBytes);
    if (this.#ackTimer === undefined) this.#armAckTimer();
    this.#idleTimer?.refresh();
  }

  /** Times the oldest unacknowledged frame. */
  #armAckTimer(): void {
    const oldest = this.#inFlight[0];
    if (oldest === undefined) return;
    this.#ackTimer = setTimeout(
      () =>
        this.close(
          ErrorCodes.SESSION_CLOSED,
          `frame ${oldest} not acknowledged within ${this.#options.ackTimeoutMs} ms`,
        ),
      this.#options.ackTimeoutMs,
    );
    this.#ackTimer.unref();
  }

  #onPeerState(state: PeerState): void {
    this.log.debug({ event: 'peer-state', peerState: state }, `viewer peer connection ${state}`);
    if (state === 'failed') this.close(ErrorCodes.CONNECTION_FAILED, 'peer connection failed');
    else if (state === 'closed' || state === 'disconnected')
      this.close(ErrorCodes.SESSION_CLOSED, `peer connection ${state}`);
  }

  #onDataChannel(channel: DataChannel): void {
    if (this.#state !== 'connecting' || this.#channel !== undefined) {
      closeUnwanted(channel);
      return;
    }
    this.#channel = channel;
    channel.onClosed(() => {
      this.#channelClosed();
      this.close(ErrorCodes.SESSION_CLOSED, 'viewer channel closed');
    });
    channel.onMessage((message) => this.#onMessage(message));
    if (channel.getProtocol() !== VIEWER_PROTOCOL) {
      this.close(
        ErrorCodes.PROTOCOL_UNSUPPORTED,
        `viewer channels use protocol "${VIEWER_PROTOCOL}", not ${JSON.stringify(channel.getProtocol())}`,
      );
      return;
    }
    channel.setBufferedAmountLowThreshold(DRAINED_BYTES);
    channel.onBufferedAmountLow(() => this.#hub.pump(this));
    channel.onOpen(() => this.#onOpen());
    if (channel.isOpen()) this.#onOpen();
  }

  #onOpen(): void {
    if (this.#state !== 'connecting') return;
    this.#state = 'open';
    this.#opened = true;
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    this.log.info({ event: 'viewer-open' }, 'viewer channel open');
    // A viewer holds a slot: one whose stream sends nothing gives it back after idleTimeoutMs.
    this.#idleTimer = setTimeout(
      () =>
        this.close(
          ErrorCodes.SESSION_CLOSED,
          `no frame to send for ${this.#options.idleTimeoutMs} ms`,
        ),
      this.#options.idleTimeoutMs,
    );
    this.#idleTimer.unref();
    this.#sendText({
      type: 'hello',
      viewer: this.id,
      stream: this.stream,
      session: this.#hub.sessionOf(this.stream) ?? '',
      maxPoints: this.#options.maxPoints,
      maxFps: this.#options.maxFps,
    });
    this.#hub.pump(this);
  }

  #onMessage(message: string | Buffer | ArrayBuffer): void {
    if (typeof message !== 'string') return;
    const seq = decodeViewerAck(message);
    const index = seq === undefined ? -1 : this.#inFlight.indexOf(seq);
    if (index < 0) {
      if (seq === undefined)
        this.log.debug({ event: 'viewer-bad-message' }, 'viewer sent text that is not an ack');
      return;
    }
    // Acknowledging a frame acknowledges the ones before it (the page may skip drawing them).
    this.#inFlight.splice(0, index + 1);
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    this.#armAckTimer();
    this.#hub.pump(this);
  }

  #sendText(message: ViewerControl): void {
    try {
      if (this.#channel?.isOpen()) this.#channel.sendMessage(encodeViewerControl(message));
    } catch {
      // Closed under us; the close handler reports it.
    }
  }

  /** Tells the page why (when it can still hear), closes channel then connection. Idempotent. */
  close(code: ErrorCode, reason: string): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#ackTimer);
    clearTimeout(this.#idleTimer);
    this.#release();
    this.#sendText({ type: 'closing', code, message: reason });
    const channel = this.#channel;
    const teardown = this.#peer.closeInOrder(
      channel === undefined
        ? []
        : [{ channel, closed: this.#nativeClosed, opened: () => this.#opened }],
    );
    const level = code === ErrorCodes.SESSION_CLOSED ? 'info' : 'warn';
    this.log[level](
      { event: 'viewer-end', code, reason, ...this.stats() },
      `viewer ended: ${reason}`,
    );
    this.#hub.viewerClosed(this, teardown);
  }
}
