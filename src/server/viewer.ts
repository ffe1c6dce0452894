import { tenantOf } from '../bus/layout.js';
import type { BusPublisher } from '../bus/publisher.js';
import type { PreviewStats, ViewerCluster } from '../cluster/previews.js';
import { ErrorCodes, invalidOption } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { RtcOptions } from '../rtc/peer.js';
import type { Logger } from '../util/logger.js';
import { withDefaults } from '../util/options.js';
import { HEIGHT, colourRefusal, isColourName } from '../wire/viewer-colour.js';
import type { ViewerField } from '../wire/viewer-colour.js';
import { VIEWER_MAX_POINTS, withColours } from '../wire/viewer.js';
import type { EncodedViewerFrame } from '../wire/viewer.js';
import type { StreamRegistry } from './streams.js';
import type { ReceivedFrame, ViewerOptions, ViewerStats } from './types.js';
import {
  FeedFields,
  coloursOf,
  fieldsOfFrame,
  prepareLocalFrame,
  prepareRemoteFrame,
} from './viewer-frames.js';
import type { PreparedFrame } from './viewer-frames.js';
import { ViewerPeer } from './viewer-peer.js';
import type { ViewerHooks } from './viewer-peer.js';

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
 *
 * With a bus, viewers may watch streams other nodes ingest, and other nodes' viewers ours: frames
 * travel between nodes as previews over core NATS while wanted (src/cluster/previews.ts, loaded
 * only then); a preview from another node is fed to viewers as a local frame is.
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
  /** The streams this node ingests: their live session, and their owner (the tenant of previews). */
  readonly streams: Pick<StreamRegistry, 'sessionOf' | 'ownerOf'>;
  /**
   * The node's bus (`serve --bus`): viewers may then watch streams ingested on other nodes, and
   * other nodes' viewers watch ours, through previews over core NATS (src/cluster/previews.ts).
   * Without it no NATS module is loaded. (none)
   */
  readonly bus?: BusPublisher;
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
  /** A stream ingested on another node (see {@link ViewerHub.locate}): of this tenant. */
  readonly remote?: { readonly tenant: string };
}

/** A remote stream watched: its viewers' feed, the stop of its previews, and a want sent now. */
interface RemoteFeed {
  readonly tenant: string;
  readonly stream: string;
  readonly stop: () => void;
  readonly wantNow: () => void;
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
    origin: (viewer) => this.origin(viewer),
    fields: (viewer) => this.#fields.get(viewer.feed) ?? [],
    checkColour: (viewer, colour) => {
      const known = this.#fields.get(viewer.feed);
      if (!isColourName(colour)) return `${JSON.stringify(colour)} is not a field name`;
      // Before the stream's first frame nothing is known: the choice waits for frames with it.
      return colour === HEIGHT || known === undefined ? undefined : colourRefusal(colour, known);
    },
    // A gateway asks for the new colour at once instead of at its next want.
    coloured: (viewer) => this.#remote.get(viewer.feed)?.wantNow(),
    closed: (viewer, teardown) => this.#viewerClosed(viewer, teardown),
  };
  /** The fields of each feed's last frame: the colours its viewers may pick. */
  readonly #fields = new FeedFields();
  /** Previews across nodes, once opened (with a bus only). */
  #cluster: ViewerCluster | undefined;
  readonly #clusterOpened: Promise<void>;
  /** Feeds of remote streams watched here, by feed key. */
  readonly #remote = new Map<string, RemoteFeed>();
  /** When each local stream's last preview was published (performance.now()). */
  readonly #publishedAt = new Map<string, number>();
  #closed = false;

  constructor(options: ViewerHubOptions) {
    this.#deps = options;
    this.#options = resolveViewerOptions(options.options);
    this.#log = options.log;
    this.#clusterOpened = this.#openCluster(options.bus);
    // Failing to open previews is logged there; the hub then serves local streams only.
    this.#clusterOpened.catch(() => undefined);
  }

  /** Resolves once previews across nodes are ready (at once without a bus). */
  async started(): Promise<void> {
    await this.#clusterOpened;
  }

  async #openCluster(bus: BusPublisher | undefined): Promise<void> {
    if (bus === undefined) return;
    try {
      const { ClusterPreviews } = await import('../cluster/previews.js');
      this.#cluster = await ClusterPreviews.open({
        nc: bus.connection,
        maxPoints: this.#options.maxPoints,
        log: this.#log.child({ component: 'previews' }),
      });
      if (this.#closed) await this.#cluster.close();
    } catch (error) {
      this.#log.error(
        { event: 'previews-failed', err: error },
        'previews across nodes are off: the cluster directory could not be opened',
      );
    }
  }

  /**
   * The node that ingests `stream` of the token `token` (its tenant), when this node does not and
   * the cluster directory knows it. A viewer of it is fed the previews that node publishes.
   */
  locate(token: string | undefined, stream: string): { node: string; session: string } | undefined {
    return this.#cluster?.locate(tenantOf(token), stream);
  }

  /** Previews across nodes, when there is a bus. */
  previewStats(): PreviewStats | undefined {
    return this.#cluster?.stats();
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

  /**
   * Live viewers; with `token` (auth on), only those of its streams: here, the streams it owns;
   * on other nodes, those of its tenant.
   */
  stats(token?: string): ViewerStats[] {
    const tenant = token === undefined ? undefined : tenantOf(token);
    return [...this.#viewers.values()]
      .filter((viewer) => {
        if (token === undefined) return true;
        const remote = this.#remote.get(viewer.feed);
        return remote === undefined
          ? this.#deps.streams.ownerOf(viewer.stream)?.token === token
          : remote.tenant === tenant;
      })
      .map((viewer) => viewer.stats());
  }

  /** The live viewer `id`, if any. */
  get(id: string): ViewerPeer | undefined {
    return this.#viewers.get(id);
  }

  /** Opens a viewer of `open.stream`; it is sent frames once its channel opens. */
  open(open: ViewerOpen): ViewerPeer {
    const feed =
      open.remote === undefined ? open.stream : remoteKey(open.remote.tenant, open.stream);
    const viewer = new ViewerPeer({
      id: open.id,
      stream: open.stream,
      feed,
      maxMessageBytes: open.maxMessageBytes,
      rtc: { ...this.#deps.rtc, maxMessageSize: VIEWER_MAX_MESSAGE_BYTES },
      options: this.#options,
      log: this.#log.child({ viewer: open.id, stream: open.stream }),
      release: open.release,
      hooks: this.#hooks,
    });
    this.#viewers.set(open.id, viewer);
    let watchers = this.#byStream.get(feed);
    if (watchers === undefined) this.#byStream.set(feed, (watchers = new Set()));
    watchers.add(viewer);
    if (open.remote !== undefined && !this.#remote.has(feed)) this.#watch(feed, open);
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
    const now = performance.now();
    const tenant = this.#cluster === undefined ? undefined : this.#wantedBy(frame.stream, now);
    const watchers = this.#byStream.get(frame.stream);
    if (watchers === undefined && tenant === undefined) return;
    const fields = fieldsOfFrame(frame);
    const changed = this.#fields.update(frame.stream, fields);
    if (changed !== undefined) for (const viewer of watchers ?? []) viewer.sendFields(changed);
    const wanted =
      tenant === undefined ? [] : (this.#cluster?.wantedColours(tenant, frame.stream) ?? []);
    // Encoded at most once, however many watch (here and on other nodes), with one channel per
    // colour chosen here or wanted by another node.
    const made: { prepared?: PreparedFrame } = {};
    // The only copy of the frame's points and fields: taken now, its buffers may be reused.
    const prepare = (): PreparedFrame =>
      (made.prepared ??= prepareLocalFrame(
        frame,
        this.#options.maxPoints,
        coloursOf(watchers, wanted),
      ));
    if (tenant !== undefined) {
      this.#publishedAt.set(frame.stream, now);
      const prepared = prepare();
      const channels = wanted.flatMap((name) => prepared.colours.get(name) ?? []);
      this.#cluster?.publish(
        tenant,
        frame.stream,
        withColours(prepared.frame, channels),
        this.#fields.get(frame.stream) ?? [],
      );
    }
    if (watchers === undefined) return;
    this.#deliver(watchers, prepare, now);
    // The newest frame waits for the viewers not ready for it yet; when nobody was ready and it
    // was not encoded, the cached older frame is stale: dropped so nobody is sent it.
    if (made.prepared !== undefined) this.#latest.set(frame.stream, made.prepared);
    else this.#latest.delete(frame.stream);
  }

  /**
   * Sends a new frame to the viewers ready for it (the others count a drop); `prepare` encodes it
   * the first time one is.
   */
  #deliver(watchers: Set<ViewerPeer>, prepare: () => PreparedFrame, now: number): void {
    for (const viewer of watchers) if (viewer.takesFrame(now)) viewer.sendFrame(prepare(), now);
  }

  /**
   * The tenant of a stream of this node another node wants previews of, when one is due now (at
   * most `maxFps` a second); undefined otherwise.
   */
  #wantedBy(stream: string, now: number): string | undefined {
    const owner = this.#deps.streams.ownerOf(stream);
    if (owner === undefined) return undefined;
    const tenant = tenantOf(owner.token);
    if (this.#cluster?.wants(tenant, stream) !== true) return undefined;
    const last = this.#publishedAt.get(stream);
    return last === undefined || now - last >= 1000 / this.#options.maxFps ? tenant : undefined;
  }

  /** Starts the previews of a remote stream for the first viewer of it. */
  #watch(feed: string, open: ViewerOpen): void {
    const cluster = this.#cluster;
    if (cluster === undefined || open.remote === undefined) return;
    const { tenant } = open.remote;
    const stream = open.stream;
    const deliver = (frame: EncodedViewerFrame, fields: readonly ViewerField[]): void => {
      const sessionId = cluster.locate(tenant, stream)?.session ?? '';
      const prepared = prepareRemoteFrame(sessionId, frame);
      const watchers = this.#byStream.get(feed);
      if (watchers === undefined) return;
      const changed = this.#fields.update(feed, fields);
      if (changed !== undefined) for (const viewer of watchers) viewer.sendFields(changed);
      this.#deliver(watchers, () => prepared, performance.now());
      // Ready or not, this frame is the newest: the next viewer to become ready gets it.
      this.#latest.set(feed, prepared);
    };
    // The colours its viewers here chose, asked of the ingesting node with every want.
    const colours = (): string[] => coloursOf(this.#byStream.get(feed), []);
    const watch = cluster.watch(tenant, stream, deliver, colours);
    this.#remote.set(feed, {
      tenant,
      stream,
      stop: () => watch.stop(),
      wantNow: () => watch.wantNow(),
    });
    this.#log.info(
      { event: 'previews-wanted', stream, tenant },
      `wanting previews of ${stream} from another node`,
    );
  }

  /** The tenant of the remote stream `viewer` watches; undefined for a stream of this node. */
  remoteTenantOf(viewer: ViewerPeer): string | undefined {
    return this.#remote.get(viewer.feed)?.tenant;
  }

  /** Where a viewer's frames come from (its `hello`): the stream's session, its node when remote. */
  origin(viewer: ViewerPeer): { session: string; node?: string } {
    const remote = this.#remote.get(viewer.feed);
    if (remote === undefined) return { session: this.#deps.streams.sessionOf(viewer.stream) ?? '' };
    const where = this.#cluster?.locate(remote.tenant, remote.stream);
    return { session: where?.session ?? '', ...(where ? { node: where.node } : {}) };
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
    this.#fields.delete(stream);
    this.#publishedAt.delete(stream);
    for (const viewer of this.#byStream.get(stream) ?? [])
      viewer.close(ErrorCodes.SESSION_CLOSED, 'its sender left');
  }

  /**
   * Ends every viewer with `code`: `PS_ERR_SESSION_CLOSED`, or `PS_ERR_SESSION_MOVED` after a
   * drain (the page then watches again, through the front, on another node).
   */
  async close(code: ErrorCode = ErrorCodes.SESSION_CLOSED): Promise<void> {
    this.#closed = true;
    for (const viewer of [...this.#viewers.values()]) viewer.close(code, 'server shutting down');
    await this.#cluster?.close();
    await Promise.all([...this.#teardowns]);
  }

  /** A viewer became ready (opened, or acknowledged a frame): send the cached frame if it is new to it. */
  #pump(viewer: ViewerPeer): void {
    const prepared = this.#latest.get(viewer.feed);
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
    const watchers = this.#byStream.get(viewer.feed);
    watchers?.delete(viewer);
    if (watchers?.size === 0) {
      this.#byStream.delete(viewer.feed);
      this.#latest.delete(viewer.feed);
      this.#fields.delete(viewer.feed);
      // The last viewer of a remote stream left: no more wants, unsubscribed.
      const remote = this.#remote.get(viewer.feed);
      if (remote !== undefined) {
        this.#remote.delete(viewer.feed);
        remote.stop();
        this.#log.info(
          { event: 'previews-unwanted', stream: remote.stream, tenant: remote.tenant },
          `no more viewers of ${remote.stream}: previews no longer wanted`,
        );
      }
    }
    this.#teardowns.add(teardown);
    void teardown.finally(() => this.#teardowns.delete(teardown));
  }
}

/** The feed of a remote stream: apart from any local stream's (a stream name has no `/`). */
function remoteKey(tenant: string, stream: string): string {
  return `${tenant}/${stream}`;
}
