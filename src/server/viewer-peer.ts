import type { DataChannel } from 'node-datachannel';
import { ErrorCodes, PointstreamError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { Peer, closeUnwanted } from '../rtc/peer.js';
import type { PeerState, RtcOptions } from '../rtc/peer.js';
import type { IceCandidate } from '../signaling/sdp.js';
import type { ChannelMessage } from '../transport/channel.js';
import { fromNodeDataChannel } from '../transport/node-channel.js';
import type { NodeChannel } from '../transport/node-channel.js';
import type { Logger } from '../util/logger.js';
import { HEIGHT } from '../wire/viewer-colour.js';
import type { ViewerField } from '../wire/viewer-colour.js';
import {
  VIEWER_PROTOCOL,
  decodeViewerRequest,
  encodeViewerControl,
  encodeViewerData,
  encodeViewerStart,
  viewerFrameWireBytes,
} from '../wire/viewer.js';
import type { ViewerControl } from '../wire/viewer.js';
import type { ViewerOptions, ViewerStats } from './types.js';
import { dataKey, frameFor } from './viewer-frames.js';
import type { PreparedFrame } from './viewer-frames.js';

export type { PreparedFrame } from './viewer-frames.js';

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

/** What a viewer tells its hub. */
export interface ViewerHooks {
  /** Ready for a frame (opened, acknowledged one, or drained): the hub may send the latest. */
  ready(viewer: ViewerPeer): void;
  /** Where its frames come from (for `hello`): the stream's live session, and its node if remote. */
  origin(viewer: ViewerPeer): { readonly session: string; readonly node?: string };
  /** The fields of its stream as far as known (for `hello`). */
  fields(viewer: ViewerPeer): readonly ViewerField[];
  /** The page asks to colour by `colour`: the reason it cannot (its stream lacks the field), if any. */
  checkColour(viewer: ViewerPeer, colour: string): string | undefined;
  /** It colours by another channel from now on (`viewer.colour`). */
  coloured(viewer: ViewerPeer): void;
  /** Ended (once); `teardown` resolves when its native connection is released. */
  closed(viewer: ViewerPeer, teardown: Promise<void>): void;
}

/** Options of a {@link ViewerPeer}. */
export interface ViewerPeerOptions {
  readonly id: string;
  /** The stream watched. */
  readonly stream: string;
  /** The hub's feed it is on: the stream's name, or a remote stream's key. (the stream) */
  readonly feed?: string;
  /** Largest message the page accepts (its `a=max-message-size`, capped). */
  readonly maxMessageBytes: number;
  readonly rtc: RtcOptions;
  readonly options: Readonly<Required<ViewerOptions>>;
  readonly log: Logger;
  /** Gives the client's viewer slot back; called once, when the viewer ends. */
  readonly release: () => void;
  readonly hooks: ViewerHooks;
}

/** One browser viewer: its peer connection, its channel and its place in the frame stream. */
export class ViewerPeer {
  readonly id: string;
  readonly stream: string;
  /** The hub's feed it is on (the stream, or the key of a stream ingested on another node). */
  readonly feed: string;
  readonly log: Logger;
  readonly #peer: Peer;
  readonly #maxMessageBytes: number;
  readonly #options: Readonly<Required<ViewerOptions>>;
  readonly #hooks: ViewerHooks;
  readonly #release: () => void;
  #channel: NodeChannel | undefined;
  #channelClosed!: () => void;
  readonly #nativeClosed = new Promise<void>((resolve) => (this.#channelClosed = resolve));
  #opened = false;
  #state: 'connecting' | 'open' | 'closed' = 'connecting';
  #connectTimer: NodeJS.Timeout | undefined;
  #ackTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  /** Seqs sent and not yet acknowledged, oldest first. */
  readonly #inFlight: number[] = [];
  #lastSentAt = -Infinity;
  #lastSeq: number | undefined;
  #sessionId: string | undefined;
  /** What the page colours by: {@link HEIGHT} (no channel), `rgb` or a field's name. */
  #colour: string = HEIGHT;
  #framesSent = 0;
  #framesDropped = 0;
  #bytesSent = 0;

  constructor(options: ViewerPeerOptions) {
    this.id = options.id;
    this.stream = options.stream;
    this.feed = options.feed ?? options.stream;
    this.log = options.log;
    this.#maxMessageBytes = options.maxMessageBytes;
    this.#options = options.options;
    this.#hooks = options.hooks;
    this.#release = options.release;
    // Browsers drop the 4 KiB datagrams that ingest uses on loopback (measured: Chromium 156 lost
    // the connection within 150 ms of the first frame), so viewers keep libdatachannel's default.
    this.#peer = new Peer(
      'viewer',
      { ...options.rtc, mtu: VIEWER_MTU },
      {
        state: (state) => this.#onPeerState(state),
        dataChannel: (channel) => this.#onDataChannel(channel),
      },
    );
    const { connectTimeoutMs } = options.options;
    this.#connectTimer = setTimeout(
      () =>
        this.close(
          ErrorCodes.CONNECT_TIMEOUT,
          `no viewer channel opened within ${connectTimeoutMs} ms`,
        ),
      connectTimeoutMs,
    );
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  /** Seq of the last frame sent, if any. */
  get lastSeq(): number | undefined {
    return this.#lastSeq;
  }

  /** What its frames are coloured by (`height` until the page asks for another). */
  get colour(): string {
    return this.#colour;
  }

  /** The session of the last frame sent. */
  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  stats(): ViewerStats {
    return {
      id: this.id,
      stream: this.stream,
      sessionId: this.#sessionId,
      state: this.#state,
      framesSent: this.#framesSent,
      framesDropped: this.#framesDropped,
      bytesSent: this.#bytesSent,
    };
  }

  async answer(offerSdp: string): Promise<string> {
    const answer = await this.#peer.answer(offerSdp);
    if (this.#state === 'closed')
      throw new PointstreamError(ErrorCodes.SESSION_CLOSED, 'viewer closed while answering');
    return answer;
  }

  addRemoteCandidates(candidates: readonly IceCandidate[]): void {
    this.#peer.addRemoteCandidates(candidates);
  }

  /**
   * Ready for a frame: open, fewer than {@link MAX_FRAMES_IN_FLIGHT} unacknowledged, the last one
   * out of the send buffer, and not sooner than `maxFps` allows.
   */
  readyAt(now: number): boolean {
    return (
      this.#state === 'open' &&
      this.#inFlight.length < MAX_FRAMES_IN_FLIGHT &&
      (this.#channel?.bufferedAmount() ?? 0) <= DRAINED_BYTES &&
      now - this.#lastSentAt >= 1000 / this.#options.maxFps
    );
  }

  /**
   * Whether a new frame of its stream can go to this viewer now; an open viewer that cannot take
   * it counts it as dropped (the page is told how many in the next START).
   */
  takesFrame(now: number): boolean {
    if (this.#state !== 'open') return false;
    if (this.readyAt(now)) return true;
    this.#framesDropped++;
    return false;
  }

  sendFrame(prepared: PreparedFrame, now: number): void {
    const channel = this.#channel;
    if (channel === undefined || this.#state !== 'open') return;
    // Its colour's channel when the frame has it; height (no channel) otherwise.
    const frame = frameFor(prepared, this.#colour);
    const key = dataKey(prepared, this.#colour, this.#maxMessageBytes);
    let data = prepared.data.get(key);
    if (data === undefined)
      prepared.data.set(key, (data = encodeViewerData(frame, this.#maxMessageBytes)));
    try {
      channel.send(encodeViewerStart(frame, this.#framesDropped));
      for (const message of data) channel.send(message);
    } catch (error) {
      this.close(ErrorCodes.CHANNEL_CLOSED, `send failed: ${(error as Error).message}`);
      return;
    }
    this.#inFlight.push(prepared.frame.seq);
    this.#lastSeq = prepared.frame.seq;
    this.#sessionId = prepared.sessionId;
    this.#lastSentAt = now;
    this.#framesSent++;
    this.#bytesSent += viewerFrameWireBytes(frame, this.#maxMessageBytes);
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

  #onDataChannel(native: DataChannel): void {
    if (this.#state !== 'connecting' || this.#channel !== undefined) {
      closeUnwanted(native);
      return;
    }
    const channel = fromNodeDataChannel(native);
    this.#channel = channel;
    channel.listen({
      closed: () => {
        this.#channelClosed();
        this.close(ErrorCodes.SESSION_CLOSED, 'viewer channel closed');
      },
      message: (message) => this.#onMessage(message),
      drained: () => this.#hooks.ready(this),
      open: () => this.#onOpen(),
    });
    if (channel.protocol !== VIEWER_PROTOCOL) {
      this.close(
        ErrorCodes.PROTOCOL_UNSUPPORTED,
        `viewer channels use protocol "${VIEWER_PROTOCOL}", not ${JSON.stringify(channel.protocol)}`,
      );
      return;
    }
    channel.setLowWaterMark(DRAINED_BYTES);
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
      ...this.#hooks.origin(this),
      maxPoints: this.#options.maxPoints,
      maxFps: this.#options.maxFps,
      fields: this.#hooks.fields(this),
    });
    this.#hooks.ready(this);
  }

  /** Tells the page its stream's fields changed (the colour picker follows them). */
  sendFields(fields: readonly ViewerField[]): void {
    if (this.#state === 'open') this.#sendText({ type: 'fields', fields });
  }

  #onMessage(message: ChannelMessage): void {
    if (typeof message !== 'string') return;
    const request = decodeViewerRequest(message);
    if (request === undefined) {
      this.log.debug({ event: 'viewer-bad-message' }, 'viewer sent text that is not a request');
      return;
    }
    if (request.type === 'colour') {
      this.#onColour(request.field);
      return;
    }
    const seq = request.seq;
    const index = this.#inFlight.indexOf(seq);
    if (index < 0) return;
    // Acknowledging a frame acknowledges the ones before it (the page may skip drawing them).
    this.#inFlight.splice(0, index + 1);
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    this.#armAckTimer();
    this.#hooks.ready(this);
  }

  /** Colours the next frames by `colour`, or tells the page why not (the viewer goes on). */
  #onColour(colour: string): void {
    const refusal = this.#hooks.checkColour(this, colour);
    if (refusal !== undefined) {
      this.#sendText({ type: 'error', code: ErrorCodes.FIELDS_INVALID, message: refusal });
      return;
    }
    if (colour === this.#colour) return;
    this.#colour = colour;
    this.log.debug({ event: 'viewer-colour', colour }, `viewer colours by ${colour}`);
    this.#hooks.coloured(this);
  }

  #sendText(message: ViewerControl): void {
    try {
      if (this.#channel?.isOpen()) this.#channel.send(encodeViewerControl(message));
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
        : [{ channel: channel.native, closed: this.#nativeClosed, opened: () => this.#opened }],
    );
    const level = code === ErrorCodes.SESSION_CLOSED ? 'info' : 'warn';
    this.log[level](
      { event: 'viewer-end', code, reason, ...this.stats() },
      `viewer ended: ${reason}`,
    );
    this.#hooks.closed(this, teardown);
  }
}
