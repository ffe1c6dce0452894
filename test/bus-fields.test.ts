/**
 * Per-point fields through a real nats-server (issue 18): frames with fields published by the
 * node's own publisher (`BusSession.publish`, given frames shaped as the server's ReceivedFrame),
 * consumed by `consume()` with every field equal, bit for bit; a bad `Ps-Fields` counted invalid
 * while the frames around it pass; and `pointstream consume --record` writing structured `.npy`
 * files that NumPy (python3-numpy) reads with every named column equal.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { jetstream } from '@nats-io/jetstream';
import { connect, headers } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { consume } from '../src/bus/consumer.js';
import type { ConsumedFrame, Consumer } from '../src/bus/consumer.js';
import { BusHeader, chunkHeaders, frameSubject } from '../src/bus/layout.js';
import type { BusFrameMeta } from '../src/bus/layout.js';
import { BusPublisher } from '../src/bus/publisher.js';
import type { BusFrame, BusSession } from '../src/bus/publisher.js';
import type { ManifestEntry } from '../src/server/recorder.js';
import { PointEncodingId, decodePoints, encodePoints } from '../src/wire/encodings/index.js';
import {
  FieldCodec,
  NO_FIELDS,
  columnOffsets,
  fieldTypeOf,
  payloadBytesOf,
} from '../src/wire/fields.js';
import type { FieldArray, FieldTable, PointFields } from '../src/wire/fields.js';
import { CLI, waitFor } from './helpers.js';
import { NatsServer, natsUnavailable } from './support/nats.js';

const skip = natsUnavailable();
const SESSION_START = 1_764_700_000_000;

function lcg(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => (state = (state * 1_664_525 + 1_013_904_223) >>> 0) / 0x1_0000_0000;
}

/** A LiDAR-like frame: intensity f32 (one a NaN), ring u16, time f64. */
function cloud(count: number, seed: number): { points: Float32Array; fields: PointFields } {
  const next = lcg(seed);
  const points = new Float32Array(count * 3).map(() => next() * 100 - 50);
  const intensity = new Float32Array(count).map(() => next());
  intensity[0] = Number.NaN;
  const ring = new Uint16Array(count).map((_, i) => (i * 7 + seed) % 128);
  const time = new Float64Array(count).map((_, i) => 1_764_700_000 + seed + i * 1e-7);
  return { points, fields: { intensity, ring, time } };
}

/**
 * A verified frame as the server hands it over (ReceivedFrame's contract): the payload in the
 * protocol's layout, `npy`/`encoded` its points part, raw fields as views into it.
 */
function frameOf(
  seq: number,
  count: number,
  encoding: 'raw' | 'q16' = 'raw',
): BusFrame & { fields: PointFields; payload: Uint8Array; fieldTable: FieldTable } {
  const { points, fields } = cloud(count, seq);
  const part = encodePoints(points, encoding).bytes;
  const table: FieldTable = {
    pointsBytes: part.length,
    columns: Object.entries(fields).map(([name, values]) => ({
      name,
      type: fieldTypeOf(values) ?? 'u8',
      codec: FieldCodec.RAW,
      param: 0,
      byteLength: values.byteLength,
    })),
  };
  const payload = new Uint8Array(payloadBytesOf(table));
  payload.set(part);
  const offsets = columnOffsets(table);
  Object.values(fields).forEach((values, i) =>
    payload.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), offsets[i]),
  );
  return {
    seq,
    pointCount: count,
    points: encoding === 'raw' ? points : decodePoints(part, PointEncodingId.Q16, count, undefined),
    encoding,
    npy: encoding === 'raw' ? payload.subarray(0, part.length) : undefined,
    encoded: encoding === 'raw' ? undefined : payload.subarray(0, part.length),
    crc32: crc32(payload),
    captureTime: SESSION_START + seq * 250,
    receivedAt: SESSION_START + seq * 250 + 20,
    fields,
    fieldTable: table,
    payload,
  };
}

const bytesOf = (values: ArrayBufferView): Buffer =>
  Buffer.from(values.buffer, values.byteOffset, values.byteLength);

async function take(consumer: Consumer, count: number): Promise<ConsumedFrame[]> {
  const frames: ConsumedFrame[] = [];
  const deadline = setTimeout(() => void consumer.close(), 30_000);
  try {
    for await (const frame of consumer) {
      frames.push(frame);
      if (frames.length === count) break;
    }
  } finally {
    clearTimeout(deadline);
  }
  return frames;
}

void describe('bus: frames with fields (real nats-server)', { skip, timeout: 180_000 }, () => {
  let nats: NatsServer;
  let publisher: BusPublisher;
  let nc: NatsConnection;
  const opened: Consumer[] = [];
  const dirs: string[] = [];

  function sessionOf(session: string, stream: string): BusSession {
    return publisher.session({ session, stream, tenant: 'public', sessionStart: SESSION_START });
  }

  before(async () => {
    nats = await NatsServer.start();
    publisher = await BusPublisher.connect({ url: nats.url, nodeId: 'node-a' });
    nc = await connect({ servers: nats.url });
  });

  after(async () => {
    await Promise.all(opened.map((consumer) => consumer.close()));
    await nc?.close();
    await publisher?.close();
    await nats?.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  void it('publishes frames with fields and consumes them with every field equal', async () => {
    const bus = sessionOf('f1', 'lidar');
    // 250,000 points: 3 MB of points and 3.5 MB of fields, 7 parts.
    const sent = [frameOf(0, 250_000), frameOf(1, 1000, 'q16')];
    for (const frame of sent) await bus.publish(frame);
    const withFields = frameOf(2, 1000);
    const plain: BusFrame = {
      ...withFields,
      fieldTable: undefined,
      payload: undefined,
      crc32: crc32(withFields.npy as Uint8Array),
    };
    await bus.publish(plain);
    const consumer = consume({ bus: nats.url, stream: 'lidar', durable: 'fields' });
    opened.push(consumer);
    const got = await take(consumer, 3);
    assert.equal(got.length, 3, JSON.stringify(consumer.stats()));
    for (const [i, frame] of sent.entries()) {
      const received = got[i];
      assert.ok(received);
      assert.equal(received.seq, frame.seq);
      assert.deepEqual(received.fieldTable, frame.fieldTable);
      assert.ok(bytesOf(received.payload as Uint8Array).equals(bytesOf(frame.payload)));
      assert.equal(received.byteLength, frame.payload.length);
      assert.ok(bytesOf(received.points).equals(bytesOf(frame.points)), 'points');
      assert.deepEqual(Object.keys(received.fields), ['intensity', 'ring', 'time']);
      for (const [name, values] of Object.entries(frame.fields)) {
        const field: FieldArray | undefined = received.fields[name];
        assert.ok(field, name);
        assert.equal(fieldTypeOf(field), fieldTypeOf(values), name);
        assert.ok(bytesOf(field).equals(bytesOf(values)), `${name} bit for bit`);
        // Raw columns: views into the payload, not copies.
        assert.equal(field.buffer, received.payload?.buffer, `${name} is a view`);
      }
      // npy / encoded: the points part, as for a frame without fields.
      const part = received.npy ?? received.encoded;
      assert.equal(part?.length, frame.fieldTable.pointsBytes);
    }
    assert.equal(got[0]?.encoding, 'raw');
    assert.equal(got[1]?.encoding, 'q16');
    const none = got[2];
    assert.ok(none);
    assert.equal(none.fields, NO_FIELDS);
    assert.equal(none.fieldTable, undefined);
    assert.equal(none.payload, undefined);
    assert.ok(bytesOf(none.npy as Uint8Array).equals(bytesOf(plain.npy as Uint8Array)));
    assert.equal(consumer.stats().messagesInvalid, 0);
    await consumer.close();
  });

  void it('counts a frame with a bad Ps-Fields invalid, and delivers the frames around it', async () => {
    const bus = sessionOf('f2', 'bad');
    await bus.publish(frameOf(0, 100));
    const js = jetstream(nc);
    const publishAt = async (index: number, change: (meta: BusFrameMeta) => [string, string][]) => {
      const frame = frameOf(index, 100);
      const meta: BusFrameMeta = {
        stream: 'bad',
        session: 'f2',
        sessionStart: SESSION_START,
        node: 'node-a',
        seq: index,
        index,
        bytes: frame.payload.length,
        crc32: frame.crc32 ?? 0,
        encoding: 'npy',
        points: 100,
        captureTime: undefined,
        receivedAt: SESSION_START,
        fieldTable: frame.fieldTable,
      };
      const h = headers();
      for (const [name, value] of change(meta)) h.set(name, value);
      await js.publish(frameSubject('public', 'bad'), frame.payload, { headers: h });
    };
    // Not base64; a table of another payload size; a points part that is not the .npy it says.
    await publishAt(1, (meta) =>
      chunkHeaders(meta, 0).map(([k, v]) => [k, k === BusHeader.FIELDS ? 'x!' : v]),
    );
    await publishAt(2, (meta) =>
      chunkHeaders(
        { ...meta, fieldTable: { ...(meta.fieldTable as FieldTable), pointsBytes: 8 } },
        0,
      ),
    );
    await publishAt(3, (meta) => {
      const table = meta.fieldTable as FieldTable;
      // 4 bytes less of points: the columns stay where they were (8-aligned) and the table
      // checks out, but the points part is no longer the whole .npy it starts with.
      assert.equal(table.pointsBytes % 8, 0);
      return chunkHeaders(
        { ...meta, fieldTable: { ...table, pointsBytes: table.pointsBytes - 4 } },
        0,
      );
    });
    // The session's next frame, good.
    await publishAt(4, (meta) => chunkHeaders(meta, 0));
    const consumer = consume({ bus: nats.url, stream: 'bad', durable: 'bad-fields' });
    opened.push(consumer);
    // Read before any frame is acknowledged: acks write positions, whose errors set lastError too.
    await waitFor(
      () => consumer.stats().messagesInvalid === 3 && consumer.stats().framesQueued === 2,
      20_000,
      () => JSON.stringify(consumer.stats()),
    );
    assert.match(consumer.stats().lastError ?? '', /\.npy of 1324 bytes with 100 rows/);
    const got = await take(consumer, 2);
    assert.deepEqual(
      got.map((frame) => frame.seq),
      [0, 4],
    );
    await consumer.close();
  });

  void it('consume --record writes structured .npy files that numpy.load reads with named columns equal', async () => {
    const bus = sessionOf('f3', 'rec');
    const sent = [frameOf(0, 200_000), frameOf(1, 5000, 'q16')];
    for (const frame of sent) await bus.publish(frame);
    const dir = mkdtempSync(join(tmpdir(), 'ps-consume-fields-'));
    dirs.push(dir);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', CLI, 'consume', '--bus', nats.url, '--stream', 'rec', '--record', dir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      await waitFor(
        () => (stderr.match(/frame verified/g) ?? []).length === 2,
        60_000,
        () => `2 frames:\n${stderr}`,
      );
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /"fields":\["intensity","ring","time"\]/);
    const [stream] = readdirSync(dir);
    assert.equal(stream, 'rec');
    const [folder] = readdirSync(join(dir, 'rec'));
    const session = join(dir, 'rec', folder as string);
    const manifest = readFileSync(join(session, 'manifest.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as ManifestEntry);
    assert.deepEqual(
      manifest.map((entry) => [entry.seq, entry.encoding, entry.fields]),
      [0, 1].map((seq) => [
        seq,
        seq === 0 ? 'raw' : 'q16',
        [
          { name: 'intensity', dtype: '<f4' },
          { name: 'ring', dtype: '<u2' },
          { name: 'time', dtype: '<f8' },
        ],
      ]),
    );
    for (const frame of sent) {
      const expected = mkdtempSync(join(tmpdir(), 'ps-expected-'));
      dirs.push(expected);
      writeFileSync(join(expected, 'xyz'), bytesOf(frame.points));
      for (const [name, values] of Object.entries(frame.fields))
        writeFileSync(join(expected, name), bytesOf(values));
      const script = `import json, os, sys, numpy as np
a = np.load(sys.argv[1])
xyz = np.stack([a['x'], a['y'], a['z']], 1)
same = {n: (xyz if n == 'xyz' else a[n]).tobytes() == open(os.path.join(sys.argv[2], n), 'rb').read()
        for n in os.listdir(sys.argv[2])}
print(json.dumps({'names': list(a.dtype.names), 'rows': len(a), 'same': same}))`;
      const file = join(session, `${String(frame.seq).padStart(12, '0')}.npy`);
      const result = JSON.parse(
        execFileSync('python3', ['-c', script, file, expected], { encoding: 'utf8' }),
      ) as { names: string[]; rows: number; same: Record<string, boolean> };
      assert.deepEqual(result, {
        names: ['x', 'y', 'z', 'intensity', 'ring', 'time'],
        rows: frame.pointCount,
        same: { xyz: true, intensity: true, ring: true, time: true },
      });
    }
  });
});
