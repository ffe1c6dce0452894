import { FIELD_LIMITS, FIELD_TYPES, fieldTypeOf, isFieldName } from '../wire/fields.js';
import type { PointFields } from '../wire/fields.js';

/**
 * The two field settings as people type them, shared by `send --fields/--field-precision` and
 * the browser sender's form. Pure; each throws a RangeError saying what is wrong.
 */

/**
 * `x,y,z,intensity`: the names of an (N, K) array's columns. x, y and z exactly once; the others
 * field names, each once; `_` for a column not sent.
 */
export function parseFieldNames(value: string): string[] {
  const names = value.split(',').map((name) => name.trim());
  const seen = new Set<string>();
  for (const name of names) {
    if (name === '_') continue;
    if (name !== 'x' && name !== 'y' && name !== 'z' && !isFieldName(name))
      throw new RangeError(
        `${JSON.stringify(name)} is not a field name (1-${FIELD_LIMITS.maxNameBytes} of A-Z a-z 0-9 _, not starting with a digit; _ skips a column)`,
      );
    if (seen.has(name)) throw new RangeError(`${name} is named twice`);
    seen.add(name);
  }
  const missing = ['x', 'y', 'z'].filter((axis) => !seen.has(axis));
  if (missing.length > 0)
    throw new RangeError(`expected x, y and z among the names; ${missing.join(', ')} missing`);
  if (seen.size - 3 > FIELD_LIMITS.maxFields)
    throw new RangeError(`at most ${FIELD_LIMITS.maxFields} fields besides x, y, z`);
  return names;
}

/** `intensity=0.01,time=1e-6`: the largest error per float field, each above 0. */
export function parseFieldPrecision(value: string): Record<string, number> {
  const precision: Record<string, number> = {};
  for (const item of value.split(',')) {
    const match = /^\s*([^=\s]+)\s*=\s*(\S+)\s*$/.exec(item);
    const name = match?.[1];
    if (match === null || name === undefined || !isFieldName(name))
      throw new RangeError(
        `expected name=maxError,... with field names, e.g. intensity=0.01,time=1e-6; got ${JSON.stringify(item.trim())}`,
      );
    const error = Number(match[2]);
    if (!Number.isFinite(error) || error <= 0)
      throw new RangeError(`${name}: expected a largest error above 0; got ${match[2]}`);
    if (Object.hasOwn(precision, name)) throw new RangeError(`${name} is given twice`);
    precision[name] = error;
  }
  return precision;
}

/**
 * A field precision (`--field-precision`) against the fields a frame carries: each name must be one of its float
 * fields (a precision for an integer field, or for a field not sent, is a mistake). Throws a
 * RangeError.
 */
export function checkFieldPrecision(
  fieldPrecision: Readonly<Record<string, number>>,
  fields: PointFields,
): void {
  for (const name of Object.keys(fieldPrecision)) {
    const values = fields[name];
    const type = values === undefined ? undefined : fieldTypeOf(values);
    if (type === undefined)
      throw new RangeError(
        `the input has no field ${name}${Object.keys(fields).length > 0 ? ` (its fields: ${Object.keys(fields).join(', ')})` : ' (it has no fields)'}`,
      );
    if (!FIELD_TYPES[type].float)
      throw new RangeError(
        `field ${name} is ${type}, an integer type: integer fields always travel losslessly`,
      );
  }
}
