import { ErrorCodes, PointstreamError } from '../errors.js';
import type { FieldTypeName } from '../wire/fields.js';
import { CloudBuilder } from './cloud-builder.js';
import type { FileProperty, PointFile } from './cloud-builder.js';

/**
 * Text point files (`.xyz`, `.txt`, `.csv`): one point per line, numbers separated by spaces,
 * tabs, commas or semicolons; lines starting with `#` or `//` and blank lines are skipped. A
 * first line of names (`x,y,z,intensity`, as CSV headers are) names the columns; else
 * `fieldNames` (`send --fields`) does; else the first three are x, y, z and the rest are dropped
 * (and reported). Columns other than x, y, z are float32 when every value has at most 6
 * significant digits (float32 keeps those exactly), else float64 (a timestamp keeps its
 * microseconds). Browser-safe.
 */

export const TEXT_EXTENSIONS = ['.xyz', '.txt', '.csv'] as const;

const SEPARATOR = /[\s,;]+/;

function textError(message: string): PointstreamError {
  return new PointstreamError(ErrorCodes.SOURCE_UNREADABLE, message);
}

/** Significant digits of a decimal number as written (`0.00125` has 3, `1.5e3` has 2). */
function significantDigits(token: string): number {
  const mantissa = token.replace(/^[+-]/, '').split(/[eE]/)[0] ?? '';
  return mantissa.replace('.', '').replace(/^0+/, '').length;
}

/** A text file's points and fields. */
export function textPointFile(bytes: Uint8Array, fieldNames?: readonly string[]): PointFile {
  const text = new TextDecoder('latin1').decode(bytes);
  // Values row by row, in a buffer that grows (a file's values fit in 8 bytes each: no string
  // per value is kept).
  let values = new Float64Array(1024);
  let count = 0;
  let rows = 0;
  let header: string[] | undefined;
  let width: number | undefined;
  /** Per column: may it be float32 (every value has at most 6 significant digits)? */
  let short: boolean[] = [];
  let lineNumber = 0;
  for (const raw of text.split('\n')) {
    lineNumber++;
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('//')) continue;
    const tokens = line.split(SEPARATOR).filter((token) => token !== '');
    if (rows === 0 && header === undefined && tokens.some((t) => !isNumber(t))) {
      header = tokens;
      width = tokens.length;
      short = tokens.map(() => true);
      continue;
    }
    if (width === undefined) {
      width = tokens.length;
      short = tokens.map(() => true);
    }
    if (tokens.length !== width)
      throw textError(
        `line ${lineNumber} has ${tokens.length} values; the ${header === undefined ? 'first line' : 'header'} has ${width}`,
      );
    if (count + width > values.length) {
      const grown = new Float64Array(values.length * 2 + width);
      grown.set(values);
      values = grown;
    }
    tokens.forEach((token, column) => {
      const value = parseNumber(token);
      if (Number.isNaN(value) && !/^[+-]?nan$/i.test(token))
        throw textError(
          `line ${lineNumber}: ${JSON.stringify(token.slice(0, 40))} is not a number`,
        );
      if (short[column] === true && significantDigits(token) > 6) short[column] = false;
      values[count++] = value;
    });
    rows++;
  }
  if (width === undefined)
    throw new PointstreamError(ErrorCodes.SOURCE_EMPTY, 'no points in the file');
  if (header !== undefined && fieldNames !== undefined)
    throw textError('--fields names the columns of an (N, K) array; this file names its own');
  const names = header ?? fieldNames;
  if (names !== undefined && names.length !== width)
    throw textError(
      `--fields names ${names.length} columns (${names.join(',')}); the file has ${width}`,
    );
  if (width < 3) throw textError(`the file has ${width} columns; x, y, z need 3`);
  const read = names ?? ['x', 'y', 'z'];
  const properties: FileProperty[] = read.map((name, column) => {
    const axis = name === 'x' || name === 'y' || name === 'z';
    const type: FieldTypeName = axis || short[column] === true ? 'f32' : 'f64';
    return { name, type, ...(name === '_' ? { skip: true } : {}) };
  });
  const builder = new CloudBuilder(rows, properties);
  const stride = width;
  properties.forEach((_, column) => {
    const target = builder.targets[column];
    if (target === undefined) return;
    for (let r = 0; r < rows; r++)
      target.array[target.offset + r * target.stride] = values[r * stride + column] as number;
  });
  return builder.result(names === undefined ? width - 3 : 0);
}

function isNumber(token: string): boolean {
  return !Number.isNaN(parseNumber(token)) || /^[+-]?nan$/i.test(token);
}

function parseNumber(token: string): number {
  if (/^[+-]?nan$/i.test(token)) return NaN;
  if (/^[+-]?inf(inity)?$/i.test(token)) return token.startsWith('-') ? -Infinity : Infinity;
  return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(token) ? Number(token) : NaN;
}
