/**
 * Per-point fields end to end over real WebRTC (node-datachannel on loopback): `connect()` sends
 * 200k points with intensity (f32), ring (u16) and time (f64) as raw, q16 and qrice frames, and the
 * server's `frame.fields` hold what was sent (raw columns as views of the payload).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { ErrorCodes, connect } from '../src/index.js';
import type { PointstreamError, ReceivedFrame } from '../src/index.js';
import type { FieldArray, PointFields } from '../src/wire/fields.js';
import { LOOPBACK, findPython, startServer, waitFor } from './helpers.js';

const rtc = { bindAddress: LOOPBACK };
const N = 200_000;

function scan(n: number): { points: Float32Array; fields: PointFields } {
  const points = new Float32Array(n * 3);
  const intensity = new Float32Array(n);
  const ring = new Uint16Array(n);
  const time = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const ringIndex = i % 64;
    const azimuth = (Math.floor(i / 64) / (n / 64)) * 2 * Math.PI;
    const range = 5 + 20 * Math.abs(Math.sin(i / 977));
    points[i * 3] = range * Math.cos(azimuth);
    points[i * 3 + 1] = range * Math.sin(azimuth);
    points[i * 3 + 2] = (ringIndex - 32) * 0.05 * range;
    intensity[i] = Math.fround(Math.abs(Math.sin(i / 31)) * 100);
    ring[i] = ringIndex;
    time[i] = 1_795_654_393.25 + i * 5e-7;
  }
  return { points, fields: { intensity, ring, time } };
}

const bytesOf = (values: FieldArray): Buffer =>
  Buffer.from(values.buffer, values.byteOffset, values.byteLength);

void test(
  'fields arrive bit-exact over WebRTC: raw (as views), q16, qrice; within fieldPrecision when lossy',
  { timeout: 120_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const frames: ReceivedFrame[] = [];
    server.on('frame', (frame) => {
      // Checked after the listeners: keep the buffers (no reuse here, but as a consumer would).
      frame.retain();
      frames.push(frame);
    });
    const { points, fields } = scan(N);
    for (const encoding of ['raw', 'q16', 'qrice'] as const) {
      const client = await connect({ signalingUrl: `${server.url}/offer`, rtc, encoding });
      t.after(() => client.close());
      const sent = await client.send(points, { fields });
      const receipt = await sent.receipt;
      assert.equal(receipt.ok, true, JSON.stringify(receipt));
      assert.deepEqual(sent.fieldMaxErrors, { intensity: 0, ring: 0, time: 0 });
      await waitFor(() => frames.length === 1, 5000, 'the frame on the server');
      const frame = frames.pop() as ReceivedFrame;
      assert.equal(frame.encoding, encoding);
      assert.equal(frame.pointCount, N);
      assert.deepEqual(Object.keys(frame.fields), ['intensity', 'ring', 'time']);
      for (const [name, values] of Object.entries(fields)) {
        const got = frame.fields[name] as FieldArray;
        assert.equal(got.constructor, values.constructor, name);
        assert.ok(bytesOf(got).equals(bytesOf(values)), `${encoding} ${name} not bit-exact`);
      }
      const payload = frame.payload as Uint8Array;
      assert.equal(payload.length, frame.byteLength);
      if (encoding === 'raw') {
        assert.ok(frame.fields.intensity?.buffer === frame.points.buffer, 'intensity is a view');
        assert.ok(frame.fields.time?.buffer === payload.buffer);
        assert.ok(bytesOf(frame.points).equals(bytesOf(points)));
        assert.equal(frame.npy?.length, frame.fieldTable?.pointsBytes);
      } else {
        assert.equal(frame.encoded?.length, frame.fieldTable?.pointsBytes);
      }
      await client.close();
    }

    // Lossy float fields: every value within the bound the sender reports (0 while columns
    // travel raw; the codec's bound once they are coded).
    const client = await connect({
      signalingUrl: `${server.url}/offer`,
      rtc,
      encoding: 'qrice',
      fieldPrecision: { intensity: 0.01, time: 1e-6 },
    });
    t.after(() => client.close());
    const sent = await client.send(points, { fields });
    assert.equal((await sent.receipt).ok, true);
    const bounds = sent.fieldMaxErrors ?? {};
    assert.ok((bounds.intensity ?? Infinity) <= 0.01);
    assert.ok((bounds.time ?? Infinity) <= 1e-6);
    assert.equal(bounds.ring, 0);
    await waitFor(() => frames.length === 1, 5000, 'the frame on the server');
    const frame = frames.pop() as ReceivedFrame;
    assert.ok(bytesOf(frame.fields.ring as FieldArray).equals(bytesOf(fields.ring as FieldArray)));
    for (const name of ['intensity', 'time']) {
      const sentValues = fields[name] as FieldArray;
      const got = frame.fields[name] as FieldArray;
      let worst = 0;
      for (let i = 0; i < N; i++)
        worst = Math.max(worst, Math.abs((got[i] as number) - (sentValues[i] as number)));
      assert.ok(worst <= (bounds[name] as number), `${name}: ${worst} > ${bounds[name]}`);
    }
    await client.close();
  },
);

void test(
  'the client refuses bad fields before sending anything (PS_ERR_FIELDS_INVALID)',
  { timeout: 30_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    let frames = 0;
    server.on('frame', () => frames++);
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc });
    t.after(() => client.close());
    const points = new Float32Array(30);
    await assert.rejects(
      client.send(points, { fields: { intensity: new Float32Array(9) } }),
      (error: PointstreamError) => error.code === ErrorCodes.FIELDS_INVALID,
    );
    const sent = await client.send(points, { fields: { intensity: new Float32Array(10) } });
    assert.equal((await sent.receipt).ok, true);
    assert.equal(frames, 1);
    assert.equal(sent.seq, 0, 'the refused frame took no sequence number');
  },
);

void test(
  'live frames over HTTP: a frame with fields is served as the structured .npy NumPy reads back',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const n = 1000;
    const { points, fields } = scan(n);
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc, stream: 'live-f' });
    t.after(() => client.close());
    const sent = await client.send(points, { fields });
    assert.equal((await sent.receipt).ok, true);
    const response = await fetch(`${server.url}/streams/live-f/latest`);
    assert.equal(response.status, 200);
    const npy = Buffer.from(await response.arrayBuffer());
    // NumPy reads it: named columns equal what was sent, bit for bit.
    const script = `import hashlib, io, sys, numpy as np
a = np.load(io.BytesIO(sys.stdin.buffer.read()), allow_pickle=False)
print(a.dtype.descr)
for name in a.dtype.names:
    column = np.ascontiguousarray(a[name]).tobytes()
    print(name, len(a[name]), hashlib.sha256(column).hexdigest())`;
    const out = execFileSync(findPython('numpy'), ['-c', script], { input: npy, encoding: 'utf8' });
    const [descr, ...columns] = out.trim().split('\n');
    assert.equal(
      descr,
      "[('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('intensity', '<f4'), ('ring', '<u2'), ('time', '<f8')]",
    );
    const xyz = (axis: number): Float32Array =>
      Float32Array.from({ length: n }, (_, i) => points[i * 3 + axis] as number);
    const expected: [string, FieldArray][] = [
      ['x', xyz(0)],
      ['y', xyz(1)],
      ['z', xyz(2)],
      ...Object.entries(fields),
    ];
    assert.deepEqual(
      columns,
      expected.map(
        ([name, values]) =>
          `${name} ${n} ${createHash('sha256').update(bytesOf(values)).digest('hex')}`,
      ),
    );
  },
);
