import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';

/**
 * Real Chromium for browser tests (Debian's /usr/bin/chromium, driven by playwright-core). The flags
 * make WebRTC work on a loopback-only machine: Chromium ignores loopback candidates unless allowed,
 * and without the microphone permission it hides local addresses behind mDNS names that nothing
 * here resolves (shared notes: webrtc-facts.md).
 */

export const CHROMIUM_PATH = process.env.POINTSTREAM_CHROMIUM ?? '/usr/bin/chromium';

export const ARTIFACTS_DIR = fileURLToPath(new URL('../test-artifacts/', import.meta.url));

export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--mute-audio',
  // A page in a background tab must not be throttled while it streams.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
];

/** Whether Chromium is installed here (the tests need it; .ci/run installs Debian's `chromium`). */
export function haveChromium(): boolean {
  return existsSync(CHROMIUM_PATH);
}

export interface BrowserSession {
  readonly browser: Browser;
  readonly context: BrowserContext;
  /** Opens `url` in a new page whose every action and wait times out after `timeoutMs`. */
  open(url: string, options?: { timeoutMs?: number }): Promise<Page>;
  /** Browser console errors and page errors, for assertions and failure messages. */
  readonly errors: string[];
  close(): Promise<void>;
}

/** Launches headless Chromium with WebRTC on loopback. Close it in `t.after`. */
export async function launchBrowser(
  options: { extraArgs?: readonly string[] } = {},
): Promise<BrowserSession> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS, ...(options.extraArgs ?? [])],
    timeout: 30_000,
  });
  const errors: string[] = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    // Plain 127.0.0.1 host candidates (the page itself never asks for the microphone).
    await context.grantPermissions(['microphone']);
    return {
      browser,
      context,
      errors,
      async open(url, { timeoutMs = 30_000 } = {}) {
        const page = await context.newPage();
        page.setDefaultTimeout(timeoutMs);
        page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
        page.on('console', (message) => {
          if (message.type() === 'error') errors.push(`console: ${message.text()}`);
        });
        // 'commit', not 'load': a page that works on load may hold its load event back.
        await page.goto(url, { waitUntil: 'commit' });
        return page;
      },
      async close() {
        await context.close().catch(() => undefined);
        await browser.close();
      },
    };
  } catch (error) {
    await browser.close();
    throw error;
  }
}

/** Saves a full-page screenshot as test-artifacts/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = `${ARTIFACTS_DIR}${name.replace(/[^A-Za-z0-9._-]/g, '_')}.png`;
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Whether the web pages are built (the tests run `npm run build:web` first, as `npm test` does). */
export function haveWebBuild(): boolean {
  return existsSync(fileURLToPath(new URL('../dist/web/viewer/index.html', import.meta.url)));
}
