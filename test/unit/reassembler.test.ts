/**
 * The FrameReassembler (src/wire/reassembler.ts): every fatal chunk header error and every
 * rejected frame, eviction, limits and buffer accounting. Pure: no sockets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 as zlibCrc32 } from 'node:zlib';

import { ErrorCodes, PointstreamError } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import {
  DEFAULT_REASSEMBLY_LIMITS,
  FrameReassembler,
  encodeNpyHeader,
  readChunkHeader,
} from '../../src/wire/index.js';
import type { ReassemblerOptions } from '../../src/wire/index.js';
import {
  T,
  prng,
  randomInt,
  randomPoints,
  assertSameFloats,
  makeFrame,
  fiveChunkFrame,
  smallFrame,
  startChunk,
  dataChunk,
  withU8,
  withU16,
  withU32,
  withF64,
  concat,
  splitEviction,
  assertPending,
  assertFrame,
  assertRejected,
  deliver,
  rejectsOnceThenRecovers,
  countingAllocator,
} from './wire-helpers.js';
import type { TestFrame } from './wire-helpers.js';

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
    ['START with flags 0x02', withU8(start, 27, 0x02), ErrorCodes.CHUNK_BAD_HEADER, 9],
    ['START with flags 0x03', withU8(start, 27, 0x03), ErrorCodes.CHUNK_BAD_HEADER, 9],
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
// Compile-time check that the options type accepts Node's zlib.crc32 and Buffer allocation as the
// server passes them.
const _serverOptions: ReassemblerOptions = {
  checksum: zlibCrc32,
  allocate: (bytes) => Buffer.allocUnsafeSlow(bytes),
};
void _serverOptions;
