import { ErrorCodes, PointstreamError } from '../../src/errors.js';
import { parseNpyHeader } from '../../src/wire/index.js';

/**
 * Point files a user drops on the page, parsed in the browser with the same rules as
 * `send --from` (src/sources/files.ts, which reads with node:fs and so cannot be bundled):
 * `.npy` (N, >= 3) float32/float64 C order, first three columns x, y, z; `.ply` ASCII or binary
 * little-endian with a vertex element holding x, y, z.
 */

/** `.npy` or `.ply` bytes (chosen by the file name, then by the magic) to x, y, z float32. */
export function parsePointFile(name: string, bytes: Uint8Array): Float32Array {
  const lower = name.toLowerCase();
  if (lower.endsWith('.npy')) return npyToPoints(bytes);
  if (lower.endsWith('.ply')) return plyToPoints(bytes);
  throw new PointstreamError(
    ErrorCodes.SOURCE_UNREADABLE,
    `${name}: unsupported file type: use .npy or .ply`,
  );
}

export function npyToPoints(bytes: Uint8Array): Float32Array {
  const header = parseNpyHeader(bytes);
  const { descr, shape } = header;
  if (descr !== '<f4' && descr !== '<f8') {
    throw new PointstreamError(
      ErrorCodes.NPY_UNSUPPORTED_DTYPE,
      `dtype ${descr} is not supported: use little-endian float32 or float64`,
    );
  }
  if (header.fortranOrder) {
    throw new PointstreamError(
      ErrorCodes.NPY_FORTRAN_ORDER,
      'array is in Fortran order: save it with numpy.ascontiguousarray',
    );
  }
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
    expected - header.dataOffset,
  );
  const points = new Float32Array(rows * 3);
  for (let row = 0; row < rows; row++) {
    for (let axis = 0; axis < 3; axis++) {
      const offset = (row * columns + axis) * itemSize;
      points[row * 3 + axis] =
        itemSize === 4 ? view.getFloat32(offset, true) : view.getFloat64(offset, true);
    }
  }
  return points;
}

type Reader = (view: DataView, offset: number) => number;

const PLY_TYPES = new Map<string, { size: number; read: Reader }>();
for (const [names, size, read] of [
  [['char', 'int8'], 1, (v, o) => v.getInt8(o)],
  [['uchar', 'uint8'], 1, (v, o) => v.getUint8(o)],
  [['short', 'int16'], 2, (v, o) => v.getInt16(o, true)],
  [['ushort', 'uint16'], 2, (v, o) => v.getUint16(o, true)],
  [['int', 'int32'], 4, (v, o) => v.getInt32(o, true)],
  [['uint', 'uint32'], 4, (v, o) => v.getUint32(o, true)],
  [['float', 'float32'], 4, (v, o) => v.getFloat32(o, true)],
  [['double', 'float64'], 8, (v, o) => v.getFloat64(o, true)],
] as [string[], number, Reader][]) {
  for (const name of names) PLY_TYPES.set(name, { size, read });
}

const MAX_PLY_HEADER_BYTES = 64 * 1024;

function plyError(code: (typeof ErrorCodes)[keyof typeof ErrorCodes], message: string) {
  return new PointstreamError(code, message);
}

/** A `.ply` point cloud (its first element must be `vertex`, with x, y, z properties) to float32. */
export function plyToPoints(bytes: Uint8Array): Float32Array {
  const head = new TextDecoder('latin1').decode(
    bytes.subarray(0, Math.min(bytes.length, MAX_PLY_HEADER_BYTES)),
  );
  const end = /end_header\r?\n/.exec(head);
  if (!head.startsWith('ply') || end === null) {
    throw plyError(
      ErrorCodes.PLY_BAD_HEADER,
      head.startsWith('ply')
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
  for (const line of head.slice(0, end.index).split(/\r?\n/).slice(1)) {
    const words = line.trim().split(/\s+/);
    switch (words[0]) {
      case 'format':
        format = words[1];
        if (words[2] !== '1.0')
          throw plyError(ErrorCodes.PLY_UNSUPPORTED, `PLY version ${words[2]} is not supported`);
        break;
      case 'element':
        if (!seenElement && words[1] !== 'vertex') {
          throw plyError(
            ErrorCodes.PLY_UNSUPPORTED,
            `the first element is ${JSON.stringify(words[1])}; it must be "vertex"`,
          );
        }
        inVertex = !seenElement;
        seenElement = true;
        if (inVertex) {
          vertexCount = Number(words[2]);
          if (!Number.isSafeInteger(vertexCount) || vertexCount < 0)
            throw plyError(
              ErrorCodes.PLY_BAD_HEADER,
              `bad vertex count ${JSON.stringify(words[2])}`,
            );
        }
        break;
      case 'property':
        if (!inVertex) break;
        if (words[1] === 'list') {
          throw plyError(
            ErrorCodes.PLY_UNSUPPORTED,
            `list property ${JSON.stringify(words[4])} in vertex is not supported`,
          );
        }
        if (words[1] === undefined || words[2] === undefined || !PLY_TYPES.has(words[1])) {
          throw plyError(
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
        throw plyError(
          ErrorCodes.PLY_BAD_HEADER,
          `unexpected header line ${JSON.stringify(line.slice(0, 60))}`,
        );
    }
  }
  if (vertexCount === undefined) throw plyError(ErrorCodes.PLY_BAD_HEADER, 'no vertex element');
  const axes = ['x', 'y', 'z'].map((axis) => properties.findIndex((p) => p.name === axis));
  if (axes.some((index) => index < 0))
    throw plyError(ErrorCodes.PLY_UNSUPPORTED, 'vertex element lacks x, y or z');
  const [ix, iy, iz] = axes as [number, number, number];
  const points = new Float32Array(vertexCount * 3);
  if (format === 'ascii') {
    const lines = new TextDecoder('latin1').decode(bytes.subarray(bodyOffset)).split(/\r?\n/);
    for (let row = 0; row < vertexCount; row++) {
      const line = lines[row];
      const fields = (line ?? '').trim().split(/\s+/);
      if (line === undefined || fields.length < properties.length) {
        throw plyError(
          ErrorCodes.PLY_TRUNCATED,
          `vertex ${row} of ${vertexCount} is missing or short`,
        );
      }
      for (const [axis, index] of [ix, iy, iz].entries()) {
        const text = fields[index] ?? '';
        const value = Number(text);
        if (Number.isNaN(value) && text !== 'nan')
          throw plyError(
            ErrorCodes.PLY_BAD_DATA,
            `vertex ${row}: ${JSON.stringify(text)} is not a number`,
          );
        points[row * 3 + axis] = value;
      }
    }
    return points;
  }
  if (format !== 'binary_little_endian') {
    throw plyError(
      ErrorCodes.PLY_UNSUPPORTED,
      `PLY format ${JSON.stringify(format)} is not supported: use ascii or binary_little_endian`,
    );
  }
  const offsets: number[] = [];
  let stride = 0;
  for (const property of properties) {
    offsets.push(stride);
    stride += PLY_TYPES.get(property.type)?.size ?? 0;
  }
  const needed = vertexCount * stride;
  if (bytes.length - bodyOffset < needed) {
    throw plyError(
      ErrorCodes.PLY_TRUNCATED,
      `${vertexCount} vertices need ${needed} bytes; the file has ${bytes.length - bodyOffset}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + bodyOffset, needed);
  const fields = [ix, iy, iz].map((index) => ({
    offset: offsets[index] ?? 0,
    read: (PLY_TYPES.get(properties[index]?.type ?? '') as { read: Reader }).read,
  }));
  for (let row = 0; row < vertexCount; row++) {
    for (const [axis, field] of fields.entries())
      points[row * 3 + axis] = field.read(view, row * stride + field.offset);
  }
  return points;
}
