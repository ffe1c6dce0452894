/**
 * What the viewer page tests share (test/browser-viewer.test.ts, test/browser-viewer-colour.test.ts,
 * test/cluster-viewer-browser.test.ts): Chromium with WebGL, the page opened until its test hook is
 * there, the wavy surface they send, and the canvas pixels read back.
 *
 * The functions run in the page keep their loops inline (no helper functions): the test runner's
 * transform would name a helper, and the page has no such name.
 */
import type { Page } from 'playwright-core';
import { launchBrowser } from '../browser-helpers.js';
import type { BrowserSession } from '../browser-helpers.js';

// The page's globals this file reads; it type-checks without the DOM library.
declare const window: {
  pointstreamViewer?: { framesShown: number };
  snapshots?: Record<string, Uint8ClampedArray>;
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
};

/** WebGL on SwiftShader: headless Chromium here has no GPU. */
export const WEBGL_ARGS: readonly string[] = [
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
];

/** Chromium (test/browser-helpers.ts) with WebGL on SwiftShader. Close it in `t.after`. */
export function launchViewerBrowser(): Promise<BrowserSession> {
  return launchBrowser({ extraArgs: WEBGL_ARGS });
}

/** Opens `url` (actions time out after 30 s) and waits up to 30 s for the page's test hook. */
export async function openViewer(browser: BrowserSession, url: string): Promise<Page> {
  const page = await browser.open(url, { timeoutMs: 30_000 });
  await page.waitForFunction(() => window.pointstreamViewer !== undefined, undefined, {
    timeout: 30_000,
  });
  return page;
}

/** The browser's errors, less a 404 for a resource the browser asks for on its own. */
export function pageErrors(browser: BrowserSession): string[] {
  return browser.errors.filter((error) => !/Failed to load resource.*404/.test(error));
}

/** A wavy surface, 400 x 300 points: z = sin(x / 40) x cos(y / 30) x 20, so colours span the ramp. */
export function surface(width = 400, depth = 300): Float32Array {
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

/**
 * Calls `send` (every `gapMs`, at most `tries` times) until the page has shown `atLeast` frames in
 * all; returns how many it has shown, which may be fewer when the tries ran out.
 */
export async function sendUntilShown(
  page: Page,
  send: () => Promise<unknown>,
  { atLeast, tries, gapMs }: { atLeast: number; tries: number; gapMs: number },
): Promise<number> {
  let shown = 0;
  for (let i = 0; i < tries; i++) {
    await send();
    shown = await page.evaluate(() => window.pointstreamViewer?.framesShown ?? 0);
    if (shown >= atLeast) return shown;
    await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  return shown;
}

/**
 * Pixels of the viewer's canvas that differ from its background (#0b0e12) by more than 48 in sum.
 * With `keep`, the pixels stay in the page under that name, for `compareSnapshots`.
 */
export async function drawnPixels(
  page: Page,
  keep?: string,
): Promise<{ drawn: number; total: number }> {
  return page.evaluate((key) => {
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
    if (key !== null) (window.snapshots ??= {})[key] = data;
    let drawn = 0;
    for (let i = 0; i < data.length; i += 4) {
      const diff =
        Math.abs((data[i] as number) - 0x0b) +
        Math.abs((data[i + 1] as number) - 0x0e) +
        Math.abs((data[i + 2] as number) - 0x12);
      if (diff > 48) drawn++;
    }
    return { drawn, total: data.length / 4 };
  }, keep ?? null);
}

/**
 * Of the pixels drawn in both snapshots (kept by `drawnPixels`), the fraction whose colour differs
 * by more than 60 (sum of |dR| + |dG| + |dB|), and the mean colour of those drawn in `b`.
 */
export async function compareSnapshots(
  page: Page,
  a: string,
  b: string,
): Promise<{ both: number; differing: number; meanB: [number, number, number] }> {
  return page.evaluate(
    ([ka, kb]) => {
      const x = window.snapshots?.[ka] as Uint8ClampedArray;
      const y = window.snapshots?.[kb] as Uint8ClampedArray;
      let both = 0;
      let differing = 0;
      let drawnB = 0;
      const sum = [0, 0, 0];
      for (let i = 0; i < x.length; i += 4) {
        // Drawn: differs from the background (#0b0e12) by more than 48.
        const inX =
          Math.abs((x[i] as number) - 0x0b) +
            Math.abs((x[i + 1] as number) - 0x0e) +
            Math.abs((x[i + 2] as number) - 0x12) >
          48;
        const inY =
          Math.abs((y[i] as number) - 0x0b) +
            Math.abs((y[i + 1] as number) - 0x0e) +
            Math.abs((y[i + 2] as number) - 0x12) >
          48;
        if (inY) {
          drawnB++;
          for (let c = 0; c < 3; c++) sum[c] = (sum[c] as number) + (y[i + c] as number);
        }
        if (!inX || !inY) continue;
        both++;
        const diff =
          Math.abs((x[i] as number) - (y[i] as number)) +
          Math.abs((x[i + 1] as number) - (y[i + 1] as number)) +
          Math.abs((x[i + 2] as number) - (y[i + 2] as number));
        if (diff > 60) differing++;
      }
      const mean = sum.map((s) => s / Math.max(drawnB, 1)) as [number, number, number];
      return { both, differing: differing / Math.max(both, 1), meanB: mean };
    },
    [a, b] as const,
  );
}

/** The box around the drawn pixels, as fractions of the canvas (undefined when nothing is drawn). */
export async function drawnBox(
  page: Page,
): Promise<{ left: number; right: number; top: number; bottom: number } | undefined> {
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
    let left = Infinity;
    let right = -Infinity;
    let top = Infinity;
    let bottom = -Infinity;
    for (let i = 0; i < data.length; i += 4) {
      const diff =
        Math.abs((data[i] as number) - 0x0b) +
        Math.abs((data[i + 1] as number) - 0x0e) +
        Math.abs((data[i + 2] as number) - 0x12);
      if (diff <= 48) continue;
      const x = (i / 4) % canvas.width;
      const y = Math.floor(i / 4 / canvas.width);
      left = Math.min(left, x);
      right = Math.max(right, x);
      top = Math.min(top, y);
      bottom = Math.max(bottom, y);
    }
    if (left === Infinity) return undefined;
    return {
      left: left / canvas.width,
      right: (right + 1) / canvas.width,
      top: top / canvas.height,
      bottom: (bottom + 1) / canvas.height,
    };
  });
}
