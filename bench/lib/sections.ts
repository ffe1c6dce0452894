/**
 * The view of each scenario's report section: exact commands, tables, plot files and the numbers
 * the prose quotes. The prose itself is in bench/lib/report.md; undefined: the scenario did not run.
 */
import { CPU_WRAPPER, PYTHON, aiortcArgs, plainServeArgs } from './aiortc.js';
import { PACKAGE_RUNNER, packageArgs } from './python-package.js';
import { clientSendArgs, clientsServeArgs } from './clients.js';
import {
  clusterNodeArgs,
  failoverSendArgs,
  frontArgs,
  ingestSendArgs,
  nodeId,
  portRange,
} from './cluster.js';
import type { ClusterIngestResult, FailoverKill } from './cluster.js';
import { SAMPLE_EVERY_MS } from './endurance.js';
import type { BrowserBenchRow } from './browser.js';
import { fieldPrecisionLabel, formatFieldError } from './encodings.js';
import type { EncodingBenchRow } from './encodings.js';
import type { Options } from './options.js';
import {
  HZ,
  MTUS,
  LOOPBACK_MTU,
  ceilingRuns,
  chunkRuns,
  clusterRoleCosts,
  codecRows,
  logLogSlope,
  ok,
  pairedRatio,
  sustained,
  transferRow,
} from './results.js';
import type { BenchResults, Outcome, RunRecord } from './results.js';
import {
  FRAME_BYTES,
  POINTS_PER_FRAME,
  atRate,
  bareCeilingFrames,
  bareArgs,
  fullSpeed,
  npyBytes,
  sendArgs,
  serveArgs,
} from './scenarios.js';
import type { RateResult } from './scenarios.js';
import { formatSpread, percentile, spread } from './stats.js';
import { OPENSSL_ARGS, tlsServeExtra } from './tls.js';
import type { View } from './template.js';

/** Plot name -> file name (next to the report). */
export type PlotFiles = ReadonlyMap<string, string>;

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;
const int = (n: number): string => n.toLocaleString('en-US');
const kib = (bytes: number): string =>
  bytes >= 1 << 20 ? `${bytes / (1 << 20)} MiB` : `${bytes / 1024} KiB`;
const pctOfCore = (cpu: number, seconds: number): string =>
  `${cpu.toFixed(2)} s (${((cpu / seconds) * 100).toFixed(0)}%)`;
const node = (args: readonly string[]): string => `node ${args.join(' ')}`;
const lines = (commands: readonly string[]): string => commands.join('\n');
const failedRow = (o: Outcome<unknown>): string =>
  o.skipped ? `skipped: ${o.skipped}` : `FAILED: ${(o.error ?? 'unknown error').split('\n')[0]}`;

// ---------------------------------------------------------------------------------------------

export function ceilingsView(b: BenchResults, o: Options): View | undefined {
  const runs = b.ceilings;
  if (!runs) return undefined;
  const at = (mtu: number): RunRecord[] => runs.filter((r) => r.mtu === mtu);
  const commands = MTUS.flatMap((mtu) => {
    // The loopback MTU is send's own choice: its run has no --mtu, as users type it.
    const flag = mtu === LOOPBACK_MTU ? undefined : mtu;
    return [
      `# MTU ${mtu}: bare, then pointstream (server's /stats read before and after send)`,
      node(bareArgs(mtu, bareCeilingFrames(mtu, o.ceilingSeconds))),
      `${node(serveArgs({ mtu: flag }))}   # prints <url> over IPC`,
      node(sendArgs('<url>', atRate(0, o.ceilingSeconds), { mtu: flag })),
    ];
  });
  const rows = MTUS.flatMap((mtu) =>
    (['bare', 'pointstream'] as const).map((s) => {
      const r = transferRow(ceilingRuns(runs, mtu, s));
      return [
        String(mtu),
        s,
        formatSpread(r.mbPerSec, 1),
        formatSpread(r.senderCpu, 2),
        formatSpread(r.receiverCpu, 2),
        formatSpread(r.udpDrops, 0),
        formatSpread(r.otherCpu, 1),
        String(r.failed),
      ];
    }),
  );
  const every = runs.map((r) => [
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
  ]);
  return {
    frameBytes: int(FRAME_BYTES),
    frames4096: bareCeilingFrames(4096, o.ceilingSeconds),
    frames1280: bareCeilingFrames(1280, o.ceilingSeconds),
    seconds: o.ceilingSeconds,
    loopbackMtu: LOOPBACK_MTU,
    repeats: o.repeats,
    commands: lines(commands),
    table: table(
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
      rows,
    ),
    ratios: table(
      ['MTU', 'pointstream / bare throughput', 'pointstream / bare receiver CPU per 100 MB'],
      MTUS.map((mtu) => [
        String(mtu),
        formatSpread(
          pairedRatio(at(mtu), (r) => r.mbPerSec),
          2,
        ),
        formatSpread(
          pairedRatio(at(mtu), (r) => r.receiverCpuPer100MB),
          2,
        ),
      ]),
    ),
    every: table(
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
      every,
    ),
  };
}

// ---------------------------------------------------------------------------------------------

const RATE_HEADER = [
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
];

function rateCells(s: RateResult): string[] {
  return [
    `${s.framesAcked} / ${s.framesPlanned}`,
    s.achievedHz.toFixed(2),
    String(s.lateFrames),
    `${s.latencyMs.p50} / ${s.latencyMs.p99} / ${s.latencyMs.max}`,
    pctOfCore(s.senderCpuSec, s.seconds),
    pctOfCore(s.serverCpuSec, s.seconds),
    mb(s.serverPeakRssBytes),
    mb(s.senderPeakRssBytes),
    String(s.udpDrops ?? 'n/a'),
    s.otherCpuSec.toFixed(1),
  ];
}

function rateTable(rows: readonly (readonly [string, Outcome<RateResult> | undefined])[]): string {
  return table(
    ['run', ...RATE_HEADER],
    rows.flatMap(([label, o]) =>
      o ? [[label, ...(o.result ? rateCells(o.result) : [failedRow(o)])]] : [],
    ),
  );
}

export function seedView(b: BenchResults, o: Options, plots: PlotFiles): View | undefined {
  if (!b.seed) return undefined;
  const lat = b.seed.result?.frameLatenciesMs ?? [];
  const p = (q: number): string => percentile(lat, q).toFixed(1);
  return {
    hz: HZ,
    duration: o.seedDuration,
    commands: lines([
      `${node(serveArgs({ logLevel: 'info' }))}   # one JSON log line per verified frame`,
      node(sendArgs('<url>', atRate(HZ, o.seedDuration))),
    ]),
    table: rateTable([['seed', b.seed]]),
    latency: lat.length
      ? { count: lat.length, p50: p(50), p90: p(90), p99: p(99), max: Math.max(...lat).toFixed(1) }
      : undefined,
    latencyPlot: plots.get('seed-latency'),
  };
}

export function tlsView(b: BenchResults, o: Options): View | undefined {
  if (!b.tls) return undefined;
  return {
    commands: lines([
      `openssl ${OPENSSL_ARGS.join(' ')}`,
      node(serveArgs({ extra: tlsServeExtra('<dir>') })),
      node(
        sendArgs('<https-url>', atRate(HZ, o.seedDuration), { extra: ['--ca', '<dir>/cert.pem'] }),
      ),
    ]),
    table: rateTable([
      ['plain HTTP (seed, above)', b.seed],
      ['HTTPS', b.tls],
    ]),
  };
}

// ---------------------------------------------------------------------------------------------

export function chunksView(b: BenchResults, o: Options, plots: PlotFiles): View | undefined {
  const records = b.chunks;
  if (!records) return undefined;
  const rows = o.chunkSizes.flatMap((size) =>
    (['bare', 'pointstream'] as const).map((s) => {
      const r = transferRow(chunkRuns(records, size, s));
      const ratio = pairedRatio(
        records.filter((c) => c.chunkBytes === size),
        (x) => x.mbPerSec,
      );
      return [
        kib(size),
        s,
        formatSpread(r.chunkBytes, 0),
        formatSpread(r.mbPerSec, 1),
        s === 'pointstream' ? formatSpread(ratio, 2) : '',
        formatSpread(r.senderCpu, 2),
        formatSpread(r.receiverCpu, 2),
        formatSpread(r.udpDrops, 0),
        formatSpread(r.otherCpu, 1),
        String(r.failed),
      ];
    }),
  );
  const capped = [
    ...new Set(
      ok(
        records.filter(
          (c) => c.scenario === 'pointstream' && c.result?.chunkBytes !== c.chunkBytes,
        ),
      ).map((r) => r.chunkBytes),
    ),
  ];
  const asked = o.chunkSizes.filter((size) =>
    chunkRuns(records, size, 'pointstream').some((c) => c.result && c.result.chunkBytes !== size),
  );
  return {
    frames: o.frames,
    loopbackMtu: LOOPBACK_MTU,
    repeats: o.repeats,
    commands: lines(
      o.chunkSizes.flatMap((size) => [
        node(bareArgs(LOOPBACK_MTU, o.frames, size)),
        node(serveArgs()),
        node(sendArgs('<url>', fullSpeed(o.frames), { chunkBytes: size })),
      ]),
    ),
    capped: asked.length
      ? { asked: asked.map(int).join(', '), used: capped.map(int).join(', ') }
      : undefined,
    table: table(
      [
        'chunk asked',
        'scenario',
        'chunk used (bytes)',
        'MB/s',
        'pointstream / bare (paired)',
        'sender CPU s / 100 MB',
        'receiver CPU s / 100 MB',
        'UDP drops',
        'other CPU s',
        'failed',
      ],
      rows,
    ),
    chunksPlot: plots.get('chunks'),
  };
}

// ---------------------------------------------------------------------------------------------

export function scaleView(b: BenchResults, o: Options, plots: PlotFiles): View | undefined {
  const records = b.scale;
  if (!records) return undefined;
  const rows = records.map(({ points, ...out }) => {
    const r = out.result;
    if (!r) return [int(points), mb(npyBytes(points)), failedRow(out)];
    const perFrame = (cpu: number): string =>
      r.framesAcked ? ((cpu / r.framesAcked) * 1000).toFixed(0) : 'n/a';
    return [
      int(points),
      mb(npyBytes(points)),
      ((HZ * npyBytes(points)) / 1e6).toFixed(1),
      `${r.framesAcked} / ${r.framesPlanned}`,
      String(r.framesMissing),
      String(r.lateFrames),
      r.achievedHz.toFixed(2),
      r.mbPerSec.toFixed(1),
      `${r.latencyMs.p50} / ${r.latencyMs.p99}`,
      pctOfCore(r.senderCpuSec, r.seconds),
      pctOfCore(r.serverCpuSec, r.seconds),
      `${perFrame(r.senderCpuSec)} / ${perFrame(r.serverCpuSec)}`,
      mb(r.serverPeakRssBytes),
      sustained(r) ? 'yes' : 'no',
      r.otherCpuSec.toFixed(1),
    ];
  });
  return {
    hz: HZ,
    duration: o.scaleDuration,
    commands: lines([
      node(serveArgs()),
      ...o.scalePoints.map((p) =>
        node(sendArgs('<url>', atRate(HZ, o.scaleDuration), { points: p })),
      ),
    ]),
    table: table(
      [
        'points',
        'frame',
        'offered MB/s',
        'frames acked / planned',
        'missing',
        'late',
        'achieved Hz',
        'MB/s',
        'latency p50 / p99 (ms)',
        'sender CPU (% core)',
        'server CPU (% core)',
        'CPU ms / frame sender / server',
        'server peak RSS',
        'sustained',
        'other CPU s',
      ],
      rows,
    ),
    verdict: scaleVerdict(records.flatMap((r) => (r.result ? [r.result] : []))),
    throughputPlot: plots.get('scale-throughput'),
    latencyPlot: plots.get('scale-latency'),
  };
}

function scaleVerdict(runs: readonly RateResult[]): View | undefined {
  if (runs.length === 0) return undefined;
  const held = runs.filter((r) => sustained(r)).sort((a, b) => b.points - a.points)[0];
  const firstFail = runs
    .filter((r) => !sustained(r) && (!held || r.points > held.points))
    .sort((a, b) => a.points - b.points)[0];
  const bytes = (r: RateResult): number => npyBytes(r.points);
  const slope = (f: (r: RateResult) => number): string =>
    logLogSlope(runs.filter((r) => r.framesAcked > 0).map((r) => [bytes(r), f(r)])).toFixed(2);
  const serverPerFrame = (r: RateResult): number => r.serverCpuSec / r.framesAcked;
  const senderPerFrame = (r: RateResult): number => r.senderCpuSec / r.framesAcked;
  const per100 = spread(runs.map((r) => (serverPerFrame(r) * 1e8) / bytes(r)));
  return {
    held: held && {
      points: int(held.points),
      frame: mb(bytes(held)),
      offered: ((HZ * bytes(held)) / 1e6).toFixed(0),
      p99: held.latencyMs.p99,
      next: firstFail && {
        points: int(firstFail.points),
        offered: ((HZ * bytes(firstFail)) / 1e6).toFixed(0),
        achievedHz: firstFail.achievedHz.toFixed(2),
        mbPerSec: firstFail.mbPerSec.toFixed(0),
        late: firstFail.lateFrames,
        missing: firstFail.framesMissing,
      },
    },
    serverSlope: slope(serverPerFrame),
    senderSlope: slope(senderPerFrame),
    latencySlope: slope((r) => r.latencyMs.p50),
    per100: formatSpread(per100, 2),
    rss: runs.map((r) => mb(r.serverPeakRssBytes)).join(' -> '),
  };
}

// ---------------------------------------------------------------------------------------------

export function clientsView(
  b: BenchResults,
  o: Options,
  plots: PlotFiles,
  cores: number,
): View | undefined {
  const records = b.clients;
  if (!records) return undefined;
  const shape = { points: o.clientPoints, seconds: o.clientsDuration, hz: HZ, clients: 1 };
  const bareReceiver =
    b.ceilings && transferRow(ceilingRuns(b.ceilings, LOOPBACK_MTU, 'bare')).receiverCpu;
  const rows = records.map(({ clients, ...out }) => {
    const r = out.result;
    if (!r) return [String(clients), failedRow(out)];
    const p50 = spread(r.summaries.map((s) => s.latencyMs.p50));
    const p99 = spread(r.summaries.map((s) => s.latencyMs.p99));
    return [
      String(clients),
      r.offeredMbPerSec.toFixed(1),
      r.aggregateMbPerSec.toFixed(1),
      `${r.framesAcked} / ${r.framesPlanned}`,
      String(r.framesPlanned - r.framesAcked),
      formatSpread(p50, 0),
      formatSpread(p99, 0),
      r.serverCpuPer100MB.toFixed(2),
      pctOfCore(r.serverCpuSec, r.wallSeconds),
      r.senderCpuSec.toFixed(1),
      mb(r.serverPeakRssBytes),
      String(r.udpDrops ?? 'n/a'),
      r.otherCpuSec.toFixed(1),
      r.errors.length ? `${r.errors.length}: ${r.errors[0]?.split('\n')[0]}` : '0',
    ];
  });
  return {
    points: int(o.clientPoints),
    hz: HZ,
    duration: o.clientsDuration,
    serveCommand: node(clientsServeArgs()),
    sendCommand: node(clientSendArgs('<url>', shape)),
    cores,
    table: table(
      [
        'clients',
        'offered MB/s',
        'aggregate MB/s',
        'frames acked / planned',
        'lost',
        'per-client p50 (ms)',
        'per-client p99 (ms)',
        'server CPU s / 100 MB',
        'server CPU (% core)',
        'sender CPU s (all)',
        'server peak RSS',
        'UDP drops',
        'other CPU s',
        'failed sends',
      ],
      rows,
    ),
    bareReceiver: bareReceiver && bareReceiver.n ? formatSpread(bareReceiver, 2) : undefined,
    clientsPlot: plots.get('clients'),
  };
}

// ---------------------------------------------------------------------------------------------
// Cluster

/** The nats-server configuration the bench writes (test/support/nats.ts), for the report. */
export const NATS_CONFIG = [
  'listen: 127.0.0.1:-1  # -1: a free port',
  'max_payload: 8MB  # the bus publishes 1 MiB chunks + headers; the default 1 MB is too small',
  'jetstream { store_dir: "<temporary directory>/js" }',
].join('\n');

const sumOf = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);
const per100 = (cpu: number, bytes: number): string =>
  bytes > 0 ? ((cpu * 1e8) / bytes).toFixed(2) : 'n/a';

function clusterIngestRow(nodes: number, r: ClusterIngestResult): string[] {
  const nodeCpu = Object.entries(r.nodeCpuSec)
    .map(([id, cpu]) => `${id} ${per100(cpu, r.ackedBytes)}`)
    .join(', ');
  return [
    String(nodes),
    r.placement.join(', ') || 'none',
    `${r.framesAcked} / ${r.framesPlanned}`,
    r.aggregateMbPerSec.toFixed(1),
    nodeCpu,
    per100(sumOf(Object.values(r.nodeCpuSec)), r.ackedBytes),
    per100(r.natsCpuSec, r.ackedBytes),
    per100(r.frontCpuSec, r.ackedBytes),
    per100(r.clientCpuSec, r.ackedBytes),
    r.wallSeconds > 0 ? (r.busySec / r.wallSeconds).toFixed(2) : 'n/a',
    r.kernelCpuSec.toFixed(1),
    r.stealSec.toFixed(1),
    r.otherCpuSec.toFixed(1),
    String(r.udpDrops ?? 'n/a'),
    r.errors.length ? `${r.errors.length}: ${r.errors[0]?.split('\n')[0]}` : '0',
  ];
}

const ms = (x: number | undefined): string => (x === undefined ? '–' : x.toFixed(0));

function failoverRow(k: FailoverKill): string[] {
  return [
    String(k.kill),
    k.node,
    k.newNode ?? '–',
    ms(k.recoveryMs),
    ms(k.busMs),
    String(k.lost),
    String(k.skipped),
    k.busGap === undefined ? '–' : String(k.busGap),
    String(k.attempts),
    ms(k.rejoinMs),
  ];
}

/** Median, p90 (nearest rank) and max of the kills' recovery times, ms; undefined without any. */
export function recoveryStats(
  kills: readonly FailoverKill[],
): { n: number; median: number; p90: number; max: number } | undefined {
  const values = kills.flatMap((k) => (k.recoveryMs === undefined ? [] : [k.recoveryMs]));
  if (values.length === 0) return undefined;
  return {
    n: values.length,
    median: spread(values).median,
    p90: percentile(values, 90),
    max: Math.max(...values),
  };
}

/** Projection of what N dedicated 2-core node machines would carry. */
const PROJECTED_MACHINES = [1, 2, 4, 8];

export function clusterView(b: BenchResults, o: Options, cores: number): View | undefined {
  const c = b.cluster;
  if (!c) return undefined;
  const nodes = Math.max(...o.clusterNodeCounts, 3);
  const commonCommands = [
    '/usr/sbin/nats-server -c nats.conf',
    ...Array.from({ length: nodes }, (_, i) => node(clusterNodeArgs('<nats-url>', i))),
    node(frontArgs('<nats-url>')),
  ];
  const ingestRuns = ok(c.ingest);
  const costs = clusterRoleCosts(ingestRuns);
  const cost = (role: string): (typeof costs)[number] | undefined =>
    costs.find((x) => x.role === role);
  const nodeCore = cost('node')?.mbPerSecPerCore;
  const natsCore = cost('nats-server')?.mbPerSecPerCore;
  const f = c.failover;
  const kills = f?.result?.kills ?? [];
  const rec = recoveryStats(kills);
  const summary = f?.result?.summary;
  const consumer = f?.result?.consumer;
  return {
    skipped: c.skipped,
    points: int(o.clusterPoints),
    frameBytes: int(npyBytes(o.clusterPoints)),
    duration: o.clusterDuration,
    cores,
    natsConfig: NATS_CONFIG,
    ranges: Array.from({ length: nodes }, (_, i) => `${nodeId(i)} ${portRange(i)}`).join(', '),
    commonCommands: lines(commonCommands),
    ingestSend: node(ingestSendArgs('<front-url>', o.clusterPoints, o.clusterDuration)),
    ingestTable: table(
      [
        'nodes',
        'client -> node',
        'frames acked / planned',
        'aggregate MB/s acked',
        'CPU s / 100 MB per node',
        'nodes (all)',
        'nats-server',
        'front',
        'clients (all)',
        'machine busy (cores)',
        'kernel threads CPU s',
        'steal s',
        'other CPU s',
        'UDP drops',
        'failed sends',
      ],
      c.ingest.map((r) =>
        r.result ? clusterIngestRow(r.nodes, r.result) : [String(r.nodes), failedRow(r)],
      ),
    ),
    roles: ingestRuns.length
      ? {
          runs: ingestRuns.length,
          table: table(
            ['role', 'CPU s (all runs)', 'CPU s / 100 MB acked', 'MB/s per dedicated core'],
            costs.map((x) => [
              x.role,
              x.cpuSec.toFixed(2),
              Number.isFinite(x.per100MB) ? x.per100MB.toFixed(3) : 'n/a',
              x.mbPerSecPerCore === undefined ? '– (no media)' : x.mbPerSecPerCore.toFixed(0),
            ]),
          ),
          projection:
            nodeCore === undefined
              ? undefined
              : {
                  nodePerCore: nodeCore.toFixed(0),
                  nodePer2Cores: (2 * nodeCore).toFixed(0),
                  natsPerCore: natsCore === undefined ? 'n/a' : natsCore.toFixed(0),
                  natsPer2Cores: natsCore === undefined ? 'n/a' : (2 * natsCore).toFixed(0),
                  table: table(
                    [
                      'node machines (2 cores each)',
                      'nodes carry at most (MB/s)',
                      'with one 2-core nats-server (MB/s)',
                    ],
                    PROJECTED_MACHINES.map((n) => {
                      const carry = n * 2 * nodeCore;
                      const bound = natsCore === undefined ? carry : Math.min(carry, 2 * natsCore);
                      return [
                        String(n),
                        carry.toFixed(0),
                        `${bound.toFixed(0)}${bound < carry ? ' (nats-server bound)' : ''}`,
                      ];
                    }),
                  ),
                },
        }
      : undefined,
    failover: f
      ? {
          kills: o.clusterKills,
          hz: HZ,
          failoverSend: node(failoverSendArgs('<front-url>', o.clusterPoints, HZ)),
          failed: f.result ? undefined : failedRow(f),
          error: f.result && f.error ? f.error.split('\n')[0] : undefined,
          table: f.result
            ? table(
                [
                  'kill',
                  'node killed',
                  'new node',
                  'kill -> first frame on the new node (ms)',
                  'kill -> on the bus (ms)',
                  'lost',
                  'skipped',
                  'bus gap',
                  'connection attempts',
                  'restarted node seen by the front (ms)',
                ],
                kills.map(failoverRow),
              )
            : undefined,
          recovery: rec && {
            n: rec.n,
            median: rec.median.toFixed(0),
            p90: rec.p90.toFixed(0),
            max: rec.max.toFixed(0),
            values: kills.map((k) => ms(k.recoveryMs)).join(', '),
          },
          client: summary && {
            acked: summary.framesAcked,
            reached: summary.framesPlanned - summary.framesNotSent,
            lost: summary.framesLost,
            skipped: summary.framesSkipped,
            reconnects: summary.reconnects,
            sessions: summary.sessions.length,
          },
          consumer: consumer && {
            delivered: consumer.framesDelivered,
            missed: consumer.framesMissed,
            incomplete: consumer.framesIncomplete,
            invalid: consumer.messagesInvalid,
            lastError: consumer.lastError,
          },
        }
      : undefined,
  };
}

// ---------------------------------------------------------------------------------------------

export function aiortcView(b: BenchResults, o: Options): View | undefined {
  const out = b.aiortc;
  if (!out) return undefined;
  const r = out.result;
  return {
    serveCommand: node(plainServeArgs()),
    python: PYTHON,
    args: aiortcArgs('<url>', o.aiortcFrames, o.aiortcPoints, '<tmpdir>').join(' '),
    wrapper: CPU_WRAPPER,
    skipped: out.skipped,
    table: r
      ? table(
          [
            'frames acked / planned',
            'frames/s',
            'MB/s',
            'wall s',
            'Python CPU s',
            'server CPU s / 100 MB',
            'server peak RSS',
            'other CPU s',
          ],
          [
            [
              `${r.framesAcked} / ${r.framesPlanned}`,
              r.framesPerSec.toFixed(2),
              r.mbPerSec.toFixed(1),
              r.wallSeconds.toFixed(1),
              r.pythonCpuSec.toFixed(1),
              r.serverCpuPer100MB.toFixed(2),
              mb(r.serverPeakRssBytes),
              r.otherCpuSec.toFixed(1),
            ],
          ],
        )
      : failedRow(out),
  };
}

/** The Python package (`python3 -m pointstream send`), chunked and plain: rows of the aiortc section. */
export function pythonPackageView(b: BenchResults, o: Options): View | undefined {
  const runs = b.pythonPackage;
  if (!runs || runs.length === 0) return undefined;
  return {
    serveCommand: node(plainServeArgs()),
    commands: lines(
      (['chunked', 'plain'] as const).map(
        (form) =>
          `${PYTHON} -m pointstream ${packageArgs('<url>', o.aiortcFrames, o.aiortcPoints, form).join(' ')}`,
      ),
    ),
    runner: PACKAGE_RUNNER,
    table: table(
      [
        'form',
        'frames acked / planned',
        'frames/s',
        'MB/s',
        'seconds',
        'Python CPU s',
        'server CPU s / 100 MB',
      ],
      runs.map((run, index) => {
        const form = index === 0 ? 'chunked' : 'plain';
        const r = run.result;
        if (!r) return [form, failedRow(run)];
        return [
          r.form,
          `${r.framesAcked} / ${r.framesPlanned}`,
          r.framesPerSec.toFixed(2),
          r.mbPerSec.toFixed(1),
          r.seconds.toFixed(1),
          pctOfCore(r.pythonCpuSec, r.seconds),
          r.serverCpuPer100MB.toFixed(2),
        ];
      }),
    ),
  };
}

// ---------------------------------------------------------------------------------------------

export function enduranceView(b: BenchResults, plots: PlotFiles): View | undefined {
  const out = b.endurance;
  if (!out) return undefined;
  const e = out.result;
  const minutes = e?.minutes ?? 0;
  const head = {
    minutes,
    commands: lines([node(serveArgs()), node(sendArgs('<url>', atRate(HZ, minutes * 60)))]),
    sampleSeconds: SAMPLE_EVERY_MS / 1000,
  };
  if (!e) return { ...head, failed: failedRow(out) };
  const pct = (x: number): string =>
    Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(1)}%` : 'n/a';
  return {
    ...head,
    failed: undefined,
    rateTable: rateTable([['endurance', { result: e.run }]]),
    memoryTable: table(
      [
        'samples',
        'baseline from',
        'RSS baseline -> final',
        'RSS growth',
        'RSS max after baseline',
        'heap used baseline -> final',
        'heap growth',
        'frames lost',
      ],
      [
        [
          `${e.samples.length} (${e.sampleErrors} failed)`,
          `${e.baselineSec.toFixed(0)} s`,
          `${mb(e.rssBaseline)} -> ${mb(e.rssFinal)}`,
          pct(e.rssGrowthPct),
          mb(e.rssMaxAfterBaseline),
          `${mb(e.heapBaseline)} -> ${mb(e.heapFinal)}`,
          pct(e.heapGrowthPct),
          String(e.run.framesMissing),
        ],
      ],
    ),
    memoryPlot: plots.get('endurance-memory'),
  };
}

// ---------------------------------------------------------------------------------------------

/** A precision asked, in mm as given (0.001 -> "1 mm"). */
export const mmLabel = (m: number): string => `${Number((m * 1000).toPrecision(6))} mm`;

/** Metres as mm with 3 significant digits; 0 stays 0. */
export const millimetres = (m: number): string =>
  m === 0 ? '0' : `${(m * 1000).toPrecision(3)} mm`;

function codecTable(rows: readonly EncodingBenchRow[]): string {
  return table(
    [
      'scene',
      'encoding',
      'precision asked',
      'bytes / point',
      'encode ms / 1M pts: median (fastest)',
      'decode ms / 1M pts: median (fastest)',
      'error bound',
      'measured max error',
      'points x runs',
    ],
    rows.map((r) => [
      r.scene,
      r.encoding,
      r.encoding === 'qrice' ? mmLabel(r.precision) : '–',
      r.bytesPerPoint.toFixed(3),
      `${r.encodeMs.toFixed(1)} (${r.encodeMinMs.toFixed(1)})`,
      `${r.decodeMs.toFixed(1)} (${r.decodeMinMs.toFixed(1)})`,
      millimetres(r.maxError),
      millimetres(r.measuredMaxError),
      `${int(r.points)} x ${r.runs}`,
    ]),
  );
}

/** The fields codec bench: one row per encoding, one per column. */
export function fieldsView(b: BenchResults): View | undefined {
  const f = b.fields;
  if (!f) return undefined;
  const rows = f.result ?? [];
  const first = rows[0];
  return {
    failure: f.result ? undefined : failedRow(f),
    about:
      first === undefined
        ? undefined
        : { points: int(first.points), runs: first.runs, precision: mmLabel(first.precision) },
    table:
      rows.length === 0
        ? undefined
        : table(
            [
              'encoding',
              'field max error asked',
              'bytes / point: total',
              'points',
              ...first!.fields.map((c) => c.name),
              'encode ms / 1M pts: median (fastest)',
              'decode ms / 1M pts: median (fastest)',
            ],
            rows.map((r) => [
              r.encoding,
              fieldPrecisionLabel(r.fieldPrecision),
              r.bytesPerPoint.toFixed(3),
              r.pointsBytesPerPoint.toFixed(3),
              ...r.fields.map((c) => c.bytesPerPoint.toFixed(3)),
              `${r.encodeMs.toFixed(1)} (${r.encodeMinMs.toFixed(1)})`,
              `${r.decodeMs.toFixed(1)} (${r.decodeMinMs.toFixed(1)})`,
            ]),
          ),
    columns:
      rows.length === 0
        ? undefined
        : table(
            [
              'encoding',
              'field max error asked',
              'field',
              'type',
              'codec',
              'error bound',
              'measured max error',
            ],
            rows.flatMap((r) =>
              r.fields.map((c) => [
                r.encoding,
                fieldPrecisionLabel(r.fieldPrecision),
                c.name,
                c.type,
                c.codec,
                formatFieldError(c.maxError),
                formatFieldError(c.measuredMaxError),
              ]),
            ),
          ),
  };
}

export function encodingsView(b: BenchResults, o: Options, plots: PlotFiles): View | undefined {
  const e = b.encodings;
  if (!e) return undefined;
  const codecFailures = e.codec.filter((c) => !c.result);
  const rows = e.runs.map((r) => {
    const s = r.result;
    const head = [
      r.source,
      r.encoding + (r.precision === undefined ? '' : ` (${mmLabel(r.precision)})`),
    ];
    if (!s) return [...head, failedRow(r)];
    return [
      ...head,
      `${s.framesAcked} / ${s.framesPlanned}`,
      s.achievedHz.toFixed(2),
      String(s.lateFrames),
      `${s.latencyMs.p50} / ${s.latencyMs.p99}`,
      s.bytesPerPoint.toFixed(3),
      millimetres(s.maxError),
      s.mbPerSec.toFixed(1),
      pctOfCore(s.senderCpuSec, s.seconds),
      pctOfCore(s.serverCpuSec, s.seconds),
      sustained(s) ? 'yes' : 'no',
      s.otherCpuSec.toFixed(1),
    ];
  });
  return {
    precisions: o.encodingPrecisions.map(mmLabel).join(', '),
    codecTable: codecTable(codecRows(e.codec)),
    codecFailures: codecFailures.map((c) => ({
      precision: mmLabel(c.precision),
      failure: failedRow(c),
    })),
    codecFailed: codecFailures.length > 0,
    bytesPlot: plots.get('encodings-bytes'),
    points: int(POINTS_PER_FRAME),
    hz: HZ,
    duration: o.encodingsDuration,
    serveCommand: node(serveArgs()),
    sendCommand: node(
      sendArgs('<url>', atRate(HZ, o.encodingsDuration), {
        source: 'lidar',
        encoding: 'qrice',
        precision: o.encodingPrecisions[0],
      }),
    ),
    table: table(
      [
        'scene',
        'encoding',
        'frames acked / planned',
        'achieved Hz',
        'late',
        'latency p50 / p99 (ms)',
        'bytes / point',
        'max error',
        'MB/s on the wire',
        'sender CPU (% core)',
        'server CPU (% core)',
        'sustained',
        'other CPU s',
      ],
      rows,
    ),
  };
}

// ---------------------------------------------------------------------------------------------

function browserRows(rows: readonly BrowserBenchRow[]): string[][] {
  return rows.map((r) => [
    `${r.encoding} (${r.source})`,
    r.bytesPerPoint.toFixed(2),
    millimetres(r.maxError),
    r.encoding === 'raw' ? '–' : formatSpread(r.encodeMs, 0),
    int(r.points),
    r.targetHz > 0 ? `${r.targetHz} Hz x ${r.framesPlanned}` : `max x ${r.framesPlanned}`,
    formatSpread(r.achievedHz, 2),
    formatSpread(r.mbPerSec, 1),
    `${formatSpread(r.latencyP50Ms, 0)} / ${formatSpread(r.latencyP99Ms, 0)}`,
    String(r.late),
    String(r.failedFrames),
    r.targetHz > 0 ? (r.sustained ? 'yes' : 'no') : '–',
    r.errors.length ? `${r.errors.length}: ${r.errors[0]}` : '0',
  ]);
}

/** Per encoding and scene, the largest points per frame sustained at the target rate. */
export function browserLargestSustained(
  rows: readonly BrowserBenchRow[],
): { variant: string; points: number | undefined; row: BrowserBenchRow | undefined }[] {
  const variants = [...new Set(rows.map((r) => `${r.encoding} (${r.source})`))];
  return variants.map((variant) => {
    const rated = rows.filter((r) => `${r.encoding} (${r.source})` === variant && r.targetHz > 0);
    const held = rated.filter((r) => r.sustained).sort((a, c) => c.points - a.points)[0];
    return { variant, points: held?.points, row: held };
  });
}

export function browserView(b: BenchResults, o: Options): View | undefined {
  const out = b.browser;
  if (!out) return undefined;
  const head = {
    hz: HZ,
    seconds: o.browserSeconds,
    points: int(POINTS_PER_FRAME),
    repeats: o.browserRepeats,
    interleaved: o.browserRepeats > 1,
  };
  const rows = out.result;
  if (!rows) return { ...head, failed: failedRow(out) };
  return {
    ...head,
    failed: undefined,
    table: table(
      [
        'encoding (scene)',
        'B / point',
        'max error',
        'encode ms / frame (worker)',
        'points / frame',
        'target',
        'frames/s',
        'MB/s',
        'latency p50 / p99 (ms)',
        'late',
        'not acked',
        'sustained',
        'errors',
      ],
      browserRows(rows),
    ),
    largest: browserLargestSustained(rows).map(({ variant, points, row }) => ({
      variant,
      points: points !== undefined && row ? int(points) : undefined,
      mbPerSec: row ? formatSpread(row.mbPerSec, 1) : undefined,
    })),
  };
}
