/**
 * consume() and `pointstream consume` against a real nats-server. Frames are published here with
 * the layout's `chunkHeaders` and @nats-io/jetstream directly (not the server's publisher), as
 * an ingest node in another language would.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { connect, headers } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { DiscardPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { consume as openConsumer } from '../src/bus/consumer.js';
import type { ConsumeOptions, ConsumedFrame, Consumer } from '../src/bus/consumer.js';
import {
  BUS_CHUNK_BYTES,
  DEFAULT_BUS_STREAM,
  chunkHeaders,
  frameSubject,
  partRange,
  partsOf,
} from '../src/bus/layout.js';
import type { BusEncoding, BusFrameMeta } from '../src/bus/layout.js';
import { ErrorCodes, PointstreamError } from '../src/errors.js';
import { FrameRecorder, sessionFolder } from '../src/server/recorder.js';
import type { ReceivedFrame } from '../src/server/types.js';
import { silentLogger } from '../src/util/logger.js';
import { PointEncodingId, decodePoints, encodePoints } from '../src/wire/encodings/index.js';
import { NatsServer, natsUnavailable } from './support/nats.js';
import { CLI, waitFor } from './helpers.js';
import { NO_FIELDS } from '../src/wire/fields.js';

const skip = natsUnavailable();

/** Every consumer a test opens, closed after the suite even when a test fails. */
const opened: Consumer[] = [];
function consume(options: ConsumeOptions): Consumer {
  const consumer = openConsumer(options);
  opened.push(consumer);
  return consumer;
}

interface Published {
  readonly meta: BusFrameMeta;
  readonly payload: Uint8Array;
}

function randomPoints(count: number, seed: number): Float32Array {
  const points = new Float32Array(count * 3);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < points.length; i++) {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    points[i] = (state / 0x1_0000_0000) * 200 - 100;
  }
  return points;
}

const ENCODING_OF = { npy: 'raw', q16: 'q16', qrice: 'qrice' } as const;

/** One frame of `points` points as an ingest node would carry it. */
function frameOf(
  session: string,
  index: number,
  options: { stream?: string; encoding?: BusEncoding; points?: number; seq?: number } = {},
): Published {
  const encoding = options.encoding ?? 'npy';
  const count = options.points ?? 1000;
  const payload = encodePoints(randomPoints(count, index + 7), ENCODING_OF[encoding]).bytes;
  return {
    payload,
    meta: {
      stream: options.stream ?? 'cam',
      session,
      sessionStart: 1_764_700_000_000,
      node: 'node-a',
      seq: options.seq ?? index * 3 + 1,
      index,
      bytes: payload.length,
      crc32: crc32(payload),
      encoding,
      points: count,
      captureTime: 1_764_700_000_000 + index * 250,
      receivedAt: 1_764_700_000_010 + index * 250,
    },
  };
}

async function publishParts(
  js: JetStreamClient,
  frame: Published,
  parts?: readonly number[],
  chunkBytes = BUS_CHUNK_BYTES,
): Promise<void> {
  const subject = frameSubject('public', frame.meta.stream);
  const all = Array.from({ length: partsOf(frame.meta.bytes, chunkBytes) }, (_, part) => part);
  await Promise.all(
    (parts ?? all).map((part) => {
      const h = headers();
      for (const [name, value] of chunkHeaders(frame.meta, part, chunkBytes)) h.set(name, value);
      const [start, end] = partRange(frame.meta.bytes, part, chunkBytes);
      return js.publish(subject, frame.payload.subarray(start, end), { headers: h });
    }),
  );
}

/** A raw message on a frame subject: whatever headers a test gives. */
async function publishRaw(
  js: JetStreamClient,
  pairs: [string, string][],
  body: Uint8Array,
  subject = frameSubject('public', 'cam'),
): Promise<void> {
  const h = headers();
  for (const [name, value] of pairs) h.set(name, value);
  await js.publish(subject, body, { headers: pairs.length === 0 ? undefined : h });
}

async function take(
  consumer: Consumer,
  count: number,
  timeoutMs = 20_000,
): Promise<ConsumedFrame[]> {
  const frames: ConsumedFrame[] = [];
  const iterator = consumer[Symbol.asyncIterator]();
  const deadline = setTimeout(() => void consumer.close(), timeoutMs);
  try {
    while (frames.length < count) {
      const next = await iterator.next();
      if (next.done === true) break;
      frames.push(next.value);
    }
  } finally {
    clearTimeout(deadline);
  }
  return frames;
}

function expectedPoints(frame: Published): Float32Array {
  const id = {
    npy: PointEncodingId.RAW_NPY,
    q16: PointEncodingId.Q16,
    qrice: PointEncodingId.QRICE,
  };
  return decodePoints(frame.payload, id[frame.meta.encoding], frame.meta.points);
}

void describe('consume (real nats-server)', { skip, timeout: 180_000 }, () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;

  /** A fresh frames stream (PS_FRAMES on ps.frames.>) with these limits. */
  async function freshStream(limits: { max_msgs?: number } = {}): Promise<void> {
    await jsm.streams.delete(DEFAULT_BUS_STREAM).catch(() => undefined);
    await jsm.streams.add({
      name: DEFAULT_BUS_STREAM,
      subjects: ['ps.frames.>'],
      max_msg_size: BUS_CHUNK_BYTES + 4096,
      discard: DiscardPolicy.Old,
      ...limits,
    });
  }

  before(async () => {
    nats = await NatsServer.start();
    nc = await connect({ servers: nats.url });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
  });

  after(async () => {
    await Promise.all(opened.map((consumer) => consumer.close()));
    await nc?.close();
    await nats?.close();
  });

  void it('reassembles and decodes npy, q16 and qrice frames bit-exact, CRC checked', async () => {
    await freshStream();
    const frames = [
      frameOf('s1', 0, { encoding: 'npy', points: 250_000 }), // 3 MB: 3 parts
      frameOf('s1', 1, { encoding: 'q16', points: 250_000 }),
      frameOf('s1', 2, { encoding: 'qrice', points: 250_000 }),
    ];
    for (const frame of frames) await publishParts(js, frame);
    const consumer = consume({ bus: nats.url, stream: 'cam', durable: 'exact' });
    await consumer.ready();
    const got = await take(consumer, 3);
    assert.equal(got.length, 3);
    for (const [i, frame] of frames.entries()) {
      const received = got[i];
      assert.ok(received);
      assert.equal(received.index, frame.meta.index);
      assert.equal(received.seq, frame.meta.seq);
      assert.equal(received.crc32, frame.meta.crc32);
      assert.equal(received.pointCount, frame.meta.points);
      assert.equal(received.encoding, ENCODING_OF[frame.meta.encoding]);
      assert.deepEqual(received.npy ?? received.encoded, frame.payload);
      assert.deepEqual(
        new Uint8Array(
          received.points.buffer,
          received.points.byteOffset,
          received.points.byteLength,
        ),
        new Uint8Array(expectedPoints(frame).buffer),
      );
    }
    assert.deepEqual(got[0]?.points, randomPoints(250_000, 7)); // raw: exactly the points sent
    const stats = consumer.stats();
    assert.equal(stats.framesDelivered, 3);
    assert.equal(stats.messagesInvalid, 0);
    assert.equal(stats.framesMissed, 0);
    await consumer.close();
  });

  void it('resumes a durable consumer after a restart without loss or repeat, gaps counted exactly', async () => {
    await freshStream();
    for (let i = 0; i < 10; i++) await publishParts(js, frameOf('s2', i));
    const first = consume({ bus: nats.url, stream: 'cam', durable: 'resume' });
    const a = await take(first, 4);
    // The 4th frame was handed out but not acknowledged: close() gives it back to the bus.
    await first.close();
    assert.deepEqual(
      a.map((f) => f.index),
      [0, 1, 2, 3],
    );
    for (let i = 10; i < 14; i++) await publishParts(js, frameOf('s2', i));
    const second = consume({ bus: nats.url, stream: 'cam', durable: 'resume' });
    const b = await take(second, 14 - 3);
    // Exactly once each (JetStream may redeliver the given-back frames after newer ones).
    const indices = [...a.slice(0, 3), ...b].map((f) => f.index).sort((x, y) => x - y);
    assert.deepEqual(
      indices,
      Array.from({ length: 14 }, (_, i) => i),
    );
    assert.equal(second.stats().framesMissed, 0);
    await second.close();
  });

  void it('reports exactly how many frames it missed behind a stream with small limits', async () => {
    await freshStream({ max_msgs: 10 });
    for (let i = 0; i < 3; i++) await publishParts(js, frameOf('s3', i));
    const first = consume({ bus: nats.url, stream: 'cam', durable: 'behind' });
    const seen = await take(first, 3);
    assert.equal(seen.length, 3);
    seen[2]?.ack(); // done with all three
    await first.close();
    // While it is away, 20 more one-part frames: the stream keeps the last 10.
    for (let i = 3; i < 23; i++) await publishParts(js, frameOf('s3', i));
    const second = consume({ bus: nats.url, stream: 'cam', durable: 'behind' });
    const got = await take(second, 10);
    assert.deepEqual(
      got.map((f) => f.index),
      Array.from({ length: 10 }, (_, i) => 13 + i),
    );
    assert.equal(second.stats().framesMissed, 10);
    await second.close();
    // A new consumer reading from the start: a session first seen at 13 missed 13.
    const fresh = consume({ bus: nats.url, stream: 'cam', durable: 'fresh' });
    await take(fresh, 10);
    assert.equal(fresh.stats().framesMissed, 13);
    await fresh.close();
  });

  void it('a reader that pauses while the stream drops old frames reports exactly the missed count', async () => {
    await freshStream({ max_msgs: 50 });
    const consumer = consume({ bus: nats.url, stream: 'cam', durable: 'paused' });
    await consumer.ready();
    // The reader takes nothing: the consumer fetches until 64 frames wait for it, the stream
    // keeps the newest 50 of the rest and drops the others.
    for (let i = 0; i < 300; i++) await publishParts(js, frameOf('s8', i, { points: 10 }));
    try {
      await waitFor(() => consumer.stats().framesQueued === 64, 10_000, '64 frames queued');
    } catch (error) {
      await consumer.close();
      throw new Error(`${(error as Error).message}: ${JSON.stringify(consumer.stats())}`);
    }
    const got = await take(consumer, 64 + 50);
    assert.equal(got.length, 114);
    assert.deepEqual(
      got.map((f) => f.index),
      [
        ...Array.from({ length: 64 }, (_, i) => i),
        ...Array.from({ length: 50 }, (_, i) => 250 + i),
      ],
    );
    assert.equal(consumer.stats().framesMissed, 300 - 64 - 50);
    await consumer.close();
  });

  void it('never delivers a frame whose parts stop, and counts it incomplete', async () => {
    await freshStream();
    const cut = frameOf('s4', 0, { points: 250_000 }); // 3 parts
    await publishParts(js, cut, [0, 1]);
    await publishParts(js, frameOf('s4', 1));
    const stalled = frameOf('s5', 0, { points: 250_000 });
    await publishParts(js, stalled, [0]);
    const consumer = consume({
      bus: nats.url,
      stream: 'cam',
      durable: 'cut',
      reassembly: { frameStallMs: 300 },
    });
    const got = await take(consumer, 1);
    assert.deepEqual(
      got.map((f) => [f.session, f.index]),
      [['s4', 1]],
    );
    got[0]?.ack(); // a frame held unacknowledged would stop the stall clock (parts held back)
    await waitFor(
      () => consumer.stats().framesIncomplete === 2,
      10_000,
      'the stalled frame given up',
    );
    assert.equal(consumer.stats().framesInAssembly, 0);
    assert.equal(consumer.stats().framesDelivered, 1);
    await consumer.close();
  });

  void it('survives hostile messages within its caps, and a good frame after them arrives', async () => {
    await freshStream();
    const good = frameOf('good', 0);
    // No Nats-Msg-Id: JetStream would keep only the first of messages sharing one.
    const base = chunkHeaders(frameOf('h', 0).meta, 0).filter(([key]) => key !== 'Nats-Msg-Id');
    const withHeader = (name: string, value: string | undefined): [string, string][] => {
      const pairs = base.filter(([key]) => key !== name);
      if (value !== undefined) pairs.push([name, value]);
      return pairs;
    };
    const body = frameOf('h', 0).payload;
    let invalid = 0;
    await publishRaw(js, [], new Uint8Array(10)); // no headers
    await publishRaw(
      js,
      [
        ['Ps-V', 'x'],
        ['Garbage', '%%% ~~~'],
      ],
      new Uint8Array(10),
    );
    await publishRaw(js, withHeader('Ps-Bytes', '999999999999'), body); // over the caps
    await publishRaw(js, withHeader('Ps-Parts', '2'), body);
    await publishRaw(js, base, body.subarray(0, body.length - 1)); // wrong body size
    await publishRaw(js, withHeader('Ps-Stream', 'other'), body); // subject disagrees
    await publishRaw(js, withHeader('Ps-Session', '../..'), body);
    invalid += 7;
    // Wrong CRC: complete, never delivered.
    const corrupt = frameOf('bad', 0);
    await publishParts(js, {
      ...corrupt,
      meta: { ...corrupt.meta, crc32: corrupt.meta.crc32 ^ 1 },
    });
    invalid += 1;
    // Interleaved parts of two good frames: both arrive.
    const x = frameOf('ix', 0, { points: 250_000 });
    const y = frameOf('iy', 0, { points: 250_000 });
    for (let part = 0; part < 3; part++) {
      await publishParts(js, x, [part]);
      await publishParts(js, y, [part]);
    }
    // A flood of first parts of different frames, each claiming 60 MiB.
    for (let i = 0; i < 40; i++) {
      const flood = frameOf(`flood${i}`, 0);
      const meta = { ...flood.meta, bytes: 60 * 1024 * 1024 };
      await publishRaw(js, chunkHeaders(meta, 0), new Uint8Array(BUS_CHUNK_BYTES));
    }
    await publishParts(js, good);

    const consumer = consume({ bus: nats.url, stream: 'cam', durable: 'hostile' });
    let maxHeld = 0;
    const watch = setInterval(() => {
      maxHeld = Math.max(maxHeld, consumer.stats().bytesInAssembly);
    }, 1);
    const got = await take(consumer, 3);
    clearInterval(watch);
    assert.deepEqual(got.map((f) => f.session).sort(), ['good', 'ix', 'iy']);
    const stats = consumer.stats();
    assert.equal(stats.messagesInvalid, invalid, stats.lastError);
    assert.ok(stats.bytesInAssembly <= 256 * 1024 * 1024);
    assert.ok(maxHeld <= 256 * 1024 * 1024, `held ${maxHeld}`);
    assert.ok(stats.framesInAssembly <= 8);
    assert.equal(stats.framesIncomplete + stats.framesInAssembly, 40);
    assert.ok(process.memoryUsage().rss < 1.5 * 1024 ** 3);
    await consumer.close();
  });

  void it('--latest hands a slow reader the newest complete frame and counts the skipped ones', async () => {
    await freshStream();
    const consumer = consume({ bus: nats.url, stream: 'cam', latest: true });
    await consumer.ready();
    for (let i = 0; i < 6; i++) await publishParts(js, frameOf('s6', i));
    await waitFor(() => consumer.stats().framesSkipped === 5, 10_000, 'frames skipped');
    const [newest] = await take(consumer, 1);
    assert.equal(newest?.index, 5);
    assert.equal(consumer.stats().framesQueued, 0);
    assert.equal(consumer.stats().framesMissed, 0);
    await consumer.close();
  });

  void it('goes on after nats-server is killed and restarted, with every frame delivered once', async () => {
    await freshStream();
    const consumer = consume({ bus: nats.url, stream: 'cam', durable: 'outage' });
    await consumer.ready();
    for (let i = 0; i < 3; i++) await publishParts(js, frameOf('s9', i, { points: 100_000 }));
    const before = await take(consumer, 3);
    before[2]?.ack();
    await nats.stop('SIGKILL');
    await waitFor(() => !consumer.stats().connected, 10_000, 'the consumer to see the bus gone');
    await nats.start();
    // The test's own connection reconnects too: its publishes fail until then.
    for (let i = 3; i < 6; i++) {
      for (let attempt = 0; ; attempt++) {
        try {
          await publishParts(js, frameOf('s9', i, { points: 100_000 }));
          break;
        } catch (error) {
          if (attempt > 50) throw error;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    }
    const after = await take(consumer, 3, 30_000);
    assert.deepEqual(
      [...before, ...after].map((f) => f.index),
      [0, 1, 2, 3, 4, 5],
    );
    assert.equal(consumer.stats().framesMissed, 0);
    assert.equal(consumer.stats().connected, true);
    await consumer.close();
  });

  void it('reports PS_ERR_BUS_UNAVAILABLE when the bus cannot be reached at start', async () => {
    const consumer = consume({ bus: 'nats://127.0.0.1:1', connectTimeoutMs: 1000 });
    await assert.rejects(consumer.ready(), (error: unknown) => {
      assert.ok(error instanceof PointstreamError);
      assert.equal(error.code, ErrorCodes.BUS_UNAVAILABLE);
      return true;
    });
    await assert.rejects(consumer.next(), /cannot reach the bus/);
    await consumer.close();
  });

  void it('pointstream consume --record writes what FrameRecorder writes for the same frames', async () => {
    await freshStream();
    const frames = [
      frameOf('s7', 0, { encoding: 'npy', points: 100_000 }),
      frameOf('s7', 1, { encoding: 'q16', points: 100_000 }),
      frameOf('s7', 2, { encoding: 'qrice', points: 100_000 }),
    ];
    for (const frame of frames) await publishParts(js, frame);
    const dir = mkdtempSync(join(tmpdir(), 'ps-consume-'));
    const expected = mkdtempSync(join(tmpdir(), 'ps-consume-expected-'));
    try {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          CLI,
          'consume',
          '--bus',
          nats.url,
          '--stream',
          'cam',
          '--record',
          dir,
          '--json',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
      child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      try {
        await waitFor(
          () => (stderr.match(/"frame verified"/g) ?? []).length === 3,
          30_000,
          () => `3 frames:\n${stderr}`,
        );
      } finally {
        child.kill('SIGINT');
      }
      assert.equal(await exited, 0, stderr);
      const summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<
        string,
        unknown
      >;
      assert.equal(summary.framesDelivered, 3);
      assert.equal(summary.framesMissed, 0);
      assert.equal((summary.recording as { framesRecorded: number }).framesRecorded, 3);

      const recorder = new FrameRecorder({ dir: expected }, silentLogger);
      for (const frame of frames) {
        const { meta, payload } = frame;
        const received: ReceivedFrame = {
          sessionId: meta.session,
          stream: meta.stream,
          seq: meta.seq,
          pointCount: meta.points,
          points: expectedPoints(frame),
          fields: NO_FIELDS,
          fieldTable: undefined,
          payload: undefined,
          form: 'chunked',
          encoding: ENCODING_OF[meta.encoding],
          npy: meta.encoding === 'npy' ? payload : undefined,
          encoded: meta.encoding === 'npy' ? undefined : payload,
          byteLength: payload.length,
          captureTime: meta.captureTime,
          receivedAt: meta.receivedAt,
          crc32: meta.crc32,
          assemblyMs: 0,
          retain: () => () => undefined,
        };
        recorder.record(received, sessionFolder(meta.stream, meta.session, meta.sessionStart));
      }
      await recorder.flush();
      assert.deepEqual(treeOf(dir), treeOf(expected));
      assert.equal(Object.keys(treeOf(dir)).length, 4); // 3 .npy + manifest.jsonl
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(expected, { recursive: true, force: true });
    }
  });

  void it('pointstream consume exits with the bus code when the bus is down at start', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', CLI, 'consume', '--bus', 'nats://127.0.0.1:1', '--json'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 3);
    assert.equal(
      (JSON.parse(stdout.trim()) as { errorCode: string }).errorCode,
      ErrorCodes.BUS_UNAVAILABLE,
    );
  });
});

/** Every file under `dir` by relative path, with its bytes as hex (small enough here). */
function treeOf(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (path: string): void => {
    for (const name of readdirSync(path)) {
      const full = join(path, name);
      if (statSync(full).isDirectory()) walk(full);
      else files[relative(dir, full)] = readFileSync(full).toString('base64');
    }
  };
  walk(dir);
  return files;
}
