import { ErrorCodes } from '../../src/errors.js';
import { FrameSender } from '../../src/sender/frame-sender.js';
import type { SenderLimits } from '../../src/sender/options.js';
import type {
  FrameReceipt,
  SendOptions,
  SenderEnd,
  SenderStats,
  SentFrame,
} from '../../src/sender/types.js';
import { SafeEmitter } from '../../src/util/emitter.js';
import { PROTOCOL_V1, PointEncodingId } from '../../src/wire/index.js';
import type { EncodedPoints } from '../../src/wire/index.js';
import { SENDER_DEFAULTS } from '../../src/sender/defaults.js';
import type { RtcChannel } from '../shared/rtc-channel.js';
import { deleteSession, openChannel } from '../shared/signaling.js';

/**
 * A pointstream/1 sender in the browser: an RTCPeerConnection and its data channel (through
 * web/shared/rtc-channel.ts) under the one frame sender core, src/sender/frame-sender.ts, which
 * the Node client uses too: the same in-flight bound, water marks, receipts and ending.
 */

/** Options of {@link BrowserSender.connect}; the limits default to `SENDER_DEFAULTS`. */
export interface BrowserSenderOptions extends Partial<SenderLimits> {
  /** Absolute URL of the offer endpoint. */
  readonly offerUrl: string;
  readonly token?: string | undefined;
  /** Sequence number of the first frame (a reconnection goes on numbering). (0) */
  readonly firstSeq?: number | undefined;
  /**
   * Largest error per float field when fields of points encoded already (q16/qrice) are coded
   * here (`send(encoded, { fields })`), by name. (none: lossless)
   */
  readonly fieldPrecision?: Readonly<Record<string, number>> | undefined;
}

/** Events of a browser sender, as the Node client's (`ClientEvents`). */
export interface BrowserSenderEvents {
  /** The connection ended; `code` says why (`PS_ERR_SESSION_CLOSED` after `close()`). */
  closed: SenderEnd;
  /** Every receipt, as it arrives. */
  receipt: FrameReceipt;
}

/** Longest wait for the server to close the channel it said it would close (it drains first). */
const SERVER_CLOSE_WAIT_MS = 1500;

export class BrowserSender extends SafeEmitter<BrowserSenderEvents> {
  readonly #pc: RTCPeerConnection;
  readonly #channel: RtcChannel;
  readonly #sessionUrl: string | undefined;
  readonly #token: string | undefined;
  readonly #sender: FrameSender;
  readonly #ended: Promise<SenderEnd>;
  #closing: Promise<void> = Promise.resolve();

  private constructor(
    opened: { pc: RTCPeerConnection; channel: RtcChannel; sessionUrl: string | undefined },
    options: BrowserSenderOptions,
  ) {
    // A throwing listener is reported as the page's error, and the sender goes on.
    super((error) =>
      setTimeout(() => {
        throw error;
      }),
    );
    const { pc, channel } = opened;
    this.#pc = pc;
    this.#channel = channel;
    this.#sessionUrl = opened.sessionUrl;
    this.#token = options.token;
    let ended!: (end: SenderEnd) => void;
    this.#ended = new Promise((resolve) => (ended = resolve));
    // Last: the hello may be among the messages the channel held since it opened.
    this.#sender = new FrameSender({
      ...options,
      channel,
      hooks: {
        receipt: (receipt) => this.emit('receipt', receipt),
        closed: ({ code, reason, serverCloses }) => {
          this.#closing = this.#closeConnection(serverCloses);
          ended({ code, reason });
          this.emit('closed', { code, reason });
        },
      },
    });
    pc.addEventListener('connectionstatechange', () => {
      const state = pc.connectionState;
      if (state === 'failed' || state === 'closed' || state === 'disconnected')
        this.#sender.end(ErrorCodes.CONNECTION_FAILED, `peer connection ${state}`);
    });
  }

  /** Connects and resolves once the server's hello arrived. */
  static async connect(options: BrowserSenderOptions): Promise<BrowserSender> {
    const timeoutMs = options.connectTimeoutMs ?? SENDER_DEFAULTS.connectTimeoutMs;
    const opened = await openChannel({
      offerUrl: options.offerUrl,
      token: options.token,
      label: 'pointstream',
      protocol: PROTOCOL_V1,
      timeoutMs,
    });
    const sender = new BrowserSender(opened, options);
    const timer = setTimeout(
      () => sender.#sender.end(ErrorCodes.CONNECT_TIMEOUT, `no hello within ${timeoutMs} ms`),
      timeoutMs,
    );
    try {
      await sender.#sender.ready();
    } finally {
      clearTimeout(timer);
    }
    return sender;
  }

  get sessionId(): string | undefined {
    return this.#sender.hello?.session;
  }

  /** Chunk size in use: the smaller of the option and the server's maximum message size. */
  get maxMessageBytes(): number {
    return this.#sender.maxMessageBytes;
  }

  /** Resolves once the connection ended (after the receipts of a move), with why. */
  get ended(): Promise<SenderEnd> {
    return this.#ended;
  }

  /** Why the connection ended; `undefined` while it is up. */
  get closed(): SenderEnd | undefined {
    return this.#sender.ended;
  }

  get framesInFlight(): number {
    return this.#sender.framesInFlight;
  }

  get stats(): SenderStats {
    return this.#sender.stats;
  }

  /** Payload encodings the server decodes (its hello); `[1]` (raw `.npy`) from older servers. */
  get serverEncodings(): readonly number[] {
    return this.#sender.hello?.encodings ?? [PointEncodingId.RAW_NPY];
  }

  /** The server reads per-point fields (its hello; false from older servers, which refuse them). */
  get serverReadsFields(): boolean {
    return this.#sender.hello?.fields === true;
  }

  /** The server accepts NaN and infinite coordinates (its hello; false from older servers). */
  get serverAllowsNonFinite(): boolean {
    return this.#sender.hello?.allowNonFinite === true;
  }

  /**
   * Sends one frame: x, y, z interleaved, or points already encoded (`encodePoints`), with
   * `options.fields` (or the encoded points' own `fields`, from the encode worker). Resolves
   * once every chunk is handed to the channel; `points` may then be reused. `receipt` settles
   * later (rejecting with `PS_ERR_FRAME_LOST` when none came), as with the Node client.
   */
  send(points: Float32Array | EncodedPoints, options: SendOptions = {}): Promise<SentFrame> {
    return this.#sender.send(points, options);
  }

  /** Resolves once every frame sent so far has its receipt (or was counted lost). */
  flush(): Promise<void> {
    return this.#sender.flush();
  }

  /** Ends the session (DELETE, then the connection); frames without receipt are reported lost. */
  async close(): Promise<void> {
    const serverCloses = !this.closed && (await deleteSession(this.#sessionUrl, this.#token));
    this.#sender.end(ErrorCodes.SESSION_CLOSED, 'closed by the sender', serverCloses);
    await this.#closing;
  }

  /**
   * Closes the channel, then the connection. When the server is closing the channel it waits for
   * that first (bounded): the server's libdatachannel can lose its own closed event when both ends
   * close a channel at once, and would then keep the session's memory.
   */
  async #closeConnection(serverCloses: boolean): Promise<void> {
    if (serverCloses && this.#channel.native.readyState !== 'closed') {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#sender.channelClosed,
        new Promise<void>((resolve) => (timer = setTimeout(resolve, SERVER_CLOSE_WAIT_MS))),
      ]);
      clearTimeout(timer);
    }
    this.#channel.close();
    this.#pc.close();
  }
}
