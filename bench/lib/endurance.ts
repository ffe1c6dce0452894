/**
 * Endurance: the seed workload for N minutes while the server's /stats memory is sampled every
 * second. Growth compares the mean RSS of a 30 s window starting at the first minute with that of
 * the last 30 s, so one sample does not decide it: 30 samples per window average out the swings
 * between garbage collections.
 */
import { POINTS_PER_FRAME, runRated } from './scenarios.js';
import type { RateResult, ServerHandle } from './scenarios.js';

export const SAMPLE_EVERY_MS = 1000;
const WINDOW_SEC = 30;

export interface MemorySample {
  /** Seconds since `send` started. */
  readonly t: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
}

export interface EnduranceResult {
  readonly minutes: number;
  readonly run: RateResult;
  readonly samples: readonly MemorySample[];
  /** Failed /stats reads (each is skipped). */
  readonly sampleErrors: number;
  /** Start of the baseline window: 60 s, or half the run if that is shorter. */
  readonly baselineSec: number;
  readonly rssBaseline: number;
  readonly rssFinal: number;
  readonly rssMaxAfterBaseline: number;
  readonly rssGrowthPct: number;
  readonly heapBaseline: number;
  readonly heapFinal: number;
  readonly heapGrowthPct: number;
}

export async function runEndurance(minutes: number): Promise<EnduranceResult> {
  const samples: MemorySample[] = [];
  let sampleErrors = 0;
  const during = (server: ServerHandle): (() => Promise<void>) => {
    const start = performance.now();
    let pending: Promise<void> = Promise.resolve();
    const sample = (): void => {
      pending = server.stats().then(
        (s) => {
          const t = (performance.now() - start) / 1000;
          samples.push({ t, rssBytes: s.memory.rssBytes, heapUsedBytes: s.memory.heapUsedBytes });
        },
        () => void sampleErrors++,
      );
    };
    sample();
    const timer = setInterval(sample, SAMPLE_EVERY_MS);
    return async () => {
      clearInterval(timer);
      await pending;
    };
  };
  const run = await runRated('endurance', {
    points: POINTS_PER_FRAME,
    seconds: minutes * 60,
    during,
  });
  const end = samples.at(-1)?.t ?? 0;
  const baselineSec = Math.min(60, end / 2);
  /** Mean of `key` over the samples with `from <= t <= from + 30 s`. */
  const mean = (from: number, key: 'rssBytes' | 'heapUsedBytes'): number => {
    const window = samples.filter((s) => s.t >= from && s.t <= from + WINDOW_SEC);
    return window.reduce((sum, s) => sum + s[key], 0) / window.length;
  };
  const finalFrom = Math.max(baselineSec, end - WINDOW_SEC);
  const rssBaseline = mean(baselineSec, 'rssBytes');
  const rssFinal = mean(finalFrom, 'rssBytes');
  const heapBaseline = mean(baselineSec, 'heapUsedBytes');
  const heapFinal = mean(finalFrom, 'heapUsedBytes');
  const after = samples.filter((s) => s.t >= baselineSec).map((s) => s.rssBytes);
  return {
    minutes,
    run,
    samples,
    sampleErrors,
    baselineSec,
    rssBaseline,
    rssFinal,
    rssMaxAfterBaseline: Math.max(0, ...after),
    rssGrowthPct: (rssFinal / rssBaseline - 1) * 100,
    heapBaseline,
    heapFinal,
    heapGrowthPct: (heapFinal / heapBaseline - 1) * 100,
  };
}
