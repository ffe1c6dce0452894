import { ErrorCodes } from '../../errors.js';
import type { ErrorCode, PointstreamError } from '../../errors.js';
import type { Channel } from '../../transport/channel.js';
import { LogLimiter } from '../../util/log-limit.js';
import type { Logger } from '../../util/logger.js';
import { PROTOCOL_V1 } from '../../wire/chunk.js';
import { POINT_ENCODING_NAMES, pointEncodingIdOf } from '../../wire/encodings/index.js';
import { DecodeBudget } from '../decode-pool.js';
import type { ReceivedFrame, ServerLimits, SessionStats } from '../types.js';
import { sendControl } from './control.js';
import { ChannelReceiver } from './receiver.js';
import type { ConfirmFrame, FrameMemory } from './types.js';

/** What the ingest side of a session reports to the session. */
export interface IngestHooks {
  /** A channel opened: the session is connected (reported for every channel that opens). */
  connected(): void;
  frame(frame: ReceivedFrame): void;
  rejected(seq: number | undefined, error: PointstreamError): void;
  /**
   * The session must end (idle, the client's last channel closed, abuse): the session then calls
   * {@link SessionIngest.close}. `normal`: the client ended it on purpose.
   */
  end(code: ErrorCode, reason: string, how?: { framesLost?: number; normal?: boolean }): void;
}

/** Options of {@link SessionIngest}. */
export interface IngestOptions {
  readonly sessionId: string;
  readonly stream: string;
  /** The session's recording folder, announced in the hello. */
  readonly recording: string | undefined;
  readonly limits: ServerLimits;
  readonly memory: FrameMemory;
  readonly log: Logger;
  readonly hooks: IngestHooks;
  /**
   * A step each verified frame takes before its `frame` hook and receipt (the bus): the receipt
   * is `ok` only once it resolves. None: frames are answered as soon as they are verified.
   */
  readonly confirm?: ConfirmFrame | undefined;
}

/** A channel the session must close after {@link SessionIngest.close} (as `Peer.closeInOrder` wants it). */
export interface EndedChannel<C extends Channel> {
  readonly channel: C;
  /** Resolves when the channel reported closed. */
  readonly closed: Promise<void>;
  /** Whether the channel was seen open. */
  readonly opened: () => boolean;
}

/** What the ingest side adds to a session's {@link SessionStats}. */
export type IngestStats = Pick<
  SessionStats,
  | 'protocol'
  | 'framesReceived'
  | 'framesRejected'
  | 'bytesReceived'
  | 'pointsReceived'
  | 'lastFrameAt'
  | 'decodeMs'
  | 'framesOverBudget'
>;

/** Labels and protocols are client text up to 65,535 bytes: logs carry at most this much of them. */
const MAX_LOGGED_NAME = 64;
const loggable = (name: string): string =>
  name.length <= MAX_LOGGED_NAME ? name : `${name.slice(0, MAX_LOGGED_NAME)}...(${name.length})`;

/** Encodings this server decodes, announced in the hello. */
const ENCODING_IDS = POINT_ENCODING_NAMES.map((name) => pointEncodingIdOf[name]);

/**
 * The ingest side of one session, whatever carries its channels: admits channels, greets each
 * with a hello, runs a {@link ChannelReceiver} per channel, counts frames, ends idle sessions and
 * rejects stalled frames. Knows channels only through the {@link Channel} seam; `C` is the
 * session's channel type, handed back by {@link close} for it to close natively.
 */
export class SessionIngest<C extends Channel = Channel> {
  readonly #id: string;
  readonly #stream: string;
  readonly #recording: string | undefined;
  readonly #limits: ServerLimits;
  readonly #memory: FrameMemory;
  readonly #log: Logger;
  readonly #hooks: IngestHooks;
  readonly #confirm: ConfirmFrame | undefined;
  /** Held so that node-datachannel does not close them when their wrappers are collected. */
  readonly #receivers = new Map<ChannelReceiver, C>();
  /** Repeated warnings a client can cause (ignored text, rejected frames): at most 20 per 10 s. */
  readonly #warnings = new LogLimiter(20, 10_000);
  /** Decode time and queue this session may use, across its channels. */
  readonly #decodeBudget: DecodeBudget;
  #protocol: string | undefined;
  #connected = false;
  #closed = false;
  #channelsRefused = 0;
  #idleTimer: NodeJS.Timeout | undefined;
  /** Rejects frames that stall (no chunk for `frameStallMs`); one per session, not per frame. */
  #sweepTimer: NodeJS.Timeout | undefined;
  /** Heartbeats of every channel: one timer per session, woken when the earliest could be due. */
  #heartbeatTimer: NodeJS.Timeout | undefined;
  /** The session was told to move (`closing` `PS_ERR_SESSION_MOVED`) and still receives. */
  #moving = false;
  #moveReason = '';
  /** Last frame bytes of channels gone (their receivers keep their own until then). */
  #lastMessageAt = performance.now();
  #framesReceived = 0;
  #framesRejected = 0;
  #bytesReceived = 0;
  #pointsReceived = 0;
  #lastFrameAt: number | undefined;

  constructor(options: IngestOptions) {
    this.#id = options.sessionId;
    this.#stream = options.stream;
    this.#recording = options.recording;
    this.#limits = options.limits;
    this.#memory = options.memory;
    this.#log = options.log;
    this.#hooks = options.hooks;
    this.#confirm = options.confirm;
    this.#decodeBudget = new DecodeBudget(
      options.limits.decodeMsPerSecond,
      options.limits.maxFramesInDecode,
    );
  }

  /** Channels being received on. */
  get channels(): number {
    return this.#receivers.size;
  }

  /** Warnings left out of the log since the last one written. */
  get warningsSuppressed(): number {
    return this.#warnings.suppressed;
  }

  stats(): IngestStats {
    return {
      protocol: this.#protocol,
      framesReceived: this.#framesReceived,
      framesRejected: this.#framesRejected,
      bytesReceived: this.#bytesReceived,
      pointsReceived: this.#pointsReceived,
      lastFrameAt: this.#lastFrameAt,
      decodeMs: Math.round(this.#decodeBudget.decodeMs),
      framesOverBudget: this.#decodeBudget.overBudget,
    };
  }

  /**
   * Takes a channel the client opened. False when it is refused (an unknown protocol, too many
   * channels, the session ended): it was told why (`closing`) and the caller must close it.
   */
  add(channel: C): boolean {
    if (this.#closed) return false;
    const protocol = channel.protocol;
    const log = this.#log.child({ channel: loggable(channel.label) });
    if (protocol !== PROTOCOL_V1 && protocol !== '') {
      const shown = JSON.stringify(loggable(protocol));
      if (this.#warnings.take() !== undefined)
        log.warn(
          { event: 'channel-rejected', protocol: loggable(protocol) },
          `channel protocol ${shown} is not supported`,
        );
      sendControl(channel, {
        type: 'closing',
        code: ErrorCodes.PROTOCOL_UNSUPPORTED,
        message: `protocol ${shown} is not supported; use "${PROTOCOL_V1}" or "" (plain)`,
      });
      return false;
    }
    const max = this.#limits.maxChannelsPerSession;
    if (this.#receivers.size >= max) {
      // Each channel may hold frames in reassembly: their number must not multiply the budget.
      if (this.#channelsRefused++ === 0)
        log.warn(
          { event: 'channel-rejected', code: ErrorCodes.TOO_MANY_CHANNELS },
          `more than ${max} channels in one session: refused`,
        );
      sendControl(channel, {
        type: 'closing',
        code: ErrorCodes.TOO_MANY_CHANNELS,
        message: `a session may have ${max} channels open at once`,
      });
      return false;
    }
    this.#protocol = protocol;
    const receiver = new ChannelReceiver({
      channel,
      sessionId: this.#id,
      stream: this.#stream,
      limits: this.#limits,
      memory: this.#memory,
      decodeBudget: this.#decodeBudget,
      warnings: this.#warnings,
      log,
      confirm: this.#confirm,
      hooks: {
        opened: () => this.#onOpened(receiver),
        frame: (frame) => this.#onFrame(frame),
        rejected: (seq, error) => this.#onRejected(seq, error),
        end: (code, reason) => this.#hooks.end(code, reason),
        closed: (framesLost) => this.#onClosed(receiver, framesLost),
      },
    });
    this.#receivers.set(receiver, channel);
    receiver.start();
    return true;
  }

  /**
   * The session ends: every channel's unfinished frames get their receipts, then `closing`; timers
   * stop. Returns the frames lost and the channels, for the session to close (idempotent: nothing
   * the second time).
   */
  close(code: ErrorCode, reason: string): { framesLost: number; channels: EndedChannel<C>[] } {
    const channels: EndedChannel<C>[] = [];
    if (this.#closed) return { framesLost: 0, channels };
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    clearInterval(this.#sweepTimer);
    clearTimeout(this.#heartbeatTimer);
    this.#idleTimer = this.#sweepTimer = this.#heartbeatTimer = undefined;
    let framesLost = 0;
    for (const [receiver, channel] of this.#receivers) {
      framesLost += receiver.end(code, reason);
      channels.push({ channel, closed: receiver.closed, opened: () => receiver.opened });
    }
    this.#receivers.clear();
    return { framesLost, channels };
  }

  /** Whether the session was told to move. */
  get moving(): boolean {
    return this.#moving;
  }

  /**
   * Tells the client to move (`closing` `PS_ERR_SESSION_MOVED` on every channel) without ending
   * anything: frames keep arriving and getting receipts until the client closes or the session
   * closes it. Channels opened later are told too. Idempotent.
   */
  moveAway(reason: string): void {
    if (this.#closed || this.#moving) return;
    this.#moving = true;
    this.#moveReason = reason;
    for (const receiver of this.#receivers.keys()) this.#tellMove(receiver);
  }

  #tellMove(receiver: ChannelReceiver): void {
    receiver.send({ type: 'closing', code: ErrorCodes.SESSION_MOVED, message: this.#moveReason });
  }

  #onOpened(receiver: ChannelReceiver): void {
    this.#connected = true;
    this.#hooks.connected();
    receiver.log.info(
      { event: 'channel-open', protocol: receiver.protocol || '(plain)' },
      'data channel open',
    );
    const limits = this.#limits;
    receiver.send({
      type: 'hello',
      session: this.#id,
      stream: this.#stream,
      // A path too long for a control message is left out rather than cut.
      ...(this.#recording !== undefined && this.#recording.length <= 1024
        ? { recording: this.#recording }
        : {}),
      protocol: receiver.protocol,
      maxFrameBytes: limits.maxFrameBytes,
      maxPointsPerFrame: limits.maxPointsPerFrame,
      maxFramesInReassembly: limits.maxFramesInReassembly,
      encodings: ENCODING_IDS,
      allowNonFinite: limits.allowNonFinite,
      heartbeatMs: limits.heartbeatMs,
      fields: true,
    });
    if (this.#moving) this.#tellMove(receiver);
    this.#armIdleTimer();
    this.#armHeartbeat(limits.heartbeatMs);
    if (this.#sweepTimer === undefined && !this.#closed) {
      const stallMs = limits.frameStallMs;
      this.#sweepTimer = setInterval(
        () => {
          for (const each of this.#receivers.keys()) each.sweep(stallMs);
        },
        Math.max(1, Math.floor(stallMs / 2)),
      );
      this.#sweepTimer.unref();
    }
  }

  #onFrame(frame: ReceivedFrame): void {
    this.#framesReceived++;
    this.#bytesReceived += frame.byteLength;
    this.#pointsReceived += frame.pointCount;
    this.#lastFrameAt = frame.receivedAt;
    this.#hooks.frame(frame);
  }

  #onRejected(seq: number | undefined, error: PointstreamError): void {
    this.#framesRejected++;
    this.#hooks.rejected(seq, error);
  }

  #onClosed(receiver: ChannelReceiver, framesLost: number): void {
    this.#receivers.delete(receiver);
    this.#lastMessageAt = Math.max(this.#lastMessageAt, receiver.lastMessageAt);
    receiver.log.info({ event: 'channel-closed', framesLost }, 'data channel closed');
    if (this.#receivers.size === 0 && this.#connected && !this.#closed)
      this.#hooks.end(ErrorCodes.SESSION_CLOSED, 'client closed', { framesLost, normal: true });
  }

  /** When frame bytes last arrived, on any channel: text messages must not keep a session alive. */
  #lastMessage(): number {
    let last = this.#lastMessageAt;
    for (const receiver of this.#receivers.keys()) last = Math.max(last, receiver.lastMessageAt);
    return last;
  }

  /** One heartbeat timer per session; it sleeps until the earliest channel's heartbeat is due. */
  #armHeartbeat(delayMs: number): void {
    if (this.#heartbeatTimer || this.#closed) return;
    this.#heartbeatTimer = setTimeout(() => {
      this.#heartbeatTimer = undefined;
      const periodMs = this.#limits.heartbeatMs;
      const now = performance.now();
      let next = now + periodMs;
      for (const receiver of this.#receivers.keys())
        next = Math.min(next, receiver.control.heartbeat(now, periodMs));
      this.#armHeartbeat(Math.max(1, next - now));
    }, delayMs);
    this.#heartbeatTimer.unref();
  }

  /** One timer for the whole session, not one per message: it wakes when the silence could be over. */
  #armIdleTimer(delayMs = this.#limits.idleTimeoutMs): void {
    if (this.#idleTimer || this.#closed) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      const limitMs = this.#limits.idleTimeoutMs;
      const idleMs = performance.now() - this.#lastMessage();
      if (idleMs >= limitMs) {
        this.#hooks.end(
          ErrorCodes.SESSION_CLOSED,
          `idle for ${Math.round(idleMs)} ms (limit ${limitMs} ms)`,
        );
      } else this.#armIdleTimer(limitMs - idleMs);
    }, delayMs);
    this.#idleTimer.unref();
  }
}
