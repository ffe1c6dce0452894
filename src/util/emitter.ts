import { EventEmitter } from 'node:events';

/**
 * A typed EventEmitter whose listeners cannot break the emitter: an exception thrown by a listener
 * is reported to `onListenerError` instead of unwinding into the code that emitted (mediasoup's
 * safeEmit). Events map: `{ name: [arg1, arg2] }`.
 */
export class SafeEmitter<Events extends Record<string, unknown[]>> {
  readonly #emitter = new EventEmitter({ captureRejections: false });
  readonly #onListenerError: (error: unknown, event: string) => void;

  constructor(onListenerError: (error: unknown, event: string) => void) {
    this.#onListenerError = onListenerError;
    this.#emitter.setMaxListeners(100);
  }

  on<K extends keyof Events & string>(event: K, listener: (...args: Events[K]) => void): this {
    this.#emitter.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  once<K extends keyof Events & string>(event: K, listener: (...args: Events[K]) => void): this {
    this.#emitter.once(event, listener as (...args: unknown[]) => void);
    return this;
  }

  off<K extends keyof Events & string>(event: K, listener: (...args: Events[K]) => void): this {
    this.#emitter.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  listenerCount<K extends keyof Events & string>(event: K): number {
    return this.#emitter.listenerCount(event);
  }

  /** Calls every listener of `event`; returns whether there were any. */
  protected emit<K extends keyof Events & string>(event: K, ...args: Events[K]): boolean {
    const listeners = this.#emitter.rawListeners(event) as ((...a: unknown[]) => void)[];
    if (listeners.length === 0) return false;
    for (const listener of listeners) {
      try {
        // rawListeners returns once-wrappers, which remove themselves when called.
        listener.apply(this, args);
      } catch (error) {
        this.#onListenerError(error, event);
      }
    }
    return true;
  }
}
