interface Listener {
  readonly fn: (payload: never) => void;
  readonly once: boolean;
}

/**
 * A typed emitter whose listeners cannot break the emitter: an exception thrown by a listener
 * is reported to `onListenerError` instead of unwinding into the code that emitted (mediasoup's
 * safeEmit). `Events` maps each event name to its one payload. Browser-safe (its own listener
 * lists, no node:events), so that the Node client and the browser sender share one event style.
 */
export class SafeEmitter<Events extends { [K in keyof Events]: unknown }> {
  /** Per event, its listeners in order; a once-listener is kept with `once: true`. */
  readonly #listeners = new Map<string, Listener[]>();
  readonly #onListenerError: (error: unknown, event: string) => void;

  constructor(onListenerError: (error: unknown, event: string) => void) {
    this.#onListenerError = onListenerError;
  }

  on<K extends keyof Events & string>(event: K, listener: (payload: Events[K]) => void): this {
    return this.#add(event, listener, false);
  }

  once<K extends keyof Events & string>(event: K, listener: (payload: Events[K]) => void): this {
    return this.#add(event, listener, true);
  }

  /** Removes the listener added last with this function (as EventEmitter's `off`). */
  off<K extends keyof Events & string>(event: K, listener: (payload: Events[K]) => void): this {
    const list = this.#listeners.get(event) ?? [];
    const entry = list.findLast((candidate) => candidate.fn === listener);
    if (entry !== undefined) this.#remove(event, entry);
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
    const list = this.#listeners.get(event);
    if (list === undefined || list.length === 0) return false;
    for (const entry of list) {
      // Removed before the call, as EventEmitter's once-wrappers remove themselves.
      if (entry.once) this.#remove(event, entry);
      try {
        (entry.fn as (payload: Events[K]) => void).call(this, payload);
      } catch (error) {
        this.#onListenerError(error, event);
      }
    }
    return true;
  }

  #remove(event: string, entry: Listener): void {
    // A new array: an emit in progress goes on over the list it started with.
    const next = (this.#listeners.get(event) ?? []).filter((candidate) => candidate !== entry);
    if (next.length === 0) this.#listeners.delete(event);
    else this.#listeners.set(event, next);
  }

  #add(event: string, fn: (payload: never) => void, once: boolean): this {
    // Copy-on-write, so that emit can iterate without a snapshot.
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), { fn, once }]);
    return this;
  }
}
