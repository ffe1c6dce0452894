/**
 * `npm run bench`: pointstream on loopback against its ceiling and under load. Scenarios:
 *
 *   ceilings   bare node-datachannel vs `send --rate 0 --duration 10`, MTU 1280 and 4096
 *              (send's own choice on loopback), interleaved repeats
 *   seed       1M points at 4 Hz for 60 s; per-frame latencies from the server's log (CDF plot)
 *   tls        the seed workload with HTTPS signaling
 *   chunks     `send --rate 0` and bare against chunk size 64 KiB ... 1 MiB, interleaved repeats
 *   scale      100k ... 4M points per frame at 4 Hz for 20 s
 *   clients    1, 2, 4, 8 concurrent `send` processes against one server
 *   cluster    nats-server + 1, 2, 3 `serve --bus` nodes + a `front`, one `send --rate 0` per
 *              node (aggregate MB/s, CPU per role); then 3 nodes and a 4 Hz client whose node is
 *              SIGKILLed 10 times (failover time per kill)
 *   aiortc     the Python aiortc fixture sending 1M-point .npy frames, then the Python package
 *              (`python3 -m pointstream send`, chunked and plain) (skipped without aiortc)
 *   encodings  codec table (bytes/point, encode/decode ms per 1M points; LiDAR scene at 1 and
 *              2 mm, random points), then the seed workload for each encoding on both scenes
 *   fields     codec table of the LiDAR scene with intensity, ring and time: bytes/point (points
 *              and each field), encode/decode ms per 1M points, error per field (in process)
 *   browser    headless Chromium's /send page: points per frame sustained at 4 Hz, per encoding
 *   endurance  the seed workload for N minutes, server memory sampled (only when asked for)
 *
 *   npm run bench -- [--scenarios a,b,...] [--quick] [--repeats N] [--frames N]
 *       [--seed-duration S] [--scale-duration S] [--clients-duration S] [--endurance-minutes N]
 *       [--cluster-duration S] [--cluster-kills N] [--aiortc-frames N] [--encodings-duration S] [--browser-repeats N] [--browser-seconds S]
 *       [--quiet-wait S]
 *
 * --quiet-wait S (default 30, --quick 5): before each run, wait up to S s for an idle machine.
 * Writes bench/results/<YYYY-MM-DD>.md and <YYYY-MM-DD>-<plot>.svg (`--quick`: <date>-quick...),
 * rewritten after every scenario, and prints a summary. A failed run is reported, not retried;
 * the script then exits with code 1.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PYTHON, aiortcUnavailable, runAiortc } from './lib/aiortc.js';
import { runPythonPackage } from './lib/python-package.js';
import type { BrowserBenchRow } from './lib/browser.js';
import { runClients } from './lib/clients.js';
import { ingestProblems, runClusterFailover, runClusterIngest } from './lib/cluster.js';
import type { FailoverResult } from './lib/cluster.js';
import { fieldPrecisionLabel, runEncodingBench, runFieldsBench } from './lib/encodings.js';
import { runEndurance } from './lib/endurance.js';
import { parseOptions } from './lib/options.js';
import type { Options, ScenarioName } from './lib/options.js';
import { buildPlots } from './lib/plots.js';
import { ROOT } from './lib/proc.js';
import { describeMachine, renderMarkdown, renderSummary } from './lib/report.js';
import type { BenchReport } from './lib/report.js';
import { HZ, LOOPBACK_MTU, MTUS, PRECISION_ENCODINGS, sustained } from './lib/results.js';
import type { BenchResults, ClusterResults, EncodingsResults, Outcome } from './lib/results.js';
import {
  POINTS_PER_FRAME,
  bareCeilingFrames,
  runBare,
  runPointstream,
  runRated,
} from './lib/scenarios.js';
import type { PointScene, RateResult } from './lib/scenarios.js';
import { waitForQuiet } from './lib/system.js';
import { CHROMIUM_PATH, haveChromium } from '../test/browser-helpers.js';
import { natsUnavailable } from '../test/support/nats.js';
import { runTls } from './lib/tls.js';

const errorMessage = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

/** Local date of this machine as YYYY-MM-DD. */
function localDate(d: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Before each measured run: wait for a quiet machine (`waitMs` is set from --quiet-wait). */
const gate = { waitMs: 30_000, busyStarts: 0 };

async function attempt<T>(run: () => Promise<T>): Promise<Outcome<T>> {
  if (gate.waitMs > 0 && !(await waitForQuiet(gate.waitMs))) {
    gate.busyStarts++;
    console.log(`  (machine still busy after ${gate.waitMs / 1000} s; starting anyway)`);
  }
  try {
    return { result: await run() };
  } catch (error) {
    return { error: errorMessage(error) };
  }
}

/** A rated run whose `send` did not get every frame through keeps its result, with an error. */
async function attemptRated(run: () => Promise<RateResult>): Promise<Outcome<RateResult>> {
  const outcome = await attempt(run);
  const r = outcome.result;
  return r && !r.ok ? { result: r, error: r.reason } : outcome;
}

const rateLine = (r: RateResult): string =>
  `${r.framesAcked}/${r.framesPlanned} frames, ${r.achievedHz} Hz, ${r.mbPerSec} MB/s, ` +
  `latency p50/p99 ${r.latencyMs.p50}/${r.latencyMs.p99} ms, other CPU ${r.otherCpuSec.toFixed(1)} s`;

/** Runs one scenario into `results`; returns failure messages. */
type Runner = (o: Options, results: BenchResults) => Promise<string[]>;

const RUNNERS: Record<ScenarioName, Runner> = {
  async ceilings(o, results) {
    const runs = (results.ceilings = [] as NonNullable<BenchResults['ceilings']>);
    const failures: string[] = [];
    const total = o.repeats * MTUS.length * 2;
    for (let repeat = 1; repeat <= o.repeats; repeat++) {
      for (const mtu of MTUS) {
        for (const scenario of ['bare', 'pointstream'] as const) {
          const label = `[${runs.length + 1}/${total}] ${scenario} mtu ${mtu}`;
          const outcome = await attempt(() =>
            scenario === 'bare'
              ? runBare(mtu, bareCeilingFrames(mtu, o.ceilingSeconds))
              : // The loopback MTU is what send picks by itself: measure it without --mtu.
                runPointstream(mtu === LOOPBACK_MTU ? undefined : mtu, {
                  seconds: o.ceilingSeconds,
                }),
          );
          runs.push({ ...outcome, repeat, scenario, mtu });
          const r = outcome.result;
          console.log(
            r
              ? `${label}: ${r.mbPerSec.toFixed(1)} MB/s, CPU s/100MB sender ` +
                  `${r.senderCpuPer100MB.toFixed(2)} receiver ${r.receiverCpuPer100MB.toFixed(2)}, ` +
                  `UDP drops ${r.udpDrops ?? 'n/a'}, other CPU ${r.otherCpuSec.toFixed(1)} s`
              : `${label}: FAILED`,
          );
          if (outcome.error)
            failures.push(`ceilings repeat ${repeat} ${scenario} mtu ${mtu}: ${outcome.error}`);
        }
      }
    }
    return failures;
  },

  async seed(o, results) {
    console.log(`seed: ${o.seedDuration} s at ${HZ} Hz ...`);
    const seed = await attemptRated(() =>
      runRated('seed', {
        points: POINTS_PER_FRAME,
        seconds: o.seedDuration,
        serve: { logLevel: 'info' },
        frameLog: true,
      }),
    );
    results.seed = seed;
    if (seed.result) console.log(`seed: ${rateLine(seed.result)}`);
    return seed.error ? [`seed: ${seed.error}`] : [];
  },

  async tls(o, results) {
    console.log(`tls: seed workload with HTTPS signaling, ${o.seedDuration} s ...`);
    const tls = await attemptRated(() => runTls(o.seedDuration));
    results.tls = tls;
    if (tls.result) console.log(`tls: ${rateLine(tls.result)}`);
    return tls.error ? [`tls: ${tls.error}`] : [];
  },

  async chunks(o, results) {
    const records = (results.chunks = [] as NonNullable<BenchResults['chunks']>);
    const failures: string[] = [];
    for (let repeat = 1; repeat <= o.repeats; repeat++) {
      for (const chunkBytes of o.chunkSizes) {
        for (const scenario of ['bare', 'pointstream'] as const) {
          const label = `chunks repeat ${repeat} ${scenario} ${chunkBytes}`;
          const outcome = await attempt(() =>
            scenario === 'bare'
              ? runBare(LOOPBACK_MTU, o.frames, chunkBytes)
              : runPointstream(undefined, { frames: o.frames }, chunkBytes),
          );
          records.push({ ...outcome, repeat, scenario, chunkBytes });
          const r = outcome.result;
          console.log(
            r
              ? `${label}: ${r.mbPerSec.toFixed(1)} MB/s (chunk used ${r.chunkBytes}), receiver ` +
                  `${r.receiverCpuPer100MB.toFixed(2)} CPU s/100MB, other CPU ${r.otherCpuSec.toFixed(1)} s`
              : `${label}: FAILED`,
          );
          if (outcome.error) failures.push(`${label}: ${outcome.error}`);
        }
      }
    }
    return failures;
  },

  async scale(o, results) {
    const records = (results.scale = [] as NonNullable<BenchResults['scale']>);
    const failures: string[] = [];
    for (const points of o.scalePoints) {
      console.log(`scale: ${points} points at ${HZ} Hz for ${o.scaleDuration} s ...`);
      // Not every frame getting through is a finding here, not a failure of the run.
      const outcome = await attempt(() =>
        runRated(`scale ${points}`, { points, seconds: o.scaleDuration }),
      );
      records.push({ ...outcome, points });
      const r = outcome.result;
      console.log(
        r
          ? `scale ${points}: ${rateLine(r)}, ${sustained(r) ? 'sustained' : 'NOT sustained'}`
          : `scale ${points}: FAILED`,
      );
      if (outcome.error) failures.push(`scale ${points}: ${outcome.error}`);
    }
    return failures;
  },

  async clients(o, results) {
    const records = (results.clients = [] as NonNullable<BenchResults['clients']>);
    const failures: string[] = [];
    for (const clients of o.clientCounts) {
      console.log(
        `clients: ${clients} x ${o.clientPoints} points at ${HZ} Hz for ${o.clientsDuration} s ...`,
      );
      const outcome = await attempt(() =>
        runClients({ clients, points: o.clientPoints, seconds: o.clientsDuration, hz: HZ }),
      );
      records.push({ ...outcome, clients });
      const r = outcome.result;
      console.log(
        r
          ? `clients ${clients}: ${r.aggregateMbPerSec.toFixed(1)} of ${r.offeredMbPerSec.toFixed(1)} MB/s, ` +
              `${r.framesAcked}/${r.framesPlanned} frames, server ${r.serverCpuPer100MB.toFixed(2)} ` +
              `CPU s/100MB, other CPU ${r.otherCpuSec.toFixed(1)} s`
          : `clients ${clients}: FAILED`,
      );
      if (outcome.error) failures.push(`clients ${clients}: ${outcome.error}`);
      for (const e of r?.errors ?? []) failures.push(`clients ${clients}: ${e}`);
    }
    return failures;
  },

  async cluster(o, results) {
    const missing = natsUnavailable();
    if (missing) {
      console.log(`cluster: skipped: ${missing}`);
      results.cluster = { skipped: missing, ingest: [] };
      return [];
    }
    const cluster: ClusterResults = (results.cluster = { ingest: [] });
    const failures: string[] = [];
    for (const nodes of o.clusterNodeCounts) {
      const label = `cluster ${nodes} node${nodes === 1 ? '' : 's'}`;
      console.log(
        `${label}: ${nodes} x send --points ${o.clusterPoints} --rate 0 --duration ` +
          `${o.clusterDuration} through the front ...`,
      );
      const outcome = await attempt(() =>
        runClusterIngest({ nodes, points: o.clusterPoints, seconds: o.clusterDuration }),
      );
      cluster.ingest.push({ ...outcome, nodes });
      const r = outcome.result;
      console.log(
        r
          ? `${label}: ${r.aggregateMbPerSec.toFixed(1)} MB/s acknowledged, ` +
              `${r.framesAcked}/${r.framesPlanned} frames, placement ${r.placement.join(' ')}, ` +
              `CPU s nodes ${Object.values(r.nodeCpuSec)
                .map((c) => c.toFixed(1))
                .join('+')} nats ${r.natsCpuSec.toFixed(1)} front ${r.frontCpuSec.toFixed(2)} ` +
              `clients ${r.clientCpuSec.toFixed(1)}, machine busy ${r.busySec.toFixed(1)} s ` +
              `of ${r.wallSeconds.toFixed(1)} s`
          : `${label}: FAILED`,
      );
      if (outcome.error) failures.push(`${label}: ${outcome.error}`);
      for (const p of r ? ingestProblems(r) : []) failures.push(`${label}: ${p}`);
    }
    console.log(
      `cluster failover: ${o.clusterKills} SIGKILLs of the node carrying a 4 Hz client ...`,
    );
    // A run cut short by a kill it did not recover from keeps its kills so far, with the error.
    const run = await attempt(() =>
      runClusterFailover({ kills: o.clusterKills, points: o.clusterPoints, hz: HZ }),
    );
    const failover: Outcome<FailoverResult> = run.result
      ? { result: run.result.result, ...(run.result.error ? { error: run.result.error } : {}) }
      : { error: run.error ?? 'no result' };
    cluster.failover = failover;
    for (const k of failover.result?.kills ?? []) {
      console.log(
        `cluster kill ${k.kill}: ${k.node} -> ${k.newNode ?? '?'} in ${k.recoveryMs ?? '?'} ms ` +
          `(on the bus ${k.busMs ?? '?'} ms), lost ${k.lost}, skipped ${k.skipped}, ` +
          `bus gap ${k.busGap ?? '?'}, attempts ${k.attempts}`,
      );
    }
    if (failover.error) failures.push(`cluster failover: ${failover.error}`);
    return failures;
  },

  async aiortc(o, results) {
    const missing = aiortcUnavailable();
    if (missing) {
      console.log(`aiortc: skipped: ${missing}`);
      results.aiortc = { skipped: missing };
      return [];
    }
    console.log(`aiortc: ${o.aiortcFrames} frames of ${o.aiortcPoints} points ...`);
    const outcome = await attempt(() => runAiortc(o.aiortcFrames, o.aiortcPoints));
    results.aiortc = outcome;
    const r = outcome.result;
    if (r) {
      console.log(
        `aiortc: ${r.framesAcked}/${r.framesPlanned} frames, ${r.framesPerSec.toFixed(2)} frames/s, ` +
          `${r.mbPerSec.toFixed(1)} MB/s, wall ${r.wallSeconds.toFixed(1)} s`,
      );
    }
    const failures = outcome.error ? [`aiortc: ${outcome.error}`] : [];
    results.pythonPackage = [];
    for (const form of ['chunked', 'plain'] as const) {
      console.log(
        `python package (${form}): ${o.aiortcFrames} frames of ${o.aiortcPoints} points ...`,
      );
      const run = await attempt(() => runPythonPackage(o.aiortcFrames, o.aiortcPoints, form));
      results.pythonPackage.push(run);
      if (run.result)
        console.log(
          `python package (${form}): ${run.result.framesAcked}/${run.result.framesPlanned} frames, ` +
            `${run.result.framesPerSec.toFixed(2)} frames/s, ${run.result.mbPerSec.toFixed(1)} MB/s`,
        );
      if (run.error) failures.push(`python package (${form}): ${run.error}`);
    }
    return failures;
  },

  async encodings(o, results) {
    const encodings: EncodingsResults = (results.encodings = { codec: [], runs: [] });
    const failures: string[] = [];
    for (const precision of o.encodingPrecisions) {
      console.log(`encodings: codec bench at ${precision * 1000} mm ...`);
      const outcome = await attempt(() => runEncodingBench({ quick: o.quick, precision }));
      encodings.codec.push({ ...outcome, precision });
      for (const r of outcome.result ?? []) {
        console.log(
          `encodings codec ${r.scene} ${r.encoding} @${precision * 1000} mm: ` +
            `${r.bytesPerPoint.toFixed(3)} B/pt, encode ${r.encodeMs.toFixed(1)} ` +
            `(min ${r.encodeMinMs.toFixed(1)}) ms, decode ${r.decodeMs.toFixed(1)} ` +
            `(min ${r.decodeMinMs.toFixed(1)}) ms per 1M points`,
        );
      }
      if (outcome.error) failures.push(`encodings codec ${precision * 1000} mm: ${outcome.error}`);
    }
    const precision = o.encodingPrecisions[0];
    for (const source of ['lidar', 'random'] as const satisfies readonly PointScene[]) {
      for (const encoding of ENCODINGS) {
        const label = `encodings ${encoding} ${source}`;
        const p = PRECISION_ENCODINGS.has(encoding) ? precision : undefined;
        console.log(`${label}: 1M points at ${HZ} Hz for ${o.encodingsDuration} s ...`);
        const outcome = await attemptRated(() =>
          runRated(label, {
            points: POINTS_PER_FRAME,
            seconds: o.encodingsDuration,
            encoding,
            source,
            ...(p === undefined ? {} : { precision: p }),
          }),
        );
        encodings.runs.push({ ...outcome, encoding, source, precision: p });
        const r = outcome.result;
        console.log(
          r
            ? `${label}: ${rateLine(r)}, ${r.bytesPerPoint} B/pt, sender/server CPU ` +
                `${r.senderCpuSec.toFixed(1)}/${r.serverCpuSec.toFixed(1)} s, ` +
                `${sustained(r) ? 'sustained' : 'NOT sustained'}`
            : `${label}: FAILED`,
        );
        if (outcome.error) failures.push(`${label}: ${outcome.error}`);
      }
    }
    return failures;
  },

  async fields(o, results) {
    const precision = o.encodingPrecisions[0];
    console.log('fields: codec bench, LiDAR scene with intensity, ring and time ...');
    const outcome = await attempt(() =>
      runFieldsBench({ quick: o.quick, ...(precision === undefined ? {} : { precision }) }),
    );
    results.fields = outcome;
    for (const r of outcome.result ?? []) {
      console.log(
        `fields ${r.encoding} (${fieldPrecisionLabel(r.fieldPrecision)}): ` +
          `${r.bytesPerPoint.toFixed(3)} B/pt (points ${r.pointsBytesPerPoint.toFixed(3)}, ` +
          `${r.fields.map((f) => `${f.name} ${f.bytesPerPoint.toFixed(3)}`).join(', ')}), ` +
          `encode ${r.encodeMs.toFixed(1)} ms, decode ${r.decodeMs.toFixed(1)} ms per 1M points`,
      );
    }
    return outcome.error ? [`fields: ${outcome.error}`] : [];
  },

  async browser(o, results) {
    if (!haveChromium()) {
      const why = `no Chromium at ${CHROMIUM_PATH} (Debian: apt-get install chromium)`;
      console.log(`browser: skipped: ${why}`);
      results.browser = { skipped: why };
      return [];
    }
    console.log(
      `browser: /send page, ${o.browserLadder.join(', ')} points at ${HZ} Hz for ` +
        `${o.browserSeconds} s, x ${o.browserRepeats} ...`,
    );
    const outcome = await attempt(async (): Promise<BrowserBenchRow[]> => {
      // Loaded here, not at the top: it pulls in playwright and the in-process server.
      const { runBrowserSenderBench } = await import('./lib/browser.js');
      return runBrowserSenderBench({
        ladder: o.browserLadder,
        hz: HZ,
        seconds: o.browserSeconds,
        fullSpeedFrames: o.quick ? 4 : 12,
        repeats: o.browserRepeats,
        log: (line) => console.log(`  ${line}`),
      });
    });
    results.browser = outcome;
    for (const r of outcome.result ?? []) {
      console.log(
        `browser ${r.encoding} ${r.source} ${r.points} @ ${r.targetHz || 'max'} Hz: ` +
          `${r.achievedHz.median} frames/s, ${r.mbPerSec.median} MB/s, ` +
          `${r.bytesPerPoint} B/pt, ${r.targetHz > 0 ? (r.sustained ? 'sustained' : 'NOT sustained') : 'full speed'}`,
      );
    }
    const errors = (outcome.result ?? []).flatMap((r) =>
      r.errors.map((e) => `browser ${r.encoding} ${r.source} ${r.points}: ${e}`),
    );
    return outcome.error ? [`browser: ${outcome.error}`] : errors;
  },

  async endurance(o, results) {
    console.log(`endurance: seed workload for ${o.enduranceMinutes} min ...`);
    const outcome = await attempt(() => runEndurance(o.enduranceMinutes));
    const r = outcome.result;
    results.endurance = r && !r.run.ok ? { result: r, error: r.run.reason } : outcome;
    if (r) {
      console.log(
        `endurance: ${rateLine(r.run)}, RSS ${(r.rssBaseline / 1e6).toFixed(0)} -> ` +
          `${(r.rssFinal / 1e6).toFixed(0)} MB (${r.rssGrowthPct.toFixed(1)}%)`,
      );
    }
    return results.endurance.error ? [`endurance: ${results.endurance.error}`] : [];
  },
};

/** The order scenarios run in (endurance last: it is the long one). */
const ORDER: readonly ScenarioName[] = [
  'ceilings',
  'seed',
  'tls',
  'chunks',
  'scale',
  'clients',
  'cluster',
  'aiortc',
  'encodings',
  'fields',
  'browser',
  'endurance',
];

/** Encodings of the encodings scenario's end-to-end runs. */
const ENCODINGS = ['raw', 'q16', 'qrice'] as const;

function pythonVersion(): string {
  try {
    return execFileSync(PYTHON, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
  } catch {
    return `${PYTHON}: not found`;
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  gate.waitMs = options.quietWait * 1000;
  const started = new Date();
  const date = localDate(started);
  const machine = describeMachine(pythonVersion());
  const prefix = `${date}${options.quick ? '-quick' : ''}`;
  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const results: BenchResults = {};
  const failures: string[] = [];
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;

  /** Writes the report and plots as they stand; returns their paths. */
  const save = (): { path: string; svgs: string[]; report: BenchReport } => {
    const files = new Map<string, string>();
    const svgs: string[] = [];
    for (const [name, svg] of buildPlots(results, options.chunkSizes)) {
      const file = `${prefix}-${name}.svg`;
      writeFileSync(join(dir, file), svg);
      files.set(name, file);
      svgs.push(relative(ROOT, join(dir, file)));
    }
    const path = join(dir, `${prefix}.md`);
    const report = {
      date,
      startedAt: started.toString(),
      finishedAt: new Date().toString(),
      command,
      machine,
      options,
      results,
      failures,
      plots: files,
      busyStarts: gate.busyStarts,
    };
    writeFileSync(path, renderMarkdown(report));
    return { path: relative(ROOT, path), svgs, report };
  };

  for (const name of ORDER) {
    if (!options.scenarios.has(name)) continue;
    console.log(`== ${name}`);
    failures.push(...(await RUNNERS[name](options, results)));
    save();
  }

  const { path, svgs, report } = save();
  console.log('');
  console.log(renderSummary(report, path, svgs));
  if (failures.length > 0) {
    console.error(`\nbench: ${failures.length} failure(s):`);
    for (const f of failures) console.error(`- ${f.split('\n')[0]}`);
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(`bench: FAILED: ${errorMessage(error)}`);
  process.exit(1);
});
