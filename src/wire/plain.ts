import { ErrorCodes, PointstreamError } from '../errors.js';
import {
  FIELD_LIMITS,
  FIELD_TYPES,
  FIELD_TYPE_NAMES,
  FieldCodec,
  NO_FIELDS,
  columnOffsets,
  isFieldName,
  payloadBytesOf,
  viewRawFields,
} from './fields.js';
import type { FieldColumn, FieldTable, FieldTypeName, PointFields } from './fields.js';
import { encodeNpyHeader, hasNpyMagic, parseNpyHeader, pointCountOfNpyHeader } from './npy.js';
import type { NpyHeader, NpyStructField } from './npy.js';
import { HOST_IS_LITTLE_ENDIAN, assertFinite, float32View } from './points.js';
import type { ReassemblyLimits } from './limits.js';

/** A frame of the plain form: one DataChannel message, raw `<f4` x, y, z or a whole `.npy` file. */
export interface PlainFrame {
  readonly format: 'npy' | 'raw';
  readonly pointCount: number;
  /** x, y, z interleaved; a view into the message when aligned (into `payload` with fields). */
  readonly points: Float32Array;
  /** Fields of a structured `.npy` (views into `payload`); {@link NO_FIELDS} otherwise. */
  readonly fields: PointFields;
  /** With fields: their table, all raw. */
  readonly fieldTable?: FieldTable | undefined;
  /**
   * With fields: a payload in the chunked form's layout (an (N, 3) `.npy` of x, y, z, then raw
   * columns), built by copying; `npy` is its points part.
   */
  readonly payload?: Uint8Array | undefined;
  readonly npy?: Uint8Array | undefined;
}

/**
 * Decodes one message of a channel whose protocol is empty. `seq` only labels errors. Throws a
 * {@link PointstreamError} with a stable code on anything that is not a valid frame.
 */
export function decodePlainFrame(
  message: Uint8Array,
  seq: number,
  limits: Pick<ReassemblyLimits, 'maxFrameBytes' | 'maxPointsPerFrame' | 'allowNonFinite'>,
): PlainFrame {
  if (message.length > limits.maxFrameBytes) {
    throw new PointstreamError(
      ErrorCodes.FRAME_TOO_LARGE,
      `${message.length} bytes exceed the limit of ${limits.maxFrameBytes}`,
      { details: { seq } },
    );
  }
  let format: PlainFrame['format'];
  let dataOffset: number;
  let pointCount: number;
  if (hasNpyMagic(message)) {
    format = 'npy';
    const header = parseNpyHeader(message);
    if (header.fields !== undefined) return structuredFrame(message, header, seq, limits);
    pointCount = pointCountOfNpyHeader(header);
    dataOffset = header.dataOffset;
    const expected = dataOffset + pointCount * 12;
    if (message.length !== expected) {
      throw new PointstreamError(
        message.length < expected ? ErrorCodes.NPY_TRUNCATED : ErrorCodes.FRAME_LENGTH_MISMATCH,
        `.npy of shape (${pointCount}, 3) needs ${expected} bytes; the message has ${message.length}`,
        { details: { seq } },
      );
    }
  } else {
    format = 'raw';
    if (message.length % 12 !== 0) {
      throw new PointstreamError(
        ErrorCodes.PLAIN_BAD_LENGTH,
        `raw frame of ${message.length} bytes is not a whole number of float32 x, y, z points (12 bytes each)`,
        { details: { seq } },
      );
    }
    dataOffset = 0;
    pointCount = message.length / 12;
  }
  if (pointCount > limits.maxPointsPerFrame) {
    throw new PointstreamError(
      ErrorCodes.FRAME_TOO_MANY_POINTS,
      `${pointCount} points exceed the limit of ${limits.maxPointsPerFrame}`,
      { details: { seq } },
    );
  }
  const points = float32View(message, dataOffset, pointCount * 3);
  if (!limits.allowNonFinite) assertFinite(points, seq);
  return { format, pointCount, points, fields: NO_FIELDS };
}

const FIELD_TYPE_BY_NUMPY = new Map<string, FieldTypeName>(
  FIELD_TYPE_NAMES.map((type) => [FIELD_TYPES[type].numpy, type]),
);

function unsupported(message: string, seq: number): PointstreamError {
  return new PointstreamError(ErrorCodes.NPY_UNSUPPORTED_DTYPE, message, { details: { seq } });
}

/** The field type of a structured `.npy` field's dtype (little-endian; `|` or none for bytes). */
function fieldTypeOfDtype(dtype: string): FieldTypeName | undefined {
  return FIELD_TYPE_BY_NUMPY.get(dtype) ?? FIELD_TYPE_BY_NUMPY.get(dtype.replace(/^[<=]/, '|'));
}

/**
 * A structured `.npy` message (`x`, `y`, `z` `<f4` first, then fields): checked whole before
 * anything is allocated, then copied apart into the chunked form's layout.
 */
function structuredFrame(
  message: Uint8Array,
  header: NpyHeader,
  seq: number,
  limits: Pick<ReassemblyLimits, 'maxPointsPerFrame' | 'allowNonFinite'>,
): PlainFrame {
  const records = header.fields as readonly NpyStructField[];
  const itemSize = header.itemSize as number;
  const expected = 'x, y, z as <f4 first, then fields of f4, f8, u1, u2, u4, i1, i2 or i4';
  if (
    records.length < 4 ||
    ['x', 'y', 'z'].some((name, i) => records[i]?.name !== name || records[i]?.dtype !== '<f4')
  ) {
    throw unsupported(`structured .npy dtype ${header.descr} is not supported: ${expected}`, seq);
  }
  if (header.fortranOrder || header.shape.length !== 1) {
    throw new PointstreamError(
      ErrorCodes.NPY_BAD_SHAPE,
      `structured .npy shape (${header.shape.join(', ')}) is not (N,)`,
      { details: { seq } },
    );
  }
  const pointCount = header.shape[0] as number;
  if (pointCount > limits.maxPointsPerFrame) {
    throw new PointstreamError(
      ErrorCodes.FRAME_TOO_MANY_POINTS,
      `${pointCount} points exceed the limit of ${limits.maxPointsPerFrame}`,
      { details: { seq } },
    );
  }
  const rest = records.slice(3);
  if (rest.length > FIELD_LIMITS.maxFields)
    throw unsupported(
      `structured .npy has ${rest.length} fields; at most ${FIELD_LIMITS.maxFields}`,
      seq,
    );
  const columns: FieldColumn[] = rest.map(({ name, dtype }) => {
    const type = fieldTypeOfDtype(dtype);
    if (type === undefined)
      throw unsupported(`structured .npy field ${name} has dtype ${dtype}: ${expected}`, seq);
    if (!isFieldName(name)) {
      throw new PointstreamError(
        ErrorCodes.FIELDS_INVALID,
        `structured .npy field name ${JSON.stringify(name)} is not 1-${FIELD_LIMITS.maxNameBytes} of A-Z a-z 0-9 _`,
        { details: { seq } },
      );
    }
    const byteLength = pointCount * FIELD_TYPES[type].bytes;
    return { name, type, codec: FieldCodec.RAW, param: 0, byteLength };
  });
  const expectedBytes = header.dataOffset + pointCount * itemSize;
  if (message.length !== expectedBytes) {
    throw new PointstreamError(
      message.length < expectedBytes ? ErrorCodes.NPY_TRUNCATED : ErrorCodes.FRAME_LENGTH_MISMATCH,
      `structured .npy of ${pointCount} records of ${itemSize} bytes needs ${expectedBytes} bytes; the message has ${message.length}`,
      { details: { seq } },
    );
  }
  if (!HOST_IS_LITTLE_ENDIAN) throw new Error('big-endian hosts are not supported');
  const npyHeader = encodeNpyHeader([pointCount, 3]);
  const table: FieldTable = { pointsBytes: npyHeader.length + pointCount * 12, columns };
  const payload = new Uint8Array(payloadBytesOf(table));
  payload.set(npyHeader, 0);
  // Byte copies, record by record (a value conversion could quieten signalling NaNs).
  const source = message.subarray(header.dataOffset);
  copyStrided(source, itemSize, 0, 12, payload.subarray(npyHeader.length));
  const offsets = columnOffsets(table);
  rest.forEach((record, i) => {
    copyStrided(source, itemSize, record.offset, record.size, payload.subarray(offsets[i]));
  });
  const points = float32View(payload, npyHeader.length, pointCount * 3);
  if (!limits.allowNonFinite) assertFinite(points, seq);
  return {
    format: 'npy',
    pointCount,
    points,
    fields: viewRawFields(payload, table, pointCount),
    fieldTable: table,
    payload,
    npy: payload.subarray(0, table.pointsBytes),
  };
}

/** Copies `size` bytes at `offset` of each `stride`-byte record of `source` into `target`, packed. */
function copyStrided(
  source: Uint8Array,
  stride: number,
  offset: number,
  size: number,
  target: Uint8Array,
): void {
  const count = stride === 0 ? 0 : Math.floor(source.length / stride);
  for (let i = 0, at = offset, to = 0; i < count; i++, at += stride, to += size) {
    for (let k = 0; k < size; k++) target[to + k] = source[at + k] as number;
  }
}
