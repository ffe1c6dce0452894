/**
 * Shared helpers of the wire unit tests (test/unit/{chunk,crc32,frame,reassembler,plain,control,
 * errors,hostile}.test.ts): seeded random data, frame builders, hand-made chunks and PushResult
 * assertions.
 */
import assert from 'node:assert/strict';
import { crc32 as zlibCrc32 } from 'node:zlib';

import { PointstreamError } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import {
  DATA_HEADER_BYTES,
  DType,
  Encoding,
  MIN_MESSAGE_BYTES,
  START_HEADER_BYTES,
  prepareFrame,
  writeChunk,
  writeDataHeader,
  writeStartHeader,
} from '../../src/wire/index.js';
import type {
  AssembledFrame,
  Checksum,
  FrameMeta,
  FrameReassembler,
  OutgoingFrame,
  PushResult,
} from '../../src/wire/index.js';

export const T = { timeout: 10_000 } as const;

// ---------------------------------------------------------------------------------------------
// Helpers

export const zlibChecksum: Checksum = (data, initial) => zlibCrc32(data, initial);

export function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

/** Hex bytes, one group per line, each line's comment after two or more spaces. */
export function hexLines(text: string): Buffer {
  const lines = text.split('\n').map((line) => line.trim().split(/\s{2,}/)[0] ?? '');
  return hex(lines.join(''));
}

/** mulberry32: a small seeded PRNG, so that every run sees the same "random" data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomInt(rand: () => number, min: number, max: number): number {
  return min + Math.floor(rand() * (max - min + 1));
}

export function randomBytes(rand: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(rand() * 256);
  return out;
}

/** Finite float32 points, with a few awkward values (-0, subnormals, extremes) mixed in. */
export function randomPoints(rand: () => number, count: number): Float32Array {
  const special = [
    -0, 0, 1e-45, -1e-45, 1.1754943508222875e-38, 3.4028234663852886e38, -3.4028234663852886e38,
  ];
  const points = new Float32Array(count * 3);
  for (let i = 0; i < points.length; i++) {
    points[i] = rand() < 0.02 ? (special[i % special.length] as number) : (rand() - 0.5) * 2000;
  }
  return points;
}

export function bytesOf(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

export function assertSameFloats(actual: Float32Array, expected: Float32Array): void {
  assert.equal(actual.length, expected.length, 'float count');
  const a = bytesOf(actual);
  const b = bytesOf(expected);
  if (!a.equals(b)) {
    let i = 0;
    while (a[i] === b[i]) i++;
    assert.fail(`float32 values differ bit for bit, first at float ${Math.floor(i / 4)}`);
  }
}

export function chunksOf(frame: OutgoingFrame): Uint8Array[] {
  const scratch = new Uint8Array(frame.maxMessageBytes);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < frame.chunkCount; i++) chunks.push(writeChunk(frame, i, scratch).slice());
  return chunks;
}

export interface TestFrame {
  readonly points: Float32Array;
  readonly frame: OutgoingFrame;
  readonly chunks: Uint8Array[];
}

export function makeFrame(
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
export function fiveChunkFrame(seq: number, seed = seq): TestFrame {
  const made = makeFrame(randomPoints(prng(seed), 50), seq, 200);
  assert.equal(made.chunks.length, 5);
  return made;
}

/** 10 points at 168-byte messages: a 248-byte payload in 2 chunks. */
export function smallFrame(seq: number): TestFrame {
  const made = makeFrame(randomPoints(prng(seq), 10), seq, MIN_MESSAGE_BYTES);
  assert.equal(made.chunks.length, 2);
  return made;
}

export const DEFAULT_META: Omit<FrameMeta, 'seq'> = {
  payloadBytes: 128,
  pointCount: 0,
  crc32: 0,
  captureTime: 0,
  chunkCount: 1,
  dtype: DType.FLOAT32,
  components: 3,
  encoding: Encoding.NPY,
};

export function startChunk(
  meta: Partial<FrameMeta> & { seq: number },
  data: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const out = new Uint8Array(START_HEADER_BYTES + data.length);
  writeStartHeader(out, { ...DEFAULT_META, ...meta });
  out.set(data, START_HEADER_BYTES);
  return out;
}

export function dataChunk(
  seq: number,
  index: number,
  data: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const out = new Uint8Array(DATA_HEADER_BYTES + data.length);
  writeDataHeader(out, seq, index);
  out.set(data, DATA_HEADER_BYTES);
  return out;
}

export function withU8(message: Uint8Array, offset: number, value: number): Uint8Array {
  const out = message.slice();
  out[offset] = value;
  return out;
}

export function withU16(message: Uint8Array, offset: number, value: number): Uint8Array {
  const out = message.slice();
  new DataView(out.buffer).setUint16(offset, value, true);
  return out;
}

export function withU32(message: Uint8Array, offset: number, value: number): Uint8Array {
  const out = message.slice();
  new DataView(out.buffer).setUint32(offset, value, true);
  return out;
}

export function withF64(message: Uint8Array, offset: number, value: number): Uint8Array {
  const out = message.slice();
  new DataView(out.buffer).setFloat64(offset, value, true);
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

export function describeResult(result: PushResult): string {
  return result.kind === 'rejected'
    ? `rejected ${result.error.code}: ${result.error.message}`
    : result.kind;
}

export type Eviction = NonNullable<PushResult['evicted']>;

/** Fails when `result` reports an evicted frame; the assert* helpers below expect none. */
export function assertNoEviction(result: PushResult, context: string): void {
  if (result.evicted !== undefined) {
    assert.fail(`${context} unexpected eviction: ${describeResult(result.evicted)}`);
  }
}

/**
 * Splits off the frame a push evicted: returns the push's own result (without `evicted`) and the
 * eviction, which must be there.
 */
export function splitEviction(result: PushResult, context = ''): [PushResult, Eviction] {
  const { evicted, ...own } = result;
  if (evicted === undefined) assert.fail(`${context} expected an eviction, got none`);
  return [own, evicted];
}

export function assertPending(result: PushResult, context = ''): void {
  assert.equal(
    result.kind,
    'pending',
    `${context} expected pending, got ${describeResult(result)}`,
  );
  assertNoEviction(result, context);
}

export function assertFrame(result: PushResult, context = ''): AssembledFrame {
  if (result.kind !== 'frame')
    assert.fail(`${context} expected a frame, got ${describeResult(result)}`);
  assertNoEviction(result, context);
  return result.frame;
}

export function assertRejected(
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
export function deliver(r: FrameReassembler, made: TestFrame): AssembledFrame {
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
export function rejectsOnceThenRecovers(
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

export function countingAllocator(): { sizes: number[]; allocate: (bytes: number) => Uint8Array } {
  const sizes: number[] = [];
  return {
    sizes,
    allocate: (bytes) => {
      sizes.push(bytes);
      return new Uint8Array(bytes);
    },
  };
}
