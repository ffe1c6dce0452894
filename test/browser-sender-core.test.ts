import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import { launchBrowser } from './browser-helpers.js';
import type { BrowserSession } from './browser-helpers.js';
import { senderCases } from './support/sender-behaviour.js';

// The shared sender behaviour (test/support/sender-behaviour.ts) in Chromium, over the
// RTCDataChannel adapter (web/shared/rtc-channel.ts): test/browser/sender-core.page.ts, bundled
// here with esbuild as the pages are, runs each case with two RTCPeerConnections in one page.

declare const window: {
  senderSuite: { names: string[]; run(name: string): Promise<string | null> };
};

let browser: BrowserSession;
let page: Page;
let close: () => Promise<void>;

before(async () => {
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL('./browser/sender-core.page.ts', import.meta.url))],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: ['chrome120'],
    tsconfig: fileURLToPath(new URL('../web/tsconfig.json', import.meta.url)),
    logLevel: 'warning',
  });
  const script = bundle.outputFiles[0]?.text ?? '';
  // A page on 127.0.0.1 (an origin of its own, which the microphone grant covers).
  const server = createServer((request, response) => {
    if (request.url === '/suite.js') {
      response.writeHead(200, { 'content-type': 'text/javascript' });
      response.end(script);
    } else {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end('<!doctype html><title>sender core</title><script src="/suite.js"></script>');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  browser = await launchBrowser();
  page = await browser.open(`http://127.0.0.1:${port}/`, { timeoutMs: 60_000 });
  await page.waitForFunction(() => window.senderSuite !== undefined);
  close = async () => {
    await browser.close();
    await new Promise((resolve) => server.close(resolve));
  };
});

after(() => close?.());

void describe('frame sender core over RTCDataChannel in Chromium', { timeout: 120_000 }, () => {
  void it('the page has every shared case', async () => {
    assert.deepEqual(
      await page.evaluate(() => window.senderSuite.names),
      senderCases.map((testCase) => testCase.name),
    );
  });
  for (const { name } of senderCases) {
    void it(name, async () => {
      const failure = await page.evaluate((caseName) => window.senderSuite.run(caseName), name);
      assert.equal(failure, null);
      assert.deepEqual(browser.errors, []);
    });
  }
});
