/** Aggregation of the runs, the markdown report and the stdout summary. */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import nodeDataChannel from 'node-datachannel';
import { ROOT } from './proc.js';
import type { SeedResult, TransferResult } from './scenarios.js';
import { formatSpread, spread } from './stats.js';
import type { Spread } from './stats.js';

export type Scenario = 'bare' | 'pointstream';

export interface RunRecord {
  readonly repeat: number;
  readonly scenario: Scenario;
  readonly mtu: number;
  readonly result?: TransferResult;
  readonly error?: string;
}

export interface SeedRecord {
  readonly seconds: number;
  readonly result?: SeedResult;
  readonly error?: string;
}

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  readonly nodeDataChannel: string;
  readonly libdatachannel: string;
  readonly loadAverage: string;
}

export interface BenchReport {
  readonly date: string;
  readonly startedAt: string;
  readonly command: string;
  readonly machine: Machine;
  readonly repeats: number;
  readonly frames: number;
  readonly bytesPerRun: number;
  readonly mtus: readonly number[];
  /** Commands of one repeat, in the order they ran; `<url>` is the server's address. */
  readonly commands: readonly string[];
  readonly runs: readonly RunRecord[];
  readonly seed: SeedRecord;
  readonly failures: readonly string[];
}

export function describeMachine(): Machine {
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
    loadAverage: os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(', '),
  };
}

// ---------------------------------------------------------------------------------------------
// Aggregation

interface ScenarioRow {
  readonly mtu: number;
  readonly scenario: Scenario;
  readonly mbPerSec: Spread;
  readonly senderCpu: Spread;
  readonly receiverCpu: Spread;
  readonly udpDrops: Spread;
  readonly otherCpu: Spread;
  readonly failed: number;
}

function scenarioRows(report: BenchReport): ScenarioRow[] {
  const rows: ScenarioRow[] = [];
  for (const mtu of report.mtus) {
    for (const scenario of ['bare', 'pointstream'] as const) {
      const runs = report.runs.filter((r) => r.mtu === mtu && r.scenario === scenario);
      const ok = runs.flatMap((r) => (r.result ? [r.result] : []));
      rows.push({
        mtu,
        scenario,
        mbPerSec: spread(ok.map((r) => r.mbPerSec)),
        senderCpu: spread(ok.map((r) => r.senderCpuPer100MB)),
        receiverCpu: spread(ok.map((r) => r.receiverCpuPer100MB)),
        udpDrops: spread(ok.flatMap((r) => (r.udpDrops === undefined ? [] : [r.udpDrops]))),
        otherCpu: spread(ok.map((r) => r.otherCpuSec)),
        failed: runs.length - ok.length,
      });
    }
  }
  return rows;
}

/** pointstream / bare throughput of the two runs of the same repeat (they ran back to back). */
function ratio(report: BenchReport, mtu: number): Spread {
  const ratios: number[] = [];
  for (let repeat = 1; repeat <= report.repeats; repeat++) {
    const find = (s: Scenario): TransferResult | undefined =>
      report.runs.find((r) => r.repeat === repeat && r.mtu === mtu && r.scenario === s)?.result;
    const bare = find('bare');
    const ps = find('pointstream');
    if (bare && ps) ratios.push(ps.mbPerSec / bare.mbPerSec);
  }
  return spread(ratios);
}

/**
 * Runs during which other work took more than 2 CPU s plus 10% of a core (start-up of the
 * benchmark's own processes stays below that): their numbers are suspect.
 */
function noisyRuns(report: BenchReport): string[] {
  const noisy = (other: number, seconds: number): boolean => other > 2 + 0.1 * seconds;
  const found = report.runs.flatMap((r) =>
    r.result && noisy(r.result.otherCpuSec, r.result.seconds)
      ? [`repeat ${r.repeat} ${r.scenario} mtu ${r.mtu}: ${r.result.otherCpuSec.toFixed(1)} s`]
      : [],
  );
  const seed = report.seed.result;
  if (seed && noisy(seed.otherCpuSec, seed.seconds)) {
    found.push(`seed workload: ${seed.otherCpuSec.toFixed(1)} s`);
  }
  return found;
}

function noiseWarning(report: BenchReport): string[] {
  const noisy = noisyRuns(report);
  if (noisy.length === 0) return [];
  return [
    `WARNING: the machine was busy with other work during ${noisy.length} run(s) ` +
      `(other CPU s: ${noisy.join('; ')}); rerun on a quiet machine.`,
  ];
}

// ---------------------------------------------------------------------------------------------
// Markdown

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;

function seedTable(seed: SeedRecord): string {
  const s = seed.result;
  if (!s) return `Failed: ${seed.error ?? 'unknown error'}`;
  const pct = (cpu: number): string =>
    `${cpu.toFixed(2)} s (${((cpu / s.seconds) * 100).toFixed(0)}%)`;
  return table(
    [
      'frames acked / planned',
      'achieved Hz',
      'late frames',
      'latency p50 / p99 / max (ms)',
      'sender CPU (% of a core)',
      'server CPU (% of a core)',
      'server peak RSS',
      'sender peak RSS',
      'UDP drops',
      'other CPU s',
    ],
    [
      [
        `${s.framesAcked} / ${s.framesPlanned}`,
        s.achievedHz.toFixed(2),
        String(s.lateFrames),
        `${s.latencyMs.p50} / ${s.latencyMs.p99} / ${s.latencyMs.max}`,
        pct(s.senderCpuSec),
        pct(s.serverCpuSec),
        mb(s.serverPeakRssBytes),
        mb(s.senderPeakRssBytes),
        String(s.udpDrops ?? 'n/a'),
        s.otherCpuSec.toFixed(1),
      ],
    ],
  );
}

export function renderMarkdown(report: BenchReport): string {
  const m = report.machine;
  const rows = scenarioRows(report);
  const throughput = table(
    [
      'MTU',
      'scenario',
      'MB/s',
      'sender CPU s / 100 MB',
      'receiver CPU s / 100 MB',
      'UDP drops',
      'other CPU s',
      'failed',
    ],
    rows.map((r) => [
      String(r.mtu),
      r.scenario,
      formatSpread(r.mbPerSec, 1),
      formatSpread(r.senderCpu, 2),
      formatSpread(r.receiverCpu, 2),
      formatSpread(r.udpDrops, 0),
      formatSpread(r.otherCpu, 1),
      String(r.failed),
    ]),
  );
  const ratios = table(
    ['MTU', 'pointstream / bare throughput'],
    report.mtus.map((mtu) => [String(mtu), formatSpread(ratio(report, mtu), 2)]),
  );
  const runs = table(
    [
      'repeat',
      'scenario',
      'MTU',
      'MB/s',
      'seconds',
      'sender CPU s / 100 MB',
      'receiver CPU s / 100 MB',
      'UDP drops',
      'other CPU s',
    ],
    report.runs.map((r) => [
      String(r.repeat),
      r.scenario,
      String(r.mtu),
      ...(r.result
        ? [
            r.result.mbPerSec.toFixed(1),
            r.result.seconds.toFixed(2),
            r.result.senderCpuPer100MB.toFixed(2),
            r.result.receiverCpuPer100MB.toFixed(2),
            String(r.result.udpDrops ?? 'n/a'),
            r.result.otherCpuSec.toFixed(1),
          ]
        : ['FAILED', '', '', '', '', '']),
    ]),
  );
  const warning = noiseWarning(report);
  const failures = report.failures.length
    ? ['## Failures', '', ...report.failures.map((f) => `- ${f.replace(/\n+/g, ' / ')}`), '']
    : [];
  return [
    `# pointstream benchmark, ${report.date}`,
    '',
    `Started ${report.startedAt} with \`${report.command}\`.`,
    '',
    '## Machine',
    '',
    `- CPU: ${m.cpu}, ${m.cores} cores`,
    `- Memory: ${m.memoryGiB.toFixed(1)} GiB`,
    `- OS: ${m.os}`,
    `- Node ${m.node}, node-datachannel ${m.nodeDataChannel} (libdatachannel ${m.libdatachannel})`,
    `- Load average at start (1, 5, 15 min): ${m.loadAverage}`,
    '',
    '## Method',
    '',
    `Everything on 127.0.0.1. Each run moves ${report.frames} frames x 12,000,128 bytes ` +
      `(1,000,000 points as .npy) = ${report.bytesPerRun.toLocaleString('en-US')} bytes, ` +
      `in 262,144-byte messages. ${report.repeats} repeat(s); within a repeat the scenarios run ` +
      `back to back in this order:`,
    '',
    '```sh',
    ...report.commands,
    '```',
    '',
    '- **bare**: node-datachannel alone, no framing; the receiver advertises max-message-size ' +
      '64 MiB + 1024 like the pointstream server. MB/s from the first send to the last byte ' +
      'received; sender CPU over that window, receiver CPU from channel open to the last byte.',
    '- **pointstream**: a fresh `serve` child per run, `--mtu` on both sides. MB/s and sender CPU ' +
      "as `send --json` reports them (from connected to the session's end, including the last " +
      'receipt; sender CPU also covers connecting and generating the random points). Receiver ' +
      "CPU: difference of the server's `/stats` `cpuSeconds` read just before and just after " +
      '`send` (connection set-up and teardown included).',
    "- **UDP drops**: growth of the kernel's `Udp: RcvbufErrors` (/proc/net/snmp, machine-wide) " +
      'during the run: datagrams dropped because a receive buffer was full; each one costs SCTP a ' +
      'retransmission and a smaller congestion window.',
    '- **other CPU s**: busy CPU time of the whole machine (all cores, /proc/stat) minus what ' +
      "sender and receiver report, over the bare child's lifetime or over the `send` process's: " +
      "other processes, plus the benchmark's own start-up (node and tsx loading, connecting; " +
      'about 1–2 s for bare, under 0.5 s for pointstream). Much more means the machine was not ' +
      'quiet and the run is suspect.',
    '- MB = 1e6 bytes. Cells: median (min–max). The ratio pairs the bare and pointstream runs of ' +
      'the same repeat.',
    '',
    '## Throughput and CPU',
    '',
    ...warning.flatMap((w) => [`**${w}**`, '']),
    throughput,
    '',
    ratios,
    '',
    '### Every run',
    '',
    runs,
    '',
    `## Seed workload (1,000,000 points at 4 Hz for ${report.seed.seconds} s, default MTU)`,
    '',
    seedTable(report.seed),
    '',
    ...failures,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// stdout summary

export function renderSummary(report: BenchReport, path: string): string {
  const pad = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd([6, 15, 20, 20, 22, 14, 0][i] ?? 0))
      .join('')
      .trimEnd();
  const lines = [
    `pointstream bench: ${report.repeats} repeat(s), ${report.frames} frames ` +
      `(${mb(report.bytesPerRun)}) per run, loopback; median (min–max)`,
    pad([
      'MTU',
      'scenario',
      'MB/s',
      'sender CPU s/100MB',
      'receiver CPU s/100MB',
      'UDP drops',
      'other CPU s',
    ]),
  ];
  for (const r of scenarioRows(report)) {
    lines.push(
      pad([
        String(r.mtu),
        r.scenario,
        formatSpread(r.mbPerSec, 1),
        formatSpread(r.senderCpu, 2),
        formatSpread(r.receiverCpu, 2),
        formatSpread(r.udpDrops, 0),
        formatSpread(r.otherCpu, 1),
      ]),
    );
    if (r.scenario === 'pointstream') {
      lines.push(pad(['', 'ratio ps/bare', formatSpread(ratio(report, r.mtu), 2)]));
    }
  }
  const s = report.seed.result;
  lines.push(
    s
      ? `seed (${report.seed.seconds} s at 4 Hz): ${s.framesAcked}/${s.framesPlanned} frames, ` +
          `${s.achievedHz} Hz, latency p50/p99/max ${s.latencyMs.p50}/${s.latencyMs.p99}/` +
          `${s.latencyMs.max} ms, CPU sender ${s.senderCpuSec.toFixed(2)} s, server ` +
          `${s.serverCpuSec.toFixed(2)} s, server peak RSS ${mb(s.serverPeakRssBytes)}`
      : `seed: FAILED`,
  );
  lines.push(...noiseWarning(report));
  lines.push(`report: ${path}`);
  return lines.join('\n');
}
