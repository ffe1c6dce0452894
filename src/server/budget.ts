import type { MemoryBudget } from '../wire/reassembler.js';

/**
 * A share of a parent budget with a cap of its own: a session's share of its client's, a client's
 * share of the server's. A reservation must fit here and in every budget above, so that no one
 * session or client can hold the whole server budget (issue 14: one client held 1 GiB of it).
 */
export class CappedBudget implements MemoryBudget {
  readonly cap: number;
  readonly #parent: MemoryBudget;
  #held = 0;

  constructor(cap: number, parent: MemoryBudget) {
    this.cap = cap;
    this.#parent = parent;
  }

  /** Bytes reserved through this budget and not yet released. */
  get held(): number {
    return this.#held;
  }

  reserve(bytes: number): boolean {
    if (this.#held + bytes > this.cap || !this.#parent.reserve(bytes)) return false;
    this.#held += bytes;
    return true;
  }

  release(bytes: number): void {
    this.#held -= bytes;
    this.#parent.release(bytes);
  }
}

/** The server's whole reassembly budget (`maxTotalReassemblyBytes`): the root of the shares. */
class TotalBudget implements MemoryBudget {
  readonly #cap: number;
  #held = 0;

  constructor(cap: number) {
    this.#cap = cap;
  }

  get held(): number {
    return this.#held;
  }

  reserve(bytes: number): boolean {
    if (this.#held + bytes > this.#cap) return false;
    this.#held += bytes;
    return true;
  }

  release(bytes: number): void {
    this.#held -= bytes;
  }
}

/** Options of {@link ReassemblyBudgets}; every figure in bytes. */
export interface ReassemblyBudgetsOptions {
  /** All sessions together. */
  readonly maxTotalBytes: number;
  /** One client's sessions together (a client: its token, else its address). */
  readonly maxClientBytes: number;
  /** One session. */
  readonly maxSessionBytes: number;
}

/** A session's budget, and the call that gives its share of its client's back when it ends. */
export interface SessionBudget {
  readonly budget: CappedBudget;
  /** Call once, when the session has ended. */
  release(): void;
}

/**
 * The memory that sessions may hold in reassembly: a session's share is capped, within its
 * client's share (kept while the client has sessions), within the server's total.
 */
export class ReassemblyBudgets {
  readonly #options: ReassemblyBudgetsOptions;
  readonly #total: TotalBudget;
  readonly #clients = new Map<string, { budget: CappedBudget; sessions: number }>();

  constructor(options: ReassemblyBudgetsOptions) {
    this.#options = options;
    this.#total = new TotalBudget(options.maxTotalBytes);
  }

  /** Bytes held in reassembly by all sessions. */
  get held(): number {
    return this.#total.held;
  }

  /** A new session's budget, as a share of client `clientKey`'s. */
  forSession(clientKey: string): SessionBudget {
    let client = this.#clients.get(clientKey);
    if (client === undefined) {
      client = {
        budget: new CappedBudget(this.#options.maxClientBytes, this.#total),
        sessions: 0,
      };
      this.#clients.set(clientKey, client);
    }
    client.sessions++;
    const owner = client;
    let held = true;
    return {
      budget: new CappedBudget(this.#options.maxSessionBytes, owner.budget),
      release: () => {
        if (held && --owner.sessions === 0) this.#clients.delete(clientKey);
        held = false;
      },
    };
  }
}
