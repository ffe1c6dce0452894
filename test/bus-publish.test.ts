/**
 * `createServer({ bus })` and `serve --bus` against a real nats-server (Debian's 2.9.10, started
 * here on 127.0.0.1 with a temporary store) and real WebRTC clients. What is on the bus is read
 * back with a plain `@nats-io/jetstream` ordered consumer, independent of src/bus's consumer: every
 * frame with an `ok` receipt must be there, complete and intact (headers, parts, CRC, the bytes
 * the server received). Then the faults: a bus down at start (library and CLI), a stream with
 * unusable settings, and a bus stopped and restarted mid-stream.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import { BusHeader, subjectTokenOf } from '../src/bus/layout.js';
import { ErrorCodes, connect } from '../src/index.js';
import type {
  FrameReceipt,
  PointstreamClient,
  PointstreamError,
  ReceivedFrame,
} from '../src/index.js';
import type { PointEncodingName } from '../src/wire/encodings/index.js';
import { decodePoints, pointEncodingIdOf } from '../src/wire/encodings/index.js';
import { CLI, LOOPBACK, runCli, startServer, waitFor } from './helpers.js';
import { NatsServer, natsUnavailable } from './support/nats.js';

const rtc = { bindAddress: LOOPBACK };
const STREAM = 'PS_FRAMES';

/** A frame as read back from the bus: its first part's headers, its subject, its payload. */
interface BusRecord {
  readonly subject: string;
  readonly header: Record<string, string>;
  readonly bytes: Buffer;
  readonly parts: number;
  /** Every part there, every byte, and the CRC-32 matches. */
  readonly complete: boolean;
}

/**
 * Every frame in the stream, read with an ordered consumer and put together by `Nats-Msg-Id`;
 * throws on anything inconsistent (parts out of order, headers that differ between parts). A frame
 * cut mid-publish (its node or the bus died) is returned `complete: false`.
 */
async function readBus(url: string, stream = STREAM): Promise<Map<string, BusRecord>> {
  const nc = await natsConnect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const total = (await jsm.streams.info(stream)).state.messages;
    const frames = new Map<
      string,
      { subject: string; header: Record<string, string>; chunks: Buffer[] }
    >();
    if (total === 0) return new Map();
    const consumer = await jetstream(nc).consumers.get(stream);
    const messages = await consumer.fetch({ max_messages: total, expires: 10_000 });
    let seen = 0;
    for await (const m of messages) {
      const header: Record<string, string> = {};
      for (const [name, values] of m.headers ?? []) header[name] = values[0] ?? '';
      const [session, seq, part] = (header['Nats-Msg-Id'] ?? '').split(':');
      const key = `${session}:${seq}`;
      const entry = frames.get(key) ?? { subject: m.subject, header, chunks: [] };
      assert.equal(Number(part), entry.chunks.length, `${key}: parts in order`);
      assert.equal(Number(header[BusHeader.PART]), entry.chunks.length);
      for (const name of [BusHeader.CRC32, BusHeader.BYTES, BusHeader.PARTS, BusHeader.SEQ])
        assert.equal(header[name], entry.header[name], `${key}: ${name} alike in every part`);
      assert.equal(m.subject, entry.subject);
      entry.chunks.push(Buffer.from(m.data));
      frames.set(key, entry);
      if (++seen === total) break;
    }
    assert.equal(seen, total, 'every message of the stream read');
    const records = new Map<string, BusRecord>();
    for (const [key, { subject, header, chunks }] of frames) {
      const bytes = Buffer.concat(chunks);
      const complete =
        chunks.length === Number(header[BusHeader.PARTS]) &&
        bytes.length === Number(header[BusHeader.BYTES]) &&
        crc32(bytes) === Number(header[BusHeader.CRC32]);
      records.set(key, { subject, header, bytes, parts: chunks.length, complete });
    }
    return records;
  } finally {
    await nc.close();
  }
}

/** Points that differ per frame, in a range every encoding carries. */
function pointsOf(count: number, seed: number): Float32Array {
  const points = new Float32Array(count * 3);
  for (let i = 0; i < points.length; i++) points[i] = Math.fround(Math.sin(i * 0.37 + seed) * 50);
  return points;
}

/** The payload a frame was received as, copied (the server may reuse buffers). */
const payloadOf = (frame: ReceivedFrame): Buffer =>
  Buffer.from((frame.npy ?? frame.encoded) as Uint8Array);

/** Sends `count` frames, two in flight at most, and returns their receipts in order. */
async function sendFrames(
  client: PointstreamClient,
  count: number,
  points: number,
  seed = 0,
): Promise<FrameReceipt[]> {
  const receipts: Promise<FrameReceipt>[] = [];
  for (let i = 0; i < count; i++) {
    const sent = await client.send(pointsOf(points, seed + i), { captureTime: Date.now() });
    receipts.push(sent.receipt);
  }
  return Promise.all(receipts);
}

const skip = natsUnavailable();

void describe(
  'serve --bus: every acknowledged frame on the bus',
  { skip, timeout: 120_000 },
  () => {
    let nats: NatsServer;
    before(async () => {
      nats = await NatsServer.start();
    });
    after(async () => {
      await nats?.close();
    });

    void it('publishes raw, q16 and qrice frames as received, with their headers', async (t) => {
      const server = await startServer({ bus: { url: nats.url, nodeId: 'node-a' } });
      t.after(() => server.close());
      const received = new Map<string, { frame: ReceivedFrame; payload: Buffer }>();
      server.on('frame', (frame) =>
        received.set(`${frame.sessionId}:${frame.seq}`, { frame, payload: payloadOf(frame) }),
      );
      const sent = new Map<string, { encoding: PointEncodingName; points: Float32Array }>();
      const clients: [string, PointEncodingName, number][] = [
        ['cam.front', 'raw', 300_000],
        ['cam-q16', 'q16', 200_000],
        ['cam_qrice', 'qrice', 200_000],
      ];
      const oks: string[] = [];
      for (const [stream, encoding, points] of clients) {
        const client = await connect({
          signalingUrl: `${server.url}/offer`,
          rtc,
          stream,
          encoding,
        });
        t.after(() => client.close());
        const receipts = await sendFrames(client, 4, points, oks.length);
        for (const receipt of receipts) {
          assert.equal(receipt.ok, true, JSON.stringify(receipt));
          const key = `${client.sessionId}:${receipt.seq}`;
          oks.push(key);
          sent.set(key, { encoding, points: pointsOf(points, oks.length - 1) });
        }
      }
      const bus = await readBus(nats.url);
      assert.deepEqual([...bus.keys()].sort(), [...oks].sort(), 'exactly the acknowledged frames');
      const indexes = new Map<string, number[]>();
      for (const key of oks) {
        const record = bus.get(key) as BusRecord;
        assert.ok(record.complete, `${key}: every part, every byte, the CRC-32`);
        const { frame, payload } = received.get(key) ?? assert.fail(`${key} not received`);
        const h = record.header;
        assert.ok(record.bytes.equals(payload), `${key}: the bytes the server received`);
        assert.equal(Number(h[BusHeader.CRC32]), frame.crc32, "the client's CRC");
        assert.equal(h[BusHeader.STREAM], frame.stream);
        assert.equal(record.subject, `ps.frames.public.${subjectTokenOf(frame.stream)}`);
        assert.equal(h[BusHeader.SESSION], frame.sessionId);
        assert.equal(h[BusHeader.NODE], 'node-a');
        assert.equal(h[BusHeader.SEQ], String(frame.seq));
        assert.equal(h[BusHeader.POINTS], String(frame.pointCount));
        assert.equal(h[BusHeader.ENCODING], frame.encoding === 'raw' ? 'npy' : frame.encoding);
        assert.equal(h[BusHeader.CAPTURE_TIME], String(frame.captureTime));
        assert.equal(h[BusHeader.RECEIVED_AT], String(frame.receivedAt));
        assert.equal(h[BusHeader.VERSION], '1');
        assert.equal(h[BusHeader.CHUNK], String(1024 * 1024));
        assert.match(h[BusHeader.SESSION_START] ?? '', /^\d{13}$/);
        assert.equal(record.parts, Math.ceil(payload.length / (1024 * 1024)));
        const list = indexes.get(frame.sessionId) ?? [];
        list.push(Number(h[BusHeader.INDEX]));
        indexes.set(frame.sessionId, list);
        // What a consumer decodes is what the client sent (within the encoding's precision).
        const { encoding, points } = sent.get(key) ?? assert.fail();
        const decoded = decodePoints(record.bytes, pointEncodingIdOf[encoding], frame.pointCount, {
          maxPoints: frame.pointCount,
        });
        let worst = 0;
        for (let i = 0; i < points.length; i++)
          worst = Math.max(worst, Math.abs((decoded[i] ?? NaN) - (points[i] ?? NaN)));
        assert.ok(worst <= (encoding === 'raw' ? 0 : 0.0011), `${key}: decoded within ${worst}`);
      }
      assert.equal(bus.get(oks[0] as string)?.parts, 4, 'a 3.6 MB raw frame in 4 chunks');
      for (const list of indexes.values()) assert.deepEqual(list.sort(), [0, 1, 2, 3], 'Ps-Index');
      const stats = server.stats().bus;
      assert.equal(stats?.connected, true);
      assert.equal(stats?.framesPublished, 12);
      assert.equal(stats?.framesFailed, 0);
      assert.equal(stats?.pendingAcks, 0);
      assert.equal(stats?.stream, STREAM);
      assert.equal(
        stats?.bytesPublished,
        [...received.values()].reduce((n, r) => n + r.payload.length, 0),
      );
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(metrics, /^pointstream_bus_frames_published_total 12$/m);
      assert.match(metrics, /^pointstream_bus_connected 1$/m);
    });

    void it('refuses a stream with settings frames cannot use, and leaves it as it was', async () => {
      const nc = await natsConnect({ servers: nats.url });
      try {
        const jsm = await jetstreamManager(nc);
        await jsm.streams.add({ name: 'NARROW', subjects: ['other.>'], max_msg_size: 1000 });
        await assert.rejects(
          startServer({ bus: { url: nats.url, streamName: 'NARROW' } }),
          (error: PointstreamError) =>
            error.code === ErrorCodes.BUS_STREAM_MISMATCH &&
            /do not cover ps\.frames\.>/.test(error.message) &&
            /max_msg_size 1000/.test(error.message),
        );
        // Explicit limits that differ from the existing stream's are refused too.
        await assert.rejects(
          startServer({ bus: { url: nats.url, maxAgeMs: 5_000 } }),
          (error: PointstreamError) =>
            error.code === ErrorCodes.BUS_STREAM_MISMATCH &&
            /max age \(ms\) is 60000, not 5000/.test(error.message),
        );
        const narrow = await jsm.streams.info('NARROW');
        assert.deepEqual(narrow.config.subjects, ['other.>'], 'never changed');
        assert.equal(narrow.config.max_msg_size, 1000);
        // Another stream holding ps.frames.> already: this one cannot be created.
        await assert.rejects(
          startServer({ bus: { url: nats.url, streamName: 'SECOND' } }),
          (error: PointstreamError) => error.code === ErrorCodes.BUS_STREAM_MISMATCH,
        );
        const cli = await runCli(
          ['serve', '--host', LOOPBACK, '--port', '0', '--bus', nats.url, '--bus-stream', 'NARROW'],
          {},
          30_000,
        );
        assert.equal(cli.code, 5, cli.stderr);
        assert.match(
          cli.stderr,
          /^pointstream: cannot start the server: PS_ERR_BUS_STREAM_MISMATCH: /,
        );
      } finally {
        await nc.close();
      }
    });

    void it('serve --bus creates the stream with the limits given', async (t) => {
      // A bus of its own: its stream's subjects would overlap PS_FRAMES's.
      const own = await NatsServer.start();
      t.after(() => own.close());
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          CLI,
          'serve',
          '--host',
          LOOPBACK,
          '--port',
          '0',
          '--bus-stream',
          'CLI_FRAMES',
          '--bus-max-age',
          '30',
          '--bus-max-bytes',
          '100000000',
          '--bus-discard',
          'new',
          '--log-format',
          'json',
        ],
        {
          stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
          env: { ...process.env, POINTSTREAM_BUS: own.url, POINTSTREAM_NODE_ID: 'from-env' },
        },
      );
      let output = '';
      child.stdout?.on('data', (data: Buffer) => (output += data.toString()));
      child.stderr?.on('data', (data: Buffer) => (output += data.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      try {
        await waitFor(
          () =>
            /"event":"ready"/.test(output) || child.exitCode !== null || child.signalCode !== null,
          30_000,
          'ready',
        );
        assert.match(output, /"event":"bus-connected"/);
        assert.match(output, /"node":"from-env"/);
        const nc = await natsConnect({ servers: own.url });
        try {
          const { config } = await (await jetstreamManager(nc)).streams.info('CLI_FRAMES');
          assert.deepEqual(
            [config.subjects, config.max_age, config.max_bytes, config.discard, config.storage],
            [['ps.frames.>'], 30e9, 100_000_000, 'new', 'file'],
          );
        } finally {
          await nc.close();
        }
      } finally {
        child.kill('SIGTERM');
        assert.equal(await exited, 0, output);
      }
    });
  },
);

void describe('serve --bus: a bus that is down', { skip, timeout: 120_000 }, () => {
  void it('refuses to start when the bus cannot be reached (library and CLI)', async () => {
    const nats = await NatsServer.start();
    const url = nats.url;
    await nats.close(); // the port is free now: nothing answers there
    await assert.rejects(
      startServer({ bus: { url } }),
      (error: PointstreamError) =>
        error.code === ErrorCodes.BUS_UNAVAILABLE && error.message.includes(url),
    );
    const cli = await runCli(
      ['serve', '--host', LOOPBACK, '--port', '0', '--bus', url],
      {},
      30_000,
    );
    assert.equal(cli.code, 3, cli.stderr);
    const lines = cli.stderr.trim().split('\n');
    assert.equal(lines.length, 1, cli.stderr);
    assert.match(
      lines[0] ?? '',
      /^pointstream: cannot start the server: PS_ERR_BUS_UNAVAILABLE: cannot reach the bus at /,
    );
    const usage = await runCli(['serve', '--port', '0', '--node-id', 'x'], {}, 30_000);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--node-id needs --bus/);
  });

  void it('a bus lost mid-stream fails receipts, shows in /stats and /metrics; when back, frames flow again', async (t) => {
    const nats = await NatsServer.start();
    t.after(() => nats.close());
    const server = await startServer({ bus: { url: nats.url, nodeId: 'node-b' } });
    t.after(() => server.close());
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc, stream: 'lidar' });
    t.after(() => client.close());
    const receipts: FrameReceipt[] = [];
    let phase: 'before' | 'outage' | 'after' = 'before';
    const phases = new Map<number, string>();
    let seed = 0;
    const pump = async (until: () => boolean): Promise<void> => {
      const pending: Promise<void>[] = [];
      while (!until()) {
        const sent = await client.send(pointsOf(100_000, seed++), { captureTime: Date.now() });
        phases.set(sent.seq, phase);
        pending.push(sent.receipt.then((receipt) => void receipts.push(receipt)));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await Promise.all(pending);
    };
    const oks = (): FrameReceipt[] => receipts.filter((r) => r.ok);
    const failed = (): FrameReceipt[] => receipts.filter((r) => !r.ok);
    await pump(() => oks().length >= 5);

    phase = 'outage';
    await nats.stop('SIGKILL');
    await pump(() => failed().length >= 5);
    for (const receipt of failed())
      assert.equal(receipt.ok === false && receipt.code, ErrorCodes.BUS_UNAVAILABLE);
    const down = server.stats();
    assert.equal(down.bus?.connected, false);
    assert.ok((down.bus?.framesFailed ?? 0) >= 5);
    assert.match(down.bus?.lastError ?? '', /bus/);
    assert.equal(down.sessions.length, 1, 'the session stays up');
    assert.ok(down.totals.framesRejected >= 5, 'failed frames count as rejected');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^pointstream_bus_connected 0$/m);
    assert.match(metrics, /^pointstream_bus_frames_failed_total [1-9]\d*$/m);
    assert.match(
      metrics,
      /^pointstream_frames_rejected_total\{code="PS_ERR_BUS_UNAVAILABLE"\} [1-9]/m,
    );

    await nats.start();
    await waitFor(() => server.stats().bus?.connected === true, 15_000, 'the bus back');
    phase = 'after';
    const before = oks().length;
    await pump(() => oks().length >= before + 5);
    assert.equal(server.stats().sessions.length, 1, 'the same session carried on');
    // Receipts answered in order, each once.
    const seqs = receipts.map((r) => r.seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
    );
    assert.equal(new Set(seqs).size, seqs.length);

    const bus = await readBus(nats.url);
    const session = client.sessionId as string;
    for (const receipt of oks())
      assert.equal(
        bus.get(`${session}:${receipt.seq}`)?.complete,
        true,
        `frame ${receipt.seq} (ok) is on the bus, complete and intact`,
      );
    for (const receipt of receipts)
      if (phases.get(receipt.seq) === 'outage')
        assert.equal(receipt.ok, false, 'no ok in the outage');
    assert.ok(
      oks().some((r) => phases.get(r.seq) === 'after'),
      'frames acknowledged after the bus came back',
    );
    const stats = server.stats().bus;
    assert.equal(stats?.framesPublished, oks().length);
    assert.equal(stats?.framesFailed, failed().length);
    assert.equal(stats?.pendingAcks, 0);
  });

  void it('without a bus nothing of it shows', async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    assert.equal(server.stats().bus, undefined);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.doesNotMatch(metrics, /pointstream_bus_/);
  });
});
