/** The markdown section of each scenario: exact commands, method notes, tables, plot links. */
import { CPU_WRAPPER, PYTHON, aiortcArgs } from './aiortc.js';
import { clientSendArgs, clientsServeArgs } from './clients.js';
import { SAMPLE_EVERY_MS } from './endurance.js';
import type { BrowserBenchRow } from './browser.js';
import type { EncodingBenchRow } from './encodings.js';
import type { Options } from './options.js';
import {
  HZ,
  MTUS,
  LOOPBACK_MTU,
  ceilingRuns,
  chunkRuns,
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
const code = (lines: readonly string[]): string[] => ['```sh', ...lines, '```', ''];
const plot = (plots: PlotFiles, name: string, alt: string): string[] => {
  const file = plots.get(name);
  return file ? [`![${alt}](${file})`, '', `Plot: [${file}](${file})`, ''] : [];
};
const failedRow = (o: Outcome<unknown>): string =>
  o.skipped ? `skipped: ${o.skipped}` : `FAILED: ${(o.error ?? 'unknown error').split('\n')[0]}`;

// ---------------------------------------------------------------------------------------------

export function ceilingsSection(b: BenchResults, o: Options): string[] {
  const runs = b.ceilings;
  if (!runs) return [];
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
  return [
    '## Ceilings: bare node-datachannel vs `send --rate 0`',
    '',
    `Each bare run moves frames of ${int(FRAME_BYTES)} bytes (1,000,000 points as .npy) in ` +
      `262,144-byte messages, ${bareCeilingFrames(4096, o.ceilingSeconds)} at MTU 4096 and ` +
      `${bareCeilingFrames(1280, o.ceilingSeconds)} at 1280 (about as long as a pointstream run, ` +
      `so both meet the same share of a noisy host's stolen CPU); each pointstream ` +
      `run is the README's \`send --rate 0 --duration ${o.ceilingSeconds}\` (random points, a different set ` +
      `every frame, no --rtc-bind, and no --mtu at ${LOOPBACK_MTU}: send picks the loopback route ` +
      `itself). ${o.repeats} repeat(s); within a repeat the runs go back to back in this order:`,
    '',
    ...code(commands),
    '- **bare**: node-datachannel alone, no framing; the receiver advertises max-message-size ' +
      '64 MiB + 1024 like the pointstream server. MB/s from the first send to the last byte ' +
      'received; sender CPU over that window, receiver CPU from channel open to the last byte.',
    '- **pointstream**: a fresh `serve` child per run (`--mtu 1280` on both sides for the MTU ' +
      '1280 row only). MB/s and sender CPU ' +
      "as `send --json` reports them (from connected to the session's end, including the last " +
      'receipt; sender CPU also covers connecting and generating the random points). Receiver ' +
      "CPU: difference of the server's `/stats` `cpuSeconds` read just before and just after " +
      '`send` (connection set-up and teardown included).',
    '',
    table(
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
    '',
    table(
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
    '',
    '### Every run',
    '',
    table(
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
    '',
  ];
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

export function seedSection(b: BenchResults, o: Options, plots: PlotFiles): string[] {
  if (!b.seed) return [];
  const lat = b.seed.result?.frameLatenciesMs ?? [];
  const p = (q: number): string => percentile(lat, q).toFixed(1);
  return [
    `## Seed workload (1,000,000 points at ${HZ} Hz for ${o.seedDuration} s, default MTU)`,
    '',
    ...code([
      `${node(serveArgs({ logLevel: 'info' }))}   # one JSON log line per verified frame`,
      node(sendArgs('<url>', atRate(HZ, o.seedDuration))),
    ]),
    'Latency in the table is what `send` measures: first chunk sent -> receipt back. The ' +
      "server logs each frame's `latencyMs` = its `receivedAt` - the sender's `captureTime` " +
      '(same machine, same clock): the client stamps `captureTime` once the in-flight window ' +
      "admits the frame, before computing its CRC-32 and before waiting for the channel's send " +
      'buffer to drain, so this one includes those and lacks the receipt trip back.',
    '',
    rateTable([['seed', b.seed]]),
    '',
    ...(lat.length
      ? [
          `Server-side per-frame latency (${lat.length} frames): p50 ${p(50)} ms, p90 ${p(90)} ms, ` +
            `p99 ${p(99)} ms, max ${Math.max(...lat).toFixed(1)} ms.`,
          '',
        ]
      : ['No per-frame latencies were collected from the server log.', '']),
    ...plot(plots, 'seed-latency', 'CDF of per-frame latency, seed workload'),
  ];
}

export function tlsSection(b: BenchResults, o: Options): string[] {
  if (!b.tls) return [];
  return [
    '## HTTPS signaling (seed workload)',
    '',
    'The seed workload again, with signaling over HTTPS (a throwaway self-signed EC certificate ' +
      'for 127.0.0.1; `send --ca` trusts it). TLS covers only the offer/answer; frames travel ' +
      'over the DTLS DataChannel in both cases, so the numbers should match the plain run.',
    '',
    ...code([
      `openssl ${OPENSSL_ARGS.join(' ')}`,
      node(serveArgs({ extra: tlsServeExtra('<dir>') })),
      node(
        sendArgs('<https-url>', atRate(HZ, o.seedDuration), { extra: ['--ca', '<dir>/cert.pem'] }),
      ),
    ]),
    rateTable([
      ['plain HTTP (seed, above)', b.seed],
      ['HTTPS', b.tls],
    ]),
    '',
  ];
}

// ---------------------------------------------------------------------------------------------

export function chunksSection(b: BenchResults, o: Options, plots: PlotFiles): string[] {
  const records = b.chunks;
  if (!records) return [];
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
  return [
    '## Throughput against chunk size (`--chunk-bytes N`, bare and pointstream)',
    '',
    `${o.frames} frames of 1,000,000 points per run, MTU ${LOOPBACK_MTU} (pointstream's loopback ` +
      `default), a fresh server per run; ${o.repeats} repeat(s), within a repeat sizes in this ` +
      'order, bare then pointstream for each. The server advertises max-message-size 64 MiB + ' +
      '1024 and the client caps its chunk at what the channel reports; "chunk used" is what ' +
      "`send --json` reports. The bare ceiling's peers both advertise 64 MiB + 1024.",
    '',
    ...code([
      ...o.chunkSizes.flatMap((size) => [
        node(bareArgs(LOOPBACK_MTU, o.frames, size)),
        node(serveArgs()),
        node(sendArgs('<url>', fullSpeed(o.frames), { chunkBytes: size })),
      ]),
    ]),
    ...(asked.length
      ? [
          `**The client did not use the chunk size it was asked for:** asked ` +
            `${asked.map(int).join(', ')} bytes, used ${capped.map(int).join(', ')}. Its ` +
            "channel reports that maximum although the server's answer advertises 64 MiB + " +
            '1024; so those rows measure the smaller chunk, not the size in the first column.',
          '',
        ]
      : []),
    table(
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
    '',
    ...plot(plots, 'chunks', 'throughput against chunk size'),
  ];
}

// ---------------------------------------------------------------------------------------------

export function scaleSection(b: BenchResults, o: Options, plots: PlotFiles): string[] {
  const records = b.scale;
  if (!records) return [];
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
  return [
    `## Frame size: points per frame at ${HZ} Hz for ${o.scaleDuration} s`,
    '',
    ...code([
      node(serveArgs()),
      ...o.scalePoints.map((p) =>
        node(sendArgs('<url>', atRate(HZ, o.scaleDuration), { points: p })),
      ),
    ]),
    `A fresh server per size. **Sustained** = every planned frame acknowledged, none lost or ` +
      `rejected, none started more than half a period late, achieved rate >= 99% of ${HZ} Hz. ` +
      '`send` never drops a frame for being late: a size the link cannot carry shows up as late ' +
      "frames, a lower achieved rate and a longer run. CPU % is of the run's wall time.",
    '',
    table(
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
    '',
    ...scaleVerdict(records.flatMap((r) => (r.result ? [r.result] : []))),
    ...plot(plots, 'scale-throughput', 'throughput against points per frame'),
    ...plot(plots, 'scale-latency', 'latency against points per frame'),
  ];
}

function scaleVerdict(runs: readonly RateResult[]): string[] {
  if (runs.length === 0) return [];
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
  return [
    held
      ? `**Largest frame sustained at ${HZ} Hz with nothing lost: ${int(held.points)} points ` +
        `(${mb(bytes(held))} per frame, ${((HZ * bytes(held)) / 1e6).toFixed(0)} MB/s), ` +
        `latency p99 ${held.latencyMs.p99} ms.**` +
        (firstFail
          ? ` The next size, ${int(firstFail.points)} points (${((HZ * bytes(firstFail)) / 1e6).toFixed(0)} MB/s offered), ` +
            `reached ${firstFail.achievedHz.toFixed(2)} Hz / ${firstFail.mbPerSec.toFixed(0)} MB/s with ` +
            `${firstFail.lateFrames} late and ${firstFail.framesMissing} missing frames.`
          : '')
      : `**No size was sustained at ${HZ} Hz.**`,
    '',
    `Cost against frame size (log-log slope over the sizes; 1 = proportional to bytes): server ` +
      `CPU per frame ${slope(serverPerFrame)}, sender CPU per frame ${slope(senderPerFrame)}, ` +
      `latency p50 ${slope((r) => r.latencyMs.p50)}; server CPU per 100 MB ` +
      `${formatSpread(per100, 2)} s across sizes; server peak RSS ` +
      `${runs.map((r) => mb(r.serverPeakRssBytes)).join(' -> ')}.`,
    '',
  ];
}

// ---------------------------------------------------------------------------------------------

export function clientsSection(
  b: BenchResults,
  o: Options,
  plots: PlotFiles,
  cores: number,
): string[] {
  const records = b.clients;
  if (!records) return [];
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
  return [
    `## Concurrent clients: N \`send\` processes, one server (${int(o.clientPoints)} points at ${HZ} Hz for ${o.clientsDuration} s each)`,
    '',
    ...code([node(clientsServeArgs()), `# N at once:`, node(clientSendArgs('<url>', shape))]),
    `A fresh server per N. All N senders and the server share the machine's ` +
      `${cores} cores: from 2 clients on, the senders' own CPU competes with the server's, which ` +
      'is part of the result, not noise. Aggregate MB/s: sum over clients of bytes sent / that ' +
      "client's streaming time (a little above the offered rate: n frames at period T are sent " +
      'in (n - 1) T). Latency cells: median (min–max) over the clients of each ' +
      "client's p50 / p99. Server CPU per 100 MB from the `/stats` deltas (`cpuSeconds`, " +
      '`totals.bytesReceived`) around the whole group; % of a core over the wall time of the group.',
    '',
    table(
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
    '',
    ...(bareReceiver && bareReceiver.n
      ? [
          `For comparison, the bare receiver in the ceilings (MTU 4096, --rate 0): ` +
            `${formatSpread(bareReceiver, 2)} CPU s / 100 MB.`,
          '',
        ]
      : []),
    ...plot(plots, 'clients', 'aggregate throughput against clients'),
  ];
}

// ---------------------------------------------------------------------------------------------

export function aiortcSection(b: BenchResults, o: Options): string[] {
  const out = b.aiortc;
  if (!out) return [];
  const head = [
    '## aiortc (Python) client, 1,000,000-point frames as single .npy messages',
    '',
    ...code([
      node(serveArgs()),
      `${PYTHON} -c "$WRAPPER" ${aiortcArgs('<url>', o.aiortcFrames, o.aiortcPoints, '<tmpdir>').join(' ')}`,
    ]),
    '`$WRAPPER` runs the fixture as `__main__` and prints its own CPU time at exit:',
    '',
    '```python',
    CPU_WRAPPER,
    '```',
    '',
  ];
  if (out.skipped) return [...head, `Skipped: ${out.skipped}.`, ''];
  const r = out.result;
  return [
    ...head,
    'The fixture `test/fixtures/clients/aiortc_client.py` is used unchanged. It sends one frame, waits for its ' +
      'receipt, saves the frame to disk, then the next: one frame in flight. Frames/s from the ' +
      "first to the last receipt's `receivedAt` (steady state, no start-up); wall time covers " +
      'Python start-up and connecting too.',
    '',
    r
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
    '',
  ];
}

// ---------------------------------------------------------------------------------------------

export function enduranceSection(b: BenchResults, plots: PlotFiles): string[] {
  const out = b.endurance;
  if (!out) return [];
  const e = out.result;
  const minutes = e?.minutes ?? 0;
  const head = [
    `## Endurance: seed workload for ${minutes} min`,
    '',
    ...code([node(serveArgs()), node(sendArgs('<url>', atRate(HZ, minutes * 60)))]),
    `The server's \`/stats\` \`memory\` is read every ${SAMPLE_EVERY_MS / 1000} s while \`send\` runs. ` +
      'RSS growth compares the mean of the samples in the 30 s from the first minute on with the ' +
      'mean of the last 30 s (a run shorter than 2 min starts its baseline at half its length, ' +
      'and says little).',
    '',
  ];
  if (!e) return [...head, failedRow(out), ''];
  const pct = (x: number): string =>
    Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(1)}%` : 'n/a';
  return [
    ...head,
    rateTable([['endurance', { result: e.run }]]),
    '',
    table(
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
    '',
    ...plot(plots, 'endurance-memory', 'server memory over time'),
  ];
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

export function encodingsSection(b: BenchResults, o: Options, plots: PlotFiles): string[] {
  const e = b.encodings;
  if (!e) return [];
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
  return [
    '## Point encodings',
    '',
    '### Codecs alone (`bench/lib/encodings.ts`)',
    '',
    'One frame of each scene (the synthetic spinning-LiDAR scan, `--source lidar`, and random ' +
      'points in a 100 m cube) encoded and decoded in this process on one core, wall time per ' +
      `1M points: the median and the fastest of N runs after a warm-up. Precisions asked: ` +
      `${o.encodingPrecisions.map(mmLabel).join(', ')}; at the second only the rows it ` +
      'changes are listed (raw and q16 take no precision). Bytes per point are payload bytes (raw: ' +
      '12 exactly, without the .npy header).' +
      (o.quick ? ' **--quick: 100,000 points, 3 runs.**' : ''),
    '',
    codecTable(codecRows(e.codec)),
    '',
    ...codecFailures.map((c) => `Codec bench at ${mmLabel(c.precision)}: ${failedRow(c)}`),
    ...(codecFailures.length ? [''] : []),
    ...plot(plots, 'encodings-bytes', 'bytes per point by encoding and scene'),
    `### End to end: ${int(POINTS_PER_FRAME)} points at ${HZ} Hz for ${o.encodingsDuration} s, per encoding and scene`,
    '',
    ...code([
      node(serveArgs()),
      `# for each --source lidar|random and --encoding raw|q16|qrice (--precision for qrice only):`,
      node(
        sendArgs('<url>', atRate(HZ, o.encodingsDuration), {
          source: 'lidar',
          encoding: 'qrice',
          precision: o.encodingPrecisions[0],
        }),
      ),
    ]),
    'A fresh server per run; it learns the encoding from the frame metadata and decodes every ' +
      'frame to float32 (its CPU includes decoding). The sender generates each frame (the LiDAR ' +
      'scene costs more to generate than random points) and encodes it: its CPU includes both. ' +
      'Bytes / point and max error as `send --json` reports them; MB/s is encoded bytes on the ' +
      'wire. **Sustained**: every frame acknowledged, none late, at least 99% of the rate. A ' +
      'run with frames not acknowledged is listed under Failures too.',
    '',
    table(
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
    '',
  ];
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

export function browserSection(b: BenchResults, o: Options): string[] {
  const out = b.browser;
  if (!out) return [];
  const head = [
    '## Browser sender (headless Chromium, `/send` page)',
    '',
    "`bench/lib/browser.ts`: an in-process pointstream server (127.0.0.1, port 0) and Debian's " +
      'Chromium (playwright-core, headless, software rendering) running the `/send` page, which ' +
      'generates the points in the page (LiDAR scene or random), encodes them in a Web Worker ' +
      `and streams them with the same wire format as \`send\`. Each case at ${HZ} Hz for ` +
      `${o.browserSeconds} s, then ${int(POINTS_PER_FRAME)} points as fast as it goes; ` +
      `${o.browserRepeats} repeat(s)${o.browserRepeats > 1 ? ', interleaved (every case once, then again)' : ''}. ` +
      'Cells: median (min–max) over the repeats; late and not-acked frames summed. Sustained: ' +
      'every frame acknowledged, none late, at least 95% of the rate (median). The server shares the ' +
      "bench's process, and Chromium (several processes) shares the 2 cores with it.",
    '',
  ];
  const rows = out.result;
  if (!rows) return [...head, failedRow(out), ''];
  const largest = browserLargestSustained(rows);
  return [
    ...head,
    table(
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
    '',
    ...largest.map(
      ({ variant, points, row }) =>
        `- ${variant}: largest frame sustained at ${HZ} Hz: ` +
        (points !== undefined && row
          ? `**${int(points)} points** (${formatSpread(row.mbPerSec, 1)} MB/s)`
          : '**none of the sizes tried**'),
    ),
    '',
  ];
}
