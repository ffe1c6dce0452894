import { ErrorCodes, PointstreamError } from '../../src/errors.js';
import { NonFiniteFilter } from '../../src/sources/finite.js';
import { LidarSceneSource } from '../../src/sources/lidar.js';
import { RandomPointSource } from '../../src/sources/random.js';
import {
  POINT_ENCODING_NAMES,
  indexOfNonFinite,
  isStreamName,
  pointEncodingIdOf,
} from '../../src/wire/index.js';
import { nonFiniteNotSentError } from '../../src/wire/points.js';
import { NO_FIELDS, fieldTypeOf } from '../../src/wire/fields.js';
import type { FieldTypeName, PointCloud, PointFields } from '../../src/wire/fields.js';
import { checkFieldPrecision } from '../../src/sources/field-flags.js';
import type { PointSource } from '../../src/sources/source.js';
import type { EncodedPoints, PointEncodingName } from '../../src/wire/index.js';
import { RunStats, pace, percentile, round } from '../../src/sender/run-stats.js';
import type { RunFigures } from '../../src/sender/run-stats.js';
import type { SentFrame } from '../../src/sender/types.js';
import { FrameEncoder } from './encoder.js';
import { BrowserSender } from './sender.js';

/** What one run of the browser sender does: the page's form, or `window.pointstream.start()`. */
export interface RunOptions {
  /** Absolute URL of the offer endpoint. Default: `/offer` of this page's origin. */
  readonly offerUrl: string;
  readonly token?: string | undefined;
  /**
   * The stream fed (docs/protocol.md, "Streams"): 1-64 of `A-Z a-z 0-9 . _ -`, the same across
   * runs of the page, so that a viewer watching it sees every run. Default: the server names the
   * stream after the session.
   */
  readonly stream?: string | undefined;
  /**
   * Where points come from: seeded random points (which no encoding compresses), a simulated
   * 64-beam LiDAR scan of a warehouse (as `send --source lidar`), or the file loaded on the page.
   */
  readonly source: 'random' | 'lidar' | 'file';
  /** Points per generated frame. */
  readonly points: number;
  /** Seed of the generator (src/sources/random.ts, xorshift32): the same seed, the same frames. */
  readonly seed: number;
  /** Frames per second; 0 sends as fast as the link allows. */
  readonly rate: number;
  /** Frames to send; 0 until stopped. */
  readonly frames: number;
  /**
   * Wire encoding (docs/encodings.md): `raw` float32 `.npy` (lossless), `q16` (6 bytes a point,
   * error bound from the frame's extent) or `qrice` (compressed, error at most `precision`).
   * Encoded in a Web Worker.
   */
  readonly encoding: PointEncodingName;
  /** Largest error per coordinate in metres, for `qrice`. Default: the encoder's (1 mm). */
  readonly precision?: number | undefined;
  /** Chunk size, at most the connection's maximum message size. */
  readonly maxMessageBytes?: number;
  /**
   * Drop points with a NaN or infinite coordinate from each frame (as `send --drop-non-finite`).
   * Without it a frame holding one stops the run before it is sent, unless the server accepts
   * them (`--allow-non-finite`) and the encoding is raw.
   */
  readonly dropNonFinite?: boolean | undefined;
  /**
   * Largest error per float field, by name, for q16/qrice frames (as `send --field-precision`);
   * absent: every field lossless. Refused with raw frames and for fields the frames lack.
   */
  readonly fieldPrecision?: Readonly<Record<string, number>> | undefined;
}

/** What the CLI's `send --json` reports, for one browser run. */
export interface RunResult {
  readonly ok: boolean;
  readonly reason: string;
  readonly errorCode: string | null;
  readonly sessionId: string | null;
  readonly framesPlanned: number | null;
  readonly framesSent: number;
  readonly framesAcked: number;
  readonly framesRejected: number;
  readonly framesLost: number;
  readonly bytesSent: number;
  readonly pointsPerFrame: number;
  readonly seconds: number;
  /** Acknowledged frames per second between the first and the last acknowledgement (as the CLI). */
  readonly achievedHz: number;
  readonly mbPerSec: number;
  /** Paced frames that started more than half a period after their time (as the CLI). */
  readonly late: number;
  /** Of acknowledged frames (as the CLI); all 0 when none was. */
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly maxMessageBytes: number;
  readonly encoding: PointEncodingName;
  /** Payload bytes per point (12 plus the `.npy` header for raw). */
  readonly bytesPerPoint: number;
  /** Largest coordinate error of any frame sent (0 for raw). */
  readonly maxError: number;
  /** Median worker time to encode one frame (0 for raw). */
  readonly encodeMsP50: number;
  /** Points dropped for a NaN or infinite coordinate (`dropNonFinite`), over all frames sent. */
  readonly nonFinitePointsDropped: number;
  /** The per-point fields of the last frame sent, in wire order, with their types (as the CLI). */
  readonly fields: readonly { readonly name: string; readonly type: FieldTypeName }[];
  readonly rejections: readonly { seq: number; code: string; message: string }[];
  /** Connections made again after a node drained or went silent (as the CLI's `reconnects`). */
  readonly reconnects: number;
}

/** Live figures while a run goes on. */
export interface Progress {
  readonly phase: 'connecting' | 'streaming' | 'finishing' | 'done';
  readonly framesSent: number;
  readonly framesAcked: number;
  readonly framesRejected: number;
  readonly framesLost: number;
  readonly framesPlanned: number | null;
  readonly bytesSent: number;
  readonly seconds: number;
  readonly achievedHz: number;
  readonly mbPerSec: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly sessionId: string | null;
}

/** The core's send options with the frame's fields (SendOptions.fields, docs/protocol.md "Per-point fields"). */

/** Frames captured but not yet handed to the channel (encoding, or waiting for a slot). */
const MAX_QUEUED = 2;
/** Ends after which the page connects again (as `send`): a drained node, a silent one. */
const RECONNECT_AFTER: ReadonlySet<string> = new Set([
  ErrorCodes.SESSION_MOVED,
  ErrorCodes.PEER_SILENT,
]);
/** Connection attempts per outage (as `send --max-reconnects`). */
const MAX_RECONNECT_ATTEMPTS = 5;

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function checkOptions(o: RunOptions): void {
  const bad = (field: string, expected: string, got: unknown): never => {
    throw new PointstreamError(
      ErrorCodes.INVALID_OPTION,
      `option "${field}" must be ${expected}; got ${JSON.stringify(got)}`,
    );
  };
  if (o.stream !== undefined && !isStreamName(o.stream))
    bad('stream', '1-64 of A-Z a-z 0-9 . _ -', o.stream);
  if (!['random', 'lidar', 'file'].includes(o.source))
    bad('source', 'random, lidar or file', o.source);
  if (o.source !== 'file' && (!Number.isSafeInteger(o.points) || o.points < 1))
    bad('points', 'an integer >= 1', o.points);
  if (!Number.isSafeInteger(o.seed) || o.seed < 0) bad('seed', 'an integer >= 0', o.seed);
  if (typeof o.rate !== 'number' || !Number.isFinite(o.rate) || o.rate < 0)
    bad('rate', 'a number >= 0', o.rate);
  if (!Number.isSafeInteger(o.frames) || o.frames < 0) bad('frames', 'an integer >= 0', o.frames);
  if (!POINT_ENCODING_NAMES.includes(o.encoding))
    bad('encoding', POINT_ENCODING_NAMES.join(', '), o.encoding);
  if (
    o.precision !== undefined &&
    (typeof o.precision !== 'number' || !Number.isFinite(o.precision) || o.precision <= 0)
  )
    bad('precision', 'a positive number of metres', o.precision);
  if (o.dropNonFinite !== undefined && typeof o.dropNonFinite !== 'boolean')
    bad('dropNonFinite', 'a boolean', o.dropNonFinite);
  if (o.fieldPrecision !== undefined) {
    if (typeof o.fieldPrecision !== 'object' || o.fieldPrecision === null)
      bad('fieldPrecision', 'an object of largest errors by field name', o.fieldPrecision);
    if (o.encoding === 'raw')
      bad(
        'fieldPrecision',
        'absent with raw frames (they carry every field as it is)',
        o.fieldPrecision,
      );
    for (const [name, error] of Object.entries(o.fieldPrecision))
      if (typeof error !== 'number' || !Number.isFinite(error) || error <= 0)
        bad(`fieldPrecision.${name}`, 'a number above 0', error);
  }
}

/**
 * Streams frames to the server and resolves with the outcome; never rejects (a failure is a result
 * with `ok: false` and a stable `errorCode`). `signal` stops it: frames already sent are finished.
 */
export async function runSender(
  options: RunOptions,
  file: PointCloud | Float32Array | undefined,
  signal: AbortSignal,
  onProgress: (progress: Progress) => void = () => undefined,
): Promise<RunResult> {
  const stats = new RunStats();
  const planned = options.frames > 0 ? options.frames : null;
  let sender: BrowserSender | undefined;
  let pointsPerFrame = 0;
  let failure: PointstreamError | undefined;
  let phase: Progress['phase'] = 'connecting';
  let nonFinitePointsDropped = 0;
  let sentFields: PointFields = NO_FIELDS;
  const encodeMs: number[] = [];
  let encoder: FrameEncoder | undefined;

  const progress = (f: RunFigures = stats.figures()): Progress => ({
    phase,
    framesSent: f.framesSent,
    framesAcked: f.framesAcked,
    framesRejected: f.framesRejected,
    framesLost: f.framesLost,
    framesPlanned: planned,
    bytesSent: f.bytesSent,
    seconds: f.seconds,
    achievedHz: f.achievedHz,
    mbPerSec: f.mbPerSec,
    latencyMs: f.latencyMs,
    sessionId: sender?.sessionId ?? null,
  });
  const onSettled = (): void => onProgress(progress());

  const receipts: Promise<void>[] = [];
  let reconnects = 0;
  /** The number of the next frame: a new connection goes on from it. */
  let nextSeq = 0;
  let reconnectAt: (nextSeq: number) => Promise<BrowserSender | undefined> = () =>
    Promise.resolve(undefined);
  try {
    checkOptions(options);
    let next: () => PointCloud;
    if (options.source === 'file') {
      if (file === undefined)
        throw new PointstreamError(
          ErrorCodes.SOURCE_EMPTY,
          'no file loaded: drop a .npy, .ply or .pcd',
        );
      const cloud = file instanceof Float32Array ? { points: file, fields: NO_FIELDS } : file;
      next = () => cloud;
    } else {
      const generator: PointSource =
        options.source === 'lidar'
          ? new LidarSceneSource(options.points, { seed: options.seed })
          : new RandomPointSource(options.points, { seed: options.seed });
      // A generator's fields (the LiDAR's intensity, ring, time) are those of the frame it made last.
      next = () => {
        const points = generator.next();
        return { points, fields: generator.fields ?? NO_FIELDS };
      };
    }
    let precisionChecked = options.fieldPrecision === undefined;
    onProgress(progress());
    const offerUrl = new URL(options.offerUrl);
    // The offer is plain SDP: the stream's name travels as `?stream=`.
    if (options.stream !== undefined) offerUrl.searchParams.set('stream', options.stream);
    const connectAt = (firstSeq: number): Promise<BrowserSender> =>
      BrowserSender.connect({
        offerUrl: offerUrl.toString(),
        token: options.token,
        maxMessageBytes: options.maxMessageBytes,
        firstSeq,
      });
    sender = await connectAt(0);
    /**
     * After a node drained (`PS_ERR_SESSION_MOVED`) or went silent (`PS_ERR_PEER_SILENT`), as
     * `send` does: connect again at once through the same address (a front places the stream on
     * another node), numbering on from `nextSeq`; later attempts back off 0.5 s doubling.
     */
    reconnectAt = async (firstSeq: number): Promise<BrowserSender | undefined> => {
      const end = sender?.closed;
      if (end === undefined || !RECONNECT_AFTER.has(end.code)) return undefined;
      await sender?.close();
      let lastError: unknown;
      for (let attempt = 1; attempt <= MAX_RECONNECT_ATTEMPTS && !signal.aborted; attempt++) {
        if (attempt > 1) await sleep(500 * 2 ** (attempt - 2), signal);
        try {
          sender = await connectAt(firstSeq);
          reconnects++;
          onProgress(progress());
          return sender;
        } catch (error) {
          lastError = error;
        }
      }
      if (lastError instanceof Error) throw lastError;
      return undefined;
    };
    if (options.encoding !== 'raw') {
      const id = pointEncodingIdOf[options.encoding];
      if (id === undefined)
        throw new PointstreamError(
          ErrorCodes.INVALID_OPTION,
          `unknown encoding ${JSON.stringify(options.encoding)}`,
        );
      if (!sender.serverEncodings.includes(id)) {
        throw new PointstreamError(
          ErrorCodes.ENCODING_UNSUPPORTED,
          `the server does not decode ${options.encoding} frames`,
        );
      }
      encoder = new FrameEncoder();
    }
    phase = 'streaming';
    stats.start();
    let live = sender;
    const nonFinite = options.dropNonFinite === true ? new NonFiniteFilter() : undefined;
    // Checked before sending (one pass): a frame the server would reject is not sent.
    const mustBeFinite = !(options.encoding === 'raw' && live.serverAllowsNonFinite);
    const accept = (frame: SentFrame, points: number): void => {
      receipts.push(stats.track(frame, points, onSettled));
      onProgress(progress());
    };
    // Encoded frames go through a pipeline: the worker encodes frame k while the page captures
    // frame k + 1, as a sensor's capture and encode threads would. At most MAX_QUEUED frames wait
    // for the worker or the channel, so a slow link holds the capture loop back (counted late).
    let pipeline: Promise<void> = Promise.resolve();
    let queued = 0;
    let pipelineError: Error | undefined;
    const queueWaiters: (() => void)[] = [];
    /** Sends on the current connection; a frame refused unsent because it moved goes on the next one. */
    const sendOn = async (
      points: Float32Array | EncodedPoints,
      sendOptions: Parameters<BrowserSender['send']>[1],
    ): Promise<SentFrame> => {
      for (;;) {
        try {
          const frame = await live.send(points, sendOptions);
          nextSeq = frame.seq + 1;
          return frame;
        } catch (error) {
          const code = (error as PointstreamError).code;
          if (code !== ErrorCodes.SESSION_MOVED) throw error;
          await live.ended;
          const next = await reconnectAt(nextSeq);
          if (next === undefined) throw error;
          live = next;
        }
      }
    };
    for (let k = 0; planned === null || k < planned; k++) {
      if (signal.aborted || pipelineError !== undefined) break;
      if (live.closed) {
        await pipeline;
        if (live.closed) {
          const next = await reconnectAt(nextSeq);
          if (next === undefined) break;
          live = next;
        }
      }
      await pace(stats, { rate: options.rate, k, signal });
      if (signal.aborted) break;
      const frame = next();
      let raw = frame.points;
      let fields = frame.fields;
      if (!precisionChecked) {
        precisionChecked = true;
        try {
          checkFieldPrecision(options.fieldPrecision ?? {}, fields);
        } catch (error) {
          throw new PointstreamError(
            ErrorCodes.INVALID_OPTION,
            `option "fieldPrecision": ${(error as Error).message}`,
          );
        }
      }
      if (nonFinite !== undefined) {
        const kept = nonFinite.apply(raw, fields);
        raw = kept.points;
        fields = kept.fields;
        nonFinitePointsDropped += kept.dropped;
      } else if (mustBeFinite) {
        const bad = indexOfNonFinite(raw);
        if (bad >= 0) throw nonFiniteNotSentError(k, bad, raw[bad] as number, options.encoding);
      }
      const count = raw.length / 3;
      pointsPerFrame = count;
      const withFields = Object.keys(fields).length > 0;
      if (encoder === undefined || options.encoding === 'raw') {
        // Checked above (or the server accepts non-finite values): the core need not check again.
        // Frames without fields go as before: no fields option at all.
        const sendOptions: Parameters<BrowserSender['send']>[1] = withFields
          ? { finite: true, fields }
          : { finite: true };
        accept(await sendOn(raw, sendOptions), count);
        sentFields = fields;
        continue;
      }
      while (queued >= MAX_QUEUED) await new Promise<void>((resolve) => queueWaiters.push(resolve));
      const captureTime = Date.now();
      // Copies `raw` and the fields: the worker encodes both (the fields as options.fieldPrecision says).
      const encoding = encoder.encode(
        raw,
        options.encoding,
        options.precision,
        withFields ? fields : undefined,
        options.fieldPrecision,
      );
      sentFields = fields;
      encoding.catch(() => undefined); // handled in the pipeline
      queued++;
      pipeline = pipeline.then(async () => {
        try {
          if (pipelineError !== undefined) return;
          const encoded = await encoding;
          encodeMs.push(encoded.encodeMs);
          accept(await sendOn(encoded, { captureTime }), count);
        } catch (error) {
          pipelineError ??= error instanceof Error ? error : new Error(String(error));
        } finally {
          queued--;
          queueWaiters.shift()?.();
        }
      });
    }
    await pipeline;
    if (pipelineError !== undefined) throw pipelineError;
    phase = 'finishing';
    onProgress(progress());
    await Promise.all(receipts);
  } catch (error) {
    failure =
      error instanceof PointstreamError
        ? error
        : new PointstreamError(ErrorCodes.CONNECTION_FAILED, (error as Error).message, {
            cause: error,
          });
  }
  await Promise.all(receipts); // a receipt always settles: ok, rejected, or lost
  stats.finish();
  encoder?.close();
  const figures = stats.figures();
  const summary = progress(figures);
  const closedBy = sender?.closed;
  await sender?.close();
  phase = 'done';
  const maxMessageBytes = sender?.maxMessageBytes ?? 0;
  const {
    framesSent: sent,
    framesAcked: acked,
    framesRejected: rejected,
    framesLost: lost,
  } = figures;
  const rejections = stats.rejections;

  let ok = failure === undefined && rejected === 0 && lost === 0;
  let errorCode: string | null = failure?.code ?? null;
  let reason = failure?.message ?? '';
  if (failure === undefined && closedBy !== undefined && (planned === null || sent < planned)) {
    ok = false;
    errorCode = closedBy.code;
    reason = closedBy.reason;
  } else if (failure === undefined && rejected > 0) {
    errorCode = ErrorCodes.FRAME_REJECTED;
    reason = `${rejected} frame(s) rejected, first: ${rejections[0]?.code}`;
  } else if (failure === undefined && lost > 0) {
    errorCode = ErrorCodes.FRAME_LOST;
    reason = `${lost} frame(s) without receipt`;
  } else if (ok) {
    reason = signal.aborted
      ? `stopped after ${sent} frames`
      : `all ${acked} frames acknowledged intact`;
  }
  const result: RunResult = {
    ok,
    reason,
    errorCode,
    sessionId: summary.sessionId,
    framesPlanned: planned,
    framesSent: sent,
    framesAcked: acked,
    framesRejected: rejected,
    framesLost: lost,
    bytesSent: figures.bytesSent,
    pointsPerFrame,
    seconds: figures.seconds,
    achievedHz: figures.achievedHz,
    mbPerSec: figures.mbPerSec,
    late: figures.lateFrames,
    latencyMs: figures.latencyMs,
    maxMessageBytes,
    encoding: options.encoding,
    bytesPerPoint: figures.bytesPerPoint,
    maxError: figures.maxError,
    encodeMsP50: encodeMs.length > 0 ? round(percentile(encodeMs, 50)) : 0,
    nonFinitePointsDropped,
    fields: Object.entries(sentFields).map(([name, values]) => ({
      name,
      type: fieldTypeOf(values) ?? 'f32',
    })),
    rejections: [...rejections],
    reconnects,
  };
  onProgress({ ...summary, phase: 'done' });
  return result;
}
