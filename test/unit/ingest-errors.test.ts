/**
 * Every malformed input the ingest path can meet, over the in-memory channel pair: what the client
 * gets back (receipts, `closing`) and whether the session survives (then a good frame after it is
 * received) or ends, as the server behaves over WebRTC.
 *
 * | code                            | form    | input                                           | receipt | session              |
 * | ------------------------------- | ------- | ----------------------------------------------- | ------- | -------------------- |
 * | PS_ERR_CHUNK_TRUNCATED          | chunked | a message shorter than a chunk header           | -       | ends (same code)     |
 * | PS_ERR_CHUNK_TRUNCATED          | chunked | a START cut inside its 40-byte header           | yes     | ends (same code)     |
 * | PS_ERR_CHUNK_BAD_VERSION        | chunked | version 2                                       | -       | ends (same code)     |
 * | PS_ERR_CHUNK_BAD_TYPE           | chunked | chunk type 3                                    | -       | ends (same code)     |
 * | PS_ERR_CHUNK_BAD_HEADER         | chunked | a START with unknown flags                      | yes     | ends (same code)     |
 * | PS_ERR_FIELDS_INVALID           | chunked | a START whose field table declares 0 fields     | yes     | survives             |
 * | PS_ERR_CHUNK_OUT_OF_ORDER       | chunked | chunk 2 where chunk 1 was due                   | yes     | survives             |
 * | PS_ERR_CHUNK_UNKNOWN_FRAME      | chunked | a DATA chunk of a frame never started           | yes     | survives             |
 * | PS_ERR_CHUNK_OVERFLOW           | chunked | more bytes than the START declared              | yes     | survives             |
 * | PS_ERR_FRAME_DUPLICATE          | chunked | a START again while the frame arrives           | yes     | survives             |
 * | PS_ERR_FRAME_TOO_LARGE          | both    | a payload over maxFrameBytes                    | yes     | survives             |
 * | PS_ERR_FRAME_TOO_MANY_POINTS    | both    | more points than maxPointsPerFrame              | yes     | survives             |
 * | PS_ERR_FRAME_TOO_MANY_CHUNKS    | chunked | more chunks than maxChunksPerFrame              | yes     | survives             |
 * | PS_ERR_FRAME_UNSUPPORTED_FORMAT | chunked | dtype 2; an unknown encoding (5)                | yes     | survives             |
 * | PS_ERR_FRAME_LENGTH_MISMATCH    | both    | START and .npy disagree; .npy with extra bytes  | yes     | survives             |
 * | PS_ERR_FRAME_CHECKSUM           | chunked | a CRC-32 that does not match                    | yes     | survives             |
 * | PS_ERR_FRAME_NON_FINITE         | both    | a NaN coordinate                                | yes     | survives             |
 * | PS_ERR_FRAME_INCOMPLETE         | chunked | a frame pushed out unfinished (also: stalls)    | yes     | survives             |
 * | PS_ERR_SERVER_MEMORY            | both    | a frame over the session's reassembly budget    | yes     | survives             |
 * | PS_ERR_DECODE_BUDGET            | chunked | an encoded frame beyond maxFramesInDecode       | yes     | survives (ends: 2)   |
 * | PS_ERR_NPY_BAD_MAGIC            | chunked | an .npy frame whose payload lacks the magic     | yes     | survives             |
 * | PS_ERR_NPY_BAD_VERSION          | both    | .npy format version 9                           | yes     | survives             |
 * | PS_ERR_NPY_BAD_HEADER           | both    | no 'descr' key                                  | yes     | survives             |
 * | PS_ERR_NPY_UNSUPPORTED_DTYPE    | both    | '<f8'                                           | yes     | survives             |
 * | PS_ERR_NPY_BAD_SHAPE            | both    | shape (N, 4)                                    | yes     | survives             |
 * | PS_ERR_NPY_FORTRAN_ORDER        | both    | fortran_order True                              | yes     | survives             |
 * | PS_ERR_NPY_TRUNCATED            | plain   | an .npy shorter than its shape (chunked: 1)     | yes     | survives             |
 * | PS_ERR_ENCODING_CORRUPT         | chunked | a q16 payload with layout 9 (its CRC right)     | yes     | survives             |
 * | PS_ERR_PLAIN_BAD_LENGTH         | plain   | 13 bytes: not whole points                      | yes     | survives             |
 * | PS_ERR_TOO_MANY_ERRORS          | both    | maxConsecutiveRejections bad frames in a row    | yes     | ends (same code)     |
 * | PS_ERR_PROTOCOL_UNSUPPORTED     | -       | a channel of protocol "pointstream/2"           | -       | survives (3)         |
 * | PS_ERR_TOO_MANY_CHANNELS        | -       | more than maxChannelsPerSession channels        | -       | survives (3)         |
 *
 * (1) chunked, a short .npy header is PS_ERR_FRAME_LENGTH_MISMATCH. (2) the session ends with it
 * after maxConsecutiveRejections refusals (ingest.test.ts), or when 64 receipts wait behind one
 * decode. (3) the channel is told (`closing`) and closed; the session goes on. Not reachable from
 * the wire: PS_ERR_ENCODING_UNSUPPORTED (an unknown encoding is refused at START, as
 * PS_ERR_FRAME_UNSUPPORTED_FORMAT, above). From the decode pool rather than the client:
 * PS_ERR_INTERNAL (a worker died; ingest.test.ts) and PS_ERR_SESSION_CLOSED (shutdown), which
 * come back as the frame's receipt. PS_ERR_SESSION_CLOSED also ends idle sessions and sessions
 * whose client closed (ingest.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { ErrorCodes } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import type { ServerLimits } from '../../src/server/types.js';
import type { MemoryChannel } from '../../src/transport/memory.js';
import { PROTOCOL_V1 } from '../../src/wire/chunk.js';
import { encodePoints } from '../../src/wire/encodings/index.js';
import { prepareEncodedFrame } from '../../src/wire/frame.js';
import { encodeNpyHeader } from '../../src/wire/npy.js';
import {
  MESSAGE_BYTES,
  ManualDecoder,
  chunksOf,
  frameOf,
  openIngest,
  outcomes,
  pointsOf,
  sendFrame,
  until,
} from './ingest-harness.js';

interface Case {
  readonly code: ErrorCode;
  readonly input: string;
  /** Default: chunked (`pointstream/1`). */
  readonly plain?: boolean;
  readonly limits?: Partial<ServerLimits>;
  readonly budgetBytes?: number;
  readonly decoder?: boolean;
  readonly send: (client: MemoryChannel) => void;
  /** What comes back after the hello: `[seq, code]` per receipt, the code of `closing`. */
  readonly expect: unknown[];
  /** The session ends with this code; otherwise it survives and takes a good frame after. */
  readonly ends?: ErrorCode;
  /** Frames counted rejected, when not one per failed receipt (a chunk without a seq). */
  readonly rejected?: number;
}

const C = ErrorCodes;
/** A 300-point frame: 3,728 bytes, 4 chunks of at most 1 KiB. */
const POINTS = pointsOf(300);
const chunks = (seq = 0): Uint8Array[] => chunksOf(frameOf(seq, POINTS));

/** `bytes` with the ASCII text `from` replaced by `to` (the same length). */
function patch(bytes: Uint8Array, from: string, to: string): Uint8Array {
  assert.equal(from.length, to.length);
  const text = Buffer.from(bytes).toString('latin1');
  const at = text.indexOf(from);
  assert.ok(at >= 0, `${from} not found`);
  const out = bytes.slice();
  out.set(Buffer.from(to, 'latin1'), at);
  return out;
}

/** A byte of `bytes` set to `value` (a copy). */
function poke(bytes: Uint8Array, offset: number, value: number): Uint8Array {
  const out = bytes.slice();
  out[offset] = value;
  return out;
}

/** A START chunk with `table` after its 40 fixed bytes (flag 0x01, headerLength 40 + table). */
function withTable(start: Uint8Array, table: Uint8Array): Uint8Array {
  const out = new Uint8Array(start.length + table.length);
  out.set(start.subarray(0, 40));
  out.set(table, 40);
  out.set(start.subarray(40), 40 + table.length);
  new DataView(out.buffer).setUint16(2, 40 + table.length, true);
  out[27] = 1;
  return out;
}

/** A START chunk with a u32 header field changed. */
function startWith(offset: number, value: (old: number) => number, seq = 0): Uint8Array[] {
  const all = chunks(seq);
  const start = (all[0] as Uint8Array).slice();
  const view = new DataView(start.buffer);
  view.setUint32(offset, value(view.getUint32(offset, true)), true);
  return [start, ...all.slice(1)];
}

/** A plain .npy message of `points`, its header text patched. */
function npyMessage(points: Float32Array, from = '', to = ''): Uint8Array {
  const header = encodeNpyHeader([points.length / 3, 3]);
  const bytes = new Uint8Array(header.length + points.byteLength);
  bytes.set(header);
  bytes.set(new Uint8Array(points.buffer, points.byteOffset, points.byteLength), header.length);
  return from === '' ? bytes : patch(bytes, from, to);
}

const sendAll =
  (messages: () => Uint8Array[]) =>
  (client: MemoryChannel): void => {
    for (const message of messages()) client.send(message);
  };
/** The START chunk of frame 0 with its .npy header text patched (rejected before anything else). */
const npyStart = (from: string, to: string) =>
  sendAll(() => [patch(chunks()[0] as Uint8Array, from, to)]);
const withNaN = (): Float32Array => {
  const points = pointsOf(300);
  points[100] = Number.NaN;
  return points;
};

const CASES: readonly Case[] = [
  {
    code: C.CHUNK_TRUNCATED,
    input: 'a 5-byte message',
    send: (c) => c.send(new Uint8Array(5)),
    expect: [C.CHUNK_TRUNCATED],
    rejected: 1,
    ends: C.CHUNK_TRUNCATED,
  },
  {
    code: C.CHUNK_TRUNCATED,
    input: 'a START cut at 20 bytes',
    send: (c) => c.send((chunks(7)[0] as Uint8Array).slice(0, 20)),
    expect: [[7, C.CHUNK_TRUNCATED], C.CHUNK_TRUNCATED],
    ends: C.CHUNK_TRUNCATED,
  },
  {
    code: C.CHUNK_BAD_VERSION,
    input: 'version 2',
    send: (c) => c.send(poke(chunks()[0] as Uint8Array, 0, 2)),
    expect: [C.CHUNK_BAD_VERSION],
    rejected: 1,
    ends: C.CHUNK_BAD_VERSION,
  },
  {
    code: C.CHUNK_BAD_TYPE,
    input: 'type 3',
    send: (c) => c.send(poke(chunks()[0] as Uint8Array, 1, 3)),
    expect: [C.CHUNK_BAD_TYPE],
    rejected: 1,
    ends: C.CHUNK_BAD_TYPE,
  },
  {
    code: C.CHUNK_BAD_HEADER,
    input: 'START flags 2',
    send: (c) => c.send(poke(chunks(4)[0] as Uint8Array, 27, 2)),
    expect: [[4, C.CHUNK_BAD_HEADER], C.CHUNK_BAD_HEADER],
    ends: C.CHUNK_BAD_HEADER,
  },
  {
    code: C.FIELDS_INVALID,
    input: 'a field table of 0 fields',
    send: sendAll(() => {
      const all = chunks(4);
      return [withTable(all[0] as Uint8Array, new Uint8Array(8)), ...all.slice(1)];
    }),
    expect: [[4, C.FIELDS_INVALID]],
  },
  {
    code: C.CHUNK_OUT_OF_ORDER,
    input: 'chunks 0, 2',
    send: sendAll(() => [chunks()[0] as Uint8Array, chunks()[2] as Uint8Array]),
    expect: [[0, C.CHUNK_OUT_OF_ORDER]],
  },
  {
    code: C.CHUNK_UNKNOWN_FRAME,
    input: 'DATA of frame 5, never started',
    send: sendAll(() => chunks(5).slice(1)),
    expect: [[5, C.CHUNK_UNKNOWN_FRAME]],
  },
  {
    code: C.CHUNK_OVERFLOW,
    input: 'last chunk 4 bytes too long',
    send: sendAll(() => {
      const all = chunks();
      const last = all.pop() as Uint8Array;
      const longer = new Uint8Array(last.length + 4);
      longer.set(last);
      return [...all, longer];
    }),
    expect: [[0, C.CHUNK_OVERFLOW]],
  },
  {
    code: C.FRAME_DUPLICATE,
    input: 'START 0 twice',
    send: sendAll(() => [chunks()[0] as Uint8Array, chunks()[0] as Uint8Array]),
    expect: [[0, C.FRAME_DUPLICATE]],
  },
  {
    code: C.FRAME_DUPLICATE,
    input: 'frame 3 after frame 4',
    send: sendAll(() => [...chunks(4), ...chunks(3)]),
    expect: [
      [4, true],
      [3, C.FRAME_DUPLICATE],
    ],
  },
  {
    code: C.FRAME_TOO_LARGE,
    input: 'maxFrameBytes 2000',
    limits: { maxFrameBytes: 2000 },
    send: sendAll(() => chunks()),
    expect: [[0, C.FRAME_TOO_LARGE]],
  },
  {
    code: C.FRAME_TOO_LARGE,
    input: 'plain, maxFrameBytes 2000',
    plain: true,
    limits: { maxFrameBytes: 2000 },
    send: (c) => c.send(npyMessage(POINTS)),
    expect: [[0, C.FRAME_TOO_LARGE]],
  },
  {
    code: C.FRAME_TOO_MANY_POINTS,
    input: 'maxPointsPerFrame 100',
    limits: { maxPointsPerFrame: 100 },
    send: sendAll(() => chunks()),
    expect: [[0, C.FRAME_TOO_MANY_POINTS]],
  },
  {
    code: C.FRAME_TOO_MANY_POINTS,
    input: 'plain, maxPointsPerFrame 100',
    plain: true,
    limits: { maxPointsPerFrame: 100 },
    send: (c) => c.send(npyMessage(POINTS)),
    expect: [[0, C.FRAME_TOO_MANY_POINTS]],
  },
  {
    code: C.FRAME_TOO_MANY_CHUNKS,
    input: 'maxChunksPerFrame 2',
    limits: { maxChunksPerFrame: 2 },
    send: sendAll(() => chunks()),
    expect: [[0, C.FRAME_TOO_MANY_CHUNKS]],
  },
  {
    code: C.FRAME_UNSUPPORTED_FORMAT,
    input: 'dtype 2',
    send: sendAll(() => [poke(chunks()[0] as Uint8Array, 24, 2), ...chunks().slice(1)]),
    expect: [[0, C.FRAME_UNSUPPORTED_FORMAT]],
  },
  {
    code: C.FRAME_UNSUPPORTED_FORMAT,
    input: 'encoding 5',
    send: sendAll(() => [poke(chunks()[0] as Uint8Array, 26, 5), ...chunks().slice(1)]),
    expect: [[0, C.FRAME_UNSUPPORTED_FORMAT]],
  },
  {
    code: C.FRAME_LENGTH_MISMATCH,
    input: 'START says 299 points',
    send: sendAll(() => startWith(16, (n) => n - 1)),
    expect: [[0, C.FRAME_LENGTH_MISMATCH]],
  },
  {
    code: C.FRAME_LENGTH_MISMATCH,
    input: 'plain .npy with 12 bytes too many',
    plain: true,
    send: (c) => {
      const npy = npyMessage(POINTS);
      const longer = new Uint8Array(npy.length + 12);
      longer.set(npy);
      c.send(longer);
    },
    expect: [[0, C.FRAME_LENGTH_MISMATCH]],
  },
  {
    code: C.FRAME_LENGTH_MISMATCH,
    input: 'START cut in its .npy header',
    send: (c) => {
      const start = chunks()[0] as Uint8Array;
      const view = new DataView(start.buffer);
      view.setUint32(36, 1, true); // one chunk: the whole frame in this START
      c.send(start.slice(0, 40 + 64));
    },
    expect: [[0, C.FRAME_LENGTH_MISMATCH]],
  },
  {
    code: C.FRAME_CHECKSUM,
    input: 'CRC-32 off by one bit',
    send: sendAll(() => startWith(20, (crc) => (crc ^ 1) >>> 0)),
    expect: [[0, C.FRAME_CHECKSUM]],
  },
  {
    code: C.FRAME_NON_FINITE,
    input: 'a NaN',
    send: (c) => sendFrame(c, frameOf(0, withNaN())),
    expect: [[0, C.FRAME_NON_FINITE]],
  },
  {
    code: C.FRAME_NON_FINITE,
    input: 'plain, a NaN',
    plain: true,
    send: (c) => c.send(npyMessage(withNaN())),
    expect: [[0, C.FRAME_NON_FINITE]],
  },
  {
    code: C.FRAME_INCOMPLETE,
    input: 'START 0, then frame 1 with maxFramesInReassembly 1',
    limits: { maxFramesInReassembly: 1 },
    send: sendAll(() => [chunks(0)[0] as Uint8Array, ...chunks(1)]),
    expect: [
      [0, C.FRAME_INCOMPLETE],
      [1, true],
    ],
  },
  {
    code: C.SERVER_MEMORY,
    input: 'a 3,728-byte frame, a 3,000-byte budget',
    budgetBytes: 3000,
    send: sendAll(() => chunks()),
    expect: [[0, C.SERVER_MEMORY]],
  },
  {
    code: C.SERVER_MEMORY,
    input: 'plain, a 3,728-byte message, a 3,000-byte budget',
    plain: true,
    budgetBytes: 3000,
    send: (c) => c.send(npyMessage(POINTS)),
    expect: [[0, C.SERVER_MEMORY]],
  },
  {
    code: C.DECODE_BUDGET,
    input: 'a second q16 frame with maxFramesInDecode 1, the first decoding',
    decoder: true,
    limits: { maxFramesInDecode: 1 },
    send: (c) => {
      sendFrame(c, frameOf(0, POINTS, 'q16'));
      sendFrame(c, frameOf(1, POINTS, 'q16'));
    },
    expect: [
      [0, true],
      [1, C.DECODE_BUDGET],
    ],
  },
  {
    code: C.NPY_BAD_MAGIC,
    input: 'payload byte 0 is 0',
    send: (c) => c.send(poke(chunks()[0] as Uint8Array, 40, 0)),
    expect: [[0, C.NPY_BAD_MAGIC]],
  },
  {
    code: C.NPY_BAD_VERSION,
    input: '.npy version 9',
    send: (c) => c.send(poke(chunks()[0] as Uint8Array, 40 + 6, 9)),
    expect: [[0, C.NPY_BAD_VERSION]],
  },
  {
    code: C.NPY_BAD_VERSION,
    input: 'plain, .npy version 9',
    plain: true,
    send: (c) => c.send(poke(npyMessage(POINTS), 6, 9)),
    expect: [[0, C.NPY_BAD_VERSION]],
  },
  {
    code: C.NPY_BAD_HEADER,
    input: "'descx' for 'descr'",
    send: npyStart("'descr'", "'descx'"),
    expect: [[0, C.NPY_BAD_HEADER]],
  },
  {
    code: C.NPY_BAD_HEADER,
    input: "plain, 'descx' for 'descr'",
    plain: true,
    send: (c) => c.send(npyMessage(POINTS, "'descr'", "'descx'")),
    expect: [[0, C.NPY_BAD_HEADER]],
  },
  {
    code: C.NPY_UNSUPPORTED_DTYPE,
    input: "'<f8'",
    send: npyStart("'<f4'", "'<f8'"),
    expect: [[0, C.NPY_UNSUPPORTED_DTYPE]],
  },
  {
    code: C.NPY_UNSUPPORTED_DTYPE,
    input: "plain, '<f8'",
    plain: true,
    send: (c) => c.send(npyMessage(POINTS, "'<f4'", "'<f8'")),
    expect: [[0, C.NPY_UNSUPPORTED_DTYPE]],
  },
  {
    code: C.NPY_BAD_SHAPE,
    input: 'shape (300, 4)',
    send: npyStart('(300, 3)', '(300, 4)'),
    expect: [[0, C.NPY_BAD_SHAPE]],
  },
  {
    code: C.NPY_BAD_SHAPE,
    input: 'plain, shape (300, 4)',
    plain: true,
    send: (c) => c.send(npyMessage(POINTS, '(300, 3)', '(300, 4)')),
    expect: [[0, C.NPY_BAD_SHAPE]],
  },
  {
    code: C.NPY_FORTRAN_ORDER,
    input: 'fortran_order True',
    send: npyStart('False,', 'True, '),
    expect: [[0, C.NPY_FORTRAN_ORDER]],
  },
  {
    code: C.NPY_FORTRAN_ORDER,
    input: 'plain, fortran_order True',
    plain: true,
    send: (c) => c.send(npyMessage(POINTS, 'False,', 'True, ')),
    expect: [[0, C.NPY_FORTRAN_ORDER]],
  },
  {
    code: C.NPY_TRUNCATED,
    input: 'plain, .npy of shape (300, 3) with 299 points',
    plain: true,
    send: (c) => c.send(npyMessage(POINTS).slice(0, -12)),
    expect: [[0, C.NPY_TRUNCATED]],
  },
  {
    code: C.ENCODING_CORRUPT,
    input: 'q16 layout 9',
    send: (c) => {
      const encoded = encodePoints(POINTS, 'q16');
      encoded.bytes[4] = 9;
      sendFrame(c, prepareEncodedFrame(encoded, 0, Date.now(), MESSAGE_BYTES, crc32));
    },
    expect: [[0, C.ENCODING_CORRUPT]],
  },
  {
    code: C.PLAIN_BAD_LENGTH,
    input: '13 bytes',
    plain: true,
    send: (c) => c.send(new Uint8Array(13)),
    expect: [[0, C.PLAIN_BAD_LENGTH]],
  },
  {
    code: C.TOO_MANY_ERRORS,
    input: '3 unknown-frame chunks, maxConsecutiveRejections 3',
    limits: { maxConsecutiveRejections: 3 },
    send: sendAll(() => [1, 2, 3].map((seq) => chunks(seq)[1] as Uint8Array)),
    expect: [
      [1, C.CHUNK_UNKNOWN_FRAME],
      [2, C.CHUNK_UNKNOWN_FRAME],
      [3, C.CHUNK_UNKNOWN_FRAME],
      C.TOO_MANY_ERRORS,
    ],
    ends: C.TOO_MANY_ERRORS,
  },
  {
    code: C.TOO_MANY_ERRORS,
    input: 'plain, 3 bad messages, maxConsecutiveRejections 3',
    plain: true,
    limits: { maxConsecutiveRejections: 3 },
    send: sendAll(() => [new Uint8Array(13), new Uint8Array(14), new Uint8Array(15)]),
    expect: [
      [0, C.PLAIN_BAD_LENGTH],
      [1, C.PLAIN_BAD_LENGTH],
      [2, C.PLAIN_BAD_LENGTH],
      C.TOO_MANY_ERRORS,
    ],
    ends: C.TOO_MANY_ERRORS,
  },
];

void describe('ingest: every malformed input', { timeout: 5_000 }, () => {
  for (const testCase of CASES) {
    void it(`${testCase.code}: ${testCase.input}`, async () => {
      const decoder = testCase.decoder ? new ManualDecoder() : undefined;
      const h = await openIngest({
        protocol: testCase.plain ? '' : PROTOCOL_V1,
        ...(testCase.limits ? { limits: testCase.limits } : {}),
        ...(testCase.budgetBytes ? { budgetBytes: testCase.budgetBytes } : {}),
        ...(decoder ? { decoder } : {}),
      });
      testCase.send(h.client);
      const expect = [...testCase.expect];
      if (testCase.ends === undefined) {
        // The session goes on: a good frame after the bad input gets its receipt.
        if (decoder) {
          await until(() => decoder.jobs.length === 1);
          decoder.finish(0);
        }
        if (testCase.plain) {
          h.client.send(new Uint8Array(12));
          expect.push([expect.length, true]);
        } else {
          sendFrame(h.client, frameOf(99, pointsOf(10)));
          expect.push([99, true]);
        }
      }
      await until(() => outcomes(h.messages).length >= expect.length);
      assert.deepEqual(outcomes(h.messages), expect);
      const rejections =
        testCase.rejected ?? expect.filter((e) => Array.isArray(e) && e[1] !== true).length;
      assert.equal(h.ingest.stats().framesRejected, rejections);
      if (testCase.ends === undefined) {
        assert.deepEqual(h.endings, []);
      } else {
        assert.equal(h.endings.length, 1);
        assert.equal(h.endings[0]?.code, testCase.ends);
        assert.equal(h.endings[0]?.normal, false);
        if (testCase.ends.startsWith('PS_ERR_CHUNK_'))
          assert.match(h.endings[0]?.reason ?? '', /^unreadable chunk: /);
      }
      await new Promise((resolve) => setTimeout(resolve, 0));
      assert.equal(h.budget.held, 0, 'no reassembly memory left held');
    });
  }

  void it('PS_ERR_PROTOCOL_UNSUPPORTED and PS_ERR_TOO_MANY_CHANNELS: the channel is refused, the session goes on', async () => {
    const h = await openIngest({ limits: { maxChannelsPerSession: 1 } });
    const other = h.addChannel('pointstream/2');
    const extra = h.addChannel(PROTOCOL_V1);
    assert.deepEqual([other.added, extra.added], [false, false]);
    await until(() => other.messages.length === 1 && extra.messages.length === 1);
    assert.deepEqual(outcomes(other.messages), [C.PROTOCOL_UNSUPPORTED]);
    assert.deepEqual(outcomes(extra.messages), [C.TOO_MANY_CHANNELS]);
    sendFrame(h.client, frameOf(0, POINTS));
    await until(() => h.receipts().length === 1);
    assert.equal(h.receipts()[0]?.ok, true);
    assert.deepEqual(h.endings, []);
  });
});
