import { ErrorCodes, PointstreamError } from '../errors.js';

/**
 * NumPy's `.npy` format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html),
 * as far as point frames need it: we write version 1.0 exactly as `numpy.save` does, and read
 * versions 1.0, 2.0 and 3.0 strictly.
 */

export const NPY_MAGIC = Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59); // \x93NUMPY
/** numpy pads the header so that the data starts on a multiple of this. */
const NPY_ALIGN = 64;
/** numpy leaves room for the first axis to grow to this many digits (format.GROWTH_AXIS_MAX_DIGITS). */
const GROWTH_AXIS_MAX_DIGITS = 21;
/** Headers larger than this are refused before they are decoded (numpy's own limit is 10,000). */
export const NPY_MAX_HEADER_BYTES = 10_000;

export interface NpyHeader {
  /** Format version, e.g. `[1, 0]`. */
  readonly version: readonly [number, number];
  /** Offset of the array data from the start of the file: magic + lengths + header dict. */
  readonly dataOffset: number;
  /** NumPy dtype string, e.g. `'<f4'`. */
  readonly descr: string;
  readonly fortranOrder: boolean;
  readonly shape: readonly number[];
  /**
   * For a structured dtype (`descr` a list such as `[('x', '<f4'), ('intensity', '<f4')]`): its
   * fields in order, packed; `descr` is then the list as written. Undefined for plain dtypes.
   */
  readonly fields?: readonly NpyStructField[];
  /** Bytes per record of a structured dtype (the sum of its fields' sizes). */
  readonly itemSize?: number;
}

/** One field of a structured `.npy` dtype. */
export interface NpyStructField {
  readonly name: string;
  /** NumPy's dtype string as written, e.g. `'<f4'`, `'|u1'`, `'<f8'`. */
  readonly dtype: string;
  /** Byte offset of the field in a record. */
  readonly offset: number;
  /** Bytes of one value. */
  readonly size: number;
}

const encoder = new TextEncoder();
const headerCache = new Map<string, Uint8Array>();

/**
 * The `.npy` v1.0 header that `numpy.save` writes for a C-order `'<f4'` array of this shape, byte
 * for byte. The result is shared and cached: do not modify it.
 */
export function encodeNpyHeader(shape: readonly number[], descr = '<f4'): Uint8Array {
  return encodeHeader(shape, `'${descr}'`);
}

/**
 * The `.npy` v1.0 header `numpy.save` writes for a 1-D structured array of `rowCount` records
 * with these fields (name and NumPy dtype string, e.g. `['x', '<f4']`), packed (no alignment
 * padding), byte for byte. Names must be plain (letters, digits, `_`). Shared and cached.
 */
export function encodeStructuredNpyHeader(
  rowCount: number,
  fields: readonly (readonly [name: string, dtype: string])[],
): Uint8Array {
  for (const [name, dtype] of fields) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || !/^[<>|=][a-zA-Z][0-9]{1,2}$/.test(dtype))
      throw new RangeError(`invalid structured field ${name}: ${dtype}`);
  }
  const descr = `[${fields.map(([name, dtype]) => `('${name}', '${dtype}')`).join(', ')}]`;
  return encodeHeader([rowCount], descr);
}

function encodeHeader(shape: readonly number[], descrRepr: string): Uint8Array {
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0)
      throw new RangeError(`invalid npy shape dimension ${dim}`);
  }
  const shapeRepr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const key = `${descrRepr}${shapeRepr}`;
  const cached = headerCache.get(key);
  if (cached) return cached;

  let dict = `{'descr': ${descrRepr}, 'fortran_order': False, 'shape': ${shapeRepr}, }`;
  if (shape.length > 0)
    dict += ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length));
  const unpadded = NPY_MAGIC.length + 2 + 2 + dict.length + 1;
  // As numpy's _wrap_header: always 1 to 64 spaces, a full 64 when already aligned.
  const total = unpadded + NPY_ALIGN - (unpadded % NPY_ALIGN);
  const headerLength = total - 10;
  if (headerLength > 0xffff) throw new RangeError('npy header too long for format 1.0');
  const bytes = new Uint8Array(total);
  bytes.set(NPY_MAGIC, 0);
  bytes[6] = 1;
  bytes[7] = 0;
  new DataView(bytes.buffer).setUint16(8, headerLength, true);
  bytes.set(encoder.encode(dict), 10);
  bytes.fill(0x20, 10 + dict.length, total - 1);
  bytes[total - 1] = 0x0a;
  if (headerCache.size > 1024) headerCache.clear();
  headerCache.set(key, bytes);
  return bytes;
}

/** True when `bytes` begins with the `.npy` magic string. */
export function hasNpyMagic(bytes: Uint8Array): boolean {
  if (bytes.length < NPY_MAGIC.length) return false;
  for (let i = 0; i < NPY_MAGIC.length; i++) if (bytes[i] !== NPY_MAGIC[i]) return false;
  return true;
}

function npyError(
  code: (typeof ErrorCodes)[keyof typeof ErrorCodes],
  message: string,
): PointstreamError {
  return new PointstreamError(code, message);
}

/**
 * Parses the header of a `.npy` file. `bytes` needs to hold at least the whole header (not the
 * data). Throws a {@link PointstreamError} with a `PS_ERR_NPY_*` code on anything malformed.
 */
export function parseNpyHeader(bytes: Uint8Array): NpyHeader {
  if (!hasNpyMagic(bytes)) throw npyError(ErrorCodes.NPY_BAD_MAGIC, 'not a .npy file (bad magic)');
  if (bytes.length < 10) throw npyError(ErrorCodes.NPY_TRUNCATED, '.npy preamble truncated');
  const major = bytes[6] ?? 0;
  const minor = bytes[7] ?? 0;
  if (minor !== 0 || major < 1 || major > 3) {
    throw npyError(ErrorCodes.NPY_BAD_VERSION, `unsupported .npy format version ${major}.${minor}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let preamble: number;
  let headerLength: number;
  if (major === 1) {
    preamble = 10;
    headerLength = view.getUint16(8, true);
  } else {
    if (bytes.length < 12) throw npyError(ErrorCodes.NPY_TRUNCATED, '.npy preamble truncated');
    preamble = 12;
    headerLength = view.getUint32(8, true);
  }
  if (headerLength > NPY_MAX_HEADER_BYTES) {
    throw npyError(
      ErrorCodes.NPY_BAD_HEADER,
      `.npy header of ${headerLength} bytes exceeds ${NPY_MAX_HEADER_BYTES}`,
    );
  }
  const dataOffset = preamble + headerLength;
  if (bytes.length < dataOffset) {
    throw npyError(
      ErrorCodes.NPY_TRUNCATED,
      `.npy header truncated: need ${dataOffset} bytes, have ${bytes.length}`,
    );
  }
  const text = decodeHeaderText(bytes.subarray(preamble, dataOffset), major);
  const dict = parseHeaderDict(text);
  const descrValue = dict.get('descr');
  const fortranOrder = dict.get('fortran_order');
  const shape = dict.get('shape');
  let descr: string;
  let fields: NpyStructField[] | undefined;
  let itemSize: number | undefined;
  if (isRecordList(descrValue)) {
    ({ fields, itemSize } = structLayout(descrValue));
    descr = `[${descrValue.map(([name, dtype]) => `('${name}', '${dtype}')`).join(', ')}]`;
  } else if (typeof descrValue === 'string') {
    descr = descrValue;
  } else {
    throw npyError(ErrorCodes.NPY_BAD_HEADER, ".npy header lacks a string or list 'descr'");
  }
  if (typeof fortranOrder !== 'boolean') {
    throw npyError(ErrorCodes.NPY_BAD_HEADER, ".npy header lacks a boolean 'fortran_order'");
  }
  if (!Array.isArray(shape))
    throw npyError(ErrorCodes.NPY_BAD_HEADER, ".npy header lacks a tuple 'shape'");
  if (dict.size !== 3) throw npyError(ErrorCodes.NPY_BAD_HEADER, '.npy header has unexpected keys');
  if (fields !== undefined && !shape.every((dim) => typeof dim === 'number'))
    throw npyError(ErrorCodes.NPY_BAD_HEADER, '.npy shape is not a tuple of integers');
  return {
    version: [major, minor],
    dataOffset,
    descr,
    fortranOrder,
    shape: shape as number[],
    ...(fields === undefined ? {} : { fields, itemSize }),
  };
}

/** At most this many fields in a structured dtype we read (PCL and PLY files have a dozen). */
const MAX_STRUCT_FIELDS = 64;

function isRecordList(value: DictValue | undefined): value is RecordList {
  return Array.isArray(value) && value.length > 0 && Array.isArray(value[0]);
}

/** Offsets and sizes of a packed structured dtype; refuses what is not plain numbers. */
function structLayout(list: RecordList): { fields: NpyStructField[]; itemSize: number } {
  if (list.length > MAX_STRUCT_FIELDS)
    throw npyError(
      ErrorCodes.NPY_UNSUPPORTED_DTYPE,
      `.npy dtype has over ${MAX_STRUCT_FIELDS} fields`,
    );
  const fields: NpyStructField[] = [];
  const names = new Set<string>();
  let offset = 0;
  for (const [name, dtype] of list) {
    const match = /^[<>|=]?([fiub])([1248])$/.exec(dtype);
    if (match === null || name.length === 0) {
      throw npyError(
        ErrorCodes.NPY_UNSUPPORTED_DTYPE,
        `.npy field ${JSON.stringify(name)} has dtype ${dtype}: only plain numbers (f4, f8, u1-u8, i1-i8) are read`,
      );
    }
    if (names.has(name)) throw npyError(ErrorCodes.NPY_BAD_HEADER, `.npy field ${name} twice`);
    names.add(name);
    const size = Number(match[2]);
    fields.push({ name, dtype, offset, size });
    offset += size;
  }
  return { fields, itemSize: offset };
}

function decodeHeaderText(bytes: Uint8Array, major: number): string {
  if (major < 3) {
    // latin-1 / ASCII: any byte above 0x7f is suspicious in a header numpy wrote.
    for (const byte of bytes) {
      if (byte > 0x7e || (byte < 0x20 && byte !== 0x0a && byte !== 0x09)) {
        throw npyError(ErrorCodes.NPY_BAD_HEADER, '.npy header contains non-ASCII bytes');
      }
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    throw new PointstreamError(ErrorCodes.NPY_BAD_HEADER, '.npy header is not valid UTF-8', {
      cause,
    });
  }
}

type RecordList = [name: string, dtype: string][];
type DictValue = string | boolean | number[] | RecordList;

/** A strict reader for the Python literal dict numpy writes: string keys, str/bool/int-tuple values. */
function parseHeaderDict(text: string): Map<string, DictValue> {
  let pos = 0;
  const fail = (what: string): never => {
    throw npyError(ErrorCodes.NPY_BAD_HEADER, `.npy header: ${what} at offset ${pos}`);
  };
  const skipSpace = (): void => {
    while (pos < text.length && (text[pos] === ' ' || text[pos] === '\n' || text[pos] === '\t'))
      pos++;
  };
  const expect = (char: string): void => {
    skipSpace();
    if (text[pos] !== char) fail(`expected '${char}'`);
    pos++;
  };
  const readString = (): string => {
    skipSpace();
    const quote = text[pos];
    if (quote !== "'" && quote !== '"') fail('expected a string');
    const end = text.indexOf(quote as string, pos + 1);
    if (end < 0) fail('unterminated string');
    const value = text.slice(pos + 1, end);
    if (value.includes('\\')) fail('escapes are not supported');
    pos = end + 1;
    return value;
  };
  const readTuple = (): number[] => {
    expect('(');
    const dims: number[] = [];
    skipSpace();
    while (text[pos] !== ')') {
      const match = /^[0-9]{1,16}/.exec(text.slice(pos, pos + 17));
      if (!match) fail('expected a dimension');
      const dim = Number(match![0]);
      if (!Number.isSafeInteger(dim)) fail('dimension too large');
      dims.push(dim);
      pos += match![0].length;
      skipSpace();
      if (text[pos] === ',') {
        pos++;
        skipSpace();
      } else if (text[pos] !== ')') fail("expected ',' or ')'");
      if (dims.length > 32) fail('too many dimensions');
    }
    pos++;
    return dims;
  };
  // A structured dtype: `[('name', 'dtype'), ...]`; sub-arrays (a third tuple item) are refused.
  const readRecordList = (): RecordList => {
    expect('[');
    const list: RecordList = [];
    skipSpace();
    while (text[pos] !== ']') {
      expect('(');
      const name = readString();
      expect(',');
      const dtype = readString();
      skipSpace();
      if (text[pos] === ',') {
        pos++;
        skipSpace();
      }
      if (text[pos] !== ')') fail('only (name, dtype) pairs are supported in a structured dtype');
      pos++;
      list.push([name, dtype]);
      if (list.length > MAX_STRUCT_FIELDS) fail('too many fields');
      skipSpace();
      if (text[pos] === ',') {
        pos++;
        skipSpace();
      } else if (text[pos] !== ']') fail("expected ',' or ']'");
      if (pos >= text.length) fail('unterminated list');
    }
    pos++;
    if (list.length === 0) fail('empty structured dtype');
    return list;
  };
  const readValue = (): DictValue => {
    skipSpace();
    const char = text[pos];
    if (char === "'" || char === '"') return readString();
    if (char === '(') return readTuple();
    if (char === '[') return readRecordList();
    if (text.startsWith('True', pos)) {
      pos += 4;
      return true;
    }
    if (text.startsWith('False', pos)) {
      pos += 5;
      return false;
    }
    return fail('unsupported value');
  };

  const dict = new Map<string, DictValue>();
  expect('{');
  skipSpace();
  while (text[pos] !== '}') {
    const key = readString();
    if (dict.has(key)) fail(`duplicate key '${key}'`);
    expect(':');
    dict.set(key, readValue());
    skipSpace();
    if (text[pos] === ',') {
      pos++;
      skipSpace();
    } else if (text[pos] !== '}') fail("expected ',' or '}'");
    if (pos >= text.length) fail('unterminated dict');
  }
  pos++;
  skipSpace();
  if (pos !== text.length) fail('trailing characters after dict');
  return dict;
}

/**
 * Checks that a parsed header describes a point cloud this format carries: little-endian float32,
 * C order, shape `(N, 3)`. Returns N.
 */
export function pointCountOfNpyHeader(header: NpyHeader): number {
  if (header.descr !== '<f4') {
    throw npyError(
      ErrorCodes.NPY_UNSUPPORTED_DTYPE,
      `.npy dtype ${header.descr} is not supported: points must be little-endian float32 ('<f4')`,
    );
  }
  if (header.fortranOrder) {
    throw npyError(
      ErrorCodes.NPY_FORTRAN_ORDER,
      '.npy array is in Fortran order; points must be C order',
    );
  }
  const [rows, columns] = header.shape;
  if (header.shape.length !== 2 || columns !== 3 || rows === undefined) {
    throw npyError(
      ErrorCodes.NPY_BAD_SHAPE,
      `.npy shape (${header.shape.join(', ')}) is not (N, 3)`,
    );
  }
  return rows;
}
