import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCodes } from '../../src/errors.js';
import { decodePoints, encodePoints } from '../../src/wire/encodings/index.js';
import {
  VIEWER_MAX_POINTS,
  ViewerReassembler,
  decodeViewerAck,
  decodeViewerControl,
  encodeViewerAck,
  encodeViewerControl,
  encodeViewerData,
  encodeViewerFrame,
  encodeViewerStart,
  viewerFrameOfQ16,
  viewerFrameWireBytes,
} from '../../src/wire/viewer.js';
import { TWO_POINTS, hex, rejectsWith, roundTrip } from '../support/viewer-wire.js';

/** TWO_POINTS in q16, byte for byte (docs/encodings.md). */
const TWO_POINTS_Q16 = hex(`
  02000000 01 10 0000
  000000000000f0bf 0000000000000000 0000000000001440
  000000000000f03f 0000000000000040 0000000000000000
  000000000000 ffffffff0000`);

void test('viewer wire: a two-point frame, byte by byte', () => {
  const frame = encodeViewerFrame(TWO_POINTS, 7, 1.5, 10);
  assert.equal(frame.pointCount, 2);
  assert.equal(frame.sourcePointCount, 2);
  // The point payload is exactly what encodePoints(points, 'q16') writes: one q16 format.
  assert.deepEqual(frame.payload, TWO_POINTS_Q16);
  assert.deepEqual(frame.payload, encodePoints(TWO_POINTS, 'q16').bytes);

  const start = encodeViewerStart(frame, 3);
  assert.deepEqual(
    start,
    hex(
      // 'PSVF', version 3, encoding 2 (q16), 40 header bytes (no colour channel)
      '50535646 03 02 2800' +
        // seq 7, 2 points sent, 2 points in the ingest frame, 3 frames dropped
        '07000000 02000000 02000000 03000000' +
        // 68 payload bytes (56 + 6 x 2), 0 colour channels, reserved, capture time 1.5 ms
        '44000000 00 000000 000000000000f83f',
    ),
  );

  // Messages of at most 52 bytes carry 40 payload bytes each: 40 + 28.
  const data = encodeViewerData(frame, 52);
  assert.equal(data.length, 2);
  const concat = (...parts: Uint8Array[]): Uint8Array =>
    Uint8Array.from(parts.flatMap((p) => [...p]));
  assert.deepEqual(
    data[0],
    concat(hex('50535644 07000000 00000000'), TWO_POINTS_Q16.subarray(0, 40)),
  );
  assert.deepEqual(data[1], concat(hex('50535644 07000000 28000000'), TWO_POINTS_Q16.subarray(40)));
  assert.equal(viewerFrameWireBytes(frame, 52), 40 + 68 + 2 * 12);

  const reassembler = new ViewerReassembler(2);
  assert.equal(reassembler.push(start), undefined);
  assert.equal(reassembler.receiving, true);
  assert.equal(reassembler.push(data[0].slice().buffer), undefined);
  const decoded = reassembler.push(data[1]);
  assert.ok(decoded);
  assert.equal(reassembler.receiving, false);
  assert.deepEqual(
    { ...decoded, payload: undefined, quantized: undefined },
    {
      seq: 7,
      pointCount: 2,
      sourcePointCount: 2,
      dropped: 3,
      captureTime: 1.5,
      encoding: 2,
      payload: undefined,
      offset: [-1, 0, 5],
      scale: [1, 2, 0],
      quantized: undefined,
      colours: [],
    },
  );
  assert.deepEqual([...decoded.quantized], [0, 0, 0, 65535, 65535, 0]);
  // The u16s are a view of the payload past its 56-byte header (what the page gives WebGL).
  assert.equal(decoded.quantized.buffer, decoded.payload.buffer);
  assert.equal(decoded.quantized.byteOffset, decoded.payload.byteOffset + 56);
  assert.deepEqual(decodePoints(decoded.payload, 2, 2), TWO_POINTS);
});

void test('viewer wire: stride decimation, error bound, and every message split', () => {
  // 10 points to 4: points floor(i x 10 / 4) = 0, 2, 5, 7.
  const ten = new Float32Array(30);
  for (let i = 0; i < 10; i++) ten.set([i, -i, i * i], i * 3);
  const small = encodeViewerFrame(ten, 1, undefined, 4);
  assert.equal(small.pointCount, 4);
  assert.equal(small.sourcePointCount, 10);
  assert.deepEqual(
    small.payload,
    encodePoints(new Float32Array([0, 0, 0, 2, -2, 4, 5, -5, 25, 7, -7, 49]), 'q16').bytes,
  );

  // 1000 ramp points to 300: point i is source floor(i x 1000 / 300), within q16's bound.
  const ramp = new Float32Array(3000);
  for (let i = 0; i < 1000; i++) ramp.set([i, -i / 2, (i % 100) / 10], i * 3);
  const frame = encodeViewerFrame(ramp, 2 ** 32 + 5, undefined, 300);
  assert.equal(frame.seq, 5, 'seq is a u32');
  const expected = new Float32Array(900);
  for (let i = 0; i < 300; i++) {
    const from = Math.floor((i * 1000) / 300) * 3;
    expected.set(ramp.subarray(from, from + 3), i * 3);
  }
  const reference = encodePoints(expected, 'q16');
  assert.deepEqual(frame.payload, reference.bytes);
  const floats = decodePoints(frame.payload, 2, 300);
  for (let k = 0; k < 900; k++)
    assert.ok(Math.abs((floats[k] as number) - (expected[k] as number)) <= reference.maxError);

  // Split into messages of every size: the same frame comes out.
  for (let size = 13; size <= frame.payload.length + 12; size += size < 80 ? 1 : 97) {
    const decoded = roundTrip(frame, size, 300);
    assert.deepEqual(decoded.payload, frame.payload, `messages of ${size} bytes`);
  }
});

void test('viewer wire: empty frame, equal points, non-finite points left out, q16 forwarded', () => {
  const empty = encodeViewerFrame(new Float32Array(0), 0, undefined, 10);
  assert.equal(empty.payload.length, 56);
  const reassembler = new ViewerReassembler(10);
  assert.equal(reassembler.push(encodeViewerStart(empty, 0)), undefined);
  const [only, ...more] = encodeViewerData(empty, 1024);
  assert.deepEqual(more, []);
  const decoded = reassembler.push(only as Uint8Array);
  assert.equal(decoded?.pointCount, 0);
  assert.equal(decoded?.captureTime, undefined);

  const same = encodeViewerFrame(new Float32Array([2, 3, 4, 2, 3, 4]), 1, 5, 10);
  assert.deepEqual(decodePoints(same.payload, 2, 2), new Float32Array([2, 3, 4, 2, 3, 4]));

  // Only a server that allows non-finite coordinates passes them on: such points are not drawn.
  const odd = encodeViewerFrame(
    new Float32Array([NaN, 1, 2, 4, 2, 0, 1, -Infinity, 0, 8, 9, 1]),
    1,
    5,
    10,
  );
  assert.equal(odd.pointCount, 2);
  assert.equal(odd.sourcePointCount, 4);
  assert.deepEqual(decodePoints(odd.payload, 2, 2), new Float32Array([4, 2, 0, 8, 9, 1]));

  // An ingest frame sent as q16 is forwarded as it is; a payload that lies is refused.
  const forwarded = viewerFrameOfQ16(TWO_POINTS_Q16, 2, 2, 9, undefined);
  assert.equal(forwarded.payload, TWO_POINTS_Q16);
  rejectsWith(
    () => viewerFrameOfQ16(TWO_POINTS_Q16, 3, 3, 9, undefined),
    ErrorCodes.ENCODING_CORRUPT,
    'point count disagrees',
  );

  assert.throws(() => encodeViewerFrame(TWO_POINTS, 1, 0, -1), { code: ErrorCodes.INVALID_OPTION });
  assert.throws(() => encodeViewerData(empty, 12), { code: ErrorCodes.INVALID_OPTION });
  assert.throws(() => new ViewerReassembler(VIEWER_MAX_POINTS + 1), {
    code: ErrorCodes.INVALID_OPTION,
  });
  assert.throws(() => new ViewerReassembler(1.5), { code: ErrorCodes.INVALID_OPTION });
});

/** A START of the two-point frame with `edit` applied to its bytes. */
function startWith(edit: (view: DataView) => void, length = 40): Uint8Array {
  const bytes = new Uint8Array(length);
  bytes.set(encodeViewerStart(encodeViewerFrame(TWO_POINTS, 7, 1.5, 10), 0).subarray(0, length));
  edit(new DataView(bytes.buffer));
  return bytes;
}

void test('viewer wire: the decoder rejects every malformed size with a stable code', () => {
  const frame = encodeViewerFrame(TWO_POINTS, 7, 1.5, 10);
  const start = encodeViewerStart(frame, 0);
  const [data] = encodeViewerData(frame, 1024);
  assert.ok(data);
  const fresh = (): ViewerReassembler => new ViewerReassembler(2);
  const started = (): ViewerReassembler => {
    const r = fresh();
    r.push(start);
    return r;
  };

  for (let n = 0; n < 4; n++)
    rejectsWith(() => fresh().push(new Uint8Array(n)), ErrorCodes.CHUNK_TRUNCATED, `${n} bytes`);
  rejectsWith(() => fresh().push(hex('50535647 02020000')), ErrorCodes.CHUNK_BAD_TYPE, 'magic');

  // START: every length under 40, and longer than its header bytes field says.
  for (let n = 4; n < 40; n++)
    rejectsWith(() => fresh().push(start.subarray(0, n)), ErrorCodes.CHUNK_TRUNCATED, `START ${n}`);
  for (const n of [41, 64, 1000])
    rejectsWith(
      () => fresh().push(startWith(() => undefined, n)),
      ErrorCodes.CHUNK_BAD_HEADER,
      `START ${n}`,
    );
  // A version 1 START (64 bytes) or 2 is reported as another version, not as a bad size.
  rejectsWith(
    () => fresh().push(startWith((v) => v.setUint8(4, 1), 64)),
    ErrorCodes.CHUNK_BAD_VERSION,
    'version 1',
  );
  rejectsWith(
    () => fresh().push(startWith((v) => v.setUint8(4, 2))),
    ErrorCodes.CHUNK_BAD_VERSION,
    'version 2',
  );
  rejectsWith(
    () => fresh().push(startWith((v) => v.setUint8(5, 3))),
    ErrorCodes.ENCODING_UNSUPPORTED,
    'qrice',
  );
  rejectsWith(
    () => fresh().push(startWith((v) => v.setUint16(6, 64, true))),
    ErrorCodes.CHUNK_TRUNCATED,
    'header bytes field above the message',
  );
  rejectsWith(
    () => fresh().push(startWith((v) => v.setUint16(6, 39, true))),
    ErrorCodes.CHUNK_BAD_HEADER,
    'header bytes field under the message',
  );
  for (const at of [29, 30, 31])
    rejectsWith(
      () => fresh().push(startWith((v) => v.setUint8(at, 1))),
      ErrorCodes.CHUNK_BAD_HEADER,
      `reserved byte ${at}`,
    );
  rejectsWith(
    () => fresh().push(startWith((v) => v.setUint8(28, 1))),
    ErrorCodes.CHUNK_BAD_HEADER,
    'a colour channel without its entry',
  );
  // Point counts above the budget, even absurd ones, are refused before anything is allocated.
  for (const count of [3, 2 ** 32 - 1])
    rejectsWith(
      () =>
        fresh().push(
          startWith((v) => {
            v.setUint32(12, count, true);
            v.setUint32(16, count, true);
            v.setUint32(24, 56 + 6 * count, true);
          }),
        ),
      ErrorCodes.FRAME_TOO_MANY_POINTS,
      `${count} points`,
    );
  rejectsWith(
    () => fresh().push(startWith((v) => v.setUint32(16, 1, true))),
    ErrorCodes.CHUNK_BAD_HEADER,
    'more points sent than received',
  );
  for (const bytes of [0, 12, 55, 56, 67, 69, 2 ** 32 - 1])
    rejectsWith(
      () => fresh().push(startWith((v) => v.setUint32(24, bytes, true))),
      ErrorCodes.FRAME_LENGTH_MISMATCH,
      `${bytes} payload bytes`,
    );
  for (const time of [Infinity, -Infinity])
    rejectsWith(
      () => fresh().push(startWith((v) => v.setFloat64(32, time, true))),
      ErrorCodes.CHUNK_BAD_HEADER,
      `capture time ${time}`,
    );
  rejectsWith(() => started().push(start), ErrorCodes.FRAME_INCOMPLETE, 'START inside a frame');

  // DATA: every length up to its header, and every inconsistency with its START.
  for (let n = 4; n <= 12; n++)
    rejectsWith(() => started().push(data.subarray(0, n)), ErrorCodes.CHUNK_TRUNCATED, `DATA ${n}`);
  rejectsWith(() => fresh().push(data), ErrorCodes.CHUNK_UNKNOWN_FRAME, 'DATA without START');
  const otherSeq = data.slice();
  new DataView(otherSeq.buffer).setUint32(4, 8, true);
  rejectsWith(() => started().push(otherSeq), ErrorCodes.CHUNK_UNKNOWN_FRAME, 'DATA of frame 8');
  const [first, second] = encodeViewerData(frame, 52);
  rejectsWith(() => started().push(second as Uint8Array), ErrorCodes.CHUNK_OUT_OF_ORDER, 'gap');
  const twice = started();
  twice.push(first as Uint8Array);
  rejectsWith(() => twice.push(first as Uint8Array), ErrorCodes.CHUNK_OUT_OF_ORDER, 'repeat');
  const longer = new Uint8Array(data.length + 1);
  longer.set(data);
  rejectsWith(() => started().push(longer), ErrorCodes.CHUNK_OVERFLOW, 'one byte too many');

  // The q16 header inside the payload is checked when the frame completes.
  const corruptions: [string, (v: DataView) => void][] = [
    ['point count', (v) => v.setUint32(12, 3, true)],
    ['layout', (v) => v.setUint8(16, 2)],
    ['width', (v) => v.setUint8(17, 15)],
    ['stride', (v) => v.setUint16(18, 1, true)],
    ['offset NaN', (v) => v.setFloat64(20, NaN, true)],
    ['scale < 0', (v) => v.setFloat64(44, -1, true)],
    ['beyond float32', (v) => v.setFloat64(44, 1e35, true)],
  ];
  for (const [what, edit] of corruptions) {
    const bad = data.slice();
    edit(new DataView(bad.buffer));
    rejectsWith(() => started().push(bad), ErrorCodes.ENCODING_CORRUPT, what);
  }

  // After an error the frame is dropped: the next START begins afresh.
  const recovering = started();
  assert.throws(() => recovering.push(longer));
  assert.equal(recovering.receiving, false);
  recovering.push(start);
  assert.equal(recovering.push(data)?.pointCount, 2);
});

void test('viewer wire: text messages', () => {
  const hello = {
    type: 'hello',
    viewer: 'v',
    session: 's',
    maxPoints: 250_000,
    maxFps: 10,
  } as const;
  assert.equal(
    encodeViewerControl(hello),
    '{"type":"hello","viewer":"v","session":"s","maxPoints":250000,"maxFps":10}',
  );
  assert.deepEqual(decodeViewerControl(encodeViewerControl(hello)), hello);
  const closing = { type: 'closing', code: 'PS_ERR_SESSION_CLOSED', message: 'm' } as const;
  assert.deepEqual(decodeViewerControl(encodeViewerControl(closing)), closing);
  for (const text of [
    'not json',
    '[]',
    'null',
    '{"type":"hello"}',
    '{"type":"hello","viewer":"v","session":"s","maxPoints":1.5,"maxFps":1}',
    '{"type":"closing","code":1,"message":"m"}',
    `{"type":"closing","code":"c","message":"${'x'.repeat(4096)}"}`,
  ])
    assert.equal(decodeViewerControl(text), undefined, text);

  assert.equal(encodeViewerAck(12), '{"type":"ack","seq":12}');
  assert.equal(decodeViewerAck('{"type":"ack","seq":12}'), 12);
  for (const text of [
    '{"type":"ack","seq":-1}',
    '{"type":"ack","seq":1.5}',
    '{"type":"ack","seq":4294967296}',
    '{"type":"ack","seq":"1"}',
    '{"type":"nack","seq":1}',
    'ack',
  ])
    assert.equal(decodeViewerAck(text), undefined, text);
});
