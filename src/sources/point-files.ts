import { ErrorCodes, PointstreamError } from '../errors.js';
import { parseNpyHeader } from '../wire/npy.js';

/**
 * Point files as bytes: `.npy` (N, >= 3) float32/float64 C order, the first three columns x, y, z;
 * `.ply` ASCII or binary little-endian with a vertex element holding x, y, z. No Node-only APIs:
 * `send --from` (src/sources/files.ts) and the browser sender's dropped files share this code.
 */

/** What reading a point file left out or changed: only x, y, z travel, as float32. */
export interface PointFileConversion {
  /** Values per point read but not sent: columns 4+ of an (N, K) array, PLY properties besides x, y, z. */
  readonly droppedColumns: number;
  /** The type x, y, z were converted from to float32 (`float64`; for PLY its type name), if any. */
  readonly convertedFrom: string | undefined;
}

/** A point file's x, y, z float32 triples and what reading them dropped or converted. */
export interface PointFile {
  readonly points: Float32Array;
  readonly conversion: PointFileConversion;
}

/** One line for a warning, or undefined when nothing was dropped or converted. */
export function describeConversion(conversion: PointFileConversion): string | undefined {
  const parts: string[] = [];
  if (conversion.droppedColumns > 0)
    parts.push(
      `only x, y, z are sent: ${conversion.droppedColumns} more value${conversion.droppedColumns === 1 ? '' : 's'} per point dropped`,
    );
  if (conversion.convertedFrom !== undefined)
    parts.push(`${conversion.convertedFrom} coordinates converted to float32`);
  return parts.length > 0 ? parts.join('; ') : undefined;
}

/** `.npy` or `.ply` bytes, chosen by the file name's extension, to x, y, z float32. */
export function parsePointFile(name: string, bytes: Uint8Array): Float32Array {
  return readPointFile(name, bytes).points;
}

/** {@link parsePointFile}, with what reading the file dropped or converted. */
export function readPointFile(name: string, bytes: Uint8Array): PointFile {
  const lower = name.toLowerCase();
  if (lower.endsWith('.npy')) return npyPointFile(bytes);
  if (lower.endsWith('.ply')) return plyPointFile(bytes);
  throw new PointstreamError(
    ErrorCodes.SOURCE_UNREADABLE,
    `${name}: unsupported file type: use .npy or .ply`,
  );
}

/** (N, >= 3) float32/float64 C-order `.npy` to x, y, z float32. */
export function npyToPoints(bytes: Uint8Array): Float32Array {
  return npyPointFile(bytes).points;
}

/** {@link npyToPoints}, with what it dropped or converted. */
export function npyPointFile(bytes: Uint8Array): PointFile {
  const header = parseNpyHeader(bytes);
  const { descr, shape } = header;
  if (descr !== '<f4' && descr !== '<f8') {
    throw new PointstreamError(
      ErrorCodes.NPY_UNSUPPORTED_DTYPE,
      `dtype ${descr} is not supported: use little-endian float32 or float64`,
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
  const itemSize = descr === '<f4' ? 4 : 8;
  const expected = header.dataOffset + rows * columns * itemSize;
  if (bytes.length !== expected) {
    throw new PointstreamError(
      bytes.length < expected ? ErrorCodes.NPY_TRUNCATED : ErrorCodes.FRAME_LENGTH_MISMATCH,
      `shape (${rows}, ${columns}) ${descr} needs ${expected} bytes; the file has ${bytes.length}`,
    );
  }
  const view = new DataView(
    bytes.buffer,
    bytes.byteOffset + header.dataOffset,
    rows * columns * itemSize,
  );
  const points = new Float32Array(rows * 3);
  for (let row = 0; row < rows; row++) {
    for (let axis = 0; axis < 3; axis++) {
      const offset = (row * columns + axis) * itemSize;
      points[row * 3 + axis] =
        itemSize === 4 ? view.getFloat32(offset, true) : view.getFloat64(offset, true);
    }
  }
  return {
    points,
    conversion: {
      droppedColumns: columns - 3,
      convertedFrom: descr === '<f8' ? 'float64' : undefined,
    },
  };
}

const PLY_TYPES: Record<
  string,
  { size: number; read: (view: DataView, offset: number) => number }
> = {};
for (const [names, size, read] of [
  [['char', 'int8'], 1, (v: DataView, o: number) => v.getInt8(o)],
  [['uchar', 'uint8'], 1, (v: DataView, o: number) => v.getUint8(o)],
  [['short', 'int16'], 2, (v: DataView, o: number) => v.getInt16(o, true)],
  [['ushort', 'uint16'], 2, (v: DataView, o: number) => v.getUint16(o, true)],
  [['int', 'int32'], 4, (v: DataView, o: number) => v.getInt32(o, true)],
  [['uint', 'uint32'], 4, (v: DataView, o: number) => v.getUint32(o, true)],
  [['float', 'float32'], 4, (v: DataView, o: number) => v.getFloat32(o, true)],
  [['double', 'float64'], 8, (v: DataView, o: number) => v.getFloat64(o, true)],
] as const) {
  for (const name of names) PLY_TYPES[name] = { size, read };
}

const MAX_PLY_HEADER_BYTES = 64 * 1024;

/** A `.ply` point cloud (its first element must be `vertex`, with x, y, z properties) to float32. */
export function plyToPoints(bytes: Uint8Array): Float32Array {
  return plyPointFile(bytes).points;
}

/** {@link plyToPoints}, with what it dropped or converted. */
export function plyPointFile(bytes: Uint8Array): PointFile {
  const headText = new TextDecoder('latin1').decode(
    bytes.subarray(0, Math.min(bytes.length, MAX_PLY_HEADER_BYTES)),
  );
  const end = /end_header\r?\n/.exec(headText);
  if (!headText.startsWith('ply') || end === null) {
    throw new PointstreamError(
      ErrorCodes.PLY_BAD_HEADER,
      headText.startsWith('ply')
        ? 'no end_header within 64 KiB'
        : 'not a PLY file (it must start with "ply")',
    );
  }
  const bodyOffset = end.index + end[0].length;
  let format: string | undefined;
  let vertexCount: number | undefined;
  let inVertex = false;
  let seenElement = false;
  const properties: { name: string; type: string }[] = [];
  for (const line of headText.slice(0, end.index).split(/\r?\n/).slice(1)) {
    const words = line.trim().split(/\s+/);
    switch (words[0]) {
      case 'format':
        format = words[1];
        if (words[2] !== '1.0')
          throw new PointstreamError(
            ErrorCodes.PLY_UNSUPPORTED,
            `PLY version ${words[2]} is not supported`,
          );
        break;
      case 'element':
        if (!seenElement && words[1] !== 'vertex')
          throw new PointstreamError(
            ErrorCodes.PLY_UNSUPPORTED,
            `the first element is ${JSON.stringify(words[1])}; it must be "vertex"`,
          );
        inVertex = !seenElement;
        seenElement = true;
        if (inVertex) {
          vertexCount = Number(words[2]);
          if (!Number.isSafeInteger(vertexCount) || vertexCount < 0)
            throw new PointstreamError(
              ErrorCodes.PLY_BAD_HEADER,
              `bad vertex count ${JSON.stringify(words[2])}`,
            );
        }
        break;
      case 'property':
        if (!inVertex) break;
        if (words[1] === 'list')
          throw new PointstreamError(
            ErrorCodes.PLY_UNSUPPORTED,
            `list property ${JSON.stringify(words[4])} in vertex is not supported`,
          );
        if (words[1] === undefined || words[2] === undefined || PLY_TYPES[words[1]] === undefined) {
          throw new PointstreamError(
            ErrorCodes.PLY_UNSUPPORTED,
            `vertex property type ${JSON.stringify(words[1])} is not supported`,
          );
        }
        properties.push({ type: words[1], name: words[2] });
        break;
      case 'comment':
      case 'obj_info':
      case '':
        break;
      default:
        throw new PointstreamError(
          ErrorCodes.PLY_BAD_HEADER,
          `unexpected header line ${JSON.stringify(line.slice(0, 60))}`,
        );
    }
  }
  if (vertexCount === undefined)
    throw new PointstreamError(ErrorCodes.PLY_BAD_HEADER, 'no vertex element');
  const axes = ['x', 'y', 'z'].map((axis) => properties.findIndex((p) => p.name === axis));
  if (axes.some((index) => index < 0))
    throw new PointstreamError(ErrorCodes.PLY_UNSUPPORTED, 'vertex element lacks x, y or z');
  const points = new Float32Array(vertexCount * 3);
  const axisTypes = axes.map((index) => (properties[index] as { type: string }).type);
  const conversion: PointFileConversion = {
    droppedColumns: properties.length - 3,
    convertedFrom: axisTypes.find((type) => type !== 'float' && type !== 'float32'),
  };
  if (format === 'ascii') {
    const lines = new TextDecoder('latin1').decode(bytes.subarray(bodyOffset)).split(/\r?\n/);
    for (let row = 0; row < vertexCount; row++) {
      const fields = (lines[row] ?? '').trim().split(/\s+/);
      if (lines[row] === undefined || fields.length < properties.length) {
        throw new PointstreamError(
          ErrorCodes.PLY_TRUNCATED,
          `vertex ${row} of ${vertexCount} is missing or short`,
        );
      }
      for (let axis = 0; axis < 3; axis++) {
        const value = Number(fields[axes[axis] as number]);
        if (Number.isNaN(value) && fields[axes[axis] as number] !== 'nan') {
          throw new PointstreamError(
            ErrorCodes.PLY_BAD_DATA,
            `vertex ${row}: ${JSON.stringify(fields[axes[axis] as number])} is not a number`,
          );
        }
        points[row * 3 + axis] = value;
      }
    }
    return { points, conversion };
  }
  if (format !== 'binary_little_endian') {
    throw new PointstreamError(
      ErrorCodes.PLY_UNSUPPORTED,
      `PLY format ${JSON.stringify(format)} is not supported: use ascii or binary_little_endian`,
    );
  }
  const offsets: number[] = [];
  let stride = 0;
  for (const property of properties) {
    offsets.push(stride);
    stride += (PLY_TYPES[property.type] as { size: number }).size;
  }
  const needed = vertexCount * stride;
  if (bytes.length - bodyOffset < needed) {
    throw new PointstreamError(
      ErrorCodes.PLY_TRUNCATED,
      `${vertexCount} vertices need ${needed} bytes; the file has ${bytes.length - bodyOffset}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + bodyOffset, needed);
  const readers = axes.map(
    (index) =>
      PLY_TYPES[(properties[index] as { type: string }).type] as {
        read: (v: DataView, o: number) => number;
      },
  );
  for (let row = 0; row < vertexCount; row++) {
    for (let axis = 0; axis < 3; axis++) {
      points[row * 3 + axis] = (readers[axis] as { read: (v: DataView, o: number) => number }).read(
        view,
        row * stride + (offsets[axes[axis] as number] as number),
      );
    }
  }
  return { points, conversion };
}
