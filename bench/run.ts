/**
 * `npm run bench`: bare node-datachannel vs `pointstream send --rate 0` on loopback at MTU 1280
 * and 4096, interleaved and repeated, then the seed workload (1M points at 4 Hz) once. Writes
 * bench/results/<YYYY-MM-DD>.md (`--quick`: <YYYY-MM-DD>-quick.md) and prints a summary.
 *
 *   npm run bench -- [--repeats N] [--frames N] [--seed-duration S] [--quick]
 *
 * Defaults: 3 repeats, 40 frames, 60 s; --quick: 1 repeat, 10 frames, 10 s (explicit flags win).
 * A failed run is reported, not retried; the script then exits with code 1.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from './lib/proc.js';
import { describeMachine, renderMarkdown, renderSummary } from './lib/report.js';
import type { BenchReport, RunRecord, Scenario, SeedRecord } from './lib/report.js';
import {
  FRAME_BYTES,
  bareArgs,
  fullSpeed,
  runBare,
  runPointstream,
  runSeed,
  seedRate,
  sendArgs,
  serveArgs,
} from './lib/scenarios.js';

const MTUS = [1280, 4096] as const;

interface Options {
  readonly repeats: number;
  readonly frames: number;
  readonly seedDuration: number;
  readonly quick: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      repeats: { type: 'string' },
      frames: { type: 'string' },
      'seed-duration': { type: 'string' },
      quick: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const quick = values.quick;
  const int = (name: string, value: string | undefined, fallback: number): number => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 1) usage(`--${name} must be a positive integer`);
    return n;
  };
  return {
    repeats: int('repeats', values.repeats, quick ? 1 : 3),
    frames: int('frames', values.frames, quick ? 10 : 40),
    seedDuration: int('seed-duration', values['seed-duration'], quick ? 10 : 60),
    quick,
  };
}

function usage(message: string): never {
  console.error(`bench: ${message}`);
  console.error('usage: npm run bench -- [--repeats N] [--frames N] [--seed-duration S] [--quick]');
  process.exit(2);
}

/** Local date of this machine as YYYY-MM-DD. */
function localDate(d: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

const errorMessage = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

/** The commands of one repeat, for the report. */
function commandList(options: Options): string[] {
  const node = (args: readonly string[]): string => `node ${args.join(' ')}`;
  const lines: string[] = [];
  for (const mtu of MTUS) {
    lines.push(`# MTU ${mtu}: bare, then pointstream (server's /stats read before and after send)`);
    lines.push(node(bareArgs(mtu, options.frames)));
    lines.push(`${node(serveArgs(mtu))}   # prints <url> over IPC`);
    lines.push(node(sendArgs('<url>', mtu, fullSpeed(options.frames))));
  }
  lines.push(`# seed workload, once`);
  lines.push(node(serveArgs(undefined)));
  lines.push(node(sendArgs('<url>', undefined, seedRate(options.seedDuration))));
  return lines;
}

async function measure(scenario: Scenario, mtu: number, frames: number): Promise<RunRecord> {
  const run = scenario === 'bare' ? runBare : runPointstream;
  try {
    return { repeat: 0, scenario, mtu, result: await run(mtu, frames) };
  } catch (error) {
    return { repeat: 0, scenario, mtu, error: errorMessage(error) };
  }
}

async function measureSeed(seconds: number): Promise<SeedRecord> {
  try {
    const result = await runSeed(seconds);
    return result.ok ? { seconds, result } : { seconds, result, error: result.reason };
  } catch (error) {
    return { seconds, error: errorMessage(error) };
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = new Date();
  const machine = describeMachine();
  const total = options.repeats * MTUS.length * 2;
  const runs: RunRecord[] = [];
  const failures: string[] = [];

  for (let repeat = 1; repeat <= options.repeats; repeat++) {
    for (const mtu of MTUS) {
      for (const scenario of ['bare', 'pointstream'] as const) {
        const label = `[${runs.length + 1}/${total}] ${scenario} mtu ${mtu}`;
        const record = { ...(await measure(scenario, mtu, options.frames)), repeat };
        runs.push(record);
        if (record.result) {
          const r = record.result;
          console.log(
            `${label}: ${r.mbPerSec.toFixed(1)} MB/s, CPU s/100MB sender ` +
              `${r.senderCpuPer100MB.toFixed(2)} receiver ${r.receiverCpuPer100MB.toFixed(2)}, ` +
              `UDP drops ${r.udpDrops ?? 'n/a'}`,
          );
        } else {
          console.log(`${label}: FAILED`);
          failures.push(`repeat ${repeat}: ${record.error}`);
        }
      }
    }
  }

  console.log(`seed workload: ${options.seedDuration} s at 4 Hz ...`);
  const seed = await measureSeed(options.seedDuration);
  if (seed.error !== undefined) failures.push(`seed workload: ${seed.error}`);

  const report: BenchReport = {
    date: localDate(started),
    startedAt: started.toString(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine,
    repeats: options.repeats,
    frames: options.frames,
    bytesPerRun: options.frames * FRAME_BYTES,
    mtus: MTUS,
    commands: commandList(options),
    runs,
    seed,
    failures,
  };
  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${report.date}${options.quick ? '-quick' : ''}.md`);
  writeFileSync(path, renderMarkdown(report));

  console.log('');
  console.log(renderSummary(report, relative(ROOT, path)));
  if (failures.length > 0) {
    console.error(`\nbench: ${failures.length} failure(s):`);
    for (const f of failures) console.error(`- ${f}`);
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(`bench: FAILED: ${errorMessage(error)}`);
  process.exit(1);
});
