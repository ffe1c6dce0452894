import { FIELD_TYPES, NO_FIELDS, fieldTypeOf } from '../wire/fields.js';
import type { FieldArray, PointFields } from '../wire/fields.js';
import { indexOfNonFinite } from '../wire/points.js';

/**
 * Drops points with a NaN or infinite coordinate, as organised clouds from LiDAR drivers and depth
 * cameras hold (no return: NaN), and the same rows of every field. `send --drop-non-finite` and
 * the browser sender's `dropNonFinite` use it; no Node-only APIs.
 */
export class NonFiniteFilter {
  #scratch = new Float32Array(0);
  #kept = new Uint32Array(0);
  readonly #fieldScratch = new Map<string, FieldArray>();

  /**
   * `points` (and `fields`) themselves when every coordinate is finite (one branch-free pass, no
   * copy); else the finite points in order and the same rows of each field, in buffers this
   * filter reuses (the next call overwrites them). A point is dropped whole when any of x, y, z
   * is not finite; field values (a NaN intensity, say) do not drop a point.
   */
  apply(
    points: Float32Array,
    fields: PointFields = NO_FIELDS,
  ): { points: Float32Array; fields: PointFields; dropped: number } {
    const first = indexOfNonFinite(points);
    if (first < 0) return { points, fields, dropped: 0 };
    if (this.#scratch.length < points.length) this.#scratch = new Float32Array(points.length);
    const out = this.#scratch;
    const names = Object.keys(fields);
    const count = points.length / 3;
    if (names.length > 0 && this.#kept.length < count) this.#kept = new Uint32Array(count);
    const kept = this.#kept;
    const start = first - (first % 3);
    out.set(points.subarray(0, start));
    let n = start;
    let rows = 0;
    if (names.length > 0) for (; rows < start / 3; rows++) kept[rows] = rows;
    for (let i = start; i < points.length; i += 3) {
      const x = points[i] as number;
      const y = points[i + 1] as number;
      const z = points[i + 2] as number;
      // v - v is 0 for every finite v, NaN for NaN and the infinities.
      if (x - x === 0 && y - y === 0 && z - z === 0) {
        out[n] = x;
        out[n + 1] = y;
        out[n + 2] = z;
        n += 3;
        if (names.length > 0) kept[rows++] = i / 3;
      }
    }
    if (names.length === 0) return { points: out.subarray(0, n), fields, dropped: count - n / 3 };
    const filtered: Record<string, FieldArray> = {};
    for (const name of names) {
      const values = fields[name] as FieldArray;
      let scratch = this.#fieldScratch.get(name);
      if (
        scratch === undefined ||
        scratch.length < count ||
        fieldTypeOf(scratch) !== fieldTypeOf(values)
      ) {
        const type = fieldTypeOf(values) ?? 'f64';
        scratch = new FIELD_TYPES[type].array(count);
        this.#fieldScratch.set(name, scratch);
      }
      // Element copies within one type: the bits are kept (a NaN value stays that NaN).
      for (let r = 0; r < rows; r++) scratch[r] = values[kept[r] as number] as number;
      filtered[name] = scratch.subarray(0, rows);
    }
    return { points: out.subarray(0, n), fields: Object.freeze(filtered), dropped: count - rows };
  }
}
