import { parentPort } from 'node:worker_threads';
import { PointstreamError } from '../errors.js';
import { decodePoints } from '../wire/encodings/index.js';
import type { DecodeJob, DecodeReply } from './decode-pool.js';

/**
 * A decode worker (decode-pool.ts): decodes one payload per message. The payload comes in and goes
 * back transferred, the points go back transferred: nothing is copied between threads.
 */
const port = parentPort;
if (port === null) throw new Error('decode-worker.ts runs as a worker thread');
port.on('message', (job: DecodeJob) => {
  const started = performance.now();
  let reply: DecodeReply;
  try {
    const points = decodePoints(job.payload, job.encoding, job.pointCount, {
      maxPoints: job.maxPoints,
    });
    reply = { id: job.id, payload: job.payload, points, ms: performance.now() - started };
    port.postMessage(reply, [job.payload.buffer as ArrayBuffer, points.buffer as ArrayBuffer]);
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
