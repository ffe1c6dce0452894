/**
 * `consume()`: frames from the bus (docs/bus.md), reassembled, checked (headers, parts, CRC-32)
 * and decoded to float32, as an async iterable:
 *
 *     for await (const frame of consume({ bus: 'nats://127.0.0.1:4222', stream: 'cam-1' })) …
 *
 * Every frame: a durable pull consumer with explicit acks. A frame's chunks are acknowledged when
 * the reader is done with it (`frame.ack()`, or at the latest when it asks for the next frame), so
 * a consumer that stops and starts again under the same durable name resumes after the last
 * frame it finished: nothing lost, nothing repeated. The next expected `Ps-Index` of each session
 * is kept in the KV bucket `ps_consume` (`<durable>.<session>`), so that gaps across a restart are
 * counted exactly too. `latest`: an ordered consumer from "now" that hands out only the newest
 * complete frame of each stream; older complete frames a slow reader did not take are counted
 * `framesSkipped`.
 *
 * Nothing is hidden: gaps in a session's `Ps-Index` count as `framesMissed`, frames whose parts
 * stopped as `framesIncomplete` (never delivered), malformed or hostile messages and frames whose
 * CRC or decoding fails as `messagesInvalid` (dropped and acknowledged, so they do not return).
 */
import { crc32 } from 'node:zlib';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { Consumer as JsConsumer, JsMsg, JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { KV } from '@nats-io/kv';
import { ErrorCodes, PointstreamError } from '../errors.js';
import { decodeFields } from '../wire/encodings/fields.js';
import { PointEncodingId, decodePoints } from '../wire/encodings/index.js';
import type { PointEncodingName } from '../wire/encodings/index.js';
import { NO_FIELDS } from '../wire/fields.js';
import type { FieldTable, PointFields } from '../wire/fields.js';
import { parseNpyHeader, pointCountOfNpyHeader } from '../wire/npy.js';
import { float32View } from '../wire/points.js';
import {
  DEFAULT_BUS_CHUNK_LIMITS,
  DEFAULT_BUS_STREAM,
  FRAME_SUBJECT_PREFIX,
  frameSubjectFilter,
  isNodeId,
  readChunkHeaders,
  subjectTokenOf,
} from './layout.js';
import type { BusChunkLimits, BusEncoding } from './layout.js';
import { BusReassembly } from './reassembly.js';
import type { BusReassemblyLimits, CompletedBusFrame } from './reassembly.js';

/** Options of {@link consume}. */
export interface ConsumeOptions {
  /** The NATS server, `nats://HOST:PORT` (several: comma-separated). */
  readonly bus: string;
  /** The stream (`send --stream`) to read; undefined: every stream. */
  readonly stream?: string;
  /**
   * Durable consumer name (`[A-Za-z0-9_-]`, at most 64): the position that a restart resumes
   * from. Default `ps-consume-<stream>` (or `ps-consume-all`). One process per name: two readers
   * of one durable would split frames' chunks between them.
   */
  readonly durable?: string;
  /** Only the newest complete frame of each stream, from now on (dashboards). Default false. */
  readonly latest?: boolean;
  /** The JetStream stream. Default `PS_FRAMES`. */
  readonly streamName?: string;
  /** What a chunk may claim (checked before anything is allocated). */
  readonly limits?: Partial<BusChunkLimits>;
  /** Frames in assembly, their bytes, the stall timeout. */
  readonly reassembly?: Partial<BusReassemblyLimits>;
  /** Time to reach the bus at start. Default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** Ends the iteration (as `close()`). */
  readonly signal?: AbortSignal;
}

/** A frame from the bus, verified and decoded; its fields match the server's `ReceivedFrame`. */
export interface ConsumedFrame {
  readonly stream: string;
  readonly tenant: string;
  readonly session: string;
  /** Same as `session` (the name `FrameRecorder` and `ReceivedFrame` use). */
  readonly sessionId: string;
  /** When the session started on its node (ms since the Unix epoch). */
  readonly sessionStart: number;
  readonly node: string;
  /** The client's frame number. */
  readonly seq: number;
  /** The session's published-frame count before this frame (`Ps-Index`). */
  readonly index: number;
  readonly pointCount: number;
  /** x, y, z interleaved float32 (a view over `npy` for raw frames). */
  readonly points: Float32Array;
  /** `raw` for `.npy` payloads. */
  readonly encoding: PointEncodingName;
  /** Bus frames were carried by `pointstream/1` chunks (recordings say so). */
  readonly form: 'chunked';
  /** The `.npy` file as published (raw frames; with fields, the payload's points part). */
  readonly npy: Uint8Array | undefined;
  /** The encoded points as published (q16, qrice; with fields, the payload's points part). */
  readonly encoded: Uint8Array | undefined;
  /**
   * Per-point fields by name, in their wire order; `NO_FIELDS` when the frame has none. Raw
   * columns are views into `payload`, coded ones decoded.
   */
  readonly fields: PointFields;
  /** The frame's field table (`Ps-Fields`), when it has fields. */
  readonly fieldTable: FieldTable | undefined;
  /** With fields, the whole payload as published (points part, then the columns); else undefined. */
  readonly payload: Uint8Array | undefined;
  /** Bytes of the whole payload. */
  readonly byteLength: number;
  /** CRC-32 of the payload, verified. */
  readonly crc32: number;
  readonly captureTime: number | undefined;
  /** The ingest node's clock when it verified the frame. */
  readonly receivedAt: number;
  /** This consumer's clock when the frame was complete and verified. */
  readonly consumedAt: number;
  /** From its first part's arrival here to its verification, ms. */
  readonly assemblyMs: number;
  /**
   * Acknowledges the frame's chunks on the bus (once; later calls do nothing): a durable consumer
   * that restarts resumes after it. Called at the latest when the reader asks for the next frame,
   * so `for await` acknowledges each frame once its body has run. Nothing in `latest` mode.
   */
  ack(): void;
  /** The buffers are the frame's own: does nothing (for `FrameRecorder`). */
  retain(): () => void;
}

/** Counters of a {@link Consumer}. */
export interface ConsumerStats {
  readonly connected: boolean;
  readonly framesDelivered: number;
  readonly bytesDelivered: number;
  /** Frames never seen: gaps in a session's `Ps-Index` (expired, or their publish failed). */
  readonly framesMissed: number;
  /** Frames whose parts stopped: never delivered. */
  readonly framesIncomplete: number;
  /** Complete frames dropped for a newer one of their stream (`latest`). */
  readonly framesSkipped: number;
  /** Malformed messages and frames whose CRC or decoding failed: dropped and acknowledged. */
  readonly messagesInvalid: number;
  /** Parts received again (already held, or of frames already delivered): skipped. */
  readonly duplicates: number;
  /** Parts of frames already given up, or that disagree with their frame: dropped. */
  readonly messagesDropped: number;
  readonly framesInAssembly: number;
  readonly bytesInAssembly: number;
  /** Complete frames waiting for the reader. */
  readonly framesQueued: number;
  /** The last invalid message's reason, or the last bus error. */
  readonly lastError: string | undefined;
}

/** Chunks the server lets a durable consumer hold unacknowledged: bounds memory (128 MiB at 1 MiB chunks). */
const MAX_ACK_PENDING = 128;
const ACK_WAIT_MS = 30_000;
const POSITIONS_BUCKET = 'ps_consume';
const POSITIONS_TTL_MS = 24 * 3600 * 1000;
const SWEEP_MS = 1000;
/** Frames a durable consumer keeps waiting for the reader before it stops fetching. */
const MAX_QUEUED_FRAMES = 64;
const FETCH_MESSAGES = 64;
const FETCH_EXPIRES_MS = 2000;
/**
 * Messages given back at close are redelivered after this long, once this connection is gone:
 * at once, the server would hand them to this connection's own pull request again (its reply
 * subject stays of interest until the connection closes), and they would wait for the ack wait.
 */
const NAK_DELAY_MS = 300;
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Reads frames from the bus (see the module's comment); returns at once, connecting in the background. */
export function consume(options: ConsumeOptions): Consumer {
  return new Consumer(options);
}

interface Queued {
  readonly frame: ConsumedFrame;
  readonly handles: readonly JsMsg[];
  readonly state: { acked: boolean };
}

export class Consumer implements AsyncIterable<ConsumedFrame> {
  readonly #options: ConsumeOptions;
  readonly #latest: boolean;
  readonly #durable: string;
  readonly #streamName: string;
  readonly #chunkLimits: BusChunkLimits;
  readonly #reassembly: BusReassembly<JsMsg>;
  readonly #ready: Promise<void>;
  readonly #queue: Queued[] = [];
  #waiter: ((result: IteratorResult<ConsumedFrame>) => void) | undefined;
  #current: Queued | undefined;
  #nc: NatsConnection | undefined;
  #positions: KV | undefined;
  readonly #saved = new Map<string, number>();
  #sweep: ReturnType<typeof setInterval> | undefined;
  /** Wakes the fetch loop when the reader took a frame. */
  #room: (() => void) | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  #failure: Error | undefined;
  #connected = false;
  #framesDelivered = 0;
  #bytesDelivered = 0;
  #framesSkipped = 0;
  #messagesInvalid = 0;
  #lastError: string | undefined;

  constructor(options: ConsumeOptions) {
    if (typeof options.bus !== 'string' || options.bus.length === 0)
      throw new TypeError('bus must be a nats:// URL');
    const stream = options.stream;
    if (options.durable !== undefined && !NAME.test(options.durable))
      throw new RangeError(`durable must match ${String(NAME)}, not ${options.durable}`);
    this.#options = options;
    this.#latest = options.latest === true;
    this.#durable =
      options.durable ??
      `ps-consume-${stream === undefined ? 'all' : subjectTokenOf(stream).replaceAll('~', '_')}`.slice(
        0,
        64,
      );
    this.#streamName = options.streamName ?? DEFAULT_BUS_STREAM;
    this.#chunkLimits = { ...DEFAULT_BUS_CHUNK_LIMITS, ...options.limits };
    this.#reassembly = new BusReassembly<JsMsg>({
      limits: options.reassembly,
      countFromStart: !this.#latest,
      checksum: crc32,
    });
    this.#ready = this.#start();
    // A failed start ends the iteration with its error; ready() reports it too.
    this.#ready.catch((error: unknown) => this.#fail(error as Error));
    if (options.signal !== undefined) {
      if (options.signal.aborted) void this.close();
      else options.signal.addEventListener('abort', () => void this.close(), { once: true });
    }
  }

  /** Resolves once connected and reading; rejects `PS_ERR_BUS_UNAVAILABLE` (or `PS_ERR_BUS_STREAM_MISMATCH`). */
  ready(): Promise<void> {
    return this.#ready;
  }

  stats(): ConsumerStats {
    const reassembly = this.#reassembly.stats();
    return {
      connected: this.#connected,
      framesDelivered: this.#framesDelivered,
      bytesDelivered: this.#bytesDelivered,
      framesMissed: reassembly.framesMissed,
      framesIncomplete: reassembly.framesIncomplete,
      framesSkipped: this.#framesSkipped,
      messagesInvalid: this.#messagesInvalid + reassembly.framesCorrupt,
      duplicates: reassembly.duplicates,
      messagesDropped: reassembly.messagesDropped,
      framesInAssembly: reassembly.framesInAssembly,
      bytesInAssembly: reassembly.bytesInAssembly,
      framesQueued: this.#queue.length,
      lastError: this.#lastError,
    };
  }

  [Symbol.asyncIterator](): AsyncIterator<ConsumedFrame> {
    return {
      next: () => this.next(),
      return: async () => {
        // `break` out of `for await`: the body ran for the current frame.
        this.#current?.frame.ack();
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  /** The next frame; acknowledges the previous one first. */
  next(): Promise<IteratorResult<ConsumedFrame>> {
    this.#current?.frame.ack();
    this.#current = undefined;
    const queued = this.#queue.shift();
    if (queued !== undefined) {
      const room = this.#room;
      this.#room = undefined;
      room?.();
      return Promise.resolve(this.#hand(queued));
    }
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.resolve({ done: true, value: undefined });
    if (this.#waiter !== undefined) return Promise.reject(new Error('next() called concurrently'));
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  /**
   * Stops reading. Frames not yet acknowledged (in assembly, queued, or handed out without
   * `ack()`) are given back to the bus (nak), so a durable consumer gets them again at once.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    await this.#ready.catch(() => undefined);
    // Not messages.close(): it would drop what the client has buffered, unacknowledged, so that
    // it waited for the ack wait (30 s). Draining the connection hands those to #onMessage, which
    // gives them back too.
    if (!this.#latest) {
      const handles = [
        ...(this.#current?.handles ?? []),
        ...this.#queue.flatMap((queued) => queued.handles),
        ...this.#reassembly.clear(),
      ];
      for (const handle of handles) handle.nak(NAK_DELAY_MS);
    }
    this.#current = undefined;
    this.#queue.length = 0;
    this.#room?.();
    await this.#nc?.drain().catch(() => this.#nc?.close());
    this.#connected = false;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.({ done: true, value: undefined });
  }

  #fail(error: Error): void {
    this.#failure = error;
    this.#lastError = error.message;
    void this.close();
  }

  #hand(queued: Queued): IteratorResult<ConsumedFrame> {
    this.#current = queued;
    this.#framesDelivered++;
    this.#bytesDelivered += queued.frame.byteLength;
    return { done: false, value: queued.frame };
  }

  async #start(): Promise<void> {
    const timeout = this.#options.connectTimeoutMs ?? 5000;
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: this.#options.bus.split(','),
        name: 'pointstream-consume',
        timeout,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
      });
    } catch (cause) {
      throw unavailable(`cannot reach the bus at ${this.#options.bus}: ${message(cause)}`, cause);
    }
    this.#nc = nc;
    if (this.#closed) return;
    this.#connected = true;
    void this.#watchStatus(nc);
    let jsm: JetStreamManager;
    try {
      jsm = await jetstreamManager(nc, { timeout });
    } catch (cause) {
      throw unavailable(`no JetStream at ${this.#options.bus}: ${message(cause)}`, cause);
    }
    await this.#checkStream(jsm);
    const filter = frameSubjectFilter(this.#options.stream);
    const js = jetstream(nc, { timeout });
    if (this.#latest) {
      const consumer = await js.consumers.get(this.#streamName, {
        filter_subjects: filter,
        deliver_policy: DeliverPolicy.New,
      });
      await this.#read(consumer);
    } else {
      const existing = await jsm.consumers.info(this.#streamName, this.#durable).catch(() => null);
      if (existing === null) {
        await jsm.consumers.add(this.#streamName, {
          durable_name: this.#durable,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          filter_subject: filter,
          max_ack_pending: MAX_ACK_PENDING,
          ack_wait: ACK_WAIT_MS * 1_000_000,
        });
      } else if (existing.config.filter_subject !== filter) {
        throw new PointstreamError(
          ErrorCodes.BUS_STREAM_MISMATCH,
          `durable consumer ${this.#durable} reads ${String(existing.config.filter_subject)}, not ${filter}: choose another --durable`,
        );
      }
      this.#positions = await new Kvm(nc).create(POSITIONS_BUCKET, {
        history: 1,
        ttl: POSITIONS_TTL_MS,
      });
      // Positions of a durable that existed: its sessions' gaps across the restart count exactly.
      const resume = existing === null ? new Map<string, number>() : await this.#loadPositions();
      this.#reassembly.resume(resume);
      const consumer = await js.consumers.get(this.#streamName, this.#durable);
      if (this.#closed) return;
      void this.#pull(consumer);
    }
    this.#sweep = setInterval(() => {
      const now = Date.now();
      // Frames wait for the reader, unacknowledged: the server holds further parts back
      // (max_ack_pending), so a frame in assembly has not stalled.
      if (!this.#latest && (this.#queue.length > 0 || this.#current?.state.acked === false))
        this.#reassembly.refresh(now);
      for (const handle of this.#reassembly.expire(now)) this.#release(handle);
    }, SWEEP_MS);
    this.#sweep.unref();
  }

  async #read(consumer: JsConsumer): Promise<void> {
    const messages = await consumer.consume({
      max_messages: 64,
      callback: (m) => this.#onMessage(m),
    });
    void messages.closed().then((error) => {
      if (this.#closed) return;
      const reason = error instanceof Error ? error.message : 'its consumer is gone';
      this.#fail(unavailable(`the bus stopped delivering: ${reason}`, error));
    });
  }

  /**
   * Every frame: fetches only while fewer than {@link MAX_QUEUED_FRAMES} frames wait for the
   * reader, so a slow reader leaves the rest on the bus (where the stream's limits may drop them:
   * counted missed) instead of in memory. The server's max_ack_pending alone does not bound it:
   * messages the stream drops no longer count as pending.
   */
  async #pull(consumer: JsConsumer): Promise<void> {
    while (!this.#closed) {
      const room = MAX_QUEUED_FRAMES - this.#queue.length;
      if (room <= 0) {
        await new Promise<void>((resolve) => (this.#room = resolve));
        continue;
      }
      try {
        const batch = await consumer.fetch({
          max_messages: Math.min(FETCH_MESSAGES, room),
          expires: FETCH_EXPIRES_MS,
        });
        for await (const m of batch) this.#onMessage(m);
      } catch (error) {
        if (this.#closed) return;
        // Bus lost or consumer gone: the connection reconnects by itself; try again.
        this.#lastError = message(error);
        await new Promise((resolve) => setTimeout(resolve, 500).unref());
      }
    }
  }

  async #checkStream(jsm: JetStreamManager): Promise<void> {
    let subjects: string[];
    try {
      subjects = (await jsm.streams.info(this.#streamName)).config.subjects ?? [];
    } catch (cause) {
      throw unavailable(
        `no JetStream stream ${this.#streamName} on the bus (serve --bus creates it): ${message(cause)}`,
        cause,
      );
    }
    if (!subjects.includes(`${FRAME_SUBJECT_PREFIX}.>`)) {
      throw new PointstreamError(
        ErrorCodes.BUS_STREAM_MISMATCH,
        `stream ${this.#streamName} holds ${JSON.stringify(subjects)}, not ${FRAME_SUBJECT_PREFIX}.>`,
      );
    }
  }

  async #loadPositions(): Promise<Map<string, number>> {
    const positions = new Map<string, number>();
    const kv = this.#positions;
    if (kv === undefined) return positions;
    const prefix = `${this.#durable}.`;
    for await (const key of await kv.keys(`${prefix}>`)) {
      const entry = await kv.get(key);
      const value = Number(entry?.string());
      if (entry !== null && Number.isSafeInteger(value) && value >= 0)
        positions.set(key.slice(prefix.length), value);
    }
    return positions;
  }

  async #watchStatus(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') this.#connected = false;
      else if (status.type === 'reconnect') this.#connected = true;
      else if (status.type === 'error') this.#lastError = message(status.error);
    }
  }

  #onMessage(m: JsMsg): void {
    if (this.#closed) {
      // Arrived while closing: back to the bus at once rather than after the ack wait.
      if (!this.#latest) m.nak(NAK_DELAY_MS);
      return;
    }
    let chunk;
    try {
      chunk = readChunkHeaders(
        (name) => {
          const value = m.headers?.get(name);
          return value === undefined || value === '' ? undefined : value;
        },
        m.data.length,
        this.#chunkLimits,
      );
      // ps.frames.<tenant>.<stream>: the subject must name the stream the headers name.
      const tokens = m.subject.split('.');
      if (tokens.length !== 4 || !isNodeId(tokens[2]) || tokens[3] !== subjectTokenOf(chunk.stream))
        throw new PointstreamError(
          ErrorCodes.BUS_MESSAGE_INVALID,
          `subject ${m.subject.slice(0, 100)} does not carry stream ${chunk.stream}`,
        );
    } catch (error) {
      this.#invalid(error);
      this.#release(m);
      return;
    }
    const result = this.#reassembly.push(chunk, m.data, m, Date.now());
    for (const handle of result.release) this.#release(handle);
    if (result.frame !== undefined) this.#complete(result.frame, m.subject.split('.')[2] ?? '');
  }

  #invalid(error: unknown): void {
    this.#messagesInvalid++;
    this.#lastError = message(error);
  }

  #release(handle: JsMsg): void {
    if (!this.#latest) handle.ack();
  }

  #complete(done: CompletedBusFrame<JsMsg>, tenant: string): void {
    const { meta, payload, handles } = done;
    const table = meta.fieldTable;
    // With fields, the points part is what a frame without fields carries whole.
    const part = table === undefined ? payload : payload.subarray(0, table.pointsBytes);
    let points: Float32Array;
    let fields = NO_FIELDS;
    try {
      points = decode(part, meta.encoding, meta.points, this.#chunkLimits.maxPoints);
      if (table !== undefined) fields = decodeFields(payload, table, meta.points);
    } catch (error) {
      this.#invalid(error);
      for (const handle of handles) this.#release(handle);
      return;
    }
    const now = Date.now();
    const state = { acked: false };
    const frame: ConsumedFrame = {
      stream: meta.stream,
      tenant,
      session: meta.session,
      sessionId: meta.session,
      sessionStart: meta.sessionStart,
      node: meta.node,
      seq: meta.seq,
      index: meta.index,
      pointCount: meta.points,
      points,
      encoding: meta.encoding === 'npy' ? 'raw' : meta.encoding,
      form: 'chunked',
      npy: meta.encoding === 'npy' ? part : undefined,
      encoded: meta.encoding === 'npy' ? undefined : part,
      fields,
      fieldTable: table,
      payload: table === undefined ? undefined : payload,
      byteLength: payload.byteLength,
      crc32: meta.crc32,
      captureTime: meta.captureTime,
      receivedAt: meta.receivedAt,
      consumedAt: now,
      assemblyMs: now - done.firstPartAt,
      ack: () => {
        if (state.acked || this.#latest) return;
        state.acked = true;
        for (const handle of handles) handle.ack();
        this.#savePosition(meta.session, meta.index + 1);
      },
      retain: () => () => undefined,
    };
    const queued: Queued = { frame, handles, state };
    if (this.#latest) {
      // Only the newest complete frame of each stream waits for the reader.
      const older = this.#queue.findIndex((q) => q.frame.stream === frame.stream);
      if (older >= 0) {
        this.#queue.splice(older, 1);
        this.#framesSkipped++;
      }
    }
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      waiter(this.#hand(queued));
    } else this.#queue.push(queued);
  }

  #savePosition(session: string, next: number): void {
    const kv = this.#positions;
    // Frames may be acknowledged out of order (a redelivered one late): positions only grow.
    if (kv === undefined || (this.#saved.get(session) ?? -1) >= next) return;
    if (this.#saved.size >= 10_000) this.#saved.clear();
    this.#saved.set(session, next);
    kv.put(`${this.#durable}.${session}`, String(next)).catch((error: unknown) => {
      this.#lastError = `cannot save the position of session ${session}: ${message(error)}`;
    });
  }
}

/** A points part as float32 points: a view over a `.npy` (checked against the count), or decoded. */
function decode(
  payload: Uint8Array,
  encoding: BusEncoding,
  points: number,
  maxPoints: number,
): Float32Array {
  if (encoding !== 'npy')
    return decodePoints(payload, PointEncodingId[encoding === 'q16' ? 'Q16' : 'QRICE'], points, {
      maxPoints,
    });
  const header = parseNpyHeader(payload);
  const rows = pointCountOfNpyHeader(header);
  if (rows !== points || payload.length !== header.dataOffset + rows * 12) {
    throw new PointstreamError(
      ErrorCodes.BUS_MESSAGE_INVALID,
      `.npy of ${payload.length} bytes with ${rows} rows does not hold the ${points} points its headers say`,
    );
  }
  return float32View(payload, header.dataOffset, rows * 3);
}

function unavailable(text: string, cause: unknown): PointstreamError {
  return new PointstreamError(ErrorCodes.BUS_UNAVAILABLE, text, { cause });
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
