import { ErrorCodes, PointstreamError } from '../errors.js';

/**
 * Chunk headers of the `pointstream/1` DataChannel protocol (docs/protocol.md). All integers are
 * little-endian. A frame travels as one START chunk followed by DATA chunks, in order, on one
 * channel; each chunk is one DataChannel message: header, then a slice of the frame's payload.
 */

/** The DataChannel `protocol` string of this format. */
export const PROTOCOL_V1 = 'pointstream/1';
export const WIRE_VERSION = 1;

export const ChunkType = { START: 1, DATA: 2 } as const;
export type ChunkType = (typeof ChunkType)[keyof typeof ChunkType];

/** `version u8 | type u8 | headerLength u16 | seq u32 | chunkIndex u32` */
export const DATA_HEADER_BYTES = 12;
/** DATA header + `payloadBytes u32 | pointCount u32 | crc32 u32 | dtype u8 | components u8 |
 * encoding u8 | flags u8 | captureTime f64 | chunkCount u32` */
export const START_HEADER_BYTES = 40;

export const DType = { FLOAT32: 1 } as const;
/** Payload encodings (docs/encodings.md): `.npy` float32, 16-bit quantized, quantized + Rice coded. */
export const Encoding = { NPY: 1, Q16: 2, QRICE: 3 } as const;
/** START header flags (byte 27); every other bit is reserved and refused. */
export const StartFlags = {
  /** A field table (docs/protocol.md, "Per-point fields") follows the 40 fixed bytes. */
  FIELDS: 0x01,
} as const;

/** What a START chunk says about its frame. */
export interface FrameMeta {
  /** Sender's sequence number, increasing per channel. */
  readonly seq: number;
  /** Total bytes of the payload (a complete `.npy` file, or encoded points) across all chunks. */
  readonly payloadBytes: number;
  readonly pointCount: number;
  /** CRC-32 (IEEE, as zlib) of the whole payload. */
  readonly crc32: number;
  /** Capture time in milliseconds since the Unix epoch, sender's clock. */
  readonly captureTime: number;
  /** Number of chunks, START included. */
  readonly chunkCount: number;
  readonly dtype: number;
  readonly components: number;
  readonly encoding: number;
  /**
   * The field table's bytes (flag {@link StartFlags.FIELDS}): when reading, a view into the
   * message, valid only as long as the message; undefined for a frame without fields.
   */
  readonly fieldTable?: Uint8Array | undefined;
}

export interface ChunkHeader {
  readonly type: ChunkType;
  readonly seq: number;
  readonly chunkIndex: number;
  /** Bytes of header; the payload slice starts here. */
  readonly headerBytes: number;
  /** Present on START chunks only. */
  readonly meta: FrameMeta | undefined;
}

const U32_MAX = 0xffff_ffff;

function checkU32(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > U32_MAX) {
    throw new RangeError(`${name} must be an integer in [0, 2^32); got ${value}`);
  }
}

/**
 * Writes a START header into `target` at offset 0 (with `meta.fieldTable`: flag and table after
 * the 40 fixed bytes) and returns the header length.
 */
export function writeStartHeader(target: Uint8Array, meta: FrameMeta): number {
  checkU32('seq', meta.seq);
  checkU32('payloadBytes', meta.payloadBytes);
  checkU32('pointCount', meta.pointCount);
  checkU32('crc32', meta.crc32);
  checkU32('chunkCount', meta.chunkCount);
  if (meta.chunkCount < 1) throw new RangeError('chunkCount must be at least 1');
  const table = meta.fieldTable;
  const headerBytes = START_HEADER_BYTES + (table?.length ?? 0);
  if (headerBytes > 0xffff) throw new RangeError('field table too large for a START header');
  if (target.length < headerBytes) throw new RangeError('target too small for a START header');
  const view = new DataView(target.buffer, target.byteOffset, START_HEADER_BYTES);
  view.setUint8(0, WIRE_VERSION);
  view.setUint8(1, ChunkType.START);
  view.setUint16(2, headerBytes, true);
  view.setUint32(4, meta.seq, true);
  view.setUint32(8, 0, true);
  view.setUint32(12, meta.payloadBytes, true);
  view.setUint32(16, meta.pointCount, true);
  view.setUint32(20, meta.crc32, true);
  view.setUint8(24, meta.dtype);
  view.setUint8(25, meta.components);
  view.setUint8(26, meta.encoding);
  view.setUint8(27, table === undefined ? 0 : StartFlags.FIELDS);
  view.setFloat64(28, meta.captureTime, true);
  view.setUint32(36, meta.chunkCount, true);
  if (table !== undefined) target.set(table, START_HEADER_BYTES);
  return headerBytes;
}

/** Writes a DATA header into `target` at offset 0 and returns the header length. */
export function writeDataHeader(target: Uint8Array, seq: number, chunkIndex: number): number {
  checkU32('seq', seq);
  checkU32('chunkIndex', chunkIndex);
  if (chunkIndex < 1) throw new RangeError('DATA chunks have index 1 or more');
  if (target.length < DATA_HEADER_BYTES) throw new RangeError('target too small for a DATA header');
  const view = new DataView(target.buffer, target.byteOffset, DATA_HEADER_BYTES);
  view.setUint8(0, WIRE_VERSION);
  view.setUint8(1, ChunkType.DATA);
  view.setUint16(2, DATA_HEADER_BYTES, true);
  view.setUint32(4, seq, true);
  view.setUint32(8, chunkIndex, true);
  return DATA_HEADER_BYTES;
}

/**
 * Reads a chunk header, checking every field that can be checked without frame state. Throws a
 * {@link PointstreamError} (`PS_ERR_CHUNK_*`) on a message that is not a valid chunk.
 */
export function readChunkHeader(message: Uint8Array): ChunkHeader {
  if (message.length < DATA_HEADER_BYTES) {
    throw new PointstreamError(
      ErrorCodes.CHUNK_TRUNCATED,
      `chunk of ${message.length} bytes is shorter than the ${DATA_HEADER_BYTES}-byte header`,
    );
  }
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const version = view.getUint8(0);
  if (version !== WIRE_VERSION) {
    throw new PointstreamError(
      ErrorCodes.CHUNK_BAD_VERSION,
      `chunk version ${version} is not ${WIRE_VERSION}`,
    );
  }
  const type = view.getUint8(1);
  const headerBytes = view.getUint16(2, true);
  const seq = view.getUint32(4, true);
  const chunkIndex = view.getUint32(8, true);
  if (type === ChunkType.DATA) {
    if (headerBytes !== DATA_HEADER_BYTES) {
      throw new PointstreamError(
        ErrorCodes.CHUNK_BAD_HEADER,
        `DATA header length ${headerBytes} is not 12`,
        {
          details: { seq },
        },
      );
    }
    if (chunkIndex === 0) {
      throw new PointstreamError(ErrorCodes.CHUNK_BAD_HEADER, 'DATA chunk with index 0', {
        details: { seq },
      });
    }
    return { type, seq, chunkIndex, headerBytes, meta: undefined };
  }
  if (type !== ChunkType.START) {
    throw new PointstreamError(ErrorCodes.CHUNK_BAD_TYPE, `unknown chunk type ${type}`);
  }
  // Byte 27 (flags) says whether a field table lengthens the header; a chunk too short to hold
  // it is refused below as truncated whatever it says.
  const flags = message.length > 27 ? view.getUint8(27) : 0;
  const withTable = flags === StartFlags.FIELDS;
  if (withTable ? headerBytes < START_HEADER_BYTES : headerBytes !== START_HEADER_BYTES) {
    throw new PointstreamError(
      ErrorCodes.CHUNK_BAD_HEADER,
      `START header length ${headerBytes} is ${withTable ? 'below' : 'not'} 40`,
      {
        details: { seq },
      },
    );
  }
  if (message.length < headerBytes) {
    throw new PointstreamError(
      ErrorCodes.CHUNK_TRUNCATED,
      `START chunk of ${message.length} bytes is shorter than its ${headerBytes}-byte header`,
      { details: { seq } },
    );
  }
  if (chunkIndex !== 0) {
    throw new PointstreamError(
      ErrorCodes.CHUNK_BAD_HEADER,
      `START chunk with index ${chunkIndex}`,
      {
        details: { seq },
      },
    );
  }
  if (flags !== 0 && !withTable) {
    throw new PointstreamError(
      ErrorCodes.CHUNK_BAD_HEADER,
      `START chunk with unknown flags 0x${flags.toString(16)}`,
      {
        details: { seq },
      },
    );
  }
  const meta: FrameMeta = {
    seq,
    payloadBytes: view.getUint32(12, true),
    pointCount: view.getUint32(16, true),
    crc32: view.getUint32(20, true),
    dtype: view.getUint8(24),
    components: view.getUint8(25),
    encoding: view.getUint8(26),
    captureTime: view.getFloat64(28, true),
    chunkCount: view.getUint32(36, true),
    // Checked by the reassembler (parseFieldTable): a bad table rejects one frame, not the session.
    ...(withTable ? { fieldTable: message.subarray(START_HEADER_BYTES, headerBytes) } : {}),
  };
  if (meta.chunkCount === 0) {
    throw new PointstreamError(ErrorCodes.CHUNK_BAD_HEADER, 'START chunk declares 0 chunks', {
      details: { seq },
    });
  }
  if (!Number.isFinite(meta.captureTime)) {
    throw new PointstreamError(
      ErrorCodes.CHUNK_BAD_HEADER,
      'START chunk has a non-finite capture time',
      {
        details: { seq },
      },
    );
  }
  return { type, seq, chunkIndex, headerBytes, meta };
}
