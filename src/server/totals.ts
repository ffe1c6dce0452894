import type { ServerStats } from './types.js';

type Totals = ServerStats['totals'];
type Counts = { -readonly [K in keyof Totals]: Totals[K] };

function zero(): Counts {
  return {
    sessionsOpened: 0,
    sessionsClosed: 0,
    framesReceived: 0,
    framesRejected: 0,
    bytesReceived: 0,
    pointsReceived: 0,
  };
}

/**
 * One session's share of the totals: what it counts goes to the server's totals and, with auth on,
 * to its token's. Made once per session, so that counting a frame looks nothing up.
 */
export class SessionTally {
  readonly #all: Counts;
  readonly #token: Counts | undefined;

  /** @internal made by {@link TrafficTotals.open} */
  constructor(all: Counts, token: Counts | undefined) {
    this.#all = all;
    this.#token = token;
    all.sessionsOpened++;
    if (token !== undefined) token.sessionsOpened++;
  }

  frame(frame: { readonly byteLength: number; readonly pointCount: number }): void {
    this.#all.framesReceived++;
    this.#all.bytesReceived += frame.byteLength;
    this.#all.pointsReceived += frame.pointCount;
    if (this.#token !== undefined) {
      this.#token.framesReceived++;
      this.#token.bytesReceived += frame.byteLength;
      this.#token.pointsReceived += frame.pointCount;
    }
  }

  rejected(): void {
    this.#all.framesRejected++;
    if (this.#token !== undefined) this.#token.framesRejected++;
  }

  closed(): void {
    this.#all.sessionsClosed++;
    if (this.#token !== undefined) this.#token.sessionsClosed++;
  }
}

/** Sessions and frames since the server started, in all and per token (for a token's `/stats`). */
export class TrafficTotals {
  readonly #all = zero();
  readonly #byToken = new Map<string, Counts>();

  /** Counts a new session of `token` (undefined without auth) and gives its tally. */
  open(token: string | undefined): SessionTally {
    let mine: Counts | undefined;
    if (token !== undefined) {
      mine = this.#byToken.get(token);
      if (mine === undefined) this.#byToken.set(token, (mine = zero()));
    }
    return new SessionTally(this.#all, mine);
  }

  /** A copy of the totals: all of them, or (with `token`) that token's own. */
  of(token?: string): Totals {
    if (token === undefined) return { ...this.#all };
    return { ...(this.#byToken.get(token) ?? zero()) };
  }
}
