/**
 * Per-point fields through the server's ingest path, over the in-memory channel pair: what a
 * `ReceivedFrame` carries (fields as views, `npy`/`encoded` the points part, `payload` the whole),
 * the per-frame log line's field names, the decode pool (worker threads) and the plain form.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { DecodePool } from '../../src/server/decode-pool.js';
import type { Logger } from '../../src/util/logger.js';
import { encodePoints } from '../../src/wire/encodings/index.js';
import { NO_FIELDS, rawFields } from '../../src/wire/fields.js';
import type { PointFields } from '../../src/wire/fields.js';
import { prepareEncodedFrame, prepareFrame } from '../../src/wire/frame.js';
import { encodeStructuredNpyHeader } from '../../src/wire/npy.js';
import { MESSAGE_BYTES, openIngest, pointsOf, sendFrame, settle, until } from './ingest-harness.js';

const T = { timeout: 20_000 };

function fieldsOf(n: number): PointFields {
  return {
    intensity: Float32Array.from({ length: n }, (_, i) => i / 7),
    ring: Uint16Array.from({ length: n }, (_, i) => i % 32),
    time: Float64Array.from({ length: n }, (_, i) => 1.7e9 + i * 1e-6),
  };
}

/** A logger that keeps its `info` lines. */
function capture(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log: Logger = {
    trace: () => undefined,
    debug: () => undefined,
    info: (obj) => lines.push(obj as Record<string, unknown>),
    warn: () => undefined,
    error: () => undefined,
    child: () => log,
  };
  return { log, lines };
}

void describe('ingest: frames with fields', T, () => {
  void it('delivers raw fields as views into the payload; npy is the points part', async () => {
    const { log, lines } = capture();
    const h = await openIngest({ log });
    const points = pointsOf(500);
    const fields = fieldsOf(500);
    sendFrame(h.client, prepareFrame(points, 0, 0, MESSAGE_BYTES, crc32, rawFields(fields, 500)));
    sendFrame(h.client, prepareFrame(points, 1, 0, MESSAGE_BYTES, crc32));
    await until(() => h.receipts().length === 2);
    assert.ok(h.receipts().every((r) => r.ok));
    const [withFields, without] = h.frames;
    assert.ok(withFields !== undefined && without !== undefined);
    assert.deepEqual(withFields.fields, fields);
    assert.deepEqual(withFields.points, points);
    const payload = withFields.payload as Uint8Array;
    assert.equal(payload.length, withFields.byteLength);
    assert.equal(crc32(payload), withFields.crc32);
    assert.equal(withFields.npy?.length, 128 + 500 * 12);
    assert.ok(withFields.npy?.buffer === payload.buffer);
    for (const values of Object.values(withFields.fields))
      assert.ok(values.buffer === payload.buffer, 'a view, not a copy');
    assert.deepEqual(
      withFields.fieldTable?.columns.map((c) => [c.name, c.type, c.codec]),
      [
        ['intensity', 'f32', 0],
        ['ring', 'u16', 0],
        ['time', 'f64', 0],
      ],
    );
    // Without fields: as before.
    assert.equal(without.fields, NO_FIELDS);
    assert.equal(without.payload, undefined);
    assert.equal(without.fieldTable, undefined);
    assert.equal(without.npy?.length, without.byteLength);
    const logged = lines.filter((line) => line.event === 'frame');
    assert.deepEqual(logged[0]?.fields, ['intensity', 'ring', 'time']);
    assert.equal('fields' in (logged[1] ?? {}), false);
  });

  void it('decodes q16/qrice frames with fields on the decode pool (views survive the transfer)', async () => {
    const pool = new DecodePool(1);
    try {
      const h = await openIngest({ decoder: pool });
      const points = pointsOf(2000);
      const fields = fieldsOf(2000);
      for (const [seq, name] of (['q16', 'qrice'] as const).entries()) {
        const encoded = { ...encodePoints(points, name), fields: rawFields(fields, 2000) };
        sendFrame(h.client, prepareEncodedFrame(encoded, seq, 0, MESSAGE_BYTES, crc32));
      }
      await until(() => h.receipts().length === 2, 15_000);
      assert.ok(
        h.receipts().every((r) => r.ok),
        JSON.stringify(h.receipts()),
      );
      for (const frame of h.frames) {
        assert.deepEqual(frame.fields, fields);
        const payload = frame.payload as Uint8Array;
        assert.ok(frame.encoded?.buffer === payload.buffer);
        assert.equal(frame.encoded?.length, frame.fieldTable?.pointsBytes);
        for (const values of Object.values(frame.fields))
          assert.ok(values.buffer === payload.buffer);
        assert.equal(frame.points.length, 6000);
      }
      await settle();
    } finally {
      await pool.close();
    }
  });

  void it('reads a structured .npy in the plain form into fields and the protocol layout', async () => {
    const h = await openIngest({ protocol: '' });
    const n = 3;
    const header = encodeStructuredNpyHeader(n, [
      ['x', '<f4'],
      ['y', '<f4'],
      ['z', '<f4'],
      ['intensity', '<f4'],
      ['ring', '<u2'],
    ]);
    const body = Buffer.alloc(n * 18);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < 3; k++) body.writeFloatLE(i * 3 + k, i * 18 + k * 4);
      body.writeFloatLE(i / 2, i * 18 + 12);
      body.writeUInt16LE(100 + i, i * 18 + 16);
    }
    h.client.send(new Uint8Array(Buffer.concat([header, body])));
    await until(() => h.receipts().length === 1);
    assert.equal(h.receipts()[0]?.ok, true);
    const [frame] = h.frames;
    assert.ok(frame !== undefined);
    assert.equal(frame.form, 'plain-npy');
    assert.deepEqual(
      frame.points,
      Float32Array.from({ length: 9 }, (_, i) => i),
    );
    assert.deepEqual(frame.fields, {
      intensity: Float32Array.of(0, 0.5, 1),
      ring: Uint16Array.of(100, 101, 102),
    });
    assert.equal(frame.npy?.length, 128 + 36);
    assert.equal(frame.fieldTable?.pointsBytes, 164);
    assert.equal(frame.payload?.length, 168 + 12 + 4 + 6);
  });
});
