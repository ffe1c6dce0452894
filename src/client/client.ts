import { crc32 } from 'node:zlib';
import type { DataChannel } from 'node-datachannel';
import { ErrorCodes, PointstreamError, invalidOption } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { Peer } from '../rtc/peer.js';
import type { PeerState } from '../rtc/peer.js';
import { localRouteFor } from '../rtc/route.js';
import { candidatesOf, toSdpFragment, withoutCandidates } from '../signaling/sdp.js';
import { SafeEmitter } from '../util/emitter.js';
import { silentLogger } from '../util/logger.js';
import type { Logger } from '../util/logger.js';
import { PROTOCOL_V1 } from '../wire/chunk.js';
import { decodeServerMessage, isStreamName } from '../wire/control.js';
import type { HelloMessage, ServerMessage } from '../wire/control.js';
import { POINT_ENCODING_NAMES, encodePoints, pointEncodingIdOf } from '../wire/encodings/index.js';
import { MIN_MESSAGE_BYTES, prepareEncodedFrame, prepareFrame, writeChunk } from '../wire/frame.js';
import { indexOfNonFinite, nonFiniteNotSentError } from '../wire/points.js';
import { SENDER_DEFAULTS } from '../sender/defaults.js';
import { deleteSession, patchCandidates, postOffer } from './signaling.js';
import type { SignalingContext } from './signaling.js';
import type { ClientOptions, FrameReceipt, SendOptions, SentFrame } from './types.js';

const DEFAULTS = SENDER_DEFAULTS;

type ResolvedOptions = Required<Pick<ClientOptions, keyof typeof DEFAULTS>> & ClientOptions;

function resolveOptions(options: ClientOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null)
    throw invalidOption('options', 'an object', options);
  try {
    const url = new URL(options.signalingUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error();
  } catch {
    throw invalidOption('signalingUrl', 'an http(s) URL', options.signalingUrl);
  }
  const merged = { ...DEFAULTS, ...options };
  for (const key of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
    const value = merged[key];
    if (!Number.isSafeInteger(value) || value < 1)
      throw invalidOption(key, 'a positive integer', value);
  }
  if (
    merged.firstSeq !== undefined &&
    (!Number.isSafeInteger(merged.firstSeq) || merged.firstSeq < 0 || merged.firstSeq > 0xffff_ffff)
  ) {
    throw invalidOption('firstSeq', 'an integer in [0, 2^32)', merged.firstSeq);
  }
  if (
    merged.token !== undefined &&
    (typeof merged.token !== 'string' || !/^[\x21-\x7e]+$/.test(merged.token))
  ) {
    throw invalidOption('token', 'printable ASCII without spaces', '(hidden)');
  }
  if (merged.stream !== undefined && !isStreamName(merged.stream)) {
    throw invalidOption('stream', '1-64 of A-Z a-z 0-9 . _ -', merged.stream);
  }
  if (merged.maxMessageBytes < MIN_MESSAGE_BYTES) {
    throw invalidOption('maxMessageBytes', `at least ${MIN_MESSAGE_BYTES}`, merged.maxMessageBytes);
  }
  if (merged.encoding !== undefined && !POINT_ENCODING_NAMES.includes(merged.encoding)) {
    throw invalidOption('encoding', `one of ${POINT_ENCODING_NAMES.join(', ')}`, merged.encoding);
  }
  if (
    merged.precision !== undefined &&
    (typeof merged.precision !== 'number' ||
      !Number.isFinite(merged.precision) ||
      merged.precision <= 0)
  ) {
    throw invalidOption('precision', 'a positive number of metres', merged.precision);
  }
  if (merged.lowWaterMark > merged.highWaterMark) {
    throw invalidOption(
      'lowWaterMark',
      `at most highWaterMark (${merged.highWaterMark})`,
      merged.lowWaterMark,
    );
  }
  return merged;
}

interface PendingFrame {
  readonly seq: number;
  firstChunkAt: number;
  timer: NodeJS.Timeout | undefined;
  resolve(receipt: FrameReceipt): void;
  reject(error: PointstreamError): void;
}

/** Events of a client; each carries one payload. */
export interface ClientEvents {
  /** The connection ended; `code` says why (`PS_ERR_SESSION_CLOSED` after `close()`). */
  closed: { readonly code: ErrorCode; readonly reason: string };
  /** Every receipt, as it arrives. */
  receipt: FrameReceipt;
}

/**
 * A connected pointstream client: one peer connection, one `pointstream/1` channel. Create it with
 * {@link connect}; send frames with {@link PointstreamClient.send}.
 */
export class PointstreamClient extends SafeEmitter<ClientEvents> {
  readonly #options: ResolvedOptions;
  readonly #log: Logger;
  readonly #peer: Peer;
  readonly #channel: DataChannel;
  readonly #pending = new Map<number, PendingFrame>();
  #hello: HelloMessage | undefined;
  #sessionUrl: string | undefined;
  #scratch: Buffer = Buffer.alloc(0);
  #maxMessageBytes = 0;
  #nextSeq: number;
  #sendChain: Promise<unknown> = Promise.resolve();
  #slotWaiters: (() => void)[] = [];
  #flushWaiters: (() => void)[] = [];
  #drainWaiter: (() => void) | undefined;
  #openWaiter: ((error?: PointstreamError) => void) | undefined;
  #closed: { code: ErrorCode; reason: string } | undefined;
  #channelClosed!: () => void;
  readonly #channelClosedPromise = new Promise<void>((resolve) => (this.#channelClosed = resolve));
  #teardown: Promise<void> = Promise.resolve();
  #channelOpened = false;

  /** @internal use {@link connect} */
  constructor(options: ResolvedOptions) {
    const log = options.logger ?? silentLogger;
    super((error, event) =>
      log.error(
        { event: 'listener-error', listenerOf: event, err: error },
        `a '${event}' listener threw`,
      ),
    );
    this.#options = options;
    this.#log = log;
    this.#nextSeq = options.firstSeq ?? 0;
    // Our own advertised limit caps what libdatachannel lets us send, so it must cover the chunks.
    const rtc = {
      ...options.rtc,
      maxMessageSize: options.rtc?.maxMessageSize ?? Math.max(options.maxMessageBytes, 262_144),
    };
    this.#peer = new Peer('client', rtc, {
      state: (state) => this.#onPeerState(state),
      iceState: (state) => log.debug({ event: 'ice-state', iceState: state }, `ICE ${state}`),
    });
    this.#channel = this.#peer.connection.createDataChannel('pointstream', {
      protocol: PROTOCOL_V1,
    });
    this.#channel.setBufferedAmountLowThreshold(options.lowWaterMark);
    this.#channel.onBufferedAmountLow(() => {
      const waiter = this.#drainWaiter;
      this.#drainWaiter = undefined;
      waiter?.();
    });
    this.#channel.onOpen(() => (this.#channelOpened = true));
    this.#channel.onMessage((message) => this.#onMessage(message));
    this.#channel.onClosed(() => {
      this.#channelClosed();
      this.#terminate(ErrorCodes.CHANNEL_CLOSED, 'data channel closed');
    });
    this.#channel.onError((error) =>
      log.warn({ event: 'channel-error', error }, `data channel error: ${error}`),
    );
  }

  /** The server's session id (from its hello message). */
  get sessionId(): string | undefined {
    return this.#hello?.session;
  }

  /** Where WebRTC runs: the bound address (`undefined`: all interfaces) and the MTU in effect. */
  get route(): { readonly bindAddress: string | undefined; readonly mtu: number } {
    return { bindAddress: this.#peer.bindAddress, mtu: this.#peer.mtu };
  }

  /** The stream this session feeds (from the server's hello; older servers do not say). */
  get stream(): string | undefined {
    return this.#hello?.stream;
  }

  /** Where the server records this session (a directory on the server), when it records. */
  get recording(): string | undefined {
    return this.#hello?.recording;
  }

  /** Chunk size in use: the smaller of the option and the server's advertised maximum. */
  get maxMessageBytes(): number {
    return this.#maxMessageBytes;
  }

  /** Frames sent whose receipt has not arrived. */
  get framesInFlight(): number {
    return this.#pending.size;
  }

  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** @internal */
  async open(signal: AbortSignal): Promise<void> {
    const onAbort = (): void =>
      this.#terminate(ErrorCodes.ABORTED, String(signal.reason ?? 'aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await this.#peer.gathered();
      const offer = this.#peer.localDescription();
      // The offer goes without candidates; ours follow once the answer is applied. Otherwise the
      // server starts ICE and DTLS before we know its fingerprint, and libdatachannel fails about
      // one connection in three (docs/protocol.md, "Connection set-up").
      const answer = await postOffer(
        offerUrl(this.#options.signalingUrl, this.#options.stream),
        withoutCandidates(offer.sdp),
        this.#signaling(signal),
      );
      this.#sessionUrl = answer.sessionUrl;
      if (this.#closed) throw this.#closedError();
      this.#peer.setRemoteDescription(answer.sdp, 'answer');
      const candidates = candidatesOf(this.#peer.localDescription().sdp);
      if (candidates.length > 0 && answer.sessionUrl !== undefined) {
        await patchCandidates(
          answer.sessionUrl,
          toSdpFragment(candidates),
          this.#signaling(signal),
        );
      }
      await new Promise<void>((resolve, reject) => {
        if (this.#closed) reject(this.#closedError());
        else if (this.#hello) resolve();
        else this.#openWaiter = (error) => (error ? reject(error) : resolve());
      });
      const remoteMax = this.#channel.maxMessageSize();
      this.#maxMessageBytes = Math.min(
        this.#options.maxMessageBytes,
        remoteMax > 0 ? remoteMax : 65_536,
      );
      if (this.#maxMessageBytes < MIN_MESSAGE_BYTES) {
        throw new PointstreamError(
          ErrorCodes.CONNECTION_FAILED,
          `the server accepts messages of only ${remoteMax} bytes`,
        );
      }
      this.#scratch = Buffer.allocUnsafeSlow(this.#maxMessageBytes);
      this.#log.info(
        {
          event: 'connected',
          session: this.sessionId,
          stream: this.stream,
          maxMessageBytes: this.#maxMessageBytes,
        },
        'connected',
      );
    } catch (error) {
      const code = (error as PointstreamError).code ?? ErrorCodes.CONNECTION_FAILED;
      this.#terminate(code, (error as Error).message);
      throw error;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Sends one frame of points (x, y, z interleaved). Resolves when every chunk is handed to the
   * channel, after waiting for an in-flight slot and for the send buffer to drain as needed; the
   * caller may then reuse `points`. `signal` cancels the wait for a slot; a frame whose first chunk
   * went out is always finished, so that the server never holds half a frame.
   */
  send(points: Float32Array, options: SendOptions = {}): Promise<SentFrame> {
    if (!(points instanceof Float32Array) || points.length % 3 !== 0) {
      return Promise.reject(
        new PointstreamError(
          ErrorCodes.INVALID_FRAME,
          'points must be a Float32Array of x, y, z triples',
        ),
      );
    }
    const result = this.#sendChain.then(() => this.#sendNow(points, options));
    this.#sendChain = result.catch(() => undefined);
    return result;
  }

  async #sendNow(points: Float32Array, options: SendOptions): Promise<SentFrame> {
    const { signal } = options;
    while (this.#pending.size >= this.#options.maxFramesInFlight && !this.#closed) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => {
        this.#slotWaiters.push(resolve);
        signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    signal?.throwIfAborted();
    if (this.#closed) throw this.#closedError();
    const hello = this.#hello as HelloMessage;
    const pointCount = points.length / 3;
    if (pointCount > hello.maxPointsPerFrame) {
      throw new PointstreamError(
        ErrorCodes.FRAME_TOO_MANY_POINTS,
        `${pointCount} points exceed the server's limit of ${hello.maxPointsPerFrame}`,
      );
    }
    const encoding = this.#options.encoding ?? 'raw';
    const captureTime = options.captureTime ?? Date.now();
    let maxError = 0;
    let frame;
    if (encoding === 'raw') {
      // Checked first: a frame the server would reject is not sent (one pass, 2-4 ms per 1M points).
      if (hello.allowNonFinite !== true && options.finite !== true) {
        const bad = indexOfNonFinite(points);
        if (bad >= 0)
          throw nonFiniteNotSentError(this.#nextSeq, bad, points[bad] as number, encoding);
      }
      frame = prepareFrame(points, this.#nextSeq, captureTime, this.#maxMessageBytes, crc32);
    } else {
      const id = pointEncodingIdOf[encoding];
      if (!(hello.encodings ?? [1]).includes(id)) {
        throw new PointstreamError(
          ErrorCodes.ENCODING_UNSUPPORTED,
          `the server does not decode ${encoding} frames (it announced encodings ${JSON.stringify(hello.encodings ?? [1])})`,
        );
      }
      let encoded;
      try {
        encoded = encodePoints(
          points,
          encoding,
          this.#options.precision === undefined ? {} : { precision: this.#options.precision },
        );
      } catch (error) {
        // The encoders find NaN in their bounds pass; say what to do about it.
        if ((error as PointstreamError).code !== ErrorCodes.FRAME_NON_FINITE) throw error;
        const bad = indexOfNonFinite(points);
        throw nonFiniteNotSentError(this.#nextSeq, bad, points[bad] as number, encoding);
      }
      maxError = encoded.maxError;
      frame = prepareEncodedFrame(
        encoded,
        this.#nextSeq,
        captureTime,
        this.#maxMessageBytes,
        crc32,
      );
    }
    this.#nextSeq++;
    if (frame.payloadBytes > hello.maxFrameBytes) {
      throw new PointstreamError(
        ErrorCodes.FRAME_TOO_LARGE,
        `${frame.payloadBytes} bytes exceed the server's limit of ${hello.maxFrameBytes}`,
      );
    }

    let pending!: PendingFrame;
    const receipt = new Promise<FrameReceipt>((resolve, reject) => {
      pending = { seq: frame.seq, firstChunkAt: 0, timer: undefined, resolve, reject };
    });
    receipt.catch(() => undefined); // callers that ignore receipts must not crash the process
    this.#pending.set(frame.seq, pending);

    const channel = this.#channel;
    const highWaterMark = this.#options.highWaterMark;
    for (let index = 0; index < frame.chunkCount; index++) {
      if (channel.bufferedAmount() > highWaterMark) await this.#drained();
      if (this.#closed) throw this.#closedError();
      const message = writeChunk(frame, index, this.#scratch);
      if (index === 0) pending.firstChunkAt = performance.now();
      try {
        channel.sendMessageBinary(message);
      } catch (cause) {
        this.#terminate(ErrorCodes.CHANNEL_CLOSED, `send failed: ${(cause as Error).message}`);
        throw this.#closedError();
      }
    }
    if (this.#pending.has(frame.seq)) {
      pending.timer = setTimeout(() => {
        this.#settle(
          frame.seq,
          new PointstreamError(
            ErrorCodes.FRAME_LOST,
            `no receipt for frame ${frame.seq} within ${this.#options.receiptTimeoutMs} ms`,
            { details: { seq: frame.seq } },
          ),
        );
      }, this.#options.receiptTimeoutMs);
    }
    return {
      seq: frame.seq,
      bytes: frame.payloadBytes,
      chunks: frame.chunkCount,
      encoding,
      maxError,
      receipt,
    };
  }

  /** Resolves once every frame sent so far has its receipt (or was counted lost). */
  async flush(): Promise<void> {
    await this.#sendChain;
    while (this.#pending.size > 0)
      await new Promise<void>((resolve) => this.#flushWaiters.push(resolve));
  }

  /**
   * Ends the session: frames still unacknowledged are reported lost. Resolves once the native
   * connection is released. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) {
      await this.#teardown;
      return;
    }
    const sessionUrl = this.#sessionUrl;
    let serverCloses = false;
    if (sessionUrl !== undefined) {
      // End the session on the server first, so that it logs an orderly end rather than a lost
      // connection, and closes the channel itself; best effort, bounded.
      serverCloses = await deleteSession(
        sessionUrl,
        this.#signaling(AbortSignal.timeout(2000)),
      ).then(
        () => true,
        (error: unknown) => {
          this.#log.debug(
            { event: 'delete-failed', err: error },
            'could not end the session over HTTP',
          );
          return false;
        },
      );
    }
    this.#terminate(ErrorCodes.SESSION_CLOSED, 'closed by the client', serverCloses);
    await this.#teardown;
  }

  #signaling(signal: AbortSignal): SignalingContext {
    return { signal, token: this.#options.token, ca: this.#options.ca };
  }

  #drained(): Promise<void> {
    return new Promise((resolve) => {
      this.#drainWaiter = resolve;
      // The threshold may have been crossed before the waiter was set.
      if (this.#channel.bufferedAmount() <= this.#options.lowWaterMark || this.#closed) {
        this.#drainWaiter = undefined;
        resolve();
      }
    });
  }

  #onMessage(message: string | Buffer | ArrayBuffer): void {
    if (typeof message !== 'string') {
      this.#log.warn({ event: 'unexpected-binary' }, 'binary message from server ignored');
      return;
    }
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
        this.#openWaiter?.();
        this.#openWaiter = undefined;
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
        this.emit('receipt', receipt);
        return;
      }
      case 'closing':
        this.#terminate(control.code, `server closed the session: ${control.message}`, true);
        return;
    }
  }

  #settle(seq: number, outcome: FrameReceipt | PointstreamError): void {
    const pending = this.#pending.get(seq);
    if (pending === undefined) return;
    this.#pending.delete(seq);
    clearTimeout(pending.timer);
    if (outcome instanceof PointstreamError) pending.reject(outcome);
    else pending.resolve(outcome);
    this.#slotWaiters.shift()?.();
    if (this.#pending.size === 0) for (const waiter of this.#flushWaiters.splice(0)) waiter();
  }

  #onPeerState(state: PeerState): void {
    this.#log.debug({ event: 'peer-state', peerState: state }, `peer connection ${state}`);
    if (state === 'failed' || state === 'disconnected' || state === 'closed') {
      this.#terminate(ErrorCodes.CONNECTION_FAILED, `peer connection ${state}`);
    }
  }

  #closedError(): PointstreamError {
    const closed = this.#closed ?? { code: ErrorCodes.CHANNEL_CLOSED, reason: 'closed' };
    return new PointstreamError(closed.code, closed.reason);
  }

  /** `alreadyClosing`: the server is closing the channel (Peer.closeInOrder). */
  #terminate(code: ErrorCode, reason: string, alreadyClosing = false): void {
    if (this.#closed) return;
    this.#closed = { code, reason };
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
    this.#openWaiter?.(this.#closedError());
    this.#openWaiter = undefined;
    this.#teardown = this.#peer.closeInOrder(
      [
        {
          channel: this.#channel,
          closed: this.#channelClosedPromise,
          opened: () => this.#channelOpened,
        },
      ],
      { alreadyClosing },
    );
    this.emit('closed', { code, reason });
  }
}

/** The offer URL with the stream's name as `?stream=` (the offer itself is plain SDP). */
function offerUrl(signalingUrl: string, stream: string | undefined): string {
  if (stream === undefined) return signalingUrl;
  const url = new URL(signalingUrl);
  url.searchParams.set('stream', stream);
  return url.toString();
}

/**
 * Connects to a pointstream server and resolves once the channel is open and the server has
 * greeted it. Rejects with `PS_ERR_CONNECT_TIMEOUT`, `PS_ERR_SIGNALING_*` or `PS_ERR_ABORTED`.
 */
export async function connect(options: ClientOptions): Promise<PointstreamClient> {
  let resolved = resolveOptions(options);
  // No WebRTC placement given: take the best safe one for the route to the signaling host.
  if (resolved.rtc?.bindAddress === undefined && resolved.rtc?.mtu === undefined) {
    const route = await localRouteFor(resolved.signalingUrl);
    if (route !== undefined) resolved = { ...resolved, rtc: { ...resolved.rtc, ...route } };
  }
  const timeout = AbortSignal.timeout(resolved.connectTimeoutMs);
  const signal = resolved.signal ? AbortSignal.any([resolved.signal, timeout]) : timeout;
  const client = new PointstreamClient(resolved);
  try {
    await client.open(signal);
  } catch (error) {
    if (timeout.aborted) {
      throw new PointstreamError(
        ErrorCodes.CONNECT_TIMEOUT,
        `channel not open within ${resolved.connectTimeoutMs} ms`,
        { cause: error },
      );
    }
    if (resolved.signal?.aborted)
      throw new PointstreamError(ErrorCodes.ABORTED, 'connect aborted', { cause: error });
    throw error;
  }
  return client;
}
