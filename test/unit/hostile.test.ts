/**
 * Hostile bytes against the wire decoders (src/wire/reassembler.ts, src/wire/plain.ts): random and
 * mutated messages never make them throw anything but a PointstreamError. Pure: no sockets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ErrorCodes, PointstreamError, isErrorCode } from '../../src/errors.js';
import { FrameReassembler, decodePlainFrame, encodeNpyHeader } from '../../src/wire/index.js';
import type { PushResult } from '../../src/wire/index.js';
import {
  T,
  zlibChecksum,
  prng,
  randomInt,
  randomBytes,
  randomPoints,
  bytesOf,
  assertSameFloats,
  makeFrame,
  concat,
  describeResult,
  deliver,
  countingAllocator,
} from './wire-helpers.js';

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
