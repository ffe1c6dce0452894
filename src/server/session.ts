import { crc32 } from 'node:zlib';
import type { DataChannel } from 'node-datachannel';
import { ErrorCodes, PointstreamError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { Peer, closeUnwanted } from '../rtc/peer.js';
import type { PeerState, RtcOptions } from '../rtc/peer.js';
import { releaseMessage } from '../rtc/release.js';
import { LogLimiter } from '../util/log-limit.js';
import type { Logger } from '../util/logger.js';
import { Encoding, PROTOCOL_V1 } from '../wire/chunk.js';
import { POINT_ENCODING_NAMES, pointEncodingIdOf } from '../wire/encodings/index.js';
import type { PointEncodingName } from '../wire/encodings/index.js';
import { encodeServerMessage } from '../wire/control.js';
import type { ServerMessage } from '../wire/control.js';
import { decodePlainFrame } from '../wire/plain.js';
import { FrameReassembler } from '../wire/reassembler.js';
import type { AssembledFrame, EncodedFrame, MemoryBudget } from '../wire/reassembler.js';
import type { FrameBufferPool } from './buffer-pool.js';
import { DecodeBudget } from './decode-pool.js';
import type { DecodePool } from './decode-pool.js';
import type {
  ReceivedFrame,
  ServerLimits,
  SessionEnd,
  SessionState,
  SessionStats,
} from './types.js';

/** What a session reports to its server. */
export interface SessionHooks {
  frame(frame: ReceivedFrame): void;
  rejected(sessionId: string, seq: number | undefined, error: PointstreamError): void;
  closed(end: SessionEnd): void;
}

/** Labels and protocols are client text up to 65,535 bytes: logs carry at most this much of them. */
const MAX_LOGGED_NAME = 64;
const loggable = (name: string): string =>
  name.length <= MAX_LOGGED_NAME ? name : `${name.slice(0, MAX_LOGGED_NAME)}...(${name.length})`;

const allocate = (bytes: number): Uint8Array => Buffer.allocUnsafeSlow(bytes);
const keep = (): (() => void) => () => undefined;
const ENCODING_NAMES: Partial<Record<number, PointEncodingName>> = Object.fromEntries(
  POINT_ENCODING_NAMES.map((name) => [pointEncodingIdOf[name], name]),
);
/** Encodings this server decodes, announced in the hello. */
const ENCODING_IDS = POINT_ENCODING_NAMES.map((name) => pointEncodingIdOf[name]);

/** Where frames' memory comes from: a server-wide budget, and the buffer pool when reuse is on. */
export interface FrameMemory {
  readonly budget: MemoryBudget;
  readonly pool: FrameBufferPool | undefined;
  /** Decodes encoded frames off the main thread; without it they are decoded inline. */
  readonly decoder?: DecodePool | undefined;
}

/**
 * One client: its own RTCPeerConnection, its channels, their reassembly state and timers. Never
 * reused; `close()` releases everything.
 */
/** Who a session is: the stream it feeds, where it records, where it came from. */
export interface SessionIdentity {
  readonly stream: string;
  /** The session's recording folder (absolute), when the server records. */
  readonly recording: string | undefined;
  readonly remoteAddress: string | undefined;
}

export class Session {
  readonly id: string;
  readonly stream: string;
  readonly recording: string | undefined;
  readonly remoteAddress: string | undefined;
  readonly createdAt = Date.now();
  readonly #peer: Peer;
  readonly #limits: ServerLimits;
  readonly #log: Logger;
  readonly #hooks: SessionHooks;
  readonly #memory: FrameMemory;
  /** Held so that node-datachannel does not close them when their wrappers are collected. */
  readonly #channels = new Set<ChannelReceiver>();
  #state: SessionState = 'connecting';
  #protocol: string | undefined;
  /**
   * The last ICE state reported, in event order: by the time a peer state is handled here,
   * libdatachannel may have closed ICE already, so `iceState()` would answer 'closed'.
   */
  #iceState = 'new';
  #connectTimer: NodeJS.Timeout | undefined;
  /** Half-open sessions end sooner: ICE must connect within `iceTimeoutMs`. */
  #iceTimer: NodeJS.Timeout | undefined;
  /** Repeated warnings a client can cause (ignored text, rejected frames): at most 20 per 10 s. */
  readonly warnings = new LogLimiter(20, 10_000);
  #idleTimer: NodeJS.Timeout | undefined;
  /** Rejects frames that stall (no chunk for `frameStallMs`); one per session, not per frame. */
  #sweepTimer: NodeJS.Timeout | undefined;
  #channelsRefused = 0;
  #lastMessageAt = performance.now();
  framesReceived = 0;
  framesRejected = 0;
  bytesReceived = 0;
  pointsReceived = 0;
  lastFrameAt: number | undefined;
  /** Decode time and queue this session may use, across its channels. */
  readonly decodeBudget: DecodeBudget;
  /** Resolves when the native connection is released, after `close()`. */
  teardown: Promise<void> = Promise.resolve();

  constructor(
    id: string,
    identity: SessionIdentity,
    rtc: RtcOptions,
    limits: ServerLimits,
    memory: FrameMemory,
    log: Logger,
    hooks: SessionHooks,
  ) {
    this.#memory = memory;
    this.id = id;
    this.stream = identity.stream;
    this.recording = identity.recording;
    this.remoteAddress = identity.remoteAddress;
    this.#limits = limits;
    this.#log = log;
    this.#hooks = hooks;
    this.decodeBudget = new DecodeBudget(limits.decodeMsPerSecond, limits.maxFramesInDecode);
    this.#peer = new Peer('session', rtc, {
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

  /** Applies the client's offer and returns the answer, with this side's candidates in it. */
  async answer(offerSdp: string): Promise<string> {
    const answer = await this.#peer.answer(offerSdp);
    if (this.#state === 'closed')
      throw new PointstreamError(ErrorCodes.SESSION_CLOSED, 'session closed while answering');
    return answer;
  }

  addRemoteCandidates(candidates: readonly { candidate: string; mid: string }[]): void {
    this.#peer.addRemoteCandidates(candidates);
  }

  stats(): SessionStats {
    return {
      id: this.id,
      stream: this.stream,
      recording: this.recording,
      state: this.#state,
      remoteAddress: this.remoteAddress,
      protocol: this.#protocol,
      createdAt: this.createdAt,
      framesReceived: this.framesReceived,
      framesRejected: this.framesRejected,
      bytesReceived: this.bytesReceived,
      pointsReceived: this.pointsReceived,
      lastFrameAt: this.lastFrameAt,
      decodeMs: Math.round(this.decodeBudget.decodeMs),
      framesOverBudget: this.decodeBudget.overBudget,
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

  #onDataChannel(channel: DataChannel): void {
    if (this.#state === 'closed') {
      closeUnwanted(channel);
      return;
    }
    const protocol = channel.getProtocol();
    const label = channel.getLabel();
    const log = this.#log.child({ channel: loggable(label) });
    if (protocol !== PROTOCOL_V1 && protocol !== '') {
      const shown = JSON.stringify(loggable(protocol));
      if (this.warnings.take() !== undefined)
        log.warn(
          { event: 'channel-rejected', protocol: loggable(protocol) },
          `channel protocol ${shown} is not supported`,
        );
      sendControl(channel, {
        type: 'closing',
        code: ErrorCodes.PROTOCOL_UNSUPPORTED,
        message: `protocol ${shown} is not supported; use "${PROTOCOL_V1}" or "" (plain)`,
      });
      closeUnwanted(channel);
      return;
    }
    if (this.#channels.size >= this.#limits.maxChannelsPerSession) {
      // Each channel may hold frames in reassembly: their number must not multiply the budget.
      if (this.#channelsRefused++ === 0)
        log.warn(
          { event: 'channel-rejected', code: ErrorCodes.TOO_MANY_CHANNELS },
          `more than ${this.#limits.maxChannelsPerSession} channels in one session: refused`,
        );
      sendControl(channel, {
        type: 'closing',
        code: ErrorCodes.TOO_MANY_CHANNELS,
        message: `a session may have ${this.#limits.maxChannelsPerSession} channels open at once`,
      });
      closeUnwanted(channel);
      return;
    }
    this.#protocol = protocol;
    const receiver = new ChannelReceiver(this, channel, protocol, this.#limits, this.#memory, log);
    this.#channels.add(receiver);
    channel.onOpen(() => this.#onChannelOpen(receiver));
    // Channels created by the remote side are usually open already when announced.
    if (channel.isOpen()) this.#onChannelOpen(receiver);
  }

  #onChannelOpen(receiver: ChannelReceiver): void {
    if (receiver.opened) return;
    receiver.opened = true;
    if (this.#connectTimer) clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    this.#state = 'connected';
    receiver.log.info(
      { event: 'channel-open', protocol: receiver.protocol || '(plain)' },
      'data channel open',
    );
    receiver.send({
      type: 'hello',
      session: this.id,
      stream: this.stream,
      // A path too long for a control message is left out rather than cut.
      ...(this.recording !== undefined && this.recording.length <= 1024
        ? { recording: this.recording }
        : {}),
      protocol: receiver.protocol,
      maxFrameBytes: this.#limits.maxFrameBytes,
      maxPointsPerFrame: this.#limits.maxPointsPerFrame,
      maxFramesInReassembly: this.#limits.maxFramesInReassembly,
      encodings: ENCODING_IDS,
      allowNonFinite: this.#limits.allowNonFinite,
    });
    this.#armIdleTimer();
    if (this.#sweepTimer === undefined) {
      const stallMs = this.#limits.frameStallMs;
      this.#sweepTimer = setInterval(
        () => {
          for (const channel of this.#channels) channel.sweep(stallMs);
        },
        Math.max(1, Math.floor(stallMs / 2)),
      );
      this.#sweepTimer.unref();
    }
  }

  /** One timer for the whole session, not one per message: it wakes when the silence could be over. */
  #armIdleTimer(delayMs = this.#limits.idleTimeoutMs): void {
    if (this.#idleTimer || this.#state === 'closed') return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      const idleMs = performance.now() - this.#lastMessageAt;
      if (idleMs >= this.#limits.idleTimeoutMs) {
        this.close(
          ErrorCodes.SESSION_CLOSED,
          `idle for ${Math.round(idleMs)} ms (limit ${this.#limits.idleTimeoutMs} ms)`,
        );
      } else this.#armIdleTimer(this.#limits.idleTimeoutMs - idleMs);
    }, delayMs);
    this.#idleTimer.unref();
  }

  /**
   * Called by receivers for every binary message (frame bytes), so that the idle timer needs no
   * per-message reset. Text messages do not count: they must not keep a session alive.
   */
  touch(): void {
    this.#lastMessageAt = performance.now();
  }

  channelClosed(receiver: ChannelReceiver): void {
    this.#channels.delete(receiver);
    const lost = receiver.abandon('channel closed') + (receiver.reassembler?.reset().length ?? 0);
    receiver.log.info({ event: 'channel-closed', framesLost: lost }, 'data channel closed');
    if (this.#channels.size === 0 && this.#state === 'connected') {
      this.close(ErrorCodes.SESSION_CLOSED, 'client closed', { framesLost: lost, normal: true });
    }
  }

  frameReceived(frame: ReceivedFrame): void {
    this.framesReceived++;
    this.bytesReceived += frame.byteLength;
    this.pointsReceived += frame.pointCount;
    this.lastFrameAt = frame.receivedAt;
    this.#hooks.frame(frame);
  }

  frameRejected(seq: number | undefined, error: PointstreamError): void {
    this.framesRejected++;
    this.#hooks.rejected(this.id, seq, error);
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
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#iceTimer);
    clearInterval(this.#sweepTimer);
    this.#connectTimer = this.#idleTimer = this.#iceTimer = this.#sweepTimer = undefined;
    for (const receiver of this.#channels) {
      // Frames caught mid-way get their receipt too: nothing ends without an answer.
      framesLost += receiver.abandon(reason);
      const unfinished = receiver.reassembler?.reset() ?? [];
      framesLost += unfinished.length;
      for (const seq of unfinished) {
        receiver.send({
          type: 'receipt',
          seq,
          ok: false,
          receivedAt: Date.now(),
          code: ErrorCodes.FRAME_INCOMPLETE,
          message: `session ended before frame ${seq} was complete: ${reason}`,
        });
      }
      receiver.send({ type: 'closing', code, message: reason });
      receiver.close();
    }
    this.teardown = this.#peer.closeInOrder(
      [...this.#channels].map((r) => ({
        channel: r.channel,
        closed: r.nativeClosed,
        opened: () => r.opened,
      })),
    );
    this.#channels.clear();
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
        warningsNotLogged: this.warnings.suppressed,
      },
      `session ended: ${reason}`,
    );
    this.#hooks.closed(end);
  }
}

function sendControl(channel: DataChannel, message: ServerMessage): void {
  try {
    if (channel.isOpen()) channel.sendMessage(encodeServerMessage(message));
  } catch {
    // The channel closed under us; the close handler reports it.
  }
}

/** A receipt waiting for an earlier frame's decode; `run` is set once it may go. */
interface Outgoing {
  readonly seq: number | undefined;
  /** Set for a rejection: its receipt is due even if the channel ends first. */
  readonly error?: PointstreamError;
  run: (() => void) | undefined;
  /** Frees what the entry holds when the channel ends before it runs. */
  drop?: (() => void) | undefined;
  abandoned?: boolean;
}

/** Receipts one channel may hold back behind decoding before the session is ended. */
const MAX_OUTBOX = 64;

/** The receiving side of one data channel: reassembly (pointstream/1) or whole messages (plain). */
class ChannelReceiver {
  readonly session: Session;
  readonly channel: DataChannel;
  readonly protocol: string;
  readonly log: Logger;
  readonly reassembler: FrameReassembler | undefined;
  readonly #limits: ServerLimits;
  readonly #debug: boolean;
  readonly #pool: FrameBufferPool | undefined;
  readonly #decoder: DecodePool | undefined;
  /**
   * Receipts due after a frame still in decode, in the order their frames completed: receipts go
   * out in sequence. Empty (and unused) unless encoded frames are being decoded.
   */
  readonly #outbox: Outgoing[] = [];
  /** Complete frames in the outbox waiting behind a decode (their memory is out of reassembly). */
  #waitingFrames = 0;
  readonly #budget: MemoryBudget;
  opened = false;
  #nativeClosed!: () => void;
  /** Resolves when libdatachannel reports the channel closed (its native callbacks are then released). */
  readonly nativeClosed = new Promise<void>((resolve) => (this.#nativeClosed = resolve));
  #plainSeq = 0;
  #consecutiveRejections = 0;
  #closed = false;

  constructor(
    session: Session,
    channel: DataChannel,
    protocol: string,
    limits: ServerLimits,
    memory: FrameMemory,
    log: Logger,
  ) {
    this.session = session;
    this.channel = channel;
    this.protocol = protocol;
    this.log = log;
    this.#limits = limits;
    this.#debug = log.isLevelEnabled?.('debug') ?? false;
    this.reassembler =
      protocol === PROTOCOL_V1
        ? new FrameReassembler({
            limits,
            checksum: crc32,
            budget: memory.budget,
            allocate: memory.pool ? (bytes) => memory.pool!.acquire(bytes) : allocate,
            ...(memory.pool ? { recycle: (payload) => memory.pool!.recycle(payload) } : {}),
            deferDecode: memory.decoder !== undefined,
          })
        : undefined;
    this.#pool = memory.pool;
    this.#decoder = memory.decoder;
    this.#budget = memory.budget;
    channel.onMessage((message) => this.#onMessage(message));
    channel.onClosed(() => {
      this.#nativeClosed();
      if (this.#closed) return;
      this.#closed = true;
      session.channelClosed(this);
    });
    channel.onError((error) =>
      log.warn({ event: 'channel-error', error }, `data channel error: ${error}`),
    );
  }

  send(message: ServerMessage): void {
    if (!this.#closed) sendControl(this.channel, message);
  }

  /** Rejects the frames that made no progress since the last sweep (releasing their memory). */
  sweep(stallMs: number): void {
    if (this.#closed || this.reassembler === undefined) return;
    for (const rejected of this.reassembler.sweep(stallMs))
      this.#reject(rejected.seq, rejected.error, false);
  }

  /** Stops handling the channel; `Peer.closeInOrder` closes it natively. */
  close(): void {
    this.#closed = true;
  }

  #onMessage(message: string | Buffer | ArrayBuffer): void {
    if (this.#closed) return;
    if (typeof message === 'string') {
      const suppressed = this.session.warnings.take();
      if (suppressed !== undefined)
        this.log.warn(
          { event: 'text-ignored', chars: message.length, suppressed },
          'text message from client ignored',
        );
      return;
    }
    this.session.touch();
    const bytes = message instanceof ArrayBuffer ? new Uint8Array(message) : message;
    if (this.reassembler) {
      // A chunk is copied into its frame (or dropped) by now, and node-datachannel keeps no hold.
      this.#onChunk(bytes);
      releaseMessage(bytes);
    } else this.#onPlainFrame(bytes);
  }

  #onChunk(bytes: Uint8Array): void {
    const result = (this.reassembler as FrameReassembler).push(bytes);
    if (result.evicted) this.#rejectInOrder(result.evicted.seq, result.evicted.error, false);
    if (result.kind === 'pending') return;
    if (result.kind === 'rejected') {
      this.#rejectInOrder(result.seq, result.error, result.fatal);
      return;
    }
    if (result.kind === 'encoded') {
      this.#decodeLater(result.frame);
      return;
    }
    if (this.#outbox.length === 0) this.#deliver(result.frame);
    else this.#waitInOrder(result.frame);
  }

  /**
   * The channel ends with receipts held back behind decoding: sends them in order (a frame in
   * decode or waiting behind one is lost, `PS_ERR_FRAME_INCOMPLETE`). Returns the frames lost.
   */
  abandon(reason: string): number {
    let lost = 0;
    for (const entry of this.#outbox.splice(0)) {
      if (entry.run === undefined) entry.abandoned = true;
      else entry.drop?.();
      if (entry.seq === undefined) continue;
      const error = entry.error;
      if (error === undefined) lost++;
      this.send({
        type: 'receipt',
        seq: entry.seq,
        ok: false,
        receivedAt: Date.now(),
        code: error?.code ?? ErrorCodes.FRAME_INCOMPLETE,
        message:
          error?.message ?? `session ended before frame ${entry.seq} was delivered: ${reason}`,
      });
    }
    this.#waitingFrames = 0;
    return lost;
  }

  #rejectInOrder(seq: number | undefined, error: PointstreamError, fatal: boolean): void {
    if (this.#outbox.length === 0 || fatal) this.#reject(seq, error, fatal);
    else this.#enqueue({ seq, error, run: () => this.#reject(seq, error, false) });
  }

  /** A complete frame whose receipt must wait for an earlier frame's decode. */
  #waitInOrder(frame: AssembledFrame): void {
    if (this.#waitingFrames >= this.#limits.maxFramesInReassembly) {
      this.#pool?.recycle(frame.payload);
      this.#overBudget(
        frame.seq,
        `${this.#waitingFrames} complete frames already wait behind decoding`,
      );
      return;
    }
    this.#waitingFrames++;
    this.#enqueue({
      seq: frame.seq,
      run: () => {
        this.#waitingFrames--;
        this.#deliver(frame);
      },
      drop: () => this.#pool?.recycle(frame.payload),
    });
  }

  #enqueue(entry: Outgoing): void {
    // Rejections are small, but a sender must not grow the queue without end behind one decode.
    if (this.#outbox.length >= MAX_OUTBOX) {
      this.session.close(
        ErrorCodes.DECODE_BUDGET,
        `${this.#outbox.length} receipts wait behind decoding`,
      );
      return;
    }
    this.#outbox.push(entry);
  }

  /** Runs the receipts due, in order, up to the first frame still in decode. */
  #flush(): void {
    const outbox = this.#outbox;
    while (outbox.length > 0 && !this.#closed) {
      const run = (outbox[0] as Outgoing).run;
      if (run === undefined) return;
      outbox.shift();
      run();
    }
  }

  /** Refuses a frame for the session's decode budget; repeated abuse ends the session. */
  #overBudget(seq: number, reason: string): void {
    const decoder = this.#decoder;
    if (decoder) decoder.framesOverBudget++;
    const error = new PointstreamError(ErrorCodes.DECODE_BUDGET, `frame ${seq}: ${reason}`, {
      details: { seq },
    });
    this.#rejectInOrder(seq, error, false);
    const budget = this.session.decodeBudget;
    if (budget.strikes >= this.#limits.maxConsecutiveRejections && !this.#closed) {
      if (decoder) decoder.sessionsClosedOverBudget++;
      this.session.close(
        ErrorCodes.DECODE_BUDGET,
        `${budget.strikes} frames over the decode budget (${budget.msPerSecond} ms per second, ${budget.maxQueued} frames queued)`,
      );
    }
  }

  /** Sends an encoded frame to the decode pool, if the session's budget admits it. */
  #decodeLater(frame: EncodedFrame): void {
    const reassembler = this.reassembler as FrameReassembler;
    const budget = this.session.decodeBudget;
    const advance = budget.admit(frame.pointCount);
    if (typeof advance === 'string') {
      reassembler.releaseDecoded(frame.reserved);
      this.#pool?.recycle(frame.payload);
      this.#overBudget(frame.seq, advance);
      return;
    }
    const entry: Outgoing = { seq: frame.seq, run: undefined };
    this.#outbox.push(entry);
    (this.#decoder as DecodePool).decode(
      this.session,
      frame.payload,
      frame.encoding,
      frame.pointCount,
      this.#limits.maxPointsPerFrame,
      (error, points, payload, ms) => {
        budget.charge(ms, advance, frame.pointCount);
        // The budget covers payload and points until the frame is delivered or dropped.
        const release = (): void => reassembler.releaseDecoded(frame.reserved);
        if (entry.abandoned) {
          release();
          return;
        }
        entry.drop = release;
        entry.run = () => {
          release();
          if (points === undefined) {
            const cause = error as PointstreamError;
            const rejection = new PointstreamError(
              cause.code,
              `frame ${frame.seq}: ${cause.message}`,
              {
                details: { seq: frame.seq },
              },
            );
            this.#reject(frame.seq, rejection, false);
          } else this.#deliver({ ...frame, points, payload });
        };
        this.#flush();
      },
    );
  }

  #deliver(frame: AssembledFrame): void {
    const pool = this.#pool;
    // The receiver's own hold, dropped once the listeners have run; `retain()` adds more.
    let holds = 1;
    const drop = (): void => {
      if (--holds === 0) pool?.recycle(frame.payload);
    };
    const retain =
      pool === undefined
        ? keep
        : (): (() => void) => {
            if (holds === 0) throw new Error('frame.retain() after its buffers were reused');
            holds++;
            let held = true;
            return () => {
              if (held) {
                held = false;
                drop();
              }
            };
          };
    this.#accept({
      sessionId: this.session.id,
      stream: this.session.stream,
      seq: frame.seq,
      pointCount: frame.pointCount,
      points: frame.points,
      form: 'chunked',
      encoding: ENCODING_NAMES[frame.encoding] ?? 'raw',
      npy: frame.encoding === Encoding.NPY ? frame.payload : undefined,
      encoded: frame.encoding === Encoding.NPY ? undefined : frame.payload,
      byteLength: frame.payload.length,
      captureTime: frame.captureTime,
      receivedAt: Date.now(),
      crc32: frame.crc32,
      assemblyMs: frame.completedAt - frame.startedAt,
      retain,
    });
    drop();
  }

  #onPlainFrame(bytes: Uint8Array): void {
    const seq = this.#plainSeq++;
    const started = performance.now();
    // A plain message is already whole in memory; it counts in the budget until it is handled.
    const reserved = bytes.length;
    if (!this.#budget.reserve(reserved)) {
      this.#reject(
        seq,
        new PointstreamError(
          ErrorCodes.SERVER_MEMORY,
          `no memory for a ${reserved}-byte plain frame: the reassembly budget is in use`,
        ),
        false,
      );
      releaseMessage(bytes);
      return;
    }
    // With buffer reuse on, a frame is valid only during its listeners unless retained: a frame
    // nobody retained is freed at once rather than at the next GC (rtc/release.ts).
    let retained = this.#pool === undefined;
    const retain = (): (() => void) => {
      retained = true;
      return () => undefined;
    };
    let plain;
    try {
      plain = decodePlainFrame(bytes, seq, this.#limits);
    } catch (error) {
      this.#budget.release(reserved);
      this.#reject(seq, error as PointstreamError, false);
      releaseMessage(bytes);
      return;
    }
    try {
      this.#accept({
        sessionId: this.session.id,
        stream: this.session.stream,
        seq,
        pointCount: plain.pointCount,
        points: plain.points,
        form: plain.format === 'npy' ? 'plain-npy' : 'plain-raw',
        encoding: 'raw',
        npy: plain.format === 'npy' ? bytes : undefined,
        encoded: undefined,
        byteLength: bytes.length,
        captureTime: undefined,
        receivedAt: Date.now(),
        crc32: undefined,
        assemblyMs: performance.now() - started,
        retain,
      });
    } finally {
      this.#budget.release(reserved);
    }
    if (!retained) releaseMessage(bytes);
  }

  #accept(frame: ReceivedFrame): void {
    this.#consecutiveRejections = 0;
    this.session.frameReceived(frame);
    const latencyMs =
      frame.captureTime === undefined
        ? undefined
        : Math.round((frame.receivedAt - frame.captureTime) * 10) / 10;
    this.log.info(
      {
        event: 'frame',
        seq: frame.seq,
        points: frame.pointCount,
        bytes: frame.byteLength,
        form: frame.form,
        latencyMs,
        assemblyMs: Math.round(frame.assemblyMs * 10) / 10,
        checksum: frame.crc32 === undefined ? 'none' : 'ok',
      },
      'frame verified',
    );
    this.send({
      type: 'receipt',
      seq: frame.seq,
      ok: true,
      receivedAt: frame.receivedAt,
      points: frame.pointCount,
    });
  }

  #reject(seq: number | undefined, error: PointstreamError, fatal: boolean): void {
    this.session.frameRejected(seq, error);
    const suppressed = this.session.warnings.take();
    if (suppressed !== undefined)
      this.log.warn(
        {
          event: 'frame-rejected',
          seq,
          code: error.code,
          reason: error.message,
          fatal,
          suppressed,
        },
        `frame rejected: ${error.message}`,
      );
    if (seq !== undefined) {
      this.send({
        type: 'receipt',
        seq,
        ok: false,
        receivedAt: Date.now(),
        code: error.code,
        message: error.message,
      });
    }
    if (fatal) {
      this.session.close(error.code, `unreadable chunk: ${error.message}`);
      return;
    }
    if (++this.#consecutiveRejections >= this.#limits.maxConsecutiveRejections) {
      this.session.close(
        ErrorCodes.TOO_MANY_ERRORS,
        `${this.#consecutiveRejections} frames in a row were rejected`,
      );
    }
    if (this.#debug)
      this.log.debug({ event: 'reject-detail', error: error.toJSON() }, 'rejection detail');
  }
}
