import { invalidOption } from '../errors.js';
import { withDefaults } from '../util/options.js';
import { POINT_ENCODING_NAMES } from '../wire/encodings/index.js';
import type { PointEncodingName } from '../wire/encodings/index.js';
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
}

/** The options after defaults and checks. */
export type ResolvedSenderOptions = SenderLimits & {
  readonly firstSeq: number;
  readonly encoding: PointEncodingName;
  readonly precision: number | undefined;
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
  const { firstSeq, encoding, precision } = options;
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
  if (limits.lowWaterMark > limits.highWaterMark) {
    throw invalidOption(
      'lowWaterMark',
      `at most highWaterMark (${limits.highWaterMark})`,
      limits.lowWaterMark,
    );
  }
  return { ...limits, firstSeq: firstSeq ?? 0, encoding: encoding ?? 'raw', precision };
}
