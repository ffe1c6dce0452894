/**
 * Viewers across nodes (docs/bus.md, "Viewer previews"): previews of live streams over core NATS
 * (not JetStream), published only while another node wants them.
 *
 * - A gateway node (one with viewers of a stream it does not ingest) publishes an empty message on
 *   `ps.want.<tenant>.<stream>` every {@link WANT_INTERVAL_MS} and subscribes to
 *   `ps.preview.<tenant>.<stream>`.
 * - The ingesting node, while a want for one of its streams arrived within {@link WANT_LEASE_MS},
 *   publishes each preview (the viewer-wire frame its ViewerHub makes for local viewers: decimated,
 *   q16, at most the viewer max fps, made once per frame) on the preview subject: the 40-byte START
 *   message, then DATA messages of at most 256 KiB (or the server's `max_payload`, if smaller: a
 *   250,000-point preview is ~1.5 MB, above the 1 MB default), the messages a viewer's channel
 *   carries.
 * - The gateway reassembles them with the viewer-wire decoder (every size checked before anything
 *   is allocated, at most `maxPoints` points) and hands each complete frame to its hub, which
 *   feeds its viewers latest-only, one frame in flight. An invalid message is counted and dropped.
 * - Colours (issue 18): a want names the colours its viewers chose in a `Ps-Colours` header (its
 *   body stays empty, as older nodes expect); the ingesting node makes each wanted channel once and
 *   the preview carries them all; the START message's `Ps-Stream-Fields` header lists the
 *   stream's fields (`name:type,...`), for the gateway's colour pickers.
 *
 * Loaded only with a bus (the hub imports it dynamically): a server without one never loads NATS.
 */
import { headers } from '@nats-io/transport-node';
import type { MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node';
import { LogLimiter } from '../util/log-limit.js';
import type { Logger } from '../util/logger.js';
import { FIELD_LIMITS, FIELD_TYPE_NAMES, isFieldName } from '../wire/fields.js';
import type { FieldTypeName } from '../wire/fields.js';
import { HEIGHT, VIEWER_MAX_COLOURS, isColourName } from '../wire/viewer-colour.js';
import type { ViewerField } from '../wire/viewer-colour.js';
import {
  VIEWER_MAX_POINTS,
  VIEWER_START_MAGIC,
  ViewerReassembler,
  encodeViewerData,
  encodeViewerStart,
} from '../wire/viewer.js';
import type { EncodedViewerFrame } from '../wire/viewer.js';
import { NodeDirectory } from './directory.js';
import { WANT_INTERVAL_MS, WANT_LEASE_MS, previewSubject, wantSubject } from './protocol.js';

/** Subjects wanted at once that a node remembers at most (expired ones are pruned first). */
const MAX_WANTS = 4096;
/**
 * Largest preview message published (below the server's `max_payload` if that is smaller): a
 * frame in several messages interleaves with the node's other traffic instead of holding its
 * connection for one 1.5 MB write, and a gateway allocates nothing before a START is checked.
 */
const MAX_PREVIEW_MESSAGE_BYTES = 256 * 1024;
/** `max_payload` when the server did not say (the nats-server default). */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** A want's header: the colours its viewers chose, comma-separated (none: height only). */
export const COLOURS_HEADER = 'Ps-Colours';
/** A preview START's header: the stream's fields, `name:type` comma-separated. */
export const STREAM_FIELDS_HEADER = 'Ps-Stream-Fields';

/** A want's colours, checked as client input: undefined when the header is malformed. */
export function parseColoursHeader(value: string): string[] | undefined {
  if (value === '') return [];
  const names = value.split(',');
  if (names.length > VIEWER_MAX_COLOURS) return undefined;
  return names.every((name) => isColourName(name) && name !== HEIGHT) ? names : undefined;
}

/** A preview's field list, checked as client input: undefined when the header is malformed. */
export function parseStreamFieldsHeader(value: string): ViewerField[] | undefined {
  if (value === '') return [];
  const entries = value.split(',');
  if (entries.length > FIELD_LIMITS.maxFields) return undefined;
  const fields: ViewerField[] = [];
  for (const entry of entries) {
    const [name = '', type = '', ...rest] = entry.split(':');
    if (rest.length > 0 || !isFieldName(name) || !FIELD_TYPE_NAMES.includes(type as FieldTypeName))
      return undefined;
    if (fields.some((f) => f.name === name)) return undefined;
    fields.push({ name, type: type as FieldTypeName });
  }
  return fields;
}

/** Whether a preview message is a START (the reassembler checks the rest). */
function isStart(data: Uint8Array): boolean {
  return (
    data.length >= 4 &&
    new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true) === VIEWER_START_MAGIC
  );
}

/** The want or preview header of a list (none when it is empty). */
function headerOf(name: string, value: string): MsgHdrs | undefined {
  if (value === '') return undefined;
  const h = headers();
  h.set(name, value);
  return h;
}

/** Where a stream this node does not ingest runs. */
export interface StreamLocation {
  readonly node: string;
  readonly session: string;
}

/** Counters of {@link ClusterPreviews} (`/stats`, `viewerPreviews`). */
export interface PreviewStats {
  /** Wants received (any stream); those carrying a payload are ignored and counted as invalid. */
  readonly wantsSeen: number;
  readonly wantsInvalid: number;
  /** Streams some node wants now (any stream: a node hears every want, its own too). */
  readonly streamsWanted: number;
  /** Preview frames published, their NATS messages and bytes. */
  readonly previewsPublished: number;
  readonly previewMessagesPublished: number;
  readonly previewBytesPublished: number;
  readonly publishErrors: number;
  /** Remote streams this node wants now (it has viewers of them). */
  readonly streamsWatched: number;
  /** Preview frames received complete and valid, and messages dropped as invalid. */
  readonly previewsReceived: number;
  readonly previewMessagesInvalid: number;
}

/** What a {@link ViewerHub} asks of the cluster (src/server/viewer.ts). */
export interface ViewerCluster {
  /** Whether another node wants previews of a stream of this node now. O(1): called per frame. */
  wants(tenant: string, stream: string): boolean;
  /** The colours other nodes want in those previews (their wants of the last lease). */
  wantedColours(tenant: string, stream: string): readonly string[];
  /**
   * Publishes one preview frame of a stream of this node (with the wanted colour channels), and
   * the stream's fields. Never throws.
   */
  publish(
    tenant: string,
    stream: string,
    frame: EncodedViewerFrame,
    fields: readonly ViewerField[],
  ): void;
  /** The node that ingests `stream` of `tenant`, per the cluster directory. */
  locate(tenant: string, stream: string): StreamLocation | undefined;
  /**
   * Starts wanting previews of a remote stream, with the colours `colours()` gives at each want:
   * `deliver` gets each complete, valid one and the stream's fields.
   */
  watch(
    tenant: string,
    stream: string,
    deliver: (frame: EncodedViewerFrame, fields: readonly ViewerField[]) => void,
    colours: () => readonly string[],
  ): PreviewWatch;
  stats(): PreviewStats;
  close(): Promise<void>;
}

/** A remote stream wanted. */
export interface PreviewWatch {
  /** No more wants, unsubscribed. */
  stop(): void;
  /** Sends a want now (its viewers chose another colour). */
  wantNow(): void;
}

/** Options of {@link ClusterPreviews.open}. */
export interface ClusterPreviewsOptions {
  /** The node's NATS connection (`BusPublisher.connection`). */
  readonly nc: NatsConnection;
  /** Most points of a preview received (the hub's `maxPoints`): larger ones are invalid. */
  readonly maxPoints: number;
  readonly log: Logger;
}

/** Previews over core NATS for one node: both sides, the ingesting one and the gateway one. */
export class ClusterPreviews implements ViewerCluster {
  readonly #nc: NatsConnection;
  readonly #directory: NodeDirectory;
  readonly #maxPoints: number;
  readonly #log: Logger;
  readonly #logLimit = new LogLimiter(5, 10_000);
  /** Want subject -> when the last want on it arrived (performance.now()). */
  readonly #wants = new Map<string, number>();
  /** Want subject -> colour -> when a want last asked for it. */
  readonly #colours = new Map<string, Map<string, number>>();
  readonly #wantSub: Subscription;
  readonly #watches = new Set<() => void>();
  #wantsSeen = 0;
  #wantsInvalid = 0;
  #published = 0;
  #messagesPublished = 0;
  #bytesPublished = 0;
  #publishErrors = 0;
  #received = 0;
  #invalid = 0;

  private constructor(options: ClusterPreviewsOptions, directory: NodeDirectory) {
    this.#nc = options.nc;
    this.#directory = directory;
    this.#maxPoints = Math.min(options.maxPoints, VIEWER_MAX_POINTS);
    this.#log = options.log;
    this.#wantSub = this.#nc.subscribe('ps.want.>', {
      callback: (error, message) => {
        if (error !== null) return;
        this.#wantsSeen++;
        const colours = parseColoursHeader(message.headers?.get(COLOURS_HEADER) ?? '');
        if (message.data.length > 0 || colours === undefined) {
          this.#wantsInvalid++;
          return;
        }
        this.#want(message.subject, colours);
      },
    });
  }

  /** Opens the cluster directory and listens for wants. */
  static async open(options: ClusterPreviewsOptions): Promise<ClusterPreviews> {
    const directory = await NodeDirectory.open(options.nc, {
      log: options.log.child({ component: 'directory' }),
    });
    return new ClusterPreviews(options, directory);
  }

  wants(tenant: string, stream: string): boolean {
    const at = this.#wants.get(wantSubject(tenant, stream));
    return at !== undefined && performance.now() - at <= WANT_LEASE_MS;
  }

  wantedColours(tenant: string, stream: string): readonly string[] {
    const colours = this.#colours.get(wantSubject(tenant, stream));
    if (colours === undefined) return [];
    const now = performance.now();
    const live: string[] = [];
    for (const [name, at] of colours)
      if (now - at <= WANT_LEASE_MS) live.push(name);
      else colours.delete(name);
    return live;
  }

  publish(
    tenant: string,
    stream: string,
    frame: EncodedViewerFrame,
    fields: readonly ViewerField[],
  ): void {
    const subject = previewSubject(tenant, stream);
    const maxPayload = Math.min(
      this.#nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD,
      MAX_PREVIEW_MESSAGE_BYTES,
    );
    try {
      const messages = [encodeViewerStart(frame, 0), ...encodeViewerData(frame, maxPayload)];
      const list = fields.map((f) => `${f.name}:${f.type}`).join(',');
      const startHeaders = headerOf(STREAM_FIELDS_HEADER, list);
      messages.forEach((message, i) => {
        this.#nc.publish(
          subject,
          message,
          i === 0 && startHeaders ? { headers: startHeaders } : {},
        );
        this.#bytesPublished += message.length;
      });
      this.#messagesPublished += messages.length;
      this.#published++;
    } catch (error) {
      // Closed or reconnecting: previews are best effort, the viewers just miss this one.
      this.#publishErrors++;
      this.#warn({ event: 'preview-publish-failed', stream, err: error }, 'preview not published');
    }
  }

  locate(tenant: string, stream: string): StreamLocation | undefined {
    const entry = this.#directory.nodeOfStream(tenant, stream);
    if (entry === undefined) return undefined;
    const live = entry.heartbeat.streams.find((s) => s.tenant === tenant && s.stream === stream);
    return { node: entry.heartbeat.id, session: live?.session ?? '' };
  }

  watch(
    tenant: string,
    stream: string,
    deliver: (frame: EncodedViewerFrame, fields: readonly ViewerField[]) => void,
    colours: () => readonly string[],
  ): PreviewWatch {
    const reassembler = new ViewerReassembler(this.#maxPoints);
    // The fields the START of the preview being received listed.
    const state = { fields: [] as readonly ViewerField[] };
    const subscription = this.#nc.subscribe(previewSubject(tenant, stream), {
      callback: (error, message) => {
        if (error === null)
          this.#preview(reassembler, message.data, message.headers, state, stream, deliver);
      },
    });
    const want = wantSubject(tenant, stream);
    const sendWant = (): void => {
      try {
        const h = headerOf(COLOURS_HEADER, colours().join(','));
        this.#nc.publish(want, undefined, h === undefined ? {} : { headers: h });
      } catch {
        // Reconnecting or closed: the next interval tries again.
      }
    };
    sendWant();
    const timer = setInterval(sendWant, WANT_INTERVAL_MS);
    timer.unref();
    const stop = (): void => {
      if (!this.#watches.delete(stop)) return;
      clearInterval(timer);
      try {
        subscription.unsubscribe();
      } catch {
        // The connection is closed: so is the subscription.
      }
    };
    this.#watches.add(stop);
    return { stop, wantNow: sendWant };
  }

  stats(): PreviewStats {
    const now = performance.now();
    let streamsWanted = 0;
    for (const at of this.#wants.values()) if (now - at <= WANT_LEASE_MS) streamsWanted++;
    return {
      wantsSeen: this.#wantsSeen,
      wantsInvalid: this.#wantsInvalid,
      streamsWanted,
      previewsPublished: this.#published,
      previewMessagesPublished: this.#messagesPublished,
      previewBytesPublished: this.#bytesPublished,
      publishErrors: this.#publishErrors,
      streamsWatched: this.#watches.size,
      previewsReceived: this.#received,
      previewMessagesInvalid: this.#invalid,
    };
  }

  /** Stops every watch and want; the connection itself is the bus publisher's. */
  async close(): Promise<void> {
    for (const stop of [...this.#watches]) stop();
    try {
      this.#wantSub.unsubscribe();
    } catch {
      // Already closed with the connection.
    }
    this.#directory.close();
    this.#wants.clear();
    this.#colours.clear();
    return Promise.resolve();
  }

  #want(subject: string, colours: readonly string[]): void {
    const now = performance.now();
    if (this.#wants.size >= MAX_WANTS && !this.#wants.has(subject)) {
      for (const [key, at] of this.#wants)
        if (now - at > WANT_LEASE_MS) {
          this.#wants.delete(key);
          this.#colours.delete(key);
        }
      // Still full of live wants: the oldest one gives way.
      if (this.#wants.size >= MAX_WANTS) {
        const oldest = this.#wants.keys().next().value;
        if (oldest !== undefined) {
          this.#wants.delete(oldest);
          this.#colours.delete(oldest);
        }
      }
    }
    // Re-inserted, so the map stays in arrival order (oldest first).
    this.#wants.delete(subject);
    this.#wants.set(subject, now);
    if (colours.length === 0) return;
    let wanted = this.#colours.get(subject);
    if (wanted === undefined) this.#colours.set(subject, (wanted = new Map<string, number>()));
    for (const name of colours) {
      // Several gateways may want different colours: at most the frame's channels are kept.
      if (!wanted.has(name) && wanted.size >= VIEWER_MAX_COLOURS) continue;
      wanted.set(name, now);
    }
  }

  /** One message of a preview: checked as client input, never trusted. */
  #preview(
    reassembler: ViewerReassembler,
    data: Uint8Array,
    header: MsgHdrs | undefined,
    state: { fields: readonly ViewerField[] },
    stream: string,
    deliver: (frame: EncodedViewerFrame, fields: readonly ViewerField[]) => void,
  ): void {
    if (isStart(data)) {
      const fields = parseStreamFieldsHeader(header?.get(STREAM_FIELDS_HEADER) ?? '');
      if (fields === undefined) {
        // Not passed on: its DATA messages then find no frame and are counted as invalid too.
        this.#invalid++;
        this.#warn({ event: 'preview-invalid', stream }, `a preview of ${stream} lists bad fields`);
        return;
      }
      state.fields = fields;
    }
    let frame;
    try {
      frame = reassembler.push(data);
    } catch (error) {
      this.#invalid++;
      this.#warn(
        { event: 'preview-invalid', stream, err: error },
        `dropped an invalid preview message of stream ${stream}`,
      );
      // A lost message (core NATS) leaves a frame incomplete: a new START begins afresh.
      try {
        frame = reassembler.receiving ? undefined : reassembler.push(data);
      } catch {
        return;
      }
    }
    if (frame === undefined) return;
    this.#received++;
    deliver(
      {
        seq: frame.seq,
        pointCount: frame.pointCount,
        sourcePointCount: frame.sourcePointCount,
        captureTime: frame.captureTime,
        encoding: frame.encoding,
        payload: frame.payload,
        colours: frame.colours.map((c) => ({
          name: c.name,
          kind: c.kind,
          min: c.min,
          max: c.max,
          bytes: new Uint8Array(c.values.buffer, c.values.byteOffset, c.values.byteLength),
        })),
      },
      state.fields,
    );
  }

  #warn(fields: Record<string, unknown>, message: string): void {
    const suppressed = this.#logLimit.take();
    if (suppressed !== undefined) this.#log.warn({ ...fields, suppressed }, message);
  }
}
