import { ErrorCodes, PointstreamError } from '../errors.js';
import { HOST_IS_LITTLE_ENDIAN } from './points.js';

/**
 * Per-point fields (attributes): named columns that travel with a frame's x, y, z, such as a
 * LiDAR's intensity, ring and time or a camera's colour. Pure: the field table of the START
 * chunk (docs/protocol.md, "Per-point fields"), the payload layout and the checks a receiver
 * makes before it allocates anything. Columns are stored one after another (not interleaved) so
 * that a receiver can hand out every column as a typed array over the payload, without copies.
 */

/** Field types by wire id (never reused). */
export const FieldTypeId = {
  f32: 1,
  u8: 2,
  u16: 3,
  u32: 4,
  f64: 5,
  i8: 6,
  i16: 7,
  i32: 8,
} as const;
export type FieldTypeName = keyof typeof FieldTypeId;
export const FIELD_TYPE_NAMES = Object.keys(FieldTypeId) as readonly FieldTypeName[];

/** A field's values: one per point. */
export type FieldArray =
  | Float32Array
  | Float64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | Int8Array
  | Int16Array
  | Int32Array;

/** A frame's fields by name, in their wire order (the object's key order). */
export type PointFields = Readonly<Record<string, FieldArray>>;

/** The fields of a frame that has none; frozen, shared. */
export const NO_FIELDS: PointFields = Object.freeze({});

/** A frame's points with their fields. */
export interface PointCloud {
  /** x, y, z interleaved, float32. */
  readonly points: Float32Array;
  /** Per-point fields; {@link NO_FIELDS} when there are none. */
  readonly fields: PointFields;
}

interface FieldTypeInfo {
  readonly id: number;
  readonly bytes: number;
  /** NumPy's dtype string (little-endian). */
  readonly numpy: string;
  readonly float: boolean;
  readonly array: { new (buffer: ArrayBuffer, byteOffset: number, length: number): FieldArray } & {
    new (length: number): FieldArray;
  };
}

export const FIELD_TYPES: Readonly<Record<FieldTypeName, FieldTypeInfo>> = {
  f32: { id: 1, bytes: 4, numpy: '<f4', float: true, array: Float32Array },
  u8: { id: 2, bytes: 1, numpy: '|u1', float: false, array: Uint8Array },
  u16: { id: 3, bytes: 2, numpy: '<u2', float: false, array: Uint16Array },
  u32: { id: 4, bytes: 4, numpy: '<u4', float: false, array: Uint32Array },
  f64: { id: 5, bytes: 8, numpy: '<f8', float: true, array: Float64Array },
  i8: { id: 6, bytes: 1, numpy: '|i1', float: false, array: Int8Array },
  i16: { id: 7, bytes: 2, numpy: '<i2', float: false, array: Int16Array },
  i32: { id: 8, bytes: 4, numpy: '<i4', float: false, array: Int32Array },
};

const TYPE_BY_ID = new Map<number, FieldTypeName>(
  FIELD_TYPE_NAMES.map((name) => [FIELD_TYPES[name].id, name]),
);

/** The type of a field array, or undefined for anything else (a DataView, a Uint8ClampedArray...). */
export function fieldTypeOf(values: unknown): FieldTypeName | undefined {
  if (values instanceof Float32Array) return 'f32';
  if (values instanceof Float64Array) return 'f64';
  if (values instanceof Uint8Array && !(values instanceof Uint8ClampedArray)) {
    // Node's Buffer is a Uint8Array: accepted as u8.
    return 'u8';
  }
  if (values instanceof Uint16Array) return 'u16';
  if (values instanceof Uint32Array) return 'u32';
  if (values instanceof Int8Array) return 'i8';
  if (values instanceof Int16Array) return 'i16';
  if (values instanceof Int32Array) return 'i32';
  return undefined;
}

/** How a column's bytes encode its values (docs/encodings.md, "Field columns"). */
export const FieldCodec = {
  /** The values as they are, little-endian: `pointCount * size` bytes. Lossless. */
  RAW: 0,
  /** Integer fields: deltas from the value a stride back (in the column), zigzag and Rice coded. Lossless. */
  DELTA_RICE: 1,
  /**
   * Float fields: quantized to the step in the table's `param` (|error| <= step / 2), then as
   * DELTA_RICE.
   */
  QUANT_RICE: 2,
} as const;
export type FieldCodec = (typeof FieldCodec)[keyof typeof FieldCodec];

/** One column as the field table describes it. */
export interface FieldColumn {
  readonly name: string;
  readonly type: FieldTypeName;
  readonly codec: FieldCodec;
  /** The codec's parameter: QUANT_RICE's step; 0 for the others. */
  readonly param: number;
  /** Bytes of the column in the payload. */
  readonly byteLength: number;
}

/** A START chunk's field table. */
export interface FieldTable {
  /** Bytes at the start of the payload that hold x, y, z (the payload as it is without fields). */
  readonly pointsBytes: number;
  readonly columns: readonly FieldColumn[];
}

/** Limits on field tables, checked before anything is allocated. */
export const FIELD_LIMITS = {
  /** Fields per frame, at most. */
  maxFields: 32,
  /** Bytes of a field's name, at most. */
  maxNameBytes: 64,
} as const;

/** Field table bytes before the first column entry: `pointsBytes u32 | fieldCount u8 | 3 x 0`. */
export const FIELD_TABLE_PREFIX_BYTES = 8;
/** Fixed bytes of a column entry: `type u8 | codec u8 | nameLength u8 | 0 | byteLength u32 | param f64`. */
export const FIELD_ENTRY_BYTES = 16;
/** The largest field table: the START header's length stays far below its u16 limit. */
export const MAX_FIELD_TABLE_BYTES =
  FIELD_TABLE_PREFIX_BYTES +
  FIELD_LIMITS.maxFields * (FIELD_ENTRY_BYTES + FIELD_LIMITS.maxNameBytes);

/** Columns start at multiples of this in the payload, so that every type can be viewed in place. */
export const FIELD_ALIGN = 8;

const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Names a field may not have: the positions. */
const RESERVED_NAMES = new Set(['x', 'y', 'z']);

function fieldsError(
  message: string,
  details?: Readonly<Record<string, string | number>>,
): PointstreamError {
  return new PointstreamError(
    ErrorCodes.FIELDS_INVALID,
    message,
    details === undefined ? undefined : { details },
  );
}

/** Whether `name` may name a field: 1-64 of `A-Z a-z 0-9 _`, not starting with a digit, not x/y/z. */
export function isFieldName(name: string): boolean {
  return (
    name.length >= 1 &&
    name.length <= FIELD_LIMITS.maxNameBytes &&
    NAME_PATTERN.test(name) &&
    !RESERVED_NAMES.has(name)
  );
}

/** Rounds `offset` up to the next multiple of {@link FIELD_ALIGN}. */
export function alignColumn(offset: number): number {
  return Math.ceil(offset / FIELD_ALIGN) * FIELD_ALIGN;
}

/** Where each column starts in the payload: after the points, each at the next multiple of 8. */
export function columnOffsets(table: FieldTable): number[] {
  const offsets: number[] = [];
  let end = table.pointsBytes;
  for (const column of table.columns) {
    const offset = alignColumn(end);
    offsets.push(offset);
    end = offset + column.byteLength;
  }
  return offsets;
}

/** The payload's size with this table: the end of the last column (no padding after it). */
export function payloadBytesOf(table: FieldTable): number {
  const offsets = columnOffsets(table);
  const last = table.columns.length - 1;
  if (last < 0) return table.pointsBytes;
  return (offsets[last] as number) + (table.columns[last] as FieldColumn).byteLength;
}

/** Bytes of the encoded table. */
export function fieldTableBytes(table: FieldTable): number {
  let bytes = FIELD_TABLE_PREFIX_BYTES;
  for (const column of table.columns) bytes += FIELD_ENTRY_BYTES + column.name.length;
  return bytes;
}

/**
 * Checks a table a sender is about to write (names, types, count, sizes against `pointCount`);
 * throws `PS_ERR_FIELDS_INVALID`.
 */
export function checkFieldTable(table: FieldTable, pointCount: number): void {
  if (table.columns.length < 1 || table.columns.length > FIELD_LIMITS.maxFields) {
    throw fieldsError(
      `a frame carries 1 to ${FIELD_LIMITS.maxFields} fields; got ${table.columns.length}`,
    );
  }
  const seen = new Set<string>();
  for (const column of table.columns) {
    if (!isFieldName(column.name)) {
      throw fieldsError(
        `field name ${JSON.stringify(column.name)} is not 1-${FIELD_LIMITS.maxNameBytes} of A-Z a-z 0-9 _ (not starting with a digit, not x, y or z)`,
        { field: column.name },
      );
    }
    if (seen.has(column.name))
      throw fieldsError(`field ${column.name} appears twice`, { field: column.name });
    seen.add(column.name);
    const info = FIELD_TYPES[column.type] as FieldTypeInfo | undefined;
    if (info === undefined)
      throw fieldsError(`field ${column.name} has an unknown type`, { field: column.name });
    checkCodec(column, info, pointCount);
  }
}

function checkCodec(column: FieldColumn, info: FieldTypeInfo, pointCount: number): void {
  const where = { field: column.name };
  switch (column.codec) {
    case FieldCodec.RAW:
      if (column.param !== 0) throw fieldsError(`raw field ${column.name} has a parameter`, where);
      if (column.byteLength !== pointCount * info.bytes) {
        throw fieldsError(
          `raw field ${column.name} (${column.type}) of ${column.byteLength} bytes does not hold ${pointCount} values`,
          where,
        );
      }
      return;
    case FieldCodec.DELTA_RICE:
      if (info.float)
        throw fieldsError(`field ${column.name}: delta-rice is for integer fields`, where);
      if (column.param !== 0)
        throw fieldsError(`delta-rice field ${column.name} has a parameter`, where);
      return;
    case FieldCodec.QUANT_RICE:
      if (!info.float)
        throw fieldsError(`field ${column.name}: quant-rice is for float fields`, where);
      if (!(column.param > 0) || !Number.isFinite(column.param)) {
        throw fieldsError(`quant-rice field ${column.name} needs a finite step above 0`, where);
      }
      return;
    default:
      throw fieldsError(`field ${column.name} has unknown codec ${String(column.codec)}`, where);
  }
}

/** Writes the field table (checked with {@link checkFieldTable} first). */
export function encodeFieldTable(table: FieldTable, pointCount: number): Uint8Array {
  checkFieldTable(table, pointCount);
  if (
    !Number.isSafeInteger(table.pointsBytes) ||
    table.pointsBytes < 0 ||
    table.pointsBytes > 0xffff_ffff
  )
    throw new RangeError(`pointsBytes must be a u32; got ${table.pointsBytes}`);
  const bytes = new Uint8Array(fieldTableBytes(table));
  const view = new DataView(bytes.buffer);
  view.setUint32(0, table.pointsBytes, true);
  view.setUint8(4, table.columns.length);
  let at = FIELD_TABLE_PREFIX_BYTES;
  for (const column of table.columns) {
    if (
      !Number.isSafeInteger(column.byteLength) ||
      column.byteLength < 0 ||
      column.byteLength > 0xffff_ffff
    )
      throw new RangeError(`field ${column.name}: byteLength must be a u32`);
    view.setUint8(at, FIELD_TYPES[column.type].id);
    view.setUint8(at + 1, column.codec);
    view.setUint8(at + 2, column.name.length);
    view.setUint32(at + 4, column.byteLength, true);
    view.setFloat64(at + 8, column.param, true);
    for (let i = 0; i < column.name.length; i++)
      bytes[at + FIELD_ENTRY_BYTES + i] = column.name.charCodeAt(i);
    at += FIELD_ENTRY_BYTES + column.name.length;
  }
  return bytes;
}

/**
 * Reads and checks the field table of a START chunk: `bytes` is exactly the table (the START
 * header's bytes after the fixed 40). Checks every length before it reads, every name and type,
 * duplicates, each codec's sizes against `pointCount`, and that the points part and the columns
 * fill exactly `payloadBytes`. Allocates nothing but the result. Throws `PS_ERR_FIELDS_INVALID`.
 */
export function parseFieldTable(
  bytes: Uint8Array,
  pointCount: number,
  payloadBytes: number,
): FieldTable {
  if (bytes.length < FIELD_TABLE_PREFIX_BYTES)
    throw fieldsError(`field table of ${bytes.length} bytes is shorter than its 8-byte prefix`);
  if (bytes.length > MAX_FIELD_TABLE_BYTES)
    throw fieldsError(`field table of ${bytes.length} bytes exceeds ${MAX_FIELD_TABLE_BYTES}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pointsBytes = view.getUint32(0, true);
  const count = view.getUint8(4);
  if (view.getUint8(5) !== 0 || view.getUint8(6) !== 0 || view.getUint8(7) !== 0)
    throw fieldsError('field table prefix has non-zero reserved bytes');
  if (count < 1 || count > FIELD_LIMITS.maxFields)
    throw fieldsError(
      `field table declares ${count} fields; 1 to ${FIELD_LIMITS.maxFields} allowed`,
    );
  const columns: FieldColumn[] = [];
  let at = FIELD_TABLE_PREFIX_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + FIELD_ENTRY_BYTES > bytes.length)
      throw fieldsError(`field table truncated in entry ${i}`, { entry: i });
    const typeId = view.getUint8(at);
    const codec = view.getUint8(at + 1) as FieldCodec;
    const nameLength = view.getUint8(at + 2);
    if (view.getUint8(at + 3) !== 0)
      throw fieldsError(`field table entry ${i} has a non-zero reserved byte`, { entry: i });
    const byteLength = view.getUint32(at + 4, true);
    const param = view.getFloat64(at + 8, true);
    if (nameLength < 1 || nameLength > FIELD_LIMITS.maxNameBytes)
      throw fieldsError(`field table entry ${i} has a name of ${nameLength} bytes`, { entry: i });
    if (at + FIELD_ENTRY_BYTES + nameLength > bytes.length)
      throw fieldsError(`field table truncated in the name of entry ${i}`, { entry: i });
    let name = '';
    for (let k = 0; k < nameLength; k++)
      name += String.fromCharCode(bytes[at + FIELD_ENTRY_BYTES + k] as number);
    const type = TYPE_BY_ID.get(typeId);
    if (type === undefined)
      throw fieldsError(`field table entry ${i} has unknown type ${typeId}`, { entry: i });
    columns.push({ name, type, codec, param, byteLength });
    at += FIELD_ENTRY_BYTES + nameLength;
  }
  if (at !== bytes.length)
    throw fieldsError(`field table has ${bytes.length - at} bytes after its last entry`);
  const table: FieldTable = { pointsBytes, columns };
  checkFieldTable(table, pointCount);
  // Sums of u32s stay far below 2^53: exact.
  const total = payloadBytesOf(table);
  if (total !== payloadBytes) {
    throw fieldsError(
      `points (${pointsBytes} bytes) and fields end at ${total} bytes; the frame's payload is ${payloadBytes}`,
    );
  }
  return table;
}

/**
 * Checks the fields a caller wants to send with `pointCount` points and returns them in order
 * as name and type. Throws `PS_ERR_FIELDS_INVALID` for a bad name, a value that is not a field
 * array, a length other than `pointCount`, or too many fields.
 */
export function describeFields(
  fields: PointFields,
  pointCount: number,
): { readonly name: string; readonly type: FieldTypeName }[] {
  if (typeof fields !== 'object' || fields === null)
    throw fieldsError('fields must be an object of typed arrays by name');
  const names = Object.keys(fields);
  if (names.length > FIELD_LIMITS.maxFields)
    throw fieldsError(
      `a frame carries at most ${FIELD_LIMITS.maxFields} fields; got ${names.length}`,
    );
  return names.map((name) => {
    if (!isFieldName(name)) {
      throw fieldsError(
        `field name ${JSON.stringify(name)} is not 1-${FIELD_LIMITS.maxNameBytes} of A-Z a-z 0-9 _ (not starting with a digit, not x, y or z)`,
        { field: name },
      );
    }
    const values = fields[name];
    const type = fieldTypeOf(values);
    if (type === undefined) {
      throw fieldsError(
        `field ${name} must be a Float32Array, Float64Array, Uint8Array, Uint16Array, Uint32Array, Int8Array, Int16Array or Int32Array`,
        { field: name },
      );
    }
    if ((values as FieldArray).length !== pointCount) {
      throw fieldsError(
        `field ${name} has ${(values as FieldArray).length} values for ${pointCount} points`,
        { field: name },
      );
    }
    return { name, type };
  });
}

/** The little-endian bytes of a field array: a view, no copy, on little-endian hosts. */
export function fieldBytes(values: FieldArray): Uint8Array {
  if (!HOST_IS_LITTLE_ENDIAN) throw new Error('big-endian hosts are not supported');
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/**
 * A typed array of `count` values of `type` over `bytes[offset...]`: a view (no copy) when the
 * start is aligned to the type's size on a little-endian host, a copy of the bytes otherwise.
 * The caller has checked the bounds (throws RangeError if not).
 */
export function fieldView(
  bytes: Uint8Array,
  offset: number,
  type: FieldTypeName,
  count: number,
): FieldArray {
  const info = FIELD_TYPES[type];
  if (offset < 0 || offset + count * info.bytes > bytes.length)
    throw new RangeError('fieldView outside the buffer');
  if (!HOST_IS_LITTLE_ENDIAN) throw new Error('big-endian hosts are not supported');
  const start = bytes.byteOffset + offset;
  if (start % info.bytes === 0) return new info.array(bytes.buffer as ArrayBuffer, start, count);
  // A byte copy, not a value conversion (which could quieten signalling NaNs).
  const copy = bytes.slice(offset, offset + count * info.bytes);
  return new info.array(copy.buffer, 0, count);
}

/** A frame's fields ready to be sent: their columns and bytes, in order. */
export interface EncodedFields {
  /** The columns, `byteLength` set; the frame preparer adds the points' size for the table. */
  readonly columns: readonly FieldColumn[];
  /** Each column's payload bytes (for RAW: a view of the caller's array, not a copy). */
  readonly bytes: readonly Uint8Array[];
  /** Bound on |decoded - original| per field name; 0 for lossless columns. */
  readonly maxErrors: Readonly<Record<string, number>>;
}

/** The fields as RAW columns (lossless, no copies): what `.npy` frames carry. */
export function rawFields(fields: PointFields, pointCount: number): EncodedFields {
  const specs = describeFields(fields, pointCount);
  const columns: FieldColumn[] = [];
  const bytes: Uint8Array[] = [];
  const maxErrors: Record<string, number> = {};
  for (const { name, type } of specs) {
    const values = fieldBytes(fields[name] as FieldArray);
    columns.push({ name, type, codec: FieldCodec.RAW, param: 0, byteLength: values.length });
    bytes.push(values);
    maxErrors[name] = 0;
  }
  return { columns, bytes, maxErrors };
}

/**
 * The RAW columns of a verified payload as typed arrays over it (views when aligned; the layout
 * aligns every column). Coded columns are decoded by `decodeFields` (encodings/fields.ts).
 */
export function viewRawFields(
  payload: Uint8Array,
  table: FieldTable,
  pointCount: number,
): PointFields {
  const offsets = columnOffsets(table);
  const fields: Record<string, FieldArray> = {};
  table.columns.forEach((column, i) => {
    if (column.codec !== FieldCodec.RAW)
      throw fieldsError(`field ${column.name} is not a raw column`, { field: column.name });
    fields[column.name] = fieldView(payload, offsets[i] as number, column.type, pointCount);
  });
  return Object.freeze(fields);
}
