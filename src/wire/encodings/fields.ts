import { ErrorCodes, PointstreamError, invalidOption } from '../../errors.js';
import {
  FIELD_TYPES,
  FieldCodec,
  columnOffsets,
  describeFields,
  fieldBytes,
  fieldView,
} from '../fields.js';
import type {
  EncodedFields,
  FieldArray,
  FieldColumn,
  FieldTable,
  FieldTypeName,
  PointFields,
} from '../fields.js';
import { HOST_IS_LITTLE_ENDIAN } from '../points.js';
import { corruptField, decodeColumn, encodeDeltaRice, encodeQuantRice } from './field-columns.js';
import type { CodedColumn } from './field-columns.js';

/**
 * How a frame's per-point fields travel (docs/encodings.md, "Field columns"): which codec each
 * column gets, and the columns of a verified payload back as typed arrays. The coded columns
 * themselves are field-columns.ts. Pure, no Node-only APIs (runs in pages and workers too).
 */

/** Options of {@link encodeFields}. */
export interface FieldEncodeOptions {
  /**
   * `raw`: every column as it is (what `.npy` frames carry: lossless, no copies). `coded` (q16
   * and qrice frames): integer fields delta-rice (lossless), float fields quant-rice at the step
   * `fieldPrecision` gives them, raw when it names none.
   */
  readonly mode: 'raw' | 'coded';
  /** Largest error wanted per float field, by name (a step of about twice that is used). */
  readonly fieldPrecision?: Readonly<Record<string, number>>;
}

/**
 * Encodes `fields` (checked against `pointCount`) as columns for a frame. In `coded` mode a
 * column is never larger than raw: a coded column that would be is sent raw (lossless, a view).
 * A float field named by `fieldPrecision` is sent raw, losslessly, when it holds NaN or an
 * infinity (quant-rice has no code for them) or when its type cannot resolve the precision at
 * the column's magnitudes. Throws `PS_ERR_FIELDS_INVALID` for bad fields and
 * `PS_ERR_INVALID_OPTION` for a bad mode, a `fieldPrecision` that names a field the frame lacks
 * or an integer field, a precision that is not a finite number above 0, or one so fine for the
 * column's range that it would need more than 2^32 - 1 steps.
 */
export function encodeFields(
  fields: PointFields,
  pointCount: number,
  options: FieldEncodeOptions,
): EncodedFields {
  if (options?.mode !== 'raw' && options?.mode !== 'coded') {
    throw invalidOption('mode', "'raw' or 'coded'", options?.mode);
  }
  const specs = describeFields(fields, pointCount);
  const precision = checkFieldPrecision(options.fieldPrecision, specs);
  if (!HOST_IS_LITTLE_ENDIAN) throw new Error('big-endian hosts are not supported');
  const columns: FieldColumn[] = [];
  const bytes: Uint8Array[] = [];
  const maxErrors: Record<string, number> = {};
  for (const { name, type } of specs) {
    const values = fields[name] as FieldArray;
    const raw = fieldBytes(values);
    let coded: CodedColumn | undefined;
    if (options.mode === 'coded') {
      // Own keys only: a field may be named `constructor`.
      const maxError = Object.hasOwn(precision, name) ? precision[name] : undefined;
      if (!FIELD_TYPES[type].float) coded = encodeDeltaRice(values, pointCount);
      else if (maxError !== undefined) coded = encodeQuantRice(values, pointCount, maxError, name);
    }
    if (coded !== undefined && coded.bytes.length < raw.length) {
      columns.push({ name, type, ...coded.column, byteLength: coded.bytes.length });
      bytes.push(coded.bytes);
      maxErrors[name] = coded.maxError;
    } else {
      columns.push({ name, type, codec: FieldCodec.RAW, param: 0, byteLength: raw.length });
      bytes.push(raw);
      maxErrors[name] = 0;
    }
  }
  return { columns, bytes, maxErrors };
}

function checkFieldPrecision(
  precision: Readonly<Record<string, number>> | undefined,
  specs: readonly { readonly name: string; readonly type: FieldTypeName }[],
): Readonly<Record<string, number>> {
  if (precision === undefined) return {};
  if (typeof precision !== 'object' || precision === null) {
    throw invalidOption('fieldPrecision', 'an object of max errors by field name', precision);
  }
  for (const [name, value] of Object.entries(precision)) {
    const spec = specs.find((s) => s.name === name);
    if (spec === undefined) {
      throw invalidOption(
        `fieldPrecision.${name}`,
        `the name of a float field of the frame (${floatNames(specs)})`,
        name,
      );
    }
    if (!FIELD_TYPES[spec.type].float) {
      throw invalidOption(
        `fieldPrecision.${name}`,
        `the name of a float field (${name} is ${spec.type}, always lossless)`,
        name,
      );
    }
    if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
      throw invalidOption(`fieldPrecision.${name}`, 'a finite number above 0', value);
    }
  }
  return precision;
}

function floatNames(specs: readonly { readonly name: string; readonly type: FieldTypeName }[]) {
  const names = specs.filter((s) => FIELD_TYPES[s.type].float).map((s) => s.name);
  return names.length === 0 ? 'it has none' : names.join(', ');
}

/**
 * The fields of a verified payload laid out by `table`: raw columns as views into `payload`,
 * coded ones decoded into new arrays (never more than `pointCount` values each). Throws
 * `PS_ERR_ENCODING_CORRUPT` (details: `field`) for a column that does not decode to exactly
 * `pointCount` values of its type, and `PS_ERR_ENCODING_UNSUPPORTED` for an unknown codec.
 */
export function decodeFields(
  payload: Uint8Array,
  table: FieldTable,
  pointCount: number,
): PointFields {
  if (!Number.isSafeInteger(pointCount) || pointCount < 0) {
    throw invalidOption('pointCount', 'a non-negative integer', pointCount);
  }
  const offsets = columnOffsets(table);
  const fields: Record<string, FieldArray> = {};
  table.columns.forEach((column, i) => {
    const offset = offsets[i] as number;
    if (offset + column.byteLength > payload.length) {
      throw corruptField(column.name, `column ends after the payload's ${payload.length} bytes`);
    }
    switch (column.codec) {
      case FieldCodec.RAW:
        if (column.byteLength !== pointCount * FIELD_TYPES[column.type].bytes) {
          throw corruptField(column.name, `raw column of ${column.byteLength} bytes`);
        }
        fields[column.name] = fieldView(payload, offset, column.type, pointCount);
        return;
      case FieldCodec.DELTA_RICE:
      case FieldCodec.QUANT_RICE:
        fields[column.name] = decodeColumn(
          payload.subarray(offset, offset + column.byteLength),
          column,
          pointCount,
        );
        return;
      default:
        throw new PointstreamError(
          ErrorCodes.ENCODING_UNSUPPORTED,
          `field ${column.name}: codec ${String(column.codec)} is not supported here`,
          { details: { field: column.name } },
        );
    }
  });
  return Object.freeze(fields);
}
