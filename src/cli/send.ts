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
import type { PointEncodingName } from '../wire/encodings/index.js';
import { toStreamName } from '../wire/control.js';
import type { Logger } from '../util/logger.js';
import { percentile, round } from './stats.js';

export interface SendCommandOptions {
  readonly signalingUrl: string;
  /** The stream's name; undefined: {@link defaultStreamName}. */
  readonly stream: string | undefined;
  readonly points: number;
  /** Generated points: `random` (uniform in a cube, incompressible) or `lidar` (a simulated scan). */
  readonly source: 'random' | 'lidar';
  /** Stream frames from this file or directory instead of generated points. */
  readonly from: string | undefined;
  /** Frames per second; 0 sends as fast as the connection allows. */
  readonly rate: number;
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
  readonly framesPlanned: number;
  readonly framesSent: number;
  readonly framesAcked: number;
  readonly framesRejected: number;
  readonly framesLost: number;
  /** Frames not sent because their time passed while reconnecting. */
  readonly framesSkipped: number;
  readonly reconnects: number;
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
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly lateFrames: number;
  readonly chunkBytes: number;
  readonly cpuSeconds: number;
  readonly peakRssBytes: number;
  readonly rejections: Readonly<Record<string, number>>;
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
 * Streams frames of random points and returns the summary. When the connection fails mid-stream
 * it connects again (bounded, with backoff) and goes on with the next frame number; frames left
 * without a receipt are counted lost, frames whose time passed during the outage skipped.
 * Throws only if it cannot connect at all.
 */
export async function runSend(options: SendCommandOptions): Promise<SendSummary> {
  const cpuStart = process.cpuUsage();
  // A bad file fails here, before any connection.
  const source: PointSource =
    options.from !== undefined
      ? openFileSource(options.from)
      : options.source === 'lidar'
        ? new LidarSceneSource(options.points)
        : new RandomPointSource(options.points);
  const framesPlanned =
    options.frames ?? source.frameCount ?? Math.round(options.rate * options.duration);
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
      maxFramesInFlight: options.maxInFlight,
      connectTimeoutMs: options.connectTimeoutMs,
      logger,
      signal,
    });

  let pointsPerFrame = 0;
  const latencies: number[] = [];
  const rejections: Record<string, number> = {};
  const sessions: string[] = [];
  let recording: string | undefined;
  let framesSent = 0;
  let pointsSent = 0;
  let maxError = 0;
  let framesAcked = 0;
  let framesRejected = 0;
  let framesLost = 0;
  let framesSkipped = 0;
  let reconnects = 0;
  let bytesSent = 0;
  let lateFrames = 0;
  let firstAckAt = 0;
  let lastAckAt = 0;
  /** When the last receipt arrived; closing the session afterwards is not streaming time. */
  let streamEnd: number | undefined;
  let stopReason: { code: ErrorCode; reason: string } | undefined;
  let lastEnd: { code: ErrorCode; reason: string } | undefined;
  let closing = false;

  const onReceipt = (receipt: FrameReceipt): void => {
    if (receipt.ok) {
      framesAcked++;
      latencies.push(receipt.latencyMs);
      lastAckAt = performance.now();
      if (framesAcked === 1) firstAckAt = lastAckAt;
    } else {
      framesRejected++;
      rejections[receipt.code] = (rejections[receipt.code] ?? 0) + 1;
      logger.warn(
        { event: 'frame-rejected', seq: receipt.seq, code: receipt.code },
        `frame ${receipt.seq} rejected: ${receipt.message}`,
      );
    }
  };
  const onLost = (error: unknown): void => {
    framesLost++;
    logger.warn({ event: 'frame-lost', err: error }, (error as Error).message);
  };
  const attach = (client: PointstreamClient): PointstreamClient => {
    if (client.sessionId !== undefined) sessions.push(client.sessionId);
    recording = client.recording;
    client.on('closed', (end) => {
      if (!closing) lastEnd = end;
    });
    return client;
  };

  let client = attach(await connectAt(0));
  const start = performance.now();
  const period = options.rate > 0 ? 1000 / options.rate : 0;
  const progress = options.progress
    ? startProgress(() => ({
        framesSent,
        framesAcked,
        framesLost: framesLost + framesRejected + framesSkipped,
        bytesSent,
        start,
        latencies,
        framesPlanned,
      }))
    : undefined;
  try {
    let k = 0;
    while (k < framesPlanned && !signal.aborted) {
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
        const next = await reconnect(resumeAt, end);
        if (next === undefined) break;
        client = attach(next.client);
        if (next.firstSeq > k) {
          const skipped = next.firstSeq - k;
          framesSkipped += skipped;
          logger.warn(
            { event: 'frames-skipped', from: k, count: skipped },
            `${skipped} frames skipped while reconnecting`,
          );
          k = next.firstSeq;
          continue;
        }
      }
      if (period > 0) {
        const wait = start + k * period - performance.now();
        if (wait > 0) await sleep(wait, undefined, { signal }).catch(() => undefined);
        else if (wait < -period / 2) lateFrames++;
        if (signal.aborted) break;
      }
      const points = source.next();
      pointsPerFrame = points.length / 3;
      try {
        const sent = await client.send(points, { signal });
        framesSent++;
        bytesSent += sent.bytes;
        pointsSent += points.length / 3;
        maxError = Math.max(maxError, sent.maxError);
        sent.receipt.then(onReceipt, onLost);
        k++;
      } catch (error) {
        if (signal.aborted) break;
        const code = (error as PointstreamError).code ?? ErrorCodes.CHANNEL_CLOSED;
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
    streamEnd = performance.now();
  } finally {
    progress?.stop();
    closing = true;
    await client.close();
  }
  if (signal.aborted) stopReason ??= { code: ErrorCodes.ABORTED, reason: 'interrupted' };

  async function reconnect(
    resumeAt: () => number,
    end: { code: ErrorCode; reason: string },
  ): Promise<{ client: PointstreamClient; firstSeq: number } | undefined> {
    let lastError: unknown = new PointstreamError(end.code, end.reason);
    while (reconnects < options.maxReconnects && !signal.aborted) {
      reconnects++;
      const delay = backoffMs(reconnects, lastError);
      logger.warn(
        { event: 'reconnecting', attempt: reconnects, delayMs: delay, after: end.code },
        `connection lost (${end.reason}); reconnecting in ${delay} ms (attempt ${reconnects} of ${options.maxReconnects})`,
      );
      await sleep(delay, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) break;
      try {
        lastEnd = undefined;
        const firstSeq = resumeAt();
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
    stopReason = {
      code: (lastError as PointstreamError).code ?? end.code,
      reason: `${end.reason}; gave up after ${reconnects} reconnect attempts: ${(lastError as Error).message}`,
    };
    return undefined;
  }

  const seconds = ((streamEnd ?? performance.now()) - start) / 1000;
  const ackSpan = (lastAckAt - firstAckAt) / 1000;
  const achievedHz = framesAcked >= 2 && ackSpan > 0 ? (framesAcked - 1) / ackSpan : 0;
  const cpu = process.cpuUsage(cpuStart);
  const ok = stopReason === undefined && framesAcked === framesPlanned;
  let reason: string;
  if (ok)
    reason = `all ${framesPlanned} frames acknowledged intact${reconnects > 0 ? ` (after ${reconnects} reconnects)` : ''}`;
  else if (stopReason)
    reason = `${stopReason.reason} (${stopReason.code}); ${framesAcked} of ${framesPlanned} frames acknowledged`;
  else
    reason = `${framesAcked} of ${framesPlanned} frames acknowledged intact: ${framesRejected} rejected, ${framesLost} lost, ${framesSkipped} skipped while reconnecting`;
  return {
    ok,
    reason,
    stream,
    session: sessions[sessions.length - 1],
    recording,
    sessions,
    framesPlanned,
    framesSent,
    framesAcked,
    framesRejected,
    framesLost,
    framesSkipped,
    reconnects,
    pointsPerFrame,
    encoding: options.encoding,
    bytesPerPoint: pointsSent > 0 ? round(bytesSent / pointsSent, 3) : 0,
    maxError,
    bytesSent,
    seconds: round(seconds, 2),
    achievedHz: round(achievedHz, 3),
    mbPerSec: round(bytesSent / 1e6 / seconds, 1),
    latencyMs: {
      p50: round(percentile(latencies, 50)),
      p99: round(percentile(latencies, 99)),
      max: round(Math.max(0, ...latencies)),
    },
    lateFrames,
    chunkBytes: client.maxMessageBytes,
    cpuSeconds: round((cpu.user + cpu.system) / 1e6, 2),
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    rejections,
    errorCode: ok
      ? undefined
      : (stopReason?.code ??
        (framesRejected > 0 ? ErrorCodes.FRAME_REJECTED : ErrorCodes.FRAME_LOST)),
  };
}

interface ProgressState {
  framesSent: number;
  framesAcked: number;
  framesLost: number;
  bytesSent: number;
  start: number;
  latencies: number[];
  framesPlanned: number;
}

/** One status line on stderr, redrawn every second. */
function startProgress(read: () => ProgressState): { stop(): void } {
  const draw = (): void => {
    const s = read();
    const seconds = (performance.now() - s.start) / 1000;
    const recent = s.latencies.slice(-20);
    const line = `frames ${s.framesSent}/${s.framesPlanned}  acked ${s.framesAcked}  lost ${s.framesLost}  ${(s.bytesSent / 1e6 / Math.max(seconds, 1e-3)).toFixed(1)} MB/s  latency p50 ${recent.length ? percentile(recent, 50).toFixed(0) : '-'} ms  ${seconds.toFixed(0)} s`;
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

export function formatSummary(summary: SendSummary): string {
  const lines = [
    `${summary.ok ? 'OK' : 'FAILED'}: ${summary.reason}`,
    `  stream     ${summary.stream}, session ${summary.session ?? '-'}${summary.sessions.length > 1 ? ` (${summary.sessions.length} sessions)` : ''}${summary.recording === undefined ? '' : `, recorded by the server in ${summary.recording}`}`,
    `  frames     sent ${summary.framesSent}, acknowledged ${summary.framesAcked}, rejected ${summary.framesRejected}, lost ${summary.framesLost}${summary.framesSkipped ? `, skipped ${summary.framesSkipped}` : ''} (planned ${summary.framesPlanned})${summary.reconnects ? `, ${summary.reconnects} reconnects` : ''}`,
    `  rate       ${summary.achievedHz} frames/s achieved, ${summary.mbPerSec} MB/s, ${summary.pointsPerFrame.toLocaleString('en-US')} points/frame, ${summary.lateFrames} late`,
    `  encoding   ${summary.encoding}: ${summary.bytesPerPoint} bytes/point${summary.encoding === 'raw' ? ' (lossless)' : `, max error ${(summary.maxError * 1000).toPrecision(3)} mm`}`,
    `  latency    p50 ${summary.latencyMs.p50} ms, p99 ${summary.latencyMs.p99} ms, max ${summary.latencyMs.max} ms (first chunk sent -> frame verified receipt)`,
    `  client     ${summary.cpuSeconds} CPU s over ${summary.seconds} s (${Math.round((summary.cpuSeconds / summary.seconds) * 100)}% of a core), chunks of ${summary.chunkBytes} bytes`,
  ];
  for (const [code, count] of Object.entries(summary.rejections))
    lines.push(`  rejected   ${count} x ${code}`);
  return lines.join('\n');
}
