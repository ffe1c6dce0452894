import { ErrorCodes, PointstreamError } from '../errors.js';
import type { FieldTypeName } from '../wire/fields.js';
import { parseNpyHeader } from '../wire/npy.js';
import type { NpyHeader } from '../wire/npy.js';
import { CloudBuilder, readBinaryColumns } from './cloud-builder.js';
import type { FileProperty, PointFile, PointFileConversion } from './cloud-builder.js';
import { pcdPointFile } from './pcd.js';
import { plyPointFile } from './ply.js';
import { TEXT_EXTENSIONS, textPointFile } from './text.js';

export { fieldNameFor } from './cloud-builder.js';
export type { PointFile, PointFileConversion } from './cloud-builder.js';
export { pcdPointFile } from './pcd.js';
export { plyPointFile } from './ply.js';
export { textPointFile } from './text.js';

/**
 * Point files as bytes, with their per-point fields: `.npy` (a structured array with x, y, z
 * fields, or (N, >= 3) float32/float64 C order whose columns `fieldNames` names, else the first
 * three are x, y, z), `.ply` and `.pcd` (src/sources/ply.ts, pcd.ts). No Node-only APIs:
 * `send --from` (src/sources/files.ts) and the browser sender's dropped files share this code.
 */

/** How to read a point file. */
export interface PointFileOptions {
  /**
   * Names of the columns of an (N, K) `.npy` array (`send --fields x,y,z,intensity`): K names,
   * x, y and z among them, `_` for a column not sent. Files that name their own fields (structured
   * `.npy`, `.ply`, `.pcd`) refuse it.
   */
  readonly fieldNames?: readonly string[] | undefined;
}

/** The file types read, by extension. */
export const POINT_FILE_EXTENSIONS = ['.npy', '.ply', '.pcd', ...TEXT_EXTENSIONS] as const;

/** One line for a warning, or undefined when nothing was dropped, converted or renamed. */
export function describeConversion(conversion: PointFileConversion): string | undefined {
  const parts: string[] = [];
  if (conversion.droppedColumns > 0)
    parts.push(
      `only x, y, z are sent: ${conversion.droppedColumns} more value${conversion.droppedColumns === 1 ? '' : 's'} per point dropped`,
    );
  if (conversion.convertedFrom !== undefined)
    parts.push(`${conversion.convertedFrom} coordinates converted to float32`);
  if (conversion.renamed !== undefined && conversion.renamed.length > 0)
    parts.push(
      `fields renamed: ${conversion.renamed.map(([from, to]) => `${from} -> ${to}`).join(', ')}`,
    );
  if (conversion.skipped !== undefined && conversion.skipped.length > 0)
    parts.push(`not sent: ${conversion.skipped.join(', ')}`);
  return parts.length > 0 ? parts.join('; ') : undefined;
}

/** `.npy`, `.ply` or `.pcd` bytes, chosen by the file name's extension, to x, y, z float32. */
export function parsePointFile(name: string, bytes: Uint8Array): Float32Array {
  return readPointFile(name, bytes).points;
}

/** {@link parsePointFile}, with the file's fields and what reading it dropped or converted. */
export function readPointFile(
  name: string,
  bytes: Uint8Array,
  options: PointFileOptions = {},
): PointFile {
  const lower = name.toLowerCase();
  if (lower.endsWith('.npy')) return npyPointFile(bytes, options);
  if (options.fieldNames !== undefined && (lower.endsWith('.ply') || lower.endsWith('.pcd')))
    throw ownNames();
  if (lower.endsWith('.ply')) return plyPointFile(bytes);
  if (lower.endsWith('.pcd')) return pcdPointFile(bytes);
  if (TEXT_EXTENSIONS.some((extension) => lower.endsWith(extension)))
    return textPointFile(bytes, options.fieldNames);
  throw new PointstreamError(
    ErrorCodes.SOURCE_UNREADABLE,
    `${name}: unsupported file type: use ${POINT_FILE_EXTENSIONS.join(', ')}`,
  );
}

function ownNames(): PointstreamError {
  return new PointstreamError(
    ErrorCodes.SOURCE_UNREADABLE,
    '--fields names the columns of an (N, K) array; this file names its own fields',
  );
}

/** (N, >= 3) float32/float64 C-order `.npy` to x, y, z float32. */
export function npyToPoints(bytes: Uint8Array): Float32Array {
  return npyPointFile(bytes).points;
}

/** A `.ply` point cloud's x, y, z as float32. */
export function plyToPoints(bytes: Uint8Array): Float32Array {
  return plyPointFile(bytes).points;
}

/**
 * A `.npy` file's points and fields: a structured array (its x, y, z fields and every other
 * one), or an (N, K) float32/float64 array (columns named by `fieldNames`, else x, y, z first).
 */
export function npyPointFile(bytes: Uint8Array, options: PointFileOptions = {}): PointFile {
  const header = parseNpyHeader(bytes);
  if (header.fields !== undefined) {
    if (options.fieldNames !== undefined) throw ownNames();
    return structuredNpy(bytes, header);
  }
  const { descr, shape } = header;
  if (descr !== '<f4' && descr !== '<f8') {
    throw new PointstreamError(
      ErrorCodes.NPY_UNSUPPORTED_DTYPE,
      `dtype ${descr} is not supported: use little-endian float32 or float64, or a structured array with x, y, z fields`,
    );
  }
  if (header.fortranOrder)
    throw new PointstreamError(
      ErrorCodes.NPY_FORTRAN_ORDER,
      'array is in Fortran order: save it with numpy.ascontiguousarray',
    );
  const [rows, columns] = shape;
  if (shape.length !== 2 || rows === undefined || columns === undefined || columns < 3) {
    throw new PointstreamError(
      ErrorCodes.NPY_BAD_SHAPE,
      `shape (${shape.join(', ')}) is not (N, 3) or (N, >= 3)`,
    );
  }
  const names = options.fieldNames;
  if (names !== undefined && names.length !== columns)
    throw new PointstreamError(
      ErrorCodes.SOURCE_UNREADABLE,
      `--fields names ${names.length} columns (${names.join(',')}); the array has ${columns}`,
    );
  const itemSize = descr === '<f4' ? 4 : 8;
  checkDataSize(bytes, header, rows * columns * itemSize, `shape (${rows}, ${columns}) ${descr}`);
  const type: FieldTypeName = itemSize === 4 ? 'f32' : 'f64';
  // Without names only the first three columns are read (and the rest reported dropped).
  const read = names ?? ['x', 'y', 'z'];
  const properties: FileProperty[] = read.map((name) => ({
    name,
    type,
    ...(name === '_' ? { skip: true } : {}),
  }));
  const builder = new CloudBuilder(rows, properties, {
    skipped: [],
    missingAxisCode: ErrorCodes.SOURCE_UNREADABLE,
  });
  const data = new DataView(
    bytes.buffer,
    bytes.byteOffset + header.dataOffset,
    rows * columns * itemSize,
  );
  // (N, 3) float32, the common case (recordings without fields): one copy when aligned.
  if (names === undefined && columns === 3 && itemSize === 4 && data.byteOffset % 4 === 0) {
    builder.points.set(new Float32Array(data.buffer, data.byteOffset, rows * 3));
    return builder.result(0);
  }
  readBinaryColumns(
    builder,
    data,
    read.map((_, i) => ({
      type,
      offset: i * itemSize,
      step: columns * itemSize,
      littleEndian: true,
    })),
  );
  return builder.result(names === undefined ? columns - 3 : 0);
}

const NPY_TYPES: Readonly<Record<string, FieldTypeName>> = {
  f4: 'f32',
  f8: 'f64',
  u1: 'u8',
  u2: 'u16',
  u4: 'u32',
  i1: 'i8',
  i2: 'i16',
  i4: 'i32',
  // NumPy's bool is one byte, 0 or 1.
  b1: 'u8',
};

function checkDataSize(bytes: Uint8Array, header: NpyHeader, size: number, what: string): void {
  const expected = header.dataOffset + size;
  if (bytes.length !== expected) {
    throw new PointstreamError(
      bytes.length < expected ? ErrorCodes.NPY_TRUNCATED : ErrorCodes.FRAME_LENGTH_MISMATCH,
      `${what} needs ${expected} bytes; the file has ${bytes.length}`,
    );
  }
}

/** A structured `.npy` (1-D, or 2-D for an organised cloud): its x, y, z and every other field. */
function structuredNpy(bytes: Uint8Array, header: NpyHeader): PointFile {
  const structFields = header.fields ?? [];
  const itemSize = header.itemSize ?? 0;
  const { shape } = header;
  if (shape.length < 1 || shape.length > 2)
    throw new PointstreamError(
      ErrorCodes.NPY_BAD_SHAPE,
      `a structured array of shape (${shape.join(', ')}): points are (N,) or (H, W)`,
    );
  if (header.fortranOrder && shape.length > 1)
    throw new PointstreamError(
      ErrorCodes.NPY_FORTRAN_ORDER,
      'array is in Fortran order: save it with numpy.ascontiguousarray',
    );
  const rows = shape.reduce((a, b) => a * b, 1);
  const properties = structFields.map((field): FileProperty & { littleEndian: boolean } => {
    const match = /^([<>|=]?)([fiub][1248])$/.exec(field.dtype);
    const type = match === null ? undefined : NPY_TYPES[match[2] as string];
    if (match === null || type === undefined)
      throw new PointstreamError(
        ErrorCodes.NPY_UNSUPPORTED_DTYPE,
        `field ${JSON.stringify(field.name)} has dtype ${field.dtype}: fields are float32/float64, (u)int8/16/32 or bool`,
      );
    return { name: field.name, type, littleEndian: match[1] !== '>' };
  });
  checkDataSize(bytes, header, rows * itemSize, `${rows} records of ${itemSize} bytes`);
  const builder = new CloudBuilder(rows, properties, {
    missingAxisCode: ErrorCodes.NPY_UNSUPPORTED_DTYPE,
  });
  readBinaryColumns(
    builder,
    new DataView(bytes.buffer, bytes.byteOffset + header.dataOffset, rows * itemSize),
    structFields.map((field, i) => ({
      type: (properties[i] as FileProperty).type,
      offset: field.offset,
      step: itemSize,
      littleEndian: (properties[i] as { littleEndian: boolean }).littleEndian,
    })),
  );
  return builder.result();
}
