import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { ErrorCodes, connect } from '../src/index.js';
import type { ReceivedFrame } from '../src/index.js';
import { LidarSceneSource } from '../src/sources/lidar.js';
import { Encoding } from '../src/wire/chunk.js';
import { encodePoints } from '../src/wire/encodings/index.js';
import type { EncodedPoints, PointEncodingName } from '../src/wire/encodings/index.js';
import { prepareEncodedFrame, writeChunk } from '../src/wire/frame.js';
import { FrameReassembler } from '../src/wire/reassembler.js';
import type { PushResult } from '../src/wire/reassembler.js';
import { LOOPBACK, startServer } from './helpers.js';

const rtc = { bindAddress: LOOPBACK };
const MESSAGE_BYTES = 4096;

function chunksOf(encoded: EncodedPoints, seq: number): Uint8Array[] {
  const frame = prepareEncodedFrame(encoded, seq, 1_700_000_000_000, MESSAGE_BYTES, crc32);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < frame.chunkCount; i++)
    chunks.push(writeChunk(frame, i, new Uint8Array(MESSAGE_BYTES)).slice());
  return chunks;
}

function pushAll(reassembler: FrameReassembler, chunks: Uint8Array[]): PushResult {
  let last: PushResult | undefined;
  for (const chunk of chunks) last = reassembler.push(chunk);
  assert.ok(last);
  return last;
}

function lidarFrame(points: number): Float32Array {
  return new LidarSceneSource(points).next().slice();
}

function maxAbsError(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++)
    max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}

for (const name of ['q16', 'qrice'] as const) {
  void test(`reassembler: a ${name} frame is decoded to float32 within its error bound`, () => {
    const points = lidarFrame(20_000);
    const encoded = encodePoints(points, name);
    const result = pushAll(new FrameReassembler({ checksum: crc32 }), chunksOf(encoded, 3));
    assert.equal(result.kind, 'frame');
    if (result.kind !== 'frame') return;
    assert.equal(result.frame.encoding, encoded.encoding);
    assert.equal(result.frame.pointCount, 20_000);
    assert.equal(result.frame.payload.length, encoded.bytes.length);
    assert.ok(maxAbsError(result.frame.points, points) <= encoded.maxError);
  });
}

void test('reassembler: a q16 START whose size does not fit its point count is refused before allocation', () => {
  const encoded = encodePoints(lidarFrame(1000), 'q16');
  const chunks = chunksOf(encoded, 0);
  const start = chunks[0] as Uint8Array;
  // pointCount (offset 16) says 1001 points.
  new DataView(start.buffer, start.byteOffset).setUint32(16, 1001, true);
  const sizes: number[] = [];
  const reassembler = new FrameReassembler({
    checksum: crc32,
    allocate: (bytes) => {
      sizes.push(bytes);
      return new Uint8Array(bytes);
    },
  });
  const result = reassembler.push(start);
  assert.equal(result.kind, 'rejected');
  if (result.kind === 'rejected') assert.equal(result.error.code, ErrorCodes.FRAME_LENGTH_MISMATCH);
  assert.deepEqual(sizes, []);
});

void test('reassembler: a corrupt qrice payload with a valid checksum -> PS_ERR_ENCODING_CORRUPT', () => {
  const encoded = encodePoints(lidarFrame(5000), 'qrice');
  // Corrupt the coded data (after the 56-byte header and the 12-byte levels), then send it with a
  // matching CRC: only the decoder can tell.
  const bytes = encoded.bytes.slice();
  for (let i = 80; i < bytes.length; i += 7) bytes[i] = 0xff;
  const result = pushAll(
    new FrameReassembler({ checksum: crc32 }),
    chunksOf({ ...encoded, bytes }, 0),
  );
  assert.equal(result.kind, 'rejected');
  if (result.kind === 'rejected') {
    assert.equal(result.error.code, ErrorCodes.ENCODING_CORRUPT);
    assert.equal(result.seq, 0);
  }
});

void test('reassembler: an unknown encoding id is refused at START', () => {
  const encoded = encodePoints(lidarFrame(100), 'q16');
  const start = chunksOf({ ...encoded, encoding: 9 as never }, 0)[0] as Uint8Array;
  const result = new FrameReassembler({ checksum: crc32 }).push(start);
  assert.equal(result.kind, 'rejected');
  if (result.kind === 'rejected')
    assert.equal(result.error.code, ErrorCodes.FRAME_UNSUPPORTED_FORMAT);
  assert.equal(Encoding.QRICE, 3);
});

void test(
  'over WebRTC: raw, q16 and qrice frames arrive decoded within the bound the client reports',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({ reuseFrameBuffers: true });
    t.after(() => server.close());
    const points = lidarFrame(200_000);
    for (const encoding of ['raw', 'q16', 'qrice'] as PointEncodingName[]) {
      const received: { encoding: string; error: number; encoded: number | undefined }[] = [];
      const onFrame = (frame: ReceivedFrame): void => {
        received.push({
          encoding: frame.encoding,
          error: maxAbsError(frame.points, points),
          encoded: frame.encoded?.length,
        });
        if (encoding === 'raw') assert.ok(frame.npy);
        else assert.equal(frame.npy, undefined);
      };
      server.on('frame', onFrame);
      const client = await connect({
        signalingUrl: `${server.url}/offer`,
        rtc,
        encoding,
        precision: 0.002,
      });
      const sent = await client.send(points);
      const receipt = await sent.receipt;
      await client.close();
      server.off('frame', onFrame);
      assert.equal(receipt.ok, true, encoding);
      assert.equal(sent.encoding, encoding);
      assert.equal(received.length, 1);
      const [frame] = received;
      assert.ok(frame);
      assert.equal(frame.encoding, encoding);
      assert.ok(frame.error <= sent.maxError, `${encoding}: ${frame.error} > ${sent.maxError}`);
      if (encoding === 'raw') assert.equal(sent.maxError, 0);
      if (encoding === 'qrice') {
        assert.ok(sent.maxError <= 0.002);
        assert.equal(frame.encoded, sent.bytes);
        assert.ok(sent.bytes < 200_000 * 3, `qrice: ${sent.bytes} bytes for 200k LiDAR points`);
      }
      if (encoding === 'q16') assert.equal(sent.bytes, 56 + 200_000 * 6);
    }
  },
);

void test('the client refuses bad encoding options by name', async () => {
  await assert.rejects(
    connect({ signalingUrl: 'http://127.0.0.1:9/offer', encoding: 'zip' as never }),
    (error: Error & { code?: string }) =>
      error.code === ErrorCodes.INVALID_OPTION && /encoding/.test(error.message),
  );
  await assert.rejects(
    connect({ signalingUrl: 'http://127.0.0.1:9/offer', precision: 0 }),
    (error: Error & { code?: string }) =>
      error.code === ErrorCodes.INVALID_OPTION && /precision/.test(error.message),
  );
});

void test('reassembler: an encoded frame reserves its payload at START, its decoded points once verified', () => {
  const reserved: number[] = [];
  let held = 0;
  const budget = {
    reserve: (bytes: number): boolean => {
      if (held + bytes > 1_000_000) return false;
      held += bytes;
      reserved.push(bytes);
      return true;
    },
    release: (bytes: number): void => {
      held -= bytes;
    },
  };
  const reassembler = new FrameReassembler({ checksum: crc32, budget });
  const small = encodePoints(lidarFrame(20_000), 'qrice');
  const result = pushAll(reassembler, chunksOf(small, 0));
  assert.equal(result.kind, 'frame');
  assert.deepEqual(reserved, [small.bytes.length, 20_000 * 12]);
  assert.equal(held, 0);
  // 100,000 points decode to 1.2 MB: over this budget, whatever the payload's size. The START
  // only reserves the payload (declared point counts cost nothing: issue 14); the decoded points
  // are refused once the whole payload has arrived.
  const large = encodePoints(lidarFrame(100_000), 'qrice');
  assert.ok(large.bytes.length < 1_000_000);
  const chunks = chunksOf(large, 1);
  assert.equal(
    reassembler.push(chunks[0] as Uint8Array).kind,
    chunks.length > 1 ? 'pending' : 'rejected',
  );
  const refused = pushAll(reassembler, chunks.slice(1));
  assert.equal(refused.kind, 'rejected');
  if (refused.kind === 'rejected') assert.equal(refused.error.code, ErrorCodes.SERVER_MEMORY);
  assert.equal(held, 0);
});
