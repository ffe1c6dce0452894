/**
 * Lets at most `perInterval` log lines through per `intervalMs`; the others are only counted, and
 * the next line let through says how many were left out. Bounds how fast a client can grow the log.
 */
export class LogLimiter {
  readonly #perInterval: number;
  readonly #intervalMs: number;
  #windowStart = -Infinity;
  #used = 0;
  #suppressed = 0;

  constructor(perInterval: number, intervalMs: number) {
    this.#perInterval = perInterval;
    this.#intervalMs = intervalMs;
  }

  /** Undefined: do not log (counted). Otherwise log, saying this many were left out before it. */
  take(now = performance.now()): number | undefined {
    if (now - this.#windowStart >= this.#intervalMs) {
      this.#windowStart = now;
      this.#used = 0;
    }
    if (this.#used >= this.#perInterval) {
      this.#suppressed++;
      return undefined;
    }
    this.#used++;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    return suppressed;
  }

  /** Lines left out since the last one let through. */
  get suppressed(): number {
    return this.#suppressed;
  }
}
