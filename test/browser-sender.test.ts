import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { after, test } from 'node:test';
import nodeDataChannel from 'node-datachannel';
import type { Page } from 'playwright-core';
import type { PointstreamServer, ReceivedFrame } from '../src/index.js';
import { CONTENT_SECURITY_POLICY, registerWebRoutes } from '../src/server/web.js';
import { RandomPointSource } from '../src/sources/random.js';
import { haveWebBuild, launchBrowser, screenshot } from './browser-helpers.js';
import { findPython, startServer, waitFor } from './helpers.js';

// Exiting by itself is test/exit.test.ts's check. This file releases what is left after its
// tests, so that a rare lost closed event (the last test closes the server while the page
// streams) cannot keep its process running until the runner's timeout.
after(() => nodeDataChannel.cleanup());

// What window.pointstream.start() resolves with (web/sender/run.ts RunResult), as far as used here.
interface RunResult {
  ok: boolean;
  reason: string;
  errorCode: string | null;
  sessionId: string | null;
  framesSent: number;
  framesAcked: number;
  framesRejected: number;
  framesLost: number;
  bytesSent: number;
  maxMessageBytes: number;
  latencyMs: { p50: number; p99: number; max: number };
  encoding: string;
  bytesPerPoint: number;
  maxError: number;
  nonFinitePointsDropped: number;
}

const TOKEN = 'browser-test-token-0123456789';

// The page's test hook (web/sender/main.ts); these tests type-check without the DOM library.
declare const window: {
  pointstream: {
    ready: true;
    start(options: Record<string, unknown>): Promise<RunResult>;
    file: Promise<number> | undefined;
    result: Promise<RunResult> | undefined;
  };
};
declare const document: { getElementById(id: string): { textContent: string | null } | null };

assert.ok(
  haveWebBuild(),
  'dist/web is not built: run "npm run build:web" first (npm test does it)',
);

/** Frames the server verified, checked against the seeded generator the page uses, as they come. */
function recordFrames(server: PointstreamServer, points: number, seed: number) {
  const generator = new RandomPointSource(points, { seed });
  const frames: { seq: number; pointCount: number; equal: boolean; sessionId: string }[] = [];
  server.on('frame', (frame: ReceivedFrame) => {
    const expected = generator.next();
    frames.push({
      seq: frame.seq,
      pointCount: frame.pointCount,
      sessionId: frame.sessionId,
      // Byte-exact: the same float32 values, in order.
      equal: Buffer.from(
        frame.points.buffer,
        frame.points.byteOffset,
        frame.points.byteLength,
      ).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)),
    });
  });
  return frames;
}

async function openSender(open: (url: string) => Promise<Page>, url: string): Promise<Page> {
  const page = await open(url);
  await page.waitForFunction(() => window.pointstream?.ready === true);
  return page;
}

void test('the web pages are served with types, caching, CSP; no traversal; public under auth', async (t) => {
  const server = await startServer({ tokens: [TOKEN] });
  t.after(() => server.close());
  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, { headers });

  for (const [path, type] of [
    ['/', 'text/html; charset=utf-8'],
    ['/send', 'text/html; charset=utf-8'],
    ['/sender', 'text/html; charset=utf-8'],
    ['/sender.js', 'text/javascript; charset=utf-8'],
    ['/sender.js.map', 'application/json; charset=utf-8'],
    ['/shared/style.css', 'text/css; charset=utf-8'],
  ] as const) {
    const response = await get(path);
    assert.equal(response.status, 200, path);
    assert.equal(response.headers.get('content-type'), type, path);
    assert.equal(response.headers.get('cache-control'), 'no-cache', path);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff', path);
    if (type.startsWith('text/html'))
      assert.equal(response.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY);
    const etag = response.headers.get('etag');
    assert.ok(etag, path);
    const again = await get(path, { 'if-none-match': etag });
    assert.equal(again.status, 304, `${path} revalidated`);
  }
  const page = await (await get('/send')).text();
  assert.match(page, /<script type="module" src="\/sender.js">/);
  assert.equal(
    page,
    readFileSync(new URL('../dist/web/sender/index.html', import.meta.url), 'utf8'),
  );

  // The API still needs the token; unknown paths and traversal attempts get the JSON 404.
  assert.equal((await get('/stats')).status, 401);
  for (const path of [
    '/sender/../../package.json',
    '/..%2f..%2fpackage.json',
    '/%2e%2e/%2e%2e/package.json',
    '/sender/index.html/../../../package.json',
    '/nope.js',
    '/dist/web/sender.js',
  ]) {
    const response = await get(path, { authorization: `Bearer ${TOKEN}` });
    assert.equal(response.status, 404, path);
    const body = (await response.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'PS_ERR_HTTP_NOT_FOUND', path);
  }
  // Pages are GET only.
  assert.notEqual((await fetch(`${server.url}/send`, { method: 'POST' })).status, 200);
});

void test('without a web build the API still runs and / says how to build', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'pointstream-web-'));
  const app = Fastify();
  t.after(async () => {
    await app.close();
    rmSync(empty, { recursive: true, force: true });
  });
  const warnings: string[] = [];
  const log = {
    warn: (_fields: unknown, message: string) => warnings.push(message),
    debug: () => undefined,
  } as unknown as Parameters<typeof registerWebRoutes>[1];
  const routes = registerWebRoutes(app, log, join(empty, 'missing'));
  assert.equal(routes.built, false);
  assert.deepEqual(routes.urls, []);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] ?? '', /npm run build/);
  const response = await app.inject({ method: 'GET', url: '/' });
  assert.equal(response.statusCode, 404);
  const body = response.json<{ error: { code: string; message: string } }>();
  assert.equal(body.error.code, 'PS_ERR_HTTP_NOT_FOUND');
  assert.match(body.error.message, /not built.*npm run build/);
});

void test('browser sender streams seeded frames that the server verifies byte for byte', async (t) => {
  const server = await startServer();
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await server.close();
  });
  const frames = recordFrames(server, 100_000, 7);
  const streams = new Set<string>();
  server.on('frame', (frame) => streams.add(frame.stream));
  // The home page (the viewer) carries a fragment token to its link to the sender.
  const home = await browser.open(`${server.url}/#token=abc`);
  await home.waitForSelector('a[data-page][href$="/send#token=abc"]');
  await home.close();
  const page = await openSender((url) => browser.open(url), `${server.url}/send`);

  const result = await page.evaluate((): Promise<RunResult> =>
    window.pointstream.start({ source: 'random', points: 100_000, seed: 7, frames: 8, rate: 8 }),
  );
  assert.equal(
    result.ok,
    true,
    `${result.errorCode}: ${result.reason}; ${browser.errors.join('\n')}`,
  );
  assert.equal(result.framesSent, 8);
  assert.equal(result.framesAcked, 8);
  assert.equal(result.framesRejected + result.framesLost, 0);
  assert.equal(result.maxMessageBytes, 262_144, "chunks at Chromium's maximum message size");
  assert.equal(result.bytesSent, 8 * (128 + 1_200_000));
  assert.ok(result.latencyMs.p50 > 0 && result.latencyMs.p99 >= result.latencyMs.p50);

  assert.deepEqual(
    frames.map((f) => f.seq),
    [0, 1, 2, 3, 4, 5, 6, 7],
  );
  assert.ok(
    frames.every((f) => f.pointCount === 100_000 && f.equal && f.sessionId === result.sessionId),
  );

  // The page shows what the CLI shows.
  assert.equal(await page.textContent('#s-acked'), '8');
  assert.match((await page.textContent('#status')) ?? '', /^OK: all 8 frames acknowledged intact/);
  await screenshot(page, 'browser-sender');

  // Bad options from a script are refused with their name before anything connects.
  const refused = await page.evaluate((): Promise<RunResult> =>
    window.pointstream.start({ points: -5, frames: 1 }),
  );
  assert.equal(refused.errorCode, 'PS_ERR_INVALID_OPTION');
  assert.match(refused.reason, /option "points" must be an integer >= 1; got -5/);
  assert.equal(refused.framesSent, 0);
  // The page names its stream (its form's default, one per page); a bad name is refused.
  assert.deepEqual(
    [...streams].map((name) => /^browser-[a-z0-9]+$/.test(name)),
    [true],
  );
  const badStream = await page.evaluate((): Promise<RunResult> =>
    window.pointstream.start({ stream: 'no spaces', frames: 1 }),
  );
  assert.equal(badStream.errorCode, 'PS_ERR_INVALID_OPTION');
  assert.match(badStream.reason, /option "stream"/);
  assert.equal(frames.length, 8);
  assert.deepEqual(browser.errors, []);
});

void test('the hello is not lost when the channel opens before the page has the PATCH answer', async (t) => {
  const server = await startServer();
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await server.close();
  });
  const frames = recordFrames(server, 1000, 3);
  const page = await openSender((url) => browser.open(url), `${server.url}/send`);
  // The page's PATCH reaches the server at once; its answer reaches the page only once the server
  // has opened the channel and sent its hello, which thus comes while the page still awaits it.
  let held = 0;
  await page.route('**/sessions/*', async (route) => {
    const response = await route.fetch();
    if (route.request().method() === 'PATCH') {
      await waitFor(
        () => server.stats().sessions.some((session) => session.state === 'connected'),
        10_000,
        'the channel to open',
      );
      held++;
    }
    await route.fulfill({ response });
  });
  const result = await page.evaluate((): Promise<RunResult> =>
    window.pointstream.start({ source: 'random', points: 1000, seed: 3, frames: 2, rate: 0 }),
  );
  assert.equal(held, 1, 'the PATCH answer was held back');
  assert.equal(result.ok, true, `${result.errorCode}: ${result.reason}`);
  assert.equal(result.framesAcked, 2);
  assert.ok(frames.every((f) => f.equal));
  assert.deepEqual(browser.errors, []);
});

void test('with auth on: the token from the URL fragment works, a wrong one fails clearly', async (t) => {
  const server = await startServer({ tokens: [TOKEN] });
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await server.close();
  });
  const frames = recordFrames(server, 2_000, 3);

  const good = await openSender((url) => browser.open(url), `${server.url}/send#token=${TOKEN}`);
  assert.equal(await good.inputValue('#token'), TOKEN);
  const ok = await good.evaluate((): Promise<RunResult> =>
    window.pointstream.start({ points: 2_000, seed: 3, frames: 3, rate: 0 }),
  );
  assert.equal(ok.ok, true, `${ok.errorCode}: ${ok.reason}`);
  assert.equal(ok.framesAcked, 3);
  assert.equal(frames.length, 3);
  assert.ok(frames.every((f) => f.equal));

  const bad = await openSender(
    (url) => browser.open(url),
    `${server.url}/send#token=not-the-right-token-at-all`,
  );
  const refused = await bad.evaluate((): Promise<RunResult> =>
    window.pointstream.start({ points: 2_000, frames: 3 }),
  );
  assert.equal(refused.ok, false);
  assert.equal(refused.errorCode, 'PS_ERR_UNAUTHORIZED');
  assert.equal(refused.framesSent, 0);
  assert.match(refused.reason, /HTTP 401 \(invalid bearer token\): check the token/);
  assert.match((await bad.textContent('#error')) ?? '', /^PS_ERR_UNAUTHORIZED: offer was refused/);
  await screenshot(bad, 'browser-sender-wrong-token');
  assert.equal(frames.length, 3, 'nothing more arrived');
  assert.equal(server.stats().sessions.length, 0);
});

void test('a .npy file picked on the page is streamed as it is; a bad file is refused on the page', async (t) => {
  const server = await startServer();
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await server.close();
  });
  const received: Float32Array[] = [];
  server.on('frame', (frame) => received.push(frame.points.slice()));
  const page = await openSender((url) => browser.open(url), `${server.url}/send`);

  // (N, 4) float32, x y z intensity: the page keeps x, y, z.
  const fixture = new URL('./fixtures/npy/xyzi_f4_4cols.npy', import.meta.url);
  await page.setInputFiles('#file', fixture.pathname);
  const count = await page.evaluate(() => window.pointstream.file);
  const manifest = JSON.parse(
    readFileSync(new URL('./fixtures/npy/manifest.json', import.meta.url), 'utf8'),
  ) as { files: { name: string; shape: number[]; values?: number[] }[] };
  const entry = manifest.files.find((file) => file.name === 'xyzi_f4_4cols.npy');
  assert.ok(entry?.values);
  assert.equal(count, entry.shape[0]);
  assert.match((await page.textContent('#file-status')) ?? '', /xyzi_f4_4cols\.npy: 5 points/);

  const result = await page.evaluate((): Promise<RunResult> =>
    window.pointstream.start({ source: 'file', frames: 2, rate: 0 }),
  );
  assert.equal(result.ok, true, `${result.errorCode}: ${result.reason}`);
  assert.equal(received.length, 2);
  // NumPy's own values (from the fixture manifest), without the fourth column.
  const expected = Float32Array.from(entry.values.filter((_, index) => index % 4 !== 3));
  assert.deepEqual(received[0], expected);
  assert.deepEqual(received[1], expected);

  // (N, 3) int32 is refused in the page with the npy code, and nothing is sent.
  await page.setInputFiles('#file', new URL('./fixtures/npy/xyz_i4.npy', import.meta.url).pathname);
  const error = await page.evaluate(() =>
    window.pointstream.file?.then(
      () => 'loaded',
      (e: { code?: string }) => e.code,
    ),
  );
  assert.equal(error, 'PS_ERR_NPY_UNSUPPORTED_DTYPE');
  assert.match((await page.textContent('#file-status')) ?? '', /PS_ERR_NPY_UNSUPPORTED_DTYPE/);
  const refused = await page.evaluate((): Promise<RunResult> =>
    window.pointstream.start({ source: 'file', frames: 1 }),
  );
  assert.equal(refused.ok, false);
  assert.equal(refused.errorCode, 'PS_ERR_SOURCE_EMPTY');
  assert.equal(received.length, 2);
});

void test('q16 and qrice frames are encoded in a worker and decoded by the server within their bound', async (t) => {
  const server = await startServer();
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await server.close();
  });
  const points = 50_000;
  const errors: { encoding: string; seq: number; worst: number }[] = [];
  let generator = new RandomPointSource(points, { seed: 11 });
  server.on('frame', (frame: ReceivedFrame) => {
    const expected = generator.next();
    let worst = 0;
    for (let i = 0; i < expected.length; i++)
      worst = Math.max(worst, Math.abs((frame.points[i] as number) - (expected[i] as number)));
    errors.push({ encoding: frame.encoding, seq: frame.seq, worst });
  });
  const page = await openSender((url) => browser.open(url), `${server.url}/send`);
  for (const encoding of ['q16', 'qrice'] as const) {
    generator = new RandomPointSource(points, { seed: 11 });
    errors.length = 0;
    const result = await page.evaluate(
      (encoding): Promise<RunResult> =>
        window.pointstream.start({ points: 50_000, seed: 11, frames: 3, rate: 0, encoding }),
      encoding,
    );
    assert.equal(result.ok, true, `${encoding}: ${result.errorCode}: ${result.reason}`);
    assert.equal(result.encoding, encoding);
    assert.equal(errors.length, 3, encoding);
    assert.ok(result.maxError > 0, encoding);
    // The server decoded every point to within the bound the encoder reported.
    for (const e of errors) {
      assert.equal(e.encoding, encoding);
      assert.ok(
        e.worst <= result.maxError * (1 + 1e-6),
        `${encoding} frame ${e.seq}: ${e.worst} > ${result.maxError}`,
      );
    }
    if (encoding === 'q16')
      assert.ok(result.bytesPerPoint < 6.01, `${result.bytesPerPoint} B/point`);
    else assert.ok(result.maxError <= 0.001 * (1 + 1e-6), `qrice error ${result.maxError} > 1 mm`);
    assert.match(
      (await page.textContent('#s-encoding')) ?? '',
      new RegExp(`^${encoding}: [0-9.]+ B/point, max error`),
    );
  }
  await screenshot(page, 'browser-sender-qrice');
  assert.deepEqual(browser.errors, []);
});

void test('.ply files (ASCII and binary little-endian) are parsed in the page and sent exactly', async (t) => {
  const server = await startServer();
  const browser = await launchBrowser();
  const dir = mkdtempSync(join(tmpdir(), 'pointstream-ply-'));
  t.after(async () => {
    await browser.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const received: Float32Array[] = [];
  server.on('frame', (frame) => received.push(frame.points.slice()));
  const expected = Float32Array.of(0, 1, 2, -1.5, 2.25, 1e3, 0.125, -7, 42);

  // ASCII with an extra property before x, and a face element after the vertices.
  const ascii = [
    'ply',
    'format ascii 1.0',
    'comment made by the test',
    'element vertex 3',
    'property uchar intensity',
    'property float x',
    'property float y',
    'property float z',
    'element face 0',
    'property list uchar int vertex_indices',
    'end_header',
    '7 0 1 2',
    '8 -1.5 2.25 1000',
    '9 0.125 -7 42',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'cloud-ascii.ply'), ascii);
  // Binary: double x, y, z then a uchar, 25 bytes per vertex.
  const header = Buffer.from(
    'ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty double x\nproperty double y\nproperty double z\nproperty uchar red\nend_header\n',
    'latin1',
  );
  const body = Buffer.alloc(3 * 25);
  for (let row = 0; row < 3; row++) {
    for (let axis = 0; axis < 3; axis++)
      body.writeDoubleLE(expected[row * 3 + axis] as number, row * 25 + axis * 8);
    body.writeUInt8(200, row * 25 + 24);
  }
  writeFileSync(join(dir, 'cloud-binary.ply'), Buffer.concat([header, body]));
  // A PLY that is cut short is refused with its code.
  writeFileSync(join(dir, 'short.ply'), Buffer.concat([header, body.subarray(0, 40)]));

  const page = await openSender((url) => browser.open(url), `${server.url}/send`);
  for (const name of ['cloud-ascii.ply', 'cloud-binary.ply']) {
    await page.setInputFiles('#file', join(dir, name));
    assert.equal(await page.evaluate(() => window.pointstream.file), 3, name);
    const result = await page.evaluate((): Promise<RunResult> =>
      window.pointstream.start({ source: 'file', frames: 1, rate: 0 }),
    );
    assert.equal(result.ok, true, `${name}: ${result.errorCode}: ${result.reason}`);
    assert.deepEqual(received.at(-1), expected, name);
  }
  await page.setInputFiles('#file', join(dir, 'short.ply'));
  const code = await page.evaluate(() =>
    window.pointstream.file?.then(
      () => 'loaded',
      (e: { code?: string }) => e.code,
    ),
  );
  assert.equal(code, 'PS_ERR_PLY_TRUNCATED');
  assert.equal(received.length, 2);
});

void test('a server that shuts down mid-stream ends the run with its reason; every frame accounted for', async (t) => {
  const server = await startServer();
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await server.close();
  });
  let frames = 0;
  server.on('frame', () => frames++);
  const page = await openSender((url) => browser.open(url), `${server.url}/send`);
  // Until stopped (frames: 0), at 8 Hz: the run can only end through the server.
  await page.evaluate(() => {
    void window.pointstream.start({ points: 20_000, frames: 0, rate: 8 });
  });
  await page.waitForFunction(() => Number(document.getElementById('s-acked')?.textContent) >= 3);
  await server.close();
  const result = await page.evaluate(() => window.pointstream.result as Promise<RunResult>);
  assert.equal(result.ok, false);
  assert.equal(result.errorCode, 'PS_ERR_SESSION_CLOSED');
  assert.match(result.reason, /server shutting down/);
  assert.ok(result.framesAcked >= 3 && result.framesAcked <= frames);
  assert.equal(result.framesSent, result.framesAcked + result.framesRejected + result.framesLost);
  assert.match((await page.textContent('#error')) ?? '', /^PS_ERR_SESSION_CLOSED: /);
});

void test('/send checks NaN points before sending, and dropNonFinite (the checkbox) drops them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pointstream-send-nan-'));
  const server = await startServer();
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const received: Float32Array[] = [];
  server.on('frame', (frame) => received.push(frame.points.slice()));
  // An organised cloud as a depth camera gives it, written by real NumPy: no return is NaN.
  const file = join(dir, 'organised.npy');
  execFileSync(findPython('numpy'), [
    '-c',
    'import sys, numpy as np; np.save(sys.argv[1], np.array([[1, 2, 3], [np.nan, np.nan, np.nan], [4, 5, 6], [7, np.inf, 9]], dtype=np.float32))',
    file,
  ]);
  const page = await openSender((url) => browser.open(url), `${server.url}/send`);
  await page.setInputFiles('#file', file);
  assert.equal(await page.evaluate(() => window.pointstream.file), 4);

  const refused = await page.evaluate((): Promise<RunResult> =>
    window.pointstream.start({ source: 'file', frames: 2, rate: 0 }),
  );
  assert.equal(refused.ok, false);
  assert.equal(refused.errorCode, 'PS_ERR_FRAME_NON_FINITE');
  assert.match(refused.reason, /not sent: point 1 has a non-finite coordinate/);
  assert.match(refused.reason, /dropNonFinite/);
  assert.match(refused.reason, /--allow-non-finite/);
  assert.equal(refused.framesSent, 0);
  assert.equal(received.length, 0, 'nothing reached the server');

  await page.check('#drop-non-finite');
  const dropped = await page.evaluate((): Promise<RunResult> =>
    window.pointstream.start({ source: 'file', frames: 2, rate: 0 }),
  );
  assert.equal(dropped.ok, true, `${dropped.errorCode}: ${dropped.reason}`);
  assert.equal(dropped.nonFinitePointsDropped, 4);
  assert.deepEqual(
    received.map((points) => [...points]),
    [0, 1].map(() => [1, 2, 3, 4, 5, 6]),
  );
});
