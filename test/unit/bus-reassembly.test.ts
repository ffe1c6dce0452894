import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { chunkHeaders, partRange, partsOf, readChunkHeaders } from '../../src/bus/layout.js';
import type { BusChunk, BusFrameMeta } from '../../src/bus/layout.js';
import { BusReassembly } from '../../src/bus/reassembly.js';

const CHUNK = 1000;

function payloadOf(bytes: number, salt: number): Uint8Array {
  const payload = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) payload[i] = (i * 31 + salt) & 0xff;
  return payload;
}

/** A frame's chunks as a consumer reads them: checked headers and bodies. */
function chunksOf(
  session: string,
  index: number,
  bytes = 2500,
  overrides: Partial<BusFrameMeta> = {},
): { chunk: BusChunk; body: Uint8Array }[] {
  const payload = payloadOf(bytes, index);
  const meta: BusFrameMeta = {
    stream: 'cam',
    session,
    sessionStart: 1_764_700_000_000,
    node: 'n1',
    seq: index * 2,
    index,
    bytes,
    crc32: crc32(payload),
    encoding: 'npy',
    points: 1,
    captureTime: 1_764_700_000_100,
    receivedAt: 1_764_700_000_200,
    ...overrides,
  };
  return Array.from({ length: partsOf(bytes, CHUNK) }, (_, part) => {
    const headers = chunkHeaders(meta, part, CHUNK);
    const [start, end] = partRange(bytes, part, CHUNK);
    const body = payload.subarray(start, end);
    const chunk = readChunkHeaders(
      (name) => headers.find(([key]) => key === name)?.[1],
      body.length,
    );
    return { chunk, body };
  });
}

void describe('bus reassembly', () => {
  void it('reassembles parts in any order into one buffer, checks the CRC and returns every handle', () => {
    const r = new BusReassembly<string>({ checksum: crc32 });
    const [a, b, c] = chunksOf('s', 0);
    assert.ok(a && b && c);
    assert.equal(r.push(c.chunk, c.body, 'c', 0).frame, undefined);
    assert.equal(r.push(a.chunk, a.body, 'a', 1).frame, undefined);
    assert.deepEqual(r.stats().framesInAssembly, 1);
    const done = r.push(b.chunk, b.body, 'b', 2);
    assert.ok(done.frame);
    assert.deepEqual(done.frame.payload, payloadOf(2500, 0));
    assert.deepEqual(done.frame.handles, ['a', 'b', 'c']);
    assert.equal(done.frame.firstPartAt, 0);
    assert.deepEqual(r.stats(), {
      framesCompleted: 1,
      framesMissed: 0,
      framesIncomplete: 0,
      framesCorrupt: 0,
      duplicates: 0,
      messagesDropped: 0,
      framesInAssembly: 0,
      bytesInAssembly: 0,
    });
  });

  void it('counts Ps-Index gaps as missed, a session first seen at k as k missed', () => {
    const r = new BusReassembly<number>();
    let delivered = 0;
    for (const index of [3, 4, 7, 8]) {
      for (const { chunk, body } of chunksOf('s', index, 10)) {
        if (r.push(chunk, body, index, 0).frame) delivered++;
      }
    }
    assert.equal(delivered, 4);
    assert.equal(r.stats().framesMissed, 3 + 2);
    assert.equal(r.positions().get('s'), 9);
  });

  void it('starts at the first frame seen when told to (latest), or at resumed positions', () => {
    const now = new BusReassembly<number>({ countFromStart: false });
    for (const { chunk, body } of chunksOf('s', 40, 10)) now.push(chunk, body, 0, 0);
    assert.equal(now.stats().framesMissed, 0);
    const resumed = new BusReassembly<number>();
    resumed.resume(new Map([['s', 38]]));
    for (const { chunk, body } of chunksOf('s', 40, 10)) resumed.push(chunk, body, 0, 0);
    assert.equal(resumed.stats().framesMissed, 2);
  });

  void it('gives up a frame whose parts stop once a later frame of its session is complete', () => {
    const r = new BusReassembly<string>();
    const first = chunksOf('s', 0);
    const [p0, p1] = first;
    assert.ok(p0 && p1);
    r.push(p0.chunk, p0.body, '0/0', 0);
    r.push(p1.chunk, p1.body, '0/1', 0);
    const [n0] = chunksOf('s', 1, 10);
    assert.ok(n0);
    const result = r.push(n0.chunk, n0.body, '1/0', 0);
    assert.ok(result.frame);
    assert.equal(result.frame.meta.index, 1);
    assert.deepEqual(result.release, ['0/0', '0/1']);
    // Its last part, late: dropped, never a frame.
    const late = first[2];
    assert.ok(late);
    const after = r.push(late.chunk, late.body, '0/2', 0);
    assert.equal(after.frame, undefined);
    assert.deepEqual(after.release, ['0/2']);
    assert.equal(r.stats().framesIncomplete, 1);
    assert.equal(r.stats().messagesDropped, 1);
    assert.equal(r.stats().framesMissed, 0);
  });

  void it('delivers a frame counted missed that arrives late after all, and un-counts it', () => {
    const r = new BusReassembly<number>();
    const order = [0, 3, 1, 4, 2];
    const delivered: number[] = [];
    for (const index of order)
      for (const { chunk, body } of chunksOf('s', index, 10)) {
        const frame = r.push(chunk, body, index, 0).frame;
        if (frame) delivered.push(frame.meta.index);
      }
    assert.deepEqual(delivered, order);
    assert.equal(r.stats().framesMissed, 0);
    // Again: duplicates now.
    for (const { chunk, body } of chunksOf('s', 2, 10)) r.push(chunk, body, 2, 0);
    assert.equal(r.stats().duplicates, 1);
  });

  void it('gives up a frame that stalls, and clears on close', () => {
    const r = new BusReassembly<string>({ limits: { frameStallMs: 100 } });
    const [a] = chunksOf('s', 0);
    assert.ok(a);
    r.push(a.chunk, a.body, 'a', 1000);
    assert.deepEqual(r.expire(1099), []);
    assert.deepEqual(r.expire(1100), ['a']);
    assert.equal(r.stats().framesIncomplete, 1);
    assert.equal(r.stats().bytesInAssembly, 0);
    const [b] = chunksOf('t', 0);
    assert.ok(b);
    r.push(b.chunk, b.body, 'b', 0);
    assert.deepEqual(r.clear(), ['b']);
    assert.equal(r.stats().framesInAssembly, 0);
  });

  void it('skips duplicate parts and parts of frames already delivered', () => {
    const r = new BusReassembly<string>();
    const [a, b, c] = chunksOf('s', 0);
    assert.ok(a && b && c);
    r.push(a.chunk, a.body, 'a', 0);
    assert.deepEqual(r.push(a.chunk, a.body, 'a2', 0).release, ['a2']);
    r.push(b.chunk, b.body, 'b', 0);
    assert.ok(r.push(c.chunk, c.body, 'c', 0).frame);
    assert.deepEqual(r.push(b.chunk, b.body, 'b2', 0).release, ['b2']);
    assert.equal(r.stats().duplicates, 2);
    assert.equal(r.stats().framesCompleted, 1);
  });

  void it('never delivers a frame whose CRC fails, and drops parts that disagree with their frame', () => {
    const r = new BusReassembly<string>();
    const [a, b, c] = chunksOf('s', 0, 2500, { crc32: 1234 });
    assert.ok(a && b && c);
    r.push(a.chunk, a.body, 'a', 0);
    r.push(b.chunk, b.body, 'b', 0);
    const result = r.push(c.chunk, c.body, 'c', 0);
    assert.equal(result.frame, undefined);
    assert.deepEqual(result.release, ['a', 'b', 'c']);
    assert.equal(r.stats().framesCorrupt, 1);
    const [x] = chunksOf('s', 1);
    const [, y] = chunksOf('s', 1, 2500, { seq: 999 });
    assert.ok(x && y);
    r.push(x.chunk, x.body, 'x', 0);
    assert.deepEqual(r.push(y.chunk, y.body, 'y', 0).release, ['y']);
    assert.equal(r.stats().messagesDropped, 1);
  });

  void it('keeps frames and bytes in assembly within its caps, giving up the least recent first', () => {
    const r = new BusReassembly<string>({
      limits: { maxFramesInAssembly: 3, maxBytesInAssembly: 10_000 },
    });
    // A flood of first parts of different frames (sessions), 2500 bytes each.
    for (let i = 0; i < 50; i++) {
      const [first] = chunksOf(`flood${i}`, 0);
      assert.ok(first);
      r.push(first.chunk, first.body, `f${i}`, i);
      assert.ok(r.stats().framesInAssembly <= 3);
      assert.ok(r.stats().bytesInAssembly <= 10_000);
    }
    assert.equal(r.stats().framesIncomplete, 47);
    // One frame larger than all the room: refused before allocation.
    const [big] = chunksOf('big', 0, 20_000);
    assert.ok(big);
    assert.deepEqual(r.push(big.chunk, big.body, 'big', 0).release, ['big']);
    // A good frame after the flood arrives whole.
    let frame;
    for (const { chunk, body } of chunksOf('good', 0)) frame ??= r.push(chunk, body, 'g', 99).frame;
    assert.ok(frame);
    assert.deepEqual(frame.payload, payloadOf(2500, 0));
  });

  void it('remembers a bounded number of sessions', () => {
    const r = new BusReassembly<number>({ limits: { maxSessions: 4 } });
    for (let i = 0; i < 100; i++)
      for (const { chunk, body } of chunksOf(`s${i}`, 0, 10)) r.push(chunk, body, i, 0);
    assert.equal(r.positions().size, 4);
    assert.equal(r.stats().framesCompleted, 100);
  });

  void it('refuses limits that are not positive integers', () => {
    assert.throws(() => new BusReassembly({ limits: { maxFramesInAssembly: 0 } }), RangeError);
  });
});
