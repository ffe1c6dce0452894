import { invalidOption } from '../errors.js';
import type { Logger } from '../util/logger.js';
import type { ReceivedFrame } from './types.js';

/** Where frames come from: the server's `'frame'` event. */
export interface FrameSource {
  on(event: 'frame', listener: (frame: ReceivedFrame) => void): unknown;
  off(event: 'frame', listener: (frame: ReceivedFrame) => void): unknown;
}

/** Options of {@link FrameIterators.frames}. */
export interface FramesOptions {
  /** Frames that may wait for a slow consumer; beyond it the oldest is dropped (and logged). (8) */
  readonly maxQueued?: number;
  readonly signal?: AbortSignal;
}

/**
 * The server's frames as async iterators (`server.frames()`), all of which end when the server
 * closes.
 */
export class FrameIterators {
  readonly #source: FrameSource;
  readonly #log: Logger;
  readonly #wakers = new Set<() => void>();
  #closed = false;

  constructor(options: { readonly source: FrameSource; readonly log: Logger }) {
    this.#source = options.source;
    this.#log = options.log;
  }

  /** Ends every iterator (once its queued frames are consumed). */
  close(): void {
    this.#closed = true;
    for (const wake of this.#wakers) wake();
  }

  /**
   * At most `maxQueued` frames wait for a slow consumer; when more arrive the oldest waiting one is
   * dropped and a warning is logged (never silently). With `reuseFrameBuffers` on, a frame stays
   * valid until the consumer asks for the next one.
   */
  async *frames(options: FramesOptions = {}): AsyncGenerator<ReceivedFrame> {
    const maxQueued = options.maxQueued ?? 8;
    if (typeof maxQueued !== 'number' || !Number.isSafeInteger(maxQueued) || maxQueued < 1)
      throw invalidOption('maxQueued', 'an integer >= 1', maxQueued);
    const queue: { frame: ReceivedFrame; release: () => void }[] = [];
    let wake: (() => void) | undefined;
    let dropped = 0;
    let current: (() => void) | undefined;
    const onFrame = (frame: ReceivedFrame): void => {
      if (queue.length >= maxQueued) {
        const old = queue.shift() as { frame: ReceivedFrame; release: () => void };
        old.release();
        dropped++;
        this.#log.warn(
          { event: 'consumer-drop', sessionId: old.frame.sessionId, seq: old.frame.seq, dropped },
          'frames() consumer too slow: oldest queued frame dropped',
        );
      }
      queue.push({ frame, release: frame.retain() });
      wake?.();
    };
    const onAbort = (): void => wake?.();
    this.#source.on('frame', onFrame);
    this.#wakers.add(onAbort);
    options.signal?.addEventListener('abort', onAbort);
    try {
      while (!options.signal?.aborted) {
        current?.();
        current = undefined;
        const next = queue.shift();
        if (next !== undefined) {
          current = next.release;
          yield next.frame;
          continue;
        }
        if (this.#closed) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      current?.();
      for (const waiting of queue.splice(0)) waiting.release();
      this.#source.off('frame', onFrame);
      this.#wakers.delete(onAbort);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }
}
