import { EventEmitter } from 'node:events';

/**
 * A typed EventEmitter whose listeners cannot break the emitter: an exception thrown by a listener
 * is reported to `onListenerError` instead of unwinding into the code that emitted (mediasoup's
 * safeEmit). `Events` maps each event name to its one payload.
 */
export class SafeEmitter<Events extends { [K in keyof Events]: unknown }> {
  readonly #emitter = new EventEmitter({ captureRejections: false });
  readonly #onListenerError: (error: unknown, event: string) => void;

  constructor(onListenerError: (error: unknown, event: string) => void) {
    this.#onListenerError = onListenerError;
    this.#emitter.setMaxListeners(100);
  }

  on<K extends keyof Events & string>(event: K, listener: (payload: Events[K]) => void): this {
    this.#emitter.on(event, listener);
    return this;
  }

  once<K extends keyof Events & string>(event: K, listener: (payload: Events[K]) => void): this {
    this.#emitter.once(event, listener);
    return this;
  }

  off<K extends keyof Events & string>(event: K, listener: (payload: Events[K]) => void): this {
    this.#emitter.off(event, listener);
    return this;
  }

  /**
   * Resolves with the next `event`. Rejects with a `TimeoutError` after `timeoutMs`, or with the
   * signal's reason when `signal` aborts.
   */
  next<K extends keyof Events & string>(
    event: K,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<Events[K]> {
    return new Promise<Events[K]>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off(event, onEvent);
        options.signal?.removeEventListener('abort', onAbort);
      };
      const onEvent = (payload: Events[K]): void => {
        cleanup();
        resolve(payload);
      };
      const onAbort = (): void => {
        cleanup();
        reject(options.signal?.reason as Error);
      };
      const timer =
        options.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              cleanup();
              reject(
                new DOMException(
                  `no '${event}' event within ${options.timeoutMs} ms`,
                  'TimeoutError',
                ),
              );
            }, options.timeoutMs);
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.on(event, onEvent);
    });
  }

  /** Calls every listener of `event`; returns whether there were any. */
  protected emit<K extends keyof Events & string>(event: K, payload: Events[K]): boolean {
    const listeners = this.#emitter.rawListeners(event) as ((payload: unknown) => void)[];
    if (listeners.length === 0) return false;
    for (const listener of listeners) {
      try {
        // rawListeners returns once-wrappers, which remove themselves when called.
        listener.call(this, payload);
      } catch (error) {
        this.#onListenerError(error, event);
      }
    }
    return true;
  }
}
