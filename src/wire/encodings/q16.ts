import {
  QUANT_HEADER_BYTES,
  boundsOf,
  corrupt,
  dequantizePoints,
  quantizePoints,
  quantizeToLevels,
  readQuantHeader,
  writeQuantHeader,
} from './quantize.js';
import { HOST_IS_LITTLE_ENDIAN } from '../points.js';

/**
 * `q16`: the 56-byte quantization header, then one little-endian u16 per coordinate, x y z
 * interleaved (6 bytes per point). Each axis spans its own per-frame bounds in 65535 steps.
 */
export const Q16_LEVELS = 65535;
/** Header `param` byte of q16: the integer width in bits. */
const Q16_BITS = 16;

export function encodeQ16(
  points: Float32Array,
  pointCount: number,
): { bytes: Uint8Array; maxError: number } {
  const quant = quantizeToLevels(boundsOf(points, pointCount), Q16_LEVELS);
  const bytes = new Uint8Array(QUANT_HEADER_BYTES + pointCount * 6);
  writeQuantHeader(bytes, pointCount, Q16_BITS, 0, quant);
  // The header is 56 bytes and the buffer fresh, so the u16 view is aligned.
  const q = new Uint16Array(bytes.buffer, QUANT_HEADER_BYTES, pointCount * 3);
  quantizePoints(points, pointCount, quant, q);
  if (!HOST_IS_LITTLE_ENDIAN) swap16(bytes.subarray(QUANT_HEADER_BYTES));
  return { bytes, maxError: quant.maxError };
}

export function decodeQ16(bytes: Uint8Array, pointCount: number): Float32Array {
  const { offset, scale, quantized } = readQ16Payload(bytes, pointCount);
  const out = new Float32Array(pointCount * 3);
  dequantizePoints(quantized, pointCount, offset, scale, out);
  return out;
}

function swap16(bytes: Uint8Array): void {
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    const t = bytes[i] as number;
    bytes[i] = bytes[i + 1] as number;
    bytes[i + 1] = t;
  }
}

/**
 * Checks a q16 payload as {@link decodeQ16} does (length, header, width, stride) without decoding
 * it, for consumers that dequantize elsewhere (the live viewer does it on the GPU). `quantized`
 * is a view of `bytes` when aligned on a little-endian host, else a copy.
 */
export function readQ16Payload(
  bytes: Uint8Array,
  pointCount: number,
): { offset: Float64Array; scale: Float64Array; quantized: Uint16Array } {
  const header = readQuantHeader(bytes, pointCount, Q16_LEVELS);
  const expected = QUANT_HEADER_BYTES + pointCount * 6;
  if (bytes.length !== expected) {
    throw corrupt(
      `q16 payload of ${pointCount} points must be ${expected} bytes; got ${bytes.length}`,
      { expected, actual: bytes.length },
    );
  }
  if (header.param !== Q16_BITS || header.stride !== 0) {
    throw corrupt(`q16 header has width ${header.param} and stride ${header.stride}`);
  }
  const data = bytes.subarray(QUANT_HEADER_BYTES);
  let quantized: Uint16Array;
  if (HOST_IS_LITTLE_ENDIAN && data.byteOffset % 2 === 0) {
    quantized = new Uint16Array(data.buffer, data.byteOffset, pointCount * 3);
  } else {
    const copy = data.slice();
    if (!HOST_IS_LITTLE_ENDIAN) swap16(copy);
    quantized = new Uint16Array(copy.buffer, 0, pointCount * 3);
  }
  return { offset: header.offset, scale: header.scale, quantized };
}
