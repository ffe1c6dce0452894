import { ErrorCodes, PointstreamError } from '../errors.js';
import type { FieldTypeName } from '../wire/fields.js';
import { CloudBuilder, parseTextValue, readBinaryColumns, textRows } from './cloud-builder.js';
import type { BinaryColumn, FileProperty, PointFile } from './cloud-builder.js';
import { LZF_MAX_RATIO, lzfDecompress } from './lzf.js';

/**
 * PCL's `.pcd` files, version 0.7 (https://pointclouds.org/documentation/tutorials/pcd_file_format.html):
 * `FIELDS`/`SIZE`/`TYPE`/`COUNT`, `WIDTH` x `HEIGHT` (organised clouds keep their NaN points),
 * `POINTS`, and `DATA ascii`, `binary` (records, little-endian) or `binary_compressed` (LZF of
 * the fields one after another). x, y, z become float32; every other field keeps its type, a
 * field with `COUNT` n becomes `name_0` ... `name_{n-1}`, and a float32 `rgb`/`rgba` (PCL packs
 * the colour's bytes into a float) becomes a uint32 of the same bits, `0x00RRGGBB` (`0xAARRGGBB`).
 * PCL's `_` padding fields are skipped. `VIEWPOINT` is not applied. Every size is checked against
 * the file's before anything is allocated. Browser-safe.
 */

const MAX_HEADER_BYTES = 64 * 1024;
/** Values per point, at most (before the limit on fields): enough for PCL's descriptors. */
const MAX_VALUES_PER_POINT = 4096;

type PcdCode = (typeof ErrorCodes)[
  'PCD_BAD_HEADER' | 'PCD_UNSUPPORTED' | 'PCD_TRUNCATED' | 'PCD_BAD_DATA'];

function pcdError(code: PcdCode, message: string): PointstreamError {
  return new PointstreamError(code, message);
}

interface PcdField {
  readonly name: string;
  readonly size: number;
  readonly kind: 'I' | 'U' | 'F';
  readonly count: number;
}

const TYPES: Readonly<Record<string, FieldTypeName>> = {
  I1: 'i8',
  I2: 'i16',
  I4: 'i32',
  U1: 'u8',
  U2: 'u16',
  U4: 'u32',
  F4: 'f32',
  F8: 'f64',
};

interface PcdHeader {
  readonly fields: readonly PcdField[];
  readonly width: number;
  readonly height: number;
  readonly points: number;
  readonly data: 'ascii' | 'binary' | 'binary_compressed';
  readonly dataOffset: number;
}

/** A `.pcd` file's points and fields. */
export function pcdPointFile(bytes: Uint8Array): PointFile {
  const header = parsePcdHeader(bytes);
  const { fields, points: count } = header;
  // One property per value: x, y, z, `rgb` as uint32, `name_i` for COUNT > 1, `_` skipped.
  const properties: FileProperty[] = [];
  const columns: { field: PcdField; element: number }[] = [];
  for (const field of fields) {
    const code = `${field.kind}${field.size}`;
    let type = TYPES[code];
    if (type === undefined)
      throw pcdError(
        ErrorCodes.PCD_UNSUPPORTED,
        `field ${field.name}: TYPE ${field.kind} SIZE ${field.size} is not supported (use I/U of 1, 2, 4 bytes or F of 4, 8)`,
      );
    const axis = field.name === 'x' || field.name === 'y' || field.name === 'z';
    if (axis && field.count !== 1)
      throw pcdError(ErrorCodes.PCD_UNSUPPORTED, `field ${field.name} has COUNT ${field.count}`);
    if ((field.name === 'rgb' || field.name === 'rgba') && type === 'f32') type = 'u32';
    for (let element = 0; element < field.count; element++) {
      properties.push({
        name: field.count === 1 || field.name === '_' ? field.name : `${field.name}_${element}`,
        type,
        ...(field.name === '_' ? { skip: true } : {}),
      });
      columns.push({ field, element });
    }
  }
  const stride = fields.reduce((sum, f) => sum + f.size * f.count, 0);
  const body = bytes.subarray(header.dataOffset);
  const newBuilder = (): CloudBuilder =>
    new CloudBuilder(count, properties, {
      missingAxisCode: ErrorCodes.PCD_UNSUPPORTED,
    });

  if (header.data === 'ascii') return readAscii(body, count, properties, newBuilder);

  let data: Uint8Array;
  let binary: BinaryColumn[];
  if (header.data === 'binary') {
    if (body.length < count * stride)
      throw pcdError(
        ErrorCodes.PCD_TRUNCATED,
        `${count} points of ${stride} bytes need ${count * stride} bytes; the data has ${body.length}`,
      );
    data = body;
    let offset = 0;
    binary = columns.map(({ field }) => {
      const column = { type: typeOf(properties, columns, field), offset, step: stride };
      offset += field.size;
      return { ...column, littleEndian: true };
    });
  } else {
    if (body.length < 8)
      throw pcdError(ErrorCodes.PCD_TRUNCATED, 'binary_compressed data lacks its two sizes');
    const sizes = new DataView(body.buffer, body.byteOffset, 8);
    const compressed = sizes.getUint32(0, true);
    const uncompressed = sizes.getUint32(4, true);
    if (uncompressed !== count * stride)
      throw pcdError(
        ErrorCodes.PCD_BAD_DATA,
        `binary_compressed data declares ${uncompressed} bytes; ${count} points of ${stride} bytes are ${count * stride}`,
      );
    if (body.length - 8 < compressed)
      throw pcdError(
        ErrorCodes.PCD_TRUNCATED,
        `binary_compressed data declares ${compressed} compressed bytes; the file has ${body.length - 8}`,
      );
    if (uncompressed > compressed * LZF_MAX_RATIO)
      throw pcdError(
        ErrorCodes.PCD_BAD_DATA,
        `${compressed} compressed bytes cannot hold ${uncompressed} (LZF expands at most ${LZF_MAX_RATIO}x)`,
      );
    data =
      count === 0
        ? new Uint8Array(0)
        : lzfDecompress(body.subarray(8, 8 + compressed), uncompressed);
    // Column-major: all points' values of the first field, then the second's...
    let block = 0;
    binary = columns.map(({ field, element }) => {
      const column = {
        type: typeOf(properties, columns, field),
        offset: block + element * field.size,
        step: field.size * field.count,
        littleEndian: true,
      };
      if (element === field.count - 1) block += count * field.size * field.count;
      return column;
    });
  }
  const builder = newBuilder();
  readBinaryColumns(builder, new DataView(data.buffer, data.byteOffset, data.byteLength), binary);
  return builder.result();
}

function typeOf(
  properties: readonly FileProperty[],
  columns: readonly { field: PcdField }[],
  field: PcdField,
): FieldTypeName {
  return (properties[columns.findIndex((c) => c.field === field)] as FileProperty).type;
}

function readAscii(
  body: Uint8Array,
  count: number,
  properties: readonly FileProperty[],
  newBuilder: () => CloudBuilder,
): PointFile {
  const values = properties.length;
  if (count > 0 && body.length < count * values * 2 - 1)
    throw pcdError(
      ErrorCodes.PCD_TRUNCATED,
      `${count} points of ${values} values need at least ${count * values * 2 - 1} bytes; the data has ${body.length}`,
    );
  const builder = newBuilder();
  // PCL writes `rgb` as the float whose bits are the colour: parsed as a float, its bits kept.
  const bits = new Float32Array(1);
  const bitsAsU32 = new Uint32Array(bits.buffer);
  let row = -1;
  for (const tokens of textRows(body, count)) {
    row++;
    if (tokens.length < values)
      throw pcdError(ErrorCodes.PCD_TRUNCATED, `point ${row} of ${count} is missing or short`);
    for (let index = 0; index < values; index++) {
      const property = properties[index] as FileProperty;
      const token = tokens[index] as string;
      const packed = property.type === 'u32' && /^rgba?$/.test(property.name);
      let value = parseTextValue(token, packed ? 'f32' : property.type);
      if (value === undefined && packed) value = parseTextValue(token, 'u32');
      else if (value !== undefined && packed) {
        bits[0] = value;
        value = bitsAsU32[0];
      }
      if (value === undefined)
        throw pcdError(
          ErrorCodes.PCD_BAD_DATA,
          `point ${row}: ${JSON.stringify(token.slice(0, 40))} is not a ${property.type} (${property.name})`,
        );
      const target = builder.targets[index];
      if (target !== undefined) target.array[target.offset + row * target.stride] = value;
    }
  }
  return builder.result();
}

function parsePcdHeader(bytes: Uint8Array): PcdHeader {
  const head = new TextDecoder('latin1').decode(
    bytes.subarray(0, Math.min(bytes.length, MAX_HEADER_BYTES)),
  );
  const entries = new Map<string, string[]>();
  let at = 0;
  let dataOffset: number | undefined;
  while (at < head.length) {
    const next = head.indexOf('\n', at);
    if (next < 0) break;
    const line = head.slice(at, next).trim();
    at = next + 1;
    if (line === '' || line.startsWith('#')) continue;
    const [key, ...words] = line.split(/\s+/);
    if (!/^[A-Z_]+$/.test(key as string))
      throw pcdError(
        ErrorCodes.PCD_BAD_HEADER,
        entries.size === 0
          ? 'not a PCD file (no FIELDS line where its header should be)'
          : `unexpected header line ${JSON.stringify(line.slice(0, 60))}`,
      );
    if (entries.has(key as string))
      throw pcdError(ErrorCodes.PCD_BAD_HEADER, `header line ${key} appears twice`);
    entries.set(key as string, words);
    if (key === 'DATA') {
      dataOffset = at;
      break;
    }
  }
  if (dataOffset === undefined)
    throw pcdError(
      ErrorCodes.PCD_BAD_HEADER,
      entries.size === 0 ? 'not a PCD file (no header)' : 'no DATA line within 64 KiB',
    );
  const required = (key: string): string[] => {
    const words = entries.get(key);
    if (words === undefined || words.length === 0)
      throw pcdError(ErrorCodes.PCD_BAD_HEADER, `the header has no ${key} line`);
    return words;
  };
  const version = entries.get('VERSION')?.[0];
  if (version !== undefined && version !== '.7' && version !== '0.7')
    throw pcdError(ErrorCodes.PCD_UNSUPPORTED, `PCD VERSION ${version} is not supported (0.7 is)`);
  const names = required('FIELDS');
  const sizes = required('SIZE');
  const kinds = required('TYPE');
  const counts = entries.get('COUNT') ?? names.map(() => '1');
  if (
    sizes.length !== names.length ||
    kinds.length !== names.length ||
    counts.length !== names.length
  )
    throw pcdError(
      ErrorCodes.PCD_BAD_HEADER,
      `FIELDS names ${names.length} fields; SIZE has ${sizes.length}, TYPE ${kinds.length}, COUNT ${counts.length}`,
    );
  const integer = (key: string, word: string | undefined, min: number, max: number): number => {
    const value = /^[0-9]{1,15}$/.test(word ?? '') ? Number(word) : NaN;
    if (!(value >= min && value <= max))
      throw pcdError(ErrorCodes.PCD_BAD_HEADER, `${key} ${JSON.stringify(word)} is not a count`);
    return value;
  };
  let values = 0;
  const fields = names.map((name, i): PcdField => {
    const size = integer('SIZE', sizes[i], 1, 8);
    const kind = kinds[i];
    if (kind !== 'I' && kind !== 'U' && kind !== 'F')
      throw pcdError(ErrorCodes.PCD_BAD_HEADER, `TYPE ${JSON.stringify(kind)} is not I, U or F`);
    const count = integer('COUNT', counts[i], 1, MAX_VALUES_PER_POINT);
    values += count;
    if (values > MAX_VALUES_PER_POINT)
      throw pcdError(ErrorCodes.PCD_UNSUPPORTED, `over ${MAX_VALUES_PER_POINT} values per point`);
    return { name, size, kind, count };
  });
  const width = integer('WIDTH', required('WIDTH')[0], 0, Number.MAX_SAFE_INTEGER);
  const height = integer('HEIGHT', required('HEIGHT')[0], 0, Number.MAX_SAFE_INTEGER);
  const points = integer('POINTS', required('POINTS')[0], 0, Number.MAX_SAFE_INTEGER);
  if (width * height !== points)
    throw pcdError(
      ErrorCodes.PCD_BAD_HEADER,
      `WIDTH ${width} x HEIGHT ${height} is not POINTS ${points}`,
    );
  const data = required('DATA')[0];
  if (data !== 'ascii' && data !== 'binary' && data !== 'binary_compressed')
    throw pcdError(
      ErrorCodes.PCD_UNSUPPORTED,
      `DATA ${JSON.stringify(data)} is not supported: ascii, binary or binary_compressed`,
    );
  return { fields, width, height, points, data, dataOffset };
}
