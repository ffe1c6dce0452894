import type { PointstreamError } from '../../errors.js';

/** A receipt waiting for an earlier frame's decode; `run` is set once it may go. */
export interface Outgoing {
  readonly seq: number | undefined;
  /** Set for a rejection: its receipt is due even if the channel ends first. */
  readonly error?: PointstreamError;
  run: (() => void) | undefined;
  /** Frees what the entry holds when the channel ends before it runs. */
  drop?: (() => void) | undefined;
  /** The channel ended while the entry's frame was in decode: its decode result is dropped. */
  abandoned?: boolean;
}

/**
 * Receipts due after a frame still in decode, in the order their frames completed: receipts go
 * out in sequence. Empty (and unused) unless encoded frames are being decoded.
 */
export class ReceiptOutbox {
  readonly #entries: Outgoing[] = [];
  readonly #capacity: number;

  /** `capacity`: entries that may wait; beyond it {@link add} refuses. */
  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#entries.length;
  }

  /** Queues `entry` behind the others; false (nothing queued) when `capacity` entries wait. */
  add(entry: Outgoing): boolean {
    if (this.#entries.length >= this.#capacity) return false;
    this.#entries.push(entry);
    return true;
  }

  /** Queues a frame going to decode; its `run` is set when the decode is done. */
  reserve(entry: Outgoing): void {
    this.#entries.push(entry);
  }

  /** Runs the entries due, in order, up to the first still in decode or until `stopped()`. */
  flush(stopped: () => boolean): void {
    const entries = this.#entries;
    while (entries.length > 0 && !stopped()) {
      const run = (entries[0] as Outgoing).run;
      if (run === undefined) return;
      entries.shift();
      run();
    }
  }

  /**
   * Takes every entry out (the channel ended): those in decode are marked abandoned, the others'
   * memory is dropped. Returns them in order, for their receipts.
   */
  abandon(): Outgoing[] {
    const entries = this.#entries.splice(0);
    for (const entry of entries) {
      if (entry.run === undefined) entry.abandoned = true;
      else entry.drop?.();
    }
    return entries;
  }
}
