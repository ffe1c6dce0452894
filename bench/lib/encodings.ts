import { LidarSceneSource } from '../../src/sources/lidar.js';
import { RandomPointSource } from '../../src/sources/random.js';
import {
  decodePoints,
  encodePoints,
  encodingsReady,
  type PointEncodingName,
} from '../../src/wire/encodings/index.js';
import { spread } from './stats.js';

/** Options of {@link runEncodingBench}. */
export interface EncodingBenchOptions {
  /** Fewer points (100k) and runs (3) for a smoke run; default false: 1M points, 15 runs after 40 warm-up calls. */
  readonly quick?: boolean;
  /** Precision asked of the encodings that take one (metres, default 0.001). */
  readonly precision?: number;
}

/** One encoding on one scene: medians over the runs. */
export interface EncodingBenchRow {
  readonly scene: 'lidar' | 'random';
  readonly encoding: PointEncodingName;
  readonly precision: number;
  readonly points: number;
  readonly bytesPerPoint: number;
  /** Encode and decode time per 1M points, ms: median of the runs (after the warm-up: 40 calls). */
  readonly encodeMs: number;
  readonly decodeMs: number;
  /** Fastest run, ms per 1M points: the least disturbed by other work on the machine. */
  readonly encodeMinMs: number;
  readonly decodeMinMs: number;
  /** Bound the encoder reported, and the largest error measured on the frame (metres). */
  readonly maxError: number;
  readonly measuredMaxError: number;
  readonly runs: number;
}

const ENCODINGS: readonly PointEncodingName[] = ['raw', 'q16', 'qrice'];

/**
 * Bytes per point, encode and decode ms per 1M points (wall time, median and fastest of N runs
 * after a warm-up), and the error bound against the measured error, for every encoding on the
 * LiDAR scene and on random points (100 m cube). Single-threaded: one core.
 */
export async function runEncodingBench(
  opts: EncodingBenchOptions = {},
): Promise<EncodingBenchRow[]> {
  await encodingsReady();
  const points = opts.quick === true ? 100_000 : 1_000_000;
  const runs = opts.quick === true ? 3 : 15;
  // A stream encodes hundreds of frames: measure the steady state. V8 re-optimizes the encoders
  // over their first few dozen calls (measured: qrice 37-73 ms per 1M points over calls 6-26,
  // 36-42 ms after 60), and that one-time warm-up is not what a 4 Hz stream pays per frame.
  const warmUps = opts.quick === true ? 1 : 40;
  const precision = opts.precision ?? 0.001;
  const scenes = [
    ['lidar', new LidarSceneSource(points).next().slice()],
    ['random', new RandomPointSource(points).next().slice()],
  ] as const;
  const rows: EncodingBenchRow[] = [];
  const perMillion = 1_000_000 / points;
  for (const [scene, frame] of scenes) {
    for (const encoding of ENCODINGS) {
      const encodeMs: number[] = [];
      const decodeMs: number[] = [];
      // Encoding and decoding each in their own loop, as a sender and a server run them.
      let encoded = encodePoints(frame, encoding, { precision });
      for (let run = -warmUps; run < runs; run++) {
        const t0 = cpuMs();
        encoded = encodePoints(frame, encoding, { precision });
        if (run >= 0) encodeMs.push((cpuMs() - t0) * perMillion);
      }
      let decoded = decodePoints(encoded.bytes, encoded.encoding, encoded.pointCount);
      const measured = largestError(frame, decoded);
      for (let run = -warmUps; run < runs; run++) {
        const t0 = cpuMs();
        decoded = decodePoints(encoded.bytes, encoded.encoding, encoded.pointCount);
        if (run >= 0) decodeMs.push((cpuMs() - t0) * perMillion);
      }
      const bytes = encoded.bytes.length;
      const maxError = encoded.maxError;
      const enc = spread(encodeMs);
      const dec = spread(decodeMs);
      rows.push({
        scene,
        encoding,
        precision,
        points,
        bytesPerPoint: bytes / points,
        encodeMs: enc.median,
        decodeMs: dec.median,
        encodeMinMs: enc.min,
        decodeMinMs: dec.min,
        maxError,
        measuredMaxError: measured,
        runs,
      });
    }
  }
  return rows;
}

/** Wall time: the process's CPU time is counted in scheduler ticks here, too coarse for this. */
function cpuMs(): number {
  return performance.now();
}

function largestError(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs((a[i] as number) - (b[i] as number));
    if (e > max) max = e;
  }
  return max;
}

/** The rows as a markdown table. */
export function formatEncodingTable(rows: readonly EncodingBenchRow[]): string {
  const lines = [
    '| scene | encoding | bytes/point | encode ms / 1M pts (min) | decode ms / 1M pts (min) | error bound | measured max error |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.scene} | ${r.encoding} | ${r.bytesPerPoint.toFixed(3)} | ${r.encodeMs.toFixed(1)} (${r.encodeMinMs.toFixed(1)}) | ${r.decodeMs.toFixed(1)} (${r.decodeMinMs.toFixed(1)}) | ${formatMetres(r.maxError)} | ${formatMetres(r.measuredMaxError)} |`,
    );
  }
  return lines.join('\n');
}

function formatMetres(m: number): string {
  return m === 0 ? '0' : `${(m * 1000).toPrecision(3)} mm`;
}
