import { ErrorCodes, PointstreamError } from '../errors.js';
import { hasNpyMagic, parseNpyHeader, pointCountOfNpyHeader } from './npy.js';
import { assertFinite, float32View } from './points.js';
import type { ReassemblyLimits } from './limits.js';

/** A frame of the plain form: one DataChannel message, raw `<f4` x, y, z or a whole `.npy` file. */
export interface PlainFrame {
  readonly format: 'npy' | 'raw';
  readonly pointCount: number;
  /** x, y, z interleaved; a view into the message when aligned. */
  readonly points: Float32Array;
}

/**
 * Decodes one message of a channel whose protocol is empty. `seq` only labels errors. Throws a
 * {@link PointstreamError} with a stable code on anything that is not a valid frame.
 */
export function decodePlainFrame(
  message: Uint8Array,
  seq: number,
  limits: Pick<ReassemblyLimits, 'maxFrameBytes' | 'maxPointsPerFrame' | 'allowNonFinite'>,
): PlainFrame {
  if (message.length > limits.maxFrameBytes) {
    throw new PointstreamError(
      ErrorCodes.FRAME_TOO_LARGE,
      `${message.length} bytes exceed the limit of ${limits.maxFrameBytes}`,
      { details: { seq } },
    );
  }
  let format: PlainFrame['format'];
  let dataOffset: number;
  let pointCount: number;
  if (hasNpyMagic(message)) {
    format = 'npy';
    const header = parseNpyHeader(message);
    pointCount = pointCountOfNpyHeader(header);
    dataOffset = header.dataOffset;
    const expected = dataOffset + pointCount * 12;
    if (message.length !== expected) {
      throw new PointstreamError(
        message.length < expected ? ErrorCodes.NPY_TRUNCATED : ErrorCodes.FRAME_LENGTH_MISMATCH,
        `.npy of shape (${pointCount}, 3) needs ${expected} bytes; the message has ${message.length}`,
        { details: { seq } },
      );
    }
  } else {
    format = 'raw';
    if (message.length % 12 !== 0) {
      throw new PointstreamError(
        ErrorCodes.PLAIN_BAD_LENGTH,
        `raw frame of ${message.length} bytes is not a whole number of float32 x, y, z points (12 bytes each)`,
        { details: { seq } },
      );
    }
    dataOffset = 0;
    pointCount = message.length / 12;
  }
  if (pointCount > limits.maxPointsPerFrame) {
    throw new PointstreamError(
      ErrorCodes.FRAME_TOO_MANY_POINTS,
      `${pointCount} points exceed the limit of ${limits.maxPointsPerFrame}`,
      { details: { seq } },
    );
  }
  const points = float32View(message, dataOffset, pointCount * 3);
  if (!limits.allowNonFinite) assertFinite(points, seq);
  return { format, pointCount, points };
}
