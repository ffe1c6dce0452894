/**
 * What a browser sender sustains here: headless Chromium runs the /send page (web/sender) against a
 * pointstream server, at 4 Hz for a ladder of points per frame, and as fast as it can for 1M
 * points. The server runs in this process (the page is its client; Chromium is the other process).
 *
 * Run alone: node --import tsx bench/lib/browser.ts [--repeats 3] [--seconds 5]
 * (needs the pages built: npm run build:web, and Debian's chromium).
 */
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { createServer } from '../../src/index.js';
import type { PointEncodingName } from '../../src/wire/index.js';
import { launchBrowser } from '../../test/browser-helpers.js';
import { spread } from './stats.js';
import type { Spread } from './stats.js';

/** One page run, as window.pointstream.start() reports it (web/sender/run.ts RunResult). */
interface PageResult {
  ok: boolean;
  reason: string;
  errorCode: string | null;
  framesPlanned: number | null;
  framesSent: number;
  framesAcked: number;
  framesRejected: number;
  framesLost: number;
  bytesSent: number;
  seconds: number;
  achievedHz: number;
  mbPerSec: number;
  late: number;
  latencyMs: { p50: number; p99: number; max: number };
  bytesPerPoint: number;
  maxError: number;
  encodeMsP50: number;
}

declare const window: {
  pointstream: { ready: true; start(options: Record<string, unknown>): Promise<PageResult> };
};

export interface BrowserBenchOptions {
  /** Points per frame to try at `hz`. */
  readonly ladder?: readonly number[];
  readonly hz?: number;
  /** Seconds of each rated run. */
  readonly seconds?: number;
  /** Frames of the full-speed run (1M points each). */
  readonly fullSpeedFrames?: number;
  readonly repeats?: number;
  /** Encodings to measure, each on a scene (random points do not compress). */
  readonly variants?: readonly { encoding: PointEncodingName; source: 'random' | 'lidar' }[];
  readonly log?: (line: string) => void;
}

export interface BrowserBenchRow {
  readonly encoding: string;
  readonly source: string;
  /** Payload bytes per point (median over repeats). */
  readonly bytesPerPoint: number;
  /** Largest coordinate error over every frame of every repeat, metres. */
  readonly maxError: number;
  /** Worker time to encode one frame (median of the repeats' medians). */
  readonly encodeMs: Spread;
  readonly points: number;
  /** Target frames per second; 0 = as fast as the link allows. */
  readonly targetHz: number;
  readonly repeats: number;
  readonly framesPlanned: number;
  readonly achievedHz: Spread;
  readonly mbPerSec: Spread;
  readonly latencyP50Ms: Spread;
  readonly latencyP99Ms: Spread;
  /** Frames started more than one period late, summed over the repeats. */
  readonly late: number;
  /** Frames not acknowledged (rejected or lost), summed over the repeats. */
  readonly failedFrames: number;
  /** At the target rate: every frame acknowledged, none late, at least 95% of the rate (median). */
  readonly sustained: boolean;
  readonly errors: readonly string[];
}

async function runOnce(page: Page, options: Record<string, unknown>): Promise<PageResult> {
  return page.evaluate((o) => window.pointstream.start(o), options);
}

export async function runBrowserSenderBench(
  options: BrowserBenchOptions = {},
): Promise<BrowserBenchRow[]> {
  const {
    ladder = [100_000, 250_000, 500_000, 1_000_000],
    hz = 4,
    seconds = 5,
    fullSpeedFrames = 12,
    repeats = 3,
    variants = [
      { encoding: 'raw', source: 'random' },
      { encoding: 'q16', source: 'lidar' },
      { encoding: 'qrice', source: 'lidar' },
    ],
    log = () => undefined,
  } = options;
  const server = await createServer({
    host: '127.0.0.1',
    port: 0,
    rtc: { bindAddress: '127.0.0.1' },
  });
  const browser = await launchBrowser();
  const rows: BrowserBenchRow[] = [];
  try {
    const page = await browser.open(`${server.url}/send`, { timeoutMs: 120_000 });
    await page.waitForFunction(() => window.pointstream?.ready === true);
    const cases = variants.flatMap(({ encoding, source }) => [
      ...ladder.map((points) => ({
        encoding,
        source,
        points,
        rate: hz,
        frames: Math.round(hz * seconds),
      })),
      { encoding, source, points: 1_000_000, rate: 0, frames: fullSpeedFrames },
    ]);
    const results = new Map<number, PageResult[]>();
    // Repeats interleaved (every case once, then again), so that a noisy minute hits all cases.
    for (let repeat = 0; repeat < repeats; repeat++) {
      for (const [index, c] of cases.entries()) {
        const result = await runOnce(page, {
          source: c.source,
          seed: repeat + 1,
          points: c.points,
          rate: c.rate,
          frames: c.frames,
          encoding: c.encoding,
        });
        log(
          `browser ${c.encoding}/${c.source} ${c.points} points @ ${c.rate || 'max'} Hz #${repeat + 1}: ` +
            `${result.achievedHz} frames/s, ${result.mbPerSec} MB/s, p50 ${result.latencyMs.p50} ms, ` +
            `p99 ${result.latencyMs.p99} ms, acked ${result.framesAcked}/${c.frames}, late ${result.late}, ` +
            `${result.bytesPerPoint} B/point, encode ${result.encodeMsP50} ms` +
            (result.ok ? '' : ` (${result.errorCode}: ${result.reason})`),
        );
        results.set(index, [...(results.get(index) ?? []), result]);
      }
    }
    for (const [index, c] of cases.entries()) {
      const runs = results.get(index) ?? [];
      const achievedHz = spread(runs.map((r) => r.achievedHz));
      const late = runs.reduce((sum, r) => sum + r.late, 0);
      const failedFrames = runs.reduce((sum, r) => sum + (c.frames - r.framesAcked), 0);
      rows.push({
        encoding: c.encoding,
        source: c.source,
        bytesPerPoint: spread(runs.map((r) => r.bytesPerPoint)).median,
        maxError: Math.max(0, ...runs.map((r) => r.maxError)),
        encodeMs: spread(runs.map((r) => r.encodeMsP50)),
        points: c.points,
        targetHz: c.rate,
        repeats: runs.length,
        framesPlanned: c.frames,
        achievedHz,
        mbPerSec: spread(runs.map((r) => r.mbPerSec)),
        latencyP50Ms: spread(runs.map((r) => r.latencyMs.p50)),
        latencyP99Ms: spread(runs.map((r) => r.latencyMs.p99)),
        late,
        failedFrames,
        sustained:
          c.rate > 0 && failedFrames === 0 && late === 0 && achievedHz.median >= 0.95 * c.rate,
        errors: runs.filter((r) => !r.ok).map((r) => `${r.errorCode}: ${r.reason}`),
      });
    }
  } finally {
    await browser.close();
    await server.close();
  }
  return rows;
}

/** A Markdown table of the rows. */
export function renderBrowserTable(rows: readonly BrowserBenchRow[]): string {
  const f = (s: Spread, digits: number): string =>
    s.n === 0
      ? 'failed'
      : s.n === 1
        ? s.median.toFixed(digits)
        : `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)})`;
  const lines = [
    '| encoding (scene) | B/point | encode ms | points/frame | target | frames/s | MB/s | latency p50 ms | p99 ms | late | not acked | sustained |',
    '| --- | ---: | --- | ---: | ---: | --- | --- | --- | --- | ---: | ---: | --- |',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.encoding} (${r.source}) | ${r.bytesPerPoint.toFixed(2)} | ${r.encoding === 'raw' ? '-' : f(r.encodeMs, 0)} | ${r.points.toLocaleString('en')} | ${r.targetHz > 0 ? `${r.targetHz} Hz x ${r.framesPlanned}` : `max x ${r.framesPlanned}`} | ` +
        `${f(r.achievedHz, 2)} | ${f(r.mbPerSec, 1)} | ${f(r.latencyP50Ms, 0)} | ${f(r.latencyP99Ms, 0)} | ` +
        `${r.late} | ${r.failedFrames} | ${r.targetHz > 0 ? (r.sustained ? 'yes' : 'no') : '-'} |`,
    );
  }
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name: string, fallback: number): number => {
    const index = process.argv.indexOf(`--${name}`);
    return index < 0 ? fallback : Number(process.argv[index + 1]);
  };
  const rows = await runBrowserSenderBench({
    repeats: arg('repeats', 3),
    seconds: arg('seconds', 5),
    log: (line) => console.error(line),
  });
  console.log(renderBrowserTable(rows));
  console.log(JSON.stringify(rows));
}
