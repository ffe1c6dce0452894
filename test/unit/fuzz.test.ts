/**
 * Property-based fuzzing of the pure wire format (src/wire) with fast-check: the reassembler on
 * arbitrary bytes, hostile headers, corrupted and truncated valid streams, chunking round trips,
 * the plain form, the .npy header parser and control messages.
 *
 * Every property runs with a fixed seed, printed in its name, so that CI is deterministic. To
 * explore other inputs locally (not in CI):
 *
 *   PS_FUZZ_SEED=123 PS_FUZZ_RUNS=5 node --import tsx --test test/unit/fuzz.test.ts
 *
 * PS_FUZZ_SEED is added to each property's own seed; PS_FUZZ_RUNS multiplies the run counts. A
 * failure prints fast-check's seed, path and shrunk counterexample; replay it by passing
 * `{ seed, path }` to that property's `fc.assert`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 as zlibCrc32 } from 'node:zlib';

import fc from 'fast-check';

import { ErrorCodes, PointstreamError, isErrorCode } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import {
  ChunkType,
  DATA_HEADER_BYTES,
  FrameReassembler,
  HOST_IS_LITTLE_ENDIAN,
  MAX_CONTROL_MESSAGE_CHARS,
  MIN_MESSAGE_BYTES,
  NPY_MAGIC,
  START_HEADER_BYTES,
  WIRE_VERSION,
  chunkCountFor,
  crc32Portable,
  decodePlainFrame,
  decodeServerMessage,
  encodeNpyHeader,
  encodeServerMessage,
  hasNpyMagic,
  isStreamName,
  parseNpyHeader,
  pointCountOfNpyHeader,
  prepareFrame,
  readChunkHeader,
  writeChunk,
  writeDataHeader,
  writeStartHeader,
} from '../../src/wire/index.js';
import { FIELD_TYPES, FIELD_TYPE_NAMES, payloadBytesOf, rawFields } from '../../src/wire/fields.js';
import type { FieldArray, FieldTypeName, PointFields } from '../../src/wire/fields.js';
import type {
  AssembledFrame,
  Checksum,
  ChunkHeader,
  PushResult,
  ReassemblyLimits,
  ServerMessage,
} from '../../src/wire/index.js';

// ---------------------------------------------------------------------------------------------
// Seeds, run counts, shared helpers

const SEED_OFFSET = Number(process.env.PS_FUZZ_SEED ?? '0');
const RUN_FACTOR = Number(process.env.PS_FUZZ_RUNS ?? '1');

interface Settings {
  readonly seed: number;
  readonly numRuns: number;
}

function settings(seed: number, numRuns: number): Settings {
  return {
    seed: (seed + SEED_OFFSET) | 0,
    numRuns: Math.max(1, Math.round(numRuns * RUN_FACTOR)),
  };
}

function label(name: string, s: Settings): string {
  return `${name} [seed ${s.seed}, ${s.numRuns} runs]`;
}

const U32_MAX = 0xffff_ffff;
const zlibChecksum: Checksum = (data, initial) => zlibCrc32(data, initial);

type Rejection = Extract<PushResult, { kind: 'rejected' }>;

const isU32 = (value: unknown): value is number =>
  Number.isInteger(value) && (value as number) >= 0 && (value as number) <= U32_MAX;

function bytesOf(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

function sameBits(actual: Float32Array, expected: Float32Array): boolean {
  return actual.length === expected.length && bytesOf(actual).equals(bytesOf(expected));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function describeResult(result: PushResult): string {
  return result.kind === 'rejected'
    ? `rejected ${result.error.code}: ${result.error.message}`
    : result.kind;
}

/** Codes the chunk header reader raises; the reassembler reports them as fatal. */
const FATAL_CODES: ReadonlySet<ErrorCode> = new Set([
  ErrorCodes.CHUNK_TRUNCATED,
  ErrorCodes.CHUNK_BAD_VERSION,
  ErrorCodes.CHUNK_BAD_TYPE,
  ErrorCodes.CHUNK_BAD_HEADER,
]);

/** Codes that reject one frame; NPY_TRUNCATED of a short first chunk becomes LENGTH_MISMATCH. */
const FRAME_CODES: ReadonlySet<ErrorCode> = new Set([
  ErrorCodes.CHUNK_OUT_OF_ORDER,
  ErrorCodes.CHUNK_UNKNOWN_FRAME,
  ErrorCodes.CHUNK_OVERFLOW,
  ErrorCodes.FRAME_DUPLICATE,
  ErrorCodes.FRAME_TOO_LARGE,
  ErrorCodes.FRAME_TOO_MANY_POINTS,
  ErrorCodes.FRAME_TOO_MANY_CHUNKS,
  ErrorCodes.FRAME_UNSUPPORTED_FORMAT,
  ErrorCodes.FRAME_LENGTH_MISMATCH,
  ErrorCodes.FRAME_CHECKSUM,
  ErrorCodes.FRAME_NON_FINITE,
  ErrorCodes.FRAME_INCOMPLETE,
  ErrorCodes.NPY_BAD_MAGIC,
  ErrorCodes.NPY_BAD_VERSION,
  ErrorCodes.NPY_BAD_HEADER,
  ErrorCodes.NPY_UNSUPPORTED_DTYPE,
  ErrorCodes.NPY_BAD_SHAPE,
  ErrorCodes.NPY_FORTRAN_ORDER,
]);

/** What a frame may be rejected with once START chunks carry field tables too. */
const FRAME_OR_FIELD_CODES: ReadonlySet<ErrorCode> = new Set([
  ...FRAME_CODES,
  ErrorCodes.FIELDS_INVALID,
]);

const NPY_CODES: ReadonlySet<ErrorCode> = new Set(
  Object.values(ErrorCodes).filter((code) => code.startsWith('PS_ERR_NPY_')),
);

/** What decodePlainFrame may throw. */
const PLAIN_CODES: ReadonlySet<ErrorCode> = new Set([
  ...NPY_CODES,
  ErrorCodes.PLAIN_BAD_LENGTH,
  ErrorCodes.FRAME_TOO_LARGE,
  ErrorCodes.FRAME_TOO_MANY_POINTS,
  ErrorCodes.FRAME_NON_FINITE,
  ErrorCodes.FRAME_LENGTH_MISMATCH,
]);

/** Asserts `error` is a PointstreamError with a stable code from `allowed`. */
function assertStable(error: unknown, allowed: ReadonlySet<ErrorCode>, context: string): void {
  if (!(error instanceof PointstreamError)) {
    assert.fail(`${context}: threw a non-PointstreamError: ${String(error)}`);
  }
  assert.ok(isErrorCode(error.code), `${context}: unstable code ${String(error.code)}`);
  assert.ok(allowed.has(error.code), `${context}: unexpected code ${error.code}: ${error.message}`);
  assert.equal(typeof error.message, 'string');
  // Survives logs and receipts.
  assert.equal((JSON.parse(JSON.stringify(error)) as { code: unknown }).code, error.code);
}

/** Chunks of a prepared frame, each copied out of the scratch buffer. */
function chunksOf(points: Float32Array, seq: number, maxMessageBytes: number): Uint8Array[] {
  const frame = prepareFrame(points, seq, 1_732_579_200_123.25, maxMessageBytes, zlibChecksum);
  const scratch = new Uint8Array(maxMessageBytes);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < frame.chunkCount; i++) chunks.push(writeChunk(frame, i, scratch).slice());
  return chunks;
}

function npyFileOf(points: Float32Array): Uint8Array {
  return concat(encodeNpyHeader([points.length / 3, 3]), bytesOf(points));
}

/** Finite float32 x, y, z: 0 to `maxPoints` points (with -0, subnormals and extremes). */
function finitePoints(maxPoints: number): fc.Arbitrary<Float32Array> {
  return fc.integer({ min: 0, max: maxPoints }).chain((n) =>
    fc.float32Array({
      minLength: 3 * n,
      maxLength: 3 * n,
      noNaN: true,
      noDefaultInfinity: true,
    }),
  );
}

const u32 = fc.integer({ min: 0, max: U32_MAX });
const byte = fc.integer({ min: 0, max: 255 });

/** Mostly `usual`, sometimes any byte. */
const mostly = (usual: number): fc.Arbitrary<number> =>
  fc.oneof({ weight: 6, arbitrary: fc.constant(usual) }, { weight: 1, arbitrary: byte });

/** Byte arrays up to `max` long, from empty to full length (fast-check's default sizes stay tiny). */
const bytesUpTo = (max: number): fc.Arbitrary<Uint8Array> =>
  fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: max, size: 'max' }));

// ---------------------------------------------------------------------------------------------
// The reassembler under a model: every push is checked against an independent account of which
// frames are open and how many bytes they hold.

const SMALL_LIMITS: ReassemblyLimits = {
  maxFrameBytes: 4096,
  maxPointsPerFrame: 300,
  maxChunksPerFrame: 64,
  maxFramesInReassembly: 2,
  allowNonFinite: false,
};

class Harness {
  readonly reassembler: FrameReassembler;
  readonly limits: ReassemblyLimits;
  /** Model: open frames (seq -> payload bytes), in the order they were opened. */
  readonly open = new Map<number, number>();
  readonly frames: AssembledFrame[] = [];
  readonly rejections: Rejection[] = [];
  /** Largest allocation asked for, and the most bytes held at the moment of any allocation. */
  maxRequest = 0;
  maxOutstanding = 0;
  allocations = 0;
  /** Highest seq of a START whose header parsed. */
  maxStartedSeq = -1;
  messages = 0;
  #requests: number[] = [];

  constructor(limits: ReassemblyLimits = SMALL_LIMITS, checksum: Checksum = zlibChecksum) {
    this.limits = limits;
    this.reassembler = new FrameReassembler({
      limits,
      checksum,
      now: () => 0,
      allocate: (bytes) => {
        this.#requests.push(bytes);
        this.maxRequest = Math.max(this.maxRequest, bytes);
        // What is held when this buffer is added to it.
        const outstanding = this.reassembler.bytesBuffered + bytes;
        this.maxOutstanding = Math.max(this.maxOutstanding, outstanding);
        assert.ok(bytes <= limits.maxFrameBytes, `allocation of ${bytes} bytes over maxFrameBytes`);
        assert.ok(
          outstanding <= limits.maxFramesInReassembly * limits.maxFrameBytes,
          `allocation would hold ${outstanding} bytes`,
        );
        return new Uint8Array(bytes);
      },
    });
  }

  get cap(): number {
    return this.limits.maxFramesInReassembly * this.limits.maxFrameBytes;
  }

  push(message: Uint8Array): PushResult {
    this.messages++;
    let header: ChunkHeader | undefined;
    let headerError: PointstreamError | undefined;
    try {
      header = readChunkHeader(message);
    } catch (error) {
      assertStable(error, FATAL_CODES, 'readChunkHeader');
      headerError = error as PointstreamError;
    }
    if (header?.meta !== undefined) this.maxStartedSeq = Math.max(this.maxStartedSeq, header.seq);

    this.#requests = [];
    const result = this.reassembler.push(message); // must never throw
    const requests = this.#requests;

    this.#checkRejection(result.kind === 'rejected' ? result : undefined, headerError);
    if (result.evicted !== undefined) {
      const evicted = result.evicted;
      this.#checkRejection(evicted, undefined);
      assert.equal(evicted.error.code, ErrorCodes.FRAME_INCOMPLETE);
      assert.ok(
        evicted.seq !== undefined && this.open.has(evicted.seq),
        'evicted a frame not open',
      );
      this.open.delete(evicted.seq);
    }

    // At most one allocation, by a START, of exactly its payload and within every cap.
    assert.ok(requests.length <= 1, `${requests.length} allocations for one message`);
    if (requests.length === 1) {
      const meta = header?.meta;
      assert.ok(meta !== undefined, 'allocation for a message that is not a valid START');
      assert.equal(requests[0], meta.payloadBytes);
      assert.ok(meta.pointCount <= this.limits.maxPointsPerFrame);
      assert.ok(meta.chunkCount <= this.limits.maxChunksPerFrame);
      assert.ok(!this.open.has(meta.seq), `frame ${meta.seq} allocated twice`);
      this.allocations++;
      this.open.set(meta.seq, meta.payloadBytes);
    }

    if (result.kind === 'frame') {
      this.#checkFrame(result.frame);
      this.frames.push(result.frame);
      this.open.delete(result.frame.seq);
    } else if (result.kind === 'rejected') {
      this.rejections.push(result);
      // A frame-level rejection naming an open frame always ends it.
      if (!result.fatal && result.seq !== undefined) this.open.delete(result.seq);
    }
    if (result.evicted !== undefined) this.rejections.push(result.evicted);

    let held = 0;
    for (const bytes of this.open.values()) held += bytes;
    assert.equal(this.reassembler.bytesBuffered, held, 'bytesBuffered disagrees with the model');
    assert.ok(this.reassembler.bytesBuffered <= this.cap, 'bytesBuffered over the cap');
    assert.equal(this.reassembler.framesInReassembly, this.open.size);
    assert.ok(this.open.size <= this.limits.maxFramesInReassembly);
    return result;
  }

  /** reset() loses exactly the open frames and frees everything. */
  reset(): number[] {
    const lost = this.reassembler.reset();
    assert.deepEqual(
      [...lost].sort((a, b) => a - b),
      [...this.open.keys()].sort((a, b) => a - b),
    );
    this.open.clear();
    assert.equal(this.reassembler.bytesBuffered, 0);
    assert.equal(this.reassembler.framesInReassembly, 0);
    return lost;
  }

  #checkRejection(rejection: Rejection | undefined, headerError: PointstreamError | undefined) {
    if (headerError !== undefined) {
      // An unreadable header is fatal, with the reader's own code.
      assert.ok(rejection !== undefined, 'an unreadable header was not rejected');
      assert.equal(rejection.error.code, headerError.code);
    }
    if (rejection === undefined) return;
    assert.ok(rejection.error instanceof PointstreamError);
    assert.ok(isErrorCode(rejection.error.code));
    assert.equal(rejection.fatal, FATAL_CODES.has(rejection.error.code), rejection.error.message);
    assert.equal(rejection.fatal, headerError !== undefined, 'fatal only for unreadable headers');
    if (rejection.fatal) {
      assert.ok(rejection.seq === undefined || isU32(rejection.seq), `seq ${rejection.seq}`);
    } else {
      assertStable(rejection.error, FRAME_OR_FIELD_CODES, 'frame rejection');
      assert.ok(isU32(rejection.seq), `frame rejection without a u32 seq: ${rejection.seq}`);
    }
    if (rejection.seq !== undefined) assert.equal(rejection.error.details?.seq, rejection.seq);
  }

  /** Whatever produced it, a frame that comes out is internally consistent and verified. */
  #checkFrame(frame: AssembledFrame): void {
    assert.ok(this.open.has(frame.seq), `frame ${frame.seq} was not open`);
    assert.equal(frame.payload.length, this.open.get(frame.seq));
    assert.equal(zlibCrc32(frame.payload), frame.crc32, 'frame with a wrong checksum');
    assert.ok(frame.pointCount <= this.limits.maxPointsPerFrame);
    assert.ok(Number.isFinite(frame.captureTime));
    const header = parseNpyHeader(frame.payload);
    assert.equal(pointCountOfNpyHeader(header), frame.pointCount);
    const pointsBytes = frame.fieldTable?.pointsBytes ?? frame.payload.length;
    assert.equal(header.dataOffset + frame.pointCount * 12, pointsBytes);
    assert.equal(
      payloadBytesOf(frame.fieldTable ?? { pointsBytes, columns: [] }),
      frame.payload.length,
    );
    assert.deepEqual(Object.keys(frame.fields), frame.fieldTable?.columns.map((c) => c.name) ?? []);
    for (const values of Object.values(frame.fields)) {
      assert.equal(values.length, frame.pointCount, 'a field of another length');
      assert.ok(values.buffer === frame.payload.buffer, 'a raw field that is not a view');
    }
    assert.equal(frame.points.length, frame.pointCount * 3);
    assert.ok(
      Buffer.from(frame.payload.subarray(header.dataOffset, pointsBytes)).equals(
        bytesOf(frame.points),
      ),
      'points are not the payload after the .npy header',
    );
    if (!this.limits.allowNonFinite) assert.ok(frame.points.every((v) => Number.isFinite(v)));
  }
}

// ---------------------------------------------------------------------------------------------
// First, while float32View is still cold (unoptimised): the bug below only shows before V8
// optimises its conversion loop, so this property must run before anything else decodes points.

const P5C = settings(0x1f2e_3d25, 100);

void describe('fuzz: decodePlainFrame keeps NaN bits', () => {
  void it(
    label('allowNonFinite: the points are the message bits, NaN payloads included', P5C),
    {
      timeout: 60_000,
    },
    () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.oneof(
              u32,
              fc.integer({ min: 0x7f80_0001, max: 0x7fbf_ffff }), // signalling NaN
              fc.integer({ min: 0xff80_0001, max: 0xffbf_ffff }),
            ),
            { minLength: 3, maxLength: 150 },
          ),
          fc.boolean(),
          fc.integer({ min: 0, max: 3 }),
          (words, npy, offset) => {
            const n = Math.floor(words.length / 3);
            const body = new Uint8Array(12 * n);
            const view = new DataView(body.buffer);
            for (let i = 0; i < 3 * n; i++) view.setUint32(4 * i, words[i] as number, true);
            fc.pre(!hasNpyMagic(body));
            const message = npy ? concat(encodeNpyHeader([n, 3]), body) : body;
            const outcome = checkPlain(
              { message: atOffset(message, offset), allowNonFinite: true },
              true,
            );
            assert.equal(outcome, 'ok');
          },
        ),
        P5C,
      );
    },
  );
});

// ---------------------------------------------------------------------------------------------
// 1. Arbitrary bytes

const P1 = settings(0x1f2e_3d01, 1000);

/** Random bytes whose first fields pass the first header checks, so that deeper ones are hit. */
const headerish = fc
  .record({
    type: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom<number>(ChunkType.START, ChunkType.DATA) },
      { weight: 1, arbitrary: byte },
    ),
    seq: fc.option(fc.integer({ min: 0, max: 4 })),
    bytes: bytesUpTo(2048),
  })
  .map(({ type, seq, bytes }) => {
    const m = bytes.slice();
    const view = new DataView(m.buffer);
    if (m.length > 0) m[0] = WIRE_VERSION;
    if (m.length > 1) m[1] = type;
    if (m.length > 3)
      view.setUint16(2, type === ChunkType.START ? START_HEADER_BYTES : DATA_HEADER_BYTES, true);
    if (m.length > 7 && seq !== null) view.setUint32(4, seq, true);
    if (m.length > 11 && type === ChunkType.START) view.setUint32(8, 0, true);
    if (m.length > 27 && type === ChunkType.START) m[27] = 0;
    return m;
  });

const P2 = settings(0x1f2e_3d02, 1000);
const P3 = settings(0x1f2e_3d03, 1000);
const P4 = settings(0x1f2e_3d04, 500);
const P4B = settings(0x1f2e_3d14, 300);

// 2. Hostile but structurally valid headers.

interface StartFields {
  seq: number;
  chunkIndex: number;
  payloadBytes: number;
  pointCount: number;
  crc32: number;
  dtype: number;
  components: number;
  encoding: number;
  flags: number;
  captureTime: number;
  chunkCount: number;
}

/** A START header written field by field, so that any value (chunkCount 0, NaN) can be sent. */
function rawStart(f: StartFields, data: Uint8Array): Uint8Array {
  const m = new Uint8Array(START_HEADER_BYTES + data.length);
  const v = new DataView(m.buffer);
  v.setUint8(0, WIRE_VERSION);
  v.setUint8(1, ChunkType.START);
  v.setUint16(2, START_HEADER_BYTES, true);
  v.setUint32(4, f.seq, true);
  v.setUint32(8, f.chunkIndex, true);
  v.setUint32(12, f.payloadBytes, true);
  v.setUint32(16, f.pointCount, true);
  v.setUint32(20, f.crc32, true);
  v.setUint8(24, f.dtype);
  v.setUint8(25, f.components);
  v.setUint8(26, f.encoding);
  v.setUint8(27, f.flags);
  v.setFloat64(28, f.captureTime, true);
  v.setUint32(36, f.chunkCount, true);
  m.set(data, START_HEADER_BYTES);
  if (f.chunkIndex === 0 && f.flags === 0 && f.chunkCount >= 1) {
    // The library's writer produces the same bytes.
    const check = new Uint8Array(START_HEADER_BYTES);
    writeStartHeader(check, f);
    assert.ok(Buffer.from(check).equals(Buffer.from(m.subarray(0, START_HEADER_BYTES))));
  }
  return m;
}

function rawData(seq: number, chunkIndex: number, data: Uint8Array): Uint8Array {
  const m = new Uint8Array(DATA_HEADER_BYTES + data.length);
  const v = new DataView(m.buffer);
  v.setUint8(0, WIRE_VERSION);
  v.setUint8(1, ChunkType.DATA);
  v.setUint16(2, DATA_HEADER_BYTES, true);
  v.setUint32(4, seq, true);
  v.setUint32(8, chunkIndex, true);
  m.set(data, DATA_HEADER_BYTES);
  if (chunkIndex > 0) {
    const check = new Uint8Array(DATA_HEADER_BYTES);
    writeDataHeader(check, seq, chunkIndex);
    assert.ok(Buffer.from(check).equals(Buffer.from(m.subarray(0, DATA_HEADER_BYTES))));
  }
  return m;
}

const smallOrAny = (max: number): fc.Arbitrary<number> =>
  fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max }) }, { weight: 1, arbitrary: u32 });

/**
 * A group of messages built for a sequence number that is chosen when the stream is put together:
 * the next one, the current one again, an older one, or a fixed (possibly huge) one.
 */
interface Group {
  readonly seq: 'next' | 'same' | 'older' | number;
  readonly make: (seq: number) => Uint8Array[];
}

const seqPolicy: fc.Arbitrary<Group['seq']> = fc.oneof(
  { weight: 6, arbitrary: fc.constant('next' as const) },
  { weight: 4, arbitrary: fc.constant('same' as const) },
  { weight: 1, arbitrary: fc.constant('older' as const) },
  { weight: 1, arbitrary: smallOrAny(6) },
);

/** Lays groups out as one stream, giving each its sequence number. */
function layOut(groups: readonly Group[]): Uint8Array[] {
  let current = 0;
  return groups.flatMap((group) => {
    let seq: number;
    if (group.seq === 'next') seq = Math.min(U32_MAX, ++current);
    else if (group.seq === 'same') seq = current;
    else if (group.seq === 'older') seq = Math.max(0, current - 1);
    else seq = group.seq;
    return group.make(seq);
  });
}

const hostileStart: fc.Arbitrary<Group> = fc
  .record({
    seq: seqPolicy,
    consistent: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, fc.constant(false)),
    points: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 330 }) }, u32),
    payloadDelta: fc.oneof(
      { weight: 4, arbitrary: fc.constant(0) },
      { weight: 1, arbitrary: fc.integer({ min: -16, max: 16 }) },
    ),
    payloadBytes: fc.oneof(
      fc.integer({ min: 0, max: 5000 }),
      u32,
      fc.constantFrom(4095, 4096, 4097, U32_MAX),
    ),
    pointCount: smallOrAny(400),
    npyShape: fc.option(fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 3 })),
    npyDescr: fc.constantFrom('<f4', '<f4', '<f8', '>f4', '|u1'),
    crc: fc.oneof(fc.constant('auto' as const), u32),
    dtype: mostly(1),
    components: mostly(3),
    encoding: mostly(1),
    flags: mostly(0),
    chunkIndex: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: u32 }),
    captureTime: fc.oneof(
      fc.double(),
      fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, Number.MAX_VALUE, Number.MIN_VALUE),
    ),
    chunkCount: fc.oneof(
      { weight: 2, arbitrary: fc.constant(1) },
      { weight: 2, arbitrary: fc.integer({ min: 0, max: 70 }) },
      { weight: 1, arbitrary: u32 },
    ),
    npyTweak: fc.oneof(
      { weight: 4, arbitrary: fc.constant(null) },
      { weight: 1, arbitrary: fc.constant('fortran' as const) },
      {
        weight: 2,
        arbitrary: fc.tuple(
          fc.oneof(fc.nat({ max: 9 }), fc.nat({ max: 127 })),
          fc.integer({ min: 1, max: 255 }),
        ),
      },
    ),
    // The whole body in this one chunk (with 'auto' CRC and chunkCount 1: a complete frame).
    fullBody: fc.boolean(),
    // A NaN at float k of a full body.
    poison: fc.option(fc.nat()),
    bodyLength: fc.nat(),
    body: bytesUpTo(1500),
  })
  .map((g): Group => {
    let data: Uint8Array;
    let payloadBytes = g.payloadBytes;
    let pointCount = g.pointCount;
    if (g.consistent && g.points <= 330) {
      // A .npy header that agrees with pointCount and payloadBytes, then part of the body.
      const npy = encodeNpyHeader([g.points, 3]).slice();
      if (g.npyTweak === 'fortran') npy.set(Buffer.from("'fortran_order': True , "), 27);
      else if (g.npyTweak !== null) {
        const [at, mask] = g.npyTweak;
        npy[at % npy.length] = (npy[at % npy.length] as number) ^ mask;
      }
      pointCount = g.points;
      payloadBytes = Math.max(0, npy.length + 12 * g.points + g.payloadDelta);
      const room = Math.max(0, payloadBytes - npy.length);
      let body = g.body;
      if (g.fullBody) {
        body = new Uint8Array(room);
        for (let i = 0; i < room; i += g.body.length || room)
          body.set(g.body.subarray(0, room - i), i);
        if (g.poison !== null && room >= 4) {
          const at = 4 * (g.poison % (room >> 2));
          body.fill(0xff, at, at + 4);
        }
      }
      data = concat(
        npy,
        body.subarray(0, g.fullBody ? room : Math.min(room, g.bodyLength % (body.length + 1))),
      );
    } else {
      const npy = g.npyShape === null ? new Uint8Array(0) : encodeNpyHeader(g.npyShape, g.npyDescr);
      data = concat(npy, g.body.subarray(0, g.bodyLength % (g.body.length + 1)));
    }
    const fields = {
      chunkIndex: g.chunkIndex,
      payloadBytes,
      pointCount,
      crc32: g.crc === 'auto' ? zlibCrc32(data) : g.crc,
      dtype: g.dtype,
      components: g.components,
      encoding: g.encoding,
      flags: g.flags,
      captureTime: g.captureTime,
      chunkCount: g.chunkCount,
    };
    return { seq: g.seq, make: (seq) => [rawStart({ ...fields, seq }, data)] };
  });

const hostileData: fc.Arbitrary<Group> = fc
  .record({
    seq: seqPolicy,
    chunkIndex: fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 1, max: 8 }) },
      { weight: 1, arbitrary: fc.constant(0) },
      { weight: 1, arbitrary: u32 },
    ),
    body: bytesUpTo(1500),
  })
  .map(({ seq, chunkIndex, body }) => ({ seq, make: (n) => [rawData(n, chunkIndex, body)] }));

/** The chunks of a valid frame, or only its first ones, to be mixed with hostile messages. */
const validFrame: fc.Arbitrary<Group> = fc
  .record({
    seq: seqPolicy,
    points: finitePoints(300),
    size: fc.integer({ min: MIN_MESSAGE_BYTES, max: 1000 }),
    keep: fc.oneof(fc.constant(Infinity), fc.integer({ min: 1, max: 4 })),
  })
  .map(({ seq, points, size, keep }) => ({
    seq,
    make: (n) => chunksOf(points, n, size).slice(0, keep),
  }));

const anyGroup: fc.Arbitrary<Group> = fc.oneof(
  { weight: 3, arbitrary: hostileStart },
  { weight: 3, arbitrary: hostileData },
  { weight: 1, arbitrary: headerish.map((m): Group => ({ seq: 0, make: () => [m] })) },
  { weight: 1, arbitrary: bytesUpTo(64).map((m): Group => ({ seq: 0, make: () => [m] })) },
  { weight: 2, arbitrary: validFrame },
);

// ---------------------------------------------------------------------------------------------
// 3. Mutations of valid streams

type Mutation =
  | { kind: 'none' }
  | { kind: 'truncate'; chunk: number; length: number }
  | { kind: 'flip'; chunk: number; at: number; mask: number }
  | { kind: 'forge'; chunk: number; seed: number }
  | { kind: 'drop'; chunk: number }
  | { kind: 'duplicate'; chunk: number; to: number }
  | { kind: 'swap'; chunk: number; other: number }
  | { kind: 'garbage'; to: number; bytes: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), chunk: fc.nat(), length: fc.nat() }),
  fc.record({
    kind: fc.constant('flip' as const),
    chunk: fc.oneof(fc.constant(0), fc.nat()),
    // Biased to the headers: 40 bytes of chunk header, then the .npy header in START.
    at: fc.oneof(fc.nat({ max: 200 }), fc.nat()),
    mask: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({ kind: fc.constant('forge' as const), chunk: fc.nat(), seed: fc.nat() }),
  fc.record({ kind: fc.constant('drop' as const), chunk: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), chunk: fc.nat(), to: fc.nat() }),
  fc.record({ kind: fc.constant('swap' as const), chunk: fc.nat(), other: fc.nat() }),
  fc.record({ kind: fc.constant('garbage' as const), to: fc.nat(), bytes: bytesUpTo(300) }),
);

/** Applies `m` to a copy of `chunks`. */
function mutate(chunks: readonly Uint8Array[], m: Mutation): Uint8Array[] {
  const out: Uint8Array[] = chunks.map((c) => c.slice());
  const n = out.length;
  switch (m.kind) {
    case 'none':
      break;
    case 'truncate': {
      const i = m.chunk % n;
      const chunk = out[i] as Uint8Array;
      out[i] = chunk.subarray(0, m.length % chunk.length); // strictly shorter
      break;
    }
    case 'flip': {
      const chunk = out[m.chunk % n] as Uint8Array;
      const at = m.at % chunk.length;
      chunk[at] = (chunk[at] as number) ^ m.mask;
      break;
    }
    case 'forge': {
      // Header intact, payload slice replaced by other bytes: only the CRC can catch it.
      const i = m.chunk % n;
      const chunk = out[i] as Uint8Array;
      const from = i === 0 ? START_HEADER_BYTES : DATA_HEADER_BYTES;
      let x = m.seed | 1;
      for (let k = from; k < chunk.length; k++) {
        x = (Math.imul(x, 1_103_515_245) + 12_345) | 0;
        chunk[k] = x >>> 24;
      }
      break;
    }
    case 'drop':
      out.splice(m.chunk % n, 1);
      break;
    case 'duplicate':
      out.splice(m.to % (n + 1), 0, (out[m.chunk % n] as Uint8Array).slice());
      break;
    case 'swap': {
      const i = m.chunk % n;
      const j = m.other % n;
      [out[i], out[j]] = [out[j] as Uint8Array, out[i] as Uint8Array];
      break;
    }
    case 'garbage':
      out.splice(m.to % (n + 1), 0, m.bytes);
      break;
  }
  return out;
}

const P3_LIMITS: ReassemblyLimits = {
  maxFrameBytes: 8192,
  maxPointsPerFrame: 500,
  maxChunksPerFrame: 64,
  maxFramesInReassembly: 2,
  allowNonFinite: false,
};

const messageSize = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: MIN_MESSAGE_BYTES, max: 2000 }) },
  { weight: 1, arbitrary: fc.constantFrom(MIN_MESSAGE_BYTES, MIN_MESSAGE_BYTES + 1, 65_536) },
);

/** Pushes every chunk of a valid frame; it must come out bit for bit on the last one. */
function assertRoundTrip(
  harness: Harness,
  points: Float32Array,
  seq: number,
  maxMessageBytes: number,
): AssembledFrame {
  const chunks = chunksOf(points, seq, maxMessageBytes);
  let last: PushResult | undefined;
  chunks.forEach((chunk, i) => {
    last = harness.push(chunk);
    assert.equal(last.evicted, undefined, `chunk ${i}: unexpected eviction`);
    if (i < chunks.length - 1) assert.equal(last.kind, 'pending', describeResult(last));
  });
  assert.ok(last !== undefined);
  if (last.kind !== 'frame') assert.fail(`expected frame ${seq}, got ${describeResult(last)}`);
  assert.equal(last.frame.seq, seq);
  assert.ok(sameBits(last.frame.points, points), 'points differ');
  assert.ok(Buffer.from(last.frame.payload).equals(Buffer.from(npyFileOf(points))));
  return last.frame;
}

void describe('fuzz: FrameReassembler', () => {
  void it(
    label('arbitrary byte messages never throw, and every rejection is stable', P1),
    { timeout: 60_000 },
    () => {
      fc.assert(
        fc.property(
          fc.array(fc.oneof(bytesUpTo(2048), headerish), { maxLength: 16, size: 'max' }),
          (messages) => {
            const harness = new Harness();
            for (const message of messages) harness.push(message);
            harness.reset();
          },
        ),
        P1,
      );
    },
  );

  void it(
    label('hostile headers: no throw, stable codes, never an allocation beyond the caps', P2),
    { timeout: 60_000 },
    () => {
      let allocations = 0;
      let maxRequest = 0;
      let maxOutstanding = 0;
      let frames = 0;
      const codes = new Set<ErrorCode>();
      fc.assert(
        fc.property(fc.array(anyGroup, { maxLength: 20, size: 'max' }).map(layOut), (messages) => {
          const harness = new Harness();
          for (const message of messages) harness.push(message);
          assert.ok(harness.maxRequest <= SMALL_LIMITS.maxFrameBytes);
          assert.ok(harness.maxOutstanding <= harness.cap);
          allocations += harness.allocations;
          maxRequest = Math.max(maxRequest, harness.maxRequest);
          maxOutstanding = Math.max(maxOutstanding, harness.maxOutstanding);
          frames += harness.frames.length;
          for (const rejection of harness.rejections) codes.add(rejection.error.code);
          harness.reset();
        }),
        P2,
      );
      // The generators reach the allocating paths and every frame-level check, not only the
      // early rejections.
      assert.ok(allocations > 0, 'coverage: no allocation');
      assert.ok(maxOutstanding > SMALL_LIMITS.maxFrameBytes, `coverage: held ${maxOutstanding}`);
      assert.ok(frames > 0, 'coverage: some hostile frames completed');
      const missed = [...FRAME_CODES, ...FATAL_CODES].filter((code) => !codes.has(code));
      assert.deepEqual(missed, [], 'coverage: codes never produced');
    },
  );

  void it(
    label('corrupted valid streams: the exact frame or a stable rejection, never other data', P3),
    { timeout: 60_000 },
    () => {
      fc.assert(
        fc.property(
          finitePoints(500),
          fc.integer({ min: 0, max: 1000 }),
          messageSize,
          fc.oneof(
            { weight: 1, arbitrary: fc.constant<Mutation>({ kind: 'none' }) },
            {
              weight: 12,
              arbitrary: mutation,
            },
          ),
          (points, seq, maxMessageBytes, m) => {
            const original = npyFileOf(points);
            const stream = mutate(chunksOf(points, seq, maxMessageBytes), m);
            const harness = new Harness(P3_LIMITS);
            for (const message of stream) harness.push(message);
            for (const frame of harness.frames) {
              assert.ok(sameBits(frame.points, points), 'a frame with different points');
              assert.ok(Buffer.from(frame.payload).equals(Buffer.from(original)));
            }
            const lost = harness.reset();
            // Never silent: what was sent comes out, is rejected, or is reported lost.
            assert.ok(
              stream.length === 0 ||
                harness.frames.length > 0 ||
                harness.rejections.length > 0 ||
                lost.length > 0,
              `mutation ${m.kind} went unnoticed`,
            );
            if (m.kind === 'none') {
              assert.equal(harness.frames.length, 1);
              assert.equal(harness.rejections.length, 0);
            }
            // After reset() the channel works again.
            if (harness.maxStartedSeq < U32_MAX) {
              const next = Math.max(seq, harness.maxStartedSeq) + 1;
              assertRoundTrip(harness, points, next, maxMessageBytes);
            }
          },
        ),
        P3,
      );
    },
  );

  void it(
    label('round trip: chunk + reassemble is exact, chunkCountFor, every message fits', P4),
    { timeout: 60_000 },
    () => {
      fc.assert(
        fc.property(
          finitePoints(500),
          u32,
          messageSize,
          fc.double({ noNaN: true, noDefaultInfinity: true }),
          fc.constantFrom<[Checksum, Checksum]>(
            [zlibChecksum, zlibChecksum],
            [crc32Portable, zlibChecksum],
            [zlibChecksum, crc32Portable],
          ),
          (points, seq, maxMessageBytes, captureTime, [sendCrc, receiveCrc]) => {
            const frame = prepareFrame(points, seq, captureTime, maxMessageBytes, sendCrc);
            const file = npyFileOf(points);
            assert.equal(frame.payloadBytes, file.length);
            assert.equal(frame.crc32, zlibCrc32(file));
            assert.equal(frame.chunkCount, chunkCountFor(frame.payloadBytes, maxMessageBytes));
            const scratch = new Uint8Array(maxMessageBytes);
            const harness = new Harness(
              { ...P3_LIMITS, maxChunksPerFrame: 65_536, maxFrameBytes: 1 << 20 },
              receiveCrc,
            );
            const slices: Uint8Array[] = [];
            let last: PushResult | undefined;
            for (let i = 0; i < frame.chunkCount; i++) {
              const message = writeChunk(frame, i, scratch).slice();
              assert.ok(message.length <= maxMessageBytes, `chunk ${i}: ${message.length} bytes`);
              if (i < frame.chunkCount - 1) assert.equal(message.length, maxMessageBytes);
              const header = readChunkHeader(message);
              assert.equal(header.seq, seq);
              assert.equal(header.chunkIndex, i);
              slices.push(message.subarray(header.headerBytes));
              last = harness.push(message);
              if (i < frame.chunkCount - 1) assert.equal(last.kind, 'pending');
            }
            assert.ok(Buffer.from(concat(...slices)).equals(Buffer.from(file)));
            if (last?.kind !== 'frame') assert.fail(`no frame: ${last && describeResult(last)}`);
            const out = last.frame;
            assert.ok(sameBits(out.points, points));
            assert.equal(out.seq, seq);
            assert.ok(Object.is(out.captureTime, captureTime), 'captureTime bit for bit');
            assert.equal(out.pointCount, points.length / 3);
            assert.equal(out.crc32, frame.crc32);
            assert.equal(out.chunkCount, frame.chunkCount);
            assert.equal(harness.rejections.length, 0);
          },
        ),
        P4,
      );
    },
  );

  void it(
    label('round trip: up to maxFramesInReassembly frames interleaved chunk by chunk', P4B),
    { timeout: 60_000 },
    () => {
      fc.assert(
        fc.property(
          finitePoints(200),
          finitePoints(200),
          fc.integer({ min: 0, max: 1000 }),
          fc.integer({ min: 1, max: 1000 }),
          fc.integer({ min: MIN_MESSAGE_BYTES, max: 600 }),
          fc.array(fc.boolean(), { maxLength: 80, size: 'max' }),
          (a, b, seqA, gap, maxMessageBytes, schedule) => {
            const chunksA = chunksOf(a, seqA, maxMessageBytes);
            const chunksB = chunksOf(b, seqA + gap, maxMessageBytes);
            // A starts first (sequence numbers increase); then any interleaving.
            const order: Uint8Array[] = [chunksA.shift() as Uint8Array];
            let k = 0;
            while (chunksA.length > 0 || chunksB.length > 0) {
              const takeA = chunksB.length === 0 || (chunksA.length > 0 && schedule[k++] === true);
              order.push((takeA ? chunksA : chunksB).shift() as Uint8Array);
            }
            const harness = new Harness(P3_LIMITS);
            for (const message of order) harness.push(message);
            assert.equal(harness.rejections.length, 0, harness.rejections[0]?.error.message);
            assert.equal(harness.frames.length, 2);
            const [first, second] = [...harness.frames].sort((x, y) => x.seq - y.seq);
            assert.ok(first && sameBits(first.points, a));
            assert.ok(second && sameBits(second.points, b));
          },
        ),
        P4B,
      );
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Known bug: rejected frames' leftover entries are not bounded (see the report in the todo).

const PB = settings(0x1f2e_3d0b, 30);

void describe('fuzz: FrameReassembler bookkeeping', () => {
  void it(
    label('a rejected frame is forgotten after MAX_DISCARDING (16) newer rejections', PB),
    {
      timeout: 60_000,
    },
    () => {
      fc.assert(
        fc.property(
          fc.constantFrom('too-many-points', 'evicted', 'out-of-order'),
          fc.integer({ min: 40, max: 80 }),
          (reason, count) => {
            const r = new FrameReassembler({ limits: SMALL_LIMITS });
            const points = new Float32Array(3 * 20); // 368-byte payload, 3 chunks at 168 bytes
            for (let seq = 0; seq < count; seq++) {
              const chunks = chunksOf(points, seq, MIN_MESSAGE_BYTES);
              if (reason === 'too-many-points') {
                const start = chunks[0] as Uint8Array;
                new DataView(start.buffer).setUint32(16, 10_000, true);
                r.push(start);
              } else if (reason === 'evicted') {
                r.push(chunks[0] as Uint8Array); // never finished: evicted by later frames
              } else {
                r.push(chunks[0] as Uint8Array);
                r.push(chunks[2] as Uint8Array); // chunk 2 where 1 was due
              }
            }
            // Frame 0 was rejected long ago: its entry must have been pruned, so a late chunk
            // of it is reported rather than silently swallowed by a leftover entry.
            const late = r.push(chunksOf(points, 0, MIN_MESSAGE_BYTES)[1] as Uint8Array);
            assert.equal(late.kind, 'rejected', `${reason}: late chunk ${describeResult(late)}`);
          },
        ),
        PB,
      );
    },
  );
});

// ---------------------------------------------------------------------------------------------
// 5. The plain form

const P5 = settings(0x1f2e_3d05, 1500);
const P5B = settings(0x1f2e_3d15, 1500);

interface PlainCase {
  readonly message: Uint8Array;
  readonly allowNonFinite: boolean;
}

/** Places `message` at a random offset of a larger buffer, to exercise unaligned views. */
function atOffset(message: Uint8Array, offset: number): Uint8Array {
  const host = new Uint8Array(message.length + offset);
  host.set(message, offset);
  return host.subarray(offset);
}

const isNaNBits = (bits: number): boolean =>
  (bits & 0x7f80_0000) === 0x7f80_0000 && (bits & 0x7f_ffff) !== 0;

/**
 * Index of the first float of `values` whose bits differ from the little-endian floats in
 * `bytes`, or -1. Two NaNs count as equal unless `nanBits`.
 */
function firstBitDifference(values: Float32Array, bytes: Uint8Array, nanBits: boolean): number {
  assert.equal(values.byteLength, bytes.length);
  const got = new DataView(values.buffer, values.byteOffset, values.byteLength);
  const want = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < values.length; i++) {
    const a = got.getUint32(4 * i, HOST_IS_LITTLE_ENDIAN);
    const b = want.getUint32(4 * i, true);
    if (a !== b && (nanBits || !isNaNBits(a) || !isNaNBits(b))) return i;
  }
  return -1;
}

function checkPlain({ message, allowNonFinite }: PlainCase, nanBits = false): 'ok' | ErrorCode {
  const limits = { maxFrameBytes: 4096, maxPointsPerFrame: 300, allowNonFinite };
  const before = Buffer.from(message);
  let plain;
  try {
    plain = decodePlainFrame(message, 7, limits);
  } catch (error) {
    assertStable(error, PLAIN_CODES, 'decodePlainFrame');
    assert.equal((error as PointstreamError).details?.seq ?? 7, 7);
    return (error as PointstreamError).code;
  }
  assert.ok(before.equals(Buffer.from(message)), 'the message was modified');
  assert.ok(message.length <= limits.maxFrameBytes);
  assert.ok(plain.pointCount <= limits.maxPointsPerFrame);
  assert.equal(plain.points.length, plain.pointCount * 3);
  let offset: number;
  if (plain.format === 'npy') {
    assert.ok(hasNpyMagic(message));
    const header = parseNpyHeader(message);
    offset = header.dataOffset;
    assert.equal(pointCountOfNpyHeader(header), plain.pointCount);
    assert.equal(plain.pointCount * 12 + header.dataOffset, message.length);
  } else {
    assert.ok(!hasNpyMagic(message));
    offset = 0;
    assert.equal(message.length, plain.pointCount * 12);
  }
  const differs = firstBitDifference(plain.points, message.subarray(offset), nanBits);
  assert.equal(differs, -1, `float ${differs} is not the message's bits`);
  if (!allowNonFinite) assert.ok(plain.points.every((v) => Number.isFinite(v)));
  return 'ok';
}

void describe('fuzz: decodePlainFrame', () => {
  void it(
    label('arbitrary bytes: a stable error or a frame whose length adds up', P5),
    { timeout: 60_000 },
    () => {
      const outcomes = new Set<string>();
      fc.assert(
        fc.property(
          fc.oneof(
            bytesUpTo(2048),
            // Raw frames: whole points, finite or not.
            fc
              .integer({ min: 0, max: 340 })
              .chain((n) => fc.uint8Array({ minLength: 12 * n, maxLength: 12 * n })),
            finitePoints(340).map((p) => new Uint8Array(bytesOf(p))),
            bytesUpTo(600).map((rest) => concat(NPY_MAGIC, rest)),
          ),
          fc.boolean(),
          fc.integer({ min: 0, max: 3 }),
          (bytes, allowNonFinite, offset) => {
            outcomes.add(checkPlain({ message: atOffset(bytes, offset), allowNonFinite }));
          },
        ),
        P5,
      );
      assert.ok(outcomes.has('ok') && outcomes.size > 3, `coverage: ${[...outcomes].join(' ')}`);
    },
  );

  void it(
    label('mutated .npy files: a stable error or a frame whose length adds up', P5B),
    { timeout: 60_000 },
    () => {
      const outcomes = new Set<string>();
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 330 }),
          fc.oneof(
            { weight: 4, arbitrary: fc.constant<number[] | null>(null) },
            { weight: 1, arbitrary: fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 3 }) },
          ),
          fc.constantFrom('<f4', '<f4', '<f4', '<f8', '>f4', '<i4'),
          fc.boolean(),
          fc.oneof(
            fc.constant({ kind: 'none' as const }),
            fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
            fc.record({
              kind: fc.constant('flip' as const),
              at: fc.oneof(fc.nat({ max: 140 }), fc.nat()),
              mask: fc.integer({ min: 1, max: 255 }),
            }),
            fc.record({ kind: fc.constant('append' as const), bytes: bytesUpTo(40) }),
            fc.record({
              kind: fc.constant('insert' as const),
              at: fc.nat({ max: 140 }),
              bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
            }),
          ),
          fc.boolean(),
          fc.integer({ min: 0, max: 3 }),
          fc.nat(),
          (n, shape, descr, finite, m, allowNonFinite, offset, seed) => {
            const header = encodeNpyHeader(shape ?? [n, 3], descr);
            const count = shape === null ? 3 * n : Math.min(3 * n, 1000);
            const values = new Float32Array(count);
            let x = seed | 1;
            for (let i = 0; i < count; i++) {
              x = (Math.imul(x, 1_103_515_245) + 12_345) | 0;
              values[i] = finite ? (x / 2 ** 31) * 1e6 : i === count >> 1 ? Number.NaN : x;
            }
            let file = concat(header, bytesOf(values));
            switch (m.kind) {
              case 'none':
                break;
              case 'truncate':
                file = file.subarray(0, m.at % (file.length + 1));
                break;
              case 'flip':
                file[m.at % file.length] = (file[m.at % file.length] as number) ^ m.mask;
                break;
              case 'append':
                file = concat(file, m.bytes);
                break;
              case 'insert': {
                const at = m.at % (file.length + 1);
                file = concat(file.subarray(0, at), m.bytes, file.subarray(at));
                break;
              }
            }
            const outcome = checkPlain({ message: atOffset(file, offset), allowNonFinite });
            outcomes.add(outcome);
            if (m.kind === 'none' && shape === null && descr === '<f4' && n <= 300) {
              // An intact file within the limits is accepted, with its exact points.
              if (finite || allowNonFinite || count === 0) assert.equal(outcome, 'ok');
              else assert.equal(outcome, ErrorCodes.FRAME_NON_FINITE);
            }
          },
        ),
        P5B,
      );
      assert.ok(outcomes.has('ok') && outcomes.size > 5, `coverage: ${[...outcomes].join(' ')}`);
    },
  );
});

// ---------------------------------------------------------------------------------------------
// 6. The .npy header parser

const P6 = settings(0x1f2e_3d06, 1000);

/** Pieces of numpy's header dict, and troublemakers, to build texts the parser gets far into. */
const npyToken = fc.constantFrom(
  '{',
  '}',
  '(',
  ')',
  "'",
  '"',
  ',',
  ':',
  ' ',
  '\n',
  '\t',
  '\\',
  '\r',
  '\0',
  'é',
  "'descr'",
  "'<f4'",
  "'fortran_order'",
  'False',
  'True',
  "'shape'",
  '3',
  '0',
  '12345678901234567',
  '-1',
  '1e3',
  "{'descr': '<f4', 'fortran_order': False, 'shape': (",
);

const validDictText = fc
  .integer({ min: 0, max: 1_000_000 })
  .map((n) => Buffer.from(encodeNpyHeader([n, 3]).subarray(10)).toString('latin1'));

/** Edits of a valid header text: insertions, deletions and replacements. */
const editedDictText = fc
  .tuple(
    validDictText,
    fc.array(fc.tuple(fc.nat(), fc.nat({ max: 4 }), fc.oneof(npyToken, fc.string())), {
      minLength: 1,
      maxLength: 4,
    }),
  )
  .map(([text, edits]) => {
    let out = text;
    for (const [at, remove, insert] of edits) {
      const i = at % (out.length + 1);
      out = out.slice(0, i) + insert + out.slice(i + remove);
    }
    return out;
  });

const headerText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 10_000, size: 'max' }),
  fc.string({ unit: 'binary-ascii', maxLength: 200 }),
  fc.string({ unit: npyToken, maxLength: 2500, size: 'max' }).map((s) => s.slice(0, 10_000)),
  fc.string({ unit: npyToken, maxLength: 60 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: 10_000, size: 'max' }),
  validDictText,
  editedDictText,
);

void describe('fuzz: parseNpyHeader', () => {
  void it(
    label('any header text: only PS_ERR_NPY_* errors, never a hang', P6),
    { timeout: 60_000 },
    () => {
      let slowest = 0;
      let parsed = 0;
      fc.assert(
        fc.property(
          headerText,
          fc.constantFrom<[number, number]>([1, 0], [1, 0], [1, 0], [2, 0], [3, 0], [1, 1], [4, 0]),
          fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: u32 }),
          fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat() }),
          (text, [major, minor], lengthField, cut) => {
            const body = Buffer.from(text, 'utf8');
            const preamble = major === 1 ? 10 : 12;
            const file = new Uint8Array(preamble + body.length);
            file.set(NPY_MAGIC, 0);
            file[6] = major;
            file[7] = minor;
            const view = new DataView(file.buffer);
            const declared = lengthField ?? body.length;
            if (major === 1) view.setUint16(8, declared & 0xffff, true);
            else view.setUint32(8, declared, true);
            file.set(body, preamble);
            const bytes = cut === 0 ? file : file.subarray(0, cut % (file.length + 1));

            const started = performance.now();
            let header;
            try {
              header = parseNpyHeader(bytes);
            } catch (error) {
              assertStable(error, NPY_CODES, 'parseNpyHeader');
              return;
            } finally {
              slowest = Math.max(slowest, performance.now() - started);
            }
            parsed++;
            assert.deepEqual(header.version, [major, minor]);
            assert.ok(header.dataOffset >= preamble && header.dataOffset <= bytes.length);
            assert.equal(typeof header.descr, 'string');
            assert.equal(typeof header.fortranOrder, 'boolean');
            assert.ok(header.shape.every((d) => Number.isSafeInteger(d) && d >= 0));
            try {
              const rows = pointCountOfNpyHeader(header);
              assert.equal(rows, header.shape[0]);
              assert.deepEqual(
                { ...parseNpyHeader(encodeNpyHeader([rows, 3])), version: [1, 0], dataOffset: 0 },
                { ...header, version: [1, 0], dataOffset: 0 },
              );
            } catch (error) {
              if (error instanceof assert.AssertionError) throw error;
              assertStable(error, NPY_CODES, 'pointCountOfNpyHeader');
            }
          },
        ),
        P6,
      );
      assert.ok(parsed > 0, 'coverage: some headers parsed');
      assert.ok(slowest < 1000, `slowest parse took ${slowest.toFixed(1)} ms`);
    },
  );
});

// ---------------------------------------------------------------------------------------------
// 7. Control messages

const P7 = settings(0x1f2e_3d07, 2000);
const P7B = settings(0x1f2e_3d17, 200);

/** Mostly `valid`, sometimes anything JSON. */
const orJunk = <T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 5, arbitrary: valid },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
  );

const countish = orJunk(
  fc.oneof(
    fc.nat(),
    fc.constantFrom(0, 2 ** 53 - 1, 1e15),
    fc.constantFrom(2 ** 53, -1, 1.5, 1e300, -0),
    fc.integer(),
  ),
);

/** Objects shaped like server messages, each field valid or not. */
const messageish: fc.Arbitrary<Record<string, unknown>> = fc.record(
  {
    type: orJunk(fc.constantFrom('hello', 'receipt', 'closing')),
    session: orJunk(fc.string({ unit: 'binary' })),
    stream: orJunk(
      fc.oneof(
        fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/),
        fc.constantFrom('.', '..', '', 'a b', 'x'.repeat(65)),
        fc.string({ unit: 'binary' }),
      ),
    ),
    recording: orJunk(fc.oneof(fc.string(), fc.string({ unit: 'binary' }))),
    protocol: orJunk(fc.constantFrom('pointstream/1', '')),
    maxFrameBytes: countish,
    maxPointsPerFrame: countish,
    maxFramesInReassembly: countish,
    seq: countish,
    ok: orJunk(fc.boolean()),
    receivedAt: orJunk(fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.nat())),
    points: countish,
    code: orJunk(fc.oneof(fc.constantFrom(...Object.values(ErrorCodes)), fc.string())),
    message: orJunk(fc.string({ unit: 'binary' })),
    extra: fc.jsonValue({ maxDepth: 2 }),
  },
  { requiredKeys: ['type', 'seq', 'ok', 'receivedAt'] },
);

/** Keys a message may have beside {@link EXPECTED_KEYS}. */
const OPTIONAL_KEYS: Record<string, string[]> = { hello: ['stream', 'recording'] };

const EXPECTED_KEYS: Record<string, string[]> = {
  hello: [
    'type',
    'session',
    'protocol',
    'maxFrameBytes',
    'maxPointsPerFrame',
    'maxFramesInReassembly',
  ],
  'receipt-true': ['type', 'seq', 'ok', 'receivedAt', 'points'],
  'receipt-false': ['type', 'seq', 'ok', 'receivedAt', 'code', 'message'],
  closing: ['type', 'code', 'message'],
};

const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;

/** Decodes `text`: a PS_ERR_CONTROL_INVALID error, or a valid message; returns it or undefined. */
function decodeChecked(text: string): ServerMessage | undefined {
  let message: ServerMessage;
  try {
    message = decodeServerMessage(text);
  } catch (error) {
    assertStable(error, new Set([ErrorCodes.CONTROL_INVALID]), 'decodeServerMessage');
    return undefined;
  }
  assert.ok(text.length <= MAX_CONTROL_MESSAGE_CHARS);
  const m = message as unknown as Record<string, unknown>;
  const kind = message.type === 'receipt' ? `receipt-${String(message.ok)}` : message.type;
  const optional = (OPTIONAL_KEYS[kind] ?? []).filter((key) => key in m);
  assert.deepEqual(Object.keys(m).sort(), [...(EXPECTED_KEYS[kind] ?? ['?']), ...optional].sort());
  switch (message.type) {
    case 'hello':
      assert.equal(typeof message.session, 'string');
      assert.equal(typeof message.protocol, 'string');
      assert.ok(isCount(message.maxFrameBytes) && isCount(message.maxPointsPerFrame));
      assert.ok(isCount(message.maxFramesInReassembly));
      if (message.stream !== undefined) assert.ok(isStreamName(message.stream), message.stream);
      if (message.recording !== undefined) assert.ok(message.recording.length <= 1024);
      break;
    case 'receipt':
      assert.ok(isCount(message.seq) && Number.isFinite(message.receivedAt));
      if (message.ok) assert.ok(isCount(message.points));
      else assert.ok(isErrorCode(message.code) && typeof message.message === 'string');
      break;
    case 'closing':
      assert.ok(isErrorCode(message.code) && typeof message.message === 'string');
      break;
  }
  return message;
}

/** The same object, field by field with ===: JSON does not keep -0 apart from 0. */
function assertSameMessage(actual: ServerMessage, expected: ServerMessage): void {
  const a = actual as unknown as Record<string, unknown>;
  const e = expected as unknown as Record<string, unknown>;
  assert.deepEqual(Object.keys(a), Object.keys(e));
  for (const key of Object.keys(e)) assert.ok(a[key] === e[key], `field ${key} differs`);
}

/**
 * The same JSON written differently: exponent numbers, \u escapes, raw lone surrogates, spaces.
 * All of it is valid JSON that JSON.parse reads as the same value.
 */
function respell(value: Record<string, unknown>, style: number): string {
  const escape = (c: string): string =>
    c === '"' || c === '\\' || c < ' '
      ? style % 2 === 0
        ? JSON.stringify(c).slice(1, -1)
        : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`
      : c;
  const str = (s: string): string => `"${Array.from(s, escape).join('')}"`;
  const num = (n: number): string => (style % 3 === 0 ? n.toExponential() : JSON.stringify(n));
  const entries = Object.entries(value).map(([k, v]) => {
    const text =
      typeof v === 'string' ? str(v) : typeof v === 'number' ? num(v) : JSON.stringify(v);
    return `${str(k)}${style % 5 === 0 ? ' : ' : ':'}${text}`;
  });
  return `{${entries.join(',')}}`;
}

void describe('fuzz: decodeServerMessage', () => {
  void it(
    label('any text: only PS_ERR_CONTROL_INVALID, or a message that re-encodes to itself', P7),
    { timeout: 60_000 },
    () => {
      let valid = 0;
      fc.assert(
        fc.property(
          fc.oneof(
            fc.string({ unit: 'binary', maxLength: 5000, size: 'max' }),
            fc.string(),
            fc.json(),
            fc.anything().map((value) => JSON.stringify(value) ?? 'undefined'),
            messageish.map((value) => JSON.stringify(value)),
            fc
              .tuple(messageish, fc.nat({ max: 29 }))
              .map(([value, style]) => respell(value, style)),
          ),
          (text) => {
            const message = decodeChecked(text);
            if (message === undefined) return;
            valid++;
            const again = decodeChecked(encodeServerMessage(message));
            assert.ok(again !== undefined, 're-encoding does not decode');
            assertSameMessage(again, message);
          },
        ),
        P7,
      );
      assert.ok(valid > 10, `coverage: only ${valid} valid messages`);
    },
  );

  void it(
    label('a decodable message re-encodes within MAX_CONTROL_MESSAGE_CHARS', P7B),
    {
      timeout: 60_000,
    },
    () => {
      fc.assert(
        fc.property(
          fc.constantFrom(0, 7, 1e15, 2 ** 53 - 1),
          fc.constantFrom(1_795_654_393_264.5, 1e20, 0),
          fc.constantFrom(...Object.values(ErrorCodes)),
          fc.constantFrom('x', 'Q', ' '),
          // Every k-th character of the message a lone surrogate; 0 for none.
          fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 400 })),
          fc.nat({ max: 29 }),
          (seq, receivedAt, code, fill, every, style) => {
            const value = { type: 'receipt', seq, ok: false, receivedAt, code, message: '' };
            // The longest message the format allows (512 characters), lone surrogates sprinkled in.
            let message = '';
            for (let i = 1; i <= 512; i++)
              message += every > 0 && i % every === 0 ? '\ud800' : fill;
            const text = respell({ ...value, message }, style);
            assert.ok(text.length <= MAX_CONTROL_MESSAGE_CHARS);
            const decoded = decodeChecked(text);
            const hasLoneSurrogate = every > 0 && every <= 512;
            assert.equal(
              decoded === undefined,
              hasLoneSurrogate,
              'decodes exactly when the message is well formed',
            );
            if (decoded === undefined) return;
            const encoded = encodeServerMessage(decoded);
            assert.ok(
              encoded.length <= MAX_CONTROL_MESSAGE_CHARS,
              `${text.length} chars decode, and re-encode to ${encoded.length}`,
            );
            assert.deepEqual(decodeServerMessage(encoded), decoded);
            // Longer messages are refused by the decoder and cut by the encoder.
            const long = {
              type: 'receipt' as const,
              seq,
              ok: false as const,
              receivedAt,
              code,
              message: fill.repeat(3000),
            };
            assert.equal(decodeChecked(respell(long, style)), undefined);
            assert.ok(encodeServerMessage(long).length <= MAX_CONTROL_MESSAGE_CHARS);
          },
        ),
        P7B,
      );
    },
  );
});

// ---------------------------------------------------------------------------------------------
// START chunks with field tables (docs/protocol.md, "Per-point fields")

const PF1 = settings(0x1f2e_3d31, 400);
const PF2 = settings(0x1f2e_3d32, 1500);

const FIELD_NAMES = ['intensity', 'ring', 'time', 'r', 'g', 'b', '_t0', 'a1'] as const;

/** 1-5 fields of `n` values each, of any type and any bits (NaN included). */
function fieldsOf(n: number): fc.Arbitrary<PointFields> {
  return fc
    .uniqueArray(
      fc.record({
        name: fc.constantFrom(...FIELD_NAMES),
        type: fc.constantFrom<FieldTypeName>(...FIELD_TYPE_NAMES),
        seed: fc.integer(),
      }),
      { minLength: 1, maxLength: 5, selector: (f) => f.name },
    )
    .map((specs) => {
      const fields: Record<string, FieldArray> = {};
      for (const { name, type, seed } of specs) {
        const info = FIELD_TYPES[type];
        const bytes = new Uint8Array(n * info.bytes);
        for (let i = 0; i < bytes.length; i++) bytes[i] = (seed * 31 + i * 97) & 0xff;
        fields[name] = new info.array(bytes.buffer, 0, n);
      }
      return fields;
    });
}

function chunksWithFields(
  points: Float32Array,
  fields: PointFields,
  seq: number,
  maxMessageBytes: number,
): Uint8Array[] {
  const n = points.length / 3;
  const frame = prepareFrame(
    points,
    seq,
    1_000,
    maxMessageBytes,
    zlibChecksum,
    rawFields(fields, n),
  );
  const scratch = new Uint8Array(maxMessageBytes);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < frame.chunkCount; i++) chunks.push(writeChunk(frame, i, scratch).slice());
  return chunks;
}

const FIELD_LIMITS_FOR_FUZZ: ReassemblyLimits = { ...SMALL_LIMITS, maxFrameBytes: 1 << 16 };

void describe('fuzz: START chunks with field tables', () => {
  void it(
    label('round trip: points and every field bit for bit, fields as views', PF1),
    { timeout: 60_000 },
    () => {
      fc.assert(
        fc.property(
          finitePoints(60).chain((points) =>
            fc.tuple(fc.constant(points), fieldsOf(points.length / 3)),
          ),
          fc.integer({ min: 320, max: 900 }),
          ([points, fields], maxMessageBytes) => {
            const harness = new Harness(FIELD_LIMITS_FOR_FUZZ);
            for (const m of chunksWithFields(points, fields, 3, maxMessageBytes)) harness.push(m);
            assert.equal(harness.rejections.length, 0, harness.rejections[0]?.error.message);
            const [frame] = harness.frames;
            assert.ok(frame !== undefined && sameBits(frame.points, points));
            assert.deepEqual(Object.keys(frame.fields), Object.keys(fields));
            for (const [name, values] of Object.entries(fields)) {
              const got = frame.fields[name] as FieldArray;
              assert.ok(
                Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(
                  Buffer.from(values.buffer, values.byteOffset, values.byteLength),
                ),
                name,
              );
            }
          },
        ),
        PF1,
      );
    },
  );

  void it(
    label('hostile tables: no throw, stable codes, no allocation for a rejected START', PF2),
    { timeout: 60_000 },
    () => {
      const codes = new Set<ErrorCode>();
      let frames = 0;
      fc.assert(
        fc.property(
          finitePoints(20).chain((points) =>
            fc.tuple(fc.constant(points), fieldsOf(points.length / 3)),
          ),
          fc.array(fc.tuple(fc.nat({ max: 200 }), byte), { maxLength: 4 }),
          fc.oneof(
            { weight: 3, arbitrary: fc.constant(0) },
            { weight: 1, arbitrary: fc.integer({ min: -40, max: 40 }) },
          ),
          fc.oneof(
            { weight: 3, arbitrary: fc.constant(0) },
            { weight: 1, arbitrary: fc.integer({ min: -16, max: 16 }) },
          ),
          ([points, fields], pokes, tableDelta, payloadDelta) => {
            const chunks = chunksWithFields(points, fields, 5, 600);
            const start = chunks[0] as Uint8Array;
            const view = new DataView(start.buffer);
            const tableBytes = view.getUint16(2, true) - START_HEADER_BYTES;
            let table: Uint8Array = start.slice(
              START_HEADER_BYTES,
              START_HEADER_BYTES + tableBytes,
            );
            for (const [at, value] of pokes) if (at < table.length) table[at] = value;
            // Cut the table short or lengthen it with zeros (headerLength follows).
            const length = Math.max(0, table.length + tableDelta);
            table =
              length <= table.length
                ? table.subarray(0, length)
                : concat(table, new Uint8Array(length - table.length));
            const rest = start.subarray(START_HEADER_BYTES + tableBytes);
            const mutated = concat(start.subarray(0, START_HEADER_BYTES), table, rest);
            const mv = new DataView(mutated.buffer, mutated.byteOffset);
            mv.setUint16(2, START_HEADER_BYTES + table.length, true);
            const payloadBytes = mv.getUint32(12, true) + payloadDelta;
            mv.setUint32(12, Math.max(0, payloadBytes), true);
            const harness = new Harness(FIELD_LIMITS_FOR_FUZZ);
            const first = harness.push(mutated);
            if (first.kind === 'rejected') assert.equal(harness.allocations, 0);
            for (const chunk of chunks.slice(1)) harness.push(chunk);
            for (const rejection of harness.rejections) codes.add(rejection.error.code);
            frames += harness.frames.length;
            harness.reset();
          },
        ),
        PF2,
      );
      assert.ok(codes.has(ErrorCodes.FIELDS_INVALID), 'coverage: no bad table');
      assert.ok(frames > 0, 'coverage: no frame completed');
    },
  );
});
