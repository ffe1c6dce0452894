/**
 * The seam between pointstream's protocol logic and a message channel. The frame sender (Node and
 * browser) and the server's receiver speak to this interface only; adapters give it a
 * node-datachannel channel ({@link fromNodeDataChannel}), a browser `RTCDataChannel`
 * (web/shared/rtc-channel.ts) or one end of an in-memory pair for unit tests
 * ({@link createChannelPair}). Browser-safe: no Node imports here.
 */

/** A message as it arrives: binary as bytes (a view, not a copy, where the stack allows), text as a string. */
export type ChannelMessage = Uint8Array | string;

/** What a channel reports. One set per channel; {@link Channel.listen} replaces the previous set. */
export interface ChannelHandlers {
  /** The channel opened (not called when it was open already at `listen`). */
  open(): void;
  message(data: ChannelMessage): void;
  /** The send buffer fell to the low-water mark ({@link Channel.setLowWaterMark}) or below. */
  drained(): void;
  /** The channel closed, from either end; called once. */
  closed(): void;
  /** The stack reported an error; `closed` follows when the channel is lost. */
  error(message: string): void;
}

/** A reliable, ordered message channel (a WebRTC DataChannel or a stand-in for one). */
export interface Channel {
  readonly label: string;
  /** The sub-protocol the opener asked for (`pointstream/1`, `pointstream-viewer/1`, or ''). */
  readonly protocol: string;
  isOpen(): boolean;
  /** Bytes accepted by {@link send} and not yet handed to the network. */
  bufferedAmount(): number;
  /** Largest message the remote end accepts, in bytes (0 when not known yet). */
  maxMessageSize(): number;
  /** Sets the threshold at or below which `drained` is reported. */
  setLowWaterMark(bytes: number): void;
  /** Queues a message; the bytes are copied before it returns. Throws when the channel is closed. */
  send(data: ChannelMessage): void;
  /** Closes the channel; both ends then report `closed`. Safe to call more than once. */
  close(): void;
  listen(handlers: Partial<ChannelHandlers>): void;
}
