/**
 * The pointstream/1 wire format (src/wire): chunk headers byte for byte, CRC-32, chunking and
 * reassembly round trips, every rejection of the reassembler, the plain form, control messages,
 * error serialisation, and hostile input. Pure: no sockets.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { crc32 as zlibCrc32 } from 'node:zlib';

import { ErrorCodes, PointstreamError, isErrorCode } from '../src/errors.js';
import type { ErrorCode } from '../src/errors.js';
import {
  ChunkType,
  DATA_HEADER_BYTES,
  DEFAULT_REASSEMBLY_LIMITS,
  DType,
  Encoding,
  FrameReassembler,
  MAX_CONTROL_MESSAGE_CHARS,
  MIN_MESSAGE_BYTES,
  PROTOCOL_V1,
  START_HEADER_BYTES,
  WIRE_VERSION,
  chunkCountFor,
  crc32Portable,
  decodePlainFrame,
  decodeServerMessage,
  encodeNpyHeader,
  encodeServerMessage,
  parseNpyHeader,
  pointCountOfNpyHeader,
  prepareFrame,
  readChunkHeader,
  writeChunk,
  writeDataHeader,
  writeStartHeader,
} from '../src/wire/index.js';
import type {
  AssembledFrame,
  Checksum,
  FrameMeta,
  OutgoingFrame,
  PushResult,
  ReassemblerOptions,
  ServerMessage,
} from '../src/wire/index.js';

const T = { timeout: 10_000 } as const;

// ---------------------------------------------------------------------------------------------
// Helpers

const zlibChecksum: Checksum = (data, initial) => zlibCrc32(data, initial);

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

/** Hex bytes, one group per line, each line's comment after two or more spaces. */
function hexLines(text: string): Buffer {
  const lines = text.split('\n').map((line) => line.trim().split(/\s{2,}/)[0] ?? '');
  return hex(lines.join(''));
}

/** mulberry32: a small seeded PRNG, so that every run sees the same "random" data. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomInt(rand: () => number, min: number, max: number): number {
  return min + Math.floor(rand() * (max - min + 1));
}

function randomBytes(rand: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(rand() * 256);
  return out;
}

/** Finite float32 points, with a few awkward values (-0, subnormals, extremes) mixed in. */
function randomPoints(rand: () => number, count: number): Float32Array {
  const special = [
    -0, 0, 1e-45, -1e-45, 1.1754943508222875e-38, 3.4028234663852886e38, -3.4028234663852886e38,
  ];
  const points = new Float32Array(count * 3);
  for (let i = 0; i < points.length; i++) {
    points[i] = rand() < 0.02 ? (special[i % special.length] as number) : (rand() - 0.5) * 2000;
  }
  return points;
}

function bytesOf(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

function assertSameFloats(actual: Float32Array, expected: Float32Array): void {
  assert.equal(actual.length, expected.length, 'float count');
  const a = bytesOf(actual);
  const b = bytesOf(expected);
  if (!a.equals(b)) {
    let i = 0;
    while (a[i] === b[i]) i++;
    assert.fail(`float32 values differ bit for bit, first at float ${Math.floor(i / 4)}`);
  }
}

function chunksOf(frame: OutgoingFrame): Uint8Array[] {
  const scratch = new Uint8Array(frame.maxMessageBytes);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < frame.chunkCount; i++) chunks.push(writeChunk(frame, i, scratch).slice());
  return chunks;
}

interface TestFrame {
  readonly points: Float32Array;
  readonly frame: OutgoingFrame;
  readonly chunks: Uint8Array[];
}

function makeFrame(
  points: Float32Array,
  seq: number,
  maxMessageBytes = 200,
  checksum: Checksum = zlibChecksum,
  captureTime = 1_732_579_200_123.25,
): TestFrame {
  const frame = prepareFrame(points, seq, captureTime, maxMessageBytes, checksum);
  return { points, frame, chunks: chunksOf(frame) };
}

/** 50 points at 200-byte messages: a 728-byte payload in 5 chunks (160 + 4 x 188 max). */
function fiveChunkFrame(seq: number, seed = seq): TestFrame {
  const made = makeFrame(randomPoints(prng(seed), 50), seq, 200);
  assert.equal(made.chunks.length, 5);
  return made;
}

/** 10 points at 168-byte messages: a 248-byte payload in 2 chunks. */
function smallFrame(seq: number): TestFrame {
  const made = makeFrame(randomPoints(prng(seq), 10), seq, MIN_MESSAGE_BYTES);
  assert.equal(made.chunks.length, 2);
  return made;
}

const DEFAULT_META: Omit<FrameMeta, 'seq'> = {
  payloadBytes: 128,
  pointCount: 0,
  crc32: 0,
  captureTime: 0,
  chunkCount: 1,
  dtype: DType.FLOAT32,
  components: 3,
  encoding: Encoding.NPY,
};

function startChunk(
  meta: Partial<FrameMeta> & { seq: number },
  data: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const out = new Uint8Array(START_HEADER_BYTES + data.length);
  writeStartHeader(out, { ...DEFAULT_META, ...meta });
  out.set(data, START_HEADER_BYTES);
  return out;
}

function dataChunk(seq: number, index: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(DATA_HEADER_BYTES + data.length);
  writeDataHeader(out, seq, index);
  out.set(data, DATA_HEADER_BYTES);
  return out;
}

function withU8(message: Uint8Array, offset: number, value: number): Uint8Array {
  const out = message.slice();
  out[offset] = value;
  return out;
}

function withU16(message: Uint8Array, offset: number, value: number): Uint8Array {
  const out = message.slice();
  new DataView(out.buffer).setUint16(offset, value, true);
  return out;
}

function withU32(message: Uint8Array, offset: number, value: number): Uint8Array {
  const out = message.slice();
  new DataView(out.buffer).setUint32(offset, value, true);
  return out;
}

function withF64(message: Uint8Array, offset: number, value: number): Uint8Array {
  const out = message.slice();
  new DataView(out.buffer).setFloat64(offset, value, true);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function describeResult(result: PushResult): string {
  return result.kind === 'rejected'
    ? `rejected ${result.error.code}: ${result.error.message}`
    : result.kind;
}

type Eviction = NonNullable<PushResult['evicted']>;

/** Fails when `result` reports an evicted frame; the assert* helpers below expect none. */
function assertNoEviction(result: PushResult, context: string): void {
  if (result.evicted !== undefined) {
    assert.fail(`${context} unexpected eviction: ${describeResult(result.evicted)}`);
  }
}

/**
 * Splits off the frame a push evicted: returns the push's own result (without `evicted`) and the
 * eviction, which must be there.
 */
function splitEviction(result: PushResult, context = ''): [PushResult, Eviction] {
  const { evicted, ...own } = result;
  if (evicted === undefined) assert.fail(`${context} expected an eviction, got none`);
  return [own, evicted];
}

function assertPending(result: PushResult, context = ''): void {
  assert.equal(
    result.kind,
    'pending',
    `${context} expected pending, got ${describeResult(result)}`,
  );
  assertNoEviction(result, context);
}

function assertFrame(result: PushResult, context = ''): AssembledFrame {
  if (result.kind !== 'frame')
    assert.fail(`${context} expected a frame, got ${describeResult(result)}`);
  assertNoEviction(result, context);
  return result.frame;
}

function assertRejected(
  result: PushResult,
  code: ErrorCode,
  seq: number | undefined,
  fatal: boolean,
  context = '',
): PointstreamError {
  if (result.kind !== 'rejected') assert.fail(`${context} expected ${code}, got ${result.kind}`);
  assertNoEviction(result, context);
  assert.ok(result.error instanceof PointstreamError, context);
  assert.equal(result.error.code, code, `${context} ${result.error.message}`);
  assert.equal(result.seq, seq, `${context} seq`);
  assert.equal(result.fatal, fatal, `${context} fatal`);
  assert.equal(result.error.details?.seq, seq, `${context} details.seq`);
  return result.error;
}

/** Pushes every chunk of `made`; the last must complete the frame, bit-exact. */
function deliver(r: FrameReassembler, made: TestFrame): AssembledFrame {
  let result: PushResult = { kind: 'pending' };
  made.chunks.forEach((chunk, i) => {
    result = r.push(chunk);
    if (i < made.chunks.length - 1) assertPending(result, `chunk ${i}`);
  });
  const frame = assertFrame(result, `seq ${made.frame.seq}`);
  assert.equal(frame.seq, made.frame.seq);
  assert.equal(frame.pointCount, made.frame.pointCount);
  assertSameFloats(frame.points, made.points);
  return frame;
}

/**
 * Pushes `messages`: message `at` must be rejected (non-fatal) with `code` for frame `seq`, every
 * other one must be quietly 'pending'. Then nothing is buffered any more, and a following valid
 * frame still reassembles.
 */
function rejectsOnceThenRecovers(
  r: FrameReassembler,
  messages: readonly Uint8Array[],
  at: number,
  code: ErrorCode,
  seq: number,
  next: TestFrame = fiveChunkFrame(seq + 1, 1000 + seq),
): PointstreamError {
  let error: PointstreamError | undefined;
  messages.forEach((message, i) => {
    const result = r.push(message);
    if (i === at) error = assertRejected(result, code, seq, false, `message ${i}`);
    else assertPending(result, `message ${i}`);
  });
  assert.ok(error);
  assert.equal(r.bytesBuffered, 0, 'bytesBuffered after the rejection');
  assert.equal(r.framesInReassembly, 0, 'framesInReassembly after the rejection');
  deliver(r, next);
  assert.equal(r.bytesBuffered, 0, 'bytesBuffered after the next frame');
  return error;
}

function countingAllocator(): { sizes: number[]; allocate: (bytes: number) => Uint8Array } {
  const sizes: number[] = [];
  return {
    sizes,
    allocate: (bytes) => {
      sizes.push(bytes);
      return new Uint8Array(bytes);
    },
  };
}

// ---------------------------------------------------------------------------------------------

void describe('chunk headers', () => {
  const META: FrameMeta = {
    seq: 0x11223344,
    payloadBytes: 0x00012345,
    pointCount: 0x0000abcd,
    crc32: 0xcbf43926,
    captureTime: 1_732_579_200_123.25,
    chunkCount: 0x00000102,
    dtype: DType.FLOAT32,
    components: 3,
    encoding: Encoding.NPY,
  };
  const START_BYTES = hexLines(`
    01 01 28 00              version 1, type START, header length 40
    44 33 22 11              seq 0x11223344
    00 00 00 00              chunk index 0
    45 23 01 00              payloadBytes 0x12345
    cd ab 00 00              pointCount 0xabcd
    26 39 f4 cb              crc32 0xcbf43926
    01 03 01 00              dtype float32, 3 components, encoding npy, flags 0
    00 b4 c7 48 5c 36 79 42  captureTime 1732579200123.25 (f64, struct.pack('<d'))
    02 01 00 00              chunkCount 0x102
  `);
  const DATA_BYTES = hex('01 02 0c 00  44 33 22 11  0d 0c 0b 0a');

  void it('the literal expectations are what they claim to be', T, () => {
    assert.equal(START_BYTES.length, 40);
    assert.equal(START_BYTES.toString('hex', 0, 8), '0101280044332211');
    assert.equal(START_BYTES.readDoubleLE(28), 1_732_579_200_123.25);
    assert.equal(START_HEADER_BYTES, 40);
    assert.equal(DATA_HEADER_BYTES, 12);
    assert.equal(WIRE_VERSION, 1);
    assert.equal(PROTOCOL_V1, 'pointstream/1');
    assert.deepEqual(ChunkType, { START: 1, DATA: 2 });
  });

  void it('writeStartHeader writes the documented little-endian layout', T, () => {
    const target = new Uint8Array(64).fill(0xee);
    assert.equal(writeStartHeader(target, META), 40);
    assert.deepEqual(Buffer.from(target.subarray(0, 40)), START_BYTES);
    assert.ok(
      target.subarray(40).every((byte) => byte === 0xee),
      'nothing written past the header',
    );
  });

  void it('writeDataHeader writes the documented little-endian layout', T, () => {
    const target = new Uint8Array(20).fill(0xee);
    assert.equal(writeDataHeader(target, 0x11223344, 0x0a0b0c0d), 12);
    assert.deepEqual(Buffer.from(target.subarray(0, 12)), DATA_BYTES);
    assert.ok(
      target.subarray(12).every((byte) => byte === 0xee),
      'nothing written past the header',
    );
  });

  void it('writes at the target view, not at the start of its buffer', T, () => {
    const backing = new Uint8Array(100).fill(0xee);
    writeStartHeader(backing.subarray(7, 47), META);
    assert.deepEqual(Buffer.from(backing.subarray(7, 47)), START_BYTES);
    assert.ok(backing.subarray(0, 7).every((byte) => byte === 0xee));
    writeDataHeader(backing.subarray(51), 0x11223344, 0x0a0b0c0d);
    assert.deepEqual(Buffer.from(backing.subarray(51, 63)), DATA_BYTES);
  });

  void it('readChunkHeader reads both layouts back', T, () => {
    const start = readChunkHeader(new Uint8Array(START_BYTES));
    assert.deepEqual(start, {
      type: ChunkType.START,
      seq: 0x11223344,
      chunkIndex: 0,
      headerBytes: 40,
      meta: META,
    });
    const data = readChunkHeader(new Uint8Array(DATA_BYTES));
    assert.deepEqual(data, {
      type: ChunkType.DATA,
      seq: 0x11223344,
      chunkIndex: 0x0a0b0c0d,
      headerBytes: 12,
      meta: undefined,
    });
    // At an odd byteOffset, with payload after the header.
    const backing = new Uint8Array(1 + 40 + 5);
    backing.set(START_BYTES, 1);
    assert.deepEqual(readChunkHeader(backing.subarray(1)).meta, META);
  });

  void it('extreme field values round-trip', T, () => {
    const meta: FrameMeta = {
      seq: 0xffffffff,
      payloadBytes: 0xffffffff,
      pointCount: 0xffffffff,
      crc32: 0xffffffff,
      captureTime: -0,
      chunkCount: 0xffffffff,
      dtype: 255,
      components: 255,
      encoding: 255,
    };
    const target = new Uint8Array(40);
    writeStartHeader(target, meta);
    assert.deepEqual(readChunkHeader(target).meta, meta);
    assert.ok(Object.is(readChunkHeader(target).meta?.captureTime, -0));
    writeDataHeader(target, 0xffffffff, 0xffffffff);
    assert.deepEqual(readChunkHeader(target.subarray(0, 12)), {
      type: ChunkType.DATA,
      seq: 0xffffffff,
      chunkIndex: 0xffffffff,
      headerBytes: 12,
      meta: undefined,
    });
  });

  void it('the writers refuse values that do not fit', T, () => {
    const target = new Uint8Array(64);
    for (const field of ['seq', 'payloadBytes', 'pointCount', 'crc32', 'chunkCount'] as const) {
      for (const bad of [-1, 2 ** 32, 1.5, NaN]) {
        assert.throws(
          () => writeStartHeader(target, { ...META, [field]: bad }),
          RangeError,
          `${field}=${bad}`,
        );
      }
    }
    assert.throws(() => writeStartHeader(target, { ...META, chunkCount: 0 }), RangeError);
    assert.throws(() => writeStartHeader(new Uint8Array(39), META), RangeError);
    assert.throws(() => writeDataHeader(target, 1, 0), RangeError);
    assert.throws(() => writeDataHeader(target, -1, 1), RangeError);
    assert.throws(() => writeDataHeader(target, 1, 2 ** 32), RangeError);
    assert.throws(() => writeDataHeader(new Uint8Array(11), 1, 1), RangeError);
  });
});

void describe('CRC-32', () => {
  const vector = new TextEncoder().encode('123456789');

  void it('crc32Portable and zlib.crc32 give the standard check value 0xCBF43926', T, () => {
    assert.equal(crc32Portable(vector), 0xcbf43926);
    assert.equal(zlibCrc32(vector), 0xcbf43926);
  });

  void it('both give 0 for empty input, and keep the initial value on empty input', T, () => {
    assert.equal(crc32Portable(new Uint8Array(0)), 0);
    assert.equal(zlibCrc32(new Uint8Array(0)), 0);
    assert.equal(crc32Portable(new Uint8Array(0), 0xcbf43926), 0xcbf43926);
    assert.equal(zlibCrc32(new Uint8Array(0), 0xcbf43926), 0xcbf43926);
  });

  void it('agree on random data of many lengths, whole and incrementally', T, () => {
    const rand = prng(42);
    for (const length of [1, 2, 3, 4, 7, 8, 15, 16, 63, 64, 255, 256, 1000, 4096, 65_537]) {
      const data = randomBytes(rand, length);
      const whole = zlibCrc32(data);
      assert.equal(crc32Portable(data), whole, `length ${length}`);
      assert.ok(whole >= 0 && whole <= 0xffffffff && Number.isInteger(whole));
      const cut = randomInt(rand, 0, length);
      const a = data.subarray(0, cut);
      const b = data.subarray(cut);
      assert.equal(crc32Portable(b, crc32Portable(a)), whole, `split at ${cut}`);
      assert.equal(zlibCrc32(b, crc32Portable(a)), whole, 'zlib continues a portable crc');
      assert.equal(crc32Portable(b, zlibCrc32(a)), whole, 'portable continues a zlib crc');
    }
  });

  void it('crc32Portable reads its view, not the whole buffer', T, () => {
    const backing = new Uint8Array(20).fill(0x55);
    backing.set(vector, 5);
    assert.equal(crc32Portable(backing.subarray(5, 14)), 0xcbf43926);
  });
});

void describe('chunking', () => {
  void it(
    'chunkCountFor: one chunk up to maxMessageBytes - 40, then maxMessageBytes - 12 per chunk',
    T,
    () => {
      assert.equal(MIN_MESSAGE_BYTES, 168);
      for (const max of [MIN_MESSAGE_BYTES, 1000, 65_536, 262_144]) {
        const first = max - START_HEADER_BYTES;
        const rest = max - DATA_HEADER_BYTES;
        assert.equal(chunkCountFor(128, max), 1);
        assert.equal(chunkCountFor(first, max), 1);
        assert.equal(chunkCountFor(first + 1, max), 2);
        assert.equal(chunkCountFor(first + rest, max), 2);
        assert.equal(chunkCountFor(first + rest + 1, max), 3);
        assert.equal(chunkCountFor(first + 10 * rest, max), 11);
      }
    },
  );

  void it(
    'docs/protocol.md example: 1,000,000 points at 262,144-byte messages -> 46 chunks',
    T,
    () => {
      assert.equal(chunkCountFor(128 + 12_000_000, 262_144), 46);
    },
  );

  void it('prepareFrame and writeChunk check their arguments', T, () => {
    assert.throws(() => prepareFrame(new Float32Array(4), 0, 0, 1000, zlibChecksum), RangeError);
    assert.throws(
      () => prepareFrame(new Float32Array(3), 0, 0, MIN_MESSAGE_BYTES - 1, zlibChecksum),
      RangeError,
    );
    assert.throws(() => prepareFrame(new Float32Array(3), 0, 0, 1000.5, zlibChecksum), RangeError);
    const frame = prepareFrame(new Float32Array(300), 0, 0, 200, zlibChecksum);
    assert.throws(() => writeChunk(frame, -1, new Uint8Array(200)), RangeError);
    assert.throws(() => writeChunk(frame, frame.chunkCount, new Uint8Array(200)), RangeError);
    assert.throws(() => writeChunk(frame, 0.5, new Uint8Array(200)), RangeError);
    assert.throws(() => writeChunk(frame, 0, new Uint8Array(199)), RangeError);
  });

  void it('prepareFrame references the points (no copy) and checksums header + points', T, () => {
    const points = randomPoints(prng(7), 10);
    const frame = prepareFrame(points, 3, 99, 1000, crc32Portable);
    assert.equal(frame.parts.length, 2);
    assert.deepEqual(
      Buffer.from(frame.parts[0] as Uint8Array),
      Buffer.from(encodeNpyHeader([10, 3])),
    );
    assert.equal((frame.parts[1] as Uint8Array).buffer, points.buffer);
    assert.equal(frame.payloadBytes, 128 + 120);
    assert.equal(frame.crc32, zlibCrc32(Buffer.concat(frame.parts as Uint8Array[])));
    assert.equal(frame.pointCount, 10);
    assert.equal(frame.seq, 3);
    assert.equal(frame.captureTime, 99);
  });
});

void describe('round trips: prepareFrame + writeChunk + FrameReassembler', () => {
  // 1368 = 168 + 100 x 12: 100 points exactly fill the first chunk.
  const sizes = [MIN_MESSAGE_BYTES, 1000, 1368, 65_536, 262_144];
  for (const max of sizes) {
    // The most points that fit the START chunk, and one more point (12 more bytes) than that.
    const fill = Math.floor((max - START_HEADER_BYTES - 128) / 12);
    const counts = [...new Set([0, 1, fill, fill + 1, 100_000])];
    for (const count of counts) {
      void it(`${count} points at maxMessageBytes ${max}`, T, () => {
        const points = randomPoints(prng(count * 31 + max), count);
        // One checksum on each side, alternating; both must declare the same CRC.
        const senderSum = count % 2 === 0 ? zlibChecksum : crc32Portable;
        const receiverSum = count % 2 === 0 ? crc32Portable : zlibChecksum;
        const made = makeFrame(points, 77, max, senderSum, 1_700_000_000_000.5);
        const { frame, chunks } = made;
        assert.equal(
          prepareFrame(points, 77, 0, max, receiverSum).crc32,
          frame.crc32,
          'zlib.crc32 and crc32Portable declare the same CRC',
        );
        const payloadBytes = 128 + count * 12;
        assert.equal(frame.payloadBytes, payloadBytes);
        assert.equal(frame.chunkCount, chunkCountFor(payloadBytes, max));
        assert.equal(chunks.length, frame.chunkCount);
        if (count === fill) assert.equal(frame.chunkCount, 1, 'fills the first chunk');
        if (count === fill + 1)
          assert.equal(frame.chunkCount, 2, 'one point more needs a second chunk');
        if (max === 1368 && count === fill) assert.equal(chunks[0]?.length, max, 'exactly full');

        // Chunk headers: START then DATA 1, 2, ...; every chunk but the last is full.
        let carried = 0;
        chunks.forEach((chunk, i) => {
          const header = readChunkHeader(chunk);
          assert.equal(header.type, i === 0 ? ChunkType.START : ChunkType.DATA);
          assert.equal(header.seq, 77);
          assert.equal(header.chunkIndex, i);
          assert.ok(chunk.length <= max);
          if (i < chunks.length - 1) assert.equal(chunk.length, max, `chunk ${i} is full`);
          carried += chunk.length - header.headerBytes;
        });
        assert.equal(carried, payloadBytes);
        const meta = readChunkHeader(chunks[0] as Uint8Array).meta;
        assert.deepEqual(meta, {
          seq: 77,
          payloadBytes,
          pointCount: count,
          crc32: frame.crc32,
          captureTime: 1_700_000_000_000.5,
          chunkCount: frame.chunkCount,
          dtype: DType.FLOAT32,
          components: 3,
          encoding: Encoding.NPY,
        });

        let clock = 10;
        const { sizes: allocated, allocate } = countingAllocator();
        const r = new FrameReassembler({ checksum: receiverSum, allocate, now: () => clock++ });
        const assembled = deliver(r, made);
        assert.deepEqual(allocated, [payloadBytes], 'one allocation, of the payload size');
        assert.equal(assembled.captureTime, 1_700_000_000_000.5);
        assert.equal(assembled.chunkCount, frame.chunkCount);
        assert.equal(assembled.crc32, frame.crc32);
        assert.equal(assembled.startedAt, 10);
        assert.equal(assembled.completedAt, 11);
        assert.equal(r.bytesBuffered, 0);
        assert.equal(r.framesInReassembly, 0);

        // The payload is a complete .npy file equal to what was sent.
        const { payload } = assembled;
        assert.equal(payload.length, payloadBytes);
        assert.equal(zlibCrc32(payload), frame.crc32);
        assert.equal(crc32Portable(payload), frame.crc32);
        const header = parseNpyHeader(payload);
        assert.equal(pointCountOfNpyHeader(header), count);
        assert.equal(header.dataOffset, 128);
        const data = payload.subarray(header.dataOffset);
        assert.ok(
          Buffer.from(data.buffer, data.byteOffset, data.byteLength).equals(bytesOf(points)),
        );
        // points is a view into the payload (aligned: no copy).
        assert.equal(assembled.points.buffer, payload.buffer);
        assert.equal(assembled.points.byteOffset, payload.byteOffset + 128);
        // And the plain form reads the same payload.
        assertSameFloats(decodePlainFrame(payload, 0, DEFAULT_REASSEMBLY_LIMITS).points, points);
      });
    }
  }

  void it('0 points with zlib.crc32 as the sender checksum (as client.ts does)', T, () => {
    const header = encodeNpyHeader([0, 3]);
    const expected = crc32Portable(header);
    assert.equal(zlibCrc32(header), expected);
    assert.notEqual(expected, 0);
    // A zero-length array over an empty buffer, and an empty view into a non-empty one.
    const empties = [new Float32Array(0), new Float32Array(new ArrayBuffer(24), 12, 0)];
    for (const [i, points] of empties.entries()) {
      const made = makeFrame(points, 1 + i, 1000, zlibChecksum);
      assert.equal(made.frame.crc32, expected, `empty frame ${i}: declared CRC`);
      assert.equal(made.frame.payloadBytes, 128);
      assert.equal(made.chunks.length, 1);
      assert.equal(readChunkHeader(made.chunks[0] as Uint8Array).meta?.crc32, expected);
      for (const checksum of [zlibChecksum, crc32Portable]) {
        const frame = deliver(new FrameReassembler({ checksum }), made);
        assert.equal(frame.pointCount, 0);
        assert.equal(frame.points.length, 0);
        assert.equal(frame.crc32, expected);
        assert.deepEqual(Buffer.from(frame.payload), Buffer.from(header));
      }
    }
  });

  void it('many frames in a row on one reassembler, with varied sizes', T, () => {
    const rand = prng(99);
    const r = new FrameReassembler({ checksum: zlibChecksum });
    for (let seq = 0; seq < 60; seq++) {
      const made = makeFrame(
        randomPoints(rand, randomInt(rand, 0, 3000)),
        seq * 3,
        randomInt(rand, 168, 5000),
      );
      deliver(r, made);
      assert.equal(r.bytesBuffered, 0);
    }
  });

  void it(
    'a payload buffer at an unaligned offset still gives the right points (copy path)',
    T,
    () => {
      const made = makeFrame(randomPoints(prng(5), 40), 1, 300);
      const r = new FrameReassembler({
        allocate: (bytes) => new Uint8Array(bytes + 1).subarray(1),
      });
      const frame = deliver(r, made);
      assert.notEqual(frame.points.buffer, frame.payload.buffer);
    },
  );

  void it('NumPy-written fixtures travel as chunked payloads', T, () => {
    const file = (name: string) =>
      new Uint8Array(readFileSync(new URL(`./fixtures/npy/${name}`, import.meta.url)));
    const send = (bytes: Uint8Array, seq: number, pointCount: number): Uint8Array[] => {
      const max = 500;
      const chunkCount = chunkCountFor(bytes.length, max);
      const crc = zlibCrc32(bytes);
      const out = [
        startChunk(
          { seq, payloadBytes: bytes.length, pointCount, crc32: crc, chunkCount },
          bytes.subarray(0, max - 40),
        ),
      ];
      for (let i = 1, at = max - 40; i < chunkCount; i++, at += max - 12) {
        out.push(dataChunk(seq, i, bytes.subarray(at, at + max - 12)));
      }
      return out;
    };
    const r = new FrameReassembler();
    const good = file('xyz_f4_1000.npy');
    const results = send(good, 1, 1000).map((chunk) => r.push(chunk));
    const frame = assertFrame(results.at(-1) as PushResult);
    assert.equal(frame.points[0], -100);
    assert.equal(frame.points[2999], 1399.5);
    assert.deepEqual(Buffer.from(frame.payload), Buffer.from(good));
    // A float64 file is refused at its START chunk with the .npy code; its DATA chunks are dropped.
    const f8 = send(file('xyz_f8.npy'), 2, 2);
    assertRejected(r.push(f8[0] as Uint8Array), ErrorCodes.NPY_UNSUPPORTED_DTYPE, 2, false);
    const fortran = send(file('xyz_f4_fortran.npy'), 3, 4);
    assertRejected(r.push(fortran[0] as Uint8Array), ErrorCodes.NPY_FORTRAN_ORDER, 3, false);
    const nan = send(file('xyz_f4_nan.npy'), 4, 2);
    assertRejected(r.push(nan[0] as Uint8Array), ErrorCodes.FRAME_NON_FINITE, 4, false);
    assert.equal(r.bytesBuffered, 0);
  });
});

void describe('reassembler: fatal chunk header errors', () => {
  const start = fiveChunkFrame(9).chunks[0] as Uint8Array;
  const data = fiveChunkFrame(9).chunks[1] as Uint8Array;
  // The expected seq is the header's when readChunkHeader got as far as reading it (it throws with
  // details.seq), undefined when the message is too short or its version or type is unknown.
  const cases: [string, Uint8Array, ErrorCode, number | undefined][] = [
    ['empty message', new Uint8Array(0), ErrorCodes.CHUNK_TRUNCATED, undefined],
    ['1-byte message', Uint8Array.of(1), ErrorCodes.CHUNK_TRUNCATED, undefined],
    ['11-byte message', data.subarray(0, 11), ErrorCodes.CHUNK_TRUNCATED, undefined],
    ['11-byte START', start.subarray(0, 11), ErrorCodes.CHUNK_TRUNCATED, undefined],
    ['version 0', withU8(data, 0, 0), ErrorCodes.CHUNK_BAD_VERSION, undefined],
    ['version 2', withU8(start, 0, 2), ErrorCodes.CHUNK_BAD_VERSION, undefined],
    ['version 255', withU8(data, 0, 255), ErrorCodes.CHUNK_BAD_VERSION, undefined],
    ['type 0', withU8(data, 1, 0), ErrorCodes.CHUNK_BAD_TYPE, undefined],
    ['type 3', withU8(start, 1, 3), ErrorCodes.CHUNK_BAD_TYPE, undefined],
    ['type 255', withU8(data, 1, 255), ErrorCodes.CHUNK_BAD_TYPE, undefined],
    ['DATA with header length 40', withU16(data, 2, 40), ErrorCodes.CHUNK_BAD_HEADER, 9],
    ['DATA with header length 0', withU16(data, 2, 0), ErrorCodes.CHUNK_BAD_HEADER, 9],
    ['DATA with header length 13', withU16(data, 2, 13), ErrorCodes.CHUNK_BAD_HEADER, 9],
    [
      'DATA with header length 13 and seq 0',
      withU32(withU16(data, 2, 13), 4, 0),
      ErrorCodes.CHUNK_BAD_HEADER,
      0,
    ],
    ['START with header length 12', withU16(start, 2, 12), ErrorCodes.CHUNK_BAD_HEADER, 9],
    ['START with header length 41', withU16(start, 2, 41), ErrorCodes.CHUNK_BAD_HEADER, 9],
    ['START with header length 0xffff', withU16(start, 2, 0xffff), ErrorCodes.CHUNK_BAD_HEADER, 9],
    ['START shorter than 40 bytes (39)', start.subarray(0, 39), ErrorCodes.CHUNK_TRUNCATED, 9],
    ['START of 12 bytes', start.subarray(0, 12), ErrorCodes.CHUNK_TRUNCATED, 9],
    ['START with index 1', withU32(start, 8, 1), ErrorCodes.CHUNK_BAD_HEADER, 9],
    ['START with index 0xffffffff', withU32(start, 8, 0xffffffff), ErrorCodes.CHUNK_BAD_HEADER, 9],
    ['DATA with index 0', withU32(data, 8, 0), ErrorCodes.CHUNK_BAD_HEADER, 9],
    [
      'DATA with index 0 and seq 0xffffffff',
      withU32(withU32(data, 8, 0), 4, 0xffffffff),
      ErrorCodes.CHUNK_BAD_HEADER,
      0xffffffff,
    ],
    ['START with flags 0x01', withU8(start, 27, 0x01), ErrorCodes.CHUNK_BAD_HEADER, 9],
    ['START with flags 0x80', withU8(start, 27, 0x80), ErrorCodes.CHUNK_BAD_HEADER, 9],
    ['START declaring 0 chunks', withU32(start, 36, 0), ErrorCodes.CHUNK_BAD_HEADER, 9],
    [
      'START declaring 0 chunks, seq 0',
      withU32(withU32(start, 36, 0), 4, 0),
      ErrorCodes.CHUNK_BAD_HEADER,
      0,
    ],
    ['START with a NaN capture time', withF64(start, 28, NaN), ErrorCodes.CHUNK_BAD_HEADER, 9],
    [
      'START with an infinite capture time',
      withF64(start, 28, -Infinity),
      ErrorCodes.CHUNK_BAD_HEADER,
      9,
    ],
  ];
  for (const [what, message, code, seq] of cases) {
    void it(`${what} -> ${code}, fatal, seq ${seq}`, T, () => {
      // readChunkHeader throws the code, with the seq in its details when it read one...
      assert.throws(
        () => readChunkHeader(message),
        (error) =>
          error instanceof PointstreamError &&
          error.code === code &&
          error.details?.seq === seq &&
          (seq !== undefined || error.details === undefined),
      );
      // ...and the reassembler reports it as fatal, with that seq (or undefined).
      const r = new FrameReassembler();
      assertRejected(r.push(message), code, seq, true);
      assert.equal(r.bytesBuffered, 0);
      assert.equal(r.framesInReassembly, 0);
      // Nothing was registered: frame 9 (and frame 0, the smallest seq) still reassemble.
      deliver(r, fiveChunkFrame(0));
      deliver(r, fiveChunkFrame(9));
    });
  }

  void it('a fatal error in the middle of a frame does not disturb the frame state', T, () => {
    const made = fiveChunkFrame(4);
    const r = new FrameReassembler();
    assertPending(r.push(made.chunks[0] as Uint8Array));
    assertRejected(
      r.push(withU8(made.chunks[1] as Uint8Array, 0, 7)),
      ErrorCodes.CHUNK_BAD_VERSION,
      undefined,
      true,
    );
    // A bad header naming this very frame is fatal too, and leaves it alone.
    assertRejected(
      r.push(withU16(made.chunks[1] as Uint8Array, 2, 13)),
      ErrorCodes.CHUNK_BAD_HEADER,
      4,
      true,
    );
    assertRejected(
      r.push(withU32(made.chunks[0] as Uint8Array, 8, 1)),
      ErrorCodes.CHUNK_BAD_HEADER,
      4,
      true,
    );
    assert.equal(r.framesInReassembly, 1);
    assert.equal(r.bytesBuffered, 728);
    for (const chunk of made.chunks.slice(1, -1)) assertPending(r.push(chunk));
    assertSameFloats(assertFrame(r.push(made.chunks[4] as Uint8Array)).points, made.points);
  });
});

void describe('reassembler: rejected frames', () => {
  void it('DATA chunk before any START -> PS_ERR_CHUNK_UNKNOWN_FRAME, not fatal', T, () => {
    const r = new FrameReassembler();
    const made = fiveChunkFrame(3);
    const error = assertRejected(
      r.push(made.chunks[1] as Uint8Array),
      ErrorCodes.CHUNK_UNKNOWN_FRAME,
      3,
      false,
    );
    assert.match(error.message, /chunk 1 of frame 3/);
    assert.equal(r.bytesBuffered, 0);
    assert.equal(r.framesInReassembly, 0);
    // It opened nothing: the following frames reassemble.
    deliver(r, fiveChunkFrame(4));
    deliver(r, fiveChunkFrame(5));
  });

  void it('the remaining chunks of a frame whose START never came are dropped quietly', T, () => {
    const r = new FrameReassembler();
    rejectsOnceThenRecovers(
      r,
      fiveChunkFrame(3).chunks.slice(1),
      0,
      ErrorCodes.CHUNK_UNKNOWN_FRAME,
      3,
    );
    // Also when the first chunk seen is not chunk 1, and when a chunk repeats.
    const { chunks } = fiveChunkFrame(40);
    rejectsOnceThenRecovers(
      r,
      [chunks[3], chunks[2], chunks[4], chunks[4], chunks[1]] as Uint8Array[],
      0,
      ErrorCodes.CHUNK_UNKNOWN_FRAME,
      40,
    );
  });

  void it('interleaved chunks of several unknown frames: each frame is reported once', T, () => {
    const r = new FrameReassembler();
    const messages: [number, number][] = [
      [10, 1],
      [20, 1],
      [10, 2],
      [30, 3],
      [20, 2],
      [30, 4],
      [10, 3],
      [0, 7],
      [20, 3],
      [0, 8],
      [30, 5],
    ];
    const reported: number[] = [];
    for (const [seq, index] of messages) {
      const result = r.push(dataChunk(seq, index, new Uint8Array(16)));
      if (result.kind === 'rejected') {
        assertRejected(result, ErrorCodes.CHUNK_UNKNOWN_FRAME, seq, false, `${seq}/${index}`);
        reported.push(seq);
      } else assertPending(result, `${seq}/${index}`);
    }
    assert.deepEqual(reported, [10, 20, 30, 0]);
    assert.equal(r.bytesBuffered, 0);
    assert.equal(r.framesInReassembly, 0);
    deliver(r, fiveChunkFrame(31));
    assert.equal(r.bytesBuffered, 0);
  });

  void it(
    '10,000 DATA chunks with distinct invented seqs: each rejected once, memory stays bounded',
    T,
    () => {
      const rand = prng(0x5e9);
      const seqs = new Set<number>();
      while (seqs.size < 10_000) seqs.add(randomInt(rand, 0, 0xfffffffe));
      const order = [...seqs];
      const r = new FrameReassembler();
      for (const [i, seq] of order.entries()) {
        const message = dataChunk(seq, randomInt(rand, 1, 0xfffffffe), new Uint8Array(i % 7));
        assertRejected(r.push(message), ErrorCodes.CHUNK_UNKNOWN_FRAME, seq, false, `chunk ${i}`);
        assert.equal(r.framesInReassembly, 0);
        assert.equal(r.bytesBuffered, 0);
      }
      // Bounded bookkeeping cannot remember 10,000 frames: sending the same 10,000 seqs again,
      // some of them must be reported again (had all been remembered, none would be).
      let again = 0;
      for (const seq of order) {
        const result = r.push(dataChunk(seq, 1));
        if (result.kind === 'rejected') {
          assertRejected(result, ErrorCodes.CHUNK_UNKNOWN_FRAME, seq, false);
          again++;
        } else assertPending(result);
      }
      assert.ok(again > 0, 'all 10,000 invented frames were remembered');
      // A valid frame afterwards still reassembles.
      const seq = 0xffffffff;
      assert.ok(!seqs.has(seq));
      deliver(r, fiveChunkFrame(seq, 1));
      assert.equal(r.bytesBuffered, 0);
      assert.equal(r.framesInReassembly, 0);
    },
  );

  void it('a skipped chunk index -> PS_ERR_CHUNK_OUT_OF_ORDER', T, () => {
    const { chunks } = fiveChunkFrame(6);
    const r = new FrameReassembler();
    const error = rejectsOnceThenRecovers(
      r,
      [chunks[0], chunks[1], chunks[3], chunks[4]] as Uint8Array[],
      2,
      ErrorCodes.CHUNK_OUT_OF_ORDER,
      6,
    );
    assert.match(error.message, /chunk 3 .*chunk 2 was due/);
  });

  void it(
    'a skipped chunk index straight to the last chunk -> PS_ERR_CHUNK_OUT_OF_ORDER',
    T,
    () => {
      const { chunks } = fiveChunkFrame(6);
      const r = new FrameReassembler();
      rejectsOnceThenRecovers(
        r,
        [chunks[0], chunks[1], chunks[4]] as Uint8Array[],
        2,
        ErrorCodes.CHUNK_OUT_OF_ORDER,
        6,
      );
    },
  );

  for (const bogus of [4, 5, 99, 0xffffffff]) {
    void it(
      `chunk index ${bogus} where 2 is due (5 chunks) -> one PS_ERR_CHUNK_OUT_OF_ORDER, then the real chunks are dropped quietly`,
      T,
      () => {
        const { chunks } = fiveChunkFrame(6);
        const messages = [
          chunks[0],
          chunks[1],
          dataChunk(6, bogus, new Uint8Array(10)),
          ...chunks.slice(2),
        ] as Uint8Array[];
        const error = rejectsOnceThenRecovers(
          new FrameReassembler(),
          messages,
          2,
          ErrorCodes.CHUNK_OUT_OF_ORDER,
          6,
        );
        assert.match(error.message, new RegExp(`chunk ${bogus} .*chunk 2 was due`));
      },
    );
  }

  void it('a repeated chunk index -> PS_ERR_CHUNK_OUT_OF_ORDER', T, () => {
    const { chunks } = fiveChunkFrame(6);
    const r = new FrameReassembler();
    const messages = [
      chunks[0],
      chunks[1],
      chunks[1],
      chunks[2],
      chunks[3],
      chunks[4],
    ] as Uint8Array[];
    rejectsOnceThenRecovers(r, messages, 2, ErrorCodes.CHUNK_OUT_OF_ORDER, 6);
  });

  void it(
    'a START repeating the seq of a frame under way rejects that frame once (PS_ERR_FRAME_DUPLICATE); later chunks of that seq are dropped quietly',
    T,
    () => {
      const { chunks } = fiveChunkFrame(6);
      const r = new FrameReassembler();
      // The frame under way got chunks 0 and 1; then frame 6 starts over and is sent whole.
      const messages = [chunks[0], chunks[1], ...chunks] as Uint8Array[];
      rejectsOnceThenRecovers(r, messages, 2, ErrorCodes.FRAME_DUPLICATE, 6);
      // Just the START repeated, right after the first one.
      const again = fiveChunkFrame(8);
      rejectsOnceThenRecovers(
        r,
        [again.chunks[0], ...again.chunks] as Uint8Array[],
        1,
        ErrorCodes.FRAME_DUPLICATE,
        8,
      );
    },
  );

  void it(
    'a duplicate START for one of two open frames rejects just that one, and evicts nothing',
    T,
    () => {
      const r = new FrameReassembler({ limits: { maxFramesInReassembly: 2 } });
      const a = fiveChunkFrame(1);
      const b = fiveChunkFrame(2);
      assertPending(r.push(a.chunks[0] as Uint8Array));
      assertPending(r.push(b.chunks[0] as Uint8Array));
      assertPending(r.push(b.chunks[1] as Uint8Array));
      assertRejected(r.push(b.chunks[0] as Uint8Array), ErrorCodes.FRAME_DUPLICATE, 2, false);
      assert.equal(r.framesInReassembly, 1);
      assert.equal(r.bytesBuffered, 728);
      for (const chunk of b.chunks.slice(1)) assertPending(r.push(chunk), 'frame 2, dropped');
      for (const chunk of a.chunks.slice(1, -1)) assertPending(r.push(chunk), 'frame 1');
      assertSameFloats(assertFrame(r.push(a.chunks[4] as Uint8Array)).points, a.points);
      assert.equal(r.bytesBuffered, 0);
      assert.equal(r.framesInReassembly, 0);
      deliver(r, fiveChunkFrame(3));
    },
  );

  void it('more bytes than declared in the last chunk -> PS_ERR_CHUNK_OVERFLOW', T, () => {
    const { chunks } = fiveChunkFrame(8);
    const messages = [...chunks.slice(0, 4), concat(chunks[4] as Uint8Array, Uint8Array.of(0))];
    rejectsOnceThenRecovers(new FrameReassembler(), messages, 4, ErrorCodes.CHUNK_OVERFLOW, 8);
  });

  void it('more bytes than declared in a middle chunk -> PS_ERR_CHUNK_OVERFLOW', T, () => {
    const { chunks } = fiveChunkFrame(8);
    const messages = [
      chunks[0],
      dataChunk(8, 1, new Uint8Array(700)),
      ...chunks.slice(2),
    ] as Uint8Array[];
    rejectsOnceThenRecovers(new FrameReassembler(), messages, 1, ErrorCodes.CHUNK_OVERFLOW, 8);
  });

  void it(
    'a START chunk carrying more than the declared payload -> PS_ERR_CHUNK_OVERFLOW',
    T,
    () => {
      const { chunks } = fiveChunkFrame(8);
      const messages = [withU32(chunks[0] as Uint8Array, 12, 150), ...chunks.slice(1)];
      const { sizes, allocate } = countingAllocator();
      rejectsOnceThenRecovers(
        new FrameReassembler({ allocate }),
        messages,
        0,
        ErrorCodes.CHUNK_OVERFLOW,
        8,
      );
      assert.deepEqual(sizes, [728], 'only the next (valid) frame allocated');
    },
  );

  void it('fewer bytes than declared at the last chunk -> PS_ERR_FRAME_LENGTH_MISMATCH', T, () => {
    const { chunks } = fiveChunkFrame(10);
    const last = chunks[4] as Uint8Array;
    const messages = [...chunks.slice(0, 4), last.subarray(0, last.length - 1)];
    rejectsOnceThenRecovers(
      new FrameReassembler(),
      messages,
      4,
      ErrorCodes.FRAME_LENGTH_MISMATCH,
      10,
    );
  });

  void it('a single-chunk frame whose START lacks bytes -> PS_ERR_FRAME_LENGTH_MISMATCH', T, () => {
    const made = makeFrame(randomPoints(prng(1), 3), 10, 1000);
    const only = made.chunks[0] as Uint8Array;
    rejectsOnceThenRecovers(
      new FrameReassembler(),
      [only.subarray(0, only.length - 12)],
      0,
      ErrorCodes.FRAME_LENGTH_MISMATCH,
      10,
    );
  });

  void it('a flipped payload byte -> PS_ERR_FRAME_CHECKSUM', T, () => {
    for (const [chunkIndex, offset] of [
      [2, 12 + 5],
      [4, 12],
      [0, 40 + 140], // the first point
    ] as const) {
      const { chunks } = fiveChunkFrame(12);
      const chunk = chunks[chunkIndex] as Uint8Array;
      chunk[offset] = (chunk[offset] as number) ^ 0x01;
      rejectsOnceThenRecovers(new FrameReassembler(), chunks, 4, ErrorCodes.FRAME_CHECKSUM, 12);
    }
  });

  void it('a wrong crc32 in the START header -> PS_ERR_FRAME_CHECKSUM', T, () => {
    const { chunks, frame } = fiveChunkFrame(12);
    const messages = [
      withU32(chunks[0] as Uint8Array, 20, (frame.crc32 ^ 0x80000000) >>> 0),
      ...chunks.slice(1),
    ];
    rejectsOnceThenRecovers(new FrameReassembler(), messages, 4, ErrorCodes.FRAME_CHECKSUM, 12);
  });

  void it(
    'declared size above maxFrameBytes -> PS_ERR_FRAME_TOO_LARGE, nothing allocated',
    T,
    () => {
      const { sizes, allocate } = countingAllocator();
      const r = new FrameReassembler({ limits: { maxFrameBytes: 727 }, allocate });
      rejectsOnceThenRecovers(
        r,
        fiveChunkFrame(14).chunks,
        0,
        ErrorCodes.FRAME_TOO_LARGE,
        14,
        smallFrame(15),
      );
      assert.deepEqual(sizes, [248], 'only the next (small) frame allocated');
      // At the limit exactly, the frame is accepted.
      const edge = new FrameReassembler({ limits: { maxFrameBytes: 728 } });
      deliver(edge, fiveChunkFrame(1));
    },
  );

  void it(
    'a hostile 4 GiB START -> PS_ERR_FRAME_TOO_LARGE with default limits, nothing allocated',
    T,
    () => {
      const { sizes, allocate } = countingAllocator();
      const r = new FrameReassembler({ allocate });
      const hostile = startChunk(
        { seq: 20, payloadBytes: 0xffffffff, pointCount: 1000, chunkCount: 3 },
        encodeNpyHeader([1000, 3]),
      );
      const messages = [
        hostile,
        dataChunk(20, 1, new Uint8Array(100)),
        dataChunk(20, 2, new Uint8Array(100)),
      ];
      rejectsOnceThenRecovers(r, messages, 0, ErrorCodes.FRAME_TOO_LARGE, 20);
      assert.deepEqual(sizes, [728], 'only the following valid frame allocated');
    },
  );

  void it('too many points -> PS_ERR_FRAME_TOO_MANY_POINTS', T, () => {
    const { sizes, allocate } = countingAllocator();
    const r = new FrameReassembler({ limits: { maxPointsPerFrame: 49 }, allocate });
    const error = rejectsOnceThenRecovers(
      r,
      fiveChunkFrame(16).chunks,
      0,
      ErrorCodes.FRAME_TOO_MANY_POINTS,
      16,
      smallFrame(17),
    );
    assert.match(error.message, /50 points/);
    assert.deepEqual(sizes, [248], 'only the next (small) frame allocated');
  });

  void it('a hostile point count -> PS_ERR_FRAME_TOO_MANY_POINTS with default limits', T, () => {
    const hostile = startChunk(
      { seq: 1, payloadBytes: 128, pointCount: 0xffffffff, chunkCount: 2 },
      encodeNpyHeader([0, 3]),
    );
    rejectsOnceThenRecovers(
      new FrameReassembler(),
      [hostile, dataChunk(1, 1)],
      0,
      ErrorCodes.FRAME_TOO_MANY_POINTS,
      1,
    );
  });

  void it('too many chunks -> PS_ERR_FRAME_TOO_MANY_CHUNKS', T, () => {
    const r = new FrameReassembler({ limits: { maxChunksPerFrame: 4 } });
    rejectsOnceThenRecovers(
      r,
      fiveChunkFrame(18).chunks,
      0,
      ErrorCodes.FRAME_TOO_MANY_CHUNKS,
      18,
      smallFrame(19),
    );
    // A hostile chunk count with default limits.
    const hostile = startChunk(
      { seq: 30, payloadBytes: 128, chunkCount: 0xffffffff },
      encodeNpyHeader([0, 3]),
    );
    assertRejected(
      new FrameReassembler().push(hostile),
      ErrorCodes.FRAME_TOO_MANY_CHUNKS,
      30,
      false,
    );
  });

  for (const [what, offset, value] of [
    ['dtype 2', 24, 2],
    ['dtype 0', 24, 0],
    ['components 4', 25, 4],
    ['components 0', 25, 0],
    ['encoding 0 (raw)', 26, 0],
    ['encoding 4 (unknown)', 26, 4],
  ] as const) {
    void it(`${what} -> PS_ERR_FRAME_UNSUPPORTED_FORMAT`, T, () => {
      const { chunks } = fiveChunkFrame(22);
      const messages = [withU8(chunks[0] as Uint8Array, offset, value), ...chunks.slice(1)];
      rejectsOnceThenRecovers(
        new FrameReassembler(),
        messages,
        0,
        ErrorCodes.FRAME_UNSUPPORTED_FORMAT,
        22,
      );
    });
  }

  void it(
    'an npy header that disagrees with the START point count -> PS_ERR_FRAME_LENGTH_MISMATCH',
    T,
    () => {
      // START says 51 points (and a payload 12 bytes longer), the .npy header says 50.
      const { chunks } = fiveChunkFrame(24);
      const lying = withU32(withU32(chunks[0] as Uint8Array, 16, 51), 12, 728 + 12);
      rejectsOnceThenRecovers(
        new FrameReassembler(),
        [lying, ...chunks.slice(1)],
        0,
        ErrorCodes.FRAME_LENGTH_MISMATCH,
        24,
      );
      // START says 50 points, but a payload one byte longer than the .npy needs.
      const { chunks: more } = fiveChunkFrame(30);
      const long = withU32(more[0] as Uint8Array, 12, 729);
      rejectsOnceThenRecovers(
        new FrameReassembler(),
        [long, ...more.slice(1)],
        0,
        ErrorCodes.FRAME_LENGTH_MISMATCH,
        30,
      );
      // The .npy header itself says (49, 3).
      const npy = encodeNpyHeader([49, 3]);
      const wrongNpy = (chunks[0] as Uint8Array).slice();
      wrongNpy.set(npy, 40);
      rejectsOnceThenRecovers(
        new FrameReassembler(),
        [wrongNpy, ...chunks.slice(1)],
        0,
        ErrorCodes.FRAME_LENGTH_MISMATCH,
        24,
      );
    },
  );

  void it(
    'a START chunk too short to hold the npy header -> PS_ERR_FRAME_LENGTH_MISMATCH',
    T,
    () => {
      const npy = encodeNpyHeader([0, 3]);
      const short = startChunk({ seq: 26, payloadBytes: 128, chunkCount: 2 }, npy.subarray(0, 100));
      rejectsOnceThenRecovers(
        new FrameReassembler(),
        [short, dataChunk(26, 1, npy.subarray(100))],
        0,
        ErrorCodes.FRAME_LENGTH_MISMATCH,
        26,
      );
    },
  );

  void it('a START chunk whose payload is not .npy -> the PS_ERR_NPY_* code, not fatal', T, () => {
    const { chunks } = fiveChunkFrame(28);
    rejectsOnceThenRecovers(
      new FrameReassembler(),
      [withU8(chunks[0] as Uint8Array, 40, 0), ...chunks.slice(1)],
      0,
      ErrorCodes.NPY_BAD_MAGIC,
      28,
    );
    const { chunks: again } = fiveChunkFrame(28);
    rejectsOnceThenRecovers(
      new FrameReassembler(),
      [withU8(again[0] as Uint8Array, 46, 9), ...again.slice(1)],
      0,
      ErrorCodes.NPY_BAD_VERSION,
      28,
    );
    const f8 = (again[0] as Uint8Array).slice();
    f8.set(encodeNpyHeader([50, 3], '<f8'), 40);
    rejectsOnceThenRecovers(
      new FrameReassembler(),
      [f8, ...again.slice(1)],
      0,
      ErrorCodes.NPY_UNSUPPORTED_DTYPE,
      28,
    );
  });

  void it(
    'a repeated or decreasing sequence number -> PS_ERR_FRAME_DUPLICATE (single-chunk frames)',
    T,
    () => {
      const r = new FrameReassembler();
      const one = (seq: number) => makeFrame(randomPoints(prng(seq), 2), seq, 1000);
      deliver(r, one(5));
      assertRejected(r.push(one(5).chunks[0] as Uint8Array), ErrorCodes.FRAME_DUPLICATE, 5, false);
      assertRejected(r.push(one(4).chunks[0] as Uint8Array), ErrorCodes.FRAME_DUPLICATE, 4, false);
      assertRejected(r.push(one(0).chunks[0] as Uint8Array), ErrorCodes.FRAME_DUPLICATE, 0, false);
      assert.equal(r.bytesBuffered, 0);
      deliver(r, one(6));
      // Gaps in sequence numbers are fine.
      deliver(r, one(1000));
    },
  );

  void it(
    'a repeated sequence number on a multi-chunk frame -> one PS_ERR_FRAME_DUPLICATE, then its chunks are dropped quietly',
    T,
    () => {
      const r = new FrameReassembler();
      deliver(r, fiveChunkFrame(5));
      rejectsOnceThenRecovers(
        r,
        fiveChunkFrame(5).chunks,
        0,
        ErrorCodes.FRAME_DUPLICATE,
        5,
        fiveChunkFrame(6),
      );
    },
  );

  void it(
    'a decreasing sequence number on a multi-chunk frame -> one PS_ERR_FRAME_DUPLICATE, then its chunks are dropped quietly',
    T,
    () => {
      const r = new FrameReassembler();
      deliver(r, fiveChunkFrame(5));
      rejectsOnceThenRecovers(
        r,
        fiveChunkFrame(2).chunks,
        0,
        ErrorCodes.FRAME_DUPLICATE,
        2,
        fiveChunkFrame(6),
      );
    },
  );

  void it(
    'a valid START with every slot taken evicts the oldest unfinished frame (PS_ERR_FRAME_INCOMPLETE) and proceeds',
    T,
    () => {
      const { sizes, allocate } = countingAllocator();
      const r = new FrameReassembler({ limits: { maxFramesInReassembly: 2 }, allocate });
      const a = fiveChunkFrame(1); // 728 bytes
      const b = smallFrame(2); // 248 bytes
      const c = fiveChunkFrame(3);
      assertPending(r.push(a.chunks[0] as Uint8Array));
      assertPending(r.push(a.chunks[1] as Uint8Array));
      assertPending(r.push(b.chunks[0] as Uint8Array));
      assert.equal(r.framesInReassembly, 2);
      assert.equal(r.bytesBuffered, 728 + 248);

      const [own, evicted] = splitEviction(r.push(c.chunks[0] as Uint8Array));
      assertPending(own, 'the new frame');
      const error = assertRejected(evicted, ErrorCodes.FRAME_INCOMPLETE, 1, false, 'evicted');
      assert.match(error.message, /frame 1\b/);
      assert.deepEqual(sizes, [728, 248, 728], 'the new frame was allocated');
      assert.equal(r.framesInReassembly, 2);
      assert.equal(r.bytesBuffered, 248 + 728, 'the evicted frame released its bytes');

      // The rest of the evicted frame is dropped quietly, with no second report.
      for (const chunk of a.chunks.slice(2)) assertPending(r.push(chunk), 'evicted frame 1');
      assert.equal(r.bytesBuffered, 248 + 728);
      // The two open frames complete, interleaved.
      for (let i = 1; i < 4; i++) assertPending(r.push(c.chunks[i] as Uint8Array), `c ${i}`);
      assertSameFloats(assertFrame(r.push(b.chunks[1] as Uint8Array)).points, b.points);
      assert.equal(r.bytesBuffered, 728);
      assertSameFloats(assertFrame(r.push(c.chunks[4] as Uint8Array)).points, c.points);
      assert.equal(r.bytesBuffered, 0);
      assert.equal(r.framesInReassembly, 0);
      deliver(r, fiveChunkFrame(4));
      assert.equal(r.bytesBuffered, 0);
    },
  );

  void it('evicted frames go oldest first, by START arrival (maxFramesInReassembly 3)', T, () => {
    const r = new FrameReassembler({ limits: { maxFramesInReassembly: 3 } });
    const frames = [1, 2, 3, 4, 5].map((seq) => fiveChunkFrame(seq));
    const [f1, f2, f3, f4, f5] = frames as [TestFrame, TestFrame, TestFrame, TestFrame, TestFrame];
    for (const f of [f1, f2, f3]) assertPending(r.push(f.chunks[0] as Uint8Array));
    // Progress on frame 1 does not make it any younger.
    assertPending(r.push(f1.chunks[1] as Uint8Array));
    let [own, evicted] = splitEviction(r.push(f4.chunks[0] as Uint8Array));
    assertPending(own);
    assertRejected(evicted, ErrorCodes.FRAME_INCOMPLETE, 1, false);
    [own, evicted] = splitEviction(r.push(f5.chunks[0] as Uint8Array));
    assertPending(own);
    assertRejected(evicted, ErrorCodes.FRAME_INCOMPLETE, 2, false);
    assert.equal(r.framesInReassembly, 3);
    assert.equal(r.bytesBuffered, 3 * 728);
    for (const f of [f3, f4, f5]) {
      for (const chunk of f.chunks.slice(1, -1)) assertPending(r.push(chunk));
    }
    for (const f of [f5, f3, f4]) {
      assertSameFloats(assertFrame(r.push(f.chunks[4] as Uint8Array)).points, f.points);
    }
    assert.equal(r.bytesBuffered, 0);
  });

  void it(
    'a single-chunk frame that evicts another completes at once: kind frame, with evicted set',
    T,
    () => {
      const r = new FrameReassembler({ limits: { maxFramesInReassembly: 2 } });
      const a = fiveChunkFrame(1);
      const b = fiveChunkFrame(2);
      const c = makeFrame(randomPoints(prng(3), 3), 3, 1000);
      assert.equal(c.chunks.length, 1);
      assertPending(r.push(a.chunks[0] as Uint8Array));
      assertPending(r.push(b.chunks[0] as Uint8Array));
      const [own, evicted] = splitEviction(r.push(c.chunks[0] as Uint8Array));
      const frame = assertFrame(own, 'the single-chunk frame');
      assert.equal(frame.seq, 3);
      assertSameFloats(frame.points, c.points);
      assertRejected(evicted, ErrorCodes.FRAME_INCOMPLETE, 1, false);
      assert.equal(r.framesInReassembly, 1);
      assert.equal(r.bytesBuffered, 728);
      for (const chunk of a.chunks.slice(1)) assertPending(r.push(chunk), 'evicted frame 1');
      for (const chunk of b.chunks.slice(1, -1)) assertPending(r.push(chunk));
      assertSameFloats(assertFrame(r.push(b.chunks[4] as Uint8Array)).points, b.points);
      assert.equal(r.bytesBuffered, 0);
    },
  );

  void it(
    'a single-chunk frame that evicts another and fails its checksum: rejected, with evicted set',
    T,
    () => {
      const r = new FrameReassembler({ limits: { maxFramesInReassembly: 1 } });
      const a = fiveChunkFrame(1);
      const c = makeFrame(randomPoints(prng(3), 3), 2, 1000);
      const corrupt = (c.chunks[0] as Uint8Array).slice();
      corrupt[40 + 128] = (corrupt[40 + 128] as number) ^ 0x01;
      assertPending(r.push(a.chunks[0] as Uint8Array));
      const [own, evicted] = splitEviction(r.push(corrupt));
      assertRejected(own, ErrorCodes.FRAME_CHECKSUM, 2, false, 'the new frame');
      assertRejected(evicted, ErrorCodes.FRAME_INCOMPLETE, 1, false, 'evicted');
      assert.equal(r.framesInReassembly, 0);
      assert.equal(r.bytesBuffered, 0);
      for (const chunk of a.chunks.slice(1)) assertPending(r.push(chunk), 'evicted frame 1');
      deliver(r, fiveChunkFrame(3));
    },
  );

  void it('a START that is itself rejected evicts nothing', T, () => {
    const { sizes, allocate } = countingAllocator();
    const r = new FrameReassembler({
      limits: { maxFramesInReassembly: 2, maxFrameBytes: 728 },
      allocate,
    });
    const a = fiveChunkFrame(1);
    const b = fiveChunkFrame(2);
    assertPending(r.push(a.chunks[0] as Uint8Array));
    assertPending(r.push(b.chunks[0] as Uint8Array));
    const tooLarge = makeFrame(randomPoints(prng(3), 51), 3, 200);
    assertRejected(r.push(tooLarge.chunks[0] as Uint8Array), ErrorCodes.FRAME_TOO_LARGE, 3, false);
    const badFormat = withU8(fiveChunkFrame(4).chunks[0] as Uint8Array, 24, 2);
    assertRejected(r.push(badFormat), ErrorCodes.FRAME_UNSUPPORTED_FORMAT, 4, false);
    assertRejected(
      r.push(a.chunks[0] as Uint8Array),
      ErrorCodes.FRAME_DUPLICATE,
      1,
      false,
      'a duplicate START rejects the open frame 1 instead',
    );
    assert.equal(sizes.length, 2);
    assert.equal(r.framesInReassembly, 1);
    assert.equal(r.bytesBuffered, 728);
    for (const chunk of b.chunks.slice(1, -1)) assertPending(r.push(chunk));
    assertSameFloats(assertFrame(r.push(b.chunks[4] as Uint8Array)).points, b.points);
  });

  void it(
    'an evicted frame is not reported again when a second eviction follows (interleaved frames)',
    {
      ...T,
    },
    () => {
      const r = new FrameReassembler({ limits: { maxFramesInReassembly: 2 } });
      const [a, b, c, d] = [1, 2, 3, 4].map((seq) => fiveChunkFrame(seq)) as [
        TestFrame,
        TestFrame,
        TestFrame,
        TestFrame,
      ];
      assertPending(r.push(a.chunks[0] as Uint8Array));
      assertPending(r.push(b.chunks[0] as Uint8Array));
      assertRejected(
        splitEviction(r.push(c.chunks[0] as Uint8Array))[1],
        ErrorCodes.FRAME_INCOMPLETE,
        1,
        false,
      );
      assertRejected(
        splitEviction(r.push(d.chunks[0] as Uint8Array))[1],
        ErrorCodes.FRAME_INCOMPLETE,
        2,
        false,
      );
      for (const chunk of a.chunks.slice(1)) assertPending(r.push(chunk), 'frame 1');
    },
  );

  void it(
    'a rejected frame is not reported again when another frame starts before its last chunk (interleaved frames)',
    {
      ...T,
    },
    () => {
      const r = new FrameReassembler({ limits: { maxFramesInReassembly: 2 } });
      const a = fiveChunkFrame(1);
      const b = fiveChunkFrame(2);
      assertPending(r.push(a.chunks[0] as Uint8Array));
      assertRejected(r.push(a.chunks[2] as Uint8Array), ErrorCodes.CHUNK_OUT_OF_ORDER, 1, false);
      assertPending(r.push(b.chunks[0] as Uint8Array));
      for (const chunk of a.chunks.slice(3)) assertPending(r.push(chunk), 'frame 1');
    },
  );

  for (const [what, bad] of [
    ['NaN', NaN],
    ['+Infinity', Infinity],
    ['-Infinity', -Infinity],
  ] as const) {
    void it(
      `${what} in the points -> PS_ERR_FRAME_NON_FINITE (accepted with allowNonFinite)`,
      T,
      () => {
        const points = randomPoints(prng(3), 50);
        points[100] = bad;
        const made = makeFrame(points, 32, 200);
        // Checked chunk by chunk: rejected at the message that carries payload bytes 528-531
        // (160 bytes in the START, 188 in each DATA), not after the last one.
        const error = rejectsOnceThenRecovers(
          new FrameReassembler(),
          made.chunks,
          2,
          ErrorCodes.FRAME_NON_FINITE,
          32,
        );
        assert.equal(error.details?.seq, 32);
        assert.match(error.message, /^point 33 has a non-finite coordinate/);
        // Points not 4-byte aligned in memory: checked once, after the last chunk.
        const misaligned = new FrameReassembler({
          allocate: (bytes) => new Uint8Array(bytes + 1).subarray(1),
        });
        const late = rejectsOnceThenRecovers(
          misaligned,
          made.chunks,
          4,
          ErrorCodes.FRAME_NON_FINITE,
          32,
        );
        assert.match(late.message, /^point 33 has a non-finite coordinate/);
        const tolerant = new FrameReassembler({ limits: { allowNonFinite: true } });
        const frame = deliver(tolerant, made);
        assert.ok(Object.is(frame.points[100], bad));
      },
    );
  }

  void it('bytesBuffered follows allocation, rejection, completion and reset()', T, () => {
    const r = new FrameReassembler({ limits: { maxFramesInReassembly: 3 } });
    const a = fiveChunkFrame(1);
    const b = fiveChunkFrame(2);
    const c = makeFrame(randomPoints(prng(9), 10), 3, 200);
    assertPending(r.push(a.chunks[0] as Uint8Array));
    assert.equal(r.bytesBuffered, 728);
    assertPending(r.push(b.chunks[0] as Uint8Array));
    assertPending(r.push(c.chunks[0] as Uint8Array));
    assert.equal(r.bytesBuffered, 728 + 728 + 248);
    assert.equal(r.framesInReassembly, 3);
    assertRejected(r.push(b.chunks[2] as Uint8Array), ErrorCodes.CHUNK_OUT_OF_ORDER, 2, false);
    assert.equal(r.bytesBuffered, 728 + 248);
    assert.equal(r.framesInReassembly, 2);
    assertPending(r.push(a.chunks[1] as Uint8Array));
    assert.deepEqual(r.reset().sort(), [1, 3]);
    assert.equal(r.bytesBuffered, 0);
    assert.equal(r.framesInReassembly, 0);
    assert.deepEqual(r.reset(), []);
    // After reset the tail of a dropped frame is unknown.
    assertRejected(r.push(a.chunks[2] as Uint8Array), ErrorCodes.CHUNK_UNKNOWN_FRAME, 1, false);
    deliver(r, fiveChunkFrame(4));
    assert.equal(r.bytesBuffered, 0);
  });

  void it('limits are merged with the defaults and frozen', T, () => {
    const r = new FrameReassembler({ limits: { maxFrameBytes: 1000 } });
    assert.deepEqual(r.limits, { ...DEFAULT_REASSEMBLY_LIMITS, maxFrameBytes: 1000 });
    assert.ok(Object.isFrozen(r.limits));
    assert.ok(Object.isFrozen(DEFAULT_REASSEMBLY_LIMITS));
  });
});

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

void describe('control messages', () => {
  const messages: ServerMessage[] = [
    {
      type: 'hello',
      session: 's-123',
      protocol: PROTOCOL_V1,
      maxFrameBytes: 64 * 1024 * 1024,
      maxPointsPerFrame: 5_000_000,
      maxFramesInReassembly: 2,
    },
    { type: 'receipt', seq: 7, ok: true, receivedAt: 1_732_579_200_123.5, points: 1000 },
    {
      type: 'receipt',
      seq: 8,
      ok: false,
      receivedAt: 1_732_579_200_124,
      code: ErrorCodes.FRAME_CHECKSUM,
      message: 'bad crc',
    },
    {
      type: 'closing',
      code: ErrorCodes.TOO_MANY_ERRORS,
      message: '16 frames in a row were rejected',
    },
  ];
  for (const message of messages) {
    void it(
      `round trip: ${message.type}${message.type === 'receipt' ? (message.ok ? ' ok' : ' rejected') : ''}`,
      T,
      () => {
        const text = encodeServerMessage(message);
        assert.equal(typeof text, 'string');
        assert.deepEqual(JSON.parse(text), message);
        assert.deepEqual(decodeServerMessage(text), message);
      },
    );
  }

  void it('unknown extra fields are dropped', T, () => {
    const decoded = decodeServerMessage(JSON.stringify({ ...messages[1], extra: 'x' }));
    assert.deepEqual(decoded, messages[1]);
  });

  const hello = messages[0] as ServerMessage;
  const invalid: [string, string][] = [
    ['not JSON', 'hello'],
    ['truncated JSON', '{"type":"hello"'],
    ['empty string', ''],
    ['an array', '[{"type":"closing","code":"PS_ERR_SESSION_CLOSED","message":"x"}]'],
    ['null', 'null'],
    ['a number', '42'],
    ['a string', '"receipt"'],
    ['unknown type', '{"type":"goodbye"}'],
    ['no type', '{"seq":1}'],
    ['hello without session', JSON.stringify({ ...hello, session: undefined })],
    ['hello with a numeric session', JSON.stringify({ ...hello, session: 5 })],
    ['hello without protocol', JSON.stringify({ ...hello, protocol: undefined })],
    ['hello without maxFrameBytes', JSON.stringify({ ...hello, maxFrameBytes: undefined })],
    ['hello with negative maxPointsPerFrame', JSON.stringify({ ...hello, maxPointsPerFrame: -1 })],
    [
      'hello with fractional maxFramesInReassembly',
      JSON.stringify({ ...hello, maxFramesInReassembly: 1.5 }),
    ],
    ['hello with a string limit', JSON.stringify({ ...hello, maxFrameBytes: '100' })],
    ['receipt without seq', '{"type":"receipt","ok":true,"receivedAt":1,"points":1}'],
    [
      'receipt with negative seq',
      '{"type":"receipt","seq":-1,"ok":true,"receivedAt":1,"points":1}',
    ],
    ['receipt without receivedAt', '{"type":"receipt","seq":1,"ok":true,"points":1}'],
    [
      'receipt with a string receivedAt',
      '{"type":"receipt","seq":1,"ok":true,"receivedAt":"now","points":1}',
    ],
    ['receipt without ok', '{"type":"receipt","seq":1,"receivedAt":1,"points":1}'],
    ['receipt with ok "true"', '{"type":"receipt","seq":1,"ok":"true","receivedAt":1,"points":1}'],
    ['ok receipt without points', '{"type":"receipt","seq":1,"ok":true,"receivedAt":1}'],
    [
      'rejected receipt without code',
      '{"type":"receipt","seq":1,"ok":false,"receivedAt":1,"message":"x"}',
    ],
    [
      'rejected receipt with an unknown code',
      '{"type":"receipt","seq":1,"ok":false,"receivedAt":1,"code":"PS_ERR_NOPE","message":"x"}',
    ],
    [
      'rejected receipt without message',
      '{"type":"receipt","seq":1,"ok":false,"receivedAt":1,"code":"PS_ERR_FRAME_CHECKSUM"}',
    ],
    ['closing with an unknown code', '{"type":"closing","code":"EPIPE","message":"x"}'],
    ['closing without message', '{"type":"closing","code":"PS_ERR_SESSION_CLOSED"}'],
    [
      'over-long text',
      JSON.stringify({ ...hello, session: 'x'.repeat(MAX_CONTROL_MESSAGE_CHARS) }),
    ],
  ];
  for (const [what, text] of invalid) {
    void it(`rejects ${what} -> PS_ERR_CONTROL_INVALID`, T, () => {
      assert.throws(
        () => decodeServerMessage(text),
        (error) => error instanceof PointstreamError && error.code === ErrorCodes.CONTROL_INVALID,
      );
    });
  }

  void it(`accepts exactly ${MAX_CONTROL_MESSAGE_CHARS} characters, not one more`, T, () => {
    const base = JSON.stringify({ ...hello, session: '' });
    const exact = JSON.stringify({
      ...hello,
      session: 'x'.repeat(MAX_CONTROL_MESSAGE_CHARS - base.length),
    });
    assert.equal(exact.length, MAX_CONTROL_MESSAGE_CHARS);
    assert.equal(decodeServerMessage(exact).type, 'hello');
    assert.throws(() => decodeServerMessage(`${exact} `), { code: ErrorCodes.CONTROL_INVALID });
  });
});

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

void describe('hostile bytes', () => {
  const LIMITS = {
    maxFrameBytes: 2048,
    maxPointsPerFrame: 150,
    maxChunksPerFrame: 8,
    maxFramesInReassembly: 2,
    allowNonFinite: false,
  };

  /** A message that looks more or less like a chunk, with random fields. */
  function hostileMessage(rand: () => number, seqBase: number): Uint8Array {
    const pick = rand();
    const length = randomInt(rand, 0, 300);
    if (pick < 0.2) return randomBytes(rand, length);
    const seq =
      rand() < 0.05 ? randomInt(rand, 0, 0xffff) : Math.max(0, seqBase + randomInt(rand, -3, 3));
    if (pick < 0.55) {
      const pointCount = rand() < 0.7 ? randomInt(rand, 0, 200) : randomInt(rand, 0, 0xffffffff);
      const payloadBytes =
        rand() < 0.6 ? 128 + pointCount * 12 : randomInt(rand, 0, rand() < 0.5 ? 5000 : 0xffffffff);
      const body = new Uint8Array(Math.max(40, length));
      const view = new DataView(body.buffer);
      body.set(randomBytes(rand, body.length));
      view.setUint8(0, rand() < 0.95 ? 1 : randomInt(rand, 0, 255));
      view.setUint8(1, rand() < 0.95 ? 1 : randomInt(rand, 0, 255));
      view.setUint16(2, rand() < 0.95 ? 40 : randomInt(rand, 0, 0xffff), true);
      view.setUint32(4, seq, true);
      view.setUint32(8, rand() < 0.95 ? 0 : randomInt(rand, 0, 0xffffffff), true);
      view.setUint32(12, payloadBytes >>> 0, true);
      view.setUint32(16, pointCount >>> 0, true);
      view.setUint8(24, rand() < 0.9 ? 1 : randomInt(rand, 0, 255));
      view.setUint8(25, rand() < 0.9 ? 3 : randomInt(rand, 0, 255));
      view.setUint8(26, rand() < 0.9 ? 1 : randomInt(rand, 0, 255));
      view.setUint8(27, rand() < 0.95 ? 0 : randomInt(rand, 0, 255));
      view.setFloat64(
        28,
        rand() < 0.95 ? rand() * 1e12 : ([NaN, Infinity, -0][randomInt(rand, 0, 2)] as number),
        true,
      );
      view.setUint32(
        36,
        rand() < 0.8 ? randomInt(rand, 1, 10) : randomInt(rand, 0, 0xffffffff),
        true,
      );
      if (rand() < 0.6 && body.length >= 40 + 128) {
        body.set(encodeNpyHeader([rand() < 0.8 ? pointCount : randomInt(rand, 0, 300), 3]), 40);
      }
      return length < 40 && rand() < 0.5 ? body.subarray(0, length) : body;
    }
    const body = randomBytes(rand, Math.max(12, length));
    const view = new DataView(body.buffer);
    view.setUint8(0, rand() < 0.95 ? 1 : randomInt(rand, 0, 255));
    view.setUint8(1, rand() < 0.95 ? 2 : randomInt(rand, 0, 255));
    view.setUint16(2, rand() < 0.95 ? 12 : randomInt(rand, 0, 0xffff), true);
    view.setUint32(4, seq, true);
    view.setUint32(8, rand() < 0.9 ? randomInt(rand, 1, 10) : randomInt(rand, 0, 0xffffffff), true);
    return body;
  }

  function checkResult(r: FrameReassembler, result: PushResult, context: string): void {
    const what = `${context}: ${describeResult(result)}`;
    assert.ok(['pending', 'frame', 'rejected'].includes(result.kind), what);
    if (result.kind === 'rejected') {
      assert.ok(result.error instanceof PointstreamError, `${what}: not a PointstreamError`);
      assert.ok(
        isErrorCode(result.error.code),
        `${what}: unknown code ${String(result.error.code)}`,
      );
      assert.equal(typeof result.fatal, 'boolean', what);
      assert.ok(
        result.seq === undefined || (Number.isInteger(result.seq) && result.seq >= 0),
        `${what}: seq ${result.seq}`,
      );
      assert.equal(result.error.details?.seq, result.seq, `${what}: details.seq`);
      // Only a header too short or of unknown version or type names no frame.
      if (!result.fatal) assert.notEqual(result.seq, undefined, `${what}: no seq`);
    }
    if (result.evicted !== undefined) {
      const { evicted } = result;
      assert.equal(evicted.kind, 'rejected', what);
      assert.equal(evicted.error.code, ErrorCodes.FRAME_INCOMPLETE, `${what}: evicted`);
      assert.equal(evicted.fatal, false, `${what}: evicted`);
      assert.ok(Number.isInteger(evicted.seq), `${what}: evicted seq ${evicted.seq}`);
      assert.equal(evicted.error.details?.seq, evicted.seq, `${what}: evicted details.seq`);
      assert.ok(!('evicted' in evicted), `${what}: nested eviction`);
      assert.notEqual(result.kind === 'rejected' && result.fatal, true, `${what}: fatal`);
    }
    const buffered = r.bytesBuffered;
    assert.ok(buffered >= 0, `${what}: ${buffered} bytes buffered`);
    assert.ok(
      buffered <= LIMITS.maxFramesInReassembly * LIMITS.maxFrameBytes,
      `${what}: ${buffered} bytes buffered`,
    );
    assert.ok(
      r.framesInReassembly <= LIMITS.maxFramesInReassembly,
      `${what}: ${r.framesInReassembly} frames`,
    );
  }

  void it(
    '2,000 random messages never make push() throw; every rejection has a stable code',
    T,
    () => {
      const rand = prng(0x5eed);
      const { sizes, allocate } = countingAllocator();
      const r = new FrameReassembler({ limits: LIMITS, allocate, checksum: zlibChecksum });
      const seen = new Map<string, number>();
      let seqBase = 0;
      let sent = 0;
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 100; i++, sent++) {
          seqBase += randomInt(rand, 0, 1);
          const message = hostileMessage(rand, seqBase);
          let result: PushResult;
          try {
            result = r.push(message);
          } catch (error) {
            assert.fail(
              `push threw on message ${sent} (${Buffer.from(message).toString('hex')}): ${String(error)}`,
            );
          }
          checkResult(r, result, `message ${sent}`);
          const key = result.kind === 'rejected' ? result.error.code : result.kind;
          seen.set(key, (seen.get(key) ?? 0) + 1);
          if (result.evicted) seen.set('evicted', (seen.get('evicted') ?? 0) + 1);
        }
        // After garbage and reset(), a random valid frame still comes through.
        r.reset();
        assert.equal(r.bytesBuffered, 0);
        assert.equal(r.framesInReassembly, 0);
        seqBase += 0x10000; // above every sequence number the garbage used
        const made = makeFrame(
          randomPoints(rand, randomInt(rand, 0, 150)),
          seqBase,
          randomInt(rand, 300, 1000),
        );
        const frame = deliver(r, made);
        assert.deepEqual(
          Buffer.from(frame.payload),
          Buffer.concat(made.frame.parts as Uint8Array[]),
        );
        assert.equal(r.bytesBuffered, 0);
      }
      assert.equal(sent, 2000);
      assert.ok(
        sizes.every((size) => size <= LIMITS.maxFrameBytes),
        'no allocation above maxFrameBytes',
      );
      // The generator reaches deep: many different outcomes.
      assert.ok(seen.size >= 12, `outcomes: ${JSON.stringify(Object.fromEntries(seen))}`);
    },
  );

  void it('mutated valid chunk streams never make push() throw', T, () => {
    const rand = prng(0xbad);
    // One long-lived reassembler sees every stream (state carried across frames), and a fresh
    // one sees each stream alone (so that intact streams must come through).
    const longLived = new FrameReassembler({ limits: LIMITS });
    let seq = 0;
    let intact = 0;
    let evictions = 0;
    for (let n = 0; n < 300; n++) {
      seq += randomInt(rand, 1, 2);
      const made = makeFrame(
        randomPoints(rand, randomInt(rand, 0, 150)),
        seq,
        randomInt(rand, 300, 700),
      );
      const chunks: Uint8Array[] = made.chunks.map((chunk) => chunk.slice());
      let mutated = false;
      for (let f = randomInt(rand, -1, 2); f > 0; f--) {
        const chunk = chunks[randomInt(rand, 0, chunks.length - 1)] as Uint8Array;
        const at = randomInt(rand, 0, chunk.length - 1);
        const value = randomInt(rand, 0, 255);
        mutated ||= chunk[at] !== value;
        chunk[at] = value;
      }
      if (rand() < 0.1) {
        chunks.splice(randomInt(rand, 0, chunks.length - 1), 1);
        mutated = true;
      }
      if (rand() < 0.1 && chunks.length > 0) {
        chunks.push(chunks[randomInt(rand, 0, chunks.length - 1)] as Uint8Array);
        mutated = true;
      }
      const fresh = new FrameReassembler({ limits: LIMITS });
      let completed = false;
      for (const [i, chunk] of chunks.entries()) {
        for (const r of [longLived, fresh]) {
          let result: PushResult;
          try {
            result = r.push(chunk);
          } catch (error) {
            assert.fail(`push threw on chunk ${i} of frame ${seq}: ${String(error)}`);
          }
          checkResult(r, result, `frame ${seq} chunk ${i}`);
          if (result.evicted !== undefined) evictions++;
          if (r === fresh && result.kind === 'frame') {
            completed = true;
            assertSameFloats(result.frame.points, made.points);
          }
        }
      }
      if (!mutated) {
        intact++;
        assert.ok(completed, `intact frame ${seq} did not come through`);
      }
    }
    assert.ok(intact > 30, `${intact} intact streams`);
    // Frames left unfinished by a dropped chunk get evicted from the long-lived reassembler.
    assert.ok(evictions > 0, 'the eviction path was reached');
  });

  void it(
    'mutated .npy files never make decodePlainFrame throw anything but a PointstreamError',
    T,
    () => {
      const rand = prng(0xf00d);
      const limits = { maxFrameBytes: 4096, maxPointsPerFrame: 200, allowNonFinite: false };
      for (let n = 0; n < 2000; n++) {
        const count = randomInt(rand, 0, 20);
        const file = concat(encodeNpyHeader([count, 3]), bytesOf(randomPoints(rand, count)));
        for (let f = randomInt(rand, 1, 3); f > 0; f--) {
          file[randomInt(rand, 0, Math.min(file.length, 140) - 1)] =
            rand() < 0.5 ? randomInt(rand, 0, 255) : randomInt(rand, 0x20, 0x7e);
        }
        const message = rand() < 0.2 ? file.subarray(0, randomInt(rand, 0, file.length)) : file;
        try {
          decodePlainFrame(message, n, limits);
        } catch (error) {
          assert.ok(
            error instanceof PointstreamError,
            `${String(error)} on ${Buffer.from(message).toString('latin1')}`,
          );
          assert.ok(isErrorCode(error.code));
        }
      }
    },
  );
});

// Compile-time check that the options type accepts Node's zlib.crc32 and Buffer allocation as the
// server passes them.
const _serverOptions: ReassemblerOptions = {
  checksum: zlibCrc32,
  allocate: (bytes) => Buffer.allocUnsafeSlow(bytes),
};
void _serverOptions;
