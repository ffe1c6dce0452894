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
