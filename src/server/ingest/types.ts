/** Types shared by the ingest modules: code-free, so that importing them creates no cycle. */
import type { ErrorCode, PointstreamError } from '../../errors.js';
import type { Channel } from '../../transport/channel.js';
import type { LogLimiter } from '../../util/log-limit.js';
import type { Logger } from '../../util/logger.js';
import type { MemoryBudget } from '../../wire/reassembler.js';
import type { FrameBufferPool } from '../buffer-pool.js';
import type { DecodeBudget, DecodePool } from '../decode-pool.js';
import type { ReceivedFrame, ServerLimits } from '../types.js';

/** What decodes encoded frames off the main thread: a {@link DecodePool} (or a stand-in in tests). */
export type FrameDecoder = Pick<
  DecodePool,
  'decode' | 'countFrameOverBudget' | 'countSessionClosedOverBudget'
>;

/** Where frames' memory comes from: a server-wide budget, and the buffer pool when reuse is on. */
export interface FrameMemory {
  readonly budget: MemoryBudget;
  readonly pool: FrameBufferPool | undefined;
  /** Decodes encoded frames off the main thread; without it they are decoded inline. */
  readonly decoder?: FrameDecoder | undefined;
}

/**
 * A step between a frame's verification and its receipt (the bus: resolves once the frame is on
 * it). The receipt says `ok: true` only when it resolves; a rejection's code is the receipt's.
 * The frame's buffers are held until it settles; receipts stay in order.
 */
export type ConfirmFrame = (frame: ReceivedFrame) => Promise<void>;

/** What a receiver reports to its session. */
export interface ReceiverHooks {
  /** The channel is open (once; at `start()` when it was open already). */
  opened(): void;
  /** A frame was verified; its receipt follows. */
  frame(frame: ReceivedFrame): void;
  /** A frame was rejected; its receipt (when it has a seq) follows. */
  rejected(seq: number | undefined, error: PointstreamError): void;
  /** The session must end: an unreadable chunk, too many rejections, decode abuse. */
  end(code: ErrorCode, reason: string): void;
  /** The channel closed (from either side) while the receiver was running; `framesLost` in it. */
  closed(framesLost: number): void;
}

/** Options of a channel's receiver (receiver.ts). */
export interface ReceiverOptions {
  readonly channel: Channel;
  readonly sessionId: string;
  readonly stream: string;
  readonly limits: ServerLimits;
  readonly memory: FrameMemory;
  /** The session's decode allowance, shared by its channels. */
  readonly decodeBudget: DecodeBudget;
  /** The session's limiter of warnings a client can cause, shared by its channels. */
  readonly warnings: LogLimiter;
  readonly log: Logger;
  readonly hooks: ReceiverHooks;
  /** Confirms each verified frame before its receipt (and its `frame` hook); none: at once. */
  readonly confirm?: ConfirmFrame | undefined;
}
