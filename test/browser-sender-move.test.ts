/**
 * The /send page through a node that drains: told to move (`closing` `PS_ERR_SESSION_MOVED`), it
 * connects again at once through the same address and goes on numbering, as `send` does, with
 * nothing lost. Real Chromium, a real server on 127.0.0.1; the server's `Session.moveAway()` is
 * what a draining cluster node calls on each session.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ReceivedFrame } from '../src/index.js';
import { haveWebBuild, launchBrowser } from './browser-helpers.js';
import { captureSessions, startServer, waitFor } from './helpers.js';

interface RunResult {
  ok: boolean;
  reason: string;
  errorCode: string | null;
  sessionId: string | null;
  framesSent: number;
  framesAcked: number;
  framesLost: number;
  reconnects: number;
}

declare const window: {
  pointstream: { ready: true; start(options: Record<string, unknown>): Promise<RunResult> };
};

assert.ok(
  haveWebBuild(),
  'dist/web is not built: run "npm run build:web" first (npm test does it)',
);

void test(
  'the /send page moves with its session: reconnects at once, nothing lost, numbering goes on',
  { timeout: 120_000 },
  async (t) => {
    // moveAway() on one of them is what a draining node does.
    const sessions = captureSessions(t);
    const server = await startServer();
    const browser = await launchBrowser();
    t.after(async () => {
      await browser.close();
      await server.close();
    });
    const frames: { seq: number; session: string }[] = [];
    server.on('frame', (frame: ReceivedFrame) =>
      frames.push({ seq: frame.seq, session: frame.sessionId }),
    );
    const page = await browser.open(`${server.url}/send`);
    await page.waitForFunction(() => window.pointstream?.ready === true);
    const total = 24;
    const run = page.evaluate(
      (frameCount) =>
        window.pointstream.start({
          source: 'random',
          points: 50_000,
          seed: 3,
          frames: frameCount,
          rate: 8,
        }),
      total,
    );
    await waitFor(() => frames.length >= 6, 30_000, '6 frames before the move');
    await sessions[0]?.moveAway();
    const result = await run;
    assert.equal(
      result.ok,
      true,
      `${result.errorCode}: ${result.reason}; ${browser.errors.join('\n')}`,
    );
    assert.equal(result.reconnects, 1);
    assert.equal(result.framesAcked, total);
    assert.equal(result.framesLost, 0);
    // Every frame once, numbered 0..total-1 over the two sessions.
    assert.deepEqual(
      frames.map((frame) => frame.seq).sort((a, b) => a - b),
      Array.from({ length: total }, (_, seq) => seq),
    );
    assert.equal(new Set(frames.map((frame) => frame.session)).size, 2);
    assert.equal(result.sessionId, frames[frames.length - 1]?.session);
  },
);
