import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ErrorCodes } from '../src/index.js';
import type { PointstreamServer, SessionEnd } from '../src/index.js';
import type { Logger } from '../src/util/logger.js';
import { haveWebBuild, launchBrowser } from './browser-helpers.js';
import { RawPeer, findPython, runProcess, startServer, waitFor } from './helpers.js';

/** What the server logged as a session ended: its level and fields. */
interface LoggedEnd {
  level: string;
  code: string;
  reason: string;
}

/** A logger that keeps the `session-end` lines. */
function endLogger(ends: LoggedEnd[]): Logger {
  const at =
    (level: string) =>
    (fields: object): void => {
      const line = fields as { event?: string; code?: string; reason?: string };
      if (line.event === 'session-end')
        ends.push({ level, code: line.code ?? '', reason: line.reason ?? '' });
    };
  const logger: Logger = {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
    isLevelEnabled: () => false,
  };
  return logger;
}

async function serverLoggingEnds(
  options: Parameters<typeof startServer>[0] = {},
): Promise<{ server: PointstreamServer; logged: LoggedEnd[]; ends: SessionEnd[] }> {
  const logged: LoggedEnd[] = [];
  const server = await startServer({ ...options, logger: endLogger(logged) });
  const ends: SessionEnd[] = [];
  server.on('sessionClosed', (end) => ends.push(end));
  return { server, logged, ends };
}

/** One plain raw frame: 1000 points of float32 x, y, z. */
const FRAME = new Uint8Array(new Float32Array(3000).fill(1.5).buffer);

// Several rounds: which of the channel's close and the connection's close the server sees first
// varies from run to run, and both must read as the client's normal end.
for (let round = 1; round <= 3; round++) {
  void test(
    `a client that closes its peer connection without closing the channel ends normally (round ${round})`,
    { timeout: 30_000 },
    async (t) => {
      const { server, logged, ends } = await serverLoggingEnds();
      t.after(() => server.close());
      const peer = new RawPeer('');
      t.after(() => peer.close());
      await peer.connect(`${server.url}/offer`, 'json');
      peer.send(FRAME);
      assert.equal((await peer.receipt(0)).type, 'receipt');
      peer.pc.close();
      await waitFor(() => ends.length === 1, 10_000, 'the session to end');
      assert.deepEqual(
        { code: ends[0]?.code, normal: ends[0]?.normal, reason: ends[0]?.reason },
        { code: ErrorCodes.SESSION_CLOSED, normal: true, reason: 'client closed' },
      );
      assert.deepEqual(logged, [
        { level: 'info', code: ErrorCodes.SESSION_CLOSED, reason: 'client closed' },
      ]);
    },
  );
}

void test('a client that sends DELETE ends normally', { timeout: 30_000 }, async (t) => {
  const { server, logged, ends } = await serverLoggingEnds();
  t.after(() => server.close());
  const peer = new RawPeer('');
  t.after(() => peer.close());
  await peer.connect(`${server.url}/offer`, 'json');
  peer.send(FRAME);
  await peer.receipt(0);
  const response = await fetch(new URL(peer.status.location as string, server.url), {
    method: 'DELETE',
  });
  assert.equal(response.status, 200);
  peer.close();
  await waitFor(() => ends.length === 1, 10_000, 'the session to end');
  assert.equal(ends[0]?.normal, true);
  assert.deepEqual(
    logged.map((l) => [l.level, l.code]),
    [['info', ErrorCodes.SESSION_CLOSED]],
  );
});

void test(
  'an aiortc client that closes its peer connection after its frames ends normally',
  { timeout: 90_000 },
  async (t) => {
    const python = findPython('aiortc, numpy');
    const sent = mkdtempSync(join(tmpdir(), 'ps-end-'));
    t.after(() => rmSync(sent, { recursive: true, force: true }));
    const { server, logged, ends } = await serverLoggingEnds();
    t.after(() => server.close());
    const client = fileURLToPath(new URL('./fixtures/clients/aiortc_client.py', import.meta.url));
    const result = await runProcess(python, [
      client,
      `${server.url}/offer`,
      '--frames',
      '2',
      '--points',
      '1000',
      '--save-dir',
      sent,
    ]);
    assert.equal(result.code, 0, result.stderr);
    await waitFor(() => ends.length === 1, 20_000, 'the session to end');
    assert.deepEqual(
      { code: ends[0]?.code, normal: ends[0]?.normal, frames: ends[0]?.stats.framesReceived },
      { code: ErrorCodes.SESSION_CLOSED, normal: true, frames: 2 },
    );
    assert.deepEqual(
      logged.map((l) => l.level),
      ['info'],
    );
  },
);

/** In the page: a plain-form client that sends one frame, then closes its peer connection only. */
const BROWSER_CLIENT = `async (offerUrl) => {
  const pc = new RTCPeerConnection();
  const channel = pc.createDataChannel('points');
  const gathered = new Promise((resolve) => {
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
  });
  await pc.setLocalDescription(await pc.createOffer());
  await gathered;
  const response = await fetch(offerUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sdp: pc.localDescription.sdp, type: 'offer' }),
  });
  const answer = await response.json();
  await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
  if (channel.readyState !== 'open') await new Promise((resolve) => (channel.onopen = resolve));
  const receipt = new Promise((resolve) => {
    channel.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === 'receipt') resolve(message);
    };
  });
  channel.send(new Float32Array(3000).fill(1.5));
  const got = await receipt;
  pc.close();
  return got.ok;
}`;

void test(
  'a Chromium (libwebrtc) client that closes its peer connection ends normally',
  { timeout: 90_000 },
  async (t) => {
    const { server, logged, ends } = await serverLoggingEnds();
    t.after(() => server.close());
    const browser = await launchBrowser();
    t.after(() => browser.close());
    const page = await browser.open(`${server.url}/`);
    const ok = await page.evaluate(`(${BROWSER_CLIENT})(${JSON.stringify(`${server.url}/offer`)})`);
    assert.equal(ok, true);
    await waitFor(() => ends.length === 1, 20_000, 'the session to end');
    assert.deepEqual(
      { code: ends[0]?.code, normal: ends[0]?.normal, frames: ends[0]?.stats.framesReceived },
      { code: ErrorCodes.SESSION_CLOSED, normal: true, frames: 1 },
    );
    assert.deepEqual(
      logged.map((l) => l.level),
      ['info'],
    );
  },
);

void test(
  'an idle timeout stays a failure: a warning, not normal',
  { timeout: 30_000 },
  async (t) => {
    const { server, logged, ends } = await serverLoggingEnds({ limits: { idleTimeoutMs: 300 } });
    t.after(() => server.close());
    const peer = new RawPeer('');
    t.after(() => peer.close());
    await peer.connect(`${server.url}/offer`, 'json');
    await waitFor(() => ends.length === 1, 10_000, 'the idle timeout');
    assert.equal(ends[0]?.normal, false);
    assert.match(ends[0]?.reason ?? '', /^idle for/);
    assert.deepEqual(
      logged.map((l) => l.level),
      ['warn'],
    );
  },
);

// The page's test hook (web/viewer/main.ts); this file type-checks without the DOM library.
declare const window: { pointstreamViewer?: { watch(id: string): Promise<void>; state: string } };
declare const document: { getElementById(id: string): { textContent: string; className: string } };

void test(
  'the viewer page shows a normal end of stream as "stream ended", not as a red error',
  { timeout: 90_000 },
  async (t) => {
    assert.ok(haveWebBuild(), 'dist/web is not built: run "npm run build:web" first');
    // A viewer follows its stream across sessions; the stream ends once its sender has been gone
    // for streamHoldMs.
    const { server, ends } = await serverLoggingEnds({ limits: { streamHoldMs: 500 } });
    t.after(() => server.close());
    const peer = new RawPeer('');
    t.after(() => peer.close());
    await peer.connect(`${server.url}/offer`, 'json');
    const session = server.stats().sessions[0]?.id as string;
    const browser = await launchBrowser();
    t.after(() => browser.close());
    const page = await browser.open(`${server.url}/viewer`);
    await page.waitForFunction(() => window.pointstreamViewer !== undefined);
    await page.evaluate((id) => window.pointstreamViewer?.watch(id), session);
    peer.send(FRAME);
    await peer.receipt(0);
    peer.pc.close();
    await waitFor(() => ends.length === 1, 10_000, 'the session to end');
    await page.waitForFunction(() => window.pointstreamViewer?.state !== 'watching');
    const shown = await page.evaluate(() => ({
      state: window.pointstreamViewer?.state,
      text: document.getElementById('error').textContent,
      className: document.getElementById('error').className,
    }));
    assert.deepEqual(shown, {
      state: 'ended',
      text: 'Stream ended: its sender left.',
      className: 'hint',
    });
  },
);
