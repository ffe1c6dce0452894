import type { DataChannel } from 'node-datachannel';
import { ErrorCodes, PointstreamError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { Peer, closeUnwanted } from '../rtc/peer.js';
import type { PeerState, RtcOptions } from '../rtc/peer.js';
import { fromNodeDataChannel } from '../transport/node-channel.js';
import type { NodeChannel } from '../transport/node-channel.js';
import type { Logger } from '../util/logger.js';
import { SessionIngest } from './ingest/ingest.js';
import type { ConfirmFrame, FrameMemory } from './ingest/types.js';
import type {
  ReceivedFrame,
  ServerLimits,
  SessionEnd,
  SessionState,
  SessionStats,
} from './types.js';

export type { FrameMemory } from './ingest/types.js';

/** What a session reports to its server. */
export interface SessionHooks {
  frame(frame: ReceivedFrame): void;
  rejected(sessionId: string, seq: number | undefined, error: PointstreamError): void;
  closed(end: SessionEnd): void;
}

/** Options of {@link Session}. */
export interface SessionOptions {
  readonly id: string;
  /** The stream the session feeds. */
  readonly stream: string;
  /** The session's recording folder (absolute), when the server records. */
  readonly recording: string | undefined;
  /** Where the offer came from. */
  readonly remoteAddress: string | undefined;
  readonly rtc: RtcOptions;
  readonly limits: ServerLimits;
  readonly memory: FrameMemory;
  readonly log: Logger;
  readonly hooks: SessionHooks;
  /** Each verified frame's step before its receipt (the bus), if any. */
  readonly confirm?: ConfirmFrame | undefined;
}

/**
 * One client: its own RTCPeerConnection and its timers; what arrives on its channels is the
 * {@link SessionIngest}'s. Never reused; `close()` releases everything.
 */
export class Session {
  readonly id: string;
  readonly stream: string;
  readonly recording: string | undefined;
  readonly remoteAddress: string | undefined;
  readonly createdAt = Date.now();
  readonly #peer: Peer;
  readonly #ingest: SessionIngest<NodeChannel>;
  readonly #log: Logger;
  readonly #hooks: SessionHooks;
  #state: SessionState = 'connecting';
  /**
   * The last ICE state reported, in event order: by the time a peer state is handled here,
   * libdatachannel may have closed ICE already, so `iceState()` would answer 'closed'.
   */
  #iceState = 'new';
  #connectTimer: NodeJS.Timeout | undefined;
  /** Half-open sessions end sooner: ICE must connect within `iceTimeoutMs`. */
  #iceTimer: NodeJS.Timeout | undefined;
  #teardown: Promise<void> = Promise.resolve();
  readonly #moveTimeoutMs: number;
  #moveTimer: NodeJS.Timeout | undefined;
  #moved: Promise<void> | undefined;
  #ended!: () => void;
  /** Resolves when the session closed, whoever closed it. */
  readonly #endedPromise = new Promise<void>((resolve) => (this.#ended = resolve));

  constructor(options: SessionOptions) {
    const { limits, log, hooks } = options;
    this.id = options.id;
    this.stream = options.stream;
    this.recording = options.recording;
    this.remoteAddress = options.remoteAddress;
    this.#log = log;
    this.#hooks = hooks;
    this.#moveTimeoutMs = limits.moveTimeoutMs;
    this.#ingest = new SessionIngest({
      sessionId: this.id,
      stream: this.stream,
      recording: this.recording,
      limits,
      memory: options.memory,
      log,
      confirm: options.confirm,
      hooks: {
        connected: () => this.#onConnected(),
        frame: (frame) => hooks.frame(frame),
        rejected: (seq, error) => hooks.rejected(this.id, seq, error),
        end: (code, reason, how) => this.close(code, reason, how),
      },
    });
    this.#peer = new Peer('session', options.rtc, {
      state: (state) => this.#onPeerState(state),
      iceState: (state) => {
        this.#iceState = state;
        if (state === 'connected' || state === 'completed') {
          clearTimeout(this.#iceTimer);
          this.#iceTimer = undefined;
        }
        this.#log.debug({ event: 'ice-state', iceState: state }, `ICE ${state}`);
      },
      gatheringState: (state) =>
        this.#log.debug(
          { event: 'gathering-state', gatheringState: state },
          `ICE gathering ${state}`,
        ),
      dataChannel: (channel) => this.#onDataChannel(channel),
    });
    this.#connectTimer = setTimeout(() => {
      this.close(
        ErrorCodes.CONNECT_TIMEOUT,
        `no data channel opened within ${limits.connectTimeoutMs} ms`,
      );
    }, limits.connectTimeoutMs);
    this.#iceTimer = setTimeout(() => {
      this.close(
        ErrorCodes.CONNECT_TIMEOUT,
        `ICE did not connect within ${limits.iceTimeoutMs} ms (ICE ${this.#iceState})`,
      );
    }, limits.iceTimeoutMs);
  }

  get state(): SessionState {
    return this.#state;
  }

  /** Resolves when the native connection is released, after `close()`. */
  get teardown(): Promise<void> {
    return this.#teardown;
  }

  /** Applies the client's offer and returns the answer, with this side's candidates in it. */
  async answer(offerSdp: string): Promise<string> {
    const answer = await this.#peer.answer(offerSdp);
    if (this.#state === 'closed')
      throw new PointstreamError(ErrorCodes.SESSION_CLOSED, 'session closed while answering');
    return answer;
  }

  /**
   * Moves the client to another node (draining): sends `closing` `PS_ERR_SESSION_MOVED`, keeps
   * receiving and receipting the frames in flight (the client sends no new ones), and resolves once
   * the session ended: the client closed it, or `moveTimeoutMs` passed and it was closed here with
   * that code. Idempotent: later calls return the same promise.
   */
  moveAway(): Promise<void> {
    if (this.#moved) return this.#moved;
    if (this.#state === 'closed') return (this.#moved = Promise.resolve());
    this.#log.info({ event: 'session-moving' }, 'telling the client to move');
    this.#ingest.moveAway('the node is draining: reconnect through the front');
    const timeoutMs = this.#moveTimeoutMs;
    this.#moveTimer = setTimeout(() => {
      this.close(ErrorCodes.SESSION_MOVED, `the client did not move within ${timeoutMs} ms`, {
        normal: true,
      });
    }, timeoutMs);
    this.#moved = this.#endedPromise;
    return this.#moved;
  }

  addRemoteCandidates(candidates: readonly { candidate: string; mid: string }[]): void {
    this.#peer.addRemoteCandidates(candidates);
  }

  stats(): SessionStats {
    const ingest = this.#ingest.stats();
    return {
      id: this.id,
      stream: this.stream,
      recording: this.recording,
      state: this.#state,
      remoteAddress: this.remoteAddress,
      protocol: ingest.protocol,
      createdAt: this.createdAt,
      framesReceived: ingest.framesReceived,
      framesRejected: ingest.framesRejected,
      bytesReceived: ingest.bytesReceived,
      pointsReceived: ingest.pointsReceived,
      lastFrameAt: ingest.lastFrameAt,
      decodeMs: ingest.decodeMs,
      framesOverBudget: ingest.framesOverBudget,
    };
  }

  #onPeerState(state: PeerState): void {
    const iceState = this.#iceState;
    this.#log.info({ event: 'peer-state', peerState: state, iceState }, `peer connection ${state}`);
    if (state === 'failed') this.close(ErrorCodes.CONNECTION_FAILED, 'peer connection failed');
    else if (state === 'closed')
      this.close(ErrorCodes.SESSION_CLOSED, 'client closed', { normal: true });
    else if (state === 'disconnected') {
      // libdatachannel reports 'disconnected' when DTLS or SCTP above a working ICE path shut
      // down: the client closed its peer connection (aiortc, libwebrtc and node-datachannel do
      // so without closing the channel first). A lost path shows in ICE itself (failed).
      if (iceState === 'connected' || iceState === 'completed')
        this.close(ErrorCodes.SESSION_CLOSED, 'client closed', { normal: true });
      else this.close(ErrorCodes.CONNECTION_FAILED, `peer connection lost (ICE ${iceState})`);
    }
  }

  #onDataChannel(native: DataChannel): void {
    if (this.#state === 'closed') {
      closeUnwanted(native);
      return;
    }
    if (!this.#ingest.add(fromNodeDataChannel(native))) closeUnwanted(native);
  }

  /** A channel opened: the session is up. */
  #onConnected(): void {
    if (this.#state === 'closed') return;
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    this.#state = 'connected';
  }

  /**
   * Ends the session: tells the client why (when the channel is still up), closes channels and the
   * peer connection, clears timers. Idempotent. `normal`: ended on purpose (the client closed,
   * the server shuts down), as opposed to a failure or a timeout; it stays normal only if no
   * frame was caught mid-way.
   */
  close(
    code: ErrorCode,
    reason: string,
    { framesLost = 0, normal = false }: { framesLost?: number; normal?: boolean } = {},
  ): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#iceTimer);
    clearTimeout(this.#moveTimer);
    this.#connectTimer = this.#iceTimer = this.#moveTimer = undefined;
    // Frames caught mid-way get their receipt too: nothing ends without an answer.
    const ended = this.#ingest.close(code, reason);
    framesLost += ended.framesLost;
    this.#teardown = this.#peer.closeInOrder(
      ended.channels.map(({ channel, closed, opened }) => ({
        channel: channel.native,
        closed,
        opened,
      })),
    );
    normal &&= framesLost === 0;
    const end: SessionEnd = { stats: this.stats(), code, reason, framesLost, normal };
    this.#log[normal ? 'info' : 'warn'](
      {
        event: 'session-end',
        code,
        reason,
        normal,
        framesLost,
        ...end.stats,
        warningsNotLogged: this.#ingest.warningsSuppressed,
      },
      `session ended: ${reason}`,
    );
    this.#hooks.closed(end);
    this.#ended();
  }
}
