import {
  Encoding,
  DType,
  DATA_HEADER_BYTES,
  START_HEADER_BYTES,
  writeDataHeader,
  writeStartHeader,
} from './chunk.js';
import type { Checksum } from './crc32.js';
import type { EncodedPoints } from './encodings/index.js';
import { encodeNpyHeader } from './npy.js';

/**
 * A frame ready to be chunked: its payload is a complete `.npy` file held as a list of parts (the
 * npy header and the caller's point bytes), so that the points are never copied into a frame
 * buffer: each chunk copies its own slice straight from the parts.
 */
export interface OutgoingFrame {
  readonly seq: number;
  readonly captureTime: number;
  readonly pointCount: number;
  /** The payload's encoding ({@link Encoding}). */
  readonly encoding: number;
  readonly parts: readonly Uint8Array[];
  readonly payloadBytes: number;
  readonly crc32: number;
  readonly chunkCount: number;
  /** Largest message this frame's chunks may be, header included. */
  readonly maxMessageBytes: number;
}

/** The smallest message size that still leaves room for payload after the START header. */
export const MIN_MESSAGE_BYTES = START_HEADER_BYTES + 128;

export function chunkCountFor(payloadBytes: number, maxMessageBytes: number): number {
  const first = maxMessageBytes - START_HEADER_BYTES;
  if (payloadBytes <= first) return 1;
  return 1 + Math.ceil((payloadBytes - first) / (maxMessageBytes - DATA_HEADER_BYTES));
}

/**
 * Prepares `points` (x, y, z interleaved) as frame `seq`. `points` is referenced, not copied, so it
 * must not change until the frame has been sent.
 */
export function prepareFrame(
  points: Float32Array,
  seq: number,
  captureTime: number,
  maxMessageBytes: number,
  checksum: Checksum,
): OutgoingFrame {
  if (points.length % 3 !== 0)
    throw new RangeError(`points.length ${points.length} is not a multiple of 3`);
  checkMessageBytes(maxMessageBytes);
  const pointCount = points.length / 3;
  const header = encodeNpyHeader([pointCount, 3]);
  const body = new Uint8Array(points.buffer, points.byteOffset, points.byteLength);
  const payloadBytes = header.length + body.length;
  return {
    seq,
    captureTime,
    pointCount,
    encoding: Encoding.NPY,
    parts: [header, body],
    payloadBytes,
    // Guarded: zlib.crc32 of an empty view ignores its initial value.
    crc32: body.length > 0 ? checksum(body, checksum(header)) : checksum(header),
    chunkCount: chunkCountFor(payloadBytes, maxMessageBytes),
    maxMessageBytes,
  };
}

/** Prepares points already encoded (`encodePoints`) as frame `seq`; `encoded.bytes` is referenced. */
export function prepareEncodedFrame(
  encoded: EncodedPoints,
  seq: number,
  captureTime: number,
  maxMessageBytes: number,
  checksum: Checksum,
): OutgoingFrame {
  checkMessageBytes(maxMessageBytes);
  const payloadBytes = encoded.bytes.length;
  return {
    seq,
    captureTime,
    pointCount: encoded.pointCount,
    encoding: encoded.encoding,
    parts: [encoded.bytes],
    payloadBytes,
    crc32: checksum(encoded.bytes),
    chunkCount: chunkCountFor(payloadBytes, maxMessageBytes),
    maxMessageBytes,
  };
}

function checkMessageBytes(maxMessageBytes: number): void {
  if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < MIN_MESSAGE_BYTES) {
    throw new RangeError(
      `maxMessageBytes must be an integer >= ${MIN_MESSAGE_BYTES}; got ${maxMessageBytes}`,
    );
  }
}

/**
 * Writes chunk `index` of `frame` into `scratch` (at least `frame.maxMessageBytes` long) and returns
 * the message: a view of `scratch`, valid until the next call.
 */
export function writeChunk(frame: OutgoingFrame, index: number, scratch: Uint8Array): Uint8Array {
  if (!Number.isInteger(index) || index < 0 || index >= frame.chunkCount) {
    throw new RangeError(`chunk index ${index} outside [0, ${frame.chunkCount})`);
  }
  if (scratch.length < frame.maxMessageBytes)
    throw new RangeError('scratch buffer smaller than maxMessageBytes');
  let headerBytes: number;
  let start: number;
  if (index === 0) {
    headerBytes = writeStartHeader(scratch, {
      seq: frame.seq,
      payloadBytes: frame.payloadBytes,
      pointCount: frame.pointCount,
      crc32: frame.crc32,
      captureTime: frame.captureTime,
      chunkCount: frame.chunkCount,
      dtype: DType.FLOAT32,
      components: 3,
      encoding: frame.encoding,
    });
    start = 0;
  } else {
    headerBytes = writeDataHeader(scratch, frame.seq, index);
    start =
      frame.maxMessageBytes -
      START_HEADER_BYTES +
      (index - 1) * (frame.maxMessageBytes - DATA_HEADER_BYTES);
  }
  const end = Math.min(frame.payloadBytes, start + frame.maxMessageBytes - headerBytes);
  copyRange(frame.parts, start, end, scratch, headerBytes);
  return scratch.subarray(0, headerBytes + (end - start));
}

/** Copies bytes [start, end) of the concatenation of `parts` into `target` at `at`. */
function copyRange(
  parts: readonly Uint8Array[],
  start: number,
  end: number,
  target: Uint8Array,
  at: number,
): void {
  let partStart = 0;
  for (const part of parts) {
    const partEnd = partStart + part.length;
    if (partEnd > start && partStart < end) {
      const from = Math.max(start, partStart) - partStart;
      const to = Math.min(end, partEnd) - partStart;
      target.set(part.subarray(from, to), at);
      at += to - from;
    }
    partStart = partEnd;
    if (partStart >= end) break;
  }
}
