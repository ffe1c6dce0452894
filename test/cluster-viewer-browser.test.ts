/**
 * The viewer page in real Chromium on node A draws a stream ingested on node C: previews over core
 * NATS (docs/bus.md, "Viewer previews"); the pixel check of test/browser-viewer.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FrameReceipt } from '../src/index.js';
import { haveWebBuild, screenshot } from './browser-helpers.js';
import { startTwoNodes, teardownList } from './support/cluster-viewer.js';
import { natsUnavailable } from './support/nats.js';
import {
  drawnPixels,
  launchViewerBrowser,
  openViewer,
  pageErrors,
  sendUntilShown,
  surface,
} from './support/viewer-page.js';

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
  getElementById(id: string): { textContent: string | null };
};

void test(
  'the viewer page on node A draws a stream ingested on node C (previews over NATS), pixels drawn',
  { skip: natsUnavailable(), timeout: 150_000 },
  async (t) => {
    assert.ok(haveWebBuild(), 'dist/web is not built: run "npm run build:web" first');
    // Torn down in reverse order of start: the bus goes last.
    const teardowns = teardownList(t);
    const { nodeA, nodeC, client } = await startTwoNodes(teardowns, {
      server: { viewer: { maxPoints: 100_000 } },
      portsC: [47510, 47589],
      portsA: [47610, 47689],
      stream: 'surface',
    });

    const browser = await launchViewerBrowser();
    teardowns.push(() => browser.close());
    const page = await openViewer(browser, `${nodeA.url}/viewer`);
    const before = await drawnPixels(page);
    assert.ok(before.drawn < 10, `${before.drawn} pixels drawn before any frame`);

    await page.evaluate(() => window.pointstreamViewer?.watch('surface'));
    const points = surface();
    const receipts: Promise<FrameReceipt>[] = [];
    await sendUntilShown(page, async () => receipts.push((await client.send(points)).receipt), {
      atLeast: 2,
      tries: 80,
      gapMs: 250,
    });
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
    assert.deepEqual(pageErrors(browser), []);
    // Node A fed the page from node C's previews; node C has no viewer of its own.
    assert.equal(nodeC.stats().viewers.length, 0);
    assert.ok((nodeC.stats().viewerPreviews?.previewsPublished ?? 0) >= 2);
    assert.ok((nodeA.stats().viewerPreviews?.previewsReceived ?? 0) >= 2);
  },
);
