/**
 * The machine, the markdown report (bench/lib/report.md filled in with the numbers: sections,
 * failures, targets) and the stdout summary.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import nodeDataChannel from 'node-datachannel';
import type { Options } from './options.js';
import { ROOT } from './proc.js';
import {
  MTUS,
  ceilingRuns,
  chunkRuns,
  codecRows,
  lidarRowsWithin,
  noiseWarning,
  pairedRatio,
  sustained,
  transferRow,
} from './results.js';
import type { BenchResults, Transfer } from './results.js';
import {
  aiortcView,
  pythonPackageView,
  browserLargestSustained,
  browserView,
  ceilingsView,
  chunksView,
  clientsView,
  clusterView,
  recoveryStats,
  encodingsView,
  fieldsView,
  enduranceView,
  mb,
  millimetres,
  mmLabel,
  scaleView,
  seedView,
  table,
  tlsView,
} from './sections.js';
import type { PlotFiles } from './sections.js';
import { fieldPrecisionLabel } from './encodings.js';
import { formatSpread } from './stats.js';
import { renderTemplate } from './template.js';

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  readonly nodeDataChannel: string;
  readonly libdatachannel: string;
  readonly python: string;
  readonly loadAverage: string;
}

export interface BenchReport {
  readonly date: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly command: string;
  readonly machine: Machine;
  readonly options: Options;
  readonly results: BenchResults;
  readonly failures: readonly string[];
  readonly plots: PlotFiles;
  /** Runs that started on a machine still busy after --quiet-wait. */
  readonly busyStarts: number;
}

export function describeMachine(python: string): Machine {
  const pkgPath = join(ROOT, 'node_modules/node-datachannel/package.json');
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { version: string };
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: os.totalmem() / 2 ** 30,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    nodeDataChannel: pkg.version,
    libdatachannel: nodeDataChannel.getLibraryVersion(),
    python,
    loadAverage: os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(', '),
  };
}

// ---------------------------------------------------------------------------------------------
// Targets

type Status = 'met' | 'not met' | 'not run';

interface Target {
  readonly target: string;
  readonly measured: string;
  readonly status: Status;
}

const status = (met: boolean): Status => (met ? 'met' : 'not met');

function targets(b: BenchResults): Target[] {
  const list: Target[] = [];
  const seed = b.seed?.result;
  list.push({
    target: 'seed: every frame acked (240/240 in 60 s), p99 <= 150 ms (issue 13)',
    measured: seed
      ? `${seed.framesAcked}/${seed.framesPlanned}, p99 ${seed.latencyMs.p99} ms`
      : (b.seed?.error ?? ''),
    status: b.seed
      ? status(!!seed && seed.framesMissing === 0 && seed.latencyMs.p99 <= 150)
      : 'not run',
  });
  for (const mtu of MTUS) {
    const runs = b.ceilings ?? [];
    const tput = pairedRatio(
      runs.filter((r) => r.mtu === mtu),
      (r) => r.mbPerSec,
    );
    const ps = transferRow(ceilingRuns(runs, mtu, 'pointstream')).mbPerSec;
    const bare = transferRow(ceilingRuns(runs, mtu, 'bare')).mbPerSec;
    const ofMedians = ps.median / bare.median;
    list.push({
      target: `rate-0 throughput >= 95% of bare ceiling (MTU ${mtu}), ratio of medians`,
      measured:
        ps.n && bare.n
          ? `${ps.median.toFixed(1)} vs ${bare.median.toFixed(1)} MB/s: ${ofMedians.toFixed(2)} ` +
            `of bare (paired per repeat: ${formatSpread(tput, 2)})`
          : '',
      status: b.ceilings ? status(ps.n > 0 && bare.n > 0 && ofMedians >= 0.95) : 'not run',
    });
  }
  for (const mtu of MTUS) {
    const runs = b.ceilings ?? [];
    const ps = transferRow(ceilingRuns(runs, mtu, 'pointstream')).receiverCpu;
    const bare = transferRow(ceilingRuns(runs, mtu, 'bare')).receiverCpu;
    const ratio = ps.median / bare.median;
    list.push({
      target: `server CPU per 100 MB within 10% of bare receiver (MTU ${mtu})`,
      measured:
        ps.n && bare.n
          ? `${ps.median.toFixed(2)} vs ${bare.median.toFixed(2)} s (${((ratio - 1) * 100).toFixed(0)}%)`
          : '',
      status: b.ceilings ? status(ps.n > 0 && bare.n > 0 && ratio <= 1.1) : 'not run',
    });
  }
  const e = b.endurance?.result;
  list.push({
    target: 'endurance: server RSS growth < 5% after the first minute',
    measured: e
      ? `${e.rssGrowthPct.toFixed(1)}% over ${e.minutes} min (${mb(e.rssBaseline)} -> ${mb(e.rssFinal)})`
      : (b.endurance?.error ?? ''),
    status: b.endurance ? status(!!e && e.rssGrowthPct < 5) : 'not run',
  });
  list.push({
    target: 'endurance: 0 frames lost',
    measured: e ? `${e.run.framesMissing} of ${e.run.framesPlanned}` : '',
    status: b.endurance ? status(!!e && e.run.framesMissing === 0) : 'not run',
  });
  list.push(...encodingTargets(b));
  list.push(...clusterTargets(b));
  return list;
}

/** Failover of issue 17: median and max time from a kill to the client's first frame on another node. */
const FAILOVER_MEDIAN_MS = 5_000;
const FAILOVER_MAX_MS = 12_000;
/** Frames a client has in flight at most: what a kill may cost beyond the skipped ones. */
const FRAMES_IN_FLIGHT = 2;

/**
 * Listed only when the cluster scenario ran, so that the stored reports of earlier runs render
 * unchanged.
 */
function clusterTargets(b: BenchResults): Target[] {
  const c = b.cluster;
  if (!c) return [];
  if (c.skipped !== undefined)
    return [{ target: 'cluster', measured: `skipped: ${c.skipped}`, status: 'not run' }];
  const list: Target[] = [];
  const runs = c.ingest.flatMap((r) => (r.result ? [r.result] : []));
  list.push({
    target: 'cluster ingest: clients placed one per node (1, 2, 3 nodes)',
    measured: c.ingest
      .map((r) => `${r.nodes}: ${r.result ? r.result.placement.join(' ') || 'none' : 'failed'}`)
      .join('; '),
    status: status(
      runs.length === c.ingest.length &&
        runs.every((r) => r.placement.length === r.nodes && new Set(r.placement).size === r.nodes),
    ),
  });
  const f = c.failover;
  const kills = f?.result?.kills ?? [];
  const rec = recoveryStats(kills);
  list.push({
    target:
      `cluster failover: kill -> first frame on the new node, median <= ${FAILOVER_MEDIAN_MS / 1000} s, ` +
      `max <= ${FAILOVER_MAX_MS / 1000} s (issue 17)`,
    measured: rec
      ? `median ${rec.median.toFixed(0)} ms, max ${rec.max.toFixed(0)} ms over ${rec.n} kills`
      : ((f?.error ?? '').split('\n')[0] ?? ''),
    status: f
      ? status(
          !!rec &&
            !f.error &&
            rec.n === kills.length &&
            rec.median <= FAILOVER_MEDIAN_MS &&
            rec.max <= FAILOVER_MAX_MS,
        )
      : 'not run',
  });
  const worst = Math.max(0, ...kills.map((k) => k.lost));
  list.push({
    target: `cluster failover: frames lost per kill <= the ${FRAMES_IN_FLIGHT} in flight (skipped ones reported)`,
    measured: kills.length
      ? `lost ${kills.map((k) => k.lost).join(', ')}; skipped ${kills.map((k) => k.skipped).join(', ')}`
      : '',
    status: f ? status(kills.length > 0 && worst <= FRAMES_IN_FLIGHT) : 'not run',
  });
  return list;
}

/** Bytes per point budget and encode time budget of issue 6. */
const MAX_BYTES_PER_POINT = 3;
const MAX_ENCODE_MS = 40;

function encodingTargets(b: BenchResults): Target[] {
  const list: Target[] = [];
  const codec = b.encodings?.codec ?? [];
  const precisions = codec.map((c) => c.precision);
  // At each precision, the smallest lossy encoding of the LiDAR scene within that error.
  const best = precisions.map((p) => {
    const rows = lidarRowsWithin(codec, p).sort((x, y) => x.bytesPerPoint - y.bytesPerPoint);
    return { precision: p, row: rows[0] };
  });
  const e2e = (b.encodings?.runs ?? []).filter(
    (r) => r.source === 'lidar' && r.encoding === best[0]?.row?.encoding && r.result,
  )[0]?.result;
  list.push({
    target: `encodings: < ${MAX_BYTES_PER_POINT} bytes/point on the LiDAR scene at 1–2 mm error (codec bench)`,
    measured: best
      .map(({ precision, row }) =>
        row
          ? `${mmLabel(precision)}: ${row.encoding} ${row.bytesPerPoint.toFixed(3)} ` +
            `(measured error ${millimetres(row.measuredMaxError)})`
          : `${mmLabel(precision)}: no lossy encoding within it`,
      )
      .concat(
        e2e ? [`end to end (send --json): ${e2e.encoding} ${e2e.bytesPerPoint.toFixed(3)}`] : [],
      )
      .join('; '),
    status: b.encodings
      ? status(
          best.length > 0 &&
            codec.every((c) => c.result) &&
            best.every(({ row }) => !!row && row.bytesPerPoint < MAX_BYTES_PER_POINT),
        )
      : 'not run',
  });
  // Encode time of every lossy encoding on the LiDAR scene: judged on the median of the runs
  // (a typical frame); the fastest run (the least disturbed by other work) is shown beside it.
  const lossy = codecRows(codec).filter((r) => r.scene === 'lidar' && r.encoding !== 'raw');
  list.push({
    target:
      `encodings: encode < ${MAX_ENCODE_MS} ms per 1M points on one core ` +
      '(LiDAR scene, every lossy encoding; judged on the median of the runs, fastest in brackets)',
    measured: lossy
      .map(
        (r) =>
          `${r.encoding}${r.encoding === 'qrice' ? ` ${mmLabel(r.precision)}` : ''} ` +
          `${r.encodeMs.toFixed(1)} (${r.encodeMinMs.toFixed(1)}) ms`,
      )
      .join(', '),
    status: b.encodings
      ? status(
          lossy.length > 0 &&
            codec.every((c) => c.result) &&
            lossy.every((r) => r.encodeMs < MAX_ENCODE_MS),
        )
      : 'not run',
  });
  const browser = b.browser;
  const rows = browser?.result ?? [];
  const million = rows.filter((r) => r.points === 1_000_000 && r.targetHz === 4);
  list.push({
    target: 'browser sender: 1M points per frame sustained at 4 Hz (any encoding)',
    measured: browser?.skipped
      ? `skipped: ${browser.skipped}`
      : million.length
        ? million
            .map(
              (r) =>
                `${r.encoding} (${r.source}): ${r.sustained ? 'yes' : 'no'}, ` +
                `${formatSpread(r.achievedHz, 2)} frames/s`,
            )
            .join('; ') +
          `; largest sustained: ${browserLargestSustained(rows)
            .map((v) => `${v.variant} ${v.points ?? 'none'}`)
            .join(', ')}`
        : ((browser?.error ?? '').split('\n')[0] ?? ''),
    status: browser && !browser.skipped ? status(million.some((r) => r.sustained)) : 'not run',
  });
  return list;
}

// ---------------------------------------------------------------------------------------------
// Markdown

/** The report's prose, with a placeholder for every number (see template.ts). */
const TEMPLATE = readFileSync(new URL('./report.md', import.meta.url), 'utf8');

export function renderMarkdown(report: BenchReport): string {
  const { machine: m, results: b, options: o, plots } = report;
  return renderTemplate(TEMPLATE, {
    date: report.date,
    startedAt: report.startedAt,
    finishedAt: report.finishedAt,
    command: report.command,
    scenarios: [...o.scenarios].join(', '),
    quick: o.quick,
    machine: m,
    memoryGiB: m.memoryGiB.toFixed(1),
    quietWait: o.quietWait,
    busyStarts: report.busyStarts,
    warnings: noiseWarning(b),
    ceilings: ceilingsView(b, o),
    seed: seedView(b, o, plots),
    tls: tlsView(b, o),
    chunks: chunksView(b, o, plots),
    scale: scaleView(b, o, plots),
    clients: clientsView(b, o, plots, m.cores),
    cluster: clusterView(b, o, m.cores),
    aiortc: aiortcView(b, o),
    pythonPackage: pythonPackageView(b, o),
    encodings: encodingsView(b, o, plots),
    fields: fieldsView(b),
    browser: browserView(b, o),
    endurance: enduranceView(b, plots),
    failures: report.failures.length
      ? { items: report.failures.map((f) => f.replace(/\n+/g, ' / ')) }
      : undefined,
    targets: table(
      ['target', 'measured', 'status'],
      targets(b).map((t) => [t.target, t.measured || '–', t.status]),
    ),
  });
}

// ---------------------------------------------------------------------------------------------
// stdout summary

export function renderSummary(report: BenchReport, path: string, svgs: readonly string[]): string {
  const b = report.results;
  const lines: string[] = [];
  if (b.ceilings) {
    for (const mtu of MTUS) {
      const cell = (s: 'bare' | 'pointstream'): string => {
        const r = transferRow(ceilingRuns(b.ceilings ?? [], mtu, s));
        return `${s} ${formatSpread(r.mbPerSec, 1)} MB/s, receiver ${formatSpread(r.receiverCpu, 2)} CPU s/100MB`;
      };
      lines.push(`ceilings mtu ${mtu}: ${cell('bare')}; ${cell('pointstream')}`);
    }
  }
  const rated = (label: string, r: BenchResults['seed']): void => {
    if (!r) return;
    const s = r.result;
    lines.push(
      s
        ? `${label}: ${s.framesAcked}/${s.framesPlanned} frames, ${s.achievedHz} Hz, latency ` +
            `p50/p99/max ${s.latencyMs.p50}/${s.latencyMs.p99}/${s.latencyMs.max} ms, server ` +
            `CPU ${s.serverCpuSec.toFixed(1)} s, server peak RSS ${mb(s.serverPeakRssBytes)}`
        : `${label}: FAILED`,
    );
  };
  rated('seed', b.seed);
  rated('tls', b.tls);
  for (const size of b.chunks ? report.options.chunkSizes : []) {
    const cell = (s: Transfer): string =>
      `${s} ${formatSpread(transferRow(chunkRuns(b.chunks ?? [], size, s)).mbPerSec, 1)}`;
    lines.push(`chunk ${size}: ${cell('bare')}; ${cell('pointstream')} MB/s`);
  }
  for (const r of b.scale ?? []) {
    const s = r.result;
    lines.push(
      s
        ? `scale ${r.points}: ${s.framesAcked}/${s.framesPlanned}, ${s.achievedHz} Hz, ` +
            `${s.mbPerSec} MB/s, p50/p99 ${s.latencyMs.p50}/${s.latencyMs.p99} ms, ` +
            `${sustained(s) ? 'sustained' : 'NOT sustained'}`
        : `scale ${r.points}: FAILED`,
    );
  }
  for (const r of b.clients ?? []) {
    const s = r.result;
    lines.push(
      s
        ? `clients ${r.clients}: ${s.aggregateMbPerSec.toFixed(1)} of ${s.offeredMbPerSec.toFixed(1)} ` +
            `MB/s, ${s.framesAcked}/${s.framesPlanned} frames, server ${s.serverCpuPer100MB.toFixed(2)} CPU s/100MB`
        : `clients ${r.clients}: FAILED`,
    );
  }
  if (b.cluster?.skipped !== undefined) lines.push(`cluster: skipped (${b.cluster.skipped})`);
  for (const r of b.cluster?.ingest ?? []) {
    const s = r.result;
    lines.push(
      s
        ? `cluster ${r.nodes} nodes: ${s.aggregateMbPerSec.toFixed(1)} MB/s acknowledged, ` +
            `${s.framesAcked}/${s.framesPlanned} frames, placement ${s.placement.join(' ')}`
        : `cluster ${r.nodes} nodes: FAILED`,
    );
  }
  const fo = b.cluster?.failover;
  if (fo) {
    const rec = recoveryStats(fo.result?.kills ?? []);
    lines.push(
      rec
        ? `cluster failover: ${rec.n} kills, kill -> first frame on the new node median ` +
            `${rec.median.toFixed(0)} ms, p90 ${rec.p90.toFixed(0)} ms, max ${rec.max.toFixed(0)} ms` +
            (fo.error ? ' (stopped early)' : '')
        : 'cluster failover: FAILED',
    );
  }
  const a = b.aiortc;
  if (a) {
    lines.push(
      a.result
        ? `aiortc: ${a.result.framesAcked}/${a.result.framesPlanned} frames, ` +
            `${a.result.framesPerSec.toFixed(2)} frames/s, ${a.result.mbPerSec.toFixed(1)} MB/s`
        : `aiortc: ${a.skipped ? `skipped (${a.skipped})` : 'FAILED'}`,
    );
  }
  for (const run of b.pythonPackage ?? []) {
    const r = run.result;
    lines.push(
      r
        ? `python package (${r.form}): ${r.framesAcked}/${r.framesPlanned} frames, ` +
            `${r.framesPerSec.toFixed(2)} frames/s, ${r.mbPerSec.toFixed(1)} MB/s`
        : `python package: ${run.skipped ? `skipped (${run.skipped})` : 'FAILED'}`,
    );
  }
  for (const r of codecRows(b.encodings?.codec ?? [])) {
    lines.push(
      `codec ${r.scene} ${r.encoding}${r.encoding === 'qrice' ? ` ${mmLabel(r.precision)}` : ''}: ` +
        `${r.bytesPerPoint.toFixed(3)} B/pt, encode ${r.encodeMs.toFixed(1)} ` +
        `(${r.encodeMinMs.toFixed(1)}) ms, decode ${r.decodeMs.toFixed(1)} ` +
        `(${r.decodeMinMs.toFixed(1)}) ms per 1M points`,
    );
  }
  for (const c of b.encodings?.codec ?? []) {
    if (!c.result) lines.push(`codec ${mmLabel(c.precision)}: FAILED`);
  }
  for (const r of b.encodings?.runs ?? []) {
    const s = r.result;
    const label = `encodings ${r.encoding} ${r.source}`;
    lines.push(
      s
        ? `${label}: ${s.framesAcked}/${s.framesPlanned}, ${s.achievedHz} Hz, ` +
            `p50/p99 ${s.latencyMs.p50}/${s.latencyMs.p99} ms, ${s.bytesPerPoint} B/pt, ` +
            `${s.mbPerSec} MB/s, CPU sender/server ${s.senderCpuSec.toFixed(1)}/` +
            `${s.serverCpuSec.toFixed(1)} s, ${sustained(s) ? 'sustained' : 'NOT sustained'}`
        : `${label}: FAILED`,
    );
  }
  if (b.fields && !b.fields.result) lines.push('fields codec: FAILED');
  for (const r of b.fields?.result ?? []) {
    lines.push(
      `fields ${r.encoding} (${fieldPrecisionLabel(r.fieldPrecision)}): ` +
        `${r.bytesPerPoint.toFixed(3)} B/pt (points ${r.pointsBytesPerPoint.toFixed(3)}` +
        r.fields.map((f) => `, ${f.name} ${f.bytesPerPoint.toFixed(3)}`).join('') +
        `), encode ${r.encodeMs.toFixed(1)} ms, decode ${r.decodeMs.toFixed(1)} ms per 1M points`,
    );
  }
  const br = b.browser;
  if (br) {
    if (!br.result) lines.push(`browser: ${br.skipped ? `skipped (${br.skipped})` : 'FAILED'}`);
    for (const r of br.result ?? []) {
      lines.push(
        `browser ${r.encoding} (${r.source}) ${r.points} @ ${r.targetHz || 'max'} Hz: ` +
          `${formatSpread(r.achievedHz, 2)} frames/s, ${formatSpread(r.mbPerSec, 1)} MB/s, ` +
          `${r.bytesPerPoint.toFixed(2)} B/pt` +
          (r.targetHz > 0 ? `, ${r.sustained ? 'sustained' : 'NOT sustained'}` : ''),
      );
    }
  }
  const e = b.endurance;
  if (e) {
    lines.push(
      e.result
        ? `endurance ${e.result.minutes} min: ${e.result.run.framesAcked}/${e.result.run.framesPlanned} ` +
            `frames, RSS growth ${e.result.rssGrowthPct.toFixed(1)}%`
        : 'endurance: FAILED',
    );
  }
  lines.push('targets:');
  for (const t of targets(b)) lines.push(`  [${t.status}] ${t.target}: ${t.measured || '–'}`);
  lines.push(...noiseWarning(b));
  lines.push(`report: ${path}`);
  for (const svg of svgs) lines.push(`plot: ${svg}`);
  return lines.join('\n');
}
