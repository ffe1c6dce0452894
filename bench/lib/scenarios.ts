/**
 * The measured runs: the bare node-datachannel ceiling, `pointstream send --rate 0` against a
 * `pointstream serve` child, and rate-limited `send` runs (seed workload, scale, TLS,
 * endurance). Each throws on failure, except that a rated run whose `send` reports `ok: false`
 * returns its result (the caller decides).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SendSummary } from '../../src/cli/send.js';
import type { ServerStats } from '../../src/server/types.js';
import { RandomPointSource } from '../../src/sources/random.js';
import type { PointEncodingName } from '../../src/wire/encodings/index.js';
import { encodeNpyHeader } from '../../src/wire/npy.js';
import type { Result as BareResult } from '../ceilings/bare-datachannel.js';
import { describeExit, failure, lastJsonLine, runNode, startDaemon } from './proc.js';
import { countersSince, readCounters } from './system.js';
import type { SystemCounters } from './system.js';

/** 1,000,000 points x 3 float32 plus the 128-byte .npy header. */
export const POINTS_PER_FRAME = 1_000_000;
export const FRAME_BYTES = npyBytes(POINTS_PER_FRAME);
/** pointstream's default chunk (message) size. */
export const CHUNK_BYTES = 256 * 1024;
/** What pointstream's server advertises as max-message-size (64 MiB frame limit + 1024). */
export const RECEIVER_MAX_MESSAGE_SIZE = 64 * 1024 * 1024 + 1024;

/** The built CLI, run as users run it (`node dist/cli/main.js`). */
export const CLI = 'dist/cli/main.js';
const BARE = 'bench/ceilings/bare-datachannel.ts';
const HOST = '127.0.0.1';

/** Bytes of an N x 3 float32 .npy file (the header is 128 bytes for every N used here). */
export function npyBytes(points: number): number {
  return points * 12 + 128;
}

/** One throughput measurement; CPU is per 1e8 bytes moved. */
export interface TransferResult {
  readonly bytes: number;
  readonly seconds: number;
  readonly mbPerSec: number;
  /** Message size actually used (the client caps it at the server's max-message-size). */
  readonly chunkBytes: number;
  readonly senderCpuPer100MB: number;
  readonly receiverCpuPer100MB: number;
  /** UDP datagrams dropped for a full receive buffer during the run (machine-wide). */
  readonly udpDrops: number | undefined;
  /** Machine CPU seconds during the run beyond what sender and receiver report. */
  readonly otherCpuSec: number;
}

/** One `send --rate R` run against a fresh server. */
export interface RateResult {
  readonly ok: boolean;
  readonly reason: string;
  readonly points: number;
  readonly encoding: PointEncodingName;
  readonly source: PointScene;
  /** Payload bytes per point on the wire, as `send` reports it (raw: 12 + the .npy header). */
  readonly bytesPerPoint: number;
  /** Largest coordinate error of any point sent, metres (0 for raw). */
  readonly maxError: number;
  readonly framesAcked: number;
  readonly framesPlanned: number;
  /** Frames without a positive receipt: rejected, lost, skipped or never sent. */
  readonly framesMissing: number;
  readonly achievedHz: number;
  readonly lateFrames: number;
  readonly latencyMs: SendSummary['latencyMs'];
  readonly seconds: number;
  readonly bytesSent: number;
  readonly mbPerSec: number;
  readonly senderCpuSec: number;
  readonly serverCpuSec: number;
  readonly senderPeakRssBytes: number;
  readonly serverPeakRssBytes: number;
  readonly udpDrops: number | undefined;
  readonly otherCpuSec: number;
  /** Per-frame latency from the server's log (receivedAt - captureTime), when collected. */
  readonly frameLatenciesMs: readonly number[];
}

/** Time allowed for moving `bytes`: 30 s plus 5 MB/s, far below anything measured here. */
export function transferTimeoutMs(bytes: number): number {
  return 30_000 + Math.ceil(bytes / 5e6) * 1000;
}

// ---------------------------------------------------------------------------------------------
// Commands (also printed in the report, with <url> for the server's address)

/**
 * Frames a bare run of the ceilings moves: about as long as pointstream's timed run (at the
 * throughput measured here), so that both face the same share of a noisy host's stolen CPU.
 */
export function bareCeilingFrames(mtu: number, seconds: number): number {
  return Math.round(seconds * (mtu >= 4096 ? 12 : 6));
}

export function bareArgs(mtu: number, frames: number, chunkBytes = CHUNK_BYTES): string[] {
  const bytes = frames * FRAME_BYTES;
  return [
    '--import',
    'tsx',
    BARE,
    '--json',
    '--mtu',
    String(mtu),
    '--chunk-bytes',
    String(chunkBytes),
    '--total-bytes',
    String(bytes),
    '--max-message-size',
    String(RECEIVER_MAX_MESSAGE_SIZE),
    '--timeout-ms',
    String(transferTimeoutMs(bytes)),
  ];
}

export interface ServeOptions {
  readonly mtu?: number | undefined;
  /** `info` makes the server log every verified frame (one JSON line each). */
  readonly logLevel?: 'warn' | 'info';
  readonly extra?: readonly string[];
}

export function serveArgs(options: ServeOptions = {}): string[] {
  const { mtu, logLevel = 'warn', extra = [] } = options;
  const args = [CLI, 'serve', '--host', HOST, '--port', '0', '--log-level', logLevel];
  if (logLevel !== 'warn') args.push('--log-format', 'json');
  if (mtu !== undefined) args.push('--mtu', String(mtu));
  return [...args, ...extra];
}

/** What `send --source` generates. */
export type PointScene = 'random' | 'lidar';

export interface SendOptions {
  readonly points?: number;
  /** `--encoding` (omitted: send's default, raw). */
  readonly encoding?: PointEncodingName | undefined;
  /** `--precision` in metres, for the encodings that take one. */
  readonly precision?: number | undefined;
  /** `--source` (omitted: send's default, random). */
  readonly source?: PointScene | undefined;
  readonly mtu?: number | undefined;
  readonly chunkBytes?: number | undefined;
  /** `--from`: a file to send over and over instead of generated points. */
  readonly from?: string | undefined;
  readonly extra?: readonly string[];
}

export function sendArgs(url: string, rate: RateArgs, options: SendOptions = {}): string[] {
  const { points = POINTS_PER_FRAME, mtu, chunkBytes, encoding, precision, source } = options;
  // No --rtc-bind: send finds the loopback route by itself, as it does for users.
  const args = [CLI, 'send', '--signaling', `${url}/offer`];
  if (options.from === undefined) args.push('--points', String(points));
  else args.push('--from', options.from);
  args.push(...rate, '--json');
  if (source !== undefined) args.push('--source', source);
  if (encoding !== undefined) args.push('--encoding', encoding);
  if (precision !== undefined) args.push('--precision', String(precision));
  if (mtu !== undefined) args.push('--mtu', String(mtu));
  if (chunkBytes !== undefined) args.push('--chunk-bytes', String(chunkBytes));
  return [...args, ...(options.extra ?? [])];
}

type RateArgs = readonly string[];
export const fullSpeed = (frames: number): RateArgs => ['--rate', '0', '--frames', String(frames)];
export const atRate = (hz: number, seconds: number): RateArgs => [
  '--rate',
  String(hz),
  '--duration',
  String(seconds),
];

let fixedFrame: string | undefined;

/**
 * One 1M-point `.npy` frame of random points, written once per bench run. The transfer runs
 * (ceilings, chunks) send it over and over (`send --from`), as the bare pair sends one buffer:
 * generating fresh points costs the sender about 0.08 CPU s per 100 MB (measured), the source's
 * work rather than the transport's, and on 2 shared cores it would come off the throughput.
 */
export function fixedFramePath(): string {
  if (fixedFrame !== undefined) return fixedFrame;
  const dir = mkdtempSync(join(tmpdir(), 'pointstream-bench-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const points = new RandomPointSource(POINTS_PER_FRAME).next();
  const path = join(dir, 'frame.npy');
  writeFileSync(path, encodeNpyHeader([POINTS_PER_FRAME, 3]));
  writeFileSync(path, new Uint8Array(points.buffer), { flag: 'a' });
  fixedFrame = path;
  return path;
}

// ---------------------------------------------------------------------------------------------
// Scenarios

export async function runBare(
  mtu: number,
  frames: number,
  chunkBytes = CHUNK_BYTES,
): Promise<TransferResult> {
  const bytes = frames * FRAME_BYTES;
  const label = `bare mtu ${mtu}${chunkBytes === CHUNK_BYTES ? '' : ` chunk ${chunkBytes}`}`;
  const args = bareArgs(mtu, frames, chunkBytes);
  const counters = readCounters();
  const result = await runNode(label, args, transferTimeoutMs(bytes) + 15_000);
  const system = countersSince(counters);
  if (result.code !== 0) throw failure(`${label}: ${describeExit(result)}`, result.stderr);
  const r = lastJsonLine(label, result) as BareResult;
  if (r.totalBytes !== bytes)
    throw new Error(`${label}: moved ${r.totalBytes} bytes, not ${bytes}`);
  if (r.mtu !== mtu) throw new Error(`${label}: ran with mtu ${r.mtu}, not ${mtu}`);
  return {
    bytes,
    seconds: r.seconds,
    mbPerSec: bytes / 1e6 / r.seconds,
    chunkBytes: r.chunkBytes,
    senderCpuPer100MB: per100MB(r.senderCpuSec, bytes),
    receiverCpuPer100MB: per100MB(r.receiverCpuSec, bytes),
    udpDrops: system.udpDrops,
    otherCpuSec: system.busySec - r.senderCpuSec - r.receiverCpuSec,
  };
}

/**
 * What one `send --rate 0` run moves: `{ seconds }` is the README's command (`--rate 0 --duration
 * S`, the random source: a different set of points every frame); `{ frames }` sends one pre-written 1M-point frame over and
 * over (`--from`), as the bare pair sends one buffer.
 */
export type TransferAmount = { readonly seconds: number } | { readonly frames: number };

/** `send --rate 0`; MTU undefined: no `--mtu` on either side (send's route picks 4096 on loopback). */
export async function runPointstream(
  mtu: number | undefined,
  amount: TransferAmount,
  chunkBytes?: number,
): Promise<TransferResult> {
  const label = `pointstream mtu ${mtu ?? 'default'}${chunkBytes ? ` chunk ${chunkBytes}` : ''}`;
  const timeoutMs =
    'frames' in amount
      ? transferTimeoutMs(amount.frames * FRAME_BYTES)
      : amount.seconds * 1000 + 60_000;
  const rate = 'frames' in amount ? fullSpeed(amount.frames) : atRate(0, amount.seconds);
  const from = 'frames' in amount ? fixedFramePath() : undefined;
  const run = await withServer(label, serveArgs({ mtu }), timeoutMs, (server) =>
    sendAndStats(label, sendArgs(server.url, rate, { mtu, chunkBytes, from }), server, timeoutMs),
  );
  const { summary: s, serverCpuSec, system } = run;
  if (!s.ok || s.framesAcked === 0 || s.framesAcked !== s.framesPlanned)
    throw new Error(`${label}: ${s.reason}`);
  const bytes = s.bytesSent;
  if ('frames' in amount && bytes !== amount.frames * FRAME_BYTES)
    throw new Error(`${label}: sent ${bytes} bytes, not ${amount.frames * FRAME_BYTES}`);
  return {
    bytes,
    seconds: s.seconds,
    mbPerSec: s.mbPerSec,
    chunkBytes: s.chunkBytes,
    senderCpuPer100MB: per100MB(s.cpuSeconds, bytes),
    receiverCpuPer100MB: per100MB(serverCpuSec, bytes),
    udpDrops: system.udpDrops,
    otherCpuSec: system.busySec - s.cpuSeconds - serverCpuSec,
  };
}

export interface RatedOptions {
  readonly points: number;
  readonly seconds: number;
  readonly hz?: number;
  readonly serve?: ServeOptions;
  readonly send?: SendOptions;
  /** Passed to `send` as `--encoding`, `--precision`, `--source` (they win over `send`'s). */
  readonly encoding?: PointEncodingName;
  readonly precision?: number;
  readonly source?: PointScene;
  /** CA for an HTTPS server's /stats (the same file goes to `send --ca`). */
  readonly ca?: Buffer;
  /** Collect per-frame latencies from the server's log (needs `serve.logLevel: 'info'`). */
  readonly frameLog?: boolean;
  /** Runs while `send` runs (endurance samples /stats); awaited after `send` exits. */
  readonly during?: (server: ServerHandle) => () => Promise<void>;
}

/** `send --rate hz` (4 Hz) for `seconds` against a fresh server; default MTU (loopback: 4096). */
export async function runRated(label: string, options: RatedOptions): Promise<RateResult> {
  const { points, seconds, hz = 4 } = options;
  const planned = Math.round(hz * seconds);
  const timeoutMs = seconds * 1000 + 60_000 + Math.ceil((planned * npyBytes(points)) / 20e6) * 1000;
  const latencies: number[] = [];
  const onLine = options.frameLog ? (line: string) => collectLatency(line, latencies) : undefined;
  const args = (url: string): string[] =>
    sendArgs(url, atRate(hz, seconds), {
      ...options.send,
      points,
      ...(options.encoding === undefined ? {} : { encoding: options.encoding }),
      ...(options.precision === undefined ? {} : { precision: options.precision }),
      ...(options.source === undefined ? {} : { source: options.source }),
    });
  const run = await withServer(
    label,
    serveArgs(options.serve),
    timeoutMs,
    async (server) => {
      const stop = options.during?.(server);
      try {
        return await sendAndStats(label, args(server.url), server, timeoutMs);
      } finally {
        await stop?.();
      }
    },
    { onLine, ca: options.ca },
  );
  const s = run.summary;
  return {
    ok: s.ok,
    reason: s.reason,
    points,
    encoding: s.encoding,
    source: options.source ?? options.send?.source ?? 'random',
    bytesPerPoint: s.bytesPerPoint,
    maxError: s.maxError,
    framesAcked: s.framesAcked,
    framesPlanned: s.framesPlanned,
    framesMissing: s.framesPlanned - s.framesAcked,
    achievedHz: s.achievedHz,
    lateFrames: s.lateFrames,
    latencyMs: s.latencyMs,
    seconds: s.seconds,
    bytesSent: s.bytesSent,
    mbPerSec: s.mbPerSec,
    senderCpuSec: s.cpuSeconds,
    serverCpuSec: run.serverCpuSec,
    senderPeakRssBytes: s.peakRssBytes,
    serverPeakRssBytes: run.serverPeakRssBytes,
    udpDrops: run.system.udpDrops,
    otherCpuSec: run.system.busySec - s.cpuSeconds - run.serverCpuSec,
    frameLatenciesMs: latencies,
  };
}

/** `"event":"frame"` lines of `serve --log-format json` carry `latencyMs`. */
function collectLatency(line: string, into: number[]): void {
  if (!line.includes('"event":"frame"')) return;
  try {
    const entry = JSON.parse(line) as { event?: unknown; latencyMs?: unknown };
    if (entry.event === 'frame' && typeof entry.latencyMs === 'number') into.push(entry.latencyMs);
  } catch {
    // not a log line
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

export function per100MB(cpuSec: number, bytes: number): number {
  return (cpuSec * 1e8) / bytes;
}

interface SendRun {
  readonly summary: SendSummary;
  /** Server CPU between the /stats reads just before and just after the send. */
  readonly serverCpuSec: number;
  readonly serverPeakRssBytes: number;
  /** Machine-wide, from just before the send starts to just after it exits. */
  readonly system: SystemCounters;
}

/**
 * Runs `pointstream send` and reads the server's /stats around it. A summary with `ok: false` is
 * returned (the caller decides); a send that prints no summary throws.
 */
async function sendAndStats(
  label: string,
  args: string[],
  server: ServerHandle,
  timeoutMs: number,
): Promise<SendRun> {
  const before = await server.stats();
  const counters = readCounters();
  const result = await runNode(`${label} send`, args, timeoutMs);
  const system = countersSince(counters);
  const after = await server.stats();
  return {
    summary: parseSummary(`${label} send`, result),
    serverCpuSec: after.cpuSeconds - before.cpuSeconds,
    serverPeakRssBytes: after.memory.peakRssBytes,
    system,
  };
}

/** The `--json` line of `send`; throws if there is none, or if `ok` disagrees with the exit. */
export function parseSummary(
  label: string,
  result: Parameters<typeof lastJsonLine>[1],
): SendSummary {
  const summary = lastJsonLine(label, result) as SendSummary;
  if (typeof summary.ok !== 'boolean' || (summary.ok && result.code !== 0)) {
    throw failure(`${label}: ${describeExit(result)}`, result.stderr);
  }
  return summary;
}

/** A running `serve` child. */
export interface ServerHandle {
  readonly url: string;
  /** GET /stats (5 s timeout). */
  stats(): Promise<ServerStats>;
}

/**
 * GET `url` as JSON with node:http(s) (fetch cannot be given a CA); 5 s timeout. A fresh
 * connection each time: a kept-alive socket reused after idling about as long as the timeout
 * (the endurance scenario sampled every 5 s) timed out within milliseconds: 48 of 120 samples.
 */
export function getJson(url: string, ca?: Buffer): Promise<unknown> {
  const get = url.startsWith('https:') ? httpsGet : httpGet;
  return new Promise((resolve, reject) => {
    const request = get(url, { ca, timeout: 5000, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        if (response.statusCode !== 200) {
          reject(new Error(`GET ${url}: HTTP ${response.statusCode}`));
          return;
        }
        try {
          resolve(JSON.parse(body) as unknown);
        } catch {
          reject(new Error(`GET ${url}: not JSON: ${body.slice(0, 200)}`));
        }
      });
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${url}: timed out`)));
    request.on('error', reject);
  });
}

/**
 * Starts `pointstream serve` with `args`, runs `body` with it, then stops it. An error of `body`
 * wins over one of the shutdown; a server that does not exit with 0 is an error too.
 */
export async function withServer<T>(
  label: string,
  args: readonly string[],
  bodyTimeoutMs: number,
  body: (server: ServerHandle) => Promise<T>,
  options: { onLine?: ((line: string) => void) | undefined; ca?: Buffer | undefined } = {},
): Promise<T> {
  const server = startDaemon(
    `${label} serve`,
    args,
    bodyTimeoutMs + 30_000,
    isListening,
    options.onLine,
  );
  let value: T;
  try {
    const { url } = (await server.ready) as { url: string };
    const stats = async (): Promise<ServerStats> =>
      (await getJson(`${url}/stats`, options.ca)) as ServerStats;
    value = await body({ url, stats });
  } catch (error) {
    await server.stop(5000);
    throw error;
  }
  const exit = await server.stop(15_000);
  if (exit.code !== 0) throw failure(`${label} serve: ${describeExit(exit)}`, exit.stderr);
  return value;
}

function isListening(message: unknown): boolean {
  const m = message as { type?: unknown; url?: unknown } | null;
  return m?.type === 'listening' && typeof m.url === 'string';
}
