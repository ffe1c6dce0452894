/**
 * Chunking (src/wire/frame.ts): prepareFrame + writeChunk, and round trips through the
 * FrameReassembler bit for bit. Pure: no sockets.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { crc32 as zlibCrc32 } from 'node:zlib';

import { ErrorCodes } from '../../src/errors.js';
import {
  ChunkType,
  DATA_HEADER_BYTES,
  DEFAULT_REASSEMBLY_LIMITS,
  DType,
  Encoding,
  FrameReassembler,
  MIN_MESSAGE_BYTES,
  START_HEADER_BYTES,
  chunkCountFor,
  crc32Portable,
  decodePlainFrame,
  encodeNpyHeader,
  parseNpyHeader,
  pointCountOfNpyHeader,
  prepareFrame,
  readChunkHeader,
  writeChunk,
} from '../../src/wire/index.js';
import type { PushResult } from '../../src/wire/index.js';
import {
  T,
  zlibChecksum,
  prng,
  randomInt,
  randomPoints,
  bytesOf,
  assertSameFloats,
  makeFrame,
  startChunk,
  dataChunk,
  assertFrame,
  assertRejected,
  deliver,
  countingAllocator,
} from './wire-helpers.js';

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
      new Uint8Array(readFileSync(new URL(`../fixtures/npy/${name}`, import.meta.url)));
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
