import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { ErrorCodes, connect } from '../src/index.js';
import type { SessionEnd } from '../src/index.js';
import { DecodeBudget, DecodePool } from '../src/server/decode-pool.js';
import { LidarSceneSource } from '../src/sources/lidar.js';
import { PROTOCOL_V1 } from '../src/wire/chunk.js';
import { encodePoints } from '../src/wire/encodings/index.js';
import type { EncodedPoints } from '../src/wire/encodings/index.js';
import { prepareEncodedFrame, writeChunk } from '../src/wire/frame.js';
import { LOOPBACK, RawPeer, startServer, waitFor } from './helpers.js';

const rtc = { bindAddress: LOOPBACK };
const MESSAGE_BYTES = 16 * 1024;
/** The attack of issue 14: 5M identical points are 2.17 MB of qrice and ~200 ms of decoding. */
const ATTACK_POINTS = 5_000_000;
const ATTACK_MS = 5_000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends `encoded` as frame after frame (seq 0, 1, ...) as fast as the channel drains, for `ms`. */
async function flood(peer: RawPeer, encoded: EncodedPoints, ms: number): Promise<number> {
  const scratch = new Uint8Array(MESSAGE_BYTES);
  const end = performance.now() + ms;
  let seq = 0;
  while (performance.now() < end && !peer.closed) {
    const frame = prepareEncodedFrame(encoded, seq++, Date.now(), MESSAGE_BYTES, crc32);
    for (let i = 0; i < frame.chunkCount && !peer.closed; i++) {
      while (!peer.closed && peer.dc.bufferedAmount() > 4 * 1024 * 1024) await sleep(2);
      try {
        peer.send(writeChunk(frame, i, scratch));
      } catch {
        return seq; // closed by the server
      }
    }
  }
  return seq;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

void test(
  'a decode-heavy client (qrice, 5M identical points per frame) does not starve /healthz or other sessions',
  { timeout: 90_000 },
  async (t) => {
    // The memory shares (a session may hold 128 MiB: two of these frames decoded) would refuse the
    // flood first, with PS_ERR_SERVER_MEMORY; lift them so that the decode budget is what bounds it.
    const server = await startServer({
      limits: { maxSessionReassemblyBytes: 1 << 30, maxClientReassemblyBytes: 1 << 30 },
    });
    t.after(() => server.close());
    const ends: SessionEnd[] = [];
    server.on('sessionClosed', (end) => ends.push(end));
    const encoded = encodePoints(new Float32Array(ATTACK_POINTS * 3).fill(1.5), 'qrice');
    assert.ok(encoded.bytes.length < 2.5e6);

    // Made before the clock starts: the scene generator is the test's own synchronous work.
    const points = new LidarSceneSource(20_000).next().slice();
    const attacker = new RawPeer(PROTOCOL_V1);
    t.after(() => attacker.close());
    await attacker.connect(`${server.url}/offer`, 'json');
    const attack = flood(attacker, encoded, ATTACK_MS);

    // /healthz, polled every 50 ms from a fresh request each time, while the attack runs.
    const latencies: number[] = [];
    const poll = (async () => {
      const end = performance.now() + ATTACK_MS;
      while (performance.now() < end) {
        const started = performance.now();
        const response = await fetch(`${server.url}/healthz`);
        assert.equal(response.status, 200);
        await response.json();
        latencies.push(performance.now() - started);
        await sleep(50);
      }
    })();

    // A legitimate client meanwhile: offer, a raw frame and a qrice frame, each with a receipt.
    await sleep(1_000);
    for (const encoding of ['raw', 'qrice'] as const) {
      const client = await connect({ signalingUrl: `${server.url}/offer`, rtc, encoding });
      const receipt = await (await client.send(points)).receipt;
      await client.close();
      assert.equal(receipt.ok, true, `${encoding}: ${JSON.stringify(receipt)}`);
    }

    const [sent] = await Promise.all([attack, poll]);
    const p99 = percentile(latencies, 99);
    t.diagnostic(
      `attacker frames sent ${sent}; /healthz samples ${latencies.length}, p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms`,
    );
    assert.ok(
      latencies.length >= 40,
      `only ${latencies.length} /healthz answers in ${ATTACK_MS} ms`,
    );
    assert.ok(p99 < 200, `/healthz p99 ${p99.toFixed(1)} ms under a decode-heavy client`);

    // The attacker was refused over budget, counted, and its session closed for it.
    const codes: Record<string, number> = {};
    for (const m of attacker.messages)
      if (m.type === 'receipt')
        codes[m.ok ? 'ok' : (m.code as string)] =
          (codes[m.ok ? 'ok' : (m.code as string)] ?? 0) + 1;
    t.diagnostic(`attacker receipts ${JSON.stringify(codes)}`);
    const refused = attacker.messages.filter(
      (m) => m.type === 'receipt' && !m.ok && m.code === ErrorCodes.DECODE_BUDGET,
    ).length;
    assert.ok(refused > 0, 'no frame was refused for the decode budget');
    await waitFor(
      () => ends.some((end) => end.code === ErrorCodes.DECODE_BUDGET),
      15_000,
      'the attacker session to be closed for its decode budget',
    );
    const stats = server.stats();
    t.diagnostic(
      `decode stats ${JSON.stringify(stats.decode)}; attacker receipts refused ${refused}`,
    );
    assert.equal(stats.decode.workers >= 1, true);
    assert.ok(stats.decode.framesOverBudget >= refused);
    assert.equal(stats.decode.sessionsClosedOverBudget, 1);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const overBudget = /^pointstream_decode_frames_over_budget_total (\d+)$/m.exec(metrics);
    assert.ok(overBudget && Number(overBudget[1]) === stats.decode.framesOverBudget, metrics);
    assert.match(metrics, /^pointstream_decode_sessions_closed_total 1$/m);
  },
);

void test(
  'receipts stay in sequence when raw frames complete while an encoded one is decoding',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({ reuseFrameBuffers: true });
    t.after(() => server.close());
    const peer = new RawPeer(PROTOCOL_V1);
    t.after(() => peer.close());
    await peer.connect(`${server.url}/offer`, 'json');
    // seq 0: slow to decode (1M identical points), seq 1 and 2: small raw frames right after.
    const slow = encodePoints(new Float32Array(1_000_000 * 3).fill(2), 'qrice');
    const fast = encodePoints(new LidarSceneSource(1000).next().slice(), 'raw');
    const scratch = new Uint8Array(MESSAGE_BYTES);
    const frames = [slow, fast, fast].map((encoded, seq) =>
      prepareEncodedFrame(encoded, seq, Date.now(), MESSAGE_BYTES, crc32),
    );
    for (const frame of frames)
      for (let i = 0; i < frame.chunkCount; i++) peer.send(writeChunk(frame, i, scratch).slice());
    await peer.receipt(2);
    const order = peer.messages.flatMap((m) => (m.type === 'receipt' ? [[m.seq, m.ok]] : []));
    assert.deepEqual(order, [
      [0, true],
      [1, true],
      [2, true],
    ]);
  },
);

void test('DecodeBudget: worker ms per second charged in advance, a queue bound, and strikes', () => {
  const budget = new DecodeBudget(500, 2, 0);
  // Nothing measured yet: the first frame is charged once decoded.
  assert.equal(budget.admit(1_000_000, 0), 0);
  budget.charge(300, 0, 1_000_000);
  // 300 ms per 1M points: charged in advance, so a second such frame and a third cannot both pass.
  assert.equal(budget.admit(1_000_000, 0), 300);
  assert.match(String(budget.admit(1_000_000, 0)), /decode budget spent: 600 ms used/);
  assert.equal(typeof budget.admit(10, 300), 'number');
  assert.match(String(budget.admit(10, 300)), /2 frames already wait/);
  budget.charge(250, 300, 1_000_000);
  budget.charge(0.003, 0.003, 10);
  assert.equal(budget.strikes, 2);
  // A full bucket (one idle second and more) forgives past refusals.
  assert.equal(typeof budget.admit(10, 2_000), 'number');
  assert.equal(budget.strikes, 0);
  assert.equal(budget.overBudget, 2);
  assert.equal(Math.round(budget.decodeMs), 550);
});

void test(
  'DecodePool: payloads go to a worker and come back with the points; owners take turns',
  { timeout: 30_000 },
  async (t) => {
    const pool = new DecodePool(1);
    t.after(() => pool.close());
    const points = new LidarSceneSource(50_000).next().slice();
    const encoded = encodePoints(points, 'qrice');
    const order: string[] = [];
    const jobs = ['a1', 'a2', 'a3', 'a4', 'b1'].map(
      (name) =>
        new Promise<void>((resolve, reject) => {
          const payload = encoded.bytes.slice();
          pool.decode(
            (name[0] as string) === 'a' ? order : pool,
            payload,
            encoded.encoding,
            50_000,
            5_000_000,
            (error, decoded, back) => {
              try {
                assert.equal(error, undefined);
                assert.equal(decoded?.length, points.length);
                // Transferred, not copied: the sender's view is detached, the same bytes come back.
                assert.equal(payload.byteLength, 0);
                assert.deepEqual(back, encoded.bytes);
                order.push(name);
                resolve();
              } catch (failure) {
                reject(failure instanceof Error ? failure : new Error(String(failure)));
              }
            },
          );
        }),
    );
    assert.equal(pool.queued, 5);
    await Promise.all(jobs);
    // a1 was running and a2 next in line when b1 came; then b1 goes before a's rest.
    assert.deepEqual(order, ['a1', 'a2', 'b1', 'a3', 'a4']);
    assert.equal(pool.framesDecoded, 5);
    const corrupt = encoded.bytes.slice(0, encoded.bytes.length - 10);
    const error = await new Promise<unknown>((resolve) =>
      pool.decode(pool, corrupt, encoded.encoding, 50_000, 5_000_000, (e) => resolve(e)),
    );
    assert.equal((error as { code?: string }).code, ErrorCodes.ENCODING_CORRUPT);
  },
);
