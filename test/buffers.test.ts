import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { connect } from '../src/index.js';
import type { ReceivedFrame } from '../src/index.js';
import { releaseMessage } from '../src/rtc/release.js';
import { FrameBufferPool } from '../src/server/buffer-pool.js';
import { prepareFrame, writeChunk } from '../src/wire/frame.js';
import { FrameReassembler } from '../src/wire/reassembler.js';
import { LOOPBACK, startServer } from './helpers.js';

const rtc = { bindAddress: LOOPBACK };

void test('releaseMessage frees a message that owns its memory and leaves shared memory alone', () => {
  const owning = Buffer.alloc(256 * 1024, 7);
  const buffer = owning.buffer;
  releaseMessage(owning);
  assert.equal(buffer.byteLength, 0); // detached: the memory is gone now, not at the next GC
  assert.equal(owning.length, 0);

  const pooled = Buffer.from('small'); // a slice of Node's shared 8 KiB pool
  assert.notEqual(pooled.byteLength, pooled.buffer.byteLength);
  releaseMessage(pooled);
  assert.equal(pooled.toString(), 'small');

  const whole = new Uint8Array(1024).fill(3);
  const view = whole.subarray(0, 512);
  releaseMessage(view);
  assert.equal(whole.length, 1024);
  assert.equal(whole[1023], 3);

  // A WebAssembly memory's buffer cannot be detached (the project's lib has no WebAssembly types).
  type WasmMemory = new (descriptor: { initial: number }) => { buffer: ArrayBuffer };
  const wasm = (globalThis as unknown as { WebAssembly: { Memory: WasmMemory } }).WebAssembly;
  const fixed = new Uint8Array(new wasm.Memory({ initial: 1 }).buffer);
  fixed[0] = 9;
  releaseMessage(fixed); // does not throw; the GC frees it
  assert.equal(fixed[0], 9);
});

void test('the pool hands back exact lengths and reuses buffers of the same size class', () => {
  const pool = new FrameBufferPool(64 * 1024 * 1024);
  const a = pool.acquire(1_000_000);
  assert.equal(a.length, 1_000_000);
  assert.equal(a.byteOffset, 0);
  pool.recycle(a);
  const b = pool.acquire(1_000_100); // same 64 KiB class
  assert.equal(b.buffer, a.buffer);
  assert.equal(b.length, 1_000_100);
  assert.deepEqual([pool.allocated, pool.reused], [1, 1]);
  const c = pool.acquire(5_000_000); // another class: fresh
  assert.notEqual(c.buffer, a.buffer);
  assert.equal(pool.allocated, 2);
});

void test('the pool ignores foreign buffers, double recycles and anything above its idle cap', () => {
  const pool = new FrameBufferPool(2 * 1024 * 1024);
  pool.recycle(new Uint8Array(1024 * 1024));
  assert.equal(pool.idleBytes, 0);
  const a = pool.acquire(1024 * 1024);
  pool.recycle(a);
  pool.recycle(a);
  assert.equal(pool.idleBytes, 1024 * 1024);
  const x = pool.acquire(1024 * 1024);
  const y = pool.acquire(1024 * 1024);
  const z = pool.acquire(1024 * 1024);
  assert.notEqual(x.buffer, y.buffer); // the double recycle did not put `a` in twice
  for (const buffer of [x, y, z]) pool.recycle(buffer);
  assert.equal(pool.idleBytes, 2 * 1024 * 1024); // the third is left to the GC
});

void test('the reassembler recycles the buffers of frames it drops, never of delivered ones', () => {
  const recycled: Uint8Array[] = [];
  const reassembler = new FrameReassembler({
    checksum: crc32,
    recycle: (payload) => recycled.push(payload),
    limits: { maxFramesInReassembly: 1 },
  });
  const chunks = (seq: number, corrupt = false): Uint8Array[] => {
    const points = new Float32Array(30_000).fill(seq);
    const frame = prepareFrame(points, seq, 0, 16_384, crc32);
    const out: Uint8Array[] = [];
    for (let i = 0; i < frame.chunkCount; i++)
      out.push(writeChunk(frame, i, new Uint8Array(16_384)).slice());
    const third = out[2] as Uint8Array;
    if (corrupt) third[100] = (third[100] as number) ^ 1;
    return out;
  };
  const delivered = chunks(0).map((chunk) => reassembler.push(chunk));
  assert.equal(delivered.at(-1)?.kind, 'frame');
  assert.equal(recycled.length, 0);
  const bad = chunks(1, true).map((chunk) => reassembler.push(chunk));
  assert.equal(bad.at(-1)?.kind, 'rejected');
  assert.equal(recycled.length, 1);
  const two = chunks(2);
  reassembler.push(two[0] as Uint8Array);
  const three = reassembler.push(chunks(3)[0] as Uint8Array); // evicts frame 2
  assert.equal(three.evicted?.error.code, 'PS_ERR_FRAME_INCOMPLETE');
  assert.equal(recycled.length, 2);
  assert.deepEqual(reassembler.reset(), [3]);
  assert.equal(recycled.length, 3);
});

void test(
  'with reuseFrameBuffers, buffers are reused between frames and retain() keeps a frame intact',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({ reuseFrameBuffers: true });
    t.after(() => server.close());
    const kept: { frame: ReceivedFrame; release: () => void }[] = [];
    const seen: number[] = [];
    server.on('frame', (frame) => {
      seen.push(frame.points[0] as number);
      if (frame.seq === 0) kept.push({ frame, release: frame.retain() });
    });
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc });
    t.after(() => client.close());
    for (let seq = 0; seq < 6; seq++) {
      const sent = await client.send(new Float32Array(300_000).fill(seq + 1));
      assert.equal((await sent.receipt).ok, true);
    }
    assert.deepEqual(seen, [1, 2, 3, 4, 5, 6]);
    const [held] = kept;
    assert.ok(held);
    // Frames 1-5 came and went while frame 0 was held: its points are untouched.
    assert.ok(held.frame.points.every((value) => value === 1));
    const buffers = server.stats().frameBuffers;
    assert.ok(buffers, 'frameBuffers stats are reported');
    // Frame 0's buffer was held; after frame 1, every frame reused frame 1's or 2's buffer.
    assert.ok(buffers.reused >= 3, `reused ${buffers.reused}`);
    assert.ok(buffers.allocated <= 3, `allocated ${buffers.allocated}`);
    held.release();
    held.release(); // a second call does nothing
    const next = await client.send(new Float32Array(300_000).fill(7));
    assert.equal((await next.receipt).ok, true);
    assert.equal(server.stats().frameBuffers?.allocated, buffers.allocated);
  },
);

void test(
  'frames() keeps the frame it yielded valid until the next one is asked for',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({ reuseFrameBuffers: true });
    t.after(() => server.close());
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc });
    t.after(() => client.close());
    const iterator = server.frames({ maxQueued: 4 });
    const sending = (async () => {
      for (let seq = 0; seq < 4; seq++) {
        const sent = await client.send(new Float32Array(300_000).fill(seq + 1));
        assert.equal((await sent.receipt).ok, true);
      }
    })();
    const first = (await iterator.next()).value as ReceivedFrame;
    await sending; // three more frames arrived meanwhile (queued, each holding its buffer)
    assert.ok(first.points.every((value) => value === 1));
    const values: number[] = [];
    for (let i = 0; i < 3; i++)
      values.push(((await iterator.next()).value as ReceivedFrame).points[0] as number);
    assert.deepEqual(values, [2, 3, 4]);
    await iterator.return(undefined);
  },
);

void test(
  'without reuseFrameBuffers every frame owns its buffer',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const frames: ReceivedFrame[] = [];
    server.on('frame', (frame) => frames.push(frame));
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc });
    t.after(() => client.close());
    for (let seq = 0; seq < 3; seq++)
      await (
        await client.send(new Float32Array(30_000).fill(seq + 1))
      ).receipt;
    assert.deepEqual(
      frames.map((frame) => frame.points.every((value) => value === frame.seq + 1)),
      [true, true, true],
    );
    assert.equal(server.stats().frameBuffers, undefined);
  },
);
