/**
 * The viewer page in real Chromium colours a stream by its fields (issue 18): by height, then by
 * intensity (stripes along x, not a function of height), then RGB; the canvas pixels must differ
 * between the modes, each mode must draw, a colour the stream lacks is refused without ending the
 * view, and across nodes (previews over NATS) the colour travels too.
 *
 * The fields travel from a real client (`client.send(points, { fields })`) over WebRTC.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { connect } from '../src/index.js';
import type { PointFields } from '../src/wire/fields.js';
import { haveWebBuild, screenshot } from './browser-helpers.js';
import { LOOPBACK, startServer } from './helpers.js';
import { startTwoNodes, teardownList } from './support/cluster-viewer.js';
import { natsUnavailable } from './support/nats.js';
import {
  compareSnapshots,
  drawnPixels,
  launchViewerBrowser,
  openViewer,
  pageErrors,
  surface,
} from './support/viewer-page.js';

// The page's test hook (web/viewer/main.ts); this file type-checks without the DOM library.
interface Hook {
  watch(stream: string): Promise<void>;
  colourBy(colour: string): void;
  state: string;
  error: string;
  framesShown: number;
  lastPointCount: number;
  colour: string;
  lastColour: string;
  colours: readonly string[];
}
declare const window: { pointstreamViewer?: Hook };
declare const document: {
  getElementById(id: string): { textContent: string | null };
};

const rtc = { bindAddress: LOOPBACK };

/**
 * The fields of a surface frame: intensity in stripes 25 wide along x (40 or 100: nothing to do
 * with height; point 0 is 0, so that the ramp's dark end, which the pixel count takes for
 * background, colours one point only), ring = y / 10, rgb pure red.
 */
function fieldsOf(points: Float32Array): PointFields {
  const n = points.length / 3;
  const intensity = new Float32Array(n);
  const ring = new Uint16Array(n);
  const rgb = new Uint32Array(n).fill(0xff0000);
  for (let i = 0; i < n; i++) {
    intensity[i] = i === 0 ? 0 : Math.floor((points[i * 3] as number) / 25) % 2 === 0 ? 40 : 100;
    ring[i] = Math.floor((points[i * 3 + 1] as number) / 10);
  }
  return { intensity, ring, rgb };
}

/** Sends `points` every 250 ms until the page has drawn a frame coloured by `colour`. */
async function sendUntilColoured(
  page: Page,
  send: () => Promise<unknown>,
  colour: string,
  minFrames = 1,
): Promise<Hook> {
  const start = await page.evaluate(() => window.pointstreamViewer?.framesShown ?? 0);
  for (let i = 0; i < 80; i++) {
    await send();
    const hook = await page.evaluate(() => ({ ...window.pointstreamViewer }) as Hook);
    if (hook.lastColour === colour && hook.framesShown >= start + minFrames) return hook;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const hook = await page.evaluate(() => ({ ...window.pointstreamViewer }) as Hook);
  assert.fail(`no frame coloured by ${colour}: ${JSON.stringify(hook)}`);
}

void test(
  'the viewer page colours by height, intensity and RGB: pixels differ, each mode draws; an unknown field is refused and the view goes on',
  { timeout: 150_000 },
  async (t) => {
    assert.ok(haveWebBuild(), 'dist/web is not built: run "npm run build:web" first');
    const server = await startServer({ viewer: { maxPoints: 100_000 } });
    t.after(() => server.close());
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc, stream: 'striped' });
    t.after(() => client.close());
    const browser = await launchViewerBrowser();
    t.after(() => browser.close());
    const page = await openViewer(browser, `${server.url}/viewer`);
    await page.waitForSelector('tr[data-stream="striped"]', { timeout: 10_000 });
    await page.evaluate(() => window.pointstreamViewer?.watch('striped'));
    const points = surface();
    const fields = fieldsOf(points);
    const send = async (): Promise<void> => {
      assert.equal((await (await client.send(points, { fields })).receipt).ok, true);
    };

    // Height first (the default): the stream's fields reach the picker with its frames.
    let hook = await sendUntilColoured(page, send, 'height', 2);
    assert.equal(hook.state, 'watching', hook.error);
    assert.equal(hook.lastPointCount, 100_000);
    assert.deepEqual(hook.colours, ['height', 'rgb', 'intensity', 'ring']);
    const height = await drawnPixels(page, 'height');
    assert.ok(height.drawn > height.total * 0.02, `height: ${height.drawn} of ${height.total}`);
    const legend = await page.evaluate(() => document.getElementById('legend').textContent);
    assert.match(legend ?? '', /height \(z\)\s*-?\d/);
    await screenshot(page, 'viewer-colour-height');

    // Intensity: the same points, the stripes' colours.
    await page.evaluate(() => window.pointstreamViewer?.colourBy('intensity'));
    hook = await sendUntilColoured(page, send, 'intensity');
    const intensity = await drawnPixels(page, 'intensity');
    assert.ok(intensity.drawn > intensity.total * 0.02, `intensity: ${intensity.drawn} drawn`);
    const byIntensity = await compareSnapshots(page, 'height', 'intensity');
    t.diagnostic(
      `height ${height.drawn}, intensity ${intensity.drawn} pixels drawn; ${(byIntensity.differing * 100).toFixed(1)}% of the ${byIntensity.both} drawn in both differ`,
    );
    assert.ok(byIntensity.both > height.drawn * 0.8, 'the same points drawn in both');
    assert.ok(byIntensity.differing > 0.3, `only ${byIntensity.differing} of the pixels differ`);
    assert.match(
      (await page.evaluate(() => document.getElementById('legend').textContent)) ?? '',
      /intensity\s*0\s*100/,
    );
    await screenshot(page, 'viewer-colour-intensity');

    // RGB: every point is pure red.
    await page.evaluate(() => window.pointstreamViewer?.colourBy('rgb'));
    await sendUntilColoured(page, send, 'rgb');
    await drawnPixels(page, 'rgb');
    const byRgb = await compareSnapshots(page, 'intensity', 'rgb');
    t.diagnostic(`rgb: mean colour ${byRgb.meanB.map((c) => c.toFixed(0)).join(', ')}`);
    const [r, g, b] = byRgb.meanB;
    assert.ok(r > 150 && g < 60 && b < 60, `mean colour ${byRgb.meanB.join(', ')} is not red`);

    // A field the stream does not have: refused, said on the page; the frames keep coming, RGB.
    const before = hook.framesShown;
    await page.evaluate(() => window.pointstreamViewer?.colourBy('temperature'));
    await page.waitForFunction(
      () => /temperature/.test(window.pointstreamViewer?.error ?? ''),
      undefined,
      {
        timeout: 10_000,
      },
    );
    hook = await sendUntilColoured(page, send, 'rgb', 2);
    assert.equal(hook.state, 'watching');
    assert.ok(hook.framesShown > before);
    assert.equal(hook.colour, 'rgb', 'the picker went back to the choice the server kept');
    assert.match(hook.error, /no field "temperature" to colour by.*PS_ERR_FIELDS_INVALID/);
    assert.deepEqual(pageErrors(browser), []);
  },
);

void test(
  '/viewer#stream=NAME&colour=FIELD opens the stream coloured by that field',
  { timeout: 90_000 },
  async (t) => {
    assert.ok(haveWebBuild(), 'dist/web is not built: run "npm run build:web" first');
    const server = await startServer({ viewer: { maxPoints: 100_000 } });
    t.after(() => server.close());
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc, stream: 'linked' });
    t.after(() => client.close());
    const browser = await launchViewerBrowser();
    t.after(() => browser.close());
    const page = await openViewer(browser, `${server.url}/viewer#stream=linked&colour=ring`);
    const points = surface();
    const fields = fieldsOf(points);
    const hook = await sendUntilColoured(
      page,
      async () => assert.equal((await (await client.send(points, { fields })).receipt).ok, true),
      'ring',
    );
    assert.equal(hook.state, 'watching', hook.error);
    assert.equal(hook.colour, 'ring');
    // ring = y / 10 of y in 0..299: 0 to 29.
    assert.match(
      (await page.evaluate(() => document.getElementById('legend').textContent)) ?? '',
      /ring\s*0\s*29/,
    );
    const drawn = await drawnPixels(page, 'ring');
    assert.ok(drawn.drawn > drawn.total * 0.02, `${drawn.drawn} of ${drawn.total} drawn`);
  },
);

void test(
  'a stream without fields offers height only, and is drawn as before',
  { timeout: 90_000 },
  async (t) => {
    assert.ok(haveWebBuild(), 'dist/web is not built: run "npm run build:web" first');
    const server = await startServer({ viewer: { maxPoints: 100_000 } });
    t.after(() => server.close());
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc, stream: 'plain' });
    t.after(() => client.close());
    const browser = await launchViewerBrowser();
    t.after(() => browser.close());
    const page = await openViewer(browser, `${server.url}/viewer`);
    await page.waitForSelector('tr[data-stream="plain"]', { timeout: 10_000 });
    await page.evaluate(() => window.pointstreamViewer?.watch('plain'));
    const points = surface();
    const hook = await sendUntilColoured(
      page,
      async () => assert.equal((await (await client.send(points)).receipt).ok, true),
      'height',
      2,
    );
    assert.deepEqual(hook.colours, ['height']);
    const drawn = await drawnPixels(page, 'plain');
    assert.ok(drawn.drawn > drawn.total * 0.02, `${drawn.drawn} of ${drawn.total} drawn`);
    // Asking for intensity anyway: refused (the stream has no fields), the view goes on.
    await page.evaluate(() => window.pointstreamViewer?.colourBy('intensity'));
    await page.waitForFunction(
      () => /intensity/.test(window.pointstreamViewer?.error ?? ''),
      undefined,
      {
        timeout: 10_000,
      },
    );
    const after = await page.evaluate(() => ({ ...window.pointstreamViewer }) as Hook);
    assert.equal(after.state, 'watching');
    assert.equal(after.colour, 'height');
    assert.match(after.error, /no fields \(height only\)/);
  },
);

void test(
  'across nodes: the page on node A colours by intensity a stream node C ingests (the want carries the colour)',
  { skip: natsUnavailable(), timeout: 150_000 },
  async (t) => {
    assert.ok(haveWebBuild(), 'dist/web is not built: run "npm run build:web" first');
    const teardowns = teardownList(t);
    const { nodeA, client } = await startTwoNodes(teardowns, {
      server: { viewer: { maxPoints: 100_000 } },
      portsC: [47910, 47989],
      portsA: [48010, 48089],
      stream: 'surface',
    });
    const browser = await launchViewerBrowser();
    teardowns.push(() => browser.close());
    const page = await openViewer(browser, `${nodeA.url}/viewer`);
    await page.evaluate(() => window.pointstreamViewer?.watch('surface'));
    const points = surface();
    const fields = fieldsOf(points);
    const send = async (): Promise<void> => {
      assert.equal((await (await client.send(points, { fields })).receipt).ok, true);
    };
    let hook = await sendUntilColoured(page, send, 'height', 2);
    // The preview's START listed the stream's fields: node A's picker offers them.
    assert.deepEqual(hook.colours, ['height', 'rgb', 'intensity', 'ring']);
    await drawnPixels(page, 'height');
    await page.evaluate(() => window.pointstreamViewer?.colourBy('intensity'));
    hook = await sendUntilColoured(page, send, 'intensity');
    assert.equal(hook.state, 'watching', hook.error);
    const intensity = await drawnPixels(page, 'intensity');
    assert.ok(intensity.drawn > intensity.total * 0.02, `${intensity.drawn} drawn`);
    const diff = await compareSnapshots(page, 'height', 'intensity');
    t.diagnostic(`${(diff.differing * 100).toFixed(1)}% of ${diff.both} pixels differ`);
    assert.ok(diff.differing > 0.3, `only ${diff.differing} differ`);
    await screenshot(page, 'cluster-viewer-colour-intensity');
    assert.equal(nodeA.stats().viewerPreviews?.previewMessagesInvalid, 0);
  },
);
