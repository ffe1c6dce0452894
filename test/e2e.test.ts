import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { ErrorCodes, connect } from '../src/index.js';
import type { ReceivedFrame } from '../src/index.js';
import { PROTOCOL_V1 } from '../src/wire/chunk.js';
import { chunkCountFor, prepareFrame, writeChunk } from '../src/wire/frame.js';
import { LOOPBACK, RawPeer, startServer, waitFor } from './helpers.js';

const rtc = { bindAddress: LOOPBACK };

/** Points whose values say which client and frame they belong to. */
function taggedPoints(pointCount: number, tag: number): Float32Array {
  const points = new Float32Array(pointCount * 3);
  for (let i = 0; i < points.length; i++) points[i] = tag + (i % 1000) / 1000;
  return points;
}

void test(
  'a full-size frame of 1,000,000 points arrives bit-exact over WebRTC',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const frames: ReceivedFrame[] = [];
    server.on('frame', (frame) => frames.push(frame));
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc });
    t.after(() => client.close());

    const points = new Float32Array(3_000_000);
    for (let i = 0; i < points.length; i++) points[i] = Math.fround(Math.sin(i) * 100);
    const expected = points.slice();
    const sent = await client.send(points, { captureTime: 1_700_000_000_000 });
    const receipt = await sent.receipt;
    assert.equal(receipt.ok, true);
    assert.equal(client.maxMessageBytes, 262_144);
    assert.equal(sent.chunks, chunkCountFor(12_000_128, 262_144));
    assert.equal(sent.chunks, 46);
    assert.equal(frames.length, 1);
    const frame = frames[0] as ReceivedFrame;
    assert.equal(frame.pointCount, 1_000_000);
    assert.equal(frame.byteLength, 12_000_128);
    assert.equal(frame.captureTime, 1_700_000_000_000);
    assert.equal(frame.form, 'chunked');
    assert.equal(
      frame.crc32,
      crc32(
        Buffer.concat([Buffer.from(readNpyHeaderFor(1_000_000)), Buffer.from(expected.buffer)]),
      ),
    );
    assert.deepEqual(
      Buffer.from(frame.points.buffer, frame.points.byteOffset, frame.points.byteLength),
      Buffer.from(expected.buffer),
    );
    const stats = server.stats();
    assert.equal(stats.totals.framesReceived, 1);
    assert.equal(stats.sessions[0]?.framesReceived, 1);
    assert.equal(stats.sessions[0]?.state, 'connected');
  },
);

function readNpyHeaderFor(rows: number): Uint8Array {
  const frame = prepareFrame(new Float32Array(rows * 3), 0, 0, 262_144, crc32);
  return frame.parts[0] as Uint8Array;
}

void test(
  'WHIP form: application/sdp offer gets 201, Location and an SDP answer; DELETE ends it',
  { timeout: 30_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const peer = new RawPeer(PROTOCOL_V1);
    t.after(() => peer.close());
    await peer.connect(`${server.url}/offer`, 'sdp');
    assert.equal(peer.status.http, 201);
    assert.match(peer.status.location ?? '', /^\/sessions\/[A-Za-z0-9_-]{22}$/);
    assert.match(peer.status.contentType ?? '', /^application\/sdp/);
    const ended = server.next('sessionClosed', { timeoutMs: 5000 });
    const response = await fetch(new URL(peer.status.location as string, server.url), {
      method: 'DELETE',
    });
    assert.equal(response.status, 200);
    const end = await ended;
    assert.equal(end.code, ErrorCodes.SESSION_CLOSED);
    assert.match(end.reason, /DELETE/);
    const again = await fetch(new URL(peer.status.location as string, server.url), {
      method: 'DELETE',
    });
    assert.equal(again.status, 404);
    assert.equal(server.stats().sessions.length, 0);
  },
);

void test(
  'JSON form: {sdp, type} in, 200 {sdp, type: "answer"} out; plain raw and .npy frames are received',
  { timeout: 30_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const frames: ReceivedFrame[] = [];
    server.on('frame', (frame) => frames.push(frame));
    const peer = new RawPeer('');
    t.after(() => peer.close());
    await peer.connect(`${server.url}/offer`, 'json');
    assert.equal(peer.status.http, 200);
    const json = peer.status.json as { type: string; sdp: string };
    assert.equal(json.type, 'answer');
    assert.match(json.sdp, /^v=0/);

    // Raw little-endian float32 x, y, z: the server advertised a large enough message size.
    const raw = taggedPoints(20_000, 7);
    peer.send(new Uint8Array(raw.buffer));
    const first = await peer.receipt(0);
    assert.deepEqual(first.type === 'receipt' && first.ok && first.points, 20_000);

    // A complete .npy file written by NumPy.
    const npy = readFileSync(new URL('./fixtures/npy/xyz_f4_1000.npy', import.meta.url));
    peer.send(npy);
    const second = await peer.receipt(1);
    assert.equal(second.type === 'receipt' && second.ok, true);

    // Not a whole number of points: rejected with a stable code, and the session goes on.
    peer.send(new Uint8Array(13));
    const third = await peer.receipt(2);
    assert.equal(third.type === 'receipt' && !third.ok && third.code, ErrorCodes.PLAIN_BAD_LENGTH);
    // A .npy of float64: rejected.
    peer.send(readFileSync(new URL('./fixtures/npy/xyz_f8.npy', import.meta.url)));
    const fourth = await peer.receipt(3);
    assert.equal(
      fourth.type === 'receipt' && !fourth.ok && fourth.code,
      ErrorCodes.NPY_UNSUPPORTED_DTYPE,
    );
    peer.send(new Uint8Array(raw.buffer, 0, 1200));
    assert.equal((await peer.receipt(4)).type === 'receipt', true);

    assert.equal(frames.length, 3);
    assert.deepEqual([...(frames[0] as ReceivedFrame).points], [...raw]);
    assert.equal(frames[0]?.form, 'plain-raw');
    assert.equal(frames[1]?.form, 'plain-npy');
    assert.equal(frames[1]?.pointCount, 1000);
    assert.equal(frames[1]?.points[2999], 2999 * 0.5 - 100);
    assert.equal(server.stats().totals.framesRejected, 2);
  },
);

void test(
  'malformed chunks get receipts with stable codes; an unreadable chunk closes only its own session',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const peer = new RawPeer(PROTOCOL_V1);
    t.after(() => peer.close());
    await peer.connect(`${server.url}/offer`, 'sdp');
    // A well-behaved client streams in parallel the whole time; it must not notice anything.
    const bystander = await connect({ signalingUrl: `${server.url}/offer`, rtc });
    t.after(() => bystander.close());

    const scratch = Buffer.alloc(65_536);
    const sendFrame = (
      seq: number,
      points: Float32Array,
      corrupt?: (chunk: Buffer, index: number) => void,
    ): void => {
      const frame = prepareFrame(points, seq, Date.now(), 65_536, crc32);
      for (let i = 0; i < frame.chunkCount; i++) {
        const chunk = Buffer.from(writeChunk(frame, i, scratch));
        corrupt?.(chunk, i);
        peer.send(chunk);
      }
    };
    const points = taggedPoints(30_000, 1);
    const bystanderReceipts: Promise<unknown>[] = [];
    const expectReceipt = async (seq: number, code: string | undefined): Promise<void> => {
      bystanderReceipts.push((await bystander.send(taggedPoints(10_000, 2))).receipt);
      const receipt = await peer.receipt(seq);
      assert.equal(receipt.type, 'receipt');
      if (receipt.type !== 'receipt') return;
      assert.equal(receipt.ok ? undefined : receipt.code, code, `frame ${seq}`);
    };

    sendFrame(0, points);
    await expectReceipt(0, undefined);
    sendFrame(1, points, (chunk, i) => i === 3 && (chunk[100] = (chunk[100] as number) ^ 0xff));
    await expectReceipt(1, ErrorCodes.FRAME_CHECKSUM);
    sendFrame(2, points, (chunk, i) => i === 2 && chunk.writeUInt32LE(5, 8));
    await expectReceipt(2, ErrorCodes.CHUNK_OUT_OF_ORDER);
    sendFrame(3, points, (chunk, i) => i === 0 && chunk.writeUInt32LE(999_999, 16));
    await expectReceipt(3, ErrorCodes.FRAME_LENGTH_MISMATCH);
    sendFrame(4, points, (chunk, i) => i === 0 && chunk.writeUInt32LE(200_000_000, 12));
    await expectReceipt(4, ErrorCodes.FRAME_TOO_LARGE);
    const nan = taggedPoints(30_000, 1);
    nan[4242] = Number.NaN;
    sendFrame(5, nan);
    await expectReceipt(5, ErrorCodes.FRAME_NON_FINITE);
    sendFrame(5, points);
    await peer.waitForMessage(
      (m) => m.type === 'receipt' && m.seq === 5 && !m.ok && m.code === ErrorCodes.FRAME_DUPLICATE,
      10_000,
    );
    sendFrame(7, points);
    await expectReceipt(7, undefined);

    // A chunk whose header cannot be read: the session is closed with a reason.
    const closed = server.next('sessionClosed', { timeoutMs: 10_000 });
    peer.send(Buffer.from([9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]));
    const closing = await peer.waitForMessage((m) => m.type === 'closing', 10_000);
    assert.equal(closing.type === 'closing' && closing.code, ErrorCodes.CHUNK_BAD_VERSION);
    const end = await closed;
    assert.equal(end.code, ErrorCodes.CHUNK_BAD_VERSION);
    await waitFor(() => peer.closed, 10_000, 'the channel to close');

    // The bystander got every receipt, all ok, and can still send.
    const receipts = (await Promise.all([
      ...bystanderReceipts,
      (await bystander.send(taggedPoints(10_000, 2))).receipt,
    ])) as { ok: boolean }[];
    assert.equal(receipts.length, 8);
    assert.ok(receipts.every((r) => r.ok));
    assert.equal(server.stats().sessions.length, 1);
  },
);

void test(
  'a channel with an unknown protocol is refused with a reason',
  { timeout: 30_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const peer = new RawPeer('mystery/9');
    t.after(() => peer.close());
    await assert.rejects(
      peer.connect(`${server.url}/offer`, 'sdp'),
      /closed before the expected message/,
    );
    const closing = peer.messages.find((m) => m.type === 'closing');
    assert.equal(closing?.type === 'closing' && closing.code, ErrorCodes.PROTOCOL_UNSUPPORTED);
  },
);

void test(
  'four concurrent clients: every frame reaches the right session, in order, intact',
  { timeout: 120_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const bySession = new Map<string, ReceivedFrame[]>();
    server.on('frame', (frame) => {
      const list = bySession.get(frame.sessionId) ?? [];
      // Copy: the frame's buffer belongs to the server after the listener returns.
      list.push({ ...frame, points: frame.points.slice(0, 6) });
      bySession.set(frame.sessionId, list);
    });
    const clients = await Promise.all(
      [0, 1, 2, 3].map(() => connect({ signalingUrl: `${server.url}/offer`, rtc })),
    );
    t.after(() => Promise.all(clients.map((c) => c.close())));
    const framesEach = 6;
    await Promise.all(
      clients.map(async (client, c) => {
        for (let k = 0; k < framesEach; k++) {
          const sent = await client.send(taggedPoints(150_000, c * 1000 + k));
          void sent.receipt;
        }
        await client.flush();
      }),
    );
    assert.equal(bySession.size, 4);
    for (const [c, client] of clients.entries()) {
      const frames = bySession.get(client.sessionId as string) ?? [];
      assert.deepEqual(
        frames.map((f) => f.seq),
        [0, 1, 2, 3, 4, 5],
      );
      for (const [k, frame] of frames.entries()) {
        assert.equal(frame.pointCount, 150_000);
        assert.equal(Math.floor(frame.points[0] as number), c * 1000 + k, `client ${c} frame ${k}`);
      }
    }
    assert.equal(server.stats().totals.framesReceived, 4 * framesEach);
  },
);

void test(
  '50 sequential connections all open, stream a frame and are released',
  { timeout: 180_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    let opened = 0;
    const points = taggedPoints(1000, 5);
    for (let i = 0; i < 50; i++) {
      const client = await connect({
        signalingUrl: `${server.url}/offer`,
        rtc,
        connectTimeoutMs: 10_000,
      });
      opened++;
      const receipt = await (await client.send(points)).receipt;
      assert.equal(receipt.ok, true);
      await client.close();
    }
    assert.equal(opened, 50);
    await waitFor(
      () => server.stats().sessions.length === 0,
      10_000,
      'all sessions to be released',
    );
    assert.equal(server.stats().totals.sessionsClosed, 50);
  },
);

void test(
  'a client that vanishes (SIGKILL) has its session released',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({ limits: { idleTimeoutMs: 4000 } });
    t.after(() => server.close());
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('./fixtures/clients/vanishing-client.ts', import.meta.url)),
        `${server.url}/offer`,
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    t.after(() => child.kill('SIGKILL'));
    const line = await new Promise<string>((resolve) =>
      createInterface({ input: child.stdout }).once('line', resolve),
    );
    const { session } = JSON.parse(line) as { session: string };
    assert.equal(server.stats().sessions[0]?.id, session);
    const closed = server.next('sessionClosed', { timeoutMs: 30_000 });
    child.kill('SIGKILL');
    const end = await closed;
    assert.equal(end.stats.id, session);
    assert.equal(end.stats.framesReceived, 1);
    assert.ok(
      [ErrorCodes.SESSION_CLOSED, ErrorCodes.CONNECTION_FAILED].includes(end.code as never),
      end.code,
    );
    assert.equal(server.stats().sessions.length, 0);
  },
);
