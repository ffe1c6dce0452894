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
import { alignColumn, encodeFieldTable, FieldCodec } from './fields.js';
import type { EncodedFields, FieldColumn } from './fields.js';
import { encodeNpyHeader } from './npy.js';

/**
 * A frame ready to be chunked: its payload is held as a list of parts (the npy header and the
 * caller's point bytes, or the encoded points; then, with fields, zero padding and each column),
 * so that nothing is copied into a frame buffer: each chunk copies its own slice from the parts.
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
  /** The START header's field table (docs/protocol.md, "Per-point fields"); none without fields. */
  readonly fieldTable?: Uint8Array | undefined;
}

/** The smallest message size that still leaves room for payload after the START header. */
export const MIN_MESSAGE_BYTES = START_HEADER_BYTES + 128;

/**
 * Chunks of a payload: the START chunk carries `maxMessageBytes - startHeaderBytes` bytes (40, or
 * 40 + the field table), each DATA chunk `maxMessageBytes - 12`.
 */
export function chunkCountFor(
  payloadBytes: number,
  maxMessageBytes: number,
  startHeaderBytes = START_HEADER_BYTES,
): number {
  const first = maxMessageBytes - startHeaderBytes;
  if (payloadBytes <= first) return 1;
  return 1 + Math.ceil((payloadBytes - first) / (maxMessageBytes - DATA_HEADER_BYTES));
}

/**
 * Prepares `points` (x, y, z interleaved) as frame `seq`, with `fields` (raw columns, from
 * `encodeFields`) after them. `points` and the columns are referenced, not copied, so they must
 * not change until the frame has been sent.
 */
export function prepareFrame(
  points: Float32Array,
  seq: number,
  captureTime: number,
  maxMessageBytes: number,
  checksum: Checksum,
  fields?: EncodedFields,
): OutgoingFrame {
  if (points.length % 3 !== 0)
    throw new RangeError(`points.length ${points.length} is not a multiple of 3`);
  checkMessageBytes(maxMessageBytes);
  const pointCount = points.length / 3;
  const header = encodeNpyHeader([pointCount, 3]);
  const body = new Uint8Array(points.buffer, points.byteOffset, points.byteLength);
  if (fields !== undefined) {
    for (const column of fields.columns) {
      if (column.codec !== FieldCodec.RAW)
        throw new RangeError(`field ${column.name}: .npy frames carry raw columns only`);
    }
  }
  return layOut(
    [header, body],
    { seq, captureTime, pointCount, encoding: Encoding.NPY, maxMessageBytes },
    checksum,
    fields,
    header.length,
  );
}

/**
 * Prepares points already encoded (`encodePoints`) as frame `seq`, with `encoded.fields` after
 * them; `encoded.bytes` and the columns are referenced.
 */
export function prepareEncodedFrame(
  encoded: EncodedPoints,
  seq: number,
  captureTime: number,
  maxMessageBytes: number,
  checksum: Checksum,
): OutgoingFrame {
  checkMessageBytes(maxMessageBytes);
  return layOut(
    [encoded.bytes],
    {
      seq,
      captureTime,
      pointCount: encoded.pointCount,
      encoding: encoded.encoding,
      maxMessageBytes,
    },
    checksum,
    encoded.fields,
    0,
  );
}

/** Zero bytes that pad columns to their multiple of 8 (shared, never written). */
const PADDING = new Uint8Array(8);

/**
 * Lays out a payload: the points part, then (with fields) each column at the next multiple of
 * 8, padding as views of {@link PADDING}. The CRC runs over the parts in order; the table is
 * encoded once. `mustFitStart`: bytes of the points part the START chunk must hold (the .npy
 * header).
 */
function layOut(
  pointParts: Uint8Array[],
  frame: Pick<OutgoingFrame, 'seq' | 'captureTime' | 'pointCount' | 'encoding' | 'maxMessageBytes'>,
  checksum: Checksum,
  fields: EncodedFields | undefined,
  mustFitStart: number,
): OutgoingFrame {
  const parts = pointParts;
  let payloadBytes = 0;
  for (const part of parts) payloadBytes += part.length;
  let fieldTable: Uint8Array | undefined;
  if (fields !== undefined && fields.columns.length > 0) {
    const pointsBytes = payloadBytes;
    const columns: FieldColumn[] = [];
    fields.columns.forEach((column, i) => {
      const bytes = fields.bytes[i];
      if (bytes === undefined || bytes.length !== column.byteLength)
        throw new RangeError(
          `field ${column.name}: ${bytes?.length} bytes for ${column.byteLength}`,
        );
      const offset = alignColumn(payloadBytes);
      if (offset > payloadBytes) parts.push(PADDING.subarray(0, offset - payloadBytes));
      parts.push(bytes);
      payloadBytes = offset + bytes.length;
      columns.push(column);
    });
    fieldTable = encodeFieldTable({ pointsBytes, columns }, frame.pointCount);
  }
  const startHeaderBytes = START_HEADER_BYTES + (fieldTable?.length ?? 0);
  if (frame.maxMessageBytes < startHeaderBytes + Math.max(mustFitStart, 1)) {
    throw new RangeError(
      `maxMessageBytes ${frame.maxMessageBytes} leaves no room after a ${startHeaderBytes}-byte START header`,
    );
  }
  let crc = 0;
  let first = true;
  for (const part of parts) {
    // Empty parts skipped: zlib.crc32 of an empty view ignores its initial value.
    if (part.length === 0 && !first) continue;
    crc = first ? checksum(part) : checksum(part, crc);
    first = false;
  }
  return {
    ...frame,
    parts,
    payloadBytes,
    crc32: crc,
    chunkCount: chunkCountFor(payloadBytes, frame.maxMessageBytes, startHeaderBytes),
    ...(fieldTable === undefined ? {} : { fieldTable }),
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
      fieldTable: frame.fieldTable,
    });
    start = 0;
  } else {
    headerBytes = writeDataHeader(scratch, frame.seq, index);
    start =
      frame.maxMessageBytes -
      START_HEADER_BYTES -
      (frame.fieldTable?.length ?? 0) +
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
