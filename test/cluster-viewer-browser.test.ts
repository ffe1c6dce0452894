/**
 * The viewer page in real Chromium on node A draws a stream ingested on node C: previews over core
 * NATS (docs/bus.md, "Viewer previews"); the pixel check of test/browser-viewer.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { connect as natsConnect } from '@nats-io/transport-node';
import { connect } from '../src/index.js';
import { haveWebBuild, launchBrowser, screenshot } from './browser-helpers.js';
import { LOOPBACK, startServer } from './helpers.js';
import { ensureListed } from './support/cluster-viewer.js';
import { NatsServer, natsUnavailable } from './support/nats.js';

// The page's test hook (web/viewer/main.ts); this file type-checks without the DOM library.
declare const window: {
  pointstreamViewer?: {
    watch(stream: string): Promise<void>;
    state: string;
    error: string;
    framesShown: number;
    lastPointCount: number;
  };
};
declare const document: {
  querySelector(selector: string): unknown;
  createElement(tag: 'canvas'): {
    width: number;
    height: number;
    getContext(kind: '2d'): {
      drawImage(image: unknown, x: number, y: number): void;
      getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
    };
  };
  getElementById(id: string): { textContent: string | null; dataset: Record<string, string> };
};

/** WebGL on SwiftShader: headless Chromium here has no GPU. */
const WEBGL_ARGS = ['--use-angle=swiftshader', '--enable-unsafe-swiftshader'];

/** A wavy surface, 400 x 300 points: z = sin(x / 40) x cos(y / 30) x 20. */
function surface(width = 400, depth = 300): Float32Array {
  const points = new Float32Array(width * depth * 3);
  for (let i = 0; i < width * depth; i++) {
    const x = i % width;
    const y = Math.floor(i / width);
    points[i * 3] = x;
    points[i * 3 + 1] = y;
    points[i * 3 + 2] = Math.sin(x / 40) * Math.cos(y / 30) * 20;
  }
  return points;
}

/** Pixels of the viewer's canvas that differ from its background (#0b0e12) by more than 48 in sum. */
async function drawnPixels(page: Page): Promise<{ drawn: number; total: number }> {
  return page.evaluate(() => {
    const canvas = document.querySelector('#canvas-host canvas') as {
      width: number;
      height: number;
    };
    const copy = document.createElement('canvas');
    copy.width = canvas.width;
    copy.height = canvas.height;
    const context = copy.getContext('2d');
    context.drawImage(canvas, 0, 0);
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
    let drawn = 0;
    for (let i = 0; i < data.length; i += 4) {
      const diff =
        Math.abs((data[i] as number) - 0x0b) +
        Math.abs((data[i + 1] as number) - 0x0e) +
        Math.abs((data[i + 2] as number) - 0x12);
      if (diff > 48) drawn++;
    }
    return { drawn, total: data.length / 4 };
  });
}

void test(
  'the viewer page on node A draws a stream ingested on node C (previews over NATS), pixels drawn',
  { skip: natsUnavailable(), timeout: 150_000 },
  async (t) => {
    assert.ok(haveWebBuild(), 'dist/web is not built: run "npm run build:web" first');
    // Torn down in reverse order of start: the bus goes last.
    const teardowns: (() => unknown)[] = [];
    t.after(async () => {
      for (const teardown of teardowns.reverse()) await teardown();
    });
    const nats = await NatsServer.start();
    teardowns.push(() => nats.close());
    const nc = await natsConnect({ servers: nats.url });
    teardowns.push(() => nc.close());
    const viewer = { maxPoints: 100_000 };
    const nodeC = await startServer({
      bus: { url: nats.url, nodeId: 'C' },
      rtc: { bindAddress: LOOPBACK, portRange: [47510, 47589] },
      viewer,
    });
    teardowns.push(() => nodeC.close());
    const nodeA = await startServer({
      bus: { url: nats.url, nodeId: 'A' },
      rtc: { bindAddress: LOOPBACK, portRange: [47610, 47689] },
      viewer,
    });
    teardowns.push(() => nodeA.close());
    const client = await connect({
      signalingUrl: `${nodeC.url}/offer`,
      rtc: { bindAddress: LOOPBACK },
      stream: 'surface',
    });
    teardowns.push(() => client.close());
    const unlist = await ensureListed(nc, 'C', {
      tenant: 'public',
      stream: 'surface',
      session: client.sessionId ?? '',
    });
    teardowns.push(unlist);

    const browser = await launchBrowser({ extraArgs: WEBGL_ARGS });
    teardowns.push(() => browser.close());
    const page = await browser.open(`${nodeA.url}/viewer`, { timeoutMs: 30_000 });
    await page.waitForFunction(() => window.pointstreamViewer !== undefined, undefined, {
      timeout: 30_000,
    });
    const before = await drawnPixels(page);
    assert.ok(before.drawn < 10, `${before.drawn} pixels drawn before any frame`);

    await page.evaluate(() => window.pointstreamViewer?.watch('surface'));
    const points = surface();
    const receipts = [];
    for (let i = 0; i < 80; i++) {
      receipts.push((await client.send(points)).receipt);
      const shown = await page.evaluate(() => window.pointstreamViewer?.framesShown ?? 0);
      if (shown >= 2) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    for (const receipt of await Promise.all(receipts)) assert.equal(receipt.ok, true);
    const hook = await page.evaluate(() => ({ ...window.pointstreamViewer }));
    assert.equal(hook.state, 'watching', hook.error);
    assert.ok((hook.framesShown ?? 0) >= 2, `frames shown: ${hook.framesShown}`);
    // 120,000 points sent, budget 100,000: decimated on node C, drawn on node A's page.
    assert.equal(hook.lastPointCount, 100_000);
    // The overlay says where the stream runs (the hello's node), not "between sessions".
    const where = await page.evaluate(() => document.getElementById('o-session').textContent);
    assert.match(where ?? '', /^stream surface · session .+ · node C$/);
    const after = await drawnPixels(page);
    t.diagnostic(`${after.drawn} of ${after.total} pixels drawn`);
    assert.ok(
      after.drawn > after.total * 0.02,
      `only ${after.drawn} of ${after.total} pixels drawn`,
    );
    await screenshot(page, 'cluster-viewer');
    assert.deepEqual(
      browser.errors.filter((error) => !/Failed to load resource.*404/.test(error)),
      [],
    );
    // Node A fed the page from node C's previews; node C has no viewer of its own.
    assert.equal(nodeC.stats().viewers.length, 0);
    assert.ok((nodeC.stats().viewerPreviews?.previewsPublished ?? 0) >= 2);
    assert.ok((nodeA.stats().viewerPreviews?.previewsReceived ?? 0) >= 2);
  },
);
