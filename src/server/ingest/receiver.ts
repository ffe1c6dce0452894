import { crc32 } from 'node:zlib';
import { ErrorCodes, PointstreamError } from '../../errors.js';
import type { ErrorCode } from '../../errors.js';
import { releaseMessage } from '../../rtc/release.js';
import type { Channel, ChannelMessage } from '../../transport/channel.js';
import type { LogLimiter } from '../../util/log-limit.js';
import type { Logger } from '../../util/logger.js';
import { PROTOCOL_V1 } from '../../wire/chunk.js';
import type { ServerMessage } from '../../wire/control.js';
import { decodePlainFrame } from '../../wire/plain.js';
import { FrameReassembler } from '../../wire/reassembler.js';
import type { AssembledFrame, EncodedFrame, MemoryBudget } from '../../wire/reassembler.js';
import type { FrameBufferPool } from '../buffer-pool.js';
import type { DecodeBudget } from '../decode-pool.js';
import type { ReceivedFrame, ServerLimits } from '../types.js';
import { ConfirmQueue } from './confirms.js';
import { ControlSender } from './control.js';
import { FrameDelivery, frameLogFields } from './frames.js';
import { ReceiptOutbox } from './outbox.js';
import type { Outgoing } from './outbox.js';
import type { FrameDecoder, ReceiverHooks, ReceiverOptions } from './types.js';

/** Receipts one channel may hold back behind decoding (or the bus) before the session is ended. */
const MAX_OUTBOX = 64;

const allocate = (bytes: number): Uint8Array => Buffer.allocUnsafeSlow(bytes);
const noRetain = (): (() => void) => () => undefined;

/**
 * The receiving side of one channel: reassembly (`pointstream/1`) or whole messages (plain),
 * verified frames handed up, a receipt for each in order. Knows the channel only through the
 * {@link Channel} seam.
 */
export class ChannelReceiver {
  readonly channel: Channel;
  readonly protocol: string;
  readonly log: Logger;
  readonly #reassembler: FrameReassembler | undefined;
  readonly #hooks: ReceiverHooks;
  readonly #limits: ServerLimits;
  readonly #debug: boolean;
  readonly #pool: FrameBufferPool | undefined;
  readonly #decoder: FrameDecoder | undefined;
  readonly #budget: MemoryBudget;
  readonly #decodeBudget: DecodeBudget;
  readonly #warnings: LogLimiter;
  readonly #delivery: FrameDelivery;
  readonly #outbox = new ReceiptOutbox(MAX_OUTBOX);
  /** Receipts behind frames the bus has not confirmed yet; none without a bus. */
  readonly #confirms: ConfirmQueue | undefined;
  readonly #stopped = (): boolean => this.#closed;
  /** Complete frames in the outbox waiting behind a decode (their memory is out of reassembly). */
  #waitingFrames = 0;
  #opened = false;
  #closedNatively!: () => void;
  /** Resolves when the channel reports closed (node-datachannel then releases its callbacks). */
  readonly closed = new Promise<void>((resolve) => (this.#closedNatively = resolve));
  #plainSeq = 0;
  #consecutiveRejections = 0;
  #closed = false;
  #lastMessageAt = -Infinity;
  readonly control: ControlSender; // control messages out, and heartbeats

  constructor(options: ReceiverOptions) {
    const { channel, limits, memory, log } = options;
    this.channel = channel;
    this.control = new ControlSender(channel);
    this.protocol = channel.protocol;
    this.log = log;
    this.#hooks = options.hooks;
    this.#limits = limits;
    this.#debug = log.isLevelEnabled?.('debug') ?? false;
    const pool = memory.pool;
    this.#reassembler =
      channel.protocol === PROTOCOL_V1
        ? new FrameReassembler({
            limits,
            checksum: crc32,
            budget: memory.budget,
            allocate: pool ? (bytes) => pool.acquire(bytes) : allocate,
            ...(pool ? { recycle: (payload) => pool.recycle(payload) } : {}),
            deferDecode: memory.decoder !== undefined,
          })
        : undefined;
    this.#pool = pool;
    this.#decoder = memory.decoder;
    this.#budget = memory.budget;
    this.#decodeBudget = options.decodeBudget;
    this.#warnings = options.warnings;
    this.#confirms =
      options.confirm &&
      new ConfirmQueue({
        confirm: options.confirm,
        budget: memory.budget,
        capacity: MAX_OUTBOX,
        stopped: this.#stopped,
        hooks: {
          deliver: (frame) => this.#deliver(frame),
          reject: (seq, error, blame) => this.#rejectNow(seq, error, false, blame),
          overflow: (waiting) =>
            this.#hooks.end(ErrorCodes.BUS_UNAVAILABLE, `${waiting} receipts wait for the bus`),
        },
      });
    this.#delivery = new FrameDelivery({
      sessionId: options.sessionId,
      stream: options.stream,
      pool,
      accept: (frame) => this.#accept(frame),
    });
  }

  /** Whether the channel was seen open. */
  get opened(): boolean {
    return this.#opened;
  }

  /** `performance.now()` at the last binary message (-Infinity before one): text does not count. */
  get lastMessageAt(): number {
    return this.#lastMessageAt;
  }

  /** Starts listening; reports `opened` now if the channel is open already. */
  start(): void {
    this.channel.listen({
      open: () => this.#onOpen(),
      message: (data) => this.#onMessage(data),
      closed: () => this.#onClosed(),
      error: (error) =>
        this.log.warn({ event: 'channel-error', error }, `data channel error: ${error}`),
    });
    // Channels created by the remote side are usually open already when announced.
    if (this.channel.isOpen()) this.#onOpen();
  }

  send(message: ServerMessage): void {
    if (!this.#closed) this.control.send(message);
  }

  /** Rejects the frames that made no progress since the last sweep (releasing their memory). */
  sweep(stallMs: number): void {
    if (this.#closed || this.#reassembler === undefined) return;
    for (const rejected of this.#reassembler.sweep(stallMs))
      this.#reject(rejected.seq, rejected.error, false);
  }

  /**
   * The session ends: every frame caught mid-way gets its receipt (nothing ends without an answer),
   * then `closing`; the receiver stops (the session closes the channel). Returns the frames lost.
   */
  end(code: ErrorCode, reason: string): number {
    if (this.#closed) return 0;
    let lost = this.#abandon(reason);
    const unfinished = this.#reassembler?.reset() ?? [];
    lost += unfinished.length;
    for (const seq of unfinished) {
      this.send({
        type: 'receipt',
        seq,
        ok: false,
        receivedAt: Date.now(),
        code: ErrorCodes.FRAME_INCOMPLETE,
        message: `session ended before frame ${seq} was complete: ${reason}`,
      });
    }
    this.send({ type: 'closing', code, message: reason });
    this.#closed = true;
    return lost;
  }

  #onOpen(): void {
    if (this.#opened) return;
    this.#opened = true;
    if (!this.#closed) this.#hooks.opened();
  }

  #onClosed(): void {
    this.#closedNatively();
    if (this.#closed) return;
    this.#closed = true;
    const lost = this.#abandon('channel closed') + (this.#reassembler?.reset().length ?? 0);
    this.#hooks.closed(lost);
  }

  #onMessage(message: ChannelMessage): void {
    if (this.#closed) return;
    if (typeof message === 'string') {
      if (this.control.wanted(message)) return;
      const suppressed = this.#warnings.take();
      if (suppressed !== undefined)
        this.log.warn(
          { event: 'text-ignored', chars: message.length, suppressed },
          'text message from client ignored',
        );
      return;
    }
    this.#lastMessageAt = performance.now();
    if (this.#reassembler) {
      // A chunk is copied into its frame (or dropped) by now, and node-datachannel keeps no hold.
      this.#onChunk(this.#reassembler, message);
      releaseMessage(message);
    } else this.#onPlainFrame(message);
  }

  #onChunk(reassembler: FrameReassembler, bytes: Uint8Array): void {
    const result = reassembler.push(bytes);
    if (result.evicted) this.#rejectInOrder(result.evicted.seq, result.evicted.error, false);
    if (result.kind === 'pending') return;
    if (result.kind === 'rejected') {
      this.#rejectInOrder(result.seq, result.error, result.fatal);
      return;
    }
    if (result.kind === 'encoded') {
      this.#decodeLater(reassembler, result.frame);
      return;
    }
    if (this.#outbox.size === 0) this.#delivery.chunked(result.frame);
    else this.#waitInOrder(result.frame);
  }

  /**
   * The channel ends with receipts held back behind decoding: sends them in order (a frame in
   * decode or waiting behind one is lost, `PS_ERR_FRAME_INCOMPLETE`). Returns the frames lost.
   */
  #abandon(reason: string): number {
    let lost = 0;
    // Frames waiting for the bus came before those still in decode.
    const entries = this.#confirms?.abandon() ?? [];
    for (const entry of entries.concat(this.#outbox.abandon())) {
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
    if (this.#outbox.size === 0 || fatal) this.#reject(seq, error, fatal);
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
        this.#delivery.chunked(frame);
      },
      drop: () => this.#pool?.recycle(frame.payload),
    });
  }

  #enqueue(entry: Outgoing): void {
    // Rejections are small, but a sender must not grow the queue without end behind one decode.
    if (!this.#outbox.add(entry))
      this.#hooks.end(
        ErrorCodes.DECODE_BUDGET,
        `${this.#outbox.size} receipts wait behind decoding`,
      );
  }

  /** Refuses a frame for the session's decode budget; repeated abuse ends the session. */
  #overBudget(seq: number, reason: string): void {
    this.#decoder?.countFrameOverBudget();
    const error = new PointstreamError(ErrorCodes.DECODE_BUDGET, `frame ${seq}: ${reason}`, {
      details: { seq },
    });
    this.#rejectInOrder(seq, error, false);
    const budget = this.#decodeBudget;
    if (budget.strikes >= this.#limits.maxConsecutiveRejections && !this.#closed) {
      this.#decoder?.countSessionClosedOverBudget();
      this.#hooks.end(
        ErrorCodes.DECODE_BUDGET,
        `${budget.strikes} frames over the decode budget (${budget.msPerSecond} ms per second, ${budget.maxQueued} frames queued)`,
      );
    }
  }

  /** Sends an encoded frame to the decode pool, if the session's budget admits it. */
  #decodeLater(reassembler: FrameReassembler, frame: EncodedFrame): void {
    const budget = this.#decodeBudget;
    const advance = budget.admit(frame.pointCount);
    if (typeof advance === 'string') {
      reassembler.releaseDecoded(frame.reserved);
      this.#pool?.recycle(frame.payload);
      this.#overBudget(frame.seq, advance);
      return;
    }
    const entry: Outgoing = { seq: frame.seq, run: undefined };
    this.#outbox.reserve(entry);
    // The budget is the session's: its jobs take turns with other sessions' in the pool.
    (this.#decoder as FrameDecoder).decode(
      budget,
      frame.payload,
      frame.encoding,
      frame.pointCount,
      this.#limits.maxPointsPerFrame,
      (error, points, payload, ms, fields) => {
        budget.charge(ms, advance, frame.pointCount);
        // The budget covers payload, points and fields until the frame is delivered or dropped.
        const release = (): void => reassembler.releaseDecoded(frame.reserved);
        if (entry.abandoned) {
          release();
          return;
        }
        entry.drop = release;
        entry.run = () => {
          release();
          if (points === undefined) {
            const { code, message } = error as PointstreamError;
            const reason = `frame ${frame.seq}: ${message}`;
            const rejection = new PointstreamError(code, reason, { details: { seq: frame.seq } });
            this.#reject(frame.seq, rejection, false);
          } else this.#delivery.chunked({ ...frame, points, payload, fields });
        };
        this.#outbox.flush(this.#stopped);
      },
      frame.fieldTable,
    );
  }

  #onPlainFrame(bytes: Uint8Array): void {
    const seq = this.#plainSeq++;
    const startedAt = performance.now();
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
      return noRetain();
    };
    let frame;
    try {
      frame = decodePlainFrame(bytes, seq, this.#limits);
    } catch (error) {
      this.#budget.release(reserved);
      this.#reject(seq, error as PointstreamError, false);
      releaseMessage(bytes);
      return;
    }
    try {
      this.#delivery.plain({ seq, bytes, frame, startedAt, retain });
    } finally {
      this.#budget.release(reserved);
    }
    if (!retained) releaseMessage(bytes);
  }

  #accept(frame: ReceivedFrame): void {
    this.#consecutiveRejections = 0;
    if (this.#confirms === undefined) this.#deliver(frame);
    else {
      const refused = this.#confirms.add(frame);
      if (refused !== undefined) this.#reject(frame.seq, refused, false);
    }
  }

  /** A verified frame (confirmed, with a bus): its hook, its log line, its `ok` receipt. */
  #deliver(frame: ReceivedFrame): void {
    this.#hooks.frame(frame);
    this.log.info(frameLogFields(frame), 'frame verified');
    this.send({
      type: 'receipt',
      seq: frame.seq,
      ok: true,
      receivedAt: frame.receivedAt,
      points: frame.pointCount,
    });
  }

  /** Rejects a frame now, or behind the frames waiting for the bus. */
  #reject(seq: number | undefined, error: PointstreamError, fatal: boolean): void {
    if (fatal || this.#confirms?.defer(seq, error) !== true) this.#rejectNow(seq, error, fatal);
  }

  /** `blame`: the client's doing, counted towards `maxConsecutiveRejections`. */
  #rejectNow(seq: number | undefined, error: PointstreamError, fatal: boolean, blame = true): void {
    this.#hooks.rejected(seq, error);
    const suppressed = this.#warnings.take();
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
      this.#hooks.end(error.code, `unreadable chunk: ${error.message}`);
      return;
    }
    if (blame && ++this.#consecutiveRejections >= this.#limits.maxConsecutiveRejections) {
      this.#hooks.end(
        ErrorCodes.TOO_MANY_ERRORS,
        `${this.#consecutiveRejections} frames in a row were rejected`,
      );
    }
    if (this.#debug)
      this.log.debug({ event: 'reject-detail', error: error.toJSON() }, 'rejection detail');
  }
}
