import { ErrorCodes, PointstreamError, isErrorCode } from '../../errors.js';
import type { ErrorCode } from '../../errors.js';
import type { MemoryBudget } from '../../wire/reassembler.js';
import type { ReceivedFrame } from '../types.js';
import { ReceiptOutbox } from './outbox.js';
import type { Outgoing } from './outbox.js';
import type { ConfirmFrame } from './types.js';

/**
 * Verified frames one channel may have waiting for the bus; beyond it `PS_ERR_BUS_UNAVAILABLE`.
 * A client keeps 2 unacknowledged (its default), so only a sender that ignores receipts meets it.
 */
export const MAX_CONFIRMING = 16;

/** What the queue hands back to its receiver, in receipt order. */
export interface ConfirmHooks {
  /** The frame is confirmed: its `frame` hook and its `ok` receipt (buffers valid meanwhile). */
  deliver(frame: ReceivedFrame): void;
  /** The frame was not confirmed, or a rejection's turn came: its receipt. `blame`: the client's doing. */
  reject(seq: number | undefined, error: PointstreamError, blame: boolean): void;
  /** More receipts wait than the queue holds: the session must end. */
  overflow(waiting: number): void;
}

/** Options of {@link ConfirmQueue}. */
export interface ConfirmQueueOptions {
  readonly confirm: ConfirmFrame;
  /** Frames waiting for the bus stay counted here (the channel's reassembly budget). */
  readonly budget: MemoryBudget;
  /** Receipts the queue may hold (frames and rejections together). */
  readonly capacity: number;
  /** True once the channel ended: nothing more is sent. */
  readonly stopped: () => boolean;
  readonly hooks: ConfirmHooks;
}

/**
 * The receipts of one channel behind a confirmation step (`serve --bus`: the frame's PubAcks).
 * Frames are confirmed concurrently (the bus pipelines them) and answered in order; a rejection
 * while frames wait goes behind them. A frame's buffers are held (`retain()`) and its bytes
 * reserved in the budget until it is answered or abandoned.
 */
export class ConfirmQueue {
  readonly #confirm: ConfirmFrame;
  readonly #budget: MemoryBudget;
  readonly #outbox: ReceiptOutbox;
  readonly #stopped: () => boolean;
  readonly #hooks: ConfirmHooks;
  #frames = 0;

  constructor(options: ConfirmQueueOptions) {
    this.#confirm = options.confirm;
    this.#budget = options.budget;
    this.#outbox = new ReceiptOutbox(options.capacity);
    this.#stopped = options.stopped;
    this.#hooks = options.hooks;
  }

  /** Receipts waiting (frames and rejections). */
  get size(): number {
    return this.#outbox.size;
  }

  /** Frames waiting for their confirmation (or for an earlier one's). */
  get frames(): number {
    return this.#frames;
  }

  /**
   * Starts confirming a verified frame; its answer comes through the hooks, in order. Returns the
   * error to reject it with instead, when it cannot wait (too many frames, no memory).
   */
  add(frame: ReceivedFrame): PointstreamError | undefined {
    const seq = frame.seq;
    if (this.#frames >= MAX_CONFIRMING)
      return refusal(
        ErrorCodes.BUS_UNAVAILABLE,
        `frame ${seq}: ${this.#frames} frames already wait for the bus`,
        seq,
      );
    // A decoded frame holds its payload and its points; a raw one, one buffer for both.
    const bytes = frame.byteLength + (frame.encoded === undefined ? 0 : frame.points.byteLength);
    if (!this.#budget.reserve(bytes))
      return refusal(
        ErrorCodes.SERVER_MEMORY,
        `frame ${seq}: no memory to hold it until the bus confirms it`,
        seq,
      );
    const release = frame.retain();
    this.#frames++;
    let holding = true;
    const free = (): void => {
      if (!holding) return;
      holding = false;
      this.#frames--;
      this.#budget.release(bytes);
      release();
    };
    const entry: Outgoing = { seq, run: undefined };
    this.#outbox.reserve(entry);
    void this.#confirm(frame)
      .then(
        () => undefined,
        (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
      )
      .then((error) => {
        if (entry.abandoned) {
          free();
          return;
        }
        entry.drop = free;
        entry.run = () => {
          if (error === undefined) {
            try {
              this.#hooks.deliver(frame);
            } finally {
              free();
            }
            return;
          }
          free();
          const code = (error as PointstreamError).code;
          const rejection = refusal(
            isErrorCode(code) ? code : ErrorCodes.BUS_UNAVAILABLE,
            `frame ${seq}: ${error.message}`,
            seq,
            error,
          );
          // Not the client's doing: a bus outage must not end its session.
          this.#hooks.reject(seq, rejection, false);
        };
        this.#outbox.flush(this.#stopped);
      });
    return undefined;
  }

  /**
   * A rejection while frames wait: queued behind them (true), or false when none waits (the
   * caller answers it now).
   */
  defer(seq: number | undefined, error: PointstreamError): boolean {
    if (this.#outbox.size === 0) return false;
    if (!this.#outbox.add({ seq, error, run: () => this.#hooks.reject(seq, error, true) }))
      this.#hooks.overflow(this.#outbox.size);
    return true;
  }

  /** The channel ended: every entry out, in order (frames' holds dropped when they settle). */
  abandon(): Outgoing[] {
    return this.#outbox.abandon();
  }
}

/** A frame's rejection: its code, its seq in the details, and what caused it. */
function refusal(code: ErrorCode, message: string, seq: number, cause?: unknown): PointstreamError {
  return new PointstreamError(code, message, { details: { seq }, cause });
}
