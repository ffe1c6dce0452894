/** The report's plots, as SVG text by name; a plot whose data is missing is left out. */
import { HZ, LOOPBACK_MTU, chunkRuns, codecRows, transferRow } from './results.js';
import type { BenchResults } from './results.js';
import { npyBytes } from './scenarios.js';
import { mmLabel } from './sections.js';
import { barChart, lineChart } from './svg.js';
import { spread } from './stats.js';

const pointsLabel = (p: number): string =>
  p >= 1e6 ? `${p / 1e6}M` : p >= 1e3 ? `${p / 1e3}k` : String(p);

export function buildPlots(b: BenchResults, chunkSizes: readonly number[]): Map<string, string> {
  const plots = new Map<string, string>();
  const add = (name: string, svg: string | undefined): void => {
    if (svg) plots.set(name, svg);
  };
  add('seed-latency', seedLatency(b));
  add('chunks', chunks(b, chunkSizes));
  add('scale-throughput', scaleThroughput(b));
  add('scale-latency', scaleLatency(b));
  add('clients', clients(b));
  add('endurance-memory', enduranceMemory(b));
  add('encodings-bytes', encodingsBytes(b));
  return plots;
}

function seedLatency(b: BenchResults): string | undefined {
  const lat = [...(b.seed?.result?.frameLatenciesMs ?? [])].sort((x, y) => x - y);
  if (lat.length === 0) return undefined;
  // A step function: at each latency the fraction jumps from i/n to (i+1)/n.
  const cdf = lat.flatMap((v, i) => [
    [v, i / lat.length] as const,
    [v, (i + 1) / lat.length] as const,
  ]);
  return lineChart({
    title: `Seed workload: per-frame latency, CDF (${lat.length} frames, 1M points at ${HZ} Hz)`,
    xLabel: "latency (ms): server receivedAt - sender's captureTime",
    yLabel: 'fraction of frames',
    series: [{ name: 'frames at or below x', points: cdf, markers: false }],
    yMin: 0,
    yMax: 1,
    references: [
      { x: 200, label: 'p99 target 200 ms' },
      { y: 0.99, label: 'p99' },
    ],
  });
}

function chunks(b: BenchResults, sizes: readonly number[]): string | undefined {
  const records = b.chunks ?? [];
  if (!records.some((c) => c.result)) return undefined;
  const series = (['bare', 'pointstream'] as const).map((s) => {
    const rows = sizes.map((size) => transferRow(chunkRuns(records, size, s)).mbPerSec);
    return {
      name: s === 'bare' ? 'bare node-datachannel' : 'pointstream send --rate 0',
      values: rows.map((r) => (r.n ? r.median : undefined)),
      ranges: rows.map((r) => (r.n > 1 ? ([r.min, r.max] as const) : undefined)),
    };
  });
  return barChart({
    title: `Throughput against chunk size (MTU ${LOOPBACK_MTU}; median, min–max)`,
    xLabel: 'chunk size asked (--chunk-bytes)',
    yLabel: 'MB/s',
    categories: sizes.map((s) => (s >= 1 << 20 ? `${s / (1 << 20)} MiB` : `${s / 1024} KiB`)),
    series,
  });
}

function scaleRuns(b: BenchResults) {
  return (b.scale ?? []).flatMap((r) => (r.result ? [r.result] : []));
}

const scaleTicks = (b: BenchResults): { value: number; label: string }[] =>
  scaleRuns(b).map((r) => ({ value: r.points, label: pointsLabel(r.points) }));

function scaleThroughput(b: BenchResults): string | undefined {
  const runs = scaleRuns(b);
  if (runs.length === 0) return undefined;
  return lineChart({
    title: `Frame size at ${HZ} Hz: throughput`,
    xLabel: 'points per frame (log scale)',
    yLabel: 'MB/s',
    xLog: true,
    xTicks: scaleTicks(b),
    series: [
      { name: 'offered', points: runs.map((r) => [r.points, (HZ * npyBytes(r.points)) / 1e6]) },
      { name: 'achieved', points: runs.map((r) => [r.points, r.mbPerSec]) },
    ],
    yMin: 0,
  });
}

function scaleLatency(b: BenchResults): string | undefined {
  const runs = scaleRuns(b);
  if (runs.length === 0) return undefined;
  return lineChart({
    title: `Frame size at ${HZ} Hz: latency (send: first chunk -> receipt)`,
    xLabel: 'points per frame (log scale)',
    yLabel: 'ms',
    xLog: true,
    xTicks: scaleTicks(b),
    series: [
      { name: 'p50', points: runs.map((r) => [r.points, r.latencyMs.p50]) },
      { name: 'p99', points: runs.map((r) => [r.points, r.latencyMs.p99]) },
    ],
    yMin: 0,
    references: [{ y: 1000 / HZ, label: `one period (${1000 / HZ} ms)` }],
  });
}

function clients(b: BenchResults): string | undefined {
  const records = b.clients ?? [];
  if (!records.some((r) => r.result)) return undefined;
  const p99 = records.map((r) =>
    r.result ? spread(r.result.summaries.map((s) => s.latencyMs.p99)).max : undefined,
  );
  return barChart({
    title: 'Concurrent clients, one server: aggregate throughput',
    xLabel: `clients (each 250k points at ${HZ} Hz); label under: worst client p99`,
    yLabel: 'MB/s',
    categories: records.map(
      (r, i) => `${r.clients}${p99[i] !== undefined ? ` (p99 ${p99[i].toFixed(0)} ms)` : ''}`,
    ),
    series: [
      { name: 'offered', values: records.map((r) => r.result?.offeredMbPerSec) },
      {
        name: 'achieved (sum over clients)',
        values: records.map((r) => r.result?.aggregateMbPerSec),
      },
    ],
  });
}

function enduranceMemory(b: BenchResults): string | undefined {
  const e = b.endurance?.result;
  if (!e || e.samples.length === 0) return undefined;
  return lineChart({
    title: `Endurance: server memory, seed workload for ${e.minutes} min`,
    xLabel: 'minutes since send started',
    yLabel: 'MB',
    series: [
      { name: 'RSS', points: e.samples.map((s) => [s.t / 60, s.rssBytes / 1e6]) },
      { name: 'heap used', points: e.samples.map((s) => [s.t / 60, s.heapUsedBytes / 1e6]) },
    ],
    yMin: 0,
    references: [{ x: e.baselineSec / 60, label: 'baseline' }],
  });
}

/** Codec bytes per point: a category per encoding (and precision), a bar per scene. */
function encodingsBytes(b: BenchResults): string | undefined {
  const rows = codecRows(b.encodings?.codec ?? []);
  if (rows.length === 0) return undefined;
  const label = (r: (typeof rows)[number]): string =>
    r.encoding === 'qrice' ? `qrice ${mmLabel(r.precision)}` : r.encoding;
  const categories = [...new Set(rows.map(label))];
  const scenes = [...new Set(rows.map((r) => r.scene))];
  return barChart({
    title: 'Point encodings: payload bytes per point (codec bench)',
    xLabel: 'encoding (qrice: precision asked); dashed: target < 3 B/point on the LiDAR scene',
    yLabel: 'bytes per point',
    categories,
    series: scenes.map((scene) => ({
      name: scene === 'lidar' ? 'LiDAR scene' : 'random points',
      values: categories.map(
        (c) => rows.find((r) => r.scene === scene && label(r) === c)?.bytesPerPoint,
      ),
    })),
    references: [{ y: 3, label: '' }],
  });
}
