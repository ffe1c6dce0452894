/**
 * PointstreamError (src/errors.ts) serialisation, including the reassembler's rejections.
 * Pure: no sockets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ErrorCodes, PointstreamError } from '../../src/errors.js';
import { FrameReassembler } from '../../src/wire/index.js';
import { T, fiveChunkFrame, assertRejected } from './wire-helpers.js';

void describe('PointstreamError', () => {
  void it('serialises name, code, message, details and cause through JSON', T, () => {
    const inner = new PointstreamError(ErrorCodes.NPY_TRUNCATED, 'inner', { details: { seq: 1 } });
    const error = new PointstreamError(ErrorCodes.FRAME_REJECTED, 'outer', {
      details: { seq: 7, ok: false, note: null, reason: 'crc' },
      cause: inner,
    });
    assert.ok(error instanceof Error);
    assert.equal(error.name, 'PointstreamError');
    assert.equal(error.cause, inner);
    const json = JSON.parse(JSON.stringify(error)) as Record<string, unknown>;
    assert.deepEqual(json, {
      name: 'PointstreamError',
      code: 'PS_ERR_FRAME_REJECTED',
      message: 'outer',
      details: { seq: 7, ok: false, note: null, reason: 'crc' },
      cause: {
        name: 'PointstreamError',
        code: 'PS_ERR_NPY_TRUNCATED',
        message: 'inner',
        details: { seq: 1 },
      },
    });
  });

  void it('serialises other causes', T, () => {
    const roundTrip = (cause: unknown) =>
      (
        JSON.parse(JSON.stringify(new PointstreamError(ErrorCodes.ABORTED, 'm', { cause }))) as {
          cause?: unknown;
        }
      ).cause;
    assert.deepEqual(roundTrip(new TypeError('bad')), { name: 'TypeError', message: 'bad' });
    assert.deepEqual(roundTrip({ errno: -32 }), { errno: -32 });
    assert.equal(roundTrip('text'), 'text');
    assert.equal(roundTrip(42), 42);
    assert.equal(roundTrip(Symbol('s')), 'symbol');
    assert.equal(roundTrip(undefined), undefined);
  });

  void it('leaves out absent details and cause', T, () => {
    const json = JSON.parse(
      JSON.stringify(new PointstreamError(ErrorCodes.SESSION_CLOSED, 'bye')),
    ) as Record<string, unknown>;
    assert.deepEqual(Object.keys(json).sort(), ['code', 'message', 'name']);
  });

  void it('reassembler rejections serialise with their seq', T, () => {
    const r = new FrameReassembler();
    const result = r.push(fiveChunkFrame(3).chunks[2] as Uint8Array);
    const error = assertRejected(result, ErrorCodes.CHUNK_UNKNOWN_FRAME, 3, false);
    const json = JSON.parse(JSON.stringify(error)) as { code: string; details: { seq: number } };
    assert.equal(json.code, ErrorCodes.CHUNK_UNKNOWN_FRAME);
    assert.equal(json.details.seq, 3);
  });
});
