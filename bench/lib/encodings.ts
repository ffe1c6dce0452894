import { LidarSceneSource } from '../../src/sources/lidar.js';
import { RandomPointSource } from '../../src/sources/random.js';
import {
  decodePoints,
  encodePoints,
  encodingsReady,
  type PointEncodingName,
} from '../../src/wire/encodings/index.js';
import { decodeFields } from '../../src/wire/encodings/fields.js';
import { FieldCodec, columnOffsets, payloadBytesOf } from '../../src/wire/fields.js';
import type { FieldArray, FieldTable, PointFields } from '../../src/wire/fields.js';
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

function largestError(a: FieldArray, b: FieldArray): number {
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

// ---------------------------------------------------------------------------------------------
// Points with fields

/** Max error asked per float field of the LiDAR scene in the fields bench (time: 1 µs). */
export const BENCH_FIELD_PRECISION: Readonly<Record<string, number>> = {
  intensity: 0.01,
  time: 1e-6,
};

/** One field's column in a {@link FieldBenchRow}. */
export interface FieldBenchColumn {
  readonly name: string;
  /** Wire type name (`f32`, `u16`, ...). */
  readonly type: string;
  readonly codec: 'raw' | 'delta-rice' | 'quant-rice';
  readonly bytesPerPoint: number;
  /** Bound the encoder reported and the largest error measured (the field's unit). */
  readonly maxError: number;
  readonly measuredMaxError: number;
}

/** One encoding of the LiDAR scene with its intensity, ring and time fields. */
export interface FieldBenchRow {
  readonly encoding: PointEncodingName;
  /** Max error asked per float field; empty: every field lossless. */
  readonly fieldPrecision: Readonly<Record<string, number>>;
  /** Precision asked of the points (qrice). */
  readonly precision: number;
  readonly points: number;
  /** The whole payload (points part + columns, protocol layout) per point. */
  readonly bytesPerPoint: number;
  /** The points part alone (raw: the .npy file). */
  readonly pointsBytesPerPoint: number;
  readonly fields: readonly FieldBenchColumn[];
  /** Points and fields encoded (`encodePoints` with `fields`), ms per 1M points: median, fastest. */
  readonly encodeMs: number;
  readonly encodeMinMs: number;
  /** `decodePoints` + `decodeFields` of the payload, ms per 1M points. */
  readonly decodeMs: number;
  readonly decodeMinMs: number;
  readonly runs: number;
}

const CODEC_NAMES = {
  [FieldCodec.RAW]: 'raw',
  [FieldCodec.DELTA_RICE]: 'delta-rice',
  [FieldCodec.QUANT_RICE]: 'quant-rice',
} as const;

/**
 * Points with fields: the LiDAR scene with intensity (f32), ring (u16) and time (f64), encoded
 * as a sender encodes a frame (raw: `.npy` + raw columns; q16 and qrice: coded columns at
 * {@link BENCH_FIELD_PRECISION}, and qrice once more with every field lossless) and decoded as
 * the server does (points, then `decodeFields` over the payload in the protocol layout). One
 * core, wall time per 1M points, median and fastest of the runs after a warm-up.
 */
export async function runFieldsBench(opts: EncodingBenchOptions = {}): Promise<FieldBenchRow[]> {
  await encodingsReady();
  const points = opts.quick === true ? 100_000 : 1_000_000;
  const runs = opts.quick === true ? 3 : 15;
  const warmUps = opts.quick === true ? 1 : 40;
  const precision = opts.precision ?? 0.001;
  const source = new LidarSceneSource(points);
  const frame = source.next().slice();
  const fields = copyFields(source.fields ?? {});
  const perMillion = 1_000_000 / points;
  const cases: [PointEncodingName, Readonly<Record<string, number>>][] = [
    ['raw', {}],
    ['q16', BENCH_FIELD_PRECISION],
    ['qrice', BENCH_FIELD_PRECISION],
    ['qrice', {}],
  ];
  const rows: FieldBenchRow[] = [];
  for (const [encoding, fieldPrecision] of cases) {
    const options = { precision, fields, fieldPrecision };
    const encodeMs: number[] = [];
    let encoded = encodePoints(frame, encoding, options);
    for (let run = -warmUps; run < runs; run++) {
      const t0 = performance.now();
      encoded = encodePoints(frame, encoding, options);
      if (run >= 0) encodeMs.push((performance.now() - t0) * perMillion);
    }
    const columns = encoded.fields?.columns ?? [];
    const table: FieldTable = { pointsBytes: encoded.bytes.length, columns };
    const payload = new Uint8Array(payloadBytesOf(table));
    payload.set(encoded.bytes);
    const offsets = columnOffsets(table);
    encoded.fields?.bytes.forEach((b, i) => payload.set(b, offsets[i]));
    const decode = (): PointFields => {
      decodePoints(payload.subarray(0, table.pointsBytes), encoded.encoding, points);
      return decodeFields(payload, table, points);
    };
    const decodeMs: number[] = [];
    let decoded = decode();
    for (let run = -warmUps; run < runs; run++) {
      const t0 = performance.now();
      decoded = decode();
      if (run >= 0) decodeMs.push((performance.now() - t0) * perMillion);
    }
    const enc = spread(encodeMs);
    const dec = spread(decodeMs);
    rows.push({
      encoding,
      fieldPrecision,
      precision,
      points,
      bytesPerPoint: payload.length / points,
      pointsBytesPerPoint: encoded.bytes.length / points,
      fields: columns.map((c) => ({
        name: c.name,
        type: c.type,
        codec: CODEC_NAMES[c.codec],
        bytesPerPoint: c.byteLength / points,
        maxError: encoded.fields?.maxErrors[c.name] ?? 0,
        measuredMaxError: largestError(fields[c.name] as FieldArray, decoded[c.name] as FieldArray),
      })),
      encodeMs: enc.median,
      encodeMinMs: enc.min,
      decodeMs: dec.median,
      decodeMinMs: dec.min,
      runs,
    });
  }
  return rows;
}

/** Copies, so that the rows measure the frame that was encoded even if the source moves on. */
function copyFields(fields: PointFields): PointFields {
  return Object.fromEntries(Object.entries(fields).map(([name, v]) => [name, v.slice()]));
}

/** The field rows as a markdown table (bench/encodings.ts --fields). */
export function formatFieldsTable(rows: readonly FieldBenchRow[]): string {
  const lines = [
    '| encoding | fields asked | bytes/point: total | points | fields | encode ms / 1M pts (min) | decode ms / 1M pts (min) |',
    '| --- | --- | ---: | ---: | --- | ---: | ---: |',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.encoding} | ${fieldPrecisionLabel(r.fieldPrecision)} | ${r.bytesPerPoint.toFixed(3)} | ${r.pointsBytesPerPoint.toFixed(3)} | ${r.fields.map((f) => `${f.name} ${f.bytesPerPoint.toFixed(3)} (${f.codec}, error ${formatFieldError(f.maxError)} / ${formatFieldError(f.measuredMaxError)})`).join(', ')} | ${r.encodeMs.toFixed(1)} (${r.encodeMinMs.toFixed(1)}) | ${r.decodeMs.toFixed(1)} (${r.decodeMinMs.toFixed(1)}) |`,
    );
  }
  return lines.join('\n');
}

/** `intensity=0.01, time=1e-6`, or `lossless`. */
export function fieldPrecisionLabel(precision: Readonly<Record<string, number>>): string {
  const entries = Object.entries(precision);
  return entries.length === 0
    ? 'lossless'
    : entries.map(([name, v]) => `${name}=${v < 1e-3 ? v.toExponential() : String(v)}`).join(', ');
}

/** An error in the field's unit, 3 significant digits; 0 stays 0. */
export function formatFieldError(e: number): string {
  return e === 0 ? '0' : e < 1e-3 ? e.toExponential(2) : e.toPrecision(3);
}
