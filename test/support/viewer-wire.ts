/**
 * What the viewer wire unit tests share (test/unit/viewer-wire.test.ts,
 * test/unit/viewer-colour.test.ts): hex bytes, coded rejections, the two points of
 * docs/encodings.md, and a frame sent through a fresh reassembler.
 */
import assert from 'node:assert/strict';
import { PointstreamError } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import { ViewerReassembler, encodeViewerData, encodeViewerStart } from '../../src/wire/viewer.js';
import type { EncodedViewerFrame, ViewerFrame } from '../../src/wire/viewer.js';

/** Bytes (a Uint8Array, not a Buffer) from a hex string with spaces and line breaks for reading. */
export function hex(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
}

/** `fn` throws a PointstreamError with `code`; `what` names the case in failures. */
export function rejectsWith(fn: () => unknown, code: ErrorCode, what: string): void {
  assert.throws(
    fn,
    (error: unknown) => {
      assert.ok(error instanceof PointstreamError, `${what}: ${String(error)}`);
      assert.equal(error.code, code, `${what}: ${error.message}`);
      return true;
    },
    what,
  );
}

/** The example of docs/encodings.md: two points whose q16 payload is known byte for byte. */
export const TWO_POINTS = new Float32Array([-1, 0, 5, 65534, 131070, 5]);

/**
 * Every message of `frame`, in messages of at most `size` bytes, through a fresh reassembler
 * (`maxPoints`): only the last completes the frame, which is returned.
 */
export function roundTrip(frame: EncodedViewerFrame, size: number, maxPoints = 100): ViewerFrame {
  const reassembler = new ViewerReassembler(maxPoints);
  assert.equal(reassembler.push(encodeViewerStart(frame, 0)), undefined);
  let decoded: ViewerFrame | undefined;
  const messages = encodeViewerData(frame, size);
  for (const [i, message] of messages.entries()) {
    assert.ok(message.length <= size);
    decoded = reassembler.push(message);
    assert.equal(decoded === undefined, i < messages.length - 1);
  }
  assert.ok(decoded);
  return decoded;
}
