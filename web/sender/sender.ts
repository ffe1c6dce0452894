import { ErrorCodes, PointstreamError } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import {
  MIN_MESSAGE_BYTES,
  PROTOCOL_V1,
  PointEncodingId,
  crc32Portable,
  decodeServerMessage,
  prepareEncodedFrame,
  prepareFrame,
  writeChunk,
} from '../../src/wire/index.js';
import type { EncodedPoints, HelloMessage } from '../../src/wire/index.js';
import { deleteSession, openChannel } from '../shared/signaling.js';
import type { OpenedChannel } from '../shared/signaling.js';

/**
 * A pointstream/1 sender over a browser RTCDataChannel: the same protocol as the Node client
 * (src/client/client.ts), with the wire format from src/wire. Frames are chunked within the
 * server's maximum message size, the send buffer is bounded (high/low water marks), and at most
 * `maxFramesInFlight` frames wait for their receipt.
 */

export interface BrowserSenderOptions {
  /** Absolute URL of the offer endpoint. */
  readonly offerUrl: string;
  readonly token?: string | undefined;
  /** Largest message; Chromium throws above 262144. Default 262144. */
  readonly maxMessageBytes?: number;
  /** Frames without a receipt at once. Default 2. */
  readonly maxFramesInFlight?: number;
  /** Pause sending above this many buffered bytes (Chromium fails at 16 MiB). Default 4 MiB. */
  readonly highWaterMark?: number;
  /** Resume below this. Default 1 MiB. */
  readonly lowWaterMark?: number;
  /** A frame without a receipt after this long is counted lost. Default 10 s. */
  readonly receiptTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
}

/** The server's verdict on one frame (or `PS_ERR_FRAME_LOST` when none came). */
export type BrowserReceipt =
  | { readonly seq: number; readonly ok: true; readonly points: number; readonly latencyMs: number }
  | {
      readonly seq: number;
      readonly ok: false;
      readonly code: ErrorCode;
      readonly message: string;
      readonly latencyMs: number;
    };

export interface BrowserSentFrame {
  readonly seq: number;
  readonly bytes: number;
  readonly chunks: number;
  readonly receipt: Promise<BrowserReceipt>;
}

interface Pending {
  readonly seq: number;
  firstChunkAt: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  resolve(receipt: BrowserReceipt): void;
}

/** Longest wait for the server to close the channel it said it would close (it drains first). */
const SERVER_CLOSE_WAIT_MS = 1500;

export class BrowserSender {
  readonly #pc: RTCPeerConnection;
  readonly #channel: RTCDataChannel;
  readonly #sessionUrl: string | undefined;
  readonly #token: string | undefined;
  readonly #options: Required<
    Omit<BrowserSenderOptions, 'offerUrl' | 'token' | 'connectTimeoutMs'>
  >;
  readonly #pending = new Map<number, Pending>();
  #hello: HelloMessage | undefined;
  #helloWaiter: (() => void) | undefined;
  #slotWaiters: (() => void)[] = [];
  #drainWaiter: (() => void) | undefined;
  #closed: { code: ErrorCode; reason: string } | undefined;
  #nextSeq = 0;
  #scratch = new Uint8Array(0);
  #maxMessageBytes = 0;
  #sendChain: Promise<unknown> = Promise.resolve();
  #closing: Promise<void> = Promise.resolve();
  /** Called once when the connection ends, with the reason. */
  onclose: ((code: ErrorCode, reason: string) => void) | undefined;

  private constructor(opened: OpenedChannel, options: BrowserSenderOptions) {
    const { pc, channel } = opened;
    this.#pc = pc;
    this.#channel = channel;
    this.#sessionUrl = opened.sessionUrl;
    this.#token = options.token;
    this.#options = {
      maxMessageBytes: options.maxMessageBytes ?? 262_144,
      maxFramesInFlight: options.maxFramesInFlight ?? 2,
      highWaterMark: options.highWaterMark ?? 4 * 1024 * 1024,
      lowWaterMark: options.lowWaterMark ?? 1024 * 1024,
      receiptTimeoutMs: options.receiptTimeoutMs ?? 10_000,
    };
    channel.bufferedAmountLowThreshold = this.#options.lowWaterMark;
    channel.addEventListener('bufferedamountlow', () => {
      const waiter = this.#drainWaiter;
      this.#drainWaiter = undefined;
      waiter?.();
    });
    channel.addEventListener('close', () =>
      this.#terminate(ErrorCodes.CHANNEL_CLOSED, 'data channel closed'),
    );
    pc.addEventListener('connectionstatechange', () => {
      const state = pc.connectionState;
      if (state === 'failed' || state === 'closed' || state === 'disconnected')
        this.#terminate(ErrorCodes.CONNECTION_FAILED, `peer connection ${state}`);
    });
    // Last: the hello may be among the messages held since the channel opened.
    opened.listen((data) => this.#onMessage(data));
  }

  /** Connects and resolves once the server's hello arrived. */
  static async connect(options: BrowserSenderOptions): Promise<BrowserSender> {
    const opened = await openChannel({
      offerUrl: options.offerUrl,
      token: options.token,
      label: 'pointstream',
      protocol: PROTOCOL_V1,
      ...(options.connectTimeoutMs === undefined ? {} : { timeoutMs: options.connectTimeoutMs }),
    });
    const sender = new BrowserSender(opened, options);
    await sender.#waitForHello(options.connectTimeoutMs ?? 15_000);
    return sender;
  }

  get sessionId(): string | undefined {
    return this.#hello?.session;
  }

  /** Chunk size in use: the smaller of the option and the server's maximum message size. */
  get maxMessageBytes(): number {
    return this.#maxMessageBytes;
  }

  get closed(): { code: ErrorCode; reason: string } | undefined {
    return this.#closed;
  }

  get framesInFlight(): number {
    return this.#pending.size;
  }

  async #waitForHello(timeoutMs: number): Promise<void> {
    if (this.#hello === undefined) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new PointstreamError(ErrorCodes.CONNECT_TIMEOUT, `no hello within ${timeoutMs} ms`),
            ),
          timeoutMs,
        );
        this.#helloWaiter = () => {
          clearTimeout(timer);
          if (this.#closed) reject(new PointstreamError(this.#closed.code, this.#closed.reason));
          else resolve();
        };
      });
    }
    // Chromium reports the smaller of its own limit and the server's a=max-message-size.
    const remoteMax = this.#pc.sctp?.maxMessageSize ?? 65_536;
    this.#maxMessageBytes = Math.min(this.#options.maxMessageBytes, remoteMax || 65_536);
    if (this.#maxMessageBytes < MIN_MESSAGE_BYTES) {
      throw new PointstreamError(
        ErrorCodes.CONNECTION_FAILED,
        `the connection carries messages of only ${this.#maxMessageBytes} bytes`,
      );
    }
    this.#scratch = new Uint8Array(this.#maxMessageBytes);
  }

  /** Payload encodings the server decodes (its hello); `[1]` (raw `.npy`) from older servers. */
  get serverEncodings(): readonly number[] {
    return this.#hello?.encodings ?? [PointEncodingId.RAW_NPY];
  }

  /** The server accepts NaN and infinite coordinates (its hello; false from older servers). */
  get serverAllowsNonFinite(): boolean {
    return this.#hello?.allowNonFinite === true;
  }

  /**
   * Sends one frame: x, y, z interleaved, or points already encoded (`encodePoints`). Resolves
   * once every chunk is handed to the channel; `points` may then be reused. The receipt comes
   * later, on `receipt`.
   */
  send(
    points: Float32Array | EncodedPoints,
    captureTime: number = Date.now(),
  ): Promise<BrowserSentFrame> {
    const result = this.#sendChain.then(() => this.#sendNow(points, captureTime));
    this.#sendChain = result.catch(() => undefined);
    return result;
  }

  async #sendNow(
    points: Float32Array | EncodedPoints,
    captureTime: number,
  ): Promise<BrowserSentFrame> {
    while (this.#pending.size >= this.#options.maxFramesInFlight && !this.#closed)
      await new Promise<void>((resolve) => this.#slotWaiters.push(resolve));
    if (this.#closed) throw this.#closedError();
    const hello = this.#hello as HelloMessage;
    const encoded = points instanceof Float32Array ? undefined : points;
    const pointCount = encoded?.pointCount ?? (points as Float32Array).length / 3;
    if (encoded !== undefined && !this.serverEncodings.includes(encoded.encoding)) {
      throw new PointstreamError(
        ErrorCodes.ENCODING_UNSUPPORTED,
        `the server does not decode encoding ${encoded.encoding} (it announced ${JSON.stringify(this.serverEncodings)})`,
      );
    }
    if (pointCount > hello.maxPointsPerFrame) {
      throw new PointstreamError(
        ErrorCodes.FRAME_TOO_MANY_POINTS,
        `${pointCount} points exceed the server's limit of ${hello.maxPointsPerFrame}`,
      );
    }
    const frame =
      encoded === undefined
        ? prepareFrame(
            points as Float32Array,
            this.#nextSeq,
            captureTime,
            this.#maxMessageBytes,
            crc32Portable,
          )
        : prepareEncodedFrame(
            encoded,
            this.#nextSeq,
            captureTime,
            this.#maxMessageBytes,
            crc32Portable,
          );
    if (frame.payloadBytes > hello.maxFrameBytes) {
      throw new PointstreamError(
        ErrorCodes.FRAME_TOO_LARGE,
        `${frame.payloadBytes} bytes exceed the server's limit of ${hello.maxFrameBytes}`,
      );
    }
    this.#nextSeq++;
    let pending!: Pending;
    const receipt = new Promise<BrowserReceipt>((resolve) => {
      pending = { seq: frame.seq, firstChunkAt: 0, timer: undefined, resolve };
    });
    this.#pending.set(frame.seq, pending);
    const channel = this.#channel;
    for (let index = 0; index < frame.chunkCount; index++) {
      if (channel.bufferedAmount > this.#options.highWaterMark) await this.#drained();
      if (this.#closed) throw this.#closedError();
      // A view of our own ArrayBuffer-backed scratch buffer.
      const message = writeChunk(frame, index, this.#scratch) as Uint8Array<ArrayBuffer>;
      if (index === 0) pending.firstChunkAt = performance.now();
      try {
        channel.send(message); // copies the view's bytes
      } catch (cause) {
        this.#terminate(ErrorCodes.CHANNEL_CLOSED, `send failed: ${(cause as Error).message}`);
        throw new PointstreamError(ErrorCodes.CHANNEL_CLOSED, (cause as Error).message, { cause });
      }
    }
    if (this.#pending.has(frame.seq)) {
      pending.timer = setTimeout(
        () =>
          this.#settle(frame.seq, {
            seq: frame.seq,
            ok: false,
            code: ErrorCodes.FRAME_LOST,
            message: `no receipt within ${this.#options.receiptTimeoutMs} ms`,
            latencyMs: performance.now() - pending.firstChunkAt,
          }),
        this.#options.receiptTimeoutMs,
      );
    }
    return { seq: frame.seq, bytes: frame.payloadBytes, chunks: frame.chunkCount, receipt };
  }

  /** Ends the session (DELETE, then the connection); frames without receipt are reported lost. */
  async close(): Promise<void> {
    const serverCloses = !this.#closed && (await deleteSession(this.#sessionUrl, this.#token));
    this.#terminate(ErrorCodes.SESSION_CLOSED, 'closed by the sender', serverCloses);
    await this.#closing;
  }

  #closedError(): PointstreamError {
    const closed = this.#closed ?? { code: ErrorCodes.CHANNEL_CLOSED, reason: 'closed' };
    return new PointstreamError(closed.code, closed.reason);
  }

  #drained(): Promise<void> {
    return new Promise((resolve) => {
      this.#drainWaiter = resolve;
      // The threshold may have been crossed before the waiter was set.
      if (this.#channel.bufferedAmount <= this.#options.lowWaterMark || this.#closed) {
        this.#drainWaiter = undefined;
        resolve();
      }
    });
  }

  #onMessage(data: unknown): void {
    if (typeof data !== 'string') return; // the server sends only text
    let control;
    try {
      control = decodeServerMessage(data);
    } catch {
      return;
    }
    switch (control.type) {
      case 'hello':
        this.#hello = control;
        this.#helloWaiter?.();
        this.#helloWaiter = undefined;
        return;
      case 'receipt': {
        const pending = this.#pending.get(control.seq);
        if (pending === undefined) return;
        const latencyMs = performance.now() - pending.firstChunkAt;
        this.#settle(
          control.seq,
          control.ok
            ? { seq: control.seq, ok: true, points: control.points, latencyMs }
            : {
                seq: control.seq,
                ok: false,
                code: control.code,
                message: control.message,
                latencyMs,
              },
        );
        return;
      }
      case 'closing':
        this.#terminate(control.code, `server closed the session: ${control.message}`, true);
        return;
    }
  }

  #settle(seq: number, receipt: BrowserReceipt): void {
    const pending = this.#pending.get(seq);
    if (pending === undefined) return;
    this.#pending.delete(seq);
    clearTimeout(pending.timer);
    pending.resolve(receipt);
    this.#slotWaiters.shift()?.();
  }

  /** `serverCloses`: the server is closing the channel, so this page waits for that. */
  #terminate(code: ErrorCode, reason: string, serverCloses = false): void {
    if (this.#closed) return;
    this.#closed = { code, reason };
    for (const seq of [...this.#pending.keys()]) {
      this.#settle(seq, {
        seq,
        ok: false,
        code: ErrorCodes.FRAME_LOST,
        message: `unacknowledged when the connection ended (${reason})`,
        latencyMs: 0,
      });
    }
    for (const waiter of this.#slotWaiters.splice(0)) waiter();
    this.#drainWaiter?.();
    this.#drainWaiter = undefined;
    this.#helloWaiter?.();
    this.#helloWaiter = undefined;
    this.#closing = this.#closeConnection(serverCloses);
    this.onclose?.(code, reason);
  }

  /**
   * Closes the channel, then the connection. When the server is closing the channel it waits for
   * that first (bounded): the server's libdatachannel can lose its own closed event when both ends
   * close a channel at once, and would then keep the session's memory.
   */
  async #closeConnection(serverCloses: boolean): Promise<void> {
    if (serverCloses && this.#channel.readyState !== 'closed') {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, SERVER_CLOSE_WAIT_MS);
        this.#channel.addEventListener(
          'close',
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
    }
    this.#channel.close();
    this.#pc.close();
  }
}
