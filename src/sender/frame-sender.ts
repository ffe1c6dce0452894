import { ErrorCodes, PointstreamError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { Channel, ChannelMessage } from '../transport/channel.js';
import { silentLogger } from '../util/logger.js';
import type { Logger } from '../util/logger.js';
import { CLIENT_HEARTBEAT_TEXT, decodeServerMessage } from '../wire/control.js';
import type { HelloMessage, ServerMessage } from '../wire/control.js';
import { crc32Portable } from '../wire/crc32.js';
import type { Checksum } from '../wire/crc32.js';
import { POINT_ENCODING_NAMES, encodePoints, pointEncodingIdOf } from '../wire/encodings/index.js';
import { encodeFields } from '../wire/encodings/fields.js';
import { describeFields } from '../wire/fields.js';
import type { EncodedFields } from '../wire/fields.js';
import type { EncodedPoints, PointEncodingName } from '../wire/encodings/index.js';
import { MIN_MESSAGE_BYTES, prepareEncodedFrame, prepareFrame, writeChunk } from '../wire/frame.js';
import type { OutgoingFrame } from '../wire/frame.js';
import { indexOfNonFinite, nonFiniteNotSentError } from '../wire/points.js';
import { MOVE_RECEIPT_WAIT_MS } from './defaults.js';
import { resolveSenderOptions } from './options.js';
import type { ResolvedSenderOptions, SenderLimits, SenderSettings } from './options.js';
import type { FrameReceipt, SendOptions, SenderEnd, SenderStats, SentFrame } from './types.js';

/** What a {@link FrameSender} reports upward. */
export interface FrameSenderHooks {
  /** Every receipt, as it arrives (after the frame's `receipt` promise settled). */
  receipt(receipt: FrameReceipt): void;
  /**
   * The sender ended, once. `serverCloses`: the server is closing the channel itself (it sent
   * `closing`, or the shell said so), so the shell should wait for that before closing.
   */
  closed(end: SenderEnd & { readonly serverCloses: boolean }): void;
}

/** Options of a {@link FrameSender}. */
export interface FrameSenderOptions extends Partial<SenderLimits>, SenderSettings {
  /** The `pointstream/1` channel, open or opening. The sender listens to it from now on. */
  readonly channel: Channel;
  /**
   * CRC-32 of payloads (src/wire/crc32.ts's portable one by default, for browsers). The Node
   * client passes `zlib.crc32`: 5 ms per 12 MB frame here, against 21-27 ms.
   */
  readonly crc32?: Checksum | undefined;
  readonly logger?: Logger | undefined;
  readonly hooks?: Partial<FrameSenderHooks> | undefined;
}

interface PendingFrame {
  readonly seq: number;
  firstChunkAt: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  resolve(receipt: FrameReceipt): void;
  reject(error: PointstreamError): void;
}

const noop = (): void => undefined;

/**
 * The pointstream/1 frame sender over a {@link Channel}, the one state machine of the Node client
 * and the browser sender: the server's hello, frames chunked within its message size, at most
 * `maxFramesInFlight` frames awaiting their receipt, a send buffer kept between the water marks,
 * receipts and their timeouts, and the end (closing, channel closed, or the shell's `end`).
 * Browser-safe: no Node imports.
 */
export class FrameSender {
  readonly #options: ResolvedSenderOptions;
  readonly #channel: Channel;
  readonly #crc32: Checksum;
  readonly #log: Logger;
  readonly #hooks: Partial<FrameSenderHooks>;
  readonly #pending = new Map<number, PendingFrame>();
  readonly #stats = {
    framesSent: 0,
    framesAcked: 0,
    framesRejected: 0,
    framesLost: 0,
    bytesSent: 0,
  };
  #hello: HelloMessage | undefined;
  #scratch = new Uint8Array(0);
  #maxMessageBytes = 0;
  #nextSeq: number;
  #sendChain: Promise<unknown> = Promise.resolve();
  #slotWaiters: (() => void)[] = [];
  #flushWaiters: (() => void)[] = [];
  #drainWaiter: (() => void) | undefined;
  #helloWaiter: ((error?: PointstreamError) => void) | undefined;
  #ended: SenderEnd | undefined;
  #opened: boolean;
  /** `performance.now()` of the last message from the server (liveness). */
  #heardAt = 0;
  #livenessTimer: ReturnType<typeof setTimeout> | undefined;
  /** The server said `closing` `PS_ERR_SESSION_MOVED`: no new frames, receipts still awaited. */
  #moving: { readonly reason: string; timer: ReturnType<typeof setTimeout> } | undefined;
  #channelClosed!: () => void;
  readonly #channelClosedPromise = new Promise<void>((resolve) => (this.#channelClosed = resolve));

  constructor(options: FrameSenderOptions) {
    this.#options = resolveSenderOptions(options);
    this.#channel = options.channel;
    this.#crc32 = options.crc32 ?? crc32Portable;
    this.#log = options.logger ?? silentLogger;
    this.#hooks = options.hooks ?? {};
    this.#nextSeq = this.#options.firstSeq;
    this.#opened = this.#channel.isOpen();
    this.#channel.setLowWaterMark(this.#options.lowWaterMark);
    this.#channel.listen({
      open: () => (this.#opened = true),
      message: (data) => this.#onMessage(data),
      drained: () => {
        const waiter = this.#drainWaiter;
        this.#drainWaiter = undefined;
        waiter?.();
      },
      closed: () => {
        this.#channelClosed();
        // A moved session's channel closing (the server's move timeout) is still a move.
        if (this.#moving) this.end(ErrorCodes.SESSION_MOVED, this.#moving.reason);
        else this.end(ErrorCodes.CHANNEL_CLOSED, 'data channel closed');
      },
      error: (message) =>
        this.#log.warn(
          { event: 'channel-error', error: message },
          `data channel error: ${message}`,
        ),
    });
  }

  /** The server's hello, once it came. */
  get hello(): HelloMessage | undefined {
    return this.#hello;
  }

  /** Chunk size in use once ready: the smaller of the option and the channel's maximum. */
  get maxMessageBytes(): number {
    return this.#maxMessageBytes;
  }

  /** Frames sent whose receipt has not arrived. */
  get framesInFlight(): number {
    return this.#pending.size;
  }

  /** Why the sender ended; `undefined` while it runs. */
  get ended(): SenderEnd | undefined {
    return this.#ended;
  }

  /** Whether the channel was seen open (then "not open" means it closed). */
  get opened(): boolean {
    return this.#opened;
  }

  /** Resolves when the channel has reported `closed`. */
  get channelClosed(): Promise<void> {
    return this.#channelClosedPromise;
  }

  get stats(): SenderStats {
    return { ...this.#stats };
  }

  /**
   * Resolves once the server's hello has come, with the chunk size settled. Rejects with the
   * reason when the sender ends first (the shell ends it on its own timeout or abort).
   */
  async ready(): Promise<void> {
    if (this.#hello === undefined) {
      await new Promise<void>((resolve, reject) => {
        if (this.#ended) reject(this.#endedError());
        else this.#helloWaiter = (error) => (error ? reject(error) : resolve());
      });
    }
    if (this.#ended) throw this.#endedError();
    const remoteMax = this.#channel.maxMessageSize();
    this.#maxMessageBytes = Math.min(
      this.#options.maxMessageBytes,
      remoteMax > 0 ? remoteMax : 65_536,
    );
    if (this.#maxMessageBytes < MIN_MESSAGE_BYTES) {
      const message = `the server accepts messages of only ${remoteMax} bytes`;
      this.end(ErrorCodes.CONNECTION_FAILED, message);
      throw new PointstreamError(ErrorCodes.CONNECTION_FAILED, message);
    }
    if (this.#scratch.length !== this.#maxMessageBytes)
      this.#scratch = new Uint8Array(this.#maxMessageBytes);
  }

  /**
   * Sends one frame: x, y, z interleaved (encoded here with the `encoding` option), or points
   * encoded already (a browser's worker). Resolves when every chunk is handed to the channel,
   * after waiting for an in-flight slot and for the send buffer to drain as needed; the caller may
   * then reuse `points`. `signal` cancels the wait for a slot; a frame whose first chunk went out
   * is always finished, so that the server never holds half a frame.
   */
  send(points: Float32Array | EncodedPoints, options: SendOptions = {}): Promise<SentFrame> {
    if (points instanceof Float32Array ? points.length % 3 !== 0 : !isEncodedPoints(points)) {
      return Promise.reject(
        new PointstreamError(
          ErrorCodes.INVALID_FRAME,
          'points must be a Float32Array of x, y, z triples',
        ),
      );
    }
    if (this.#moving) return Promise.reject(this.#movedError());
    const result = this.#sendChain.then(() => this.#sendNow(points, options));
    this.#sendChain = result.catch(noop);
    return result;
  }

  /** Resolves once every frame sent so far has its receipt (or was counted lost). */
  async flush(): Promise<void> {
    await this.#sendChain;
    while (this.#pending.size > 0)
      await new Promise<void>((resolve) => this.#flushWaiters.push(resolve));
  }

  /**
   * Ends the sender (idempotent): frames without receipt are reported lost, waiters wake, and
   * `hooks.closed` runs. `serverCloses`: the server is closing the channel itself.
   */
  end(code: ErrorCode, reason: string, serverCloses = false): void {
    if (this.#ended) return;
    this.#ended = { code, reason };
    clearTimeout(this.#livenessTimer);
    if (this.#moving) clearTimeout(this.#moving.timer);
    this.#log.info(
      { event: 'closed', code, reason, framesInFlight: this.#pending.size },
      `connection closed: ${reason}`,
    );
    for (const seq of [...this.#pending.keys()]) {
      this.#settle(
        seq,
        new PointstreamError(
          ErrorCodes.FRAME_LOST,
          `frame ${seq} unacknowledged when the connection ended (${reason})`,
          { details: { seq } },
        ),
      );
    }
    for (const waiter of this.#slotWaiters.splice(0)) waiter();
    this.#drainWaiter?.();
    this.#drainWaiter = undefined;
    this.#helloWaiter?.(this.#endedError());
    this.#helloWaiter = undefined;
    (this.#hooks.closed ?? noop)({ code, reason, serverCloses });
  }

  async #sendNow(points: Float32Array | EncodedPoints, options: SendOptions): Promise<SentFrame> {
    const { signal } = options;
    while (this.#pending.size >= this.#options.maxFramesInFlight && !this.#ended && !this.#moving) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => {
        this.#slotWaiters.push(resolve);
        signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    signal?.throwIfAborted();
    if (this.#ended) throw this.#endedError();
    // A frame that waited for a slot while the server moved the session is not sent here.
    if (this.#moving) throw this.#movedError();
    const { frame, encoding, maxError, fieldMaxErrors } = this.#prepare(points, options);
    let pending!: PendingFrame;
    const receipt = new Promise<FrameReceipt>((resolve, reject) => {
      pending = { seq: frame.seq, firstChunkAt: 0, timer: undefined, resolve, reject };
    });
    receipt.catch(noop); // callers that ignore receipts must not crash the process
    this.#pending.set(frame.seq, pending);
    this.#stats.framesSent++;
    this.#stats.bytesSent += frame.payloadBytes;

    const channel = this.#channel;
    const highWaterMark = this.#options.highWaterMark;
    for (let index = 0; index < frame.chunkCount; index++) {
      if (channel.bufferedAmount() > highWaterMark) await this.#drained();
      if (this.#ended) throw this.#endedError();
      const message = writeChunk(frame, index, this.#scratch);
      if (index === 0) pending.firstChunkAt = performance.now();
      try {
        channel.send(message);
      } catch (cause) {
        this.end(ErrorCodes.CHANNEL_CLOSED, `send failed: ${(cause as Error).message}`);
        throw this.#endedError();
      }
    }
    if (this.#pending.has(frame.seq)) {
      const timeoutMs = this.#options.receiptTimeoutMs;
      pending.timer = setTimeout(() => {
        this.#settle(
          frame.seq,
          new PointstreamError(
            ErrorCodes.FRAME_LOST,
            `no receipt for frame ${frame.seq} within ${timeoutMs} ms`,
            { details: { seq: frame.seq } },
          ),
        );
      }, timeoutMs);
    }
    return {
      seq: frame.seq,
      bytes: frame.payloadBytes,
      chunks: frame.chunkCount,
      encoding,
      maxError,
      ...(fieldMaxErrors === undefined ? {} : { fieldMaxErrors }),
      receipt,
    };
  }

  /** Checks one frame against the server's limits and lays it out; throws what is not sent. */
  #prepare(
    points: Float32Array | EncodedPoints,
    options: SendOptions,
  ): {
    frame: OutgoingFrame;
    encoding: PointEncodingName;
    maxError: number;
    fieldMaxErrors: Readonly<Record<string, number>> | undefined;
  } {
    const hello = this.#hello as HelloMessage;
    const pointCount = points instanceof Float32Array ? points.length / 3 : points.pointCount;
    if (pointCount > hello.maxPointsPerFrame) {
      throw new PointstreamError(
        ErrorCodes.FRAME_TOO_MANY_POINTS,
        `${pointCount} points exceed the server's limit of ${hello.maxPointsPerFrame}`,
      );
    }
    const encoding =
      points instanceof Float32Array ? this.#options.encoding : encodingNameOf(points.encoding);
    const captureTime = options.captureTime ?? Date.now();
    const fields =
      points instanceof Float32Array || (points.fields?.columns.length ?? 0) === 0
        ? this.#fields(options, pointCount, encoding)
        : this.#checkFieldsAccepted(points.fields);
    let frame: OutgoingFrame;
    let maxError = 0;
    if (encoding === 'raw' && points instanceof Float32Array) {
      // Checked first: a frame the server would reject is not sent (one pass, 2-4 ms per 1M points).
      if (hello.allowNonFinite !== true && options.finite !== true) {
        const bad = indexOfNonFinite(points);
        if (bad >= 0)
          throw nonFiniteNotSentError(this.#nextSeq, bad, points[bad] as number, encoding);
      }
      frame = prepareFrame(
        points,
        this.#nextSeq,
        captureTime,
        this.#maxMessageBytes,
        this.#crc32,
        fields,
      );
    } else {
      const encoded = points instanceof Float32Array ? undefined : points;
      const id = encoded?.encoding ?? pointEncodingIdOf[encoding];
      if (encoding !== 'raw' && !(hello.encodings ?? [1]).includes(id)) {
        throw new PointstreamError(
          ErrorCodes.ENCODING_UNSUPPORTED,
          `the server does not decode ${encoding} frames (it announced encodings ${JSON.stringify(hello.encodings ?? [1])})`,
        );
      }
      const payload = encoded ?? this.#encode(points as Float32Array, encoding);
      maxError = payload.maxError;
      frame = prepareEncodedFrame(
        fields === payload.fields ? payload : { ...payload, fields },
        this.#nextSeq,
        captureTime,
        this.#maxMessageBytes,
        this.#crc32,
      );
    }
    this.#nextSeq++;
    if (frame.payloadBytes > hello.maxFrameBytes) {
      throw new PointstreamError(
        ErrorCodes.FRAME_TOO_LARGE,
        `${frame.payloadBytes} bytes exceed the server's limit of ${hello.maxFrameBytes}`,
      );
    }
    return { frame, encoding, maxError, fieldMaxErrors: fields?.maxErrors };
  }

  /**
   * The frame's fields (`options.fields`), checked and encoded for `encoding`: raw columns for
   * `.npy` frames, coded ones for q16/qrice. Throws before anything is sent.
   */
  #fields(
    options: SendOptions,
    pointCount: number,
    encoding: PointEncodingName,
  ): EncodedFields | undefined {
    const { fields } = options;
    if (fields === undefined) return undefined;
    const names = describeFields(fields, pointCount);
    if (names.length === 0) return undefined;
    this.#checkFieldsAccepted(undefined);
    const { fieldPrecision } = this.#options;
    return encodeFields(
      fields,
      pointCount,
      encoding === 'raw'
        ? { mode: 'raw' }
        : { mode: 'coded', ...(fieldPrecision === undefined ? {} : { fieldPrecision }) },
    );
  }

  /** Refuses fields to a server whose hello does not say it reads them. */
  #checkFieldsAccepted<T>(fields: T): T {
    if ((this.#hello as HelloMessage).fields !== true) {
      throw new PointstreamError(
        ErrorCodes.FIELDS_UNSUPPORTED,
        'the server does not read per-point fields (its hello lacks "fields": true): not sent rather than sent without them',
      );
    }
    return fields;
  }

  #encode(points: Float32Array, encoding: PointEncodingName): EncodedPoints {
    const { precision } = this.#options;
    try {
      return encodePoints(points, encoding, precision === undefined ? {} : { precision });
    } catch (error) {
      // The encoders find NaN in their bounds pass; say what to do about it.
      if ((error as PointstreamError).code !== ErrorCodes.FRAME_NON_FINITE) throw error;
      const bad = indexOfNonFinite(points);
      throw nonFiniteNotSentError(this.#nextSeq, bad, points[bad] as number, encoding);
    }
  }

  #drained(): Promise<void> {
    return new Promise((resolve) => {
      // Checked now (the threshold may have been crossed before the waiter was set) and again at
      // each `drained` report: one from an earlier pause can be delivered late, after this send
      // filled the buffer again (seen with node-datachannel: a resume at 80 KiB over a 64 KiB
      // mark). The channel reports again when the level next falls to the mark.
      const check = (): void => {
        if (this.#channel.bufferedAmount() <= this.#options.lowWaterMark || this.#ended) {
          this.#drainWaiter = undefined;
          resolve();
        } else this.#drainWaiter = check;
      };
      check();
    });
  }

  #onMessage(message: ChannelMessage): void {
    if (typeof message !== 'string') {
      this.#log.warn({ event: 'unexpected-binary' }, 'binary message from server ignored');
      return;
    }
    this.#heardAt = performance.now();
    let control: ServerMessage;
    try {
      control = decodeServerMessage(message);
    } catch (error) {
      this.#log.warn({ event: 'bad-control', err: error }, (error as Error).message);
      return;
    }
    switch (control.type) {
      case 'hello':
        this.#hello = control;
        if (control.heartbeatMs !== undefined && !this.#ended) this.#startLiveness();
        this.#helloWaiter?.();
        this.#helloWaiter = undefined;
        return;
      case 'heartbeat':
        return;
      case 'receipt': {
        const pending = this.#pending.get(control.seq);
        if (pending === undefined) {
          this.#log.warn(
            { event: 'unexpected-receipt', seq: control.seq },
            'receipt for an unknown frame',
          );
          return;
        }
        const latencyMs = performance.now() - pending.firstChunkAt;
        const receipt: FrameReceipt = control.ok
          ? {
              seq: control.seq,
              ok: true,
              points: control.points,
              latencyMs,
              receivedAt: control.receivedAt,
            }
          : {
              seq: control.seq,
              ok: false,
              code: control.code,
              message: control.message,
              latencyMs,
            };
        this.#settle(control.seq, receipt);
        (this.#hooks.receipt ?? noop)(receipt);
        return;
      }
      case 'closing':
        if (control.code === ErrorCodes.SESSION_MOVED) this.#moveAway(control.message);
        else this.end(control.code, `server closed the session: ${control.message}`, true);
        return;
    }
  }

  #settle(seq: number, outcome: FrameReceipt | PointstreamError): void {
    const pending = this.#pending.get(seq);
    if (pending === undefined) return;
    this.#pending.delete(seq);
    clearTimeout(pending.timer);
    if (outcome instanceof PointstreamError) {
      this.#stats.framesLost++;
      pending.reject(outcome);
    } else {
      if (outcome.ok) this.#stats.framesAcked++;
      else this.#stats.framesRejected++;
      pending.resolve(outcome);
    }
    // Every waiter re-checks the bound. Sends run one at a time, so there is one live waiter at
    // most; waking only the first could wake a send whose signal gave up, and strand the next.
    for (const waiter of this.#slotWaiters.splice(0)) waiter();
    if (this.#pending.size === 0) {
      for (const waiter of this.#flushWaiters.splice(0)) waiter();
      if (this.#moving) this.#movedOut();
    }
  }

  /**
   * Asks for heartbeats and ends the sender after `livenessTimeoutMs` without any message. One
   * timer, re-armed when it fires early: messages only stamp `#heardAt`.
   */
  #startLiveness(): void {
    try {
      this.#channel.send(CLIENT_HEARTBEAT_TEXT);
    } catch {
      return; // the channel is closing; its handler ends the sender
    }
    const timeoutMs = this.#options.livenessTimeoutMs;
    const check = (): void => {
      const silentMs = performance.now() - this.#heardAt;
      if (silentMs >= timeoutMs) {
        this.end(
          ErrorCodes.PEER_SILENT,
          `nothing from the server for ${Math.round(silentMs)} ms (liveness timeout ${timeoutMs} ms)`,
        );
      } else this.#livenessTimer = setTimeout(check, timeoutMs - silentMs);
    };
    this.#livenessTimer = setTimeout(check, timeoutMs);
  }

  /**
   * `closing` `PS_ERR_SESSION_MOVED`: new frames are refused (not sent), frames in flight keep
   * their receipts for up to {@link MOVE_RECEIPT_WAIT_MS}, then the sender ends with that code.
   */
  #moveAway(message: string): void {
    if (this.#moving || this.#ended) return;
    const reason = `server moved the session: ${message}`;
    this.#log.info(
      { event: 'session-moved', framesInFlight: this.#pending.size },
      `${reason}; waiting for ${this.#pending.size} receipts`,
    );
    const timer = setTimeout(() => this.#movedOut(true), MOVE_RECEIPT_WAIT_MS);
    this.#moving = { reason, timer };
    // A send waiting for a slot wakes and is refused, unsent.
    for (const waiter of this.#slotWaiters.splice(0)) waiter();
    if (this.#pending.size === 0) queueMicrotask(() => this.#movedOut());
  }

  /** Ends a moving sender once no receipt is awaited (a frame being chunked is one), or `force`d. */
  #movedOut(force = false): void {
    const moving = this.#moving;
    if (moving === undefined || this.#ended || (this.#pending.size > 0 && !force)) return;
    this.end(ErrorCodes.SESSION_MOVED, moving.reason);
  }

  #movedError(): PointstreamError {
    return new PointstreamError(
      ErrorCodes.SESSION_MOVED,
      `not sent: ${this.#moving?.reason ?? 'the server moved the session'}`,
    );
  }

  #endedError(): PointstreamError {
    const ended = this.#ended ?? { code: ErrorCodes.CHANNEL_CLOSED, reason: 'closed' };
    return new PointstreamError(ended.code, ended.reason);
  }
}

function isEncodedPoints(value: unknown): value is EncodedPoints {
  const encoded = value as EncodedPoints | null;
  return (
    typeof encoded === 'object' &&
    encoded !== null &&
    encoded.bytes instanceof Uint8Array &&
    Number.isSafeInteger(encoded.pointCount)
  );
}

function encodingNameOf(id: number): PointEncodingName {
  const name = POINT_ENCODING_NAMES.find((candidate) => pointEncodingIdOf[candidate] === id);
  if (name === undefined)
    throw new PointstreamError(ErrorCodes.ENCODING_UNSUPPORTED, `unknown encoding id ${id}`);
  return name;
}
