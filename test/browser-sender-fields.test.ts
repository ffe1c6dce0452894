/**
 * The /send page with files that carry per-point fields (test/fixtures/fields): Chromium reads
 * structured .npy, .ply and .pcd (and an (N, K) .npy with column names), shows the fields it read,
 * and sends them; the server gets every field equal to what make_fixtures.py wrote (raw: bit for
 * bit; qrice with a field precision: within it). The server side needs issue 18's wire work.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ReceivedFrame } from '../src/index.js';
import type { PointFields } from '../src/wire/fields.js';
import { haveWebBuild, launchBrowser, screenshot } from './browser-helpers.js';
import { startServer } from './helpers.js';
import {
  FIELD_FIXTURES,
  FIELD_FIXTURES_DIR,
  assertFieldsEqual,
  bytesOf,
  expectedFields,
  expectedPoints,
  finiteRows,
  pick,
} from './support/field-fixtures.js';
import type { FieldFixture } from './support/field-fixtures.js';

interface PageResult {
  ok: boolean;
  errorCode: string | null;
  reason: string;
  fields: { name: string; type: string }[];
  maxError: number;
}
// The page's test hook (web/sender/main.ts); these tests type-check without the DOM library.
declare const window: {
  pointstream: {
    ready: true;
    start(options: Record<string, unknown>): Promise<PageResult>;
    file: Promise<number> | undefined;
    fileFields: Record<string, string> | undefined;
  };
};

assert.ok(haveWebBuild(), 'dist/web is not built: run "npm run build:web" first');

const fixture = (file: string): FieldFixture => {
  const found = FIELD_FIXTURES.find((f) => f.file === file);
  assert.ok(found, file);
  return found;
};

void test(
  'the page reads .npy, .ply and .pcd files with their fields, shows them and sends them',
  { timeout: 180_000 },
  async (t) => {
    const server = await startServer();
    const browser = await launchBrowser();
    t.after(async () => {
      await browser.close();
      await server.close();
    });
    const frames: { points: Float32Array; fields: PointFields }[] = [];
    server.on('frame', (frame: ReceivedFrame) => {
      const fields = (frame as ReceivedFrame & { fields?: PointFields }).fields ?? {};
      const copy: Record<string, PointFields[string]> = {};
      for (const [name, values] of Object.entries(fields)) copy[name] = values.slice();
      frames.push({ points: frame.points.slice(), fields: copy });
    });
    const page = await browser.open(`${server.url}/send`);
    await page.waitForFunction(() => window.pointstream?.ready === true);

    const cases: [string, Record<string, unknown>, string][] = [
      ['structured.npy', {}, ''],
      ['cloud_binary_be.ply', {}, ''],
      ['cloud_ascii.pcd', {}, ''],
      ['cloud_compressed_lzf.pcd', {}, ''],
      ['organised_nan.pcd', { dropNonFinite: true }, ''],
      ['columns_f4.npy', {}, 'x,y,z,_,intensity'],
    ];
    for (const [file, options, columns] of cases) {
      const f = fixture(file);
      await page.fill('#fields', columns);
      await page.setInputFiles('#file', join(FIELD_FIXTURES_DIR, file));
      assert.equal(await page.evaluate(() => window.pointstream.file), f.points, file);
      const shown = await page.evaluate(() => window.pointstream.fileFields);
      assert.deepEqual(
        Object.keys(shown ?? {}),
        f.fields.map((field) => field.name),
        `${file}: the page lists the fields it read`,
      );
      assert.match((await page.textContent('#file-status')) ?? '', /; fields: /, file);
      const result = await page.evaluate(
        (o) => window.pointstream.start({ source: 'file', frames: 1, rate: 0, ...o }),
        options,
      );
      assert.equal(result.ok, true, `${file}: ${result.errorCode}: ${result.reason}`);
      assert.deepEqual(
        result.fields.map((field) => field.name),
        f.fields.map((field) => field.name),
        file,
      );
      const received = frames.at(-1);
      assert.ok(received, file);
      const points = expectedPoints(file);
      const expected = expectedFields(f);
      if (options.dropNonFinite === true) {
        const rows = finiteRows(points);
        assert.deepEqual(bytesOf(received.points), bytesOf(pick(points, rows, 3)), file);
        const kept: Record<string, PointFields[string]> = {};
        for (const [name, values] of Object.entries(expected)) kept[name] = pick(values, rows);
        assertFieldsEqual(received.fields, kept, file);
      } else {
        assert.deepEqual(bytesOf(received.points), bytesOf(points), file);
        assertFieldsEqual(received.fields, expected, file);
      }
    }
    await screenshot(page, 'browser-sender-fields');

    // qrice: positions to 1 mm, intensity and time to their precision, the integer fields exact.
    const structured = fixture('structured.npy');
    await page.fill('#fields', '');
    await page.setInputFiles('#file', join(FIELD_FIXTURES_DIR, 'structured.npy'));
    await page.evaluate(() => window.pointstream.file);
    const coded = await page.evaluate(
      (fieldPrecision) =>
        window.pointstream.start({
          source: 'file',
          frames: 1,
          rate: 0,
          encoding: 'qrice',
          precision: 0.001,
          fieldPrecision,
        }),
      structured.fieldPrecision,
    );
    assert.equal(coded.ok, true, `${coded.errorCode}: ${coded.reason}`);
    assertFieldsEqual(
      (frames.at(-1) as { fields: PointFields }).fields,
      expectedFields(structured),
      'structured.npy (qrice)',
      structured.fieldPrecision,
    );

    // A precision for an integer field, or with raw frames, is refused before anything is sent.
    const sentBefore = frames.length;
    for (const options of [
      { encoding: 'qrice', fieldPrecision: { ring: 1 } },
      { encoding: 'raw', fieldPrecision: { intensity: 0.1 } },
    ]) {
      const refused = await page.evaluate(
        (o) => window.pointstream.start({ source: 'file', frames: 1, rate: 0, ...o }),
        options,
      );
      assert.equal(refused.ok, false, JSON.stringify(options));
      assert.equal(refused.errorCode, 'PS_ERR_INVALID_OPTION', refused.reason);
    }
    assert.equal(frames.length, sentBefore);
    assert.deepEqual(browser.errors, []);
  },
);
