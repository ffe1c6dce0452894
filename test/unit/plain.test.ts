/**
 * The plain form (src/wire/plain.ts): a raw float32 message or a whole .npy file per message.
 * Pure: no sockets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ErrorCodes, PointstreamError } from '../../src/errors.js';
import { decodePlainFrame, encodeNpyHeader } from '../../src/wire/index.js';
import { T, prng, randomPoints, bytesOf, assertSameFloats, concat } from './wire-helpers.js';

void describe('plain form (decodePlainFrame)', () => {
  const LIMITS = { maxFrameBytes: 1 << 20, maxPointsPerFrame: 10_000, allowNonFinite: false };

  void it('raw little-endian float32 x, y, z (length a multiple of 12)', T, () => {
    const points = randomPoints(prng(11), 17);
    const message = new Uint8Array(points.buffer.slice(0));
    const frame = decodePlainFrame(message, 5, LIMITS);
    assert.equal(frame.format, 'raw');
    assert.equal(frame.pointCount, 17);
    assertSameFloats(frame.points, points);
    assert.equal(frame.points.buffer, message.buffer, 'aligned: a view, not a copy');
  });

  void it('an empty raw message is a frame of zero points', T, () => {
    const frame = decodePlainFrame(new Uint8Array(0), 0, LIMITS);
    assert.equal(frame.format, 'raw');
    assert.equal(frame.pointCount, 0);
    assert.equal(frame.points.length, 0);
  });

  void it('raw with a length that is not a multiple of 12 -> PS_ERR_PLAIN_BAD_LENGTH', T, () => {
    for (const length of [1, 4, 11, 13, 24 + 8, 1201]) {
      assert.throws(
        () => decodePlainFrame(new Uint8Array(length), 6, LIMITS),
        (error) =>
          error instanceof PointstreamError &&
          error.code === ErrorCodes.PLAIN_BAD_LENGTH &&
          error.details?.seq === 6,
      );
    }
  });

  void it('a misaligned raw message (byteOffset 1) decodes correctly (copy path)', T, () => {
    const points = randomPoints(prng(12), 33);
    for (const shift of [1, 2, 3]) {
      const backing = new Uint8Array(shift + points.byteLength + 5);
      backing.set(bytesOf(points), shift);
      const message = backing.subarray(shift, shift + points.byteLength);
      const frame = decodePlainFrame(message, 0, LIMITS);
      assert.equal(frame.format, 'raw');
      assertSameFloats(frame.points, points);
      assert.notEqual(frame.points.buffer, backing.buffer);
    }
  });

  void it('a complete .npy file', T, () => {
    const points = randomPoints(prng(13), 20);
    const message = concat(encodeNpyHeader([20, 3]), bytesOf(points));
    const frame = decodePlainFrame(message, 0, LIMITS);
    assert.equal(frame.format, 'npy');
    assert.equal(frame.pointCount, 20);
    assertSameFloats(frame.points, points);
    // Misaligned .npy too.
    const backing = new Uint8Array(message.length + 1);
    backing.set(message, 1);
    assertSameFloats(decodePlainFrame(backing.subarray(1), 0, LIMITS).points, points);
  });

  void it('a .npy file with trailing extra bytes -> PS_ERR_FRAME_LENGTH_MISMATCH', T, () => {
    const message = concat(encodeNpyHeader([2, 3]), new Uint8Array(24), Uint8Array.of(0));
    assert.throws(
      () => decodePlainFrame(message, 8, LIMITS),
      (error) =>
        error instanceof PointstreamError &&
        error.code === ErrorCodes.FRAME_LENGTH_MISMATCH &&
        error.details?.seq === 8,
    );
    const twelveMore = concat(encodeNpyHeader([2, 3]), new Uint8Array(36));
    assert.throws(() => decodePlainFrame(twelveMore, 8, LIMITS), {
      code: ErrorCodes.FRAME_LENGTH_MISMATCH,
    });
  });

  void it('a .npy file missing data -> PS_ERR_NPY_TRUNCATED', T, () => {
    const message = concat(encodeNpyHeader([2, 3]), new Uint8Array(23));
    assert.throws(() => decodePlainFrame(message, 8, LIMITS), { code: ErrorCodes.NPY_TRUNCATED });
  });

  void it('too large -> PS_ERR_FRAME_TOO_LARGE (raw and .npy)', T, () => {
    const limits = { ...LIMITS, maxFrameBytes: 1200 };
    assert.equal(decodePlainFrame(new Uint8Array(1200), 0, limits).pointCount, 100);
    assert.throws(
      () => decodePlainFrame(new Uint8Array(1212), 9, limits),
      (error) =>
        error instanceof PointstreamError &&
        error.code === ErrorCodes.FRAME_TOO_LARGE &&
        error.details?.seq === 9,
    );
    const npy = concat(encodeNpyHeader([100, 3]), new Uint8Array(1200));
    assert.throws(() => decodePlainFrame(npy, 9, limits), { code: ErrorCodes.FRAME_TOO_LARGE });
  });

  void it('too many points -> PS_ERR_FRAME_TOO_MANY_POINTS (raw and .npy)', T, () => {
    const limits = { ...LIMITS, maxPointsPerFrame: 4 };
    assert.equal(decodePlainFrame(new Uint8Array(48), 0, limits).pointCount, 4);
    assert.throws(() => decodePlainFrame(new Uint8Array(60), 0, limits), {
      code: ErrorCodes.FRAME_TOO_MANY_POINTS,
    });
    const npy = concat(encodeNpyHeader([5, 3]), new Uint8Array(60));
    assert.throws(() => decodePlainFrame(npy, 0, limits), {
      code: ErrorCodes.FRAME_TOO_MANY_POINTS,
    });
  });

  void it('non-finite raw points -> PS_ERR_FRAME_NON_FINITE unless allowNonFinite', T, () => {
    const points = new Float32Array([1, 2, 3, 4, NaN, 6]);
    const message = new Uint8Array(points.buffer);
    assert.throws(
      () => decodePlainFrame(message, 3, LIMITS),
      (error) =>
        error instanceof PointstreamError &&
        error.code === ErrorCodes.FRAME_NON_FINITE &&
        error.details?.point === 1,
    );
    assert.ok(
      Number.isNaN(decodePlainFrame(message, 3, { ...LIMITS, allowNonFinite: true }).points[4]),
    );
  });
});
