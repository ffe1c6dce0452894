/**
 * The per-point field fixtures of test/fixtures/fields (make_fixtures.py): their manifest and the
 * arrays the script wrote as what a reader (and a round trip) must give back, read with the
 * `.npy` header parser alone (independent of the point file readers under test).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIELD_TYPES, fieldTypeOf } from '../../src/wire/fields.js';
import type { FieldArray, FieldTypeName, PointFields } from '../../src/wire/fields.js';
import { parseNpyHeader } from '../../src/wire/npy.js';

export const FIELD_FIXTURES_DIR = fileURLToPath(new URL('../fixtures/fields/', import.meta.url));

export interface FieldFixture {
  /** File name in {@link FIELD_FIXTURES_DIR}. */
  readonly file: string;
  readonly points: number;
  /** The fields a reader gives, in order, by the name they travel under, with NumPy's dtype. */
  readonly fields: readonly { readonly name: string; readonly dtype: string }[];
  /** The `send` flags the file needs (`--fields ...`, `--drop-non-finite`). */
  readonly args: readonly string[];
  readonly renamed: readonly (readonly [string, string])[];
  readonly skipped: readonly string[];
  /** The file holds points with a NaN coordinate. */
  readonly nonFinite: boolean;
  /** A `--field-precision` to try with q16/qrice, by float field. */
  readonly fieldPrecision: Readonly<Record<string, number>>;
}

export const FIELD_FIXTURES: readonly FieldFixture[] = (
  JSON.parse(readFileSync(join(FIELD_FIXTURES_DIR, 'manifest.json'), 'utf8')) as {
    fixtures: FieldFixture[];
  }
).fixtures;

const TYPE_BY_NUMPY = new Map<string, FieldTypeName>(
  (Object.keys(FIELD_TYPES) as FieldTypeName[]).map((type) => [FIELD_TYPES[type].numpy, type]),
);

/** `expected/<file>/<name>.npy`: the raw little-endian bytes and NumPy's dtype string. */
export function expectedBytes(file: string, name: string): { bytes: Uint8Array; descr: string } {
  const bytes = new Uint8Array(
    readFileSync(join(FIELD_FIXTURES_DIR, 'expected', file, `${name}.npy`)),
  );
  const header = parseNpyHeader(bytes);
  return { bytes: bytes.slice(header.dataOffset), descr: header.descr };
}

/** The expected x, y, z (float32) of a fixture. */
export function expectedPoints(file: string): Float32Array {
  const { bytes } = expectedBytes(file, 'points');
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** The expected fields of a fixture, as typed arrays by name, in order. */
export function expectedFields(fixture: FieldFixture): PointFields {
  const fields: Record<string, FieldArray> = {};
  for (const { name, dtype } of fixture.fields) {
    const { bytes, descr } = expectedBytes(fixture.file, name);
    const type = TYPE_BY_NUMPY.get(descr);
    assert.ok(type !== undefined && descr === dtype, `${fixture.file}.${name}: dtype ${descr}`);
    const info = FIELD_TYPES[type];
    fields[name] = new info.array(
      bytes.buffer as ArrayBuffer,
      bytes.byteOffset,
      bytes.byteLength / info.bytes,
    );
  }
  return fields;
}

/** The `send --fields` names a fixture needs, if any. */
export function fieldNamesOf(fixture: FieldFixture): string[] | undefined {
  const at = fixture.args.indexOf('--fields');
  return at < 0 ? undefined : (fixture.args[at + 1] as string).split(',');
}

/** Bytes of a typed array (a copy). */
export const bytesOf = (values: FieldArray | Float32Array): Uint8Array =>
  new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice();

/** The rows of a fixture whose x, y, z are all finite (what --drop-non-finite keeps). */
export function finiteRows(points: Float32Array): number[] {
  const rows: number[] = [];
  for (let r = 0; r < points.length / 3; r++)
    if ([0, 1, 2].every((a) => Number.isFinite(points[r * 3 + a]))) rows.push(r);
  return rows;
}

/** `values` at `rows`, same type. */
export function pick<T extends FieldArray | Float32Array>(
  values: T,
  rows: readonly number[],
  width = 1,
): T {
  const type = fieldTypeOf(values) ?? 'f32';
  const out = new FIELD_TYPES[type].array(rows.length * width) as T;
  rows.forEach((r, i) => {
    for (let k = 0; k < width; k++) out[i * width + k] = values[r * width + k] as number;
  });
  return out;
}

/**
 * Asserts that `actual` holds `expected`'s fields: raw ones bit for bit; float fields named in
 * `precision` within that bound (plus float32 rounding of the bound itself).
 */
export function assertFieldsEqual(
  actual: PointFields,
  expected: PointFields,
  what: string,
  precision: Readonly<Record<string, number>> = {},
): void {
  assert.deepEqual(Object.keys(actual), Object.keys(expected), `${what}: field names in order`);
  for (const [name, values] of Object.entries(expected)) {
    const got = actual[name] as FieldArray;
    assert.equal(fieldTypeOf(got), fieldTypeOf(values), `${what}.${name}: type`);
    const bound = precision[name];
    if (bound === undefined) {
      assert.deepEqual(bytesOf(got), bytesOf(values), `${what}.${name}: every value, exactly`);
      continue;
    }
    assert.equal(got.length, values.length, `${what}.${name}: length`);
    // The bound, plus the rounding of the decoded value to its type.
    const epsilon = fieldTypeOf(values) === 'f32' ? 2 ** -23 : 2 ** -52;
    for (let i = 0; i < values.length; i++) {
      const error = Math.abs((got[i] as number) - (values[i] as number));
      const slack = bound + epsilon * Math.abs(values[i] as number);
      assert.ok(
        error <= slack || (Number.isNaN(got[i]) && Number.isNaN(values[i])),
        `${what}.${name}[${i}]: ${got[i]} vs ${values[i]}, error ${error} > ${bound}`,
      );
    }
  }
}
