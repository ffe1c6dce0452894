import nodeDataChannel from 'node-datachannel';
import type { DataChannel, DescriptionType, PeerConnection, RtcConfig } from 'node-datachannel';
import { ErrorCodes, PointstreamError, invalidOption } from '../errors.js';

/** WebRTC settings shared by the server and the client. */
export interface RtcOptions {
  /**
   * Local address ICE binds to and gathers candidates from, e.g. `'127.0.0.1'`. Default: all
   * interfaces.
   */
  readonly bindAddress?: string;
  /** STUN/TURN servers, as node-datachannel URLs (`stun:host:port`). Default none. */
  readonly iceServers?: readonly string[];
  /** UDP port range for ICE, e.g. `[40000, 40100]` for a firewall rule. Default: any. */
  readonly portRange?: readonly [number, number];
  /** Largest incoming message this side accepts (advertised as `a=max-message-size`). */
  readonly maxMessageSize?: number;
  /**
   * Path MTU in bytes for DTLS/SCTP packets. Per-packet work is what limits a DataChannel, so
   * larger packets cost much less CPU where the path carries them (loopback, jumbo-frame LANs).
   * Default: {@link LOOPBACK_MTU} when `bindAddress` is a loopback address (the path can only be
   * loopback), else libdatachannel's 1280, which is safe on any network. From {@link MIN_MTU} to
   * {@link MAX_MTU}: outside that range no connection can work.
   */
  readonly mtu?: number;
  /** How long ICE gathering may take before the description is used as it is. Default 5000 ms. */
  readonly gatheringTimeoutMs?: number;
}

/**
 * Larger MTUs stall the connection: datagrams above about 4 KiB are lost on libdatachannel's
 * receive path (measured here: 4096 carries data, 4200 never delivers a frame).
 */
export const MAX_MTU = 4096;
/**
 * Smaller MTUs fail every connection: libdatachannel gives SCTP the MTU less 108 bytes of
 * SCTP/DTLS/UDP/IPv6 headers, and usrsctp refuses a path MTU under 512 (its smallest), so the SCTP
 * transport cannot be created (measured here: 619 fails on either end, 620 connects).
 */
export const MIN_MTU = 512 + 108;
/** libdatachannel's MTU when none is given: safe on any network (IPv6's minimum). */
export const DEFAULT_MTU = 1280;
/** The MTU used on loopback: measured here, 2.4x the throughput at 40% of the CPU per byte. */
export const LOOPBACK_MTU = MAX_MTU;

export function isLoopbackAddress(address: string | undefined): boolean {
  return address !== undefined && (/^127\./.test(address) || address === '::1');
}

export type PeerState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';

export interface PeerEvents {
  state(state: PeerState): void;
  iceState(state: string): void;
  gatheringState(state: string): void;
  dataChannel(channel: DataChannel): void;
}

let peerCounter = 0;

/** Longest wait for channels' send buffers to drain before they are closed. */
const DRAIN_MS = 500;
/** Longest wait for a channel's closed event after it was closed, before the connection closes. */
const CLOSE_GRACE_MS = 1000;
/** Longest wait for channels that others are closing (the remote drains first). */
const ALREADY_CLOSING_WAIT_MS = DRAIN_MS + CLOSE_GRACE_MS;

/** A channel for {@link Peer.closeInOrder}. */
export interface ChannelToClose {
  readonly channel: DataChannel;
  /** Resolves when the channel's own onClosed handler has run. */
  readonly closed: Promise<void>;
  /** Whether the channel was seen open (then "not open" means closed natively). */
  readonly opened: () => boolean;
}

export interface CloseOptions {
  /**
   * The remote is closing the channels already (it answered the session's DELETE, or sent
   * `closing`): wait for that before closing them here. After the connection failed, was lost or
   * closed, libdatachannel closes them and closeInOrder waits anyway. Default false.
   */
  readonly alreadyClosing?: boolean;
  /** Longest wait for channels' closed events after closing them. Default 1000 ms. */
  readonly graceMs?: number;
}

async function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

function isOpen(channel: DataChannel): boolean {
  try {
    return channel.isOpen();
  } catch {
    return false;
  }
}

/**
 * Closes every node-datachannel connection and channel of this process and releases their native
 * callbacks. For a program that is done with WebRTC, as it ends (the CLI commands): a callback
 * whose closed event libdatachannel lost would otherwise keep the process alive.
 */
export function releaseNativeResources(): void {
  try {
    nodeDataChannel.cleanup();
  } catch {
    // libdatachannel's own shutdown timed out; exiting is all that is left to do.
  }
}

/**
 * Closes a channel that will not be used. node-datachannel holds a native callback for every
 * channel until its closed event reaches a JavaScript handler; without one registered, that
 * callback keeps the process alive until the channel object happens to be garbage-collected.
 */
export function closeUnwanted(channel: DataChannel): void {
  try {
    channel.onClosed(() => undefined);
    channel.close();
  } catch {
    // already closed natively
  }
}

/**
 * One node-datachannel PeerConnection with every callback registered once (node-datachannel keeps
 * one callback per event) and promise helpers. Holding the `Peer` keeps the native objects alive:
 * node-datachannel closes a channel whose JavaScript object is garbage-collected.
 */
export class Peer {
  readonly connection: PeerConnection;
  /** The local address ICE is bound to (`undefined`: all interfaces). */
  readonly bindAddress: string | undefined;
  /** The MTU in effect (libdatachannel's default is 1280). */
  readonly mtu: number;
  readonly #handlers: Partial<PeerEvents>;
  readonly #gatheringTimeoutMs: number;
  #gatheringWaiters: (() => void)[] = [];
  #closed = false;
  #channelsClosingNatively = false;

  constructor(name: string, options: RtcOptions, handlers: Partial<PeerEvents>) {
    const config: RtcConfig = { iceServers: [...(options.iceServers ?? [])] };
    if (options.bindAddress !== undefined) config.bindAddress = options.bindAddress;
    if (options.maxMessageSize !== undefined) config.maxMessageSize = options.maxMessageSize;
    if (
      options.mtu !== undefined &&
      (!Number.isInteger(options.mtu) || options.mtu < MIN_MTU || options.mtu > MAX_MTU)
    ) {
      throw invalidOption('rtc.mtu', `an integer from ${MIN_MTU} to ${MAX_MTU}`, options.mtu);
    }
    const mtu = options.mtu ?? (isLoopbackAddress(options.bindAddress) ? LOOPBACK_MTU : undefined);
    if (mtu !== undefined) config.mtu = mtu;
    this.mtu = mtu ?? DEFAULT_MTU;
    this.bindAddress = options.bindAddress;
    if (options.portRange !== undefined) {
      config.portRangeBegin = options.portRange[0];
      config.portRangeEnd = options.portRange[1];
    }
    this.#handlers = handlers;
    this.#gatheringTimeoutMs = options.gatheringTimeoutMs ?? 5000;
    this.connection = new nodeDataChannel.PeerConnection(`${name}-${++peerCounter}`, config);
    const pc = this.connection;
    pc.onStateChange((state) => {
      // libdatachannel closes the channels itself once the connection failed, was lost or closed.
      if (state === 'failed' || state === 'disconnected' || state === 'closed')
        this.#channelsClosingNatively = true;
      this.#handlers.state?.(state as PeerState);
    });
    pc.onIceStateChange((state) => this.#handlers.iceState?.(state));
    pc.onGatheringStateChange((state) => {
      this.#handlers.gatheringState?.(state);
      if (state === 'complete') this.#releaseGatheringWaiters();
    });
    pc.onDataChannel((channel) => this.#handlers.dataChannel?.(channel));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves once ICE gathering completes, or after the gathering timeout (then with what was gathered). */
  async gathered(): Promise<void> {
    if (this.connection.gatheringState() === 'complete') return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.#gatheringTimeoutMs);
      this.#gatheringWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      // The state may have changed between the check above and the registration.
      if (this.connection.gatheringState() === 'complete') this.#releaseGatheringWaiters();
    });
  }

  #releaseGatheringWaiters(): void {
    const waiters = this.#gatheringWaiters;
    this.#gatheringWaiters = [];
    for (const waiter of waiters) waiter();
  }

  /** The local description, candidates included. */
  localDescription(): { sdp: string; type: DescriptionType } {
    const description = this.connection.localDescription();
    if (description === null) {
      throw new PointstreamError(
        ErrorCodes.CONNECTION_FAILED,
        'no local description was generated',
      );
    }
    return description;
  }

  /** Applies a remote offer; resolves with the answer once ICE gathering is done (candidates in it). */
  async answer(offerSdp: string): Promise<string> {
    this.setRemoteDescription(offerSdp, 'offer');
    await this.gathered();
    if (this.#closed)
      throw new PointstreamError(ErrorCodes.SESSION_CLOSED, 'closed while answering');
    return this.localDescription().sdp;
  }

  /** Candidates the remote side trickles after it applied the answer; a bad one is `PS_ERR_SDP_INVALID`. */
  addRemoteCandidates(candidates: readonly { candidate: string; mid: string }[]): void {
    for (const { candidate, mid } of candidates) {
      try {
        this.connection.addRemoteCandidate(candidate, mid);
      } catch (cause) {
        throw new PointstreamError(
          ErrorCodes.SDP_INVALID,
          `candidate rejected: ${(cause as Error).message}`,
          { cause },
        );
      }
    }
  }

  /** Applies a remote description; libdatachannel's parse errors become PS_ERR_SDP_INVALID. */
  setRemoteDescription(sdp: string, type: 'offer' | 'answer'): void {
    try {
      this.connection.setRemoteDescription(sdp, type);
    } catch (cause) {
      throw new PointstreamError(
        ErrorCodes.SDP_INVALID,
        `remote ${type} rejected: ${(cause as Error).message}`,
        {
          cause,
        },
      );
    }
  }

  /**
   * Closes `channels` first and the connection once they report closed (at most `graceMs` after
   * closing them; with `alreadyClosing`, after up to {@link ALREADY_CLOSING_WAIT_MS} more).
   * node-datachannel releases a channel's native callbacks only when libdatachannel reports the
   * channel closed, which it may never do if the connection is torn down first; the callbacks
   * would then keep this process alive and everything they reference in memory.
   *
   * libdatachannel (0.24) also loses the closed event when `close()` from here meets another
   * close of the same channel, by the remote or by libdatachannel itself after the connection
   * failed: the losing caller resets the callbacks before the winner fires the event
   * (libdatachannel PR #1384). So, with `alreadyClosing` or after the connection failed, was lost
   * or closed, this waits for that other close first,
   * and a channel that was open but is not any more is already closing natively and is left to it.
   */
  async closeInOrder(
    channels: readonly ChannelToClose[],
    { alreadyClosing = false, graceMs = CLOSE_GRACE_MS }: CloseOptions = {},
  ): Promise<void> {
    if (this.#closed) return;
    const allReported = Promise.all(channels.map(({ closed }) => closed));
    if (alreadyClosing || this.#channelsClosingNatively) {
      await settledWithin(allReported, ALREADY_CLOSING_WAIT_MS);
    } else {
      // What was sent last (a `closing` message) must not be overtaken by the close: let the send
      // buffers drain first, briefly (measured: Chromium otherwise sometimes saw the channel close
      // without the message queued behind a frame).
      const deadline = performance.now() + DRAIN_MS;
      while (
        performance.now() < deadline &&
        channels.some(({ channel }) => isOpen(channel) && channel.bufferedAmount() > 0)
      )
        await new Promise((resolve) => setTimeout(resolve, 10));
    }
    for (const { channel, opened } of channels) {
      // Not open any more: closed, or closing natively with its closed event on the way. (A
      // channel already reported closed is not open either.)
      if (opened() && !isOpen(channel)) continue;
      try {
        channel.close();
      } catch {
        // already closed natively
      }
    }
    await settledWithin(allReported, graceMs);
    this.close();
  }

  /** Closes the connection (idempotent). Channels close with it. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#releaseGatheringWaiters();
    try {
      this.connection.close();
    } catch {
      // Already closed natively: nothing left to release.
    }
  }
}
