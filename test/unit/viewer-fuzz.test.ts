/**
 * Property-based fuzzing of the live viewer's decoder (src/wire/viewer.ts, version 3 with colour
 * channels), as test/unit/fuzz.test.ts does for the ingest wire: arbitrary messages, valid frames
 * split anywhere, and valid STARTs with one byte changed. Fixed seeds; PS_FUZZ_SEED and
 * PS_FUZZ_RUNS work as there.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ErrorCodes, PointstreamError, isErrorCode } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import { RGB, makeViewerColour } from '../../src/wire/viewer-colour.js';
import type { ViewerColour } from '../../src/wire/viewer-colour.js';
import { QUANT_HEADER_BYTES } from '../../src/wire/encodings/quantize.js';
import {
  VIEWER_DATA_MAGIC,
  VIEWER_START_MAGIC,
  ViewerReassembler,
  decodeViewerControl,
  decodeViewerRequest,
  encodeViewerData,
  encodeViewerFrame,
  encodeViewerStart,
  viewerPayloadLayout,
  withColours,
} from '../../src/wire/viewer.js';
import type { EncodedViewerFrame, ViewerFrame } from '../../src/wire/viewer.js';

const SEED_OFFSET = Number(process.env.PS_FUZZ_SEED ?? '0');
const RUN_FACTOR = Number(process.env.PS_FUZZ_RUNS ?? '1');
const settings = (seed: number, numRuns: number): { seed: number; numRuns: number } => ({
  seed: (seed + SEED_OFFSET) | 0,
  numRuns: Math.max(1, Math.round(numRuns * RUN_FACTOR)),
});

/** What the viewer decoder may throw (docs/protocol.md, "What the page checks"). */
const VIEWER_CODES: ReadonlySet<ErrorCode> = new Set([
  ErrorCodes.CHUNK_TRUNCATED,
  ErrorCodes.CHUNK_BAD_TYPE,
  ErrorCodes.CHUNK_BAD_VERSION,
  ErrorCodes.ENCODING_UNSUPPORTED,
  ErrorCodes.CHUNK_BAD_HEADER,
  ErrorCodes.FRAME_TOO_MANY_POINTS,
  ErrorCodes.FRAME_LENGTH_MISMATCH,
  ErrorCodes.FRAME_INCOMPLETE,
  ErrorCodes.CHUNK_UNKNOWN_FRAME,
  ErrorCodes.CHUNK_OUT_OF_ORDER,
  ErrorCodes.CHUNK_OVERFLOW,
  ErrorCodes.ENCODING_CORRUPT,
]);

function assertStable(error: unknown, context: string): void {
  if (!(error instanceof PointstreamError))
    assert.fail(`${context}: threw a non-PointstreamError: ${String(error)}`);
  assert.ok(isErrorCode(error.code), `${context}: unstable code ${String(error.code)}`);
  assert.ok(VIEWER_CODES.has(error.code), `${context}: unexpected ${error.code}: ${error.message}`);
}

/** A decoded frame is consistent with itself: every view inside its buffer, of its point count. */
function assertConsistent(frame: ViewerFrame, maxPoints: number): void {
  assert.ok(frame.pointCount <= maxPoints);
  assert.equal(frame.payload.length, QUANT_HEADER_BYTES + 6 * frame.pointCount);
  assert.equal(frame.quantized.length, 3 * frame.pointCount);
  const per = { 1: 1, 2: 1, 3: 3 } as const;
  for (const colour of frame.colours)
    assert.equal(colour.values.length, per[colour.kind] * frame.pointCount, colour.name);
}

/** A frame of 0 to 40 points with some of three channels, in any order. */
const framesWithColours: fc.Arbitrary<EncodedViewerFrame> = fc
  .integer({ min: 0, max: 40 })
  .chain((n) =>
    fc.record({
      points: fc.float32Array({
        minLength: 3 * n,
        maxLength: 3 * n,
        noNaN: true,
        noDefaultInfinity: true,
        min: -1e6,
        max: 1e6,
      }),
      intensity: fc.float32Array({ minLength: n, maxLength: n }),
      ring: fc.uint8Array({ minLength: n, maxLength: n }),
      rgb: fc.uint32Array({ minLength: n, maxLength: n }),
      names: fc.subarray(['intensity', 'ring', RGB]).chain((names) => fc.shuffledSubarray(names)),
      seq: fc.nat(),
    }),
  )
  .map(({ points, intensity, ring, rgb, names, seq }) => {
    const n = points.length / 3;
    const fields = { intensity, ring, rgb };
    const colours = names.map(
      (name) => makeViewerColour(name, fields, undefined, n) as ViewerColour,
    );
    return withColours(encodeViewerFrame(points, seq, undefined, n), colours);
  });

void describe('viewer decoder fuzz', () => {
  void it('arbitrary messages: never anything but a stable PointstreamError [seed 31]', () => {
    const message = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      // A magic in front, so that the START and DATA paths are reached.
      fc
        .tuple(
          fc.constantFrom(VIEWER_START_MAGIC, VIEWER_DATA_MAGIC),
          fc.uint8Array({ maxLength: 200 }),
        )
        .map(([magic, rest]) => {
          const bytes = new Uint8Array(4 + rest.length);
          new DataView(bytes.buffer).setUint32(0, magic, true);
          bytes.set(rest, 4);
          // Mostly version 3, encoding 2.
          if (magic === VIEWER_START_MAGIC && bytes.length > 5) bytes.set([3, 2], 4);
          return bytes;
        }),
    );
    fc.assert(
      fc.property(fc.array(message, { maxLength: 8 }), (messages) => {
        const reassembler = new ViewerReassembler(100);
        for (const [i, bytes] of messages.entries()) {
          try {
            const frame = reassembler.push(bytes);
            if (frame) assertConsistent(frame, 100);
          } catch (error) {
            assertStable(error, `message ${i}`);
          }
        }
      }),
      settings(31, 3000),
    );
  });

  void it('valid frames with colour channels round-trip in messages of any size [seed 32]', () => {
    fc.assert(
      fc.property(framesWithColours, fc.integer({ min: 13, max: 400 }), (frame, size) => {
        const reassembler = new ViewerReassembler(40);
        assert.equal(reassembler.push(encodeViewerStart(frame, 0)), undefined);
        let decoded: ViewerFrame | undefined;
        for (const message of encodeViewerData(frame, size)) decoded = reassembler.push(message);
        assert.ok(decoded);
        assertConsistent(decoded, 40);
        assert.deepEqual(decoded.payload, frame.payload);
        assert.deepEqual(
          decoded.colours.map((c) => [
            c.name,
            c.kind,
            c.min,
            c.max,
            [...new Uint8Array(c.values.buffer, c.values.byteOffset, c.values.byteLength)],
          ]),
          (frame.colours ?? []).map((c) => [c.name, c.kind, c.min, c.max, [...c.bytes]]),
        );
        const layout = viewerPayloadLayout(
          frame.pointCount,
          (frame.colours ?? []).map((c) => c.kind),
        );
        layout.offsets.forEach((offset) => assert.equal(offset % 4, 0));
      }),
      settings(32, 400),
    );
  });

  void it('a valid START with one byte changed: rejected with a stable code, or consistent [seed 33]', () => {
    fc.assert(
      fc.property(
        framesWithColours,
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        (frame, at, value) => {
          const start = encodeViewerStart(frame, 0).slice();
          start[at % start.length] = value;
          const reassembler = new ViewerReassembler(40);
          try {
            if (reassembler.push(start) !== undefined) assert.fail('a START completed a frame');
            // Its payload may then disagree with what the START now says.
            for (const message of encodeViewerData(frame, 64)) {
              const decoded = reassembler.push(message);
              if (decoded) assertConsistent(decoded, 40);
            }
          } catch (error) {
            assertStable(error, `byte ${at % start.length} = ${value}`);
          }
        },
      ),
      settings(33, 2000),
    );
  });

  void it('text from the page or the server: never throws, only known shapes come out [seed 34]', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc
        .record({
          type: fc.constantFrom('ack', 'colour', 'fields', 'error', 'hello', 'closing'),
          field: fc.oneof(fc.string({ maxLength: 70 }), fc.integer(), fc.constant(undefined)),
          seq: fc.oneof(fc.integer(), fc.double(), fc.string()),
          fields: fc.anything({ maxDepth: 3 }),
          code: fc.string(),
          message: fc.string(),
        })
        .map((m) => JSON.stringify(m)),
    );
    fc.assert(
      fc.property(text, (t) => {
        const request = decodeViewerRequest(t);
        if (request?.type === 'colour') assert.ok(request.field.length <= 64);
        if (request?.type === 'ack') assert.ok(Number.isSafeInteger(request.seq));
        const control = decodeViewerControl(t);
        if (control?.type === 'fields') assert.ok(control.fields.length <= 32);
      }),
      settings(34, 2000),
    );
  });
});
