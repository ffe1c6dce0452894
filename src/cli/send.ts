import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../client/client.js';
import type { FrameReceipt } from '../client/types.js';
import { ErrorCodes } from '../errors.js';
import type { PointstreamError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { RandomPointSource } from '../sources/random.js';
import type { Logger } from '../util/logger.js';
import { percentile, round } from './stats.js';

export interface SendCommandOptions {
  readonly signalingUrl: string;
  readonly points: number;
  /** Frames per second; 0 sends as fast as the connection allows. */
  readonly rate: number;
  readonly duration: number;
  /** Overrides `rate x duration` when set. */
  readonly frames: number | undefined;
  readonly bindAddress: string | undefined;
  readonly mtu: number | undefined;
  readonly chunkBytes: number;
  readonly maxInFlight: number;
  readonly connectTimeoutMs: number;
  readonly progress: boolean;
  readonly logger: Logger;
  readonly signal: AbortSignal;
}

/** What `pointstream send` prints at the end (the `--json` line). */
export interface SendSummary {
  readonly ok: boolean;
  readonly reason: string;
  readonly session: string | undefined;
  readonly framesPlanned: number;
  readonly framesSent: number;
  readonly framesAcked: number;
  readonly framesRejected: number;
  readonly framesLost: number;
  readonly pointsPerFrame: number;
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

/** Streams frames of random points and returns the summary; throws only if it cannot connect. */
export async function runSend(options: SendCommandOptions): Promise<SendSummary> {
  const cpuStart = process.cpuUsage();
  const framesPlanned = options.frames ?? Math.round(options.rate * options.duration);
  const client = await connect({
    signalingUrl: options.signalingUrl,
    rtc: {
      ...(options.bindAddress === undefined ? {} : { bindAddress: options.bindAddress }),
      ...(options.mtu === undefined ? {} : { mtu: options.mtu }),
    },
    maxMessageBytes: options.chunkBytes,
    maxFramesInFlight: options.maxInFlight,
    connectTimeoutMs: options.connectTimeoutMs,
    logger: options.logger,
    signal: options.signal,
  });
  const source = new RandomPointSource(options.points);
  const latencies: number[] = [];
  const rejections: Record<string, number> = {};
  let framesSent = 0;
  let framesAcked = 0;
  let framesRejected = 0;
  let framesLost = 0;
  let bytesSent = 0;
  let lateFrames = 0;
  let firstAckAt = 0;
  let lastAckAt = 0;
  let stopReason: { code: ErrorCode; reason: string } | undefined;
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
      options.logger.warn(
        { event: 'frame-rejected', seq: receipt.seq, code: receipt.code },
        `frame ${receipt.seq} rejected: ${receipt.message}`,
      );
    }
  };
  const onLost = (error: unknown): void => {
    framesLost++;
    options.logger.warn({ event: 'frame-lost', err: error }, (error as Error).message);
  };
  client.on('closed', ({ code, reason }) => {
    if (!closing) stopReason ??= { code, reason };
  });

  const start = performance.now();
  const period = options.rate > 0 ? 1000 / options.rate : 0;
  const progress = options.progress
    ? startProgress(() => ({
        framesSent,
        framesAcked,
        framesLost: framesLost + framesRejected,
        bytesSent,
        start,
        latencies,
        framesPlanned,
      }))
    : undefined;
  try {
    for (let k = 0; k < framesPlanned && !options.signal.aborted && !client.closed; k++) {
      if (period > 0) {
        const wait = start + k * period - performance.now();
        if (wait > 0)
          await sleep(wait, undefined, { signal: options.signal }).catch(() => undefined);
        else if (wait < -period / 2) lateFrames++;
        if (options.signal.aborted) break;
      }
      const points = source.next();
      try {
        const sent = await client.send(points, { signal: options.signal });
        framesSent++;
        bytesSent += sent.bytes;
        sent.receipt.then(onReceipt, onLost);
      } catch (error) {
        if (options.signal.aborted) break;
        const code = (error as PointstreamError).code ?? ErrorCodes.CHANNEL_CLOSED;
        stopReason ??= { code, reason: (error as Error).message };
        break;
      }
    }
    await client.flush();
  } finally {
    progress?.stop();
    closing = true;
    await client.close();
  }
  if (options.signal.aborted) stopReason ??= { code: ErrorCodes.ABORTED, reason: 'interrupted' };

  const seconds = (performance.now() - start) / 1000;
  const ackSpan = (lastAckAt - firstAckAt) / 1000;
  const achievedHz = framesAcked >= 2 && ackSpan > 0 ? (framesAcked - 1) / ackSpan : 0;
  const cpu = process.cpuUsage(cpuStart);
  const ok =
    stopReason === undefined && framesAcked === framesPlanned && framesSent === framesPlanned;
  let reason: string;
  if (ok) reason = `all ${framesPlanned} frames acknowledged intact`;
  else if (stopReason)
    reason = `${stopReason.reason} (${stopReason.code}); ${framesAcked} of ${framesPlanned} frames acknowledged`;
  else
    reason = `${framesAcked} of ${framesPlanned} frames acknowledged intact: ${framesRejected} rejected, ${framesLost} lost`;
  return {
    ok,
    reason,
    session: client.sessionId,
    framesPlanned,
    framesSent,
    framesAcked,
    framesRejected,
    framesLost,
    pointsPerFrame: options.points,
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
    `  frames     sent ${summary.framesSent}, acknowledged ${summary.framesAcked}, rejected ${summary.framesRejected}, lost ${summary.framesLost} (planned ${summary.framesPlanned})`,
    `  rate       ${summary.achievedHz} frames/s achieved, ${summary.mbPerSec} MB/s, ${summary.pointsPerFrame.toLocaleString('en-US')} points/frame, ${summary.lateFrames} late`,
    `  latency    p50 ${summary.latencyMs.p50} ms, p99 ${summary.latencyMs.p99} ms, max ${summary.latencyMs.max} ms (first chunk sent -> frame verified receipt)`,
    `  client     ${summary.cpuSeconds} CPU s over ${summary.seconds} s (${Math.round((summary.cpuSeconds / summary.seconds) * 100)}% of a core), chunks of ${summary.chunkBytes} bytes`,
  ];
  for (const [code, count] of Object.entries(summary.rejections))
    lines.push(`  rejected   ${count} x ${code}`);
  return lines.join('\n');
}
