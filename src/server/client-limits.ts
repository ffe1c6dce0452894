/** Options of a {@link ClientLimiter}. */
export interface ClientLimiterOptions {
  /** Sessions (or viewers) one key may hold at once. */
  readonly maxSessions: number;
  /** Offers one key may make per minute. */
  readonly maxOffersPerMinute: number;
  /** Keys tracked at most; the oldest are forgotten first. (10000) */
  readonly maxKeys?: number;
}

/**
 * Per-client limits: sessions open at once and offers per minute, counted per key (a token id
 * and a remote address are both keys). Memory is bounded: idle keys are forgotten, and at most
 * `maxKeys` are tracked (the oldest go first).
 */
export class ClientLimiter {
  readonly #maxSessions: number;
  readonly #maxOffersPerMinute: number;
  readonly #maxKeys: number;
  readonly #sessions = new Map<string, number>();
  readonly #offers = new Map<string, number[]>();

  constructor(options: ClientLimiterOptions) {
    this.#maxSessions = options.maxSessions;
    this.#maxOffersPerMinute = options.maxOffersPerMinute;
    this.#maxKeys = options.maxKeys ?? 10_000;
  }

  /**
   * Counts an offer for `keys` (refused offers count too, so hammering does not pay). Returns
   * undefined when allowed, else why not and the seconds after which to retry.
   */
  admit(
    keys: readonly string[],
    now = Date.now(),
  ): { reason: string; retryAfterSeconds: number } | undefined {
    const recent = keys.map((key) => {
      const times = this.#recentOffers(key, now);
      times.push(now);
      this.#offers.delete(key);
      this.#offers.set(key, times); // most recent last, for eviction
      return times;
    });
    this.#evict();
    for (const [index, key] of keys.entries()) {
      const times = recent[index] as number[];
      if (times.length > this.#maxOffersPerMinute) {
        const retry = Math.max(
          1,
          Math.ceil(
            ((times[times.length - 1 - this.#maxOffersPerMinute] as number) + 60_000 - now) / 1000,
          ),
        );
        return {
          reason: `${describe(key)} sent ${times.length} offers in the last minute (limit ${this.#maxOffersPerMinute})`,
          retryAfterSeconds: retry,
        };
      }
      if ((this.#sessions.get(key) ?? 0) >= this.#maxSessions) {
        return {
          reason: `${describe(key)} already has ${this.#maxSessions} sessions`,
          retryAfterSeconds: 5,
        };
      }
    }
    return undefined;
  }

  sessionOpened(keys: readonly string[]): void {
    for (const key of keys) this.#sessions.set(key, (this.#sessions.get(key) ?? 0) + 1);
  }

  sessionClosed(keys: readonly string[]): void {
    for (const key of keys) {
      const count = (this.#sessions.get(key) ?? 0) - 1;
      if (count > 0) this.#sessions.set(key, count);
      else this.#sessions.delete(key);
    }
  }

  #recentOffers(key: string, now: number): number[] {
    const times = this.#offers.get(key) ?? [];
    while (times.length > 0 && (times[0] as number) <= now - 60_000) times.shift();
    if (times.length === 0) this.#offers.delete(key);
    return times;
  }

  #evict(): void {
    for (const key of this.#offers.keys()) {
      if (this.#offers.size <= this.#maxKeys) break;
      this.#offers.delete(key);
    }
  }
}

function describe(key: string): string {
  return key.startsWith('token:') ? `token ${key.slice(6)}` : `address ${key.slice(5)}`;
}
