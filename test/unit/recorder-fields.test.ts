/**
 * Recording frames with fields (issue 18): the structured `.npy` the recorder writes is read back
 * by NumPy itself (python3-numpy) with every column equal, bit for bit; the manifest lists the
 * fields; frames without fields are written exactly as before.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FrameRecorder, heldBytesOf, sessionFolder } from '../../src/server/recorder.js';
import type { ManifestEntry, RecordableFrame } from '../../src/server/recorder.js';
import { RECORD_SLICE_BYTES, structuredNpyOf } from '../../src/server/record-npy.js';
import { silentLogger } from '../../src/util/logger.js';
import { FieldCodec, columnOffsets, payloadBytesOf } from '../../src/wire/fields.js';
import type { FieldTable, PointFields } from '../../src/wire/fields.js';
import { encodeNpyHeader } from '../../src/wire/npy.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ps-rec-fields-'));
  dirs.push(dir);
  return dir;
}

function lcg(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => (state = (state * 1_664_525 + 1_013_904_223) >>> 0) / 0x1_0000_0000;
}

/** Points and LiDAR-like fields, with the values that copies by value would spoil. */
function sample(count: number): { points: Float32Array; fields: PointFields } {
  const next = lcg(count);
  const points = new Float32Array(count * 3).map(() => next() * 200 - 100);
  const intensity = new Float32Array(count).map(() => next());
  const ring = new Uint16Array(count).map((_, i) => i % 128);
  const time = new Float64Array(count).map((_, i) => 1_764_700_000 + i * 1e-7);
  const red = new Uint8Array(count).map((_, i) => i * 7);
  const offset = new Int32Array(count).map((_, i) => -i);
  // A signalling NaN, -0, infinities: the file must hold the bits sent.
  new Uint32Array(intensity.buffer)[1] = 0x7fa0_0001;
  intensity[2] = -0;
  time[3] = Number.POSITIVE_INFINITY;
  return { points, fields: { intensity, ring, time, red, offset } };
}

/** Fields laid out in a payload as the protocol does: points part, then 8-aligned columns. */
function frameOf(
  seq: number,
  count: number,
  options: { lossy?: boolean } = {},
): RecordableFrame & { readonly fields: PointFields } {
  const { points, fields } = sample(count);
  const npy = new Uint8Array(128 + count * 12);
  npy.set(encodeNpyHeader([count, 3]));
  npy.set(new Uint8Array(points.buffer), 128);
  const table: FieldTable = {
    pointsBytes: npy.length,
    columns: Object.entries(fields).map(([name, values]) => ({
      name,
      type: ({ intensity: 'f32', ring: 'u16', time: 'f64', red: 'u8', offset: 'i32' } as const)[
        name as 'ring'
      ],
      codec:
        options.lossy === true && name === 'intensity' ? FieldCodec.QUANT_RICE : FieldCodec.RAW,
      param: options.lossy === true && name === 'intensity' ? 0.01 : 0,
      byteLength: values.byteLength,
    })),
  };
  const payload = new Uint8Array(payloadBytesOf(table));
  payload.set(npy);
  const offsets = columnOffsets(table);
  Object.values(fields).forEach((values, i) =>
    payload.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), offsets[i]),
  );
  return {
    stream: 'lidar',
    sessionId: 'sess',
    seq,
    pointCount: count,
    points,
    form: 'chunked',
    encoding: 'raw',
    npy,
    encoded: undefined,
    captureTime: 1_764_700_000_000,
    receivedAt: 1_764_700_000_050,
    crc32: 1234,
    retain: () => () => undefined,
    fields,
    fieldTable: table,
    payload,
  };
}

/** NumPy's view of a structured .npy: dtype, shape, and each column's bytes vs files of them. */
function numpyCheck(file: string, columns: Record<string, Uint8Array>): unknown {
  const dir = tempDir();
  for (const [name, bytes] of Object.entries(columns)) writeFileSync(join(dir, name), bytes);
  const script = `import json, os, sys, numpy as np
a = np.load(sys.argv[1])
d = sys.argv[2]
xyz = np.stack([a['x'], a['y'], a['z']], 1)
out = {'descr': str(a.dtype.descr), 'shape': list(a.shape), 'equal': {}}
for name in sorted(os.listdir(d)):
    want = open(os.path.join(d, name), 'rb').read()
    got = (xyz if name == 'xyz' else a[name]).tobytes()
    out['equal'][name] = got == want
print(json.dumps(out))`;
  return JSON.parse(execFileSync('python3', ['-c', script, file, dir], { encoding: 'utf8' }));
}

const bytesOf = (values: ArrayBufferView): Uint8Array =>
  new Uint8Array(values.buffer, values.byteOffset, values.byteLength);

void describe('recorder: frames with fields', { timeout: 60_000 }, () => {
  void it('writes a structured .npy that numpy.load reads with every column equal, bit for bit', async () => {
    const dir = tempDir();
    const recorder = new FrameRecorder({ dir }, silentLogger);
    // Over two slices of the reused buffer (31-byte records), so slice edges are covered.
    const count = Math.ceil((RECORD_SLICE_BYTES / 31) * 2.5);
    const frame = frameOf(3, count);
    const folder = sessionFolder('lidar', 'sess', 1_764_700_000_000);
    assert.equal(recorder.record(frame, folder), true);
    await recorder.flush();
    assert.equal(recorder.stats().framesRecorded, 1);
    const file = join(recorder.pathOf(folder), '000000000003.npy');
    const result = numpyCheck(file, {
      xyz: bytesOf(frame.points),
      ...Object.fromEntries(Object.entries(frame.fields).map(([n, v]) => [n, bytesOf(v)])),
    });
    assert.deepEqual(result, {
      descr:
        "[('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('intensity', '<f4'), ('ring', '<u2'), ('time', '<f8'), ('red', '|u1'), ('offset', '<i4')]",
      shape: [count],
      equal: { intensity: true, offset: true, red: true, ring: true, time: true, xyz: true },
    });
    // The sliced writer and the in-memory one agree byte for byte.
    assert.ok(
      readFileSync(file).equals(structuredNpyOf(frame.points, frame.fields, count)),
      'same bytes',
    );
    const manifest = JSON.parse(
      readFileSync(join(recorder.pathOf(folder), 'manifest.jsonl'), 'utf8'),
    ) as ManifestEntry;
    assert.equal(manifest.bytes, readFileSync(file).length);
    assert.deepEqual(manifest.fields, [
      { name: 'intensity', dtype: '<f4' },
      { name: 'ring', dtype: '<u2' },
      { name: 'time', dtype: '<f8' },
      { name: 'red', dtype: '|u1' },
      { name: 'offset', dtype: '<i4' },
    ]);
  });

  void it('lists codec and bound of a field that travelled lossy', async () => {
    const dir = tempDir();
    const recorder = new FrameRecorder({ dir }, silentLogger);
    const frame = frameOf(0, 10, { lossy: true });
    recorder.record(frame, 'f');
    await recorder.flush();
    const manifest = JSON.parse(
      readFileSync(join(dir, 'f', 'manifest.jsonl'), 'utf8'),
    ) as ManifestEntry;
    assert.deepEqual(manifest.fields?.[0], {
      name: 'intensity',
      dtype: '<f4',
      codec: 'quant-rice',
      maxError: 0.005,
    });
    assert.deepEqual(manifest.fields?.[1], { name: 'ring', dtype: '<u2' });
  });

  void it('writes a frame without fields exactly as before: its .npy, no fields in the manifest', async () => {
    const dir = tempDir();
    const recorder = new FrameRecorder({ dir }, silentLogger);
    const full = frameOf(1, 100);
    const plain: RecordableFrame = {
      ...full,
      fields: undefined,
      fieldTable: undefined,
      payload: undefined,
    };
    for (const frame of [plain, { ...plain, seq: 2, fields: {}, fieldTable: undefined }]) {
      recorder.record(frame, 'f');
    }
    await recorder.flush();
    for (const name of ['000000000001.npy', '000000000002.npy'])
      assert.ok(readFileSync(join(dir, 'f', name)).equals(plain.npy as Uint8Array), name);
    const lines = readFileSync(join(dir, 'f', 'manifest.jsonl'), 'utf8')
      .trim()
      .split('\n');
    for (const line of lines) assert.equal('fields' in JSON.parse(line), false);
    assert.deepEqual(readdirSync(join(dir, 'f')).sort(), [
      '000000000001.npy',
      '000000000002.npy',
      'manifest.jsonl',
    ]);
  });

  void it('counts what a queued frame with fields holds: its payload, plus decoded values', () => {
    const raw = frameOf(0, 1000);
    assert.equal(heldBytesOf(raw), raw.payload?.byteLength);
    const coded = { ...frameOf(0, 1000, { lossy: true }), encoding: 'qrice' as const };
    // Decoded points and the decoded (quant-rice) intensity on top of the payload.
    assert.equal(heldBytesOf(coded), (coded.payload?.byteLength ?? 0) + 12_000 + 4000);
  });
});
