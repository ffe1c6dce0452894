import { crc32 } from 'node:zlib';
import { ErrorCodes, PointstreamError, invalidOption } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { Peer } from '../rtc/peer.js';
import type { PeerState } from '../rtc/peer.js';
import { localRouteFor } from '../rtc/route.js';
import { FrameSender } from '../sender/frame-sender.js';
import { resolveSenderOptions } from '../sender/options.js';
import type { ResolvedSenderOptions } from '../sender/options.js';
import { candidatesOf, toSdpFragment, withoutCandidates } from '../signaling/sdp.js';
import { fromNodeDataChannel } from '../transport/node-channel.js';
import type { NodeChannel } from '../transport/node-channel.js';
import { SafeEmitter } from '../util/emitter.js';
import { silentLogger } from '../util/logger.js';
import type { Logger } from '../util/logger.js';
import { PROTOCOL_V1 } from '../wire/chunk.js';
import { isStreamName } from '../wire/control.js';
import { deleteSession, patchCandidates, postOffer } from './signaling.js';
import type { SignalingContext } from './signaling.js';
import type { ClientOptions, FrameReceipt, SendOptions, SentFrame } from './types.js';

type ResolvedOptions = ClientOptions & ResolvedSenderOptions;

function resolveOptions(options: ClientOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null)
    throw invalidOption('options', 'an object', options);
  try {
    const url = new URL(options.signalingUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error();
  } catch {
    throw invalidOption('signalingUrl', 'an http(s) URL', options.signalingUrl);
  }
  // The sender's own options (limits, firstSeq, encoding, precision) are checked by the core.
  const sender = resolveSenderOptions(options);
  if (
    options.token !== undefined &&
    (typeof options.token !== 'string' || !/^[\x21-\x7e]+$/.test(options.token))
  ) {
    throw invalidOption('token', 'printable ASCII without spaces', '(hidden)');
  }
  if (options.stream !== undefined && !isStreamName(options.stream)) {
    throw invalidOption('stream', '1-64 of A-Z a-z 0-9 . _ -', options.stream);
  }
  return { ...options, ...sender };
}

/** Events of a client; each carries one payload. */
export interface ClientEvents {
  /** The connection ended; `code` says why (`PS_ERR_SESSION_CLOSED` after `close()`). */
  closed: { readonly code: ErrorCode; readonly reason: string };
  /** Every receipt, as it arrives. */
  receipt: FrameReceipt;
}

/**
 * A connected pointstream client: one peer connection, one `pointstream/1` channel, and the
 * frame sender (src/sender/frame-sender.ts) over it. Create it with {@link connect}; send frames
 * with {@link PointstreamClient.send}.
 */
export class PointstreamClient extends SafeEmitter<ClientEvents> {
  readonly #options: ResolvedOptions;
  readonly #log: Logger;
  readonly #peer: Peer;
  readonly #channel: NodeChannel;
  readonly #sender: FrameSender;
  #sessionUrl: string | undefined;
  #teardown: Promise<void> = Promise.resolve();

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
    // Our own advertised limit caps what libdatachannel lets us send, so it must cover the chunks.
    const rtc = {
      ...options.rtc,
      maxMessageSize: options.rtc?.maxMessageSize ?? Math.max(options.maxMessageBytes, 262_144),
    };
    this.#peer = new Peer('client', rtc, {
      state: (state) => this.#onPeerState(state),
      iceState: (state) => log.debug({ event: 'ice-state', iceState: state }, `ICE ${state}`),
    });
    this.#channel = fromNodeDataChannel(
      this.#peer.connection.createDataChannel('pointstream', { protocol: PROTOCOL_V1 }),
    );
    this.#sender = new FrameSender({
      ...options,
      channel: this.#channel,
      // zlib's: 5 ms per 12 MB frame here, against 21-27 ms for the core's portable one.
      crc32,
      logger: log,
      hooks: {
        receipt: (receipt) => this.emit('receipt', receipt),
        closed: ({ code, reason, serverCloses }) => {
          const sender = this.#sender;
          this.#teardown = this.#peer.closeInOrder(
            [
              {
                channel: this.#channel.native,
                closed: sender.channelClosed,
                opened: () => sender.opened,
              },
            ],
            { alreadyClosing: serverCloses },
          );
          this.emit('closed', { code, reason });
        },
      },
    });
  }

  /** The server's session id (from its hello message). */
  get sessionId(): string | undefined {
    return this.#sender.hello?.session;
  }

  /** Where WebRTC runs: the bound address (`undefined`: all interfaces) and the MTU in effect. */
  get route(): { readonly bindAddress: string | undefined; readonly mtu: number } {
    return { bindAddress: this.#peer.bindAddress, mtu: this.#peer.mtu };
  }

  /** The stream this session feeds (from the server's hello; older servers do not say). */
  get stream(): string | undefined {
    return this.#sender.hello?.stream;
  }

  /** Where the server records this session (a directory on the server), when it records. */
  get recording(): string | undefined {
    return this.#sender.hello?.recording;
  }

  /** Chunk size in use: the smaller of the option and the server's advertised maximum. */
  get maxMessageBytes(): number {
    return this.#sender.maxMessageBytes;
  }

  /** Frames sent whose receipt has not arrived. */
  get framesInFlight(): number {
    return this.#sender.framesInFlight;
  }

  get closed(): boolean {
    return this.#sender.ended !== undefined;
  }

  /** @internal */
  async open(signal: AbortSignal): Promise<void> {
    const onAbort = (): void =>
      this.#sender.end(ErrorCodes.ABORTED, String(signal.reason ?? 'aborted'));
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
      const ended = this.#sender.ended;
      if (ended) throw new PointstreamError(ended.code, ended.reason);
      this.#peer.setRemoteDescription(answer.sdp, 'answer');
      const candidates = candidatesOf(this.#peer.localDescription().sdp);
      if (candidates.length > 0 && answer.sessionUrl !== undefined) {
        await patchCandidates(
          answer.sessionUrl,
          toSdpFragment(candidates),
          this.#signaling(signal),
        );
      }
      await this.#sender.ready();
      this.#log.info(
        {
          event: 'connected',
          session: this.sessionId,
          stream: this.stream,
          maxMessageBytes: this.maxMessageBytes,
        },
        'connected',
      );
    } catch (error) {
      const code = (error as PointstreamError).code ?? ErrorCodes.CONNECTION_FAILED;
      this.#sender.end(code, (error as Error).message);
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
    if (!(points instanceof Float32Array)) {
      return Promise.reject(
        new PointstreamError(
          ErrorCodes.INVALID_FRAME,
          'points must be a Float32Array of x, y, z triples',
        ),
      );
    }
    return this.#sender.send(points, options);
  }

  /** Resolves once every frame sent so far has its receipt (or was counted lost). */
  flush(): Promise<void> {
    return this.#sender.flush();
  }

  /**
   * Ends the session: frames still unacknowledged are reported lost. Resolves once the native
   * connection is released. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) {
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
    this.#sender.end(ErrorCodes.SESSION_CLOSED, 'closed by the client', serverCloses);
    await this.#teardown;
  }

  #signaling(signal: AbortSignal): SignalingContext {
    return { signal, token: this.#options.token, ca: this.#options.ca };
  }

  #onPeerState(state: PeerState): void {
    this.#log.debug({ event: 'peer-state', peerState: state }, `peer connection ${state}`);
    if (state === 'failed' || state === 'disconnected' || state === 'closed') {
      // A little later: node-datachannel delivers channel messages and state changes through
      // separate queues, so the server's `closing` (which says why) can arrive just after the
      // state change it caused; the end keeps the server's code then (a CI run under load saw
      // PS_ERR_CONNECTION_FAILED instead of PS_ERR_STREAM_REPLACED).
      setTimeout(
        () => this.#sender.end(ErrorCodes.CONNECTION_FAILED, `peer connection ${state}`),
        PEER_END_GRACE_MS,
      ).unref();
    }
  }
}

/** How long a failed or closed peer connection waits for the server's `closing` (see #onPeerState). */
const PEER_END_GRACE_MS = 250;

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
