import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../client/client.js';
import type { PointstreamClient } from '../client/client.js';
import type { FrameReceipt } from '../client/types.js';
import { ErrorCodes, PointstreamError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { openFileSource } from '../sources/files.js';
import { LidarSceneSource } from '../sources/lidar.js';
import { RandomPointSource } from '../sources/random.js';
import type { PointSource } from '../sources/source.js';
import { NonFiniteFilter } from '../sources/finite.js';
import { describeConversion } from '../sources/point-files.js';
import type { PointFileConversion } from '../sources/point-files.js';
import type { PointEncodingName } from '../wire/encodings/index.js';
import { FIELD_TYPES, NO_FIELDS, fieldTypeOf } from '../wire/fields.js';
import type { FieldTypeName, PointFields } from '../wire/fields.js';
import type { SendOptions } from '../sender/types.js';
import { checkFieldPrecision } from '../sources/field-flags.js';
import { toStreamName } from '../wire/control.js';
import type { Logger } from '../util/logger.js';
import { RunStats, pace, percentile, round } from '../sender/run-stats.js';

export interface SendCommandOptions {
  readonly signalingUrl: string;
  /** The stream's name; undefined: {@link defaultStreamName}. */
  readonly stream: string | undefined;
  readonly points: number;
  /** Generated points: `random` (uniform in a cube, incompressible) or `lidar` (a simulated scan). */
  readonly source: 'random' | 'lidar';
  /** Stream frames from this file or directory instead of generated points. */
  readonly from: string | undefined;
  /**
   * `--fields`: names of the columns of an (N, K) `.npy` given to `from` (x, y, z among them, `_`
   * for a column not sent). Files with named fields (structured `.npy`, `.ply`, `.pcd`) send
   * every field without it.
   */
  readonly fields?: readonly string[] | undefined;
  /**
   * `--field-precision`: largest error per float field, by name, for q16/qrice frames (absent:
   * every field lossless).
   */
  readonly fieldPrecision?: Readonly<Record<string, number>> | undefined;
  /** Drop points with a NaN or infinite coordinate from each frame rather than refuse the frame. */
  readonly dropNonFinite: boolean;
  /** Frames per second; 0 sends as fast as the connection allows. */
  readonly rate: number;
  /** Seconds to stream: `rate x duration` frames, or with rate 0 unpaced frames until it is up. */
  readonly duration: number;
  /** Overrides `rate x duration` when set. */
  readonly frames: number | undefined;
  readonly bindAddress: string | undefined;
  readonly mtu: number | undefined;
  readonly chunkBytes: number;
  /** How points travel: raw float32, q16 or qrice (docs/encodings.md). */
  readonly encoding: PointEncodingName;
  /** qrice's largest error per coordinate, metres. */
  readonly precision: number | undefined;
  readonly maxInFlight: number;
  readonly connectTimeoutMs: number;
  /** Silence from a server that sends heartbeats after which it counts as gone (`PS_ERR_PEER_SILENT`). */
  readonly livenessTimeoutMs?: number | undefined;
  readonly token: string | undefined;
  readonly ca: Buffer | undefined;
  /** Connect again after a mid-stream failure. */
  readonly reconnect: boolean;
  readonly maxReconnects: number;
  readonly progress: boolean;
  readonly logger: Logger;
  readonly signal: AbortSignal;
}

/** What `pointstream send` prints at the end (the `--json` line). */
export interface SendSummary {
  readonly ok: boolean;
  readonly reason: string;
  /** The stream the frames fed (the same across reconnects). */
  readonly stream: string;
  readonly session: string | undefined;
  /** Where the server recorded the last session (a directory on the server), when it records. */
  readonly recording: string | undefined;
  /** Every session used, in order (more than one after reconnects). */
  readonly sessions: readonly string[];
  /**
   * Frames the run meant to send. With `--rate 0` and no `--frames` the run is bounded by time,
   * and this is the number of frames it got to. Always
   * `framesAcked + framesRejected + framesLost + framesSkipped + framesNotSent`.
   */
  readonly framesPlanned: number;
  /** Frames handed to the channel: `framesAcked + framesRejected + framesLost`. */
  readonly framesSent: number;
  readonly framesAcked: number;
  readonly framesRejected: number;
  /** Frames sent whose receipt never came (connection lost, receipt timeout). */
  readonly framesLost: number;
  /** Frames not sent because their time passed while reconnecting. */
  readonly framesSkipped: number;
  /** Frames not sent because the run ended early (gave up, interrupted, stopped by an error). */
  readonly framesNotSent: number;
  readonly reconnects: number;
  /**
   * Times the server moved the session (`PS_ERR_SESSION_MOVED`, a draining node): each followed by
   * an immediate reconnect that sends the refused frame again, nothing skipped.
   */
  readonly moves: number;
  /** Times the server fell silent (`PS_ERR_PEER_SILENT`, a dead node): each followed by a reconnect. */
  readonly peerSilent: number;
  readonly pointsPerFrame: number;
  readonly encoding: PointEncodingName;
  /** Payload bytes per point sent (12 plus the .npy header for raw). */
  readonly bytesPerPoint: number;
  /** Largest error of any coordinate sent, metres (0 for raw). */
  readonly maxError: number;
  readonly bytesSent: number;
  readonly seconds: number;
  readonly achievedHz: number;
  readonly mbPerSec: number;
  /** Of acknowledged frames; all 0 when none was. */
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  /** Paced frames that started more than half a period after their time (the link or the source could not keep up). */
  readonly lateFrames: number;
  readonly chunkBytes: number;
  /** Where WebRTC ran: the bound address (null: all interfaces) and the MTU (4096 when the server is on this machine). */
  readonly route: { readonly bindAddress: string | null; readonly mtu: number };
  readonly cpuSeconds: number;
  readonly peakRssBytes: number;
  readonly rejections: Readonly<Record<string, number>>;
  /** `--drop-non-finite`: points dropped for a NaN or infinite coordinate, over all frames sent. */
  readonly nonFinitePointsDropped: number;
  /** `--from`: values per point read but not sent (columns 4+ of an (N, K) array, other PLY properties); 0 for none. */
  readonly inputDroppedColumns: number;
  /** `--from`: the type coordinates were converted from to float32 (`float64`...); absent when none. */
  readonly inputConvertedFrom: string | undefined;
  /** The per-point fields of the last frame sent, in wire order, with their types; empty for none. */
  readonly fields: readonly {
    readonly name: string;
    readonly type: FieldTypeName;
    /** The largest error its values were sent with (`--field-precision`); 0: lossless. */
    readonly maxError: number;
  }[];
  readonly errorCode: ErrorCode | undefined;
}

/** `<host>-<pid>`: one name per sender process, the same across its reconnects. */
export function defaultStreamName(): string {
  return toStreamName(`${hostname().split('.')[0] ?? 'host'}-${process.pid}`);
}

/** Connection endings after which `send` connects again (the rest are the caller's problem). */
const RECONNECTABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCodes.CONNECTION_FAILED,
  ErrorCodes.CHANNEL_CLOSED,
  ErrorCodes.SESSION_CLOSED,
  ErrorCodes.CONNECT_TIMEOUT,
  ErrorCodes.SIGNALING_FAILED,
  ErrorCodes.SIGNALING_REJECTED,
  ErrorCodes.SESSION_MOVED,
  ErrorCodes.PEER_SILENT,
]);

/** Endings after which the first reconnect attempt goes at once (a node drained or died). */
const IMMEDIATE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCodes.SESSION_MOVED,
  ErrorCodes.PEER_SILENT,
]);

function retryable(error: unknown): boolean {
  const e = error as PointstreamError;
  if (!RECONNECTABLE.has(e.code)) return false;
  // Of the refusals only "come back later" is worth retrying.
  return (
    e.code !== ErrorCodes.SIGNALING_REJECTED ||
    e.details?.status === 503 ||
    e.details?.status === 429
  );
}

/** Backoff before reconnect attempt `attempt` (1-based): 0.5 s doubling to 8 s, or the server's Retry-After. */
function backoffMs(attempt: number, error: unknown): number {
  const retryAfter = Number((error as PointstreamError).details?.retryAfter);
  if (Number.isFinite(retryAfter) && retryAfter > 0) return Math.min(retryAfter, 30) * 1000;
  return Math.min(8000, 500 * 2 ** (attempt - 1));
}

/**
 * Streams frames and returns the summary. When the connection fails mid-stream it connects again
 * (bounded, with backoff) and goes on with the next frame number; frames left without a receipt
 * are counted lost, frames whose time passed during the outage skipped, and frames never sent
 * because the run ended early (gave up, interrupted, an error) not sent. Throws only if it cannot
 * connect at all.
 */
export async function runSend(options: SendCommandOptions): Promise<SendSummary> {
  const cpuStart = process.cpuUsage();
  // A bad file fails here, before any connection.
  if (options.fields !== undefined && options.from === undefined)
    throw new RangeError('--fields names the columns of a --from file');
  const source: PointSource =
    options.from !== undefined
      ? openFileSource(options.from, { fieldNames: options.fields })
      : options.source === 'lidar'
        ? new LidarSceneSource(options.points)
        : new RandomPointSource(options.points);
  // A file's fields are known now: a precision for a field it lacks is a mistake in the flags.
  if (options.fieldPrecision !== undefined && source.fields !== undefined)
    checkPrecisionFlag(options.fieldPrecision, source.fields);
  // `--rate 0` without a frame count streams unpaced until `duration` is up.
  const fixedPlan = options.frames ?? source.frameCount;
  const untilMs =
    fixedPlan === undefined && options.rate === 0 ? options.duration * 1000 : undefined;
  let framesPlanned = fixedPlan ?? Math.round(options.rate * options.duration);
  // A run that plans nothing would end "OK" having done nothing: refuse it up front.
  if (untilMs === undefined ? framesPlanned < 1 : !(untilMs > 0))
    throw new RangeError(
      `nothing to send: ${
        options.frames !== undefined
          ? `--frames ${options.frames}`
          : untilMs === undefined
            ? `--rate ${options.rate} x --duration ${options.duration} plans ${framesPlanned} frames`
            : `--duration ${options.duration}`
      }`,
    );
  const { signal, logger } = options;
  const stream = options.stream ?? defaultStreamName();
  const connectAt = (firstSeq: number): Promise<PointstreamClient> =>
    connect({
      signalingUrl: options.signalingUrl,
      stream,
      ...(options.token === undefined ? {} : { token: options.token }),
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      rtc: {
        ...(options.bindAddress === undefined ? {} : { bindAddress: options.bindAddress }),
        ...(options.mtu === undefined ? {} : { mtu: options.mtu }),
      },
      firstSeq,
      maxMessageBytes: options.chunkBytes,
      encoding: options.encoding,
      ...(options.precision === undefined ? {} : { precision: options.precision }),
      ...(options.fieldPrecision === undefined ? {} : { fieldPrecision: options.fieldPrecision }),
      maxFramesInFlight: options.maxInFlight,
      connectTimeoutMs: options.connectTimeoutMs,
      ...(options.livenessTimeoutMs === undefined
        ? {}
        : { livenessTimeoutMs: options.livenessTimeoutMs }),
      logger,
      signal,
    });

  let pointsPerFrame = 0;
  const nonFinite = options.dropNonFinite ? new NonFiniteFilter() : undefined;
  let nonFinitePointsDropped = 0;
  let inputDroppedColumns = 0;
  let inputConvertedFrom: string | undefined;
  const inputWarnings = new Set<string>();
  /** Says once per kind what reading the input dropped or converted: never silently. */
  const noteConversion = (conversion: PointFileConversion | undefined): void => {
    if (conversion === undefined) return;
    inputDroppedColumns = Math.max(inputDroppedColumns, conversion.droppedColumns);
    inputConvertedFrom ??= conversion.convertedFrom;
    const text = describeConversion(conversion);
    if (text === undefined || inputWarnings.has(text)) return;
    inputWarnings.add(text);
    logger.warn({ event: 'input-converted', ...conversion }, `${options.from ?? 'input'}: ${text}`);
  };
  const stats = new RunStats();
  const sessions: string[] = [];
  let skipped = 0;
  let recording: string | undefined;
  let reconnects = 0;
  let moves = 0;
  let peerSilent = 0;
  /** A frame the server refused unsent (it moved the session): sent first on the next session. */
  let held: { points: Float32Array; fields: PointFields; dropped: number } | undefined;
  let sentFields: PointFields = NO_FIELDS;
  /** The largest error each field was sent with (0: lossless). */
  const fieldMaxErrors = new Map<string, number>();
  let fieldsChecked = source.fields !== undefined;
  /** Resolves when the current client ended. */
  let clientEnded: Promise<void> = Promise.resolve();
  /** Frames the loop got to: sent, or skipped while reconnecting. */
  let k = 0;
  let stopReason: { code: ErrorCode; reason: string } | undefined;
  let lastEnd: { code: ErrorCode; reason: string } | undefined;
  let closing = false;

  const onSettled = (outcome: FrameReceipt | Error): void => {
    if (outcome instanceof Error)
      logger.warn({ event: 'frame-lost', err: outcome }, outcome.message);
    else if (!outcome.ok)
      logger.warn(
        { event: 'frame-rejected', seq: outcome.seq, code: outcome.code },
        `frame ${outcome.seq} rejected: ${outcome.message}`,
      );
  };
  const attach = (client: PointstreamClient): PointstreamClient => {
    if (client.sessionId !== undefined) sessions.push(client.sessionId);
    recording = client.recording;
    clientEnded = new Promise((resolve) =>
      client.on('closed', (end) => {
        if (!closing) lastEnd = end;
        resolve();
      }),
    );
    return client;
  };

  let client = attach(await connectAt(0));
  stats.start();
  const start = stats.startedAt;
  const period = options.rate > 0 ? 1000 / options.rate : 0;
  const more = (): boolean =>
    untilMs === undefined ? k < framesPlanned : performance.now() - start < untilMs;
  const progress = options.progress
    ? startProgress(stats, () => skipped, untilMs === undefined ? framesPlanned : undefined)
    : undefined;
  try {
    while (more() && !signal.aborted) {
      if (client.closed) {
        const end = lastEnd ?? { code: ErrorCodes.CHANNEL_CLOSED, reason: 'connection closed' };
        if (!options.reconnect || !RECONNECTABLE.has(end.code)) {
          stopReason = end;
          break;
        }
        // Frames whose time passes while disconnected are skipped, not sent in a burst after.
        const resumeAt = (): number =>
          period > 0
            ? Math.min(framesPlanned, Math.max(k, Math.floor((performance.now() - start) / period)))
            : k;
        if (end.code === ErrorCodes.SESSION_MOVED) moves++;
        else if (end.code === ErrorCodes.PEER_SILENT) peerSilent++;
        const next = await reconnect(resumeAt, end);
        if (next === undefined) break;
        client = attach(next.client);
        if (next.firstSeq > k) {
          const count = next.firstSeq - k;
          skipped += count;
          logger.warn(
            { event: 'frames-skipped', from: k, count },
            `${count} frames skipped while reconnecting`,
          );
          k = next.firstSeq;
          continue;
        }
      }
      await pace(stats, { rate: options.rate, k, signal });
      if (signal.aborted) break;
      let points: Float32Array;
      let fields: PointFields;
      let dropped = 0;
      if (held !== undefined) {
        ({ points, fields, dropped } = held);
        held = undefined;
      } else {
        try {
          points = source.next();
          fields = source.fields ?? NO_FIELDS;
          noteConversion(source.conversion);
          if (!fieldsChecked && options.fieldPrecision !== undefined) {
            fieldsChecked = true;
            checkPrecisionFlag(options.fieldPrecision, fields);
          }
        } catch (error) {
          // A file of a recording that cannot be read: the run stops, the summary still prints.
          stopReason = {
            code:
              (error as PointstreamError).code ??
              (error instanceof RangeError
                ? ErrorCodes.INVALID_OPTION
                : ErrorCodes.SOURCE_UNREADABLE),
            reason: (error as Error).message,
          };
          break;
        }
        if (nonFinite !== undefined)
          ({ points, fields, dropped } = nonFinite.apply(points, fields));
      }
      pointsPerFrame = points.length / 3;
      try {
        // Generated points, and what the filter kept, are finite: the client need not check them.
        const finite = source.finite === true || nonFinite !== undefined;
        // Frames without fields go as before: no fields option at all.
        const sendOptions: SendOptions =
          fields === NO_FIELDS || Object.keys(fields).length === 0
            ? { signal, finite }
            : { signal, finite, fields };
        const sent = await client.send(points, sendOptions);
        sentFields = fields;
        for (const [name, error] of Object.entries(sent.fieldMaxErrors ?? {}))
          fieldMaxErrors.set(name, Math.max(fieldMaxErrors.get(name) ?? 0, error));
        nonFinitePointsDropped += dropped;
        void stats.track(sent, points.length / 3, onSettled);
        k++;
      } catch (error) {
        if (signal.aborted) break;
        const code = (error as PointstreamError).code ?? ErrorCodes.CHANNEL_CLOSED;
        if (code === ErrorCodes.SESSION_MOVED) {
          // Refused unsent: kept for the next session; the frames in flight get their receipts.
          held = { points, fields, dropped };
          await clientEnded;
          lastEnd ??= { code, reason: (error as Error).message };
          continue;
        }
        if (!client.closed) {
          // The frame itself is wrong (too large for the server, say): reconnecting cannot help.
          stopReason = { code, reason: (error as Error).message };
          break;
        }
        // The connection ended under the send: the loop reconnects (or stops) at the top.
        lastEnd ??= { code, reason: (error as Error).message };
      }
    }
    await client.flush();
    stats.finish();
  } finally {
    progress?.stop();
    closing = true;
    await client.close();
  }
  if (signal.aborted) stopReason ??= { code: ErrorCodes.ABORTED, reason: 'interrupted' };
  // A time-bounded run planned the frames it got to.
  if (untilMs !== undefined) framesPlanned = k;
  // Every frame the run got to has exactly one outcome; the rest were never sent.
  const framesNotSent = framesPlanned - k;

  async function reconnect(
    resumeAt: () => number,
    end: { code: ErrorCode; reason: string },
  ): Promise<{ client: PointstreamClient; firstSeq: number } | undefined> {
    let lastError: unknown = new PointstreamError(end.code, end.reason);
    let attempt = 0;
    // The limit and the backoff count this outage's attempts: a sensor that lives through many
    // failovers (a node killed, drained) keeps reconnecting, each time from the first attempt.
    while (attempt < options.maxReconnects && !signal.aborted) {
      reconnects++;
      attempt++;
      const delay = attempt === 1 && IMMEDIATE.has(end.code) ? 0 : backoffMs(attempt, lastError);
      logger.warn(
        { event: 'reconnecting', attempt, delayMs: delay, after: end.code },
        `connection lost (${end.reason}); reconnecting in ${delay} ms (attempt ${attempt} of ${options.maxReconnects})`,
      );
      if (delay > 0) await sleep(delay, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) break;
      try {
        lastEnd = undefined;
        // A move skips nothing: the refused frame and those due meanwhile go out on the new session.
        const firstSeq = end.code === ErrorCodes.SESSION_MOVED ? k : resumeAt();
        const next = await connectAt(firstSeq);
        logger.warn(
          { event: 'reconnected', session: next.sessionId, firstSeq },
          `reconnected; continuing with frame ${firstSeq}`,
        );
        return { client: next, firstSeq };
      } catch (error) {
        lastError = error;
        if (!retryable(error)) break;
      }
    }
    if (signal.aborted) return undefined;
    stopReason = {
      code: (lastError as PointstreamError).code ?? end.code,
      reason:
        options.maxReconnects === 0 || !options.reconnect
          ? end.reason
          : `${end.reason}; gave up after ${attempt} reconnect attempts: ${(lastError as Error).message}`,
    };
    return undefined;
  }

  const figures = stats.figures();
  const cpu = process.cpuUsage(cpuStart);
  // A run that sent nothing did not succeed, whatever it planned.
  const ok = stopReason === undefined && framesPlanned > 0 && figures.framesAcked === framesPlanned;
  const tally = `${figures.framesAcked} of ${framesPlanned} frames acknowledged`;
  let reason: string;
  if (ok)
    reason = `all ${framesPlanned} frames acknowledged intact${reconnects > 0 ? ` (after ${reconnects} reconnects)` : ''}`;
  else if (stopReason) reason = `${stopReason.reason} (${stopReason.code}); ${tally}`;
  else if (framesPlanned === 0) reason = 'no frame was sent';
  else
    reason = `${tally} intact: ${figures.framesRejected} rejected, ${figures.framesLost} lost, ${skipped} skipped while reconnecting`;
  const rejections: Record<string, number> = {};
  for (const { code } of stats.rejections) rejections[code] = (rejections[code] ?? 0) + 1;
  return {
    ok,
    reason,
    stream,
    session: sessions[sessions.length - 1],
    recording,
    sessions,
    framesPlanned,
    framesSent: figures.framesSent,
    framesAcked: figures.framesAcked,
    framesRejected: figures.framesRejected,
    framesLost: figures.framesLost,
    framesSkipped: skipped,
    framesNotSent,
    reconnects,
    moves,
    peerSilent,
    pointsPerFrame,
    encoding: options.encoding,
    bytesPerPoint: figures.bytesPerPoint,
    maxError: figures.maxError,
    bytesSent: figures.bytesSent,
    seconds: figures.seconds,
    achievedHz: figures.achievedHz,
    mbPerSec: figures.mbPerSec,
    latencyMs: figures.latencyMs,
    lateFrames: figures.lateFrames,
    chunkBytes: client.maxMessageBytes,
    route: { bindAddress: client.route.bindAddress ?? null, mtu: client.route.mtu },
    cpuSeconds: round((cpu.user + cpu.system) / 1e6, 2),
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    rejections,
    nonFinitePointsDropped,
    inputDroppedColumns,
    inputConvertedFrom,
    fields: Object.entries(sentFields).map(([name, values]) => ({
      name,
      type: fieldTypeOf(values) ?? 'f32',
      maxError: fieldMaxErrors.get(name) ?? 0,
    })),
    errorCode: ok
      ? undefined
      : (stopReason?.code ??
        (figures.framesRejected > 0 ? ErrorCodes.FRAME_REJECTED : ErrorCodes.FRAME_LOST)),
  };
}

/** One status line on stderr, redrawn every second; the same counts as the summary. */
function startProgress(
  stats: RunStats,
  skipped: () => number,
  framesPlanned: number | undefined,
): { stop(): void } {
  const draw = (): void => {
    const f = stats.figures();
    const seconds = (performance.now() - stats.startedAt) / 1000;
    const recent = stats.latencies.slice(-20);
    const line =
      `frames ${f.framesSent}${framesPlanned === undefined ? '' : `/${framesPlanned}`}  acked ${f.framesAcked}  rejected ${f.framesRejected}  lost ${f.framesLost}` +
      `${skipped() ? `  skipped ${skipped()}` : ''}  ${(f.bytesSent / 1e6 / Math.max(seconds, 1e-3)).toFixed(1)} MB/s` +
      `  latency p50 ${recent.length ? percentile(recent, 50).toFixed(0) : '-'} ms  ${seconds.toFixed(0)} s`;
    process.stderr.write(`\r${line}\u001b[K`);
  };
  const timer = setInterval(draw, 1000);
  return {
    stop() {
      clearInterval(timer);
      draw();
      process.stderr.write('\n');
    },
  };
}

/** `part / whole` as a whole percentage, 0 when `whole` is 0 (a summary never prints NaN). */
function percentOf(part: number, whole: number): number {
  return whole > 0 ? Math.round((part / whole) * 100) : 0;
}

export function formatSummary(summary: SendSummary): string {
  const { latencyMs: l } = summary;
  const lines = [
    `${summary.ok ? 'OK' : 'FAILED'}: ${summary.reason}`,
    `  stream     ${summary.stream}, session ${summary.session ?? '-'}${summary.sessions.length > 1 ? ` (${summary.sessions.length} sessions)` : ''}${summary.recording === undefined ? '' : `, recorded by the server in ${summary.recording}`}`,
    `  frames     sent ${summary.framesSent}, acknowledged ${summary.framesAcked}, rejected ${summary.framesRejected}, lost ${summary.framesLost}${summary.framesSkipped ? `, skipped ${summary.framesSkipped}` : ''}${summary.framesNotSent ? `, not sent ${summary.framesNotSent}` : ''} (planned ${summary.framesPlanned})${summary.reconnects ? `, ${summary.reconnects} reconnects` : ''}${summary.moves ? ` (${summary.moves} moved by the server)` : ''}${summary.peerSilent ? ` (server silent ${summary.peerSilent}x)` : ''}`,
    `  rate       ${summary.achievedHz} frames/s achieved, ${summary.mbPerSec} MB/s, ${summary.pointsPerFrame.toLocaleString('en-US')} points/frame, ${summary.lateFrames} late`,
    `  encoding   ${summary.encoding}: ${summary.bytesPerPoint} bytes/point${summary.encoding === 'raw' ? ' (lossless)' : `, max error ${(summary.maxError * 1000).toPrecision(3)} mm`}`,
    summary.framesAcked === 0
      ? '  latency    - (no frame acknowledged)'
      : `  latency    p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms (first chunk sent -> frame verified receipt)`,
    `  client     ${summary.cpuSeconds} CPU s over ${summary.seconds} s (${percentOf(summary.cpuSeconds, summary.seconds)}% of a core), chunks of ${summary.chunkBytes} bytes`,
  ];
  const { bindAddress, mtu } = summary.route;
  lines.push(
    `  route      WebRTC ${bindAddress === null ? 'on all interfaces' : `bound to ${bindAddress}`}, MTU ${mtu}`,
  );
  const input = describeConversion({
    droppedColumns: summary.inputDroppedColumns,
    convertedFrom: summary.inputConvertedFrom,
  });
  if (input !== undefined) lines.push(`  input      ${input}`);
  if (summary.fields.length > 0)
    lines.push(
      `  fields     ${summary.fields.map((f) => `${f.name} (${FIELD_TYPES[f.type].numpy}${f.maxError > 0 ? `, max error ${f.maxError.toPrecision(3)}` : ''})`).join(', ')}`,
    );
  if (summary.nonFinitePointsDropped > 0)
    lines.push(
      `  dropped    ${summary.nonFinitePointsDropped.toLocaleString('en-US')} points with a NaN or infinite coordinate`,
    );
  for (const [code, count] of Object.entries(summary.rejections))
    lines.push(`  rejected   ${count} x ${code}`);
  return lines.join('\n');
}

/** {@link checkFieldPrecision}, its error naming the flag. */
function checkPrecisionFlag(
  fieldPrecision: Readonly<Record<string, number>>,
  fields: PointFields,
): void {
  try {
    checkFieldPrecision(fieldPrecision, fields);
  } catch (error) {
    throw new RangeError(`--field-precision: ${(error as Error).message}`);
  }
}
