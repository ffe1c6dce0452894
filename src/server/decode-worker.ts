import { parentPort } from 'node:worker_threads';
import { PointstreamError } from '../errors.js';
import { decodePoints, encodePoints } from '../wire/encodings/index.js';
import { decodeFields } from '../wire/encodings/fields.js';
import type { DecodeJob, DecodeReply } from './decode-pool.js';

/**
 * A decode worker (decode-pool.ts): decodes one payload per message. The payload comes in and goes
 * back transferred, the points and decoded field columns go back transferred (raw columns as views
 * of the payload, which the transfer keeps): nothing is copied between threads.
 */
const port = parentPort;
if (port === null) throw new Error('decode-worker.ts runs as a worker thread');
warmUp();
port.on('message', (job: DecodeJob) => {
  const started = performance.now();
  let reply: DecodeReply;
  try {
    const table = job.fieldTable;
    const pointsPart =
      table === undefined ? job.payload : job.payload.subarray(0, table.pointsBytes);
    const points = decodePoints(pointsPart, job.encoding, job.pointCount, {
      maxPoints: job.maxPoints,
    });
    const transfer = new Set<ArrayBuffer>([
      job.payload.buffer as ArrayBuffer,
      points.buffer as ArrayBuffer,
    ]);
    let fields;
    if (table !== undefined) {
      fields = decodeFields(job.payload, table, job.pointCount);
      for (const values of Object.values(fields)) transfer.add(values.buffer as ArrayBuffer);
    }
    reply = {
      id: job.id,
      payload: job.payload,
      points,
      ms: performance.now() - started,
      ...(fields === undefined ? {} : { fields }),
    };
    port.postMessage(reply, [...transfer]);
  } catch (error) {
    const known = error instanceof PointstreamError;
    reply = {
      id: job.id,
      payload: job.payload,
      ms: performance.now() - started,
      error: {
        code: known ? error.code : 'PS_ERR_INTERNAL',
        message: known ? error.message : `decoder failed: ${String(error)}`,
      },
    };
    port.postMessage(reply, [job.payload.buffer as ArrayBuffer]);
  }
});

/**
 * Runs each decoder a few times before the first job: cold, the first 1M-point qrice frames took
 * 290-370 ms instead of 80 and spent a session's decode budget on the JIT. Messages wait meanwhile.
 */
function warmUp(): void {
  const count = 50_000;
  const points = new Float32Array(count * 3);
  for (let i = 0; i < count; i++) {
    points[i * 3] = Math.sin(i / 500) * 20;
    points[i * 3 + 1] = Math.cos(i / 700) * 20;
    points[i * 3 + 2] = (i % 1000) / 100;
  }
  for (const name of ['qrice', 'q16'] as const) {
    const encoded = encodePoints(points, name);
    for (let round = 0; round < 8; round++) decodePoints(encoded.bytes, encoded.encoding, count);
  }
}
