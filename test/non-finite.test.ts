import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCodes, connect } from '../src/index.js';
import type { PointstreamError } from '../src/index.js';
import { NonFiniteFilter } from '../src/sources/finite.js';
import { decodeServerMessage, encodeServerMessage } from '../src/wire/control.js';
import { decodePlainFrame } from '../src/wire/plain.js';
import { encodeNpyHeader } from '../src/wire/npy.js';
import { LOOPBACK, findPython, lastJsonLine, runCli as run, startServer } from './helpers.js';

/**
 * NaN points are normal in robotics data (organised clouds: no return is NaN). A sender checks
 * before sending, says what to do, and can drop them; the server's rejection names its option.
 */

const ROWS = 1000;
const NAN_ROWS = 137;

/** An organised cloud as a driver writes it, by real NumPy: every 7th row of the first 959 is NaN, one is +inf. */
function writeOrganisedCloud(dir: string): string {
  const path = join(dir, 'organised.npy');
  const script = [
    'import sys, numpy as np',
    `a = np.arange(${ROWS * 3}, dtype=np.float32).reshape(-1, 3)`,
    'a[0:959:7, 1] = np.nan',
    'a[0:959:7][-1] = [np.inf, 0, 0]',
    'np.save(sys.argv[1], a)',
    'print(int((~np.isfinite(a).all(axis=1)).sum()))',
  ].join('\n');
  const bad = execFileSync(findPython('numpy'), ['-c', script, path], { encoding: 'utf8' }).trim();
  assert.equal(Number(bad), NAN_ROWS);
  return path;
}

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'pointstream-nan-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

void test(
  'send checks frames before sending: a NaN frame is not sent, and the error says what to do',
  { timeout: 60_000 },
  async (t) => {
    const file = writeOrganisedCloud(tempDir(t));
    const server = await startServer();
    t.after(() => server.close());
    const result = await run([
      'send',
      '--signaling',
      server.url,
      '--from',
      file,
      '--frames',
      '3',
      '--json',
    ]);
    assert.equal(result.code, 1, result.stderr);
    const summary = lastJsonLine(result.stdout);
    assert.equal(summary.errorCode, ErrorCodes.FRAME_NON_FINITE);
    assert.match(
      summary.reason as string,
      /frame 0 not sent: point 0 has a non-finite coordinate \(NaN\)/,
    );
    assert.match(summary.reason as string, /--drop-non-finite/);
    assert.match(summary.reason as string, /--allow-non-finite/);
    assert.equal(summary.framesSent, 0);
    assert.equal(summary.framesNotSent, 3);
    const totals = server.stats().totals;
    assert.equal(totals.framesReceived + totals.framesRejected, 0, 'nothing reached the server');
  },
);

void test(
  'send --drop-non-finite drops those points from every frame and counts them',
  { timeout: 60_000 },
  async (t) => {
    const file = writeOrganisedCloud(tempDir(t));
    const server = await startServer();
    t.after(() => server.close());
    const sizes: number[] = [];
    server.on('frame', (frame) => sizes.push(frame.points.length / 3));
    for (const encoding of ['raw', 'qrice']) {
      const result = await run([
        'send',
        '--signaling',
        server.url,
        '--from',
        file,
        '--frames',
        '2',
        '--encoding',
        encoding,
        '--drop-non-finite',
        '--json',
      ]);
      assert.equal(result.code, 0, result.stderr);
      const summary = lastJsonLine(result.stdout);
      assert.equal(summary.framesAcked, 2);
      assert.equal(summary.nonFinitePointsDropped, 2 * NAN_ROWS);
      assert.equal(summary.pointsPerFrame, ROWS - NAN_ROWS);
    }
    assert.deepEqual(
      sizes,
      [1, 2, 3, 4].map(() => ROWS - NAN_ROWS),
    );
  },
);

void test(
  'to a server started with --allow-non-finite, raw NaN frames go as they are',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({ limits: { allowNonFinite: true } });
    t.after(() => server.close());
    const client = await connect({
      signalingUrl: `${server.url}/offer`,
      rtc: { bindAddress: LOOPBACK },
    });
    t.after(() => client.close());
    const points = new Float32Array([1, Number.NaN, 3, 4, 5, 6]);
    const receipt = await (await client.send(points)).receipt;
    assert.equal(receipt.ok, true);
    // q16 and qrice cannot carry NaN: refused before sending, with what to do.
    const q16 = await connect({
      signalingUrl: `${server.url}/offer`,
      rtc: { bindAddress: LOOPBACK },
      encoding: 'q16',
    });
    t.after(() => q16.close());
    await assert.rejects(q16.send(points), (error: PointstreamError) => {
      assert.equal(error.code, ErrorCodes.FRAME_NON_FINITE);
      assert.match(error.message, /q16 cannot carry them/);
      assert.match(error.message, /--drop-non-finite/);
      return true;
    });
  },
);

void test("the server's rejection names the option that accepts non-finite points", () => {
  const points = new Float32Array([1, 2, 3, Number.NaN, 5, 6]);
  const npy = Buffer.concat([encodeNpyHeader([2, 3]), new Uint8Array(points.buffer)]);
  assert.throws(
    () =>
      decodePlainFrame(npy, 7, {
        maxFrameBytes: 1 << 20,
        maxPointsPerFrame: 100,
        allowNonFinite: false,
      }),
    (error: PointstreamError) => {
      assert.equal(error.code, ErrorCodes.FRAME_NON_FINITE);
      assert.match(error.message, /^point 1 has a non-finite coordinate \(NaN\)/);
      assert.match(error.message, /--allow-non-finite \(limits\.allowNonFinite\)/);
      return true;
    },
  );
});

void test('NonFiniteFilter drops whole points, keeps order, copies nothing when all is finite', (t) => {
  const filter = new NonFiniteFilter();
  const clean = new Float32Array([1, 2, 3, -0, 5, 6]);
  const same = filter.apply(clean);
  assert.equal(same.points, clean, 'no copy');
  assert.equal(same.dropped, 0);
  const dirty = new Float32Array([
    1,
    2,
    3,
    Number.NaN,
    0,
    0,
    7,
    8,
    Infinity,
    10,
    11,
    12,
    0,
    -Infinity,
    0,
  ]);
  const kept = filter.apply(dirty);
  assert.deepEqual([...kept.points], [1, 2, 3, 10, 11, 12]);
  assert.equal(kept.dropped, 3);
  assert.deepEqual([...dirty.subarray(0, 3)], [1, 2, 3], 'the input is not modified');
  assert.equal(Number.isNaN(dirty[3]), true);

  // The cost on the hot path, for the report (not asserted: no timing assertions).
  const million = new Float32Array(3_000_000).map((_, i) => i % 1000);
  const timeMs = (points: Float32Array): number => {
    const runs: number[] = [];
    for (let i = 0; i < 7; i++) {
      const start = performance.now();
      filter.apply(points);
      runs.push(performance.now() - start);
    }
    return runs.sort((a, b) => a - b)[3] as number;
  };
  const finiteMs = timeMs(million);
  const withNan = million.slice();
  for (let i = 1; i < withNan.length; i += 21) withNan[i] = Number.NaN;
  t.diagnostic(
    `per 1M points: check ${finiteMs.toFixed(2)} ms (all finite), drop ${timeMs(withNan).toFixed(2)} ms (1 point in 7 NaN)`,
  );
});

void test('the hello says whether the server accepts non-finite points', () => {
  const hello = {
    type: 'hello',
    session: 's',
    protocol: 'pointstream/1',
    maxFrameBytes: 1,
    maxPointsPerFrame: 1,
    maxFramesInReassembly: 1,
  } as const;
  for (const allowNonFinite of [true, false]) {
    const text = encodeServerMessage({ ...hello, allowNonFinite });
    assert.deepEqual(decodeServerMessage(text), { ...hello, allowNonFinite });
  }
  assert.deepEqual(decodeServerMessage(JSON.stringify(hello)), hello, 'older servers omit it');
  assert.throws(() => decodeServerMessage(JSON.stringify({ ...hello, allowNonFinite: 'yes' })), {
    code: ErrorCodes.CONTROL_INVALID,
  });
});

void test(
  "send(points, { finite: true }) skips the client check: a NaN sent anyway is the server's to reject",
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const client = await connect({ signalingUrl: `${server.url}/offer` });
    t.after(() => client.close());
    const points = new Float32Array([1, Number.NaN, 3, 4, 5, 6]);
    await assert.rejects(client.send(points), { code: ErrorCodes.FRAME_NON_FINITE });
    const receipt = await (await client.send(points, { finite: true })).receipt;
    assert.equal(receipt.ok, false);
    assert.equal(receipt.ok ? undefined : receipt.code, ErrorCodes.FRAME_NON_FINITE);
  },
);
