import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCodes, connect } from '../src/index.js';
import type { FrameReceipt, PointstreamServer } from '../src/index.js';
import { decodePoints, encodePoints } from '../src/wire/encodings/index.js';
import type { ViewerFrame } from '../src/wire/viewer.js';
import { haveWebBuild, screenshot } from './browser-helpers.js';
import { LOOPBACK, startServer, waitFor } from './helpers.js';
import { NodeViewer } from './support/cluster-viewer.js';
import {
  drawnBox,
  drawnPixels,
  launchViewerBrowser,
  openViewer,
  pageErrors,
  sendUntilShown,
  surface,
} from './support/viewer-page.js';

const rtc = { bindAddress: LOOPBACK };
const TOKEN_A = 'viewer-test-token-aaaaaaaa';
const TOKEN_B = 'viewer-test-token-bbbbbbbb';

/** A ramp whose coordinates say which point they are: x = i, y = -i / 2, z = (i % 100) / 10. */
function rampPoints(count: number): Float32Array {
  const points = new Float32Array(count * 3);
  for (let i = 0; i < count; i++) {
    points[i * 3] = i;
    points[i * 3 + 1] = -i / 2;
    points[i * 3 + 2] = (i % 100) / 10;
  }
  return points;
}

// The viewer's wire format itself is tested byte by byte in test/unit/viewer-wire.test.ts.

void test(
  'a viewer watching a stream follows it across reconnects: frames of the new session keep coming',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({ viewer: { maxPoints: 5000, maxFps: 1000 } });
    t.after(() => server.close());
    const first = await connect({ signalingUrl: `${server.url}/offer`, rtc, stream: 'robot' });
    t.after(() => first.close());
    const viewer = new NodeViewer();
    t.after(() => viewer.close());
    const response = await viewer.offer(server.url, 'robot');
    assert.equal(response.status, 200);
    assert.deepEqual(
      {
        ...((await response.json()) as Record<string, unknown>),
        sdp: undefined,
        viewer: undefined,
      },
      {
        sdp: undefined,
        type: 'answer',
        viewer: undefined,
        stream: 'robot',
        session: first.sessionId,
      },
    );
    await waitFor(() => viewer.controls.some((c) => c.type === 'hello'), 10_000, 'hello');
    assert.equal((viewer.controls[0] as { stream?: string }).stream, 'robot');
    const points = rampPoints(1000);
    for (let i = 0; viewer.frames.length === 0 && i < 50; i++) {
      assert.equal((await (await first.send(points)).receipt).ok, true);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(viewer.frames.length > 0, true, 'a frame of the first session');

    // The sender goes away and comes back as a new session of the same stream: the viewer stays
    // and gets the new session's frames (numbered from 0 again, as a plain client would).
    await first.close();
    await waitFor(
      () => server.stats().streams.some((s) => s.name === 'robot' && s.state === 'waiting'),
      10_000,
      'the stream waiting for its sender',
    );
    assert.equal(viewer.closed, false);
    const before = viewer.frames.length;
    const second = await connect({ signalingUrl: `${server.url}/offer`, rtc, stream: 'robot' });
    t.after(() => second.close());
    for (let i = 0; viewer.frames.length === before && i < 50; i++) {
      assert.equal((await (await second.send(points)).receipt).ok, true);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(viewer.frames.length > before, 'a frame of the second session');
    const stats = server.stats().viewers;
    assert.deepEqual(
      stats.map((v) => [v.stream, v.sessionId]),
      [['robot', second.sessionId]],
    );
    // Unknown streams are refused like foreign ones.
    const other = new NodeViewer();
    t.after(() => other.close());
    assert.equal((await other.offer(server.url, 'no-such-stream')).status, 404);
    assert.equal((await other.offer(server.url, 'bad name')).status, 400);
  },
);

async function sessionOf(server: PointstreamServer): Promise<string> {
  await waitFor(() => server.stats().sessions.length === 1, 10_000, 'the session');
  return server.stats().sessions[0]?.id as string;
}

void test(
  'a viewer gets decimated frames of its session; a lagging viewer causes drops, never ingest errors',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({ viewer: { maxPoints: 5000, maxFps: 1000 } });
    t.after(() => server.close());
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc });
    t.after(() => client.close());
    const session = await sessionOf(server);

    const viewer = new NodeViewer();
    t.after(() => viewer.close());
    viewer.autoAck = false;
    const response = await viewer.offer(server.url, { session });
    assert.equal(response.status, 200);
    assert.match(viewer.location ?? '', /^\/viewer\/peers\/[\w-]{22}$/);
    await waitFor(() => viewer.controls.some((c) => c.type === 'hello'), 10_000, 'hello');
    assert.deepEqual(
      { ...viewer.controls[0], viewer: undefined },
      // A client that names no stream feeds one named after its session.
      {
        type: 'hello',
        viewer: undefined,
        stream: session,
        session,
        maxPoints: 5000,
        maxFps: 1000,
        fields: [],
      },
    );

    // The viewer never acknowledges: after the first frame every frame is dropped for it, and
    // the client's frames are all received and acknowledged as usual.
    const points = rampPoints(20_000);
    const receipts = [];
    for (let i = 0; i < 10; i++) receipts.push((await client.send(points)).receipt);
    for (const receipt of await Promise.all(receipts)) assert.equal(receipt.ok, true);
    await waitFor(() => viewer.frames.length >= 1, 10_000, 'the first viewer frame');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const unacked = viewer.frames.length;
    assert.equal(unacked, 1, `${unacked} frames sent without an ack`);
    const first = viewer.frames[0] as ViewerFrame;
    assert.equal(first.pointCount, 5000);
    assert.equal(first.sourcePointCount, 20_000);
    assert.equal(first.dropped, 0);
    // Stride 4: point i is source point 4i.
    const floats = decodePoints(first.payload, first.encoding, first.pointCount);
    assert.ok(Math.abs((floats[3 * 1234] as number) - 4 * 1234) <= 20_000 / 131070 + 1e-3);
    assert.equal(server.stats().totals.framesReceived, 10);
    assert.equal(server.stats().totals.framesRejected, 0);

    // Once it acknowledges, it gets the next frame, which tells it how many it missed.
    viewer.ack((viewer.frames[unacked - 1] as ViewerFrame).seq);
    for (let i = 0; viewer.frames.length === unacked && i < 50; i++) {
      assert.equal((await (await client.send(points)).receipt).ok, true);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const next = viewer.frames[unacked];
    assert.ok(next, 'a frame after the ack');
    assert.ok(next.dropped >= 10 - unacked, `dropped ${next.dropped}`);
    assert.ok(next.seq > first.seq);

    const stopped = await fetch(`${server.url}${viewer.location}`, { method: 'DELETE' });
    assert.equal(stopped.status, 200);
    await waitFor(() => viewer.closed, 10_000, 'the viewer channel to close after DELETE');
    assert.ok(
      viewer.controls.some((c) => c.type === 'closing' && c.code === ErrorCodes.SESSION_CLOSED),
    );
  },
);

void test(
  "a q16 session: the viewer gets the sender's q16 payload byte for byte within the budget, decimated above it",
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({ viewer: { maxPoints: 5000, maxFps: 1000 } });
    t.after(() => server.close());
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc, encoding: 'q16' });
    t.after(() => client.close());
    const session = await sessionOf(server);
    const viewer = new NodeViewer();
    t.after(() => viewer.close());
    assert.equal((await viewer.offer(server.url, { session })).status, 200);
    await waitFor(() => viewer.controls.some((c) => c.type === 'hello'), 10_000, 'hello');

    // Within the budget: the sender's own q16 payload, byte for byte. (The server forwards it
    // without re-encoding; q16 is idempotent, so re-encoding would give these bytes too.)
    const small = rampPoints(3000);
    assert.equal((await (await client.send(small)).receipt).ok, true);
    await waitFor(() => viewer.frames.length === 1, 10_000, 'the first viewer frame');
    assert.deepEqual(viewer.frames[0]?.payload, encodePoints(small, 'q16').bytes);

    // Above it: decoded by the server, decimated to the budget and quantized afresh.
    const large = rampPoints(20_000);
    assert.equal((await (await client.send(large)).receipt).ok, true);
    await waitFor(() => viewer.frames.length === 2, 10_000, 'the second viewer frame');
    const frame = viewer.frames[1] as ViewerFrame;
    assert.equal(frame.pointCount, 5000);
    assert.equal(frame.sourcePointCount, 20_000);
  },
);

void test(
  'auth: only the token that owns a session may watch it (others get 404, no token 401)',
  { timeout: 30_000 },
  async (t) => {
    const server = await startServer({
      tokens: [TOKEN_A, TOKEN_B],
      limits: { streamHoldMs: 300 },
    });
    t.after(() => server.close());
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc, token: TOKEN_A });
    t.after(() => client.close());
    await waitFor(() => server.stats().sessions.length === 1, 10_000, 'the session');
    const session = server.stats().sessions[0]?.id as string;

    const other = new NodeViewer();
    t.after(() => other.close());
    const refused = await other.offer(server.url, { session }, TOKEN_B);
    assert.equal(refused.status, 404);
    assert.deepEqual(
      ((await refused.json()) as { error: { code: string } }).error.code,
      ErrorCodes.SESSION_NOT_FOUND,
    );
    const anonymous = await other.offer(server.url, { session });
    assert.equal(anonymous.status, 401);
    const missing = await other.offer(server.url, { session: 'no-such-session' }, TOKEN_A);
    assert.equal(missing.status, 404);

    const owner = new NodeViewer();
    t.after(() => owner.close());
    assert.equal((await owner.offer(server.url, { session }, TOKEN_A)).status, 200);
    await waitFor(() => owner.controls.some((c) => c.type === 'hello'), 10_000, 'hello');
    // Another token cannot end it either.
    const deleted = await fetch(`${server.url}${owner.location}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TOKEN_B}` },
    });
    assert.equal(deleted.status, 404);
    // The session ends: its viewers wait for the stream's next session, and are told and closed
    // once the stream is forgotten (streamHoldMs after its last session).
    await client.close();
    await waitFor(() => owner.closed, 10_000, 'the viewer channel to close with its stream');
    assert.ok(owner.controls.some((c) => c.type === 'closing' && c.message === 'its sender left'));
  },
);

void test(
  'viewer limits: 503 beyond maxViewers, bad bodies 400; closing the server closes viewers',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({ viewer: { maxViewers: 1 } });
    t.after(() => server.close());
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc });
    t.after(() => client.close());
    const session = await sessionOf(server);

    const bad = await fetch(`${server.url}/viewer/offer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sdp: 'v=0\r\n', type: 'offer', session }),
    });
    assert.equal(bad.status, 400);
    const noSession = await fetch(`${server.url}/viewer/offer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sdp: 'v=0', type: 'offer' }),
    });
    assert.equal(noSession.status, 400);

    const first = new NodeViewer();
    t.after(() => first.close());
    assert.equal((await first.offer(server.url, { session })).status, 200);
    await waitFor(() => first.controls.some((c) => c.type === 'hello'), 10_000, 'hello');
    const second = new NodeViewer();
    t.after(() => second.close());
    const full = await second.offer(server.url, { session });
    assert.equal(full.status, 503);
    assert.equal(full.headers.get('retry-after'), '5');
    assert.equal(
      ((await full.json()) as { error: { code: string } }).error.code,
      ErrorCodes.SERVER_FULL,
    );

    await server.close();
    await waitFor(() => first.closed, 10_000, 'the viewer channel to close with the server');
    assert.ok(first.controls.some((c) => c.type === 'closing'));
  },
);

void test(
  'viewer offers count against the per-client offer rate: 429 with Retry-After beyond it',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({ limits: { maxOffersPerMinute: 3 } });
    t.after(() => server.close());
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc });
    t.after(() => client.close());
    const session = await sessionOf(server);
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 4; i++) {
      const viewer = new NodeViewer();
      t.after(() => viewer.close());
      last = await viewer.offer(server.url, { session });
      statuses.push(last.status);
      viewer.close();
    }
    // The ingest offer does not count against viewer offers (their own budget).
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    assert.ok(Number(last?.headers.get('retry-after')) >= 1);
    assert.equal(
      ((await last?.json()) as { error: { code: string } }).error.code,
      ErrorCodes.TOO_MANY_REQUESTS,
    );
  },
);

// ---- the page, in real Chromium ----

// The page's test hook (web/viewer/main.ts); this file type-checks without the DOM library.
declare const window: {
  pointstreamViewer?: {
    watch(stream: string): Promise<void>;
    stream: string | undefined;
    state: string;
    error: string;
    framesShown: number;
    lastPointCount: number;
    dropped: number;
    lastTransferMs: number;
    lastDrawMs: number;
  };
};
declare const document: {
  getElementById(id: string): {
    textContent: string | null;
    dataset: Record<string, string>;
    hidden: boolean;
  };
  documentElement: { scrollWidth: number };
};

void test(
  "the viewer page draws a Node client's frames: decimated to maxPoints, pixels drawn, screenshot",
  { timeout: 120_000 },
  async (t) => {
    assert.ok(haveWebBuild(), 'dist/web is not built: run "npm run build:web" first');
    const server = await startServer({ viewer: { maxPoints: 100_000 } });
    t.after(() => server.close());
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc });
    t.after(() => client.close());
    const session = await sessionOf(server);
    const browser = await launchViewerBrowser();
    t.after(() => browser.close());
    const page = await openViewer(browser, `${server.url}/viewer`);

    // The session is listed (GET /stats, refreshed every second).
    await page.waitForSelector(`tr[data-session="${session}"]`, { timeout: 10_000 });
    const before = await drawnPixels(page);
    assert.ok(before.drawn < 10, `${before.drawn} pixels drawn before any frame`);

    await page.evaluate((id) => window.pointstreamViewer?.watch(id), session);
    const points = surface();
    const receipts: Promise<FrameReceipt>[] = [];
    await sendUntilShown(page, async () => receipts.push((await client.send(points)).receipt), {
      atLeast: 2,
      tries: 60,
      gapMs: 250,
    });
    for (const receipt of await Promise.all(receipts)) assert.equal(receipt.ok, true);
    const hook = await page.evaluate(() => ({ ...window.pointstreamViewer }));
    assert.equal(hook.state, 'watching', hook.error);
    assert.ok((hook.framesShown ?? 0) >= 2, `frames shown: ${hook.framesShown}`);
    // 120,000 points sent, budget 100,000.
    assert.equal(hook.lastPointCount, Math.min(points.length / 3, 100_000));
    const overlay = await page.evaluate(() => {
      const element = document.getElementById('o-points');
      return { text: element.textContent, count: element.dataset.count };
    });
    assert.equal(overlay.count, '100000');
    assert.equal(overlay.text, '100,000 of 120,000');

    const after = await drawnPixels(page);
    t.diagnostic(
      `${after.drawn} of ${after.total} pixels drawn; last frame: transfer ${hook.lastTransferMs?.toFixed(1)} ms, draw ${hook.lastDrawMs?.toFixed(1)} ms`,
    );
    assert.ok(
      after.drawn > after.total * 0.02,
      `only ${after.drawn} of ${after.total} pixels drawn`,
    );
    await screenshot(page, 'viewer');
    // No console errors (a 404 for a resource the browser asks for on its own is not the page's).
    assert.deepEqual(pageErrors(browser), []);

    // Closing the server closes the page's viewer connection, and the page says so (a normal end).
    await server.close();
    await page.waitForFunction(() => window.pointstreamViewer?.state === 'ended', undefined, {
      timeout: 15_000,
    });
    const error = await page.evaluate(() => document.getElementById('error').textContent);
    assert.match(error ?? '', /server shutting down/);
  },
);

void test(
  "with auth on the page shows 401 without a token and 404 for another token's session",
  { timeout: 90_000 },
  async (t) => {
    assert.ok(haveWebBuild(), 'dist/web is not built: run "npm run build:web" first');
    const server = await startServer({ tokens: [TOKEN_A, TOKEN_B] });
    t.after(() => server.close());
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc, token: TOKEN_A });
    t.after(() => client.close());
    await waitFor(() => server.stats().sessions.length === 1, 10_000, 'the session');
    const session = server.stats().sessions[0]?.id as string;
    const browser = await launchViewerBrowser();
    t.after(() => browser.close());

    const anonymous = await openViewer(browser, `${server.url}/viewer`);
    await anonymous.waitForFunction(
      () => /401/.test(document.getElementById('status').textContent ?? ''),
      undefined,
      { timeout: 10_000 },
    );
    // Auth on: the page shows its token field (hidden without auth, see the 420 px test).
    assert.equal(
      await anonymous.evaluate(() => document.getElementById('token-field').hidden),
      false,
    );
    assert.match(
      (await anonymous.evaluate(() => document.getElementById('empty-command').textContent)) ?? '',
      /--token …$/,
    );

    const other = await openViewer(browser, `${server.url}/viewer#token=${TOKEN_B}`);
    // Token B sees no sessions, and cannot watch A's.
    await other.waitForFunction(
      () => /^0 live sessions/.test(document.getElementById('status').textContent ?? ''),
      undefined,
      { timeout: 10_000 },
    );
    const refused = await other.evaluate(
      (id) =>
        window.pointstreamViewer?.watch(id).then(
          () => 'watching',
          (error: Error) => error.message,
        ),
      session,
    );
    assert.match(refused ?? '', /HTTP 404/);
    const shown = await other.evaluate(() => document.getElementById('error').textContent);
    assert.match(shown ?? '', /404: no such stream/);

    const owner = await openViewer(
      browser,
      `${server.url}/viewer#token=${TOKEN_A}&session=${session}`,
    );
    await owner.waitForFunction(() => window.pointstreamViewer?.state === 'watching', undefined, {
      timeout: 20_000,
    });
    await client.send(surface(100, 100));
    await owner.waitForFunction(
      () => (window.pointstreamViewer?.framesShown ?? 0) >= 1,
      undefined,
      {
        timeout: 20_000,
      },
    );
    assert.equal(await owner.evaluate(() => window.pointstreamViewer?.lastPointCount), 10_000);
  },
);

/**
 * Measurement, not a check (timing on a shared machine): how many frames per second the page
 * shows at the default budget of 250,000 points. POINTSTREAM_VIEWER_MEASURE=1 runs it.
 */
void test(
  'measure: viewer frames/s at 250,000 points',
  { timeout: 120_000, skip: process.env.POINTSTREAM_VIEWER_MEASURE !== '1' },
  async (t) => {
    assert.ok(haveWebBuild(), 'dist/web is not built: run "npm run build:web" first');
    const server = await startServer();
    t.after(() => server.close());
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc });
    t.after(() => client.close());
    const session = await sessionOf(server);
    const browser = await launchViewerBrowser();
    t.after(() => browser.close());
    const page = await openViewer(browser, `${server.url}/viewer#session=${session}`);
    await page.waitForFunction(() => window.pointstreamViewer?.state === 'watching');
    for (const [pointsPerFrame, rate] of [
      [250_000, 8],
      [1_000_000, 4],
    ] as const) {
      const points = surface(1000, pointsPerFrame / 1000);
      const seconds = 10;
      const before = await page.evaluate(() => ({ ...window.pointstreamViewer }));
      const receivedBefore = server.stats().totals.framesReceived;
      const started = performance.now();
      const receipts = [];
      for (let i = 0; performance.now() - started < seconds * 1000; i++) {
        receipts.push((await client.send(points)).receipt);
        const next = started + ((i + 1) * 1000) / rate;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
      }
      const elapsed = (performance.now() - started) / 1000;
      for (const receipt of await Promise.all(receipts)) assert.equal(receipt.ok, true);
      const after = await page.evaluate(() => ({ ...window.pointstreamViewer }));
      const shown = (after.framesShown ?? 0) - (before.framesShown ?? 0);
      t.diagnostic(
        `${pointsPerFrame} points at ${rate} Hz: ingest ${((server.stats().totals.framesReceived - receivedBefore) / elapsed).toFixed(2)} frames/s, ` +
          `viewer ${(shown / elapsed).toFixed(2)} frames/s of ${after.lastPointCount} points, ` +
          `dropped ${(after.dropped ?? 0) - (before.dropped ?? 0)}, last frame: transfer ${after.lastTransferMs?.toFixed(1)} ms, draw ${after.lastDrawMs?.toFixed(1)} ms`,
      );
      assert.ok(shown > 0);
    }
  },
);

void test(
  'the page at 420 px: an empty state with the commands, /#stream=NAME opens the stream when it starts and follows it across a reconnect, the cloud framed',
  { timeout: 120_000 },
  async (t) => {
    assert.ok(haveWebBuild(), 'dist/web is not built: run "npm run build:web" first');
    const server = await startServer({ viewer: { maxPoints: 100_000 } });
    t.after(() => server.close());
    const browser = await launchViewerBrowser();
    t.after(() => browser.close());
    // Opened before the sender starts: the page waits for the stream.
    const page = await openViewer(browser, `${server.url}/#stream=robot-7`);
    await page.setViewportSize({ width: 420, height: 860 });
    await page.waitForFunction(
      () => /^0 live sessions/.test(document.getElementById('status').textContent ?? ''),
      undefined,
      { timeout: 10_000 },
    );
    const emptyState = await page.evaluate(() => ({
      hidden: document.getElementById('empty').hidden,
      title: document.getElementById('empty-title').textContent,
      command: document.getElementById('empty-command').textContent,
      tokenHidden: document.getElementById('token-field').hidden,
      width: document.documentElement.scrollWidth,
    }));
    assert.equal(emptyState.hidden, false);
    assert.match(emptyState.title ?? '', /No stream yet/);
    assert.equal(
      emptyState.command,
      `npx pointstream send --signaling ${server.url}/offer --stream lidar-1`,
    );
    // No auth: no token field. Nothing wider than the window.
    assert.equal(emptyState.tokenHidden, true);
    assert.ok(emptyState.width <= 420, `page is ${emptyState.width} px wide`);
    await screenshot(page, 'viewer-420-empty');

    const first = await connect({ signalingUrl: `${server.url}/offer`, rtc, stream: 'robot-7' });
    t.after(() => first.close());
    await page.waitForFunction(() => window.pointstreamViewer?.stream === 'robot-7', undefined, {
      timeout: 20_000,
    });
    const cloud = surface(400, 100);
    const sendCloudUntilShown = async (
      client: Awaited<ReturnType<typeof connect>>,
      atLeast: number,
    ): Promise<void> => {
      const shown = await sendUntilShown(
        page,
        async () => assert.equal((await (await client.send(cloud)).receipt).ok, true),
        { atLeast, tries: 100, gapMs: 100 },
      );
      if (shown < atLeast) assert.fail(`fewer than ${atLeast} frames shown`);
    };
    await sendCloudUntilShown(first, 1);
    const shownBefore = await page.evaluate(() => window.pointstreamViewer?.framesShown ?? 0);

    // The sender reconnects (a new session of the same stream): the page keeps drawing it.
    await first.close();
    const second = await connect({ signalingUrl: `${server.url}/offer`, rtc, stream: 'robot-7' });
    t.after(() => second.close());
    await sendCloudUntilShown(second, shownBefore + 1);
    assert.equal(await page.evaluate(() => window.pointstreamViewer?.state), 'watching');
    await page.waitForFunction(
      (id) => (document.getElementById('o-session').textContent ?? '').includes(id.slice(0, 8)),
      second.sessionId as string,
      { timeout: 10_000 },
    );
    assert.equal(await page.evaluate(() => document.getElementById('empty').hidden), true);

    // Framed: the cloud spans most of the canvas's width and is cut nowhere.
    const box = await drawnBox(page);
    assert.ok(box, 'nothing drawn');
    t.diagnostic(`drawn box ${JSON.stringify(box)}`);
    assert.ok(box.right - box.left >= 0.6, `the cloud spans ${box.right - box.left} of the width`);
    assert.ok(box.left > 0 && box.right < 1 && box.top > 0 && box.bottom < 1, JSON.stringify(box));
    assert.ok(
      (await page.evaluate(() => document.documentElement.scrollWidth)) <= 420,
      'nothing wider than the window',
    );
    await screenshot(page, 'viewer-420-cloud');
    assert.deepEqual(pageErrors(browser), []);
  },
);
