import { ErrorCodes, invalidOption } from '../errors.js';
import type { RtcOptions } from '../rtc/peer.js';
import type { Logger } from '../util/logger.js';
import { withDefaults } from '../util/options.js';
import { VIEWER_MAX_POINTS, encodeViewerFrame, viewerFrameOfQ16 } from '../wire/viewer.js';
import type { EncodedViewerFrame } from '../wire/viewer.js';
import type { ReceivedFrame, ViewerOptions, ViewerStats } from './types.js';
import { ViewerPeer } from './viewer-peer.js';
import type { PreparedFrame, ViewerHooks } from './viewer-peer.js';

// Public types live in types.ts (which imports nothing of the server's): re-exported for callers.
export type { ViewerOptions, ViewerStats } from './types.js';

/*
 * The viewer's wire format (START and DATA messages, hello/closing/ack text) is
 * src/wire/viewer.ts, shared with the page; docs/protocol.md, "Live viewer", describes it. Its
 * HTTP side (`POST /viewer/offer`, `PATCH`/`DELETE /viewer/peers/<id>`) is
 * src/server/http/viewer-offer.ts.
 *
 * One frame is unacknowledged per viewer at most: a frame that arrives while a viewer has one
 * out, or is still sending it, is dropped for that viewer (and counted), never queued, so a slow
 * page costs ingest nothing.
 */

/**
 * What a viewer's peer connection advertises: viewers send the server nothing large, but
 * libdatachannel also refuses to send a message above its own limit, and the server sends viewers
 * messages of up to 256 KiB (docs/protocol.md).
 */
const VIEWER_MAX_MESSAGE_BYTES = 256 * 1024;

type ResolvedViewerOptions = Readonly<Required<ViewerOptions>>;

export const DEFAULT_VIEWER_OPTIONS: ResolvedViewerOptions = Object.freeze({
  maxPoints: 250_000,
  maxFps: 10,
  maxViewers: 16,
  connectTimeoutMs: 15_000,
  ackTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  maxViewersPerClient: 4,
});

function resolveViewerOptions(options: ViewerOptions): ResolvedViewerOptions {
  const merged = withDefaults<ResolvedViewerOptions>(DEFAULT_VIEWER_OPTIONS, options);
  for (const key of Object.keys(merged) as (keyof ResolvedViewerOptions)[]) {
    if (!(key in DEFAULT_VIEWER_OPTIONS))
      throw invalidOption(`viewer.${key}`, 'a known option', key);
    const value = merged[key];
    const max = key === 'maxPoints' ? VIEWER_MAX_POINTS : 1_000_000;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max)
      throw invalidOption(`viewer.${key}`, `an integer from 1 to ${max}`, value);
  }
  return Object.freeze(merged);
}

/** Options of a {@link ViewerHub}. */
export interface ViewerHubOptions {
  /** WebRTC settings of every viewer's peer connection (its `maxMessageSize` is the hub's). */
  readonly rtc: RtcOptions;
  readonly log: Logger;
  readonly options: ViewerOptions;
  /** The live session of a stream, if any. */
  sessionOf(stream: string): string | undefined;
}

/** What the hub needs to open a viewer (its offer was read and admitted). */
export interface ViewerOpen {
  readonly id: string;
  readonly stream: string;
  /** Largest message the page accepts. */
  readonly maxMessageBytes: number;
  readonly remoteAddress: string;
  /** Gives the client's viewer slot back, once, when the viewer ends. */
  readonly release: () => void;
}

/**
 * Feeds live frames to browser viewers, each over its own peer connection ({@link ViewerPeer}).
 * Ingest never waits for a viewer: `onFrame` is O(1) for a stream nobody watches, and otherwise
 * encodes a frame only when one of its viewers is ready for it.
 */
export class ViewerHub {
  readonly #deps: ViewerHubOptions;
  readonly #options: ResolvedViewerOptions;
  readonly #log: Logger;
  readonly #viewers = new Map<string, ViewerPeer>();
  readonly #byStream = new Map<string, Set<ViewerPeer>>();
  /** The last frame encoded for each watched stream, for viewers that become ready between frames. */
  readonly #latest = new Map<string, PreparedFrame>();
  readonly #teardowns = new Set<Promise<void>>();
  readonly #hooks: ViewerHooks = {
    ready: (viewer) => this.#pump(viewer),
    sessionOf: (stream) => this.#deps.sessionOf(stream),
    closed: (viewer, teardown) => this.#viewerClosed(viewer, teardown),
  };
  #closed = false;

  constructor(options: ViewerHubOptions) {
    this.#deps = options;
    this.#options = resolveViewerOptions(options.options);
    this.#log = options.log;
  }

  get options(): ResolvedViewerOptions {
    return this.#options;
  }

  /** Closed: no more viewers. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** At `maxViewers`, counting viewers still being torn down (they hold native resources too). */
  get isFull(): boolean {
    return this.#viewers.size + this.#teardowns.size >= this.#options.maxViewers;
  }

  /** Live viewers. */
  stats(): ViewerStats[] {
    return [...this.#viewers.values()].map((viewer) => viewer.stats());
  }

  /** The live viewer `id`, if any. */
  get(id: string): ViewerPeer | undefined {
    return this.#viewers.get(id);
  }

  /** Opens a viewer of `open.stream`; it is sent frames once its channel opens. */
  open(open: ViewerOpen): ViewerPeer {
    const viewer = new ViewerPeer({
      id: open.id,
      stream: open.stream,
      maxMessageBytes: open.maxMessageBytes,
      rtc: { ...this.#deps.rtc, maxMessageSize: VIEWER_MAX_MESSAGE_BYTES },
      options: this.#options,
      log: this.#log.child({ viewer: open.id, stream: open.stream }),
      release: open.release,
      hooks: this.#hooks,
    });
    this.#viewers.set(open.id, viewer);
    let watchers = this.#byStream.get(open.stream);
    if (watchers === undefined) this.#byStream.set(open.stream, (watchers = new Set()));
    watchers.add(viewer);
    viewer.log.info({ event: 'viewer-new', remoteAddress: open.remoteAddress }, 'new viewer');
    return viewer;
  }

  /** Called for every verified frame; must return at once (never slows ingest), and never throws. */
  onFrame(frame: ReceivedFrame): void {
    try {
      this.#feed(frame);
    } catch (error) {
      // A viewer's problem must never cost ingest a frame.
      this.#log.error(
        { event: 'viewer-error', err: error, session: frame.sessionId, stream: frame.stream },
        'feeding viewers failed',
      );
    }
  }

  #feed(frame: ReceivedFrame): void {
    const watchers = this.#byStream.get(frame.stream);
    if (watchers === undefined) return;
    const now = performance.now();
    let prepared: PreparedFrame | undefined;
    for (const viewer of watchers) {
      if (!viewer.takesFrame(now)) continue;
      if (prepared === undefined) {
        // The only copy of the frame's points: taken now, because its buffer may be reused.
        prepared = { sessionId: frame.sessionId, frame: this.#encode(frame), data: new Map() };
        this.#latest.set(frame.stream, prepared);
      }
      viewer.sendFrame(prepared, now);
    }
    // Nobody was ready: the cached older frame is now stale; drop it so nobody is sent it.
    if (prepared === undefined) this.#latest.delete(frame.stream);
  }

  /**
   * The viewer frame of `frame`, the only copy of its points taken (its buffer may be reused).
   * A q16 frame within the budget is forwarded as it arrived; anything else is decimated and
   * quantized.
   */
  #encode(frame: ReceivedFrame): EncodedViewerFrame {
    const { maxPoints } = this.#options;
    if (frame.encoding === 'q16' && frame.encoded !== undefined && frame.pointCount <= maxPoints)
      return viewerFrameOfQ16(
        frame.encoded.slice(),
        frame.pointCount,
        frame.pointCount,
        frame.seq,
        frame.captureTime,
      );
    return encodeViewerFrame(frame.points, frame.seq, frame.captureTime, maxPoints);
  }

  /**
   * A session ended: its stream's viewers stay, for the stream's next session (a sender that
   * reconnects); only its last frame is no longer offered to them.
   */
  onSessionClosed(stream: string, sessionId: string): void {
    if (this.#latest.get(stream)?.sessionId === sessionId) this.#latest.delete(stream);
  }

  /** A stream was forgotten (no session for `streamHoldMs`): its viewers are told and closed. */
  onStreamEnded(stream: string): void {
    this.#latest.delete(stream);
    for (const viewer of this.#byStream.get(stream) ?? [])
      viewer.close(ErrorCodes.SESSION_CLOSED, 'its sender left');
  }

  /** Closes every viewer connection and waits for their native teardown. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const viewer of [...this.#viewers.values()])
      viewer.close(ErrorCodes.SESSION_CLOSED, 'server shutting down');
    await Promise.all([...this.#teardowns]);
  }

  /** A viewer became ready (opened, or acknowledged a frame): send the cached frame if it is new to it. */
  #pump(viewer: ViewerPeer): void {
    const prepared = this.#latest.get(viewer.stream);
    const now = performance.now();
    if (
      prepared &&
      (viewer.lastSeq !== prepared.frame.seq || viewer.sessionId !== prepared.sessionId) &&
      viewer.readyAt(now)
    )
      viewer.sendFrame(prepared, now);
  }

  #viewerClosed(viewer: ViewerPeer, teardown: Promise<void>): void {
    this.#viewers.delete(viewer.id);
    const watchers = this.#byStream.get(viewer.stream);
    watchers?.delete(viewer);
    if (watchers?.size === 0) {
      this.#byStream.delete(viewer.stream);
      this.#latest.delete(viewer.stream);
    }
    this.#teardowns.add(teardown);
    void teardown.finally(() => this.#teardowns.delete(teardown));
  }
}
