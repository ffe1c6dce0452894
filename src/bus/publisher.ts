/**
 * The bus publisher of an ingest node (`serve --bus`): every verified frame goes to NATS JetStream
 * as received, in {@link BUS_CHUNK_BYTES} chunks with the headers of the bus layout (layout.ts,
 * docs/bus.md), and {@link BusSession.publish} resolves only once JetStream has acknowledged every
 * chunk (PubAck). The server's receipt waits for it: `ok: true` means the frame is on the bus.
 */
import { hostname } from 'node:os';
import { crc32 } from 'node:zlib';
import {
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import type { JetStreamClient, PubAck, StreamConfig } from '@nats-io/jetstream';
import { connect, headers } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { ErrorCodes, PointstreamError } from '../errors.js';
import { silentLogger } from '../util/logger.js';
import type { Logger } from '../util/logger.js';
import type { PointEncodingName } from '../wire/encodings/index.js';
import type { FieldTable } from '../wire/fields.js';
import { encodeNpyHeader } from '../wire/npy.js';
import {
  BUS_CHUNK_BYTES,
  chunkHeaders,
  frameSubject,
  headerBlockBytes,
  partRange,
  partsOf,
} from './layout.js';
import type { BusEncoding, BusFrameMeta } from './layout.js';
import {
  BUS_HEADER_ALLOWANCE,
  BUS_MAX_MESSAGE_BYTES,
  busStreamConfig,
  redactUrl,
  resolveBusOptions,
  streamMismatches,
} from './stream-config.js';
import type { BusOptions, ResolvedBusOptions } from './stream-config.js';

export { DEFAULT_BUS_OPTIONS, nodeIdOf } from './stream-config.js';
export type { BusOptions, ResolvedBusOptions } from './stream-config.js';

/** Reconnect attempts never stop; the wait between them is bounded (plus up to 100 ms jitter). */
const RECONNECT_WAIT_MS = 500;
/** Time the first connection (and the stream check) may take before start-up fails. */
const CONNECT_TIMEOUT_MS = 5_000;
/** A server that answers no ping for 2 x 5 s is taken as lost (a dead TCP peer sends no reset). */
const PING_INTERVAL_MS = 5_000;

/** What the publisher reads of a verified frame (a `ReceivedFrame` is one). */
export interface BusFrame {
  readonly seq: number;
  readonly pointCount: number;
  readonly points: Float32Array;
  readonly encoding: PointEncodingName;
  /** The `.npy` file as received (raw frames), else undefined. */
  readonly npy: Uint8Array | undefined;
  /** The encoded payload as received (q16, qrice), else undefined. */
  readonly encoded: Uint8Array | undefined;
  /** The client's CRC-32 of the payload (verified); undefined for plain frames. */
  readonly crc32: number | undefined;
  readonly captureTime: number | undefined;
  readonly receivedAt: number;
  /** The field table of a frame with fields (`Ps-Fields`); undefined without. */
  readonly fieldTable?: FieldTable | undefined;
  /**
   * With fields, the whole payload: points part (`npy` or `encoded`) and columns, as the
   * protocol lays them out; this is what goes on the bus, and `crc32` covers it.
   */
  readonly payload?: Uint8Array | undefined;
}

/** Who a session's frames are from: what every chunk of them carries besides the frame itself. */
export interface BusSessionInfo {
  readonly session: string;
  readonly stream: string;
  /** `tenantOf(tokenId)`: `public` without auth. */
  readonly tenant: string;
  /** When the session started (ms since the Unix epoch), as its recording folder is named. */
  readonly sessionStart: number;
}

/** What `/stats` reports of the bus (`bus`). */
export interface BusStats {
  /** Whether the connection to NATS is up now. */
  readonly connected: boolean;
  /** The JetStream stream frames go to. */
  readonly stream: string;
  /** This node's id (`Ps-Node`). */
  readonly node: string;
  /** Frames whose every chunk JetStream acknowledged. */
  readonly framesPublished: number;
  /** Frames the bus did not confirm (their receipts said `PS_ERR_BUS_UNAVAILABLE`). */
  readonly framesFailed: number;
  /** Payload bytes of published frames. */
  readonly bytesPublished: number;
  /** Chunks sent and not yet acknowledged. */
  readonly pendingAcks: number;
  /** Why the last frame failed, or the connection was lost; undefined while nothing failed. */
  readonly lastError: string | undefined;
}

/** The payload of a frame as it goes on the bus. */
interface BusPayload {
  readonly bytes: Uint8Array;
  readonly crc32: number;
  readonly encoding: BusEncoding;
  readonly fieldTable: FieldTable | undefined;
}

const unavailable = (message: string, cause?: unknown): PointstreamError =>
  new PointstreamError(ErrorCodes.BUS_UNAVAILABLE, message, { cause });

/**
 * The frame's payload as received: the `.npy` file (raw), the encoded bytes (q16, qrice), and
 * with fields the whole payload (points part and columns) with its table. A plain raw frame (bare
 * float32, no `.npy` header) gets a header, and a CRC computed here.
 */
export function busPayloadOf(frame: BusFrame): BusPayload {
  const encoding = frame.encoding === 'raw' ? 'npy' : frame.encoding;
  if (frame.fieldTable !== undefined) {
    // A frame with fields always has its payload (ReceivedFrame's contract): never drop them.
    if (frame.payload === undefined) throw new Error('a frame with fields has no payload');
    const bytes = frame.payload;
    return { bytes, crc32: frame.crc32 ?? crc32(bytes), encoding, fieldTable: frame.fieldTable };
  }
  if (frame.encoding !== 'raw') {
    const bytes = frame.encoded ?? new Uint8Array(0);
    return { bytes, crc32: frame.crc32 ?? crc32(bytes), encoding, fieldTable: undefined };
  }
  if (frame.npy !== undefined) {
    const bytes = frame.npy;
    return { bytes, crc32: frame.crc32 ?? crc32(bytes), encoding, fieldTable: undefined };
  }
  const points = frame.points;
  const bytes = Buffer.concat([
    encodeNpyHeader([frame.pointCount, 3]),
    new Uint8Array(points.buffer, points.byteOffset, points.byteLength),
  ]);
  return { bytes, crc32: crc32(bytes), encoding, fieldTable: undefined };
}

/**
 * Payload bytes per part of a frame: {@link BUS_CHUNK_BYTES}, or that less the header allowance
 * for the rare frame whose headers outgrow the allowance (32 fields of 64-character names with a
 * long stream and cluster session name: 4.2 KB), so that no message exceeds the stream's
 * `max_msg_size`. Consumers read `Ps-Chunk`.
 */
export function chunkBytesOf(meta: BusFrameMeta): number {
  const last = chunkHeaders(meta, partsOf(meta.bytes) - 1);
  return headerBlockBytes(last) <= BUS_HEADER_ALLOWANCE
    ? BUS_CHUNK_BYTES
    : BUS_CHUNK_BYTES - BUS_HEADER_ALLOWANCE;
}

/**
 * A NATS connection (reconnecting for ever) and the frame stream, checked at start. Create it with
 * {@link BusPublisher.connect}; each session publishes through its own {@link BusSession}.
 */
export class BusPublisher {
  readonly options: ResolvedBusOptions;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #log: Logger;
  readonly #given: BusOptions;
  /** Frames waiting for their acks: each fails at once when the connection drops. */
  readonly #waiting = new Set<(error: PointstreamError) => void>();
  #connected = true;
  #closed = false;
  #framesPublished = 0;
  #framesFailed = 0;
  #bytesPublished = 0;
  #pendingAcks = 0;
  #lastError: string | undefined;

  private constructor(
    nc: NatsConnection,
    given: BusOptions,
    options: ResolvedBusOptions,
    log: Logger,
  ) {
    this.#nc = nc;
    this.#given = given;
    this.options = options;
    this.#log = log;
    this.#js = jetstream(nc, { timeout: options.publishTimeoutMs });
    void this.#watch();
  }

  /**
   * Connects to NATS and creates the frame stream, or checks the one there. Rejects with
   * `PS_ERR_BUS_UNAVAILABLE` when NATS or JetStream cannot be reached, `PS_ERR_BUS_STREAM_MISMATCH`
   * when the stream exists with settings frames cannot use (it is never changed) or NATS cannot
   * carry a chunk; a bad option throws a `TypeError` naming it.
   */
  static async connect(options: BusOptions, log: Logger = silentLogger): Promise<BusPublisher> {
    const resolved = resolveBusOptions(options, hostname());
    const where = redactUrl(resolved.url);
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: resolved.url.split(',').map((server) => server.trim()),
        name: `pointstream-${resolved.nodeId}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: RECONNECT_WAIT_MS,
        reconnectJitter: 100,
        timeout: CONNECT_TIMEOUT_MS,
        pingInterval: PING_INTERVAL_MS,
        maxPingOut: 2,
      });
    } catch (error) {
      throw unavailable(`cannot reach the bus at ${where}: ${(error as Error).message}`, error);
    }
    try {
      const maxPayload = nc.info?.max_payload ?? 0;
      if (maxPayload < BUS_MAX_MESSAGE_BYTES) {
        throw new PointstreamError(
          ErrorCodes.BUS_STREAM_MISMATCH,
          `the NATS server at ${where} takes messages of ${maxPayload} bytes, under one chunk with headers (${BUS_MAX_MESSAGE_BYTES}): set max_payload: 8MB in its configuration`,
        );
      }
      await ensureStream(nc, options, resolved);
    } catch (error) {
      await nc.close().catch(() => undefined);
      throw error;
    }
    const publisher = new BusPublisher(nc, options, resolved, log);
    log.info(
      { event: 'bus-connected', url: where, stream: resolved.streamName, node: resolved.nodeId },
      `bus: publishing to stream ${resolved.streamName} at ${where}`,
    );
    return publisher;
  }

  /** Whether the connection to NATS is up. */
  /** The NATS connection, shared with the node's cluster membership and viewer previews. */
  get connection(): NatsConnection {
    return this.#nc;
  }

  get connected(): boolean {
    return this.#connected && !this.#closed;
  }

  /** A session's publisher: numbers its frames (`Ps-Index`) and puts their chunks on the bus. */
  session(info: BusSessionInfo): BusSession {
    return new BusSession(this, info);
  }

  stats(): BusStats {
    return {
      connected: this.connected,
      stream: this.options.streamName,
      node: this.options.nodeId,
      framesPublished: this.#framesPublished,
      framesFailed: this.#framesFailed,
      bytesPublished: this.#bytesPublished,
      pendingAcks: this.#pendingAcks,
      lastError: this.#lastError,
    };
  }

  /** Closes the connection; frames still waiting for acks fail. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#failWaiting(unavailable('the bus connection was closed'));
    await this.#nc.close().catch(() => undefined);
  }

  /**
   * Publishes one frame: every chunk at once (pipelined), resolving when all are acknowledged.
   * `index` is called once chunks are about to be sent (a frame refused before that takes none).
   * @internal {@link BusSession.publish}
   */
  async publish(info: BusSessionInfo, index: () => number, frame: BusFrame): Promise<void> {
    try {
      if (!this.connected)
        throw unavailable(
          this.#closed
            ? 'the bus connection was closed'
            : 'not connected to the bus (reconnecting)',
        );
      const payload = busPayloadOf(frame);
      const meta: BusFrameMeta = {
        stream: info.stream,
        session: info.session,
        sessionStart: info.sessionStart,
        node: this.options.nodeId,
        seq: frame.seq,
        index: index(),
        bytes: payload.bytes.length,
        crc32: payload.crc32,
        encoding: payload.encoding,
        points: frame.pointCount,
        captureTime: frame.captureTime,
        receivedAt: frame.receivedAt,
        ...(payload.fieldTable === undefined ? {} : { fieldTable: payload.fieldTable }),
      };
      await this.#send(frameSubject(info.tenant, info.stream), meta, payload.bytes);
      this.#framesPublished++;
      this.#bytesPublished += payload.bytes.length;
    } catch (error) {
      this.#framesFailed++;
      const failure =
        error instanceof PointstreamError && error.code === ErrorCodes.BUS_UNAVAILABLE
          ? error
          : unavailable(`the bus did not confirm the frame: ${(error as Error).message}`, error);
      this.#lastError = failure.message;
      throw failure;
    }
  }

  async #send(subject: string, meta: BusFrameMeta, bytes: Uint8Array): Promise<void> {
    // Only frames with fields can have headers that large: the others skip the check.
    const chunkBytes = meta.fieldTable === undefined ? BUS_CHUNK_BYTES : chunkBytesOf(meta);
    const parts = partsOf(bytes.length, chunkBytes);
    const acks: Promise<PubAck>[] = [];
    const settled = (): void => {
      this.#pendingAcks--;
    };
    for (let part = 0; part < parts; part++) {
      const h = headers();
      for (const [name, value] of chunkHeaders(meta, part, chunkBytes)) h.set(name, value);
      const [start, end] = partRange(bytes.length, part, chunkBytes);
      const ack = this.#js.publish(subject, bytes.subarray(start, end), {
        headers: h,
        timeout: this.options.publishTimeoutMs,
      });
      this.#pendingAcks++;
      ack.then(settled, settled);
      acks.push(ack);
    }
    const all = Promise.all(acks).then((answers) => {
      for (const [part, answer] of answers.entries()) {
        // The same Nats-Msg-Id was stored before: this chunk is not what is on the bus.
        if (answer.duplicate)
          throw unavailable(
            `part ${part} of frame ${meta.seq} duplicates message ${answer.seq} already on the bus`,
          );
        if (answer.stream !== this.options.streamName)
          throw unavailable(`part ${part} of frame ${meta.seq} went to stream ${answer.stream}`);
      }
    });
    await new Promise<void>((resolve, reject) => {
      const fail = (error: PointstreamError): void => {
        this.#waiting.delete(fail);
        reject(error);
      };
      this.#waiting.add(fail);
      all.then(
        () => {
          this.#waiting.delete(fail);
          resolve();
        },
        (error: unknown) => fail(error as PointstreamError),
      );
    });
  }

  #failWaiting(error: PointstreamError): void {
    for (const fail of [...this.#waiting]) fail(error);
  }

  /** Follows the connection's status: lost, back, and the stream checked again when back. */
  async #watch(): Promise<void> {
    for await (const status of this.#nc.status()) {
      if (status.type === 'disconnect') {
        this.#connected = false;
        this.#lastError = 'connection to the bus lost';
        this.#log.warn(
          { event: 'bus-disconnected', pendingAcks: this.#pendingAcks },
          'bus: connection lost; reconnecting (frames fail PS_ERR_BUS_UNAVAILABLE meanwhile)',
        );
        this.#failWaiting(unavailable('connection to the bus lost while waiting for acks'));
      } else if (status.type === 'reconnect') {
        this.#connected = true;
        this.#log.info({ event: 'bus-reconnected' }, 'bus: connected again');
        // A server that lost its store has no stream: create it again (or say why not).
        ensureStream(this.#nc, this.#given, this.options).catch((error: unknown) => {
          this.#lastError = (error as Error).message;
          this.#log.error(
            { event: 'bus-stream-error', err: error },
            `bus: ${(error as Error).message}`,
          );
        });
      }
    }
  }
}

/** One session's frames on the bus: `publish` numbers them (`Ps-Index`) in the order called. */
export class BusSession {
  readonly info: BusSessionInfo;
  readonly #publisher: BusPublisher;
  #published = 0;

  constructor(publisher: BusPublisher, info: BusSessionInfo) {
    this.#publisher = publisher;
    this.info = info;
  }

  /** Frames handed to the bus so far (the next one's `Ps-Index`). */
  get published(): number {
    return this.#published;
  }

  /**
   * Puts `frame` on the bus; resolves once every chunk is acknowledged, rejects with
   * `PS_ERR_BUS_UNAVAILABLE` otherwise. The frame's buffers must stay valid until it settles.
   */
  publish(frame: BusFrame): Promise<void> {
    return this.#publisher.publish(this.info, () => this.#published++, frame);
  }
}

/** Creates the stream, or checks the one there against what frames need; never changes it. */
async function ensureStream(
  nc: NatsConnection,
  given: BusOptions,
  options: ResolvedBusOptions,
): Promise<void> {
  const name = options.streamName;
  const mismatch = (why: string): PointstreamError =>
    new PointstreamError(
      ErrorCodes.BUS_STREAM_MISMATCH,
      `the bus's stream ${name} ${why}; pointstream does not change an existing stream (use --bus-stream for another, or fix or delete this one)`,
    );
  const check = (config: Partial<StreamConfig>): void => {
    const problems = streamMismatches(config, given, options);
    if (problems.length > 0) throw mismatch(`cannot be used: ${problems.join('; ')}`);
  };
  let jsm;
  try {
    jsm = await jetstreamManager(nc, { timeout: CONNECT_TIMEOUT_MS });
  } catch (error) {
    throw unavailable(`JetStream is not available on the bus: ${(error as Error).message}`, error);
  }
  const existing = await jsm.streams.info(name).catch((error: unknown) => {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)
      return undefined;
    throw unavailable(`cannot read the bus's stream ${name}: ${(error as Error).message}`, error);
  });
  if (existing !== undefined) {
    check(existing.config);
    return;
  }
  try {
    await jsm.streams.add(busStreamConfig(options));
  } catch (error) {
    // Another node created it meanwhile: check that one.
    const raced = await jsm.streams.info(name).catch(() => undefined);
    if (raced !== undefined) {
      check(raced.config);
      return;
    }
    // JetStream refused it (subjects another stream holds, storage it cannot reserve...).
    if (error instanceof JetStreamApiError) throw mismatch(`cannot be created: ${error.message}`);
    throw unavailable(`cannot create the bus's stream ${name}: ${(error as Error).message}`, error);
  }
}
