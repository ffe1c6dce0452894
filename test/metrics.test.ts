import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCodes, connect } from '../src/index.js';
import type { ServerStats } from '../src/index.js';
import { LOOPBACK, RawPeer, startServer, waitFor } from './helpers.js';

const rtc = { bindAddress: LOOPBACK };
const TOKEN = 'metrics-test-token-aaaaaaaaaa';

/** The samples of a Prometheus text exposition: `name{labels}` -> value. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(match, `not a sample line: ${JSON.stringify(line)}`);
    samples.set(match[1] as string, Number(match[2]));
  }
  return samples;
}

function sample(samples: Map<string, number>, name: string): number {
  const value = samples.get(name);
  assert.ok(value !== undefined, `${name} is missing from /metrics`);
  return value;
}

void test(
  'GET /metrics: Prometheus text with the same numbers as /stats after streaming',
  { timeout: 60_000 },
  async (t) => {
    const recordings = mkdtempSync(join(tmpdir(), 'ps-metrics-'));
    t.after(() => rmSync(recordings, { recursive: true, force: true }));
    const server = await startServer({ record: { dir: recordings } });
    t.after(() => server.close());
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc });
    t.after(() => client.close());
    const points = new Float32Array(30_000).fill(2.5);
    for (let i = 0; i < 5; i++) assert.equal((await (await client.send(points)).receipt).ok, true);
    // One rejected frame: plain raw bytes that are not whole points.
    const peer = new RawPeer('');
    t.after(() => peer.close());
    await peer.connect(`${server.url}/offer`, 'json');
    peer.send(new Uint8Array(13));
    const receipt = await peer.receipt(0);
    assert.deepEqual(receipt.type === 'receipt' && !receipt.ok && [receipt.ok, receipt.code], [
      false,
      ErrorCodes.PLAIN_BAD_LENGTH,
    ]);
    await waitFor(
      () => server.stats().recording?.framesRecorded === 5,
      10_000,
      'five recorded frames',
    );

    const response = await fetch(`${server.url}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    const stats = (await (await fetch(`${server.url}/stats`)).json()) as ServerStats;
    const m = parseMetrics(text);
    assert.match(text, /# TYPE pointstream_frames_received_total counter/);
    assert.match(text, /# TYPE pointstream_frame_latency_seconds histogram/);

    assert.equal(sample(m, 'pointstream_sessions'), stats.sessions.length);
    assert.equal(stats.sessions.length, 2);
    assert.equal(sample(m, 'pointstream_sessions_opened_total'), stats.totals.sessionsOpened);
    assert.equal(sample(m, 'pointstream_frames_received_total'), stats.totals.framesReceived);
    assert.equal(stats.totals.framesReceived, 5);
    assert.equal(sample(m, 'pointstream_bytes_received_total'), stats.totals.bytesReceived);
    assert.equal(sample(m, 'pointstream_points_received_total'), stats.totals.pointsReceived);
    assert.equal(
      sample(m, `pointstream_frames_rejected_total{code="${ErrorCodes.PLAIN_BAD_LENGTH}"}`),
      stats.totals.framesRejected,
    );
    assert.equal(stats.totals.framesRejected, 1);
    // Every chunked frame carries its capture time: five latency observations.
    assert.equal(sample(m, 'pointstream_frame_latency_seconds_count'), 5);
    assert.equal(sample(m, 'pointstream_frame_latency_seconds_bucket{le="+Inf"}'), 5);
    assert.equal(sample(m, 'pointstream_reassembly_bytes'), stats.reassemblyBytes);
    assert.equal(sample(m, 'pointstream_viewers'), stats.viewers.length);
    assert.equal(
      sample(m, 'pointstream_recorder_frames_recorded_total'),
      stats.recording?.framesRecorded,
    );
    assert.equal(
      sample(m, 'pointstream_recorder_frames_not_recorded_total'),
      stats.recording?.framesNotRecorded,
    );
    assert.equal(
      sample(m, 'pointstream_recorder_bytes_written_total'),
      stats.recording?.bytesWritten,
    );
    assert.equal(sample(m, 'pointstream_recorder_queued_bytes'), stats.recording?.queuedBytes);
    assert.ok(sample(m, 'process_cpu_seconds_total') > 0);
    assert.ok(sample(m, 'process_resident_memory_bytes') > 0);
    assert.ok(sample(m, 'nodejs_eventloop_lag_p99_seconds') >= 0);
    assert.ok(sample(m, 'nodejs_eventloop_lag_max_seconds') >= 0);
  },
);

void test(
  'each server has its own registry: two servers in one process do not mix their numbers',
  { timeout: 60_000 },
  async (t) => {
    const busy = await startServer();
    t.after(() => busy.close());
    const quiet = await startServer();
    t.after(() => quiet.close());
    const client = await connect({ signalingUrl: `${busy.url}/offer`, rtc });
    t.after(() => client.close());
    assert.equal((await (await client.send(new Float32Array(300))).receipt).ok, true);
    const busyMetrics = parseMetrics(await (await fetch(`${busy.url}/metrics`)).text());
    const quietMetrics = parseMetrics(await (await fetch(`${quiet.url}/metrics`)).text());
    assert.equal(sample(busyMetrics, 'pointstream_frames_received_total'), 1);
    assert.equal(sample(quietMetrics, 'pointstream_frames_received_total'), 0);
    assert.equal(sample(quietMetrics, 'pointstream_frame_latency_seconds_count'), 0);
  },
);

void test(
  'with auth on, /metrics follows the /stats rule: 401 without a token',
  {
    timeout: 30_000,
  },
  async (t) => {
    const server = await startServer({ tokens: [TOKEN] });
    t.after(() => server.close());
    for (const path of ['/stats', '/metrics']) {
      const anonymous = await fetch(`${server.url}${path}`);
      assert.equal(anonymous.status, 401, path);
      assert.equal(
        ((await anonymous.json()) as { error: { code: string } }).error.code,
        ErrorCodes.UNAUTHORIZED,
      );
      const wrong = await fetch(`${server.url}${path}`, {
        headers: { authorization: 'Bearer not-the-token' },
      });
      assert.equal(wrong.status, 401, path);
      const allowed = await fetch(`${server.url}${path}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(allowed.status, 200, path);
    }
    const posted = await fetch(`${server.url}/metrics`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(posted.status, 405);
  },
);
