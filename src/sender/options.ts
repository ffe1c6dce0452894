import { invalidOption } from '../errors.js';
import { withDefaults } from '../util/options.js';
import { POINT_ENCODING_NAMES } from '../wire/encodings/index.js';
import type { PointEncodingName } from '../wire/encodings/index.js';
import { isFieldName } from '../wire/fields.js';
import { MIN_MESSAGE_BYTES } from '../wire/frame.js';
import { SENDER_DEFAULTS } from './defaults.js';

/** The tunables of a frame sender, each defaulting to {@link SENDER_DEFAULTS}. */
export type SenderLimits = { -readonly [K in keyof typeof SENDER_DEFAULTS]: number };

/** The sender options beyond the limits. */
export interface SenderSettings {
  /** Sequence number of the first frame. (0) */
  readonly firstSeq?: number | undefined;
  /** How `send` encodes plain points (pre-encoded points keep theirs). (`raw`) */
  readonly encoding?: PointEncodingName | undefined;
  /** Largest error per coordinate for `qrice`, in metres. (0.001) */
  readonly precision?: number | undefined;
  /**
   * Largest error per float field of `q16`/`qrice` frames, by field name, in the field's units
   * (e.g. `{ intensity: 0.01, time: 1e-6 }`); fields it does not name travel losslessly. `raw`
   * frames ignore it. (none: every field lossless)
   */
  readonly fieldPrecision?: Readonly<Record<string, number>> | undefined;
}

/** The options after defaults and checks. */
export type ResolvedSenderOptions = SenderLimits & {
  readonly firstSeq: number;
  readonly encoding: PointEncodingName;
  readonly precision: number | undefined;
  readonly fieldPrecision: Readonly<Record<string, number>> | undefined;
};

/**
 * Checks the sender's options (RangeError-like `PS_ERR_INVALID_OPTION`, naming the field) and
 * lays them over {@link SENDER_DEFAULTS}; the Node client and the browser sender both go through
 * here.
 */
export function resolveSenderOptions(
  options: Partial<SenderLimits> & SenderSettings,
): ResolvedSenderOptions {
  const limits = withDefaults<SenderLimits>(SENDER_DEFAULTS, options);
  for (const key of Object.keys(SENDER_DEFAULTS) as (keyof SenderLimits)[]) {
    const value = limits[key];
    if (!Number.isSafeInteger(value) || value < 1)
      throw invalidOption(key, 'a positive integer', value);
  }
  const { firstSeq, encoding, precision, fieldPrecision } = options;
  if (
    firstSeq !== undefined &&
    (!Number.isSafeInteger(firstSeq) || firstSeq < 0 || firstSeq > 0xffff_ffff)
  ) {
    throw invalidOption('firstSeq', 'an integer in [0, 2^32)', firstSeq);
  }
  if (limits.maxMessageBytes < MIN_MESSAGE_BYTES) {
    throw invalidOption('maxMessageBytes', `at least ${MIN_MESSAGE_BYTES}`, limits.maxMessageBytes);
  }
  if (encoding !== undefined && !POINT_ENCODING_NAMES.includes(encoding)) {
    throw invalidOption('encoding', `one of ${POINT_ENCODING_NAMES.join(', ')}`, encoding);
  }
  if (
    precision !== undefined &&
    (typeof precision !== 'number' || !Number.isFinite(precision) || precision <= 0)
  ) {
    throw invalidOption('precision', 'a positive number of metres', precision);
  }
  if (fieldPrecision !== undefined) checkFieldPrecision(fieldPrecision);
  if (limits.lowWaterMark > limits.highWaterMark) {
    throw invalidOption(
      'lowWaterMark',
      `at most highWaterMark (${limits.highWaterMark})`,
      limits.lowWaterMark,
    );
  }
  return {
    ...limits,
    firstSeq: firstSeq ?? 0,
    encoding: encoding ?? 'raw',
    precision,
    fieldPrecision: fieldPrecision === undefined ? undefined : Object.freeze({ ...fieldPrecision }),
  };
}

function checkFieldPrecision(value: unknown): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidOption('fieldPrecision', 'an object of maximum errors by field name', value);
  for (const [name, error] of Object.entries(value)) {
    if (!isFieldName(name))
      throw invalidOption('fieldPrecision', 'field names (A-Z a-z 0-9 _, not x, y or z)', name);
    if (typeof error !== 'number' || !Number.isFinite(error) || error <= 0)
      throw invalidOption(`fieldPrecision.${name}`, 'a finite number above 0', error);
  }
}
