/**
 * Field column codecs (src/wire/encodings/fields.ts, field-columns.ts): exact bytes of small DELTA_RICE and
 * QUANT_RICE columns, round trips of every field type with edge values (the error bound checked
 * on every value), the choices `coded` mode makes (raw when smaller, raw for NaN/Inf), option
 * errors, corrupt, truncated and lying columns rejected with PS_ERR_ENCODING_CORRUPT before any
 * large allocation, a fast-check fuzz with fixed seeds, and the simulated LiDAR's fields.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { ErrorCodes, PointstreamError } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import { LIDAR_SWEEP_SECONDS, LidarSceneSource } from '../../src/sources/lidar.js';
import { decodePoints, encodePoints } from '../../src/wire/encodings/index.js';
import {
  FIELD_COLUMN_HEADER_BYTES,
  codedColumnBytes,
  decodeColumn,
  encodeDeltaRice,
  encodeQuantRice,
} from '../../src/wire/encodings/field-columns.js';
import { decodeFields, encodeFields } from '../../src/wire/encodings/fields.js';
import {
  FIELD_TYPES,
  FIELD_TYPE_NAMES,
  FieldCodec,
  columnOffsets,
  payloadBytesOf,
} from '../../src/wire/fields.js';
import type {
  EncodedFields,
  FieldArray,
  FieldColumn,
  FieldTable,
  FieldTypeName,
  PointFields,
} from '../../src/wire/fields.js';

const TIMEOUT = { timeout: 60_000 };
const FUZZ_SEED = Number(process.env.PS_FUZZ_SEED ?? 0);
const FUZZ_RUNS = Number(process.env.PS_FUZZ_RUNS ?? 1);

function rejectsWith(fn: () => unknown, code: ErrorCode, field?: string): void {
  assert.throws(fn, (error: unknown) => {
    const coded = error as { code?: unknown; message?: string; details?: unknown };
    assert.equal(coded.code, code, `${String(error)}`);
    if (field !== undefined && error instanceof PointstreamError) {
      assert.equal((error.details as Record<string, unknown> | undefined)?.field, field);
    }
    return true;
  });
}

/** The payload and table a frame would carry (no points part: pointsBytes 0). */
function assemble(
  encoded: EncodedFields,
  pointsBytes = 0,
): { payload: Uint8Array; table: FieldTable } {
  const table: FieldTable = { pointsBytes, columns: encoded.columns };
  const payload = new Uint8Array(payloadBytesOf(table));
  const offsets = columnOffsets(table);
  encoded.bytes.forEach((bytes, i) => payload.set(bytes, offsets[i]));
  return { payload, table };
}

function roundTrip(
  fields: PointFields,
  n: number,
  fieldPrecision?: Record<string, number>,
): { encoded: EncodedFields; decoded: PointFields } {
  const encoded = encodeFields(fields, n, {
    mode: 'coded',
    ...(fieldPrecision === undefined ? {} : { fieldPrecision }),
  });
  const { payload, table } = assemble(encoded, 12);
  const decoded = decodeFields(payload, table, n);
  for (const [name, original] of Object.entries(fields)) {
    const back = decoded[name];
    assert.ok(back !== undefined, `field ${name} decoded`);
    assert.equal(back.constructor, original.constructor, `field ${name} keeps its type`);
    assert.equal(back.length, n);
    const bound = encoded.maxErrors[name] as number;
    if (fieldPrecision?.[name] !== undefined) {
      assert.ok(bound <= fieldPrecision[name], `${name}: bound ${bound} within request`);
    }
    for (let i = 0; i < n; i++) {
      const a = original[i] as number;
      const b = back[i] as number;
      if (bound === 0) {
        if (!Object.is(a, b)) assert.fail(`${name}[${i}]: ${a} came back as ${b}`);
      } else if (!(Math.abs(a - b) <= bound)) {
        assert.fail(`${name}[${i}]: ${a} came back as ${b}, error ${Math.abs(a - b)} > ${bound}`);
      }
    }
  }
  return { encoded, decoded };
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

void describe('field columns: exact bytes', () => {
  void it('DELTA_RICE of u16 [5, 6, 7, 7]: stride 1, one block of k = 2', TIMEOUT, () => {
    const { bytes, column, maxError } = encodeDeltaRice(Uint16Array.of(5, 6, 7, 7), 4);
    assert.deepEqual(column, { codec: FieldCodec.DELTA_RICE, param: 0 });
    assert.equal(maxError, 0);
    // count 4 | layout 1 | block 32 | stride 1 | origin 0 | levels 0 | 0 | one word:
    // k=2 (5 bits), then zigzagged deltas 10, 2, 2, 0 as 11+0+10, 0+10, 0+10, 0+00.
    assert.equal(
      hex(bytes),
      '04000000' + '01' + '20' + '0100' + '0000000000000000' + '00000000' + '00000000' + '62920000',
    );
    const back = decodeColumn(bytes, col('ring', 'u16', FieldCodec.DELTA_RICE, 0, bytes), 4);
    assert.deepEqual(back, Uint16Array.of(5, 6, 7, 7));
  });

  void it(
    'QUANT_RICE of f32 [1, 1.5, 2.5, 2] at 0.25: origin 1, step just under 0.5',
    TIMEOUT,
    () => {
      const coded = encodeQuantRice(Float32Array.of(1, 1.5, 2.5, 2), 4, 0.25);
      assert.ok(coded !== undefined);
      const step = coded.column.param;
      assert.equal(coded.column.codec, FieldCodec.QUANT_RICE);
      assert.ok(step < 0.5 && step > 0.5 - 1e-5, `step ${step}`);
      assert.ok(coded.maxError <= 0.25 && coded.maxError > 0.2499, `bound ${coded.maxError}`);
      // q = 0, 1, 3, 2 (levels ceil(1.5 / step) = 4); stride 1: zigzag 0, 2, 4, 1 with k = 1.
      assert.equal(
        hex(coded.bytes),
        '04000000' +
          '01' +
          '20' +
          '0100' +
          '000000000000f03f' +
          '04000000' +
          '00000000' +
          '818c0000',
      );
      const back = decodeColumn(
        coded.bytes,
        col('i', 'f32', FieldCodec.QUANT_RICE, step, coded.bytes),
        4,
      );
      assert.ok(back instanceof Float32Array);
      [1, 1.5, 2.5, 2].forEach((v, i) =>
        assert.ok(Math.abs((back[i] as number) - v) <= coded.maxError),
      );
    },
  );

  void it(
    "encodeFields lays columns out in order, RAW views of the caller's arrays",
    TIMEOUT,
    () => {
      const intensity = Float32Array.of(0.5, 1, -0);
      const ring = Uint8Array.of(1, 2, 3);
      const encoded = encodeFields({ intensity, ring }, 3, { mode: 'raw' });
      assert.deepEqual(
        encoded.columns.map((c) => [c.name, c.type, c.codec, c.byteLength]),
        [
          ['intensity', 'f32', FieldCodec.RAW, 12],
          ['ring', 'u8', FieldCodec.RAW, 3],
        ],
      );
      assert.equal(encoded.bytes[0]?.buffer, intensity.buffer, 'no copy');
      const { payload, table } = assemble(encoded);
      const decoded = decodeFields(payload, table, 3);
      assert.equal((decoded.intensity as Float32Array).buffer, payload.buffer, 'a view');
      assert.ok(Object.is(decoded.intensity?.[2], -0));
    },
  );
});

function col(
  name: string,
  type: FieldTypeName,
  codec: FieldCodec,
  param: number,
  bytes: Uint8Array,
): FieldColumn {
  return { name, type, codec, param, byteLength: bytes.length };
}

function filled(array: FieldArray, values: readonly number[]): FieldArray {
  values.forEach((v, i) => (array[i] = v));
  return array;
}

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

const INT_EDGES: Record<string, readonly number[]> = {
  u8: [0, 255, 1, 254, 0, 255],
  u16: [0, 65535, 1, 65534, 0, 65535],
  u32: [0, 4294967295, 1, 4294967294, 0, 2147483648],
  i8: [0, -128, 127, -1, 1, -128],
  i16: [0, -32768, 32767, -1, 1, -32768],
  i32: [0, -2147483648, 2147483647, -1, 1, -2147483648],
};

void describe('field columns: round trips', () => {
  for (const type of FIELD_TYPE_NAMES.filter((t) => !FIELD_TYPES[t].float)) {
    void it(`${type}: edge values, smooth and random data, lossless`, TIMEOUT, () => {
      const info = FIELD_TYPES[type];
      const edges = INT_EDGES[type] as readonly number[];
      const n = 5000;
      const smooth = new info.array(n);
      const noisy = new info.array(n);
      const random = rng(7);
      const span = 2 ** (info.bytes * 8);
      for (let i = 0; i < n; i++) {
        smooth[i] = i < edges.length ? (edges[i] as number) : (i >> 4) % 200;
        noisy[i] = Math.floor(random() * span) - (type.startsWith('i') ? span / 2 : 0);
      }
      const { encoded } = roundTrip({ smooth, noisy }, n);
      assert.equal(encoded.columns[0]?.codec, FieldCodec.DELTA_RICE, 'smooth data is coded');
      assert.equal(encoded.columns[1]?.codec, FieldCodec.RAW, 'noise is not worth coding: raw');
      // A coded column of edge values alone (DELTA_RICE forced).
      const alone = encodeDeltaRice(filled(new info.array(edges.length), edges), edges.length);
      const back = decodeColumn(
        alone.bytes,
        col('e', type, FieldCodec.DELTA_RICE, 0, alone.bytes),
        edges.length,
      );
      assert.deepEqual(Array.from(back), edges);
    });
  }

  void it('f32 and f64: -0, tiny, huge and ordinary values within the bound', TIMEOUT, () => {
    const n = 4000;
    const random = rng(11);
    const f32 = new Float32Array(n);
    const f64 = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      f32[i] = 100 * Math.sin(i / 50) + random();
      f64[i] = i * 1e-4 + random() * 1e-6;
    }
    f32.set([-0, 1e-45, -1e-38, 0]);
    f64.set([-0, 5e-324, -2.2e-308, 0]);
    roundTrip({ f32, f64 }, n, { f32: 0.01, f64: 1e-7 });
    // Precision below what the type resolves at these magnitudes: sent raw, exactly.
    const fine = roundTrip({ f32, f64 }, n, { f32: 1e-9, f64: 1e-20 });
    assert.deepEqual(
      fine.encoded.columns.map((c) => c.codec),
      [FieldCodec.RAW, FieldCodec.RAW],
    );
    // Huge magnitudes: the bound holds; a range reaching the type's limits is sent raw.
    const huge32 = Float32Array.of(3.4e38, -3.4e38, 1e38, 0, 3.4028234663852886e38);
    const huge64 = Float64Array.of(1e308, -1e308, 1.7976931348623157e308, 0, 5e307);
    const big = roundTrip({ huge32, huge64 }, 5, { huge32: 1e37, huge64: 1e306 });
    assert.deepEqual(
      big.encoded.columns.map((c) => c.codec),
      [FieldCodec.RAW, FieldCodec.RAW],
    );
    const wide = Float64Array.from({ length: 3000 }, (_, i) => 1e300 * Math.sin(i));
    const ok = roundTrip({ wide }, 3000, { wide: 1e298 });
    assert.equal(ok.encoded.columns[0]?.codec, FieldCodec.QUANT_RICE);
    // Epoch seconds with a microsecond: f64 resolves it (about 2.4e-7 s at 1.7e9).
    const epoch = Float64Array.from({ length: 3000 }, (_, i) => 1.7e9 + i * 2.5e-7);
    const t = roundTrip({ epoch }, 3000, { epoch: 1e-6 });
    assert.equal(t.encoded.columns[0]?.codec, FieldCodec.QUANT_RICE);
  });

  void it('constant columns and zero points', TIMEOUT, () => {
    roundTrip({ a: new Float32Array(1000).fill(7.25), b: new Uint32Array(1000).fill(9) }, 1000, {
      a: 0.001,
    });
    const empty = roundTrip({ a: new Float32Array(0), b: new Int16Array(0) }, 0, { a: 0.1 });
    assert.deepEqual(
      empty.encoded.columns.map((c) => c.byteLength),
      [0, 0],
    );
    const zero = encodeDeltaRice(new Uint8Array(0), 0);
    assert.equal(zero.bytes.length, FIELD_COLUMN_HEADER_BYTES);
    assert.equal(decodeColumn(zero.bytes, col('z', 'u8', 1, 0, zero.bytes), 0).length, 0);
  });

  void it(
    'NaN and infinities in a float field named by fieldPrecision: sent raw, exactly',
    TIMEOUT,
    () => {
      const values = Float32Array.from({ length: 1000 }, (_, i) => i / 10);
      values[500] = NaN;
      values[501] = -Infinity;
      const { encoded, decoded } = roundTrip({ v: values }, 1000, { v: 0.01 });
      assert.equal(encoded.columns[0]?.codec, FieldCodec.RAW);
      assert.equal(encoded.maxErrors.v, 0);
      assert.ok(Number.isNaN(decoded.v?.[500]));
    },
  );

  void it('random data of every float type at several precisions (property)', TIMEOUT, () => {
    fc.assert(
      fc.property(
        fc.constantFrom<FieldTypeName>('f32', 'f64'),
        fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 300 }),
        fc.constantFrom(1e-3, 0.05, 1, 100),
        (type, list, precision) => {
          const values = filled(new FIELD_TYPES[type].array(list.length), list);
          const coded = encodeQuantRice(values, values.length, precision);
          if (coded === undefined) return;
          assert.ok(coded.maxError <= precision);
          const back = decodeColumn(
            coded.bytes,
            col('v', type, FieldCodec.QUANT_RICE, coded.column.param, coded.bytes),
            values.length,
          );
          for (let i = 0; i < values.length; i++) {
            const e = Math.abs((back[i] as number) - (values[i] as number));
            if (!(e <= coded.maxError)) assert.fail(`${values[i]} -> ${back[i]}: ${e}`);
          }
        },
      ),
      { seed: 1801 + FUZZ_SEED, numRuns: 300 * FUZZ_RUNS },
    );
  });

  void it(
    'the LiDAR scene: every field within its bound, and much smaller than raw',
    TIMEOUT,
    () => {
      const source = new LidarSceneSource(64 * 400);
      const points = source.next();
      const fields = source.fields as PointFields;
      const n = points.length / 3;
      const { encoded } = roundTrip(fields, n, { intensity: 0.01, time: 1e-6 });
      const bytes = Object.fromEntries(encoded.columns.map((c) => [c.name, c.byteLength / n]));
      assert.ok((bytes.intensity as number) < 2, `intensity ${bytes.intensity} B/pt`);
      assert.ok((bytes.ring as number) < 0.25, `ring ${bytes.ring} B/pt`);
      assert.ok((bytes.time as number) < 0.7, `time ${bytes.time} B/pt`);
      // Through encodePoints: qrice codes them, raw keeps them raw.
      const q = encodePoints(points, 'qrice', { fields, fieldPrecision: { intensity: 0.01 } });
      assert.deepEqual(
        q.fields?.columns.map((c) => c.codec),
        [FieldCodec.QUANT_RICE, FieldCodec.DELTA_RICE, FieldCodec.RAW],
      );
      assert.equal(decodePoints(q.bytes, q.encoding, n).length, n * 3, 'points as before');
      const raw = encodePoints(points, 'raw', { fields, fieldPrecision: { intensity: 0.01 } });
      assert.ok(raw.fields?.columns.every((c) => c.codec === FieldCodec.RAW));
      assert.equal(encodePoints(points, 'q16').fields, undefined);
    },
  );
});

void describe('field columns: options', () => {
  const fields = { intensity: new Float32Array(10), ring: new Uint16Array(10) };
  void it('fieldPrecision naming an unknown or integer field, or a bad value', TIMEOUT, () => {
    const cases: Record<string, number>[] = [
      { nope: 0.1 },
      { ring: 1 },
      { intensity: 0 },
      { intensity: NaN },
      { intensity: Infinity },
    ];
    for (const fieldPrecision of cases) {
      for (const mode of ['raw', 'coded'] as const) {
        rejectsWith(
          () => encodeFields(fields, 10, { mode, fieldPrecision }),
          ErrorCodes.INVALID_OPTION,
        );
      }
    }
    rejectsWith(
      () => encodeFields(fields, 10, { mode: 'zip' as 'raw' }),
      ErrorCodes.INVALID_OPTION,
    );
    rejectsWith(() => encodeFields(fields, 11, { mode: 'coded' }), ErrorCodes.FIELDS_INVALID);
  });

  void it('fields named like Object.prototype members are not given a precision', TIMEOUT, () => {
    const constructor = Float32Array.from({ length: 100 }, (_, i) => i);
    const encoded = encodeFields({ constructor }, 100, { mode: 'coded', fieldPrecision: {} });
    assert.equal(encoded.columns[0]?.codec, FieldCodec.RAW);
  });

  void it('a range too wide for the step: a clear error naming the field', TIMEOUT, () => {
    const time = Float64Array.of(0, 1e6);
    assert.throws(
      () => encodeFields({ time }, 2, { mode: 'coded', fieldPrecision: { time: 1e-6 } }),
      (error: unknown) => {
        assert.ok(error instanceof PointstreamError);
        assert.equal(error.code, ErrorCodes.INVALID_OPTION);
        assert.match(error.message, /field time: .*more than 2\^32 - 1/);
        return true;
      },
    );
  });
});

void describe('field columns: corrupt input', () => {
  const n = 3000;
  const ring = Uint16Array.from({ length: n }, (_, i) => i % 64);
  const delta = encodeDeltaRice(ring, n).bytes;
  const intensity = Float32Array.from({ length: n }, (_, i) => 50 + 40 * Math.sin(i / 30));
  const quant = encodeQuantRice(intensity, n, 0.01) as NonNullable<
    ReturnType<typeof encodeQuantRice>
  >;
  const ringColumn = (bytes: Uint8Array, type: FieldTypeName = 'u16'): FieldColumn =>
    col('ring', type, FieldCodec.DELTA_RICE, 0, bytes);
  const quantColumn = (bytes: Uint8Array): FieldColumn =>
    col('intensity', 'f32', FieldCodec.QUANT_RICE, quant.column.param, bytes);
  const patch = (bytes: Uint8Array, at: number, write: (v: DataView) => void): Uint8Array => {
    const copy = bytes.slice();
    write(new DataView(copy.buffer, at));
    return copy;
  };
  const CORRUPT = ErrorCodes.ENCODING_CORRUPT;

  void it('sizes: truncated, one word too many, too short for N, not whole words', TIMEOUT, () => {
    rejectsWith(
      () =>
        decodeColumn(
          delta.subarray(0, delta.length - 4),
          ringColumn(delta.subarray(0, delta.length - 4)),
          n,
        ),
      CORRUPT,
      'ring',
    );
    const longer = new Uint8Array(delta.length + 4);
    longer.set(delta);
    rejectsWith(() => decodeColumn(longer, ringColumn(longer), n), CORRUPT, 'ring');
    rejectsWith(
      () => decodeColumn(delta.subarray(0, 27), ringColumn(delta.subarray(0, 27)), n),
      CORRUPT,
    );
    rejectsWith(
      () => decodeColumn(delta.subarray(0, 10), ringColumn(delta.subarray(0, 10)), n),
      CORRUPT,
    );
  });

  void it('a small column declaring a huge count: rejected before allocating', TIMEOUT, () => {
    // 2^28 f64 values would be 2 GiB: a RangeError or an OOM if anything were allocated first.
    const huge = 2 ** 28;
    const fake = patch(delta, 0, (v) => v.setUint32(0, huge, true));
    rejectsWith(
      () => decodeColumn(fake, col('t', 'f64', FieldCodec.QUANT_RICE, 1, fake), huge),
      CORRUPT,
    );
    const { min, max } = codedColumnBytes(huge);
    assert.ok(min > 2 ** 25 && max < 2 ** 32, `${min} .. ${max}`);
    // And in a table: the column is checked against the payload's end too.
    const table: FieldTable = { pointsBytes: 0, columns: [ringColumn(delta)] };
    rejectsWith(() => decodeFields(delta.subarray(0, 100), table, n), CORRUPT, 'ring');
  });

  void it('header fields: count, layout, block, stride, reserved, origin, levels', TIMEOUT, () => {
    const bad: Array<[string, Uint8Array, FieldColumn | undefined]> = [
      ['count', patch(delta, 0, (v) => v.setUint32(0, n - 1, true)), undefined],
      ['layout', patch(delta, 4, (v) => v.setUint8(0, 2)), undefined],
      ['block', patch(delta, 5, (v) => v.setUint8(0, 16)), undefined],
      ['stride', patch(delta, 6, (v) => v.setUint16(0, 257, true)), undefined],
      ['reserved', patch(delta, 20, (v) => v.setUint32(0, 1, true)), undefined],
      ['delta origin', patch(delta, 8, (v) => v.setFloat64(0, 1, true)), undefined],
      ['delta levels', patch(delta, 16, (v) => v.setUint32(0, 3, true)), undefined],
    ];
    for (const [what, bytes] of bad) {
      assert.throws(
        () => decodeColumn(bytes, ringColumn(bytes), n),
        (e: unknown) => {
          assert.equal((e as PointstreamError).code, CORRUPT, what);
          return true;
        },
      );
    }
    const nanOrigin = patch(quant.bytes, 8, (v) => v.setFloat64(0, NaN, true));
    rejectsWith(() => decodeColumn(nanOrigin, quantColumn(nanOrigin), n), CORRUPT);
    const overflow = patch(quant.bytes, 8, (v) => v.setFloat64(0, 3.4028236e38, true));
    rejectsWith(() => decodeColumn(overflow, quantColumn(overflow), n), CORRUPT);
    const fewLevels = patch(quant.bytes, 16, (v) => v.setUint32(0, 3, true));
    rejectsWith(() => decodeColumn(fewLevels, quantColumn(fewLevels), n), CORRUPT);
    rejectsWith(
      () => decodeColumn(quant.bytes, { ...quantColumn(quant.bytes), param: -1 }, n),
      CORRUPT,
    );
    rejectsWith(
      () => decodeColumn(delta, { ...ringColumn(delta), codec: FieldCodec.QUANT_RICE }, n),
      CORRUPT,
    );
  });

  void it('values outside the type, bad parameters and stray bits', TIMEOUT, () => {
    // u16 values 0..63 fit u8; values up to 1000 do not.
    const wide = encodeDeltaRice(
      Uint16Array.from({ length: n }, (_, i) => (i * 7) % 1000),
      n,
    ).bytes;
    rejectsWith(() => decodeColumn(wide, ringColumn(wide, 'u8'), n), CORRUPT, 'ring');
    // k = 31 in the first block.
    const k31 = patch(delta, FIELD_COLUMN_HEADER_BYTES, (v) => v.setUint8(0, v.getUint8(0) | 31));
    rejectsWith(() => decodeColumn(k31, ringColumn(k31), n), CORRUPT);
    // A set bit after the last code.
    const last = delta.length - 1;
    const stray = patch(delta, last, (v) => v.setUint8(0, v.getUint8(0) | 0x80));
    rejectsWith(() => decodeColumn(stray, ringColumn(stray), n), CORRUPT);
    // An escape of 63 bits: 16 ones then 111111 right after k = 0.
    const escape = patch(delta, FIELD_COLUMN_HEADER_BYTES, (v) => v.setUint32(0, 0xffffffe0, true));
    rejectsWith(() => decodeColumn(escape, ringColumn(escape), n), CORRUPT);
  });

  void it(
    `mutated columns decode to N values or fail with the code (seed ${1802 + FUZZ_SEED})`,
    TIMEOUT,
    () => {
      const cases: Array<[Uint8Array, FieldColumn]> = [
        [delta, ringColumn(delta)],
        [quant.bytes, quantColumn(quant.bytes)],
      ];
      fc.assert(
        fc.property(
          fc.constantFrom(...cases),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
            minLength: 1,
            maxLength: 6,
          }),
          fc.integer({ min: -8, max: 8 }),
          ([bytes, column], edits, cut) => {
            const copy = bytes.slice(0, Math.max(0, bytes.length + Math.min(cut, 0) * 4));
            for (const [at, value] of edits) if (copy.length > 0) copy[at % copy.length] = value;
            const grown = cut > 0 ? new Uint8Array(copy.length + cut * 4) : copy;
            if (cut > 0) grown.set(copy);
            try {
              const out = decodeColumn(grown, { ...column, byteLength: grown.length }, n);
              assert.equal(out.length, n);
              for (const v of out) if (!Number.isFinite(v)) assert.fail('non-finite value');
            } catch (error) {
              assert.equal((error as PointstreamError).code, CORRUPT, String(error));
            }
          },
        ),
        { seed: 1802 + FUZZ_SEED, numRuns: 500 * FUZZ_RUNS },
      );
    },
  );
});

void describe("the simulated LiDAR's fields", () => {
  void it('intensity, ring and time: types, ranges, scan order, reused arrays', TIMEOUT, () => {
    const n = 64 * 500;
    const source = new LidarSceneSource(n);
    const points = source.next();
    const { intensity, ring, time } = source.fields as Record<string, FieldArray>;
    assert.ok(
      intensity instanceof Float32Array &&
        ring instanceof Uint16Array &&
        time instanceof Float64Array,
    );
    assert.deepEqual(Object.keys(source.fields ?? {}), ['intensity', 'ring', 'time']);
    let near = [0, 0];
    let far = [0, 0];
    for (let i = 0; i < n; i++) {
      assert.equal(ring[i], i % 64);
      const t = time[i] as number;
      assert.ok(t >= 0 && t < LIDAR_SWEEP_SECONDS);
      if (i > 0) assert.ok(t > (time[i - 1] as number), 'time rises along the scan');
      const v = intensity[i] as number;
      assert.ok(v >= 0 && v <= 255, `intensity ${v}`);
      const dx = (points[i * 3] as number) - -15;
      const dy = points[i * 3 + 1] as number;
      const range = Math.hypot(dx, dy);
      if (range < 5) near = [(near[0] as number) + v, (near[1] as number) + 1];
      else if (range > 20) far = [(far[0] as number) + v, (far[1] as number) + 1];
    }
    const nearMean = (near[0] as number) / (near[1] as number);
    const farMean = (far[0] as number) / (far[1] as number);
    assert.ok(
      nearMean > 2 * farMean,
      `intensity falls with range: ${nearMean} near, ${farMean} far`,
    );
    const first = intensity.slice();
    source.next();
    assert.equal(source.fields?.intensity, intensity, 'the same array, rewritten');
    assert.notDeepEqual(first, intensity, 'the scene moved');
  });

  void it('fields: false gives none and the same points', TIMEOUT, () => {
    const plain = new LidarSceneSource(2000, { fields: false });
    assert.deepEqual(plain.next(), new LidarSceneSource(2000).next());
    assert.equal(plain.fields, undefined);
  });
});
