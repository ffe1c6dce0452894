import type { Channel, ChannelHandlers, ChannelMessage } from './channel.js';

/** Options of {@link createChannelPair}. */
export interface ChannelPairOptions {
  readonly label?: string;
  /** The sub-protocol both ends report. Default `''`. */
  readonly protocol?: string;
  /** Largest message either end accepts; a larger `send` throws, as a DataChannel's does. Default 256 KiB. */
  readonly maxMessageSize?: number;
  /** Open both ends on the next task (default true); false leaves it to {@link ChannelPair.open}. */
  readonly open?: boolean;
}

/** Two connected in-memory {@link Channel}s, for unit tests of protocol logic without WebRTC. */
export interface ChannelPair {
  readonly a: MemoryChannel;
  readonly b: MemoryChannel;
  /** Opens both ends (when created with `open: false`). */
  open(): void;
}

const noop = (): void => undefined;
const nextTask = (run: () => void): void => void setTimeout(run, 0);

/**
 * One end of an in-memory channel pair. Messages are copied on `send` and delivered in order on a
 * later task, so `bufferedAmount` grows while the sender runs synchronously and falls as the other
 * end receives (the `drained` report follows the low-water mark as on a DataChannel). `pause()`
 * holds delivery to the other end: a stalled network, for backpressure tests.
 */
export class MemoryChannel implements Channel {
  readonly label: string;
  readonly protocol: string;
  peer!: MemoryChannel;
  #handlers: Partial<ChannelHandlers> = {};
  #state: 'connecting' | 'open' | 'closed' = 'connecting';
  #queue: ChannelMessage[] = [];
  #buffered = 0;
  #lowWaterMark = 0;
  #paused = false;
  #scheduled = false;
  readonly #maxMessageSize: number;

  constructor(label: string, protocol: string, maxMessageSize: number) {
    this.label = label;
    this.protocol = protocol;
    this.#maxMessageSize = maxMessageSize;
  }

  isOpen(): boolean {
    return this.#state === 'open';
  }

  bufferedAmount(): number {
    return this.#buffered;
  }

  maxMessageSize(): number {
    return this.#state === 'connecting' ? 0 : this.#maxMessageSize;
  }

  setLowWaterMark(bytes: number): void {
    this.#lowWaterMark = bytes;
  }

  send(data: ChannelMessage): void {
    if (this.#state !== 'open') throw new Error(`channel "${this.label}" is not open`);
    const size =
      typeof data === 'string' ? new TextEncoder().encode(data).byteLength : data.byteLength;
    if (size > this.#maxMessageSize) {
      throw new Error(
        `message of ${size} bytes exceeds the remote maximum ${this.#maxMessageSize}`,
      );
    }
    this.#queue.push(typeof data === 'string' ? data : data.slice());
    this.#buffered += size;
    this.#schedule();
  }

  close(): void {
    if (this.#state === 'closed') return;
    // Queued messages are delivered first, then both ends report closed (an orderly SCTP close).
    this.#state = 'closed';
    const peer = this.peer;
    nextTask(() => {
      this.#deliverAll();
      this.#closed();
      peer.#closeFromPeer();
    });
  }

  listen(handlers: Partial<ChannelHandlers>): void {
    this.#handlers = handlers;
  }

  /** Holds delivery of what this end sends until {@link resume}. */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#schedule();
  }

  /** @internal */
  openNow(): void {
    if (this.#state !== 'connecting') return;
    this.#state = 'open';
    (this.#handlers.open ?? noop)();
  }

  #schedule(): void {
    if (this.#scheduled || this.#paused) return;
    this.#scheduled = true;
    nextTask(() => {
      this.#scheduled = false;
      this.#deliverAll();
    });
  }

  #deliverAll(): void {
    while (!this.#paused && this.#queue.length > 0) {
      const data = this.#queue.shift() as ChannelMessage;
      const before = this.#buffered;
      this.#buffered -=
        typeof data === 'string' ? new TextEncoder().encode(data).byteLength : data.byteLength;
      if (this.peer.#state !== 'closed' || this.#state === 'closed') this.peer.#receive(data);
      if (before > this.#lowWaterMark && this.#buffered <= this.#lowWaterMark) {
        (this.#handlers.drained ?? noop)();
      }
    }
  }

  #receive(data: ChannelMessage): void {
    (this.#handlers.message ?? noop)(data);
  }

  #closeFromPeer(): void {
    if (this.#state === 'closed' && this.#queue.length === 0 && this.#closedReported) return;
    this.#state = 'closed';
    this.#queue = [];
    this.#buffered = 0;
    this.#closed();
  }

  #closedReported = false;

  #closed(): void {
    if (this.#closedReported) return;
    this.#closedReported = true;
    (this.#handlers.closed ?? noop)();
  }
}

/** Two connected in-memory channels: what one sends, the other receives. */
export function createChannelPair(options: ChannelPairOptions = {}): ChannelPair {
  const label = options.label ?? 'pointstream';
  const protocol = options.protocol ?? '';
  const maxMessageSize = options.maxMessageSize ?? 256 * 1024;
  const a = new MemoryChannel(label, protocol, maxMessageSize);
  const b = new MemoryChannel(label, protocol, maxMessageSize);
  a.peer = b;
  b.peer = a;
  const open = (): void => {
    a.openNow();
    b.openNow();
  };
  if (options.open !== false) nextTask(open);
  return { a, b, open };
}
