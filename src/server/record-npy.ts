import type { FileHandle } from 'node:fs/promises';
import { FIELD_TYPES, fieldTypeOf } from '../wire/fields.js';
import type { FieldArray, PointFields } from '../wire/fields.js';
import { encodeStructuredNpyHeader } from '../wire/npy.js';

/**
 * A frame with fields as a structured `.npy` (docs/operations.md, "Recording"): one record per
 * point, x, y, z as `<f4` then each field in wire order, packed, as `numpy.save` writes an array
 * of dtype `[('x','<f4'),('y','<f4'),('z','<f4'),('intensity','<f4'),('ring','<u2'),...]`.
 * `numpy.load(f)['intensity']` then reads a column by name.
 */

/** Interleaving writes this many bytes at most before handing them to the disk (whole records). */
export const RECORD_SLICE_BYTES = 4 * 1024 * 1024;

/** One column of a record: where it starts in the record, its size, and its values' bytes. */
interface RecordColumn {
  readonly offset: number;
  readonly size: number;
  readonly bytes: DataView;
}

/** The structured dtype of a frame's records: `[name, numpy dtype]`, x, y, z first. */
export function recordDtypeOf(fields: PointFields): [name: string, dtype: string][] {
  const dtype: [string, string][] = [
    ['x', '<f4'],
    ['y', '<f4'],
    ['z', '<f4'],
  ];
  for (const [name, values] of Object.entries(fields)) {
    const type = fieldTypeOf(values);
    if (type === undefined) throw new TypeError(`field ${name} is not a field array`);
    dtype.push([name, FIELD_TYPES[type].numpy]);
  }
  return dtype;
}

/** Bytes of one record: 12 for x, y, z plus each field's size (packed, no padding: numpy's). */
export function recordBytesOf(fields: PointFields): number {
  let bytes = 12;
  for (const values of Object.values(fields)) bytes += values.BYTES_PER_ELEMENT;
  return bytes;
}

function columnsOf(points: Float32Array, fields: PointFields): RecordColumn[] {
  const bytesOf = (values: Float32Array | FieldArray): DataView =>
    new DataView(values.buffer, values.byteOffset, values.byteLength);
  const columns: RecordColumn[] = [{ offset: 0, size: 12, bytes: bytesOf(points) }];
  let offset = 12;
  for (const values of Object.values(fields)) {
    columns.push({ offset, size: values.BYTES_PER_ELEMENT, bytes: bytesOf(values) });
    offset += values.BYTES_PER_ELEMENT;
  }
  return columns;
}

/**
 * Writes records `[first, first + count)` into `out` (at least `count x recordBytes` bytes) in
 * one pass per column. Packed records put most values at unaligned offsets, where typed-array
 * views cannot reach: DataView integer loads and stores (bit-exact, NaN payloads too) copy them,
 * 6 times faster than byte copies here (1M points with intensity, ring, time: 9 ms instead of 55).
 */
function interleave(
  columns: readonly RecordColumn[],
  recordBytes: number,
  first: number,
  count: number,
  out: DataView,
): void {
  const r = recordBytes;
  for (const { offset, size, bytes: v } of columns) {
    let s = first * size;
    const end = s + count * size;
    let o = offset;
    switch (size) {
      case 1:
        for (; s < end; s++, o += r) out.setUint8(o, v.getUint8(s));
        break;
      case 2:
        for (; s < end; s += 2, o += r) out.setUint16(o, v.getUint16(s, true), true);
        break;
      case 4:
        for (; s < end; s += 4, o += r) out.setUint32(o, v.getUint32(s, true), true);
        break;
      case 8:
        for (; s < end; s += 8, o += r) {
          out.setUint32(o, v.getUint32(s, true), true);
          out.setUint32(o + 4, v.getUint32(s + 4, true), true);
        }
        break;
      case 12: // x, y, z
        for (; s < end; s += 12, o += r) {
          out.setUint32(o, v.getUint32(s, true), true);
          out.setUint32(o + 4, v.getUint32(s + 4, true), true);
          out.setUint32(o + 8, v.getUint32(s + 8, true), true);
        }
        break;
      default:
        throw new RangeError(`no field type is ${size} bytes`);
    }
  }
}

/** The whole structured `.npy` of a frame in memory (tests, small frames). */
export function structuredNpyOf(
  points: Float32Array,
  fields: PointFields,
  pointCount: number,
): Uint8Array {
  const header = encodeStructuredNpyHeader(pointCount, recordDtypeOf(fields));
  const recordBytes = recordBytesOf(fields);
  const out = new Uint8Array(header.length + pointCount * recordBytes);
  out.set(header, 0);
  const body = new DataView(out.buffer, header.length);
  interleave(columnsOf(points, fields), recordBytes, 0, pointCount, body);
  return out;
}

/**
 * Writes frames with fields as structured `.npy` files through one buffer of at most
 * {@link RECORD_SLICE_BYTES}, reused for every slice of every frame: the records of a 1M-point
 * frame (26 MB with intensity f32, ring u16, time f64) are never whole in memory, and the event
 * loop gets a turn between slices.
 */
export class StructuredNpyWriter {
  #scratch: Uint8Array | undefined;
  #view: DataView | undefined;

  /** Writes the `.npy` of `points` and `fields` to `handle`; resolves with the bytes written. */
  async write(
    handle: FileHandle,
    points: Float32Array,
    fields: PointFields,
    pointCount: number,
  ): Promise<number> {
    if (points.length !== pointCount * 3)
      throw new RangeError(`${points.length / 3} points for a frame of ${pointCount}`);
    for (const [name, values] of Object.entries(fields))
      if (values.length !== pointCount)
        throw new RangeError(`field ${name} has ${values.length} values for ${pointCount} points`);
    const header = encodeStructuredNpyHeader(pointCount, recordDtypeOf(fields));
    await handle.write(header);
    const recordBytes = recordBytesOf(fields);
    const columns = columnsOf(points, fields);
    const perSlice = Math.max(1, Math.floor(RECORD_SLICE_BYTES / recordBytes));
    const scratch = (this.#scratch ??= new Uint8Array(RECORD_SLICE_BYTES));
    const view = (this.#view ??= new DataView(scratch.buffer));
    let written = header.length;
    for (let first = 0; first < pointCount; first += perSlice) {
      const count = Math.min(perSlice, pointCount - first);
      interleave(columns, recordBytes, first, count, view);
      const bytes = count * recordBytes;
      // Resolves once the bytes are written: the scratch buffer is free again.
      for (let done = 0; done < bytes;)
        done += (await handle.write(scratch, done, bytes - done)).bytesWritten;
      written += bytes;
    }
    return written;
  }
}
