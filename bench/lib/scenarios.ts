/**
 * The measured scenarios: the bare node-datachannel ceiling, `pointstream send --rate 0` against a
 * `pointstream serve` child, and the seed workload (`--rate 4`). Each throws on failure.
 */
import type { SendSummary } from '../../src/cli/send.js';
import type { ServerStats } from '../../src/server/types.js';
import type { Result as BareResult } from '../ceilings/bare-datachannel.js';
import { describeExit, failure, lastJsonLine, runNode, startDaemon } from './proc.js';
import { countersSince, readCounters } from './system.js';
import type { SystemCounters } from './system.js';

/** 1,000,000 points x 3 float32 plus the 128-byte .npy header. */
export const POINTS_PER_FRAME = 1_000_000;
export const FRAME_BYTES = POINTS_PER_FRAME * 12 + 128;
/** pointstream's default chunk (message) size. */
export const CHUNK_BYTES = 256 * 1024;
/** What pointstream's server advertises as max-message-size (64 MiB frame limit + 1024). */
export const RECEIVER_MAX_MESSAGE_SIZE = 64 * 1024 * 1024 + 1024;

const CLI = 'dist/cli/main.js';
const BARE = 'bench/ceilings/bare-datachannel.ts';
const HOST = '127.0.0.1';

/** One throughput measurement; CPU is per 1e8 bytes moved. */
export interface TransferResult {
  readonly bytes: number;
  readonly seconds: number;
  readonly mbPerSec: number;
  readonly senderCpuPer100MB: number;
  readonly receiverCpuPer100MB: number;
  /** UDP datagrams dropped for a full receive buffer during the run (machine-wide). */
  readonly udpDrops: number | undefined;
  /** Machine CPU seconds during the run beyond what sender and receiver report. */
  readonly otherCpuSec: number;
}

export interface SeedResult {
  readonly ok: boolean;
  readonly reason: string;
  readonly framesAcked: number;
  readonly framesPlanned: number;
  readonly achievedHz: number;
  readonly lateFrames: number;
  readonly latencyMs: SendSummary['latencyMs'];
  readonly seconds: number;
  readonly senderCpuSec: number;
  readonly serverCpuSec: number;
  readonly senderPeakRssBytes: number;
  readonly serverPeakRssBytes: number;
  readonly udpDrops: number | undefined;
  readonly otherCpuSec: number;
}

/** Time allowed for moving `bytes`: 30 s plus 5 MB/s, far below anything measured here. */
function transferTimeoutMs(bytes: number): number {
  return 30_000 + Math.ceil(bytes / 5e6) * 1000;
}

// ---------------------------------------------------------------------------------------------
// Commands (also printed in the report, with <url> for the server's address)

export function bareArgs(mtu: number, frames: number): string[] {
  const bytes = frames * FRAME_BYTES;
  return [
    '--import',
    'tsx',
    BARE,
    '--json',
    '--mtu',
    String(mtu),
    '--chunk-bytes',
    String(CHUNK_BYTES),
    '--total-bytes',
    String(bytes),
    '--max-message-size',
    String(RECEIVER_MAX_MESSAGE_SIZE),
    '--timeout-ms',
    String(transferTimeoutMs(bytes)),
  ];
}

export function serveArgs(mtu: number | undefined): string[] {
  const args = [CLI, 'serve', '--host', HOST, '--port', '0', '--log-level', 'warn'];
  return mtu === undefined ? args : [...args, '--mtu', String(mtu)];
}

export function sendArgs(url: string, mtu: number | undefined, rate: RateArgs): string[] {
  const args = [CLI, 'send', '--signaling', `${url}/offer`, '--rtc-bind', HOST];
  args.push('--points', String(POINTS_PER_FRAME), ...rate, '--json');
  return mtu === undefined ? args : [...args, '--mtu', String(mtu)];
}

type RateArgs = readonly string[];
export const fullSpeed = (frames: number): RateArgs => ['--rate', '0', '--frames', String(frames)];
export const seedRate = (seconds: number): RateArgs => [
  '--rate',
  '4',
  '--duration',
  String(seconds),
];

// ---------------------------------------------------------------------------------------------
// Scenarios

export async function runBare(mtu: number, frames: number): Promise<TransferResult> {
  const bytes = frames * FRAME_BYTES;
  const label = `bare mtu ${mtu}`;
  const counters = readCounters();
  const result = await runNode(label, bareArgs(mtu, frames), transferTimeoutMs(bytes) + 15_000);
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
    senderCpuPer100MB: per100MB(r.senderCpuSec, bytes),
    receiverCpuPer100MB: per100MB(r.receiverCpuSec, bytes),
    udpDrops: system.udpDrops,
    otherCpuSec: system.busySec - r.senderCpuSec - r.receiverCpuSec,
  };
}

export async function runPointstream(mtu: number, frames: number): Promise<TransferResult> {
  const bytes = frames * FRAME_BYTES;
  const label = `pointstream mtu ${mtu}`;
  const run = await withServer(label, mtu, transferTimeoutMs(bytes), (url) =>
    sendAndStats(label, sendArgs(url, mtu, fullSpeed(frames)), url, transferTimeoutMs(bytes)),
  );
  const { summary: s, serverCpuSec, system } = run;
  if (!s.ok || s.framesAcked !== frames) throw new Error(`${label}: ${s.reason}`);
  if (s.bytesSent !== bytes) throw new Error(`${label}: sent ${s.bytesSent} bytes, not ${bytes}`);
  return {
    bytes,
    seconds: s.seconds,
    mbPerSec: s.mbPerSec,
    senderCpuPer100MB: per100MB(s.cpuSeconds, bytes),
    receiverCpuPer100MB: per100MB(serverCpuSec, bytes),
    udpDrops: system.udpDrops,
    otherCpuSec: system.busySec - s.cpuSeconds - serverCpuSec,
  };
}

/** The seed workload: 1M points at 4 Hz for `seconds`, default MTU (loopback: 4096). */
export async function runSeed(seconds: number): Promise<SeedResult> {
  const label = 'seed';
  const timeoutMs = seconds * 1000 + 60_000;
  const run = await withServer(label, undefined, timeoutMs, (url) =>
    sendAndStats(label, sendArgs(url, undefined, seedRate(seconds)), url, timeoutMs),
  );
  const s = run.summary;
  return {
    ok: s.ok,
    reason: s.reason,
    framesAcked: s.framesAcked,
    framesPlanned: s.framesPlanned,
    achievedHz: s.achievedHz,
    lateFrames: s.lateFrames,
    latencyMs: s.latencyMs,
    seconds: s.seconds,
    senderCpuSec: s.cpuSeconds,
    serverCpuSec: run.serverCpuSec,
    senderPeakRssBytes: s.peakRssBytes,
    serverPeakRssBytes: run.serverPeakRssBytes,
    udpDrops: run.system.udpDrops,
    otherCpuSec: run.system.busySec - s.cpuSeconds - run.serverCpuSec,
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers

function per100MB(cpuSec: number, bytes: number): number {
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
  url: string,
  timeoutMs: number,
): Promise<SendRun> {
  const before = await fetchStats(url);
  const counters = readCounters();
  const result = await runNode(`${label} send`, args, timeoutMs);
  const system = countersSince(counters);
  const after = await fetchStats(url);
  const summary = lastJsonLine(`${label} send`, result) as SendSummary;
  if (typeof summary.ok !== 'boolean' || (summary.ok && result.code !== 0)) {
    throw failure(`${label} send: ${describeExit(result)}`, result.stderr);
  }
  return {
    summary,
    serverCpuSec: after.cpuSeconds - before.cpuSeconds,
    serverPeakRssBytes: after.memory.peakRssBytes,
    system,
  };
}

async function fetchStats(url: string): Promise<ServerStats> {
  const response = await fetch(`${url}/stats`, { signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`GET ${url}/stats: HTTP ${response.status}`);
  return (await response.json()) as ServerStats;
}

/**
 * Starts `pointstream serve`, runs `body` with its URL, then stops it. An error of `body` wins
 * over one of the shutdown; a server that does not exit with 0 is an error too.
 */
async function withServer<T>(
  label: string,
  mtu: number | undefined,
  bodyTimeoutMs: number,
  body: (url: string) => Promise<T>,
): Promise<T> {
  const server = startDaemon(`${label} serve`, serveArgs(mtu), bodyTimeoutMs + 30_000, isListening);
  let value: T;
  try {
    const message = (await server.ready) as { url: string };
    value = await body(message.url);
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
