import { ErrorCodes, PointstreamError } from '../../errors.js';
import { FIELD_TYPES, FieldCodec, fieldTypeOf } from '../fields.js';
import type { FieldArray, FieldColumn, FieldTypeName } from '../fields.js';
import {
  ESC,
  MAX_BLOCK_WORDS,
  MAX_CODE_BITS,
  MAX_K,
  QRICE_BLOCK,
  endsCleanly,
  putBlock,
  riceParameter,
  strideWindows,
} from './rice.js';
import type { AxisStream } from './rice.js';

/**
 * Coded field columns (docs/encodings.md, "Field columns"): DELTA_RICE for integer fields and
 * QUANT_RICE for float ones. A coded column is a 24-byte header then a bit stream written
 * exactly like one axis of `qrice` (same block Rice coder): each value is an integer (the
 * field's own for integer fields, `round((v - origin) / step)` for float ones), predicted by the
 * value `stride` places earlier (a scanner's column: the ring of the same beam one azimuth step
 * earlier), the difference taken modulo 2^32 and zigzagged. Pure, browser-safe.
 */

/** Bytes of a coded column's header: `count u32 | layout u8 | block u8 | stride u16 | origin f64 | levels u32 | 0 u32`. */
export const FIELD_COLUMN_HEADER_BYTES = 24;
/** Layout version of a coded column; another value is rejected. */
export const FIELD_COLUMN_LAYOUT = 1;
/** Longest prediction stride a column may declare (the encoder tries 0 to this). */
export const FIELD_MAX_STRIDE = 256;
/** Largest integer of a QUANT_RICE column: steps beyond 2^32 - 1 levels are refused. */
export const FIELD_MAX_LEVELS = 0xffff_ffff;

/** Half an ulp of a float32 is at most |x| * 2^-24 (rounding the decoded f64 to float32). */
const F32_HALF_ULP = 2 ** -24;
const F32_OVERFLOW = 3.4028235677973366e38;

/** A coded column: its table entry (less name, type and size) and its bytes. */
export interface CodedColumn {
  readonly column: { readonly codec: FieldCodec; readonly param: number };
  readonly bytes: Uint8Array;
  readonly maxError: number;
}

/** An integer field as a DELTA_RICE column (lossless). */
export function encodeDeltaRice(values: FieldArray, pointCount: number): CodedColumn {
  if (FIELD_TYPES[typeOf(values)].float) throw new TypeError('delta-rice is for integer fields');
  // Int32Array.set converts natively: u32 wrap to the same bits, signed types sign-extend.
  const q = new Int32Array(pointCount);
  q.set(values.subarray(0, pointCount));
  return {
    column: { codec: FieldCodec.DELTA_RICE, param: 0 },
    bytes: encodeInts(q, pointCount, 0, 0),
    maxError: 0,
  };
}

/**
 * A float field as a QUANT_RICE column: `q = round((v - min) / step)`, the step the largest that
 * keeps |decoded - v| within `maxError` (half a step, plus the float rounding of decoding).
 * Undefined when the column has a NaN or an infinity, or when its type cannot resolve `maxError`
 * at its magnitudes (the caller sends it raw). Throws `PS_ERR_INVALID_OPTION` when the range
 * needs more than 2^32 - 1 steps.
 */
export function encodeQuantRice(
  values: FieldArray,
  pointCount: number,
  maxError: number,
  name = 'field',
): CodedColumn | undefined {
  const type = typeOf(values);
  if (!FIELD_TYPES[type].float) throw new TypeError('quant-rice is for float fields');
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < pointCount; i++) {
    const v = values[i] as number;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  if (pointCount === 0) min = max = 0;
  // Math.min/max carry a NaN through; an infinity shows as a bound.
  if (!Number.isFinite(min + max)) return undefined;
  const quant = stepFor(type, min, max, maxError);
  if (quant === undefined) return undefined;
  const { step, levels, bound } = quant;
  if (levels > FIELD_MAX_LEVELS) {
    const largest = (max - min) / FIELD_MAX_LEVELS / 2;
    throw new PointstreamError(
      ErrorCodes.INVALID_OPTION,
      `field ${name}: a max error of ${maxError} over its range ${min} .. ${max} needs ${levels} steps, more than 2^32 - 1; ask for ${largest.toPrecision(3)} or more, or leave it out of fieldPrecision to send it losslessly`,
      { details: { field: name } },
    );
  }
  const q = new Int32Array(pointCount);
  const inverse = 1 / step;
  for (let i = 0; i < pointCount; i++) {
    // Rounded half up, clamped so that f64 rounding never leaves [0, levels]; | 0 keeps the
    // low 32 bits (deltas modulo 2^32 do not care about the sign).
    q[i] = Math.min(((values[i] as number) - min) * inverse + 0.5, levels) | 0;
  }
  return {
    column: { codec: FieldCodec.QUANT_RICE, param: step },
    bytes: encodeInts(q, pointCount, min, levels),
    maxError: bound,
  };
}

/**
 * The step for a float column in [min, max]: the largest with `bound <= maxError`, where
 *
 *   bound = step * (1/2 + 2^-19 + h) + M * (h + 2^-52) + R * 2^-50
 *
 * M the largest magnitude, R = max - min and h = 2^-24 for f32 (rounding the decoded value to
 * float32), 0 for f64: half a step, and the f64 rounding of quantizing and of
 * `origin + q * step`. Undefined when the step would be within a few of the type's ulps (nothing
 * worth a loss is left) or the top level would leave the type: the caller sends the column raw.
 */
function stepFor(
  type: FieldTypeName,
  min: number,
  max: number,
  maxError: number,
): { step: number; levels: number; bound: number } | undefined {
  const magnitude = Math.max(Math.abs(min), Math.abs(max));
  const range = max - min;
  const h = type === 'f32' ? F32_HALF_ULP : 0;
  const perStep = 0.5 + 2 ** -19 + h;
  const fixed = magnitude * (h + 2 ** -52) + range * 2 ** -50;
  // (1 - 2^-40): room for the f64 rounding of this very computation.
  let step = ((maxError - fixed) / perStep) * (1 - 2 ** -40);
  const typeUlp = type === 'f32' ? 2 ** -23 : 2 ** -52;
  if (!(step > magnitude * 2 * typeUlp) || !(step >= Number.MIN_VALUE)) return undefined;
  // A step above the range buys nothing and could push origin + levels * step out of the type.
  if (step > range) step = range > 0 ? range : Math.min(step, 1);
  const levels = Math.ceil(range / step);
  // The decoder refuses a column whose top value leaves the type: so does the encoder (raw).
  const top = min + levels * step;
  if (!(Math.abs(top) < (type === 'f32' ? F32_OVERFLOW : Number.MAX_VALUE))) return undefined;
  return { step, levels, bound: step * perStep + fixed };
}

function typeOf(values: FieldArray): FieldTypeName {
  const type = fieldTypeOf(values);
  if (type === undefined) throw new TypeError('values must be a field array');
  return type;
}

/** A 24-byte header and the bit stream of `q[0 .. n)`. */
function encodeInts(q: Int32Array, n: number, origin: number, levels: number): Uint8Array {
  const stride = pickFieldStride(q, n);
  const s: AxisStream = {
    words: new Int32Array((n >>> 3) + MAX_BLOCK_WORDS * 2),
    acc: 0,
    nb: 0,
    pos: 0,
  };
  const z = new Int32Array(QRICE_BLOCK);
  for (let b = 0; b < n; b += QRICE_BLOCK) {
    const end = Math.min(n, b + QRICE_BLOCK);
    let sum = 0;
    for (let i = b, t = 0; i < end; i++, t++) {
      // The first `stride` values (all of them with stride 0) are predicted by 0.
      const p = stride !== 0 && i >= stride ? (q[i - stride] as number) : 0;
      const d = ((q[i] as number) - p) | 0;
      const zz = (d << 1) ^ (d >> 31);
      z[t] = zz;
      sum += zz >>> 0;
    }
    putBlock(s, z, 0, end - b, riceParameter(sum, end - b));
  }
  if (s.nb > 0) s.words[s.pos] = s.acc;
  const wordCount = s.pos + (s.nb > 0 ? 1 : 0);
  const bytes = new Uint8Array(FIELD_COLUMN_HEADER_BYTES + wordCount * 4);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, n, true);
  view.setUint8(4, FIELD_COLUMN_LAYOUT);
  view.setUint8(5, QRICE_BLOCK);
  view.setUint16(6, stride, true);
  view.setFloat64(8, origin, true);
  view.setUint32(16, levels, true);
  bytes.set(new Uint8Array(s.words.buffer, 0, wordCount * 4), FIELD_COLUMN_HEADER_BYTES);
  return bytes;
}

/**
 * The stride (0 = none, else 1..256) whose deltas have the fewest significant bits on up to
 * two windows of 512 values: a spinning LiDAR's ring repeats every column (stride 64 on the
 * scene), its intensity follows the same beam one column earlier, its time the previous point.
 */
function pickFieldStride(q: Int32Array, n: number): number {
  if (n < 2) return 0;
  const { window, starts } = strideWindows(n);
  let best = 0;
  let bestCost = Infinity;
  for (let s = 0; s <= FIELD_MAX_STRIDE && s < n; s++) {
    let cost = 0;
    for (const start of starts) {
      const end = Math.min(n, start + window);
      for (let i = start; i < end; i++) {
        const p = s !== 0 && i >= s ? (q[i - s] as number) : 0;
        const d = ((q[i] as number) - p) | 0;
        cost += 32 - Math.clz32((d << 1) ^ (d >> 31));
      }
    }
    if (cost < bestCost) {
      bestCost = cost;
      best = s;
    }
  }
  return best;
}

/** Fewest and most bytes a coded column of `n` values can have (1 to 54 bits a value). */
export function codedColumnBytes(n: number): { min: number; max: number } {
  const blocks = 5 * Math.ceil(n / QRICE_BLOCK);
  return {
    min: FIELD_COLUMN_HEADER_BYTES + Math.ceil((n + blocks) / 32) * 4,
    max: FIELD_COLUMN_HEADER_BYTES + Math.ceil((n * MAX_CODE_BITS + blocks) / 32) * 4,
  };
}

export function corruptField(field: string, message: string): PointstreamError {
  return new PointstreamError(ErrorCodes.ENCODING_CORRUPT, `field ${field}: ${message}`, {
    details: { field },
  });
}

/** Values per conversion into the output (a small, constant scratch). */
const CHUNK = 4096;

/**
 * One coded column into a new array of `n` values of its type. Checks the header and the
 * column's size against `n` before allocating; then rejects a parameter, escape or value out of
 * range, a stream that ends early or late, and set bits after its last code.
 */
export function decodeColumn(bytes: Uint8Array, column: FieldColumn, n: number): FieldArray {
  const name = column.name;
  const info = FIELD_TYPES[column.type];
  const quant = column.codec === FieldCodec.QUANT_RICE;
  if (quant !== info.float) {
    throw corruptField(name, `codec ${column.codec} does not fit type ${column.type}`);
  }
  const size = codedColumnBytes(n);
  if (
    bytes.length < size.min ||
    bytes.length > size.max ||
    (bytes.length - FIELD_COLUMN_HEADER_BYTES) % 4 !== 0
  ) {
    throw corruptField(name, `coded column of ${bytes.length} bytes cannot hold ${n} values`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, FIELD_COLUMN_HEADER_BYTES);
  const count = view.getUint32(0, true);
  const stride = view.getUint16(6, true);
  const origin = view.getFloat64(8, true);
  const levels = view.getUint32(16, true);
  if (count !== n) throw corruptField(name, `column declares ${count} values; the frame has ${n}`);
  if (view.getUint8(4) !== FIELD_COLUMN_LAYOUT || view.getUint8(5) !== QRICE_BLOCK) {
    throw corruptField(name, `unknown column layout ${view.getUint8(4)}/${view.getUint8(5)}`);
  }
  if (stride > FIELD_MAX_STRIDE) throw corruptField(name, `stride ${stride} above 256`);
  if (view.getUint32(20, true) !== 0) throw corruptField(name, 'non-zero reserved bytes');
  let lo: number;
  let hi: number;
  const signed = column.type === 'i8' || column.type === 'i16' || column.type === 'i32';
  if (quant) {
    if (!(column.param > 0) || !Number.isFinite(column.param)) {
      throw corruptField(name, `step ${column.param} is not a finite number above 0`);
    }
    // Every value decodes to at most origin + levels * step: checked once, in the type's range.
    const top = origin + levels * column.param;
    const limit = column.type === 'f32' ? F32_OVERFLOW : Number.MAX_VALUE;
    if (!Number.isFinite(origin) || !(Math.abs(top) < limit) || !(Math.abs(origin) < limit)) {
      throw corruptField(name, 'origin and step decode outside the type');
    }
    lo = 0;
    hi = levels;
  } else {
    if (origin !== 0 || levels !== 0) throw corruptField(name, 'delta-rice header fields not 0');
    const bits = info.bytes * 8;
    lo = signed ? -(2 ** (bits - 1)) : 0;
    hi = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  }
  const dataBytes = bytes.length - FIELD_COLUMN_HEADER_BYTES;
  // Aligned words, padded so that reads within one block never run off the end.
  const words = new Int32Array(dataBytes / 4 + MAX_BLOCK_WORDS + 2);
  new Uint8Array(words.buffer, 0, dataBytes).set(bytes.subarray(FIELD_COLUMN_HEADER_BYTES));
  const out = new info.array(n);
  const ints = new Int32Array(Math.min(CHUNK, n));
  const reals = quant ? new Float64Array(ints.length) : undefined;
  const flush = (len: number, at: number): void => {
    if (reals === undefined) {
      out.set(ints.subarray(0, len), at);
    } else {
      for (let t = 0; t < len; t++) reals[t] = origin + ((ints[t] as number) >>> 0) * column.param;
      // Float64 to Float32Array: rounded to nearest, as the bound assumes.
      out.set(reals.subarray(0, len), at);
    }
  };
  decodeStream(words, dataBytes * 8, n, stride, signed, lo, hi, ints, flush, name);
  return out;
}

/**
 * The qrice decoder's loop for one stream, into `ints` chunk by chunk. Kept inline here and in
 * `decodeQrice`: a shared per-block reader (rice.ts) and shared per-code helpers both measured
 * about 30% slower on qrice's decode (the server's hot path).
 */
function decodeStream(
  words: Int32Array,
  totalBits: number,
  n: number,
  stride: number,
  signed: boolean,
  lo: number,
  hi: number,
  ints: Int32Array,
  flush: (len: number, at: number) => void,
  name: string,
): void {
  const ring = new Int32Array(Math.max(stride, 1));
  let r = 0;
  let pos = 0;
  let t = 0;
  let at = 0;
  for (let b = 0; b < n; b += QRICE_BLOCK) {
    const end = Math.min(n, b + QRICE_BLOCK);
    let w = pos >>> 5;
    let o = pos & 31;
    let peek =
      o === 0
        ? (words[w] as number)
        : ((words[w] as number) >>> o) | ((words[w + 1] as number) << (32 - o));
    const k = peek & 31;
    if (k > MAX_K) throw corruptField(name, `block parameter ${k} above ${MAX_K}`);
    pos += 5;
    const mask = (1 << k) - 1;
    for (let i = b; i < end; i++) {
      w = pos >>> 5;
      o = pos & 31;
      peek = ((words[w] as number) >>> o) | (((words[w + 1] as number) << (31 - o)) << 1);
      const zeros = ~peek;
      const high = zeros === 0 ? 32 : 31 - Math.clz32(zeros & -zeros);
      let z: number;
      if (high < ESC) {
        const len = high + 1 + k;
        if (len <= 32) {
          z = (high << k) | ((peek >>> (high + 1)) & mask);
        } else {
          const a = pos + high + 1;
          w = a >>> 5;
          o = a & 31;
          peek =
            o === 0
              ? (words[w] as number)
              : ((words[w] as number) >>> o) | ((words[w + 1] as number) << (32 - o));
          z = (high << k) | (peek & mask);
        }
        pos += len;
      } else {
        const bits = (peek >>> ESC) & 63;
        if (bits > 32) throw corruptField(name, `escape of ${bits} bits`);
        const a = pos + ESC + 6;
        w = a >>> 5;
        o = a & 31;
        peek =
          o === 0
            ? (words[w] as number)
            : ((words[w] as number) >>> o) | ((words[w + 1] as number) << (32 - o));
        z = bits === 32 ? peek >>> 0 : peek & ((1 << bits) - 1);
        pos = a + bits;
      }
      const d = (z >>> 1) ^ -(z & 1);
      let sum: number;
      if (stride === 0) {
        sum = d | 0;
      } else {
        sum = i < stride ? d | 0 : ((ring[r] as number) + d) | 0;
        ring[r] = sum;
        if (++r === stride) r = 0;
      }
      const v = signed ? sum : sum >>> 0;
      if (v < lo || v > hi) {
        throw new PointstreamError(
          ErrorCodes.ENCODING_CORRUPT,
          `field ${name}: value ${i} decodes to ${v}, outside ${lo} .. ${hi}`,
          { details: { field: name, point: i } },
        );
      }
      ints[t++] = sum;
      if (t === ints.length) {
        flush(t, at);
        at += t;
        t = 0;
      }
    }
    if (pos > totalBits) throw corruptField(name, 'stream ends inside a block');
  }
  if (t > 0) flush(t, at);
  // The stream must end in its last word, with the unused bits zero.
  if (!endsCleanly(words, pos, totalBits)) {
    throw corruptField(name, 'bytes after the last value');
  }
}
