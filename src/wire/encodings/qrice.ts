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
export const QRICE_BLOCK = 32;
export const QRICE_HEADER_BYTES = QUANT_HEADER_BYTES + 12;
/** Integers go up to 2^32 - 1: deltas are taken modulo 2^32. */
export const QRICE_MAX_LEVELS = 0xffff_ffff;
/** The longest stride the encoder tries (the header could carry up to 65535). */
const MAX_STRIDE_TRIED = 256;
/** Unary prefixes of this length mark an escape: value stored with its bit length. */
const ESC = 16;
const MAX_K = 24;
/** Longest code: escape prefix, 6-bit length, 32-bit value. */
const MAX_CODE_BITS = ESC + 6 + 32;
/** Worst-case words one block can take, with its 5-bit k. */
const MAX_BLOCK_WORDS = Math.ceil((QRICE_BLOCK * MAX_CODE_BITS + 5) / 32) + 1;

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
  const q = quantizePlanar(points, pointCount, quant);
  const stride = pickStride(q, pointCount);
  const words = encodeBits(q, pointCount, stride);
  const bytes = new Uint8Array(QRICE_HEADER_BYTES + words.length * 4);
  writeQuantHeader(bytes, pointCount, QRICE_BLOCK, stride, quant);
  const view = new DataView(bytes.buffer, QUANT_HEADER_BYTES, 12);
  for (let a = 0; a < 3; a++) view.setUint32(a * 4, quant.levels[a] as number, true);
  const data = new Uint8Array(words.buffer, words.byteOffset, words.length * 4);
  bytes.set(data, QRICE_HEADER_BYTES);
  if (!HOST_IS_LITTLE_ENDIAN) swap32(bytes.subarray(QRICE_HEADER_BYTES));
  return { bytes, maxError: quant.maxError };
}

/** x integers, then y, then z: each axis contiguous, for the delta and the stride search. */
function quantizePlanar(points: Float32Array, n: number, quant: Quantization): Int32Array {
  // Int32Array: V8 keeps int32 loads in registers, where u32 loads above 2^31 become doubles.
  // The integers are unsigned; deltas modulo 2^32 do not care.
  const q = new Int32Array(n * 3);
  const [ox, oy, oz] = quant.offset as unknown as [number, number, number];
  const [sx, sy, sz] = quant.scale as unknown as [number, number, number];
  const [lx, ly, lz] = quant.levels as unknown as [number, number, number];
  const ix = sx === 0 ? 0 : 1 / sx;
  const iy = sy === 0 ? 0 : 1 / sy;
  const iz = sz === 0 ? 0 : 1 / sz;
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    // Rounded half up, clamped so that f64 rounding never leaves [0, levels].
    q[i] = Math.min(((points[j] as number) - ox) * ix + 0.5, lx) >>> 0;
    q[n + i] = Math.min(((points[j + 1] as number) - oy) * iy + 0.5, ly) >>> 0;
    q[2 * n + i] = Math.min(((points[j + 2] as number) - oz) * iz + 0.5, lz) >>> 0;
  }
  return q;
}

/**
 * The stride (0 = no prediction, else 1..256) whose deltas have the fewest significant bits on
 * two windows of 512 points. Cheap (about 0.8 M operations) and finds a scanner's column length.
 */
export function pickStride(q: Int32Array, n: number): number {
  if (n < 2) return 0;
  const window = Math.min(512, n);
  const starts = n >= 4 * window ? [n >>> 2, n >>> 1] : [0];
  let best = 0;
  let bestCost = Infinity;
  for (let s = 0; s <= MAX_STRIDE_TRIED && s < n; s++) {
    let cost = 0;
    for (const start of starts) {
      const from = Math.max(start, s);
      const to = Math.min(n, start + window);
      for (let a = 0; a < 3; a++) {
        const base = a * n;
        for (let i = from; i < to; i++) {
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

function encodeBits(q: Int32Array, n: number, stride: number): Int32Array {
  // 4 bytes per point: LiDAR frames take 1-2; the buffer grows when a frame needs more.
  let out = new Int32Array(n + MAX_BLOCK_WORDS * 2);
  let pos = 0;
  let acc = 0;
  let nb = 0;
  const z = new Int32Array(QRICE_BLOCK);
  for (let a = 0; a < 3; a++) {
    const base = a * n;
    for (let b = 0; b < n; b += QRICE_BLOCK) {
      if (pos + MAX_BLOCK_WORDS > out.length) {
        const grown = new Int32Array(out.length * 2);
        grown.set(out);
        out = grown;
      }
      const end = Math.min(n, b + QRICE_BLOCK);
      const count = end - b;
      let sum = 0;
      for (let i = b; i < end; i++) {
        const v = q[base + i] as number;
        const d = stride === 0 || i < stride ? v : (v - (q[base + i - stride] as number)) | 0;
        const zz = (d << 1) ^ (d >> 31);
        z[i - b] = zz;
        sum += zz >>> 0;
      }
      // LOCO-I's rule: the smallest k with count * 2^k >= sum.
      let k = 0;
      while (k < MAX_K && count * (1 << k) < sum) k++;
      // put(k, 5)
      acc |= k << nb;
      nb += 5;
      if (nb >= 32) {
        out[pos++] = acc;
        nb -= 32;
        acc = nb === 0 ? 0 : k >>> (5 - nb);
      }
      const mask = (1 << k) - 1;
      for (let j = 0; j < count; j++) {
        const v = z[j] as number;
        const high = v >>> k;
        if (high < ESC) {
          const len = high + 1 + k;
          if (len <= 32) {
            const code = ((1 << high) - 1) | ((v & mask) << (high + 1));
            acc |= code << nb;
            nb += len;
            if (nb >= 32) {
              out[pos++] = acc;
              nb -= 32;
              acc = nb === 0 ? 0 : code >>> (len - nb);
            }
          } else {
            const unary = (1 << high) - 1;
            acc |= unary << nb;
            nb += high + 1;
            if (nb >= 32) {
              out[pos++] = acc;
              nb -= 32;
              acc = nb === 0 ? 0 : unary >>> (high + 1 - nb);
            }
            const low = v & mask;
            acc |= low << nb;
            nb += k;
            if (nb >= 32) {
              out[pos++] = acc;
              nb -= 32;
              acc = nb === 0 ? 0 : low >>> (k - nb);
            }
          }
        } else {
          const bits = 32 - Math.clz32(v);
          const prefix = ((1 << ESC) - 1) | (bits << ESC);
          acc |= prefix << nb;
          nb += ESC + 6;
          if (nb >= 32) {
            out[pos++] = acc;
            nb -= 32;
            acc = nb === 0 ? 0 : prefix >>> (ESC + 6 - nb);
          }
          acc |= v << nb;
          nb += bits;
          if (nb >= 32) {
            out[pos++] = acc;
            nb -= 32;
            acc = nb === 0 ? 0 : v >>> (bits - nb);
          }
        }
      }
    }
  }
  if (nb > 0) out[pos++] = acc;
  return out.subarray(0, pos);
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
        peek =
          o === 0
            ? (words[w] as number)
            : ((words[w] as number) >>> o) | ((words[w + 1] as number) << (32 - o));
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
  if (pos <= totalBits - 32 || (pos & 31 && (words[pos >>> 5] as number) >>> (pos & 31) !== 0)) {
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
