/** The machine, the markdown report (sections, failures, targets) and the stdout summary. */
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
  noiseWarning,
  pairedRatio,
  sustained,
  transferRow,
} from './results.js';
import type { BenchResults, Transfer } from './results.js';
import {
  aiortcSection,
  ceilingsSection,
  chunksSection,
  clientsSection,
  enduranceSection,
  mb,
  scaleSection,
  seedSection,
  table,
  tlsSection,
} from './sections.js';
import type { PlotFiles } from './sections.js';
import { formatSpread } from './stats.js';

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
    target: 'seed: every frame acked (240/240 in 60 s), p99 <= 200 ms',
    measured: seed
      ? `${seed.framesAcked}/${seed.framesPlanned}, p99 ${seed.latencyMs.p99} ms`
      : (b.seed?.error ?? ''),
    status: b.seed
      ? status(!!seed && seed.framesMissing === 0 && seed.latencyMs.p99 <= 200)
      : 'not run',
  });
  for (const mtu of MTUS) {
    const runs = b.ceilings ?? [];
    const tput = pairedRatio(
      runs.filter((r) => r.mtu === mtu),
      (r) => r.mbPerSec,
    );
    list.push({
      target: `rate-0 throughput >= 95% of bare ceiling (MTU ${mtu})`,
      measured: tput.n ? `${formatSpread(tput, 2)} of bare (median of paired repeats)` : '',
      status: b.ceilings ? status(tput.n > 0 && tput.median >= 0.95) : 'not run',
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
  return list;
}

// ---------------------------------------------------------------------------------------------
// Markdown

export function renderMarkdown(report: BenchReport): string {
  const { machine: m, results: b, options: o, plots } = report;
  const warning = noiseWarning(b);
  const failures = report.failures.length
    ? ['## Failures', '', ...report.failures.map((f) => `- ${f.replace(/\n+/g, ' / ')}`), '']
    : [];
  return [
    `# pointstream benchmark, ${report.date}`,
    '',
    `Started ${report.startedAt}, finished ${report.finishedAt}, with \`${report.command}\`. ` +
      `Scenarios: ${[...o.scenarios].join(', ')}${o.quick ? ' (--quick: brief runs, not for comparison)' : ''}.`,
    '',
    '## Machine',
    '',
    `- CPU: ${m.cpu}, ${m.cores} cores`,
    `- Memory: ${m.memoryGiB.toFixed(1)} GiB`,
    `- OS: ${m.os}`,
    `- Node ${m.node}, node-datachannel ${m.nodeDataChannel} (libdatachannel ${m.libdatachannel})`,
    `- Python (aiortc scenario): ${m.python}`,
    `- Load average at start (1, 5, 15 min): ${m.loadAverage}`,
    '',
    '## Method',
    '',
    '- Everything on 127.0.0.1: every `serve` is started with `--host 127.0.0.1 --port 0` and ' +
      'announces its URL over IPC (`<url>` below); every `send` binds WebRTC to 127.0.0.1. Runs ' +
      'go one after another, never overlapping (except the senders of the clients scenario). ' +
      'Every child has a timeout and is killed when it passes it; a failed run is reported, not ' +
      'retried.',
    `- Before each measured run the bench waits up to ${o.quietWait} s (\`--quiet-wait\`) for ` +
      'the machine to be quiet (2 s with under 0.3 of a core busy, all processes together); ' +
      `${report.busyStarts} run(s) started without getting there.`,
    '- MB = 1e6 bytes. Cells with repeats: median (min–max).',
    "- **UDP drops**: growth of the kernel's `Udp: RcvbufErrors` (/proc/net/snmp, machine-wide) " +
      'during the run: datagrams dropped because a receive buffer was full; each one costs SCTP a ' +
      'retransmission and a smaller congestion window.',
    '- **other CPU s**: busy CPU time of the whole machine (all cores, /proc/stat, softirq ' +
      "included) minus what the benchmark's processes report, over the run: other processes, " +
      "plus the benchmark's own start-up (node and tsx loading; about 1–2 s for bare, under " +
      '0.5 s per `send`). A run where it exceeds 2 s + 10% of the run (+ 0.5 s per extra ' +
      'process) is flagged below: the machine was not quiet and its numbers are suspect.',
    '',
    ...warning.flatMap((w) => [`**${w}**`, '']),
    ...ceilingsSection(b, o),
    ...seedSection(b, o, plots),
    ...tlsSection(b, o),
    ...chunksSection(b, o, plots),
    ...scaleSection(b, o, plots),
    ...clientsSection(b, o, plots, m.cores),
    ...aiortcSection(b, o),
    ...enduranceSection(b, plots),
    ...failures,
    '## Targets',
    '',
    table(
      ['target', 'measured', 'status'],
      targets(b).map((t) => [t.target, t.measured || '–', t.status]),
    ),
    '',
  ].join('\n');
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
  const a = b.aiortc;
  if (a) {
    lines.push(
      a.result
        ? `aiortc: ${a.result.framesAcked}/${a.result.framesPlanned} frames, ` +
            `${a.result.framesPerSec.toFixed(2)} frames/s, ${a.result.mbPerSec.toFixed(1)} MB/s`
        : `aiortc: ${a.skipped ? `skipped (${a.skipped})` : 'FAILED'}`,
    );
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
