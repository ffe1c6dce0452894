/** What the scenarios produced, and the aggregations the report, the plots and the summary share. */
import type { PointEncodingName } from '../../src/wire/encodings/index.js';
import type { AiortcResult } from './aiortc.js';
import type { PackageResult } from './python-package.js';
import type { BrowserBenchRow } from './browser.js';
import type { ClientsResult } from './clients.js';
import type { ClusterIngestResult, FailoverResult } from './cluster.js';
import type { EncodingBenchRow, FieldBenchRow } from './encodings.js';
import type { EnduranceResult } from './endurance.js';
import type { PointScene, RateResult, TransferResult } from './scenarios.js';
import { spread } from './stats.js';
import type { Spread } from './stats.js';

export const MTUS = [1280, 4096] as const;
/** What pointstream uses on loopback when no --mtu is given. */
export const LOOPBACK_MTU = 4096;
export const HZ = 4;

/** A run's result, or why there is none; a rated run with `ok: false` has both. */
export interface Outcome<T> {
  readonly result?: T;
  readonly error?: string;
  /** Not run, on purpose (e.g. aiortc is not installed). */
  readonly skipped?: string;
}

export type Transfer = 'bare' | 'pointstream';

export interface RunRecord extends Outcome<TransferResult> {
  readonly repeat: number;
  readonly scenario: Transfer;
  readonly mtu: number;
}

export interface ChunkRecord extends Outcome<TransferResult> {
  readonly repeat: number;
  readonly scenario: Transfer;
  readonly chunkBytes: number;
}

export const chunkRuns = (
  runs: readonly ChunkRecord[],
  chunkBytes: number,
  s: Transfer,
): ChunkRecord[] => runs.filter((r) => r.chunkBytes === chunkBytes && r.scenario === s);

export interface ScaleRecord extends Outcome<RateResult> {
  readonly points: number;
}

export interface ClientsRecord extends Outcome<ClientsResult> {
  readonly clients: number;
}

export interface ClusterIngestRecord extends Outcome<ClusterIngestResult> {
  readonly nodes: number;
}

export interface ClusterResults {
  /** Not run, and why (no nats-server). */
  readonly skipped?: string;
  readonly ingest: ClusterIngestRecord[];
  /** A run cut short by a kill it did not recover from has its kills so far and the error. */
  failover?: Outcome<FailoverResult>;
}

/** The codec bench (runEncodingBench) at one precision. */
export interface CodecRecord extends Outcome<EncodingBenchRow[]> {
  readonly precision: number;
}

/** The seed workload end to end with one encoding on one scene. */
export interface EncodingRunRecord extends Outcome<RateResult> {
  readonly encoding: PointEncodingName;
  readonly source: PointScene;
  /** `--precision` given to `send` (encodings that take one). */
  readonly precision: number | undefined;
}

export interface EncodingsResults {
  readonly codec: CodecRecord[];
  readonly runs: EncodingRunRecord[];
}

/** One entry per scenario that ran; absent: not selected. */
export interface BenchResults {
  ceilings?: RunRecord[];
  seed?: Outcome<RateResult>;
  tls?: Outcome<RateResult>;
  chunks?: ChunkRecord[];
  scale?: ScaleRecord[];
  clients?: ClientsRecord[];
  cluster?: ClusterResults;
  aiortc?: Outcome<AiortcResult>;
  /** The Python package (`python/`), chunked and plain, in the aiortc scenario. */
  pythonPackage?: Outcome<PackageResult>[];
  endurance?: Outcome<EnduranceResult>;
  encodings?: EncodingsResults;
  /** The fields codec bench (runFieldsBench). */
  fields?: Outcome<FieldBenchRow[]>;
  browser?: Outcome<BrowserBenchRow[]>;
}

export const ok = <T>(records: readonly Outcome<T>[]): T[] =>
  records.flatMap((r) => (r.result ? [r.result] : []));

// ---------------------------------------------------------------------------------------------
// Ceilings and chunks

export interface TransferRow {
  readonly mbPerSec: Spread;
  readonly senderCpu: Spread;
  readonly receiverCpu: Spread;
  readonly udpDrops: Spread;
  readonly otherCpu: Spread;
  readonly chunkBytes: Spread;
  readonly failed: number;
}

export function transferRow(records: readonly Outcome<TransferResult>[]): TransferRow {
  const runs = ok(records);
  return {
    mbPerSec: spread(runs.map((r) => r.mbPerSec)),
    senderCpu: spread(runs.map((r) => r.senderCpuPer100MB)),
    receiverCpu: spread(runs.map((r) => r.receiverCpuPer100MB)),
    udpDrops: spread(runs.flatMap((r) => (r.udpDrops === undefined ? [] : [r.udpDrops]))),
    otherCpu: spread(runs.map((r) => r.otherCpuSec)),
    chunkBytes: spread(runs.map((r) => r.chunkBytes)),
    failed: records.length - runs.length,
  };
}

export const ceilingRuns = (runs: readonly RunRecord[], mtu: number, s: Transfer): RunRecord[] =>
  runs.filter((r) => r.mtu === mtu && r.scenario === s);

/**
 * Per repeat, pointstream's value over bare's (the two ran back to back); `runs` holds the runs
 * of one setting (one MTU, one chunk size).
 */
export function pairedRatio(
  runs: readonly (Outcome<TransferResult> & { repeat: number; scenario: Transfer })[],
  value: (r: TransferResult) => number,
): Spread {
  const ratios: number[] = [];
  for (const repeat of new Set(runs.map((r) => r.repeat))) {
    const find = (s: Transfer): TransferResult | undefined =>
      runs.find((r) => r.repeat === repeat && r.scenario === s)?.result;
    const bare = find('bare');
    const ps = find('pointstream');
    if (bare && ps) ratios.push(value(ps) / value(bare));
  }
  return spread(ratios);
}

// ---------------------------------------------------------------------------------------------
// Scale

/** Every frame acknowledged, none late, at (within 1% of) the planned rate. */
export function sustained(r: RateResult, hz = HZ): boolean {
  return (
    r.framesMissing === 0 &&
    r.framesAcked === r.framesPlanned &&
    r.lateFrames === 0 &&
    r.achievedHz >= hz * 0.99
  );
}

/**
 * Least-squares slope of log(y) against log(x): 1 means y grows in proportion to x, 0 not at all.
 * NaN with fewer than two points.
 */
export function logLogSlope(points: readonly (readonly [number, number])[]): number {
  const logs = points
    .filter(([x, y]) => x > 0 && y > 0)
    .map(([x, y]) => [Math.log(x), Math.log(y)]);
  if (logs.length < 2) return NaN;
  const mx = logs.reduce((s, [x]) => s + x!, 0) / logs.length;
  const my = logs.reduce((s, [, y]) => s + y!, 0) / logs.length;
  let num = 0;
  let den = 0;
  for (const [x, y] of logs) {
    num += (x! - mx) * (y! - my);
    den += (x! - mx) ** 2;
  }
  return den > 0 ? num / den : NaN;
}

// ---------------------------------------------------------------------------------------------
// Noise: CPU used by others during a run

export interface NoiseEntry {
  readonly label: string;
  readonly otherCpuSec: number;
  /** What the benchmark's own start-up may account for. */
  readonly allowedSec: number;
}

/** 2 CPU s plus 10% of a core, plus 0.5 s per extra process started (node start-up). */
const allowance = (seconds: number, processes = 1): number =>
  2 + 0.1 * seconds + 0.5 * (processes - 1);

export function noiseEntries(b: BenchResults): NoiseEntry[] {
  const entries: NoiseEntry[] = [];
  const add = (label: string, other: number, seconds: number, processes = 1): void => {
    entries.push({ label, otherCpuSec: other, allowedSec: allowance(seconds, processes) });
  };
  for (const r of b.ceilings ?? []) {
    if (r.result)
      add(
        `ceilings repeat ${r.repeat} ${r.scenario} mtu ${r.mtu}`,
        r.result.otherCpuSec,
        r.result.seconds,
      );
  }
  for (const r of b.chunks ?? []) {
    if (r.result)
      add(
        `chunks repeat ${r.repeat} ${r.scenario} ${r.chunkBytes}`,
        r.result.otherCpuSec,
        r.result.seconds,
      );
  }
  const rated = { seed: b.seed?.result, tls: b.tls?.result, endurance: b.endurance?.result?.run };
  for (const [label, r] of Object.entries(rated)) {
    if (r) add(label, r.otherCpuSec, r.seconds);
  }
  for (const r of b.scale ?? []) {
    if (r.result) add(`scale ${r.points} points`, r.result.otherCpuSec, r.result.seconds);
  }
  for (const r of b.clients ?? []) {
    if (r.result)
      add(`clients ${r.clients}`, r.result.otherCpuSec, r.result.wallSeconds, r.clients);
  }
  for (const r of b.cluster?.ingest ?? []) {
    if (r.result)
      add(`cluster ${r.nodes} nodes`, r.result.otherCpuSec, r.result.wallSeconds, r.nodes);
  }
  for (const r of b.encodings?.runs ?? []) {
    if (r.result)
      add(`encodings ${r.encoding} ${r.source}`, r.result.otherCpuSec, r.result.seconds);
  }
  const a = b.aiortc?.result;
  if (a) add('aiortc', a.otherCpuSec, a.wallSeconds);
  return entries;
}

export const noisy = (b: BenchResults): NoiseEntry[] =>
  noiseEntries(b).filter((e) => e.otherCpuSec > e.allowedSec);

export function noiseWarning(b: BenchResults): string[] {
  const found = noisy(b);
  if (found.length === 0) return [];
  const list = found.map((e) => `${e.label}: ${e.otherCpuSec.toFixed(1)} s`).join('; ');
  return [
    `WARNING: the machine was busy with other work during ${found.length} run(s) ` +
      `(other CPU s: ${list}); their numbers are suspect; rerun on a quiet machine.`,
  ];
}

// ---------------------------------------------------------------------------------------------
// Encodings

/** Encodings that take `--precision` (the others ignore it). */
export const PRECISION_ENCODINGS: ReadonlySet<PointEncodingName> = new Set(['qrice']);

/**
 * The codec rows worth showing: every row at the first precision, and at the others only the rows
 * the precision changed (its error bound differs), so that raw and q16 are not listed twice.
 */
export function codecRows(codec: readonly CodecRecord[]): EncodingBenchRow[] {
  const [first, ...rest] = codec;
  const base = first?.result ?? [];
  const same = (a: EncodingBenchRow, b: EncodingBenchRow): boolean =>
    a.scene === b.scene && a.encoding === b.encoding;
  return [
    ...base,
    ...rest.flatMap((c) =>
      (c.result ?? []).filter((r) => {
        const at = base.find((x) => same(x, r));
        return !at || at.maxError !== r.maxError;
      }),
    ),
  ];
}

/** Lossy rows on the LiDAR scene whose bound and measured error are within `precision`. */
export function lidarRowsWithin(
  codec: readonly CodecRecord[],
  precision: number,
): EncodingBenchRow[] {
  const tolerance = precision * 1e-6;
  return (codec.find((c) => c.precision === precision)?.result ?? []).filter(
    (r) =>
      r.scene === 'lidar' &&
      r.maxError > 0 &&
      r.maxError <= precision + tolerance &&
      r.measuredMaxError <= precision + tolerance,
  );
}

// ---------------------------------------------------------------------------------------------
// Cluster

/** A role of the cluster whose CPU the ingest runs measure. */
export interface ClusterRoleCost {
  readonly role: 'node' | 'nats-server' | 'front' | 'clients';
  readonly cpuSec: number;
  /** CPU seconds per 100 MB acknowledged; NaN without bytes. */
  readonly per100MB: number;
  /** MB/s one core of this role carries, 100 / per100MB; undefined when it used (next to) no CPU. */
  readonly mbPerSecPerCore: number | undefined;
}

/** Below this much CPU per 100 MB a role carries no media (the front): no per-core figure. */
const NO_MEDIA_CPU_PER_100MB = 0.01;

/**
 * Each role's CPU per 100 MB acknowledged, pooled over the ingest runs that succeeded (every byte
 * passes through exactly one node, nats-server, and one client).
 */
export function clusterRoleCosts(runs: readonly ClusterIngestResult[]): ClusterRoleCost[] {
  const bytes = runs.reduce((n, r) => n + r.ackedBytes, 0);
  const total = (f: (r: ClusterIngestResult) => number): number =>
    runs.reduce((n, r) => n + f(r), 0);
  const roles: [ClusterRoleCost['role'], number][] = [
    ['node', total((r) => Object.values(r.nodeCpuSec).reduce((a, b) => a + b, 0))],
    ['nats-server', total((r) => r.natsCpuSec)],
    ['front', total((r) => r.frontCpuSec)],
    ['clients', total((r) => r.clientCpuSec)],
  ];
  return roles.map(([role, cpuSec]) => {
    const per100MB = bytes > 0 ? (cpuSec * 1e8) / bytes : NaN;
    return {
      role,
      cpuSec,
      per100MB,
      mbPerSecPerCore: per100MB >= NO_MEDIA_CPU_PER_100MB ? 100 / per100MB : undefined,
    };
  });
}
