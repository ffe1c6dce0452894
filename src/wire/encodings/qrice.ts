import {
  QUANT_HEADER_BYTES,
  boundsOf,
  corrupt,
  quantizeToPrecision,
  readQuantHeader,
  writeQuantHeader,
} from './quantize.js';
import type { Quantization } from './quantize.js';
import { HOST_IS_LITTLE_ENDIAN } from '../points.js';
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
 * `qrice`: quantization to a step chosen from the requested precision, then per axis a delta
 * against the point `stride` places earlier in scan order (a spinning LiDAR's previous column:
 * the encoder picks the stride that predicts best on a sample), zigzag, and Rice codes whose
 * parameter adapts per block of 32 values. Pure TypeScript, no WASM, no set-up.
 *
 * Payload: the 56-byte quantization header (`param` = block size 32, `stride`), the largest
 * integer per axis (`u32 x3`), then the bit stream in little-endian u32 words, bits LSB first:
 * for x, then y, then z, for each block of 32 points (the last may be shorter): `k` in 5 bits,
 * then per value either `q` ones, a zero and the `k` low bits (q = value >>> k < 16), or 16 ones,
 * the bit length L in 6 bits and the value in L bits. Unused bits of the last word are zero.
 * See docs/encodings.md.
 */
export const QRICE_HEADER_BYTES = QUANT_HEADER_BYTES + 12;
/** Integers go up to 2^32 - 1: deltas are taken modulo 2^32. */
export const QRICE_MAX_LEVELS = 0xffff_ffff;
/** The longest stride the encoder tries (the header could carry up to 65535). */
const MAX_STRIDE_TRIED = 256;

/** Fewest bits a payload of `pointCount` points can have: one per value, five per block. */
function minBits(pointCount: number): number {
  return 3 * pointCount + 3 * 5 * Math.ceil(pointCount / QRICE_BLOCK);
}

/** Most bytes an encoder can produce for `pointCount` points (longer payloads are corrupt). */
export function qriceMaxBytes(pointCount: number): number {
  const bits = 3 * pointCount * MAX_CODE_BITS + 3 * 5 * Math.ceil(pointCount / QRICE_BLOCK);
  return QRICE_HEADER_BYTES + Math.ceil(bits / 32) * 4;
}

export function encodeQrice(
  points: Float32Array,
  pointCount: number,
  precision: number,
): { bytes: Uint8Array; maxError: number } {
  const quant = quantizeToPrecision(boundsOf(points, pointCount), precision, QRICE_MAX_LEVELS);
  const stride = pickStrideOfPoints(points, pointCount, quant);
  const { streams, bits } = encodeBits(points, pointCount, quant, stride);
  const bytes = new Uint8Array(QRICE_HEADER_BYTES + Math.ceil(bits / 32) * 4);
  writeQuantHeader(bytes, pointCount, QRICE_BLOCK, stride, quant);
  const view = new DataView(bytes.buffer, QUANT_HEADER_BYTES, 12);
  for (let a = 0; a < 3; a++) view.setUint32(a * 4, quant.levels[a] as number, true);
  // The header is 68 bytes and the buffer fresh: the word view is aligned.
  joinStreams(streams, new Int32Array(bytes.buffer, QRICE_HEADER_BYTES, Math.ceil(bits / 32)));
  if (!HOST_IS_LITTLE_ENDIAN) swap32(bytes.subarray(QRICE_HEADER_BYTES));
  return { bytes, maxError: quant.maxError };
}

/**
 * Integer of one coordinate: rounded half up, clamped so that f64 rounding never leaves
 * [0, levels]. Int32: V8 keeps int32 in registers, where u32 above 2^31 become doubles; the
 * integers are unsigned, and deltas modulo 2^32 do not care.
 */
function quantizeAxis(
  points: Float32Array,
  axis: number,
  from: number,
  to: number,
  offset: number,
  inverse: number,
  levels: number,
  out: Int32Array,
  at: number,
): void {
  for (let i = from, j = from * 3 + axis; i < to; i++, j += 3) {
    out[at + i - from] = Math.min(((points[j] as number) - offset) * inverse + 0.5, levels) | 0;
  }
}

/** Step inverses (0 on an axis whose step is 0: every integer is then 0). */
function inverses(quant: Quantization): [number, number, number] {
  const inv = (a: number): number => {
    const s = quant.scale[a] as number;
    return s === 0 ? 0 : 1 / s;
  };
  return [inv(0), inv(1), inv(2)];
}

/**
 * The stride (0 = no prediction, else 1..256) whose deltas have the fewest significant bits on
 * two windows of 512 points. Cheap (about 0.8 M operations) and finds a scanner's column length.
 * `q` holds the integers of x, then y, then z (each axis contiguous).
 */
export function pickStride(q: Int32Array, n: number): number {
  if (n < 2) return 0;
  const { window, starts } = strideWindows(n);
  return bestStride(
    n,
    starts.map((start) => ({ q, plane: n, lo: 0, start, end: Math.min(n, start + window) })),
  );
}

/** {@link pickStride} on the integers of `points`, quantizing only the windows it looks at. */
function pickStrideOfPoints(points: Float32Array, n: number, quant: Quantization): number {
  if (n < 2) return 0;
  const { window, starts } = strideWindows(n);
  const inv = inverses(quant);
  const samples = starts.map((start) => {
    const lo = Math.max(0, start - MAX_STRIDE_TRIED);
    const end = Math.min(n, start + window);
    const plane = end - lo;
    const q = new Int32Array(plane * 3);
    for (let a = 0; a < 3; a++) {
      const [o, l] = [quant.offset[a] as number, quant.levels[a] as number];
      quantizeAxis(points, a, lo, end, o, inv[a] as number, l, q, a * plane);
    }
    return { q, plane, lo, start, end };
  });
  return bestStride(n, samples);
}

/** A window of points [start, end) whose integers (rows lo.. of each axis plane) are in `q`. */
interface StrideSample {
  readonly q: Int32Array;
  readonly plane: number;
  readonly lo: number;
  readonly start: number;
  readonly end: number;
}

function bestStride(n: number, samples: readonly StrideSample[]): number {
  let best = 0;
  let bestCost = Infinity;
  for (let s = 0; s <= MAX_STRIDE_TRIED && s < n; s++) {
    let cost = 0;
    for (const { q, plane, lo, start, end } of samples) {
      const from = Math.max(start, s);
      for (let a = 0; a < 3; a++) {
        const base = a * plane - lo;
        for (let i = from; i < end; i++) {
          const d =
            s === 0
              ? (q[base + i] as number)
              : ((q[base + i] as number) - (q[base + i - s] as number)) | 0;
          cost += 32 - Math.clz32((d << 1) ^ (d >> 31));
        }
      }
      // Points before the stride are coded raw: count them too, so long strides pay for them.
      cost += (Math.max(start, s) - start) * 3 * 16;
    }
    if (cost < bestCost) {
      bestCost = cost;
      best = s;
    }
  }
  return best;
}

/** Ring of recent integers per axis for the prediction (a power of two above the longest stride). */
const HISTORY = 512;

/**
 * One bit stream per axis, written block by block while the points are read once, in order.
 * Buffers are kept between calls (grown as needed, dropped above {@link KEEP_WORDS}) so that a
 * stream of frames does not allocate and fault in megabytes per frame.
 */
const KEEP_WORDS = 1 << 20;
let kept: Int32Array[] = [];

/**
 * Quantizes, predicts, zigzags and Rice-codes each block of 32 points for x, y and z at once,
 * reading the interleaved points a single time; the three streams are then joined bit-exactly
 * (x, then y, then z), as the format wants. Returns the payload's words.
 */
function encodeBits(
  points: Float32Array,
  n: number,
  quant: Quantization,
  stride: number,
): { streams: AxisStream[]; bits: number } {
  const initial = (n >>> 2) + MAX_BLOCK_WORDS * 2;
  const streams = [0, 1, 2].map((a): AxisStream => {
    const keptWords = kept[a];
    const words =
      keptWords !== undefined && keptWords.length >= initial ? keptWords : new Int32Array(initial);
    return { words, acc: 0, nb: 0, pos: 0 };
  });
  const z = new Int32Array(QRICE_BLOCK * 3);
  const history = new Int32Array(HISTORY * 3);
  const hmask = HISTORY - 1;
  // Stride 0 predicts by 0: the history read is masked away. The first `stride` points read
  // slots not yet written (zero), so they are predicted by 0 too.
  const pmask = stride === 0 ? 0 : -1;
  const [ox, oy, oz] = quant.offset as unknown as [number, number, number];
  const [ix, iy, iz] = inverses(quant);
  const [lx, ly, lz] = quant.levels as unknown as [number, number, number];
  const X = 0;
  const Y = QRICE_BLOCK;
  const Z = 2 * QRICE_BLOCK;
  const HY = HISTORY;
  const HZ = 2 * HISTORY;
  for (let b = 0; b < n; b += QRICE_BLOCK) {
    const end = Math.min(n, b + QRICE_BLOCK);
    let sumX = 0;
    let sumY = 0;
    let sumZ = 0;
    for (let i = b, j = b * 3, t = 0; i < end; i++, j += 3, t++) {
      const h = i & hmask;
      const p = (i - stride) & hmask;
      const vx = Math.min(((points[j] as number) - ox) * ix + 0.5, lx) | 0;
      const vy = Math.min(((points[j + 1] as number) - oy) * iy + 0.5, ly) | 0;
      const vz = Math.min(((points[j + 2] as number) - oz) * iz + 0.5, lz) | 0;
      const dx = (vx - ((history[p] as number) & pmask)) | 0;
      const dy = (vy - ((history[HY + p] as number) & pmask)) | 0;
      const dz = (vz - ((history[HZ + p] as number) & pmask)) | 0;
      history[h] = vx;
      history[HY + h] = vy;
      history[HZ + h] = vz;
      const zx = (dx << 1) ^ (dx >> 31);
      const zy = (dy << 1) ^ (dy >> 31);
      const zz = (dz << 1) ^ (dz >> 31);
      z[X + t] = zx;
      z[Y + t] = zy;
      z[Z + t] = zz;
      sumX += zx >>> 0;
      sumY += zy >>> 0;
      sumZ += zz >>> 0;
    }
    const count = end - b;
    putBlock(streams[0] as AxisStream, z, X, count, riceParameter(sumX, count));
    putBlock(streams[1] as AxisStream, z, Y, count, riceParameter(sumY, count));
    putBlock(streams[2] as AxisStream, z, Z, count, riceParameter(sumZ, count));
  }
  let bits = 0;
  for (const s of streams) {
    if (s.nb > 0) s.words[s.pos] = s.acc;
    bits += s.pos * 32 + s.nb;
  }
  kept = streams.map((s) => s.words).filter((w) => w.length <= KEEP_WORDS);
  return { streams, bits };
}

/** Writes the three streams one after the other, bit-exactly, into `dst` (whole words). */
function joinStreams(streams: readonly AxisStream[], dst: Int32Array): void {
  let at = 0;
  for (const s of streams) {
    const used = s.pos + (s.nb > 0 ? 1 : 0);
    const src = s.words;
    const shift = at & 31;
    let w = at >>> 5;
    if (shift === 0) {
      dst.set(src.subarray(0, used), w);
    } else {
      // dst[w] already holds the previous stream's last `shift` bits.
      for (let i = 0; i < used; i++, w++) {
        const v = src[i] as number;
        dst[w] = (dst[w] as number) | (v << shift);
        if (w + 1 < dst.length) dst[w + 1] = v >>> (32 - shift);
      }
    }
    at += s.pos * 32 + s.nb;
  }
}

/**
 * Decodes into a new Float32Array of `pointCount * 3` values. Before allocating it, checks the
 * payload's length against the fewest and the most bits `pointCount` points can take; while
 * decoding, rejects a parameter, length or integer out of range and a stream that ends early,
 * late, or with stray bits. Memory: the output, a copy of the payload, and `stride` integers.
 */
export function decodeQrice(bytes: Uint8Array, pointCount: number): Float32Array {
  const header = readQuantHeader(bytes, pointCount, 0);
  if (header.param !== QRICE_BLOCK) {
    throw corrupt(`qrice block size ${header.param} is not ${QRICE_BLOCK}`);
  }
  if (bytes.length < QRICE_HEADER_BYTES) {
    throw corrupt(`qrice payload of ${bytes.length} bytes is shorter than its header`);
  }
  const dataBytes = bytes.length - QRICE_HEADER_BYTES;
  const needBits = pointCount === 0 ? 0 : minBits(pointCount);
  if (dataBytes % 4 !== 0 || dataBytes * 8 < needBits || bytes.length > qriceMaxBytes(pointCount)) {
    throw corrupt(`qrice stream of ${dataBytes} bytes cannot hold ${pointCount} points`, {
      dataBytes,
      pointCount,
    });
  }
  const headerView = new DataView(bytes.buffer, bytes.byteOffset + QUANT_HEADER_BYTES, 12);
  const levels = [0, 1, 2].map((a) => headerView.getUint32(a * 4, true));
  // Every value decodes to at most offset + levels * scale: checked once here, in float32's range.
  for (let a = 0; a < 3; a++) {
    const top = (header.offset[a] as number) + (levels[a] as number) * (header.scale[a] as number);
    if (!(Math.abs(top) < 3.4028235677973366e38)) {
      throw corrupt(`axis ${a} decodes outside float32's range`, { axis: a });
    }
  }
  // Aligned words, padded so that reads within one block never run off the end (the checks at
  // each block's end catch a stream that did).
  const wordCount = dataBytes / 4;
  const words = new Int32Array(wordCount + MAX_BLOCK_WORDS + 2);
  new Uint8Array(words.buffer, 0, dataBytes).set(bytes.subarray(QRICE_HEADER_BYTES));
  if (!HOST_IS_LITTLE_ENDIAN) swap32(new Uint8Array(words.buffer, 0, dataBytes));
  const totalBits = dataBytes * 8;
  const out = new Float32Array(pointCount * 3);
  const stride = header.stride;
  const ring = new Int32Array(stride);
  let pos = 0;
  for (let a = 0; a < 3; a++) {
    const offset = header.offset[a] as number;
    const scale = header.scale[a] as number;
    const top = levels[a] as number;
    let r = 0;
    for (let b = 0; b < pointCount; b += QRICE_BLOCK) {
      const end = Math.min(pointCount, b + QRICE_BLOCK);
      let w = pos >>> 5;
      let o = pos & 31;
      let peek =
        o === 0
          ? (words[w] as number)
          : ((words[w] as number) >>> o) | ((words[w + 1] as number) << (32 - o));
      const k = peek & 31;
      if (k > MAX_K) throw corrupt(`qrice block parameter ${k} above ${MAX_K}`);
      pos += 5;
      const mask = (1 << k) - 1;
      for (let i = b; i < end; i++) {
        w = pos >>> 5;
        o = pos & 31;
        // The next 32 bits; (x << (31 - o)) << 1 is 0 when o is 0, with no branch.
        peek = ((words[w] as number) >>> o) | (((words[w + 1] as number) << (31 - o)) << 1);
        const zeros = ~peek;
        const high = zeros === 0 ? 32 : 31 - Math.clz32(zeros & -zeros);
        let z: number;
        if (high < ESC) {
          const len = high + 1 + k;
          if (len <= 32) {
            z = (high << k) | ((peek >>> (high + 1)) & mask);
          } else {
            const at = pos + high + 1;
            w = at >>> 5;
            o = at & 31;
            peek =
              o === 0
                ? (words[w] as number)
                : ((words[w] as number) >>> o) | ((words[w + 1] as number) << (32 - o));
            z = (high << k) | (peek & mask);
          }
          pos += len;
        } else {
          const bits = (peek >>> ESC) & 63;
          if (bits > 32) throw corrupt(`qrice escape of ${bits} bits`);
          const at = pos + ESC + 6;
          w = at >>> 5;
          o = at & 31;
          peek =
            o === 0
              ? (words[w] as number)
              : ((words[w] as number) >>> o) | ((words[w + 1] as number) << (32 - o));
          z = bits === 32 ? peek >>> 0 : peek & ((1 << bits) - 1);
          pos = at + bits;
        }
        const d = (z >>> 1) ^ -(z & 1);
        let v: number;
        if (stride === 0) {
          v = d >>> 0;
        } else {
          const sum = i < stride ? d : ((ring[r] as number) + d) | 0;
          ring[r] = sum;
          if (++r === stride) r = 0;
          v = sum >>> 0;
        }
        if (v > top)
          throw corrupt(`axis ${a} value ${v} above its ${top} levels`, { axis: a, point: i });
        out[i * 3 + a] = offset + v * scale;
      }
      if (pos > totalBits) throw corrupt('qrice stream ends inside a block');
    }
  }
  // The stream must end in its last word, with the unused bits zero.
  if (!endsCleanly(words, pos, totalBits)) {
    throw corrupt('qrice stream has bytes after its last value');
  }
  return out;
}

function swap32(bytes: Uint8Array): void {
  for (let i = 0; i + 3 < bytes.length; i += 4) {
    const b0 = bytes[i] as number;
    const b1 = bytes[i + 1] as number;
    bytes[i] = bytes[i + 3] as number;
    bytes[i + 1] = bytes[i + 2] as number;
    bytes[i + 2] = b1;
    bytes[i + 3] = b0;
  }
}
