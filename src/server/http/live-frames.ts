import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import { ErrorCodes } from '../../errors.js';
import type { ErrorCode } from '../../errors.js';
import type { Logger } from '../../util/logger.js';
import { isStreamName } from '../../wire/control.js';
import { encodeNpyHeader } from '../../wire/npy.js';
import { structuredNpyOf } from '../record-npy.js';
import type { StreamRegistry } from '../streams.js';
import type { ReceivedFrame } from '../types.js';
import { ClientAdmission } from './admission.js';
import { sendProblem, sendRefusal } from './problem.js';
import type { SignalingHttp } from './signaling.js';

/**
 * Live frames over HTTP (docs/protocol.md, "Live frames over HTTP"): `GET /streams/<name>/latest`
 * answers the stream's newest verified frame as a `.npy` file, `GET /streams/<name>/frames` streams
 * frames as they arrive. Frames are never copied: the newest one of each stream is held with
 * `frame.retain()`, and each reader holds at most the frame its socket is writing plus one waiting
 * (the newest; the one it replaces is dropped and counted). Ingest never waits for a reader.
 */

/** Limits of the live endpoints (the server gives its viewers' limits: readers are counted apart). */
export interface LiveFramesLimits {
  /** `/frames` readers at once, all streams together; beyond it `503`. */
  readonly maxReaders: number;
  /** `/frames` readers one client (token, and address) may hold at once; beyond it `429`. */
  readonly maxReadersPerClient: number;
  /** `/frames` requests one client may make per minute; beyond it `429`. */
  readonly maxReadersPerMinute: number;
}

/** `/latest` answers one client may have being written at once (beyond it `429`), and per minute. */
const MAX_LATEST_PER_CLIENT = 4;
const MAX_LATEST_PER_MINUTE = 1200;
/** A `/frames` reader that got nothing this long gets a keep-alive record. */
const KEEP_ALIVE_MS = 5000;

/** Media type of the `/frames` response (records: u32 length + JSON, u32 length + `.npy`). */
export const FRAMES_CONTENT_TYPE = 'application/x-pointstream-frames';

/** Structured `.npy` files of frames with fields, made once per frame however many read it. */
const structuredOfFrame = new WeakMap<ReceivedFrame, Uint8Array>();

/**
 * A frame as one `.npy` file, in parts to write one after the other: without fields its points
 * (`<f4`, shape `(N, 3)`) as received, not copied (the received `.npy`, else numpy's header + the
 * points); with fields the structured `.npy` a recording holds (`x`, `y`, `z`, then every field;
 * `numpy.load(f)['intensity']`), interleaved once per frame and shared by its readers. The one
 * place that decides what a live reader gets.
 */
export function frameAsNpy(frame: ReceivedFrame): readonly Uint8Array[] {
  if (Object.keys(frame.fields).length > 0) {
    let npy = structuredOfFrame.get(frame);
    if (npy === undefined) {
      npy = structuredNpyOf(frame.points, frame.fields, frame.pointCount);
      structuredOfFrame.set(frame, npy);
    }
    return [npy];
  }
  if (frame.npy !== undefined) return [frame.npy];
  const { points } = frame;
  return [
    encodeNpyHeader([frame.pointCount, 3]),
    new Uint8Array(points.buffer, points.byteOffset, points.byteLength),
  ];
}

/** A frame held (retained) until `release` is called. */
interface Held {
  readonly frame: ReceivedFrame;
  readonly release: () => void;
}

function hold(frame: ReceivedFrame): Held {
  return { frame, release: frame.retain() };
}

/** The metadata a reader gets with each frame (JSON record; the same facts as `/latest`'s headers). */
interface FrameMetadata {
  readonly stream: string;
  readonly session: string;
  readonly seq: number;
  readonly points: number;
  readonly captureTime: number | null;
  readonly receivedAt: number;
  readonly encoding: string;
  readonly form: string;
  readonly crc32: number | null;
  readonly npyBytes: number;
}

function metadataOf(frame: ReceivedFrame, npyBytes: number): FrameMetadata {
  return {
    stream: frame.stream,
    session: frame.sessionId,
    seq: frame.seq,
    points: frame.pointCount,
    captureTime: frame.captureTime ?? null,
    receivedAt: frame.receivedAt,
    encoding: frame.encoding,
    form: frame.form,
    crc32: frame.crc32 ?? null,
    npyBytes,
  };
}

function u32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value, true);
  return bytes;
}

/** One record of the `/frames` response: u32 LE + JSON, u32 LE + `.npy` (0 bytes: no frame). */
function record(meta: object, npy: readonly Uint8Array[]): Uint8Array[] {
  const json = Buffer.from(JSON.stringify(meta));
  const npyBytes = npy.reduce((sum, part) => sum + part.byteLength, 0);
  return [u32(json.byteLength), json, u32(npyBytes), ...npy];
}

/** One `/frames` response: the frame its socket is writing, and at most one waiting. */
class FrameReader {
  readonly stream: string;
  readonly #raw: ServerResponse;
  readonly #counters: { sent: Counter; dropped: Counter };
  #writing: Held | undefined;
  #waiting: Held | undefined;
  #dropped = 0;
  #lastWriteAt = Date.now();
  #ended = false;

  constructor(stream: string, raw: ServerResponse, counters: { sent: Counter; dropped: Counter }) {
    this.stream = stream;
    this.#raw = raw;
    this.#counters = counters;
  }

  /** A new frame: written now if the socket is free, else it waits (replacing, and dropping, the one waiting). */
  offer(frame: ReceivedFrame): void {
    if (this.#ended) return;
    const held = hold(frame);
    if (this.#writing === undefined) {
      this.#write(held);
      return;
    }
    if (this.#waiting !== undefined) {
      this.#waiting.release();
      this.#dropped++;
      this.#counters.dropped.inc();
    }
    this.#waiting = held;
  }

  /** A keep-alive record when the reader has been sent nothing for `ms` (and is not busy). */
  keepAlive(ms: number, now: number): void {
    if (this.#ended || this.#writing !== undefined || now - this.#lastWriteAt < ms) return;
    this.#lastWriteAt = now;
    this.#raw.write(Buffer.concat(record({ type: 'keepalive', dropped: this.#dropped }, [])));
  }

  /** Ends the response with an `end` record saying why (the stream was forgotten, shutdown). */
  end(code: ErrorCode, message: string): void {
    if (this.#ended) return;
    for (const part of record({ type: 'end', code, message, dropped: this.#dropped }, []))
      this.#raw.write(part);
    this.#raw.end();
    this.closed();
  }

  /** The socket closed: every frame held goes back. */
  closed(): void {
    this.#ended = true;
    this.#writing?.release();
    this.#waiting?.release();
    this.#writing = this.#waiting = undefined;
  }

  #write(held: Held): void {
    this.#writing = held;
    this.#lastWriteAt = Date.now();
    const npy = frameAsNpy(held.frame);
    const parts = record(
      {
        type: 'frame',
        ...metadataOf(
          held.frame,
          npy.reduce((sum, part) => sum + part.byteLength, 0),
        ),
        dropped: this.#dropped,
      },
      npy,
    );
    const last = parts.length - 1;
    // The callback of the last part runs once it is handed to the kernel (or the socket failed).
    parts.forEach((part, index) =>
      this.#raw.write(part, index === last ? () => this.#written(held) : undefined),
    );
  }

  #written(held: Held): void {
    held.release();
    if (this.#writing !== held) return; // closed meanwhile
    this.#writing = undefined;
    this.#counters.sent.inc();
    const next = this.#waiting;
    this.#waiting = undefined;
    if (next !== undefined && !this.#ended) this.#write(next);
  }
}

/** Options of {@link LiveFrames}. */
export interface LiveFramesHubOptions {
  readonly http: SignalingHttp;
  readonly streams: Pick<StreamRegistry, 'ownerOf' | 'has' | 'sessionOf'>;
  readonly log: Logger;
  /** Where its counters go (`/metrics`). */
  readonly registry: Registry;
  readonly limits: LiveFramesLimits;
  readonly isClosing: () => boolean;
}

/**
 * The newest frame of each stream and the `/frames` readers. Registers both routes when made (before
 * the routes are sealed), and ends every reader when the HTTP server closes (fastify's `preClose`:
 * a long-lived response would otherwise hold the close). Streams the registry forgot are noticed
 * at the next keep-alive tick: their newest frame goes and their readers get an `end` record.
 */
export class LiveFrames {
  readonly #latest = new Map<string, Held>();
  readonly #readers = new Set<FrameReader>();
  readonly #limits: LiveFramesLimits;
  readonly #counters: { sent: Counter; dropped: Counter };
  readonly #timer: NodeJS.Timeout;
  readonly #log: Logger;
  readonly #hub: LiveFramesHubOptions;
  #closed = false;

  constructor(hub: LiveFramesHubOptions) {
    this.#hub = hub;
    this.#limits = hub.limits;
    this.#log = hub.log;
    const registers = [hub.registry];
    this.#counters = {
      sent: new Counter({
        name: 'pointstream_live_frames_sent_total',
        help: 'Frames written to GET /streams/<name>/frames readers.',
        registers,
      }),
      dropped: new Counter({
        name: 'pointstream_live_frames_dropped_total',
        help: 'Frames dropped for a slow /frames reader (a newer frame replaced them).',
        registers,
      }),
    };
    const readers = this.#readers;
    new Gauge({
      name: 'pointstream_live_readers',
      help: 'Open GET /streams/<name>/frames responses.',
      registers,
      collect() {
        this.set(readers.size);
      },
    });
    this.#timer = setInterval(() => this.#tick(), KEEP_ALIVE_MS / 2);
    this.#timer.unref();
    this.#register();
    hub.http.app.addHook('preClose', (done) => {
      this.close();
      done();
    });
  }

  /** Keep-alives, and the end of streams the registry forgot. */
  #tick(): void {
    const now = Date.now();
    for (const stream of this.#latest.keys()) this.sessionClosed(stream);
    for (const reader of this.#readers)
      if (!this.#hub.streams.has(reader.stream))
        reader.end(ErrorCodes.SESSION_CLOSED, 'the stream ended');
      else reader.keepAlive(KEEP_ALIVE_MS, now);
  }

  /** A verified frame (a server `'frame'` event): kept as its stream's newest, offered to its readers. */
  onFrame(frame: ReceivedFrame): void {
    if (this.#closed) return;
    const previous = this.#latest.get(frame.stream);
    this.#latest.set(frame.stream, hold(frame));
    previous?.release();
    for (const reader of this.#readers) if (reader.stream === frame.stream) reader.offer(frame);
  }

  /**
   * A session of `stream` ended: unless another one took the stream over, its newest frame goes
   * (a stream without a live session holds no frame buffer: 200 short sessions held 21 MB).
   */
  sessionClosed(stream: string): void {
    if (this.#hub.streams.sessionOf(stream) !== undefined) return;
    this.#latest.get(stream)?.release();
    this.#latest.delete(stream);
  }

  /** Ends every reader (server shutdown) and lets every frame go. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const reader of [...this.#readers])
      reader.end(ErrorCodes.SHUTTING_DOWN, 'server is shutting down');
    for (const held of this.#latest.values()) held.release();
    this.#latest.clear();
  }

  /** `GET /streams/<name>/latest` and `GET /streams/<name>/frames`. */
  #register(): void {
    const { http, streams, isClosing } = this.#hub;
    const limits = this.#limits;
    const readerAdmission = new ClientAdmission({
      maxPerClient: limits.maxReadersPerClient,
      maxOffersPerMinute: limits.maxReadersPerMinute,
    });
    const latestAdmission = new ClientAdmission({
      maxPerClient: MAX_LATEST_PER_CLIENT,
      maxOffersPerMinute: MAX_LATEST_PER_MINUTE,
    });
    /** The stream a request names, if it exists and the token may see it; else answered. */
    const streamOf = (request: FastifyRequest, reply: FastifyReply): string | undefined => {
      const name = (request.params as Record<string, unknown>).name;
      if (!isStreamName(name)) {
        void sendProblem(reply, 400, ErrorCodes.STREAM_INVALID, 'not a stream name');
        return undefined;
      }
      // Another token's stream is answered like one that does not exist (as for viewers).
      const owner = streams.ownerOf(name);
      if (owner === undefined || owner.token !== http.tokenOf(request)) {
        void sendProblem(reply, 404, ErrorCodes.SESSION_NOT_FOUND, 'no such stream');
        return undefined;
      }
      if (isClosing()) {
        void sendRefusal(reply, {
          status: 503,
          code: ErrorCodes.SHUTTING_DOWN,
          reason: 'server is shutting down',
          retryAfterSeconds: 5,
        });
        return undefined;
      }
      return name;
    };

    http.route('GET', '/streams/:name/latest', (request, reply) => {
      const stream = streamOf(request, reply);
      if (stream === undefined) return reply;
      const latest = this.#latest.get(stream);
      if (latest === undefined) {
        void reply.header('Retry-After', '1');
        const why =
          this.#hub.streams.sessionOf(stream) === undefined
            ? 'the stream has no live session (frames are kept only while one sends)'
            : 'the stream has no frame yet';
        return sendProblem(reply, 404, ErrorCodes.NO_FRAME_YET, why);
      }
      const ticket = latestAdmission.admit(http.tokenOf(request), request.ip);
      if ('status' in ticket) return sendRefusal(reply, ticket);
      const held = hold(latest.frame);
      const npy = frameAsNpy(held.frame);
      const length = npy.reduce((sum, part) => sum + part.byteLength, 0);
      const meta = metadataOf(held.frame, length);
      const raw = reply.hijack().raw;
      raw.once('close', () => {
        held.release();
        ticket.release();
      });
      raw.writeHead(200, {
        'Content-Type': 'application/x-npy',
        'Content-Length': String(length),
        'Cache-Control': 'no-store',
        'Ps-Stream': stream,
        'Ps-Session': meta.session,
        'Ps-Seq': String(meta.seq),
        'Ps-Points': String(meta.points),
        'Ps-Capture-Time': meta.captureTime === null ? '' : String(meta.captureTime),
        'Ps-Received-At': String(meta.receivedAt),
        'Ps-Encoding': meta.encoding,
        'Ps-Form': meta.form,
        ...(meta.crc32 === null ? {} : { 'Ps-Crc32': String(meta.crc32) }),
      });
      if (request.method === 'HEAD') raw.end();
      else {
        for (const part of npy) raw.write(part);
        raw.end();
      }
      return reply;
    });

    http.route('GET', '/streams/:name/frames', (request, reply) => {
      const stream = streamOf(request, reply);
      if (stream === undefined) return reply;
      if (this.#readers.size >= limits.maxReaders)
        return sendRefusal(reply, {
          status: 503,
          code: ErrorCodes.SERVER_FULL,
          reason: `server is at its limit of ${limits.maxReaders} frame readers`,
          retryAfterSeconds: 5,
        });
      const ticket = readerAdmission.admit(http.tokenOf(request), request.ip);
      if ('status' in ticket) return sendRefusal(reply, ticket);
      const raw = reply.hijack().raw;
      raw.writeHead(200, {
        'Content-Type': FRAMES_CONTENT_TYPE,
        'Cache-Control': 'no-store',
        'Ps-Stream': stream,
      });
      raw.flushHeaders();
      const reader = new FrameReader(stream, raw, this.#counters);
      this.#readers.add(reader);
      raw.once('close', () => {
        this.#readers.delete(reader);
        reader.closed();
        ticket.release();
      });
      this.#log.debug({ event: 'live-reader', stream, remoteAddress: request.ip }, 'frames reader');
      // The newest frame at once: a reader never waits a whole frame period for its first one.
      const latest = this.#latest.get(stream);
      if (latest !== undefined) reader.offer(latest.frame);
      return reply;
    });
  }
}
