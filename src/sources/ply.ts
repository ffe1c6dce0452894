import { ErrorCodes, PointstreamError } from '../errors.js';
import type { FieldTypeName } from '../wire/fields.js';
import {
  CloudBuilder,
  parseTextValue,
  readBinaryColumns,
  textRows,
  valueReader,
} from './cloud-builder.js';
import type { BinaryColumn, PointFile } from './cloud-builder.js';

/**
 * `.ply` point clouds (http://paulbourke.net/dataformats/ply/): ASCII, binary little-endian and
 * binary big-endian. The first element must be `vertex`; x, y, z become float32 and every other
 * scalar vertex property a field of its own type; list properties are skipped (and reported).
 * Every count is checked against the file's size before anything is allocated. Browser-safe.
 */

/** PLY's type names (both spellings) as field types. */
const PLY_TYPES: Readonly<Record<string, FieldTypeName>> = {
  char: 'i8',
  int8: 'i8',
  uchar: 'u8',
  uint8: 'u8',
  short: 'i16',
  int16: 'i16',
  ushort: 'u16',
  uint16: 'u16',
  int: 'i32',
  int32: 'i32',
  uint: 'u32',
  uint32: 'u32',
  float: 'f32',
  float32: 'f32',
  double: 'f64',
  float64: 'f64',
};

const SIZES: Readonly<Record<FieldTypeName, number>> = {
  i8: 1,
  u8: 1,
  i16: 2,
  u16: 2,
  i32: 4,
  u32: 4,
  f32: 4,
  f64: 8,
};

const MAX_PLY_HEADER_BYTES = 64 * 1024;

interface PlyProperty {
  readonly name: string;
  /** Its PLY type name, as written. */
  readonly typeName: string;
  readonly type: FieldTypeName;
  /** A list property: the type of its count. */
  readonly countType?: FieldTypeName;
}

function plyError(
  code: (typeof ErrorCodes)[
    'PLY_BAD_HEADER' | 'PLY_UNSUPPORTED' | 'PLY_TRUNCATED' | 'PLY_BAD_DATA'],
  message: string,
): PointstreamError {
  return new PointstreamError(code, message);
}

/** A `.ply` file's vertices: x, y, z float32 and every other scalar vertex property. */
export function plyPointFile(bytes: Uint8Array): PointFile {
  const headText = new TextDecoder('latin1').decode(
    bytes.subarray(0, Math.min(bytes.length, MAX_PLY_HEADER_BYTES)),
  );
  const end = /end_header\r?\n/.exec(headText);
  if (!headText.startsWith('ply') || end === null) {
    throw plyError(
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
  const properties: PlyProperty[] = [];
  for (const line of headText.slice(0, end.index).split(/\r?\n/).slice(1)) {
    const words = line.trim().split(/\s+/);
    switch (words[0]) {
      case 'format':
        format = words[1];
        if (words[2] !== '1.0')
          throw plyError(ErrorCodes.PLY_UNSUPPORTED, `PLY version ${words[2]} is not supported`);
        break;
      case 'element':
        if (!seenElement && words[1] !== 'vertex')
          throw plyError(
            ErrorCodes.PLY_UNSUPPORTED,
            `the first element is ${JSON.stringify(words[1])}; it must be "vertex"`,
          );
        inVertex = !seenElement;
        seenElement = true;
        if (inVertex) {
          vertexCount = /^[0-9]{1,15}$/.test(words[2] ?? '') ? Number(words[2]) : NaN;
          if (!Number.isSafeInteger(vertexCount))
            throw plyError(
              ErrorCodes.PLY_BAD_HEADER,
              `bad vertex count ${JSON.stringify(words[2])}`,
            );
        }
        break;
      case 'property': {
        if (!inVertex) break;
        const list = words[1] === 'list';
        const [typeName, name] = list ? [words[3], words[4]] : [words[1], words[2]];
        const type = PLY_TYPES[typeName ?? ''];
        const countType = list ? PLY_TYPES[words[2] ?? ''] : undefined;
        if (type === undefined || name === undefined || (list && countType === undefined)) {
          throw plyError(
            ErrorCodes.PLY_UNSUPPORTED,
            `vertex property ${JSON.stringify(line.trim().slice(0, 60))}: type ${JSON.stringify(list && countType === undefined ? words[2] : typeName)} is not supported`,
          );
        }
        if (list && (name === 'x' || name === 'y' || name === 'z'))
          throw plyError(
            ErrorCodes.PLY_UNSUPPORTED,
            `list property ${name} cannot be a coordinate`,
          );
        properties.push({
          name,
          typeName: typeName as string,
          type,
          ...(countType === undefined ? {} : { countType }),
        });
        break;
      }
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
  if (format !== 'ascii' && format !== 'binary_little_endian' && format !== 'binary_big_endian') {
    throw plyError(
      ErrorCodes.PLY_UNSUPPORTED,
      `PLY format ${JSON.stringify(format)} is not supported: use ascii, binary_little_endian or binary_big_endian`,
    );
  }
  // List properties (a vertex's faces, say) are read past and reported as skipped.
  const scalars = properties.map((p) => ({
    name: p.name,
    type: p.type,
    ...(p.countType === undefined ? {} : { skip: true }),
  }));
  const body = bytes.subarray(bodyOffset);
  const newBuilder = (): CloudBuilder =>
    new CloudBuilder(vertexCount, scalars, {
      axisLabel: (type) =>
        properties.find((p) => p.type === type && ['x', 'y', 'z'].includes(p.name))?.typeName ??
        type,
      missingAxisCode: ErrorCodes.PLY_UNSUPPORTED,
    });
  if (format === 'ascii') return readAscii(body, vertexCount, properties, newBuilder);
  return readBinary(body, vertexCount, properties, format === 'binary_little_endian', newBuilder);
}

function readAscii(
  body: Uint8Array,
  count: number,
  properties: readonly PlyProperty[],
  newBuilder: () => CloudBuilder,
): PointFile {
  // Each vertex needs at least one character and a separator per value: checked before allocating.
  if (body.length < count * properties.length * 2 - 1 && count > 0)
    throw plyError(
      ErrorCodes.PLY_TRUNCATED,
      `${count} vertices of ${properties.length} values need at least ${count * properties.length * 2 - 1} bytes; the body has ${body.length}`,
    );
  const builder = newBuilder();
  const hasLists = properties.some((p) => p.countType !== undefined);
  let row = -1;
  for (const tokens of textRows(body, count)) {
    row++;
    if (tokens.length === 0 || (!hasLists && tokens.length < properties.length)) {
      throw plyError(ErrorCodes.PLY_TRUNCATED, `vertex ${row} of ${count} is missing or short`);
    }
    let t = 0;
    properties.forEach((property, index) => {
      if (property.countType !== undefined) {
        const items = parseTextValue(tokens[t] ?? '', property.countType);
        if (items === undefined || t + 1 + items > tokens.length)
          throw plyError(ErrorCodes.PLY_TRUNCATED, `vertex ${row} of ${count} is missing or short`);
        t += 1 + items;
        return;
      }
      const token = tokens[t++];
      if (token === undefined)
        throw plyError(ErrorCodes.PLY_TRUNCATED, `vertex ${row} of ${count} is missing or short`);
      const value = parseTextValue(token, property.type);
      if (value === undefined)
        throw plyError(
          ErrorCodes.PLY_BAD_DATA,
          `vertex ${row}: ${JSON.stringify(token.slice(0, 40))} is not a number of type ${property.typeName} (${property.name})`,
        );
      const target = builder.targets[index];
      if (target !== undefined) target.array[target.offset + row * target.stride] = value;
    });
  }
  return builder.result();
}

function readBinary(
  body: Uint8Array,
  count: number,
  properties: readonly PlyProperty[],
  littleEndian: boolean,
  newBuilder: () => CloudBuilder,
): PointFile {
  // A vertex's smallest size: its scalars and the counts of its (empty) lists.
  let minRow = 0;
  for (const p of properties) minRow += SIZES[p.countType ?? p.type];
  const needed = count * minRow;
  if (body.length < needed)
    throw plyError(
      ErrorCodes.PLY_TRUNCATED,
      `${count} vertices need ${needed} bytes; the file has ${body.length}`,
    );
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const builder = newBuilder();
  if (!properties.some((p) => p.countType !== undefined)) {
    const columns: BinaryColumn[] = [];
    let offset = 0;
    for (const p of properties) {
      columns.push({ type: p.type, offset, step: minRow, littleEndian });
      offset += SIZES[p.type];
    }
    readBinaryColumns(builder, view, columns);
    return builder.result();
  }
  // With list properties each vertex has its own size: read in order, checking as it goes.
  const readers = properties.map((p) => valueReader(p.type, littleEndian));
  const countReaders = properties.map((p) =>
    p.countType === undefined ? undefined : valueReader(p.countType, littleEndian),
  );
  let at = 0;
  for (let row = 0; row < count; row++) {
    properties.forEach((property, index) => {
      const countReader = countReaders[index];
      if (countReader !== undefined) {
        const countSize = SIZES[property.countType as FieldTypeName];
        if (at + countSize > body.length)
          throw plyError(ErrorCodes.PLY_TRUNCATED, `vertex ${row} of ${count} is cut short`);
        const items = countReader(view, at);
        at += countSize;
        if (!(items >= 0) || at + items * SIZES[property.type] > body.length)
          throw plyError(ErrorCodes.PLY_TRUNCATED, `vertex ${row} of ${count} is cut short`);
        at += items * SIZES[property.type];
        return;
      }
      const size = SIZES[property.type];
      if (at + size > body.length)
        throw plyError(ErrorCodes.PLY_TRUNCATED, `vertex ${row} of ${count} is cut short`);
      const target = builder.targets[index];
      if (target !== undefined)
        target.array[target.offset + row * target.stride] = (
          readers[index] as ReturnType<typeof valueReader>
        )(view, at);
      at += size;
    });
  }
  return builder.result();
}
