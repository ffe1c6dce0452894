import type { DataChannel } from 'node-datachannel';
import type { Channel, ChannelHandlers, ChannelMessage } from './channel.js';

const noop = (): void => undefined;

/**
 * A node-datachannel channel as a {@link Channel}. Its native callbacks are registered once, here
 * (node-datachannel keeps one callback per event), and forward to the current handlers. Binary
 * messages arrive as the Buffer node-datachannel made: no copy.
 */
export class NodeChannel implements Channel {
  readonly native: DataChannel;
  readonly label: string;
  readonly protocol: string;
  #handlers: Partial<ChannelHandlers> = {};

  constructor(native: DataChannel) {
    this.native = native;
    this.label = native.getLabel();
    this.protocol = native.getProtocol();
    native.onOpen(() => (this.#handlers.open ?? noop)());
    native.onMessage((message) =>
      (this.#handlers.message ?? noop)(
        message instanceof ArrayBuffer ? new Uint8Array(message) : message,
      ),
    );
    native.onBufferedAmountLow(() => (this.#handlers.drained ?? noop)());
    native.onClosed(() => (this.#handlers.closed ?? noop)());
    native.onError((error) => (this.#handlers.error ?? noop)(error));
  }

  isOpen(): boolean {
    try {
      return this.native.isOpen();
    } catch {
      return false;
    }
  }

  bufferedAmount(): number {
    return this.native.bufferedAmount();
  }

  maxMessageSize(): number {
    return this.native.maxMessageSize();
  }

  setLowWaterMark(bytes: number): void {
    this.native.setBufferedAmountLowThreshold(bytes);
  }

  send(data: ChannelMessage): void {
    // The boolean result says whether the message left at once or was buffered, not failure:
    // failures throw.
    if (typeof data === 'string') this.native.sendMessage(data);
    else this.native.sendMessageBinary(data);
  }

  close(): void {
    try {
      this.native.close();
    } catch {
      // already closed natively
    }
  }

  listen(handlers: Partial<ChannelHandlers>): void {
    this.#handlers = handlers;
  }
}

/** Wraps a node-datachannel channel; see {@link NodeChannel}. */
export function fromNodeDataChannel(native: DataChannel): NodeChannel {
  return new NodeChannel(native);
}
