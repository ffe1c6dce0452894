import { ErrorCodes, PointstreamError } from '../../errors.js';
import { FieldCodec, rawFields, viewRawFields } from '../fields.js';
import type { EncodedFields, FieldTable, PointFields } from '../fields.js';

/**
 * Field column codecs (docs/encodings.md, "Field columns"): how a frame's per-point fields
 * travel. Pure, no Node-only APIs (runs in pages and workers too).
 */

/** Options of {@link encodeFields}. */
export interface FieldEncodeOptions {
  /**
   * `raw`: every column as it is (what `.npy` frames carry: lossless, no copies). `coded` (q16
   * and qrice frames): integer fields delta-rice (lossless), float fields quant-rice at the step
   * `fieldPrecision` gives them, raw when it names none.
   */
  readonly mode: 'raw' | 'coded';
  /** Largest error wanted per float field, by name (a step of twice that is used). */
  readonly fieldPrecision?: Readonly<Record<string, number>>;
}

/** Encodes `fields` (checked against `pointCount`) as columns for a frame. */
export function encodeFields(
  fields: PointFields,
  pointCount: number,
  options: FieldEncodeOptions,
): EncodedFields {
  // Contract stub: coded columns come with the codec work (issue 18); raw columns meanwhile.
  void options;
  return rawFields(fields, pointCount);
}

/**
 * The fields of a verified payload laid out by `table`: raw columns as views into `payload`,
 * coded ones decoded into new arrays (never more than `pointCount` values each). Throws
 * `PS_ERR_ENCODING_CORRUPT` for a column that does not decode to exactly `pointCount` values.
 */
export function decodeFields(
  payload: Uint8Array,
  table: FieldTable,
  pointCount: number,
): PointFields {
  for (const column of table.columns) {
    if (column.codec !== FieldCodec.RAW) {
      throw new PointstreamError(
        ErrorCodes.ENCODING_UNSUPPORTED,
        `field ${column.name}: codec ${column.codec} is not decoded yet`,
      );
    }
  }
  return viewRawFields(payload, table, pointCount);
}
