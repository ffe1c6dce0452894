import type { Channel, ChannelHandlers, ChannelMessage } from '../../src/transport/channel.js';

const noop = (): void => undefined;

/**
 * A browser `RTCDataChannel` as a {@link Channel} (src/transport/channel.ts), for the frame sender
 * core. It listens from the moment it is made and holds the messages that come before its user
 * listens: the server greets as soon as the channel opens, which can happen while the opener
 * still awaits its PATCH (seen under load: the page waited 15 s for a hello that had come).
 */
export class RtcChannel implements Channel {
  readonly native: RTCDataChannel;
  readonly label: string;
  readonly protocol: string;
  readonly #pc: RTCPeerConnection | undefined;
  #handlers: Partial<ChannelHandlers> = {};
  /** Messages that came before a `message` handler; `undefined` once one is set. */
  #held: ChannelMessage[] | undefined = [];

  /** `pc`: the channel's connection, which knows the remote's maximum message size. */
  constructor(native: RTCDataChannel, pc?: RTCPeerConnection) {
    this.native = native;
    this.label = native.label;
    this.protocol = native.protocol;
    this.#pc = pc;
    native.binaryType = 'arraybuffer';
    native.addEventListener('open', () => (this.#handlers.open ?? noop)());
    native.addEventListener('message', (event: MessageEvent<unknown>) => {
      const { data } = event;
      // Text stays text; binary arrives as an ArrayBuffer (binaryType above): a view, no copy.
      const message =
        typeof data === 'string' ? data : data instanceof ArrayBuffer ? new Uint8Array(data) : null;
      if (message === null) return;
      if (this.#held !== undefined) this.#held.push(message);
      else (this.#handlers.message ?? noop)(message);
    });
    native.addEventListener('bufferedamountlow', () => (this.#handlers.drained ?? noop)());
    native.addEventListener('close', () => (this.#handlers.closed ?? noop)());
    native.addEventListener('error', (event: Event) =>
      (this.#handlers.error ?? noop)(
        (event as RTCErrorEvent).error?.message ?? 'data channel error',
      ),
    );
  }

  isOpen(): boolean {
    return this.native.readyState === 'open';
  }

  bufferedAmount(): number {
    return this.native.bufferedAmount;
  }

  maxMessageSize(): number {
    // Chromium reports the smaller of its own limit and the remote's a=max-message-size.
    return this.#pc?.sctp?.maxMessageSize ?? 0;
  }

  setLowWaterMark(bytes: number): void {
    this.native.bufferedAmountLowThreshold = bytes;
  }

  send(data: ChannelMessage): void {
    // RTCDataChannel.send copies the view's bytes; ours are ArrayBuffer-backed.
    if (typeof data === 'string') this.native.send(data);
    else this.native.send(data as Uint8Array<ArrayBuffer>);
  }

  close(): void {
    this.native.close();
  }

  listen(handlers: Partial<ChannelHandlers>): void {
    this.#handlers = handlers;
    const held = this.#held;
    if (held === undefined || handlers.message === undefined) return;
    this.#held = undefined;
    for (const message of held) handlers.message(message);
  }
}
