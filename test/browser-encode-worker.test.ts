/**
 * The browser sender's encoder worker (web/sender/encode.worker.ts) in real Chromium: given
 * points and fields it returns coded columns byte for byte as Node's encodePoints makes them,
 * transfers every buffer once (two fields sharing one ArrayBuffer included), and the columns
 * decode in Node within their bounds.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { decodeFields } from '../src/wire/encodings/fields.js';
import { encodePoints } from '../src/wire/encodings/index.js';
import { FieldCodec, columnOffsets, payloadBytesOf } from '../src/wire/fields.js';
import type { FieldColumn, FieldTable, PointFields } from '../src/wire/fields.js';
import { haveWebBuild, launchBrowser } from './browser-helpers.js';
import { startServer } from './helpers.js';

const N = 6000;

/** Deterministic inputs, built the same way here and in the page (arithmetic only: no libm). */
function inputs(n: number) {
  const points = new Float32Array(n * 3);
  const intensity = new Float32Array(n);
  const ring = new Uint16Array(n);
  const time = new Float64Array(n);
  // Two raw fields over one ArrayBuffer: the worker must transfer it once.
  const shared = new ArrayBuffer(n * 8);
  const left = new Float32Array(shared, 0, n);
  const right = new Float32Array(shared, n * 4, n);
  for (let i = 0; i < n; i++) {
    points[i * 3] = i * 0.01;
    points[i * 3 + 1] = (i % 97) * 0.1;
    points[i * 3 + 2] = (i % 64) * 0.05;
    intensity[i] = (i % 50) * 1.5 + 0.25;
    ring[i] = i % 64;
    time[i] = i * 1e-5;
    left[i] = i * 0.5;
    right[i] = -i;
  }
  return { points, fields: { intensity, ring, time, left, right } };
}

const FIELD_PRECISION = { intensity: 0.01, time: 1e-6 };

interface WorkerReply {
  ok: boolean;
  message?: string;
  bytes: number[];
  columns: FieldColumn[];
  columnBytes: number[][];
  maxErrors: Record<string, number>;
}

declare const window: { Worker: new (url: string, options: { type: 'module' }) => unknown };

void test('the encoder worker encodes fields as Node does and transfers them', async (t) => {
  assert.ok(haveWebBuild(), 'dist/web is not built: run "npm run build:web" first');
  const server = await startServer();
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await server.close();
  });
  const page = await browser.open(`${server.url}/send`);
  const reply = await page.evaluate(
    async ({ n, fieldPrecision }) => {
      // inputs() again: the page gets this function's source, not the module's.
      const points = new Float32Array(n * 3);
      const intensity = new Float32Array(n);
      const ring = new Uint16Array(n);
      const time = new Float64Array(n);
      const shared = new ArrayBuffer(n * 8);
      const left = new Float32Array(shared, 0, n);
      const right = new Float32Array(shared, n * 4, n);
      for (let i = 0; i < n; i++) {
        points[i * 3] = i * 0.01;
        points[i * 3 + 1] = (i % 97) * 0.1;
        points[i * 3 + 2] = (i % 64) * 0.05;
        intensity[i] = (i % 50) * 1.5 + 0.25;
        ring[i] = i % 64;
        time[i] = i * 1e-5;
        left[i] = i * 0.5;
        right[i] = -i;
      }
      const fields = { intensity, ring, time, left, right };
      type Reply = {
        ok: boolean;
        message?: string;
        bytes: Uint8Array;
        fields?: { columns: unknown[]; bytes: Uint8Array[]; maxErrors: Record<string, number> };
      };
      const worker = new window.Worker('/sender/encode.worker.js', { type: 'module' }) as {
        postMessage(m: unknown): void;
        onmessage: ((e: { data: Reply }) => void) | null;
        terminate(): void;
      };
      const data = await new Promise<Reply>((resolve) => {
        worker.onmessage = (e) => resolve(e.data);
        worker.postMessage({
          id: 1,
          points,
          encoding: 'qrice',
          precision: 0.001,
          fields,
          fieldPrecision,
        });
      });
      worker.terminate();
      return {
        ok: data.ok,
        message: data.message,
        bytes: data.ok ? Array.from(data.bytes) : [],
        columns: data.fields?.columns ?? [],
        columnBytes: (data.fields?.bytes ?? []).map((b) => Array.from(b)),
        maxErrors: data.fields?.maxErrors ?? {},
      };
    },
    { n: N, fieldPrecision: FIELD_PRECISION },
  );
  const got = reply as unknown as WorkerReply;
  assert.equal(got.ok, true, got.message);
  const { points, fields } = inputs(N);
  const expected = encodePoints(points, 'qrice', {
    precision: 0.001,
    fields,
    fieldPrecision: FIELD_PRECISION,
  });
  assert.deepEqual(got.bytes, Array.from(expected.bytes), 'the points part');
  assert.deepEqual(got.columns, expected.fields?.columns);
  assert.deepEqual(
    got.columns.map((c) => c.codec),
    [
      FieldCodec.QUANT_RICE,
      FieldCodec.DELTA_RICE,
      FieldCodec.QUANT_RICE,
      FieldCodec.RAW,
      FieldCodec.RAW,
    ],
  );
  got.columnBytes.forEach((b, i) =>
    assert.deepEqual(b, Array.from(expected.fields?.bytes[i] ?? []), `column ${i}`),
  );
  assert.deepEqual(got.maxErrors, expected.fields?.maxErrors);
  // And they decode: the payload in the protocol layout, as the server gets it.
  const table: FieldTable = { pointsBytes: got.bytes.length, columns: got.columns };
  const payload = new Uint8Array(payloadBytesOf(table));
  payload.set(got.bytes);
  const offsets = columnOffsets(table);
  got.columnBytes.forEach((b, i) => payload.set(b, offsets[i]));
  const decoded: PointFields = decodeFields(payload, table, N);
  for (const [name, original] of Object.entries(fields)) {
    const bound = got.maxErrors[name] as number;
    const back = decoded[name];
    assert.ok(back !== undefined);
    for (let i = 0; i < N; i++) {
      const e = Math.abs((back[i] as number) - (original[i] as number));
      if (!(e <= bound)) assert.fail(`${name}[${i}]: error ${e} > ${bound}`);
    }
  }
  assert.deepEqual(browser.errors, []);
});
