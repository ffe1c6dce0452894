import { ErrorCodes, PointstreamError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { FIELD_LIMITS, FIELD_TYPES, NO_FIELDS, fieldTypeOf, isFieldName } from '../wire/fields.js';
import { HOST_IS_LITTLE_ENDIAN } from '../wire/points.js';
import type { FieldArray, FieldTypeName, PointFields } from '../wire/fields.js';

/**
 * What the point file readers share: a file's properties (columns) by name and type become x, y,
 * z float32 triples plus one typed array per other property, its type kept. Names that are not
 * field names (`normal-x`, `1st`) are mapped to ones that are (`normal_x`, `_1st`) and reported;
 * a mapping that collides, or more fields than a frame carries, is refused (PS_ERR_FIELDS_INVALID).
 * Pure, browser-safe.
 */

/** What reading a point file left out or changed. */
export interface PointFileConversion {
  /** Values per point read but not sent: columns 4+ of an (N, K) array read without names. */
  readonly droppedColumns: number;
  /** The type x, y, z were converted from to float32 (`float64`; for PLY its type name), if any. */
  readonly convertedFrom: string | undefined;
  /** Field names mapped to valid ones, `[from, to]`; absent when none was. */
  readonly renamed?: readonly (readonly [from: string, to: string])[];
  /** Properties read but not sent (PLY list properties, PCD `_` padding, `_` columns); absent when none. */
  readonly skipped?: readonly string[];
}

/** A point file's x, y, z float32 triples, its other per-point values, and what reading them changed. */
export interface PointFile {
  readonly points: Float32Array;
  /** Every other property of the file, in its order, its type kept; {@link NO_FIELDS} for none. */
  readonly fields: PointFields;
  readonly conversion: PointFileConversion;
}

/** A column of a file, as its header declares it. */
export interface FileProperty {
  /** The name in the file (`x`, `intensity`, `normal-x`...). */
  readonly name: string;
  /** The type its values are kept as (x, y, z: converted to float32). */
  readonly type: FieldTypeName;
  /** Read but not sent (a PCD `_` padding field, a `_` column of `--fields`). */
  readonly skip?: boolean;
}

/** The field name a file's property travels under, or undefined when none can be made from it. */
export function fieldNameFor(name: string): string | undefined {
  if (isFieldName(name)) return name;
  let mapped = name.replace(/[^A-Za-z0-9_]/g, '_');
  if (/^[0-9]/.test(mapped)) mapped = `_${mapped}`;
  mapped = mapped.slice(0, FIELD_LIMITS.maxNameBytes);
  return isFieldName(mapped) ? mapped : undefined;
}

function fieldsError(message: string): PointstreamError {
  return new PointstreamError(ErrorCodes.FIELDS_INVALID, message);
}

/** Where a property's values go: a points axis (stride 3) or a field array (stride 1). */
interface Target {
  readonly array: Float32Array | FieldArray;
  readonly stride: number;
  readonly offset: number;
}

const AXES = ['x', 'y', 'z'] as const;

/** The type names used in messages ("float64 coordinates converted"). */
const LONG_NAMES: Record<FieldTypeName, string> = {
  f32: 'float32',
  f64: 'float64',
  u8: 'uint8',
  u16: 'uint16',
  u32: 'uint32',
  i8: 'int8',
  i16: 'int16',
  i32: 'int32',
};

/**
 * Checks the names (x, y and z among them, the rest mapped to field names, no two alike, at most
 * {@link FIELD_LIMITS.maxFields}), then allocates the arrays for `count` points. The caller has
 * checked `count` against the file's size: this is where the memory is taken.
 */
export class CloudBuilder {
  readonly count: number;
  readonly points: Float32Array;
  /** Per property, in the file's order: where its values go, or undefined when skipped. */
  readonly targets: readonly (Target | undefined)[];
  readonly #fields: Record<string, FieldArray> = {};
  readonly #renamed: [string, string][] = [];
  readonly #skipped: string[];
  readonly #convertedFrom: string | undefined;

  /**
   * `axisLabel` names the type x, y, z were stored as when it is not float32 (`double` for a
   * PLY); default: the long name of their type.
   */
  constructor(
    count: number,
    properties: readonly FileProperty[],
    options: {
      skipped?: readonly string[];
      axisLabel?: (type: FieldTypeName) => string;
      /** The code when x, y or z is missing (default PS_ERR_SOURCE_UNREADABLE). */
      missingAxisCode?: ErrorCode;
    } = {},
  ) {
    this.count = count;
    this.#skipped = [...(options.skipped ?? [])];
    const axisIndex = AXES.map((axis) => properties.findIndex((p) => p.name === axis && !p.skip));
    if (axisIndex.some((index) => index < 0))
      throw new PointstreamError(
        options.missingAxisCode ?? ErrorCodes.SOURCE_UNREADABLE,
        `the file lacks x, y or z: no ${AXES.filter((_, i) => (axisIndex[i] as number) < 0).join(', ')} among ${properties.map((p) => p.name).join(', ') || 'no properties'}`,
      );
    const names = new Map<string, string>();
    const plan: (string | number | undefined)[] = properties.map((property, index) => {
      const axis = axisIndex.indexOf(index);
      if (axis >= 0) return axis;
      if (property.skip === true) {
        if (!this.#skipped.includes(property.name)) this.#skipped.push(property.name);
        return undefined;
      }
      if (AXES.includes(property.name as 'x'))
        throw fieldsError(`property ${property.name} appears twice`);
      const name = fieldNameFor(property.name);
      if (name === undefined)
        throw fieldsError(
          `property ${JSON.stringify(property.name)} cannot be named as a field (1-${FIELD_LIMITS.maxNameBytes} of A-Z a-z 0-9 _)`,
        );
      const clash = names.get(name);
      if (clash !== undefined)
        throw fieldsError(
          clash === property.name
            ? `property ${property.name} appears twice`
            : `properties ${JSON.stringify(clash)} and ${JSON.stringify(property.name)} would both be sent as field ${name}`,
        );
      names.set(name, property.name);
      if (name !== property.name) this.#renamed.push([property.name, name]);
      return name;
    });
    if (names.size > FIELD_LIMITS.maxFields)
      throw fieldsError(
        `the file has ${names.size} properties besides x, y, z; a frame carries at most ${FIELD_LIMITS.maxFields} fields`,
      );
    const axisTypes = axisIndex.map((index) => (properties[index] as FileProperty).type);
    const wider = axisTypes.find((type) => type !== 'f32');
    this.#convertedFrom =
      wider === undefined ? undefined : (options.axisLabel ?? ((t) => LONG_NAMES[t]))(wider);
    // Every size is checked: from here on the memory is taken.
    this.points = new Float32Array(count * 3);
    this.targets = plan.map((entry, index) => {
      if (entry === undefined) return undefined;
      if (typeof entry === 'number') return { array: this.points, stride: 3, offset: entry };
      const info = FIELD_TYPES[(properties[index] as FileProperty).type];
      const array = new info.array(count);
      this.#fields[entry] = array;
      return { array, stride: 1, offset: 0 };
    });
  }

  /** The file's points and fields; `droppedColumns` as {@link PointFileConversion} says. */
  result(droppedColumns = 0): PointFile {
    const conversion: {
      droppedColumns: number;
      convertedFrom: string | undefined;
      renamed?: [string, string][];
      skipped?: string[];
    } = { droppedColumns, convertedFrom: this.#convertedFrom };
    if (this.#renamed.length > 0) conversion.renamed = this.#renamed;
    if (this.#skipped.length > 0) conversion.skipped = this.#skipped;
    const fields = Object.keys(this.#fields).length === 0 ? NO_FIELDS : Object.freeze(this.#fields);
    return { points: this.points, fields, conversion };
  }
}

type Reader = (view: DataView, offset: number) => number;

/** A DataView getter for one value of `type`. */
export function valueReader(type: FieldTypeName, littleEndian: boolean): Reader {
  switch (type) {
    case 'f32':
      return (v, o) => v.getFloat32(o, littleEndian);
    case 'f64':
      return (v, o) => v.getFloat64(o, littleEndian);
    case 'u8':
      return (v, o) => v.getUint8(o);
    case 'i8':
      return (v, o) => v.getInt8(o);
    case 'u16':
      return (v, o) => v.getUint16(o, littleEndian);
    case 'i16':
      return (v, o) => v.getInt16(o, littleEndian);
    case 'u32':
      return (v, o) => v.getUint32(o, littleEndian);
    case 'i32':
      return (v, o) => v.getInt32(o, littleEndian);
  }
}

/** Where one property's values lie in a block of binary data. */
export interface BinaryColumn {
  readonly type: FieldTypeName;
  /** Byte offset of the first point's value. */
  readonly offset: number;
  /** Bytes from one point's value to the next's (the record size; the value size when columnar). */
  readonly step: number;
  readonly littleEndian: boolean;
}

/**
 * Reads every property of `builder.count` points from `view` (checked by the caller to hold
 * them), one column at a time. A field keeps its bits (a NaN stays the NaN it was) since the
 * getter's type is the field's.
 */
export function readBinaryColumns(
  builder: CloudBuilder,
  view: DataView,
  columns: readonly BinaryColumn[],
): void {
  const count = builder.count;
  columns.forEach((column, index) => {
    const target = builder.targets[index];
    if (target === undefined || count === 0) return;
    copyColumn(target, view, column, count);
  });
}

/**
 * One column, with a loop per type: each loop's getter and store see one type, which V8 compiles
 * to tight code (one shared loop over closures ran 2-3 times slower). A contiguous aligned
 * little-endian column is one copy.
 */
function copyColumn(target: Target, view: DataView, column: BinaryColumn, count: number): void {
  const { array, stride } = target;
  const { step, littleEndian: le } = column;
  const info = FIELD_TYPES[column.type];
  const start = view.byteOffset + column.offset;
  if (
    le &&
    HOST_IS_LITTLE_ENDIAN &&
    step === info.bytes &&
    stride === 1 &&
    start % info.bytes === 0 &&
    fieldTypeOf(array) === column.type
  ) {
    array.set(new info.array(view.buffer as ArrayBuffer, start, count));
    return;
  }
  let out = target.offset;
  let at = column.offset;
  const end = at + count * step;
  switch (column.type) {
    case 'f32':
      for (; at < end; at += step, out += stride) array[out] = view.getFloat32(at, le);
      return;
    case 'f64':
      for (; at < end; at += step, out += stride) array[out] = view.getFloat64(at, le);
      return;
    case 'u8':
      for (; at < end; at += step, out += stride) array[out] = view.getUint8(at);
      return;
    case 'i8':
      for (; at < end; at += step, out += stride) array[out] = view.getInt8(at);
      return;
    case 'u16':
      for (; at < end; at += step, out += stride) array[out] = view.getUint16(at, le);
      return;
    case 'i16':
      for (; at < end; at += step, out += stride) array[out] = view.getInt16(at, le);
      return;
    case 'u32':
      for (; at < end; at += step, out += stride) array[out] = view.getUint32(at, le);
      return;
    case 'i32':
      for (; at < end; at += step, out += stride) array[out] = view.getInt32(at, le);
      return;
  }
}

const INTEGER_RANGES: Partial<Record<FieldTypeName, readonly [number, number]>> = {
  u8: [0, 0xff],
  i8: [-0x80, 0x7f],
  u16: [0, 0xffff],
  i16: [-0x8000, 0x7fff],
  u32: [0, 0xffff_ffff],
  i32: [-0x8000_0000, 0x7fff_ffff],
};

/**
 * The whitespace-separated tokens of the first `count` lines of an ASCII body (`.ply`, `.pcd`),
 * one array per line; a missing or blank line gives none, for the caller to report.
 */
export function* textRows(body: Uint8Array, count: number): Generator<string[]> {
  const text = new TextDecoder('latin1').decode(body);
  let at = 0;
  for (let row = 0; row < count; row++) {
    let next = text.indexOf('\n', at);
    if (next < 0) next = text.length;
    const line = text.slice(at, next).trim();
    at = next + 1;
    yield line === '' ? [] : line.split(/\s+/);
  }
}

/**
 * A text token as a value of `type`, or undefined when it is not one: floats take `nan`, `inf`
 * (as C's printf writes them), integers must be whole and in range.
 */
export function parseTextValue(token: string, type: FieldTypeName): number | undefined {
  if (token === '') return undefined;
  let value = Number(token);
  if (Number.isNaN(value)) {
    const lower = token.toLowerCase().replace(/^[+-]/, '');
    if (lower === 'nan' || lower === '-nan') value = NaN;
    else if (lower === 'inf' || lower === 'infinity')
      value = token.startsWith('-') ? -Infinity : Infinity;
    else return undefined;
    if (!FIELD_TYPES[type].float) return undefined;
    return value;
  }
  const range = INTEGER_RANGES[type];
  if (range !== undefined && (!Number.isInteger(value) || value < range[0] || value > range[1]))
    return undefined;
  return value;
}
