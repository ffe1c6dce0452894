import { ErrorCodes, PointstreamError, invalidOption } from '../../errors.js';
import { Encoding } from '../chunk.js';
import { encodeNpyHeader, parseNpyHeader, pointCountOfNpyHeader } from '../npy.js';
import { HOST_IS_LITTLE_ENDIAN, float32View, indexOfNonFinite } from '../points.js';
import { DEFAULT_REASSEMBLY_LIMITS } from '../limits.js';
import { decodeQ16, encodeQ16 } from './q16.js';
import { throwNonFinite } from './quantize.js';
import { decodeQrice, encodeQrice } from './qrice.js';
import { encodeFields } from './fields.js';
import type { EncodedFields, PointFields } from '../fields.js';

/**
 * Point encodings: how a frame's x, y, z float32 triples travel (docs/encodings.md). Pure and
 * synchronous once {@link encodingsReady} has resolved, free of Node-only APIs: the same code
 * runs in Node, in pages and in Web Workers.
 */

/** Wire ids by encoding name: the START header's `Encoding` values (chunk.ts), never reused. */
export const PointEncodingId = {
  RAW_NPY: Encoding.NPY,
  Q16: Encoding.Q16,
  QRICE: Encoding.QRICE,
} as const;
export type PointEncodingId = (typeof PointEncodingId)[keyof typeof PointEncodingId];

/** Names as used by `send --encoding`. */
export type PointEncodingName = 'raw' | 'q16' | 'qrice';
export const POINT_ENCODING_NAMES: readonly PointEncodingName[] = ['raw', 'q16', 'qrice'];

/** The wire id of each name (`raw` is the `.npy` payload, id 1). */
export const pointEncodingIdOf: Readonly<Record<PointEncodingName, PointEncodingId>> = {
  raw: PointEncodingId.RAW_NPY,
  q16: PointEncodingId.Q16,
  qrice: PointEncodingId.QRICE,
};

/** Options of {@link encodePoints}. */
export interface EncodeOptions {
  /**
   * Largest error wanted per coordinate, in metres (default 0.001). Used by encodings that pick
   * their step from it; q16's step is set by the frame's bounds and ignores it.
   */
  readonly precision?: number;
  /**
   * Per-point fields to encode with the points (`fields` of the result): raw columns for `raw`,
   * coded ones for q16 and qrice (docs/encodings.md, "Field columns"). Absent or empty: none.
   */
  readonly fields?: PointFields;
  /** Largest error per float field, by name (q16 and qrice); fields it does not name are lossless. */
  readonly fieldPrecision?: Readonly<Record<string, number>>;
}

export const DEFAULT_PRECISION = 0.001;

export interface EncodedPoints {
  /** The payload (for `raw`: a complete `.npy` file of shape (N, 3), `<f4`). */
  readonly bytes: Uint8Array;
  /** Wire id ({@link PointEncodingId}). */
  readonly encoding: PointEncodingId;
  readonly pointCount: number;
  /** Bound on |decoded - original| for every coordinate; 0 for `raw`. */
  readonly maxError: number;
  /** The frame's fields as columns, when it has any (set by `encodePoints` given `fields`). */
  readonly fields?: EncodedFields | undefined;
}

/** Limits of {@link decodePoints}. */
export interface DecodeLimits {
  /** Most points a payload may declare (default 5 000 000, the reassembler's default). */
  readonly maxPoints?: number;
}

/** Resolves when every encoding can run (none needs set-up yet; later ones may load WASM). */
export async function encodingsReady(): Promise<void> {
  // Nothing to wait for yet.
}

/**
 * Encodes the x, y, z triples of `points` (`points.length / 3` points), and `options.fields`
 * when given. Throws `PS_ERR_FRAME_NON_FINITE` before encoding when a coordinate is NaN or
 * infinite, `PS_ERR_FIELDS_INVALID` for bad fields, and a `TypeError` (`PS_ERR_INVALID_OPTION`)
 * on bad arguments. Never modifies `points` or the fields.
 */
export function encodePoints(
  points: Float32Array,
  name: PointEncodingName,
  options: EncodeOptions = {},
): EncodedPoints {
  if (!(points instanceof Float32Array) || points.length % 3 !== 0) {
    throw invalidOption('points', 'a Float32Array of x, y, z triples', points);
  }
  const precision = options.precision ?? DEFAULT_PRECISION;
  if (typeof precision !== 'number' || !(precision > 0) || !Number.isFinite(precision)) {
    throw invalidOption('precision', 'a finite number of metres above 0', precision);
  }
  const pointCount = points.length / 3;
  const encoded = encodePointsOnly(points, pointCount, name, precision);
  const fields = options.fields;
  if (fields === undefined || Object.keys(fields).length === 0) return encoded;
  return {
    ...encoded,
    fields: encodeFields(fields, pointCount, {
      mode: name === 'raw' ? 'raw' : 'coded',
      ...(options.fieldPrecision === undefined ? {} : { fieldPrecision: options.fieldPrecision }),
    }),
  };
}

function encodePointsOnly(
  points: Float32Array,
  pointCount: number,
  name: PointEncodingName,
  precision: number,
): EncodedPoints {
  switch (name) {
    case 'raw':
      if (indexOfNonFinite(points) >= 0) throwNonFinite(points);
      return {
        bytes: encodeRawNpy(points),
        encoding: PointEncodingId.RAW_NPY,
        pointCount,
        maxError: 0,
      };
    // q16 and qrice find NaN/Inf in their bounds pass, before encoding anything.
    case 'q16': {
      const { bytes, maxError } = encodeQ16(points, pointCount);
      return { bytes, encoding: PointEncodingId.Q16, pointCount, maxError };
    }
    case 'qrice': {
      const { bytes, maxError } = encodeQrice(points, pointCount, precision);
      return { bytes, encoding: PointEncodingId.QRICE, pointCount, maxError };
    }
    default:
      throw invalidOption('encoding', `one of ${POINT_ENCODING_NAMES.join(', ')}`, name);
  }
}

/**
 * Decodes a payload of `encoding` into a new Float32Array of exactly `pointCount * 3` values. Checks the point count against
 * `limits.maxPoints` and the payload's size against the count before allocating, so a payload
 * can never make it allocate more than `pointCount * 12` bytes plus a small constant. Throws
 * `PS_ERR_ENCODING_UNSUPPORTED` for an unknown id, `PS_ERR_FRAME_TOO_MANY_POINTS` above the limit
 * and `PS_ERR_ENCODING_CORRUPT` for a payload that is truncated, too long or inconsistent.
 */
export function decodePoints(
  bytes: Uint8Array,
  encoding: number,
  pointCount: number,
  limits: DecodeLimits = {},
): Float32Array {
  const maxPoints = limits.maxPoints ?? DEFAULT_REASSEMBLY_LIMITS.maxPointsPerFrame;
  if (!Number.isSafeInteger(maxPoints) || maxPoints < 0) {
    throw invalidOption('maxPoints', 'a non-negative integer', maxPoints);
  }
  if (!Number.isSafeInteger(pointCount) || pointCount < 0) {
    throw invalidOption('pointCount', 'a non-negative integer', pointCount);
  }
  if (pointCount > maxPoints) {
    throw new PointstreamError(
      ErrorCodes.FRAME_TOO_MANY_POINTS,
      `${pointCount} points exceed the limit of ${maxPoints}`,
      { details: { pointCount, maxPoints } },
    );
  }
  switch (encoding) {
    case PointEncodingId.RAW_NPY:
      return decodeRawNpy(bytes, pointCount);
    case PointEncodingId.Q16:
      return decodeQ16(bytes, pointCount);
    case PointEncodingId.QRICE:
      return decodeQrice(bytes, pointCount);
    default:
      throw new PointstreamError(
        ErrorCodes.ENCODING_UNSUPPORTED,
        `point encoding ${encoding} is not supported here`,
        { details: { encoding } },
      );
  }
}

function encodeRawNpy(points: Float32Array): Uint8Array {
  const header = encodeNpyHeader([points.length / 3, 3]);
  const bytes = new Uint8Array(header.length + points.length * 4);
  bytes.set(header, 0);
  if (HOST_IS_LITTLE_ENDIAN) {
    bytes.set(new Uint8Array(points.buffer, points.byteOffset, points.byteLength), header.length);
  } else {
    const view = new DataView(bytes.buffer, header.length);
    for (let i = 0; i < points.length; i++) view.setFloat32(i * 4, points[i] as number, true);
  }
  return bytes;
}

/** A `.npy` payload as the wire carries it: checked against the count, copied out. */
function decodeRawNpy(bytes: Uint8Array, pointCount: number): Float32Array {
  const header = parseNpyHeader(bytes);
  const rows = pointCountOfNpyHeader(header);
  const expected = header.dataOffset + pointCount * 12;
  if (rows !== pointCount || bytes.length !== expected) {
    throw new PointstreamError(
      ErrorCodes.FRAME_LENGTH_MISMATCH,
      `.npy payload of ${bytes.length} bytes holds ${rows} points; expected ${pointCount} points in ${expected} bytes`,
      { details: { rows, pointCount, expected, actual: bytes.length } },
    );
  }
  // A copy, so the result never aliases the caller's buffer (same contract as the other ids).
  return float32View(bytes, header.dataOffset, pointCount * 3).slice();
}
