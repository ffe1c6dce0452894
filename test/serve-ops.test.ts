import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from './helpers.js';

void test(
  'serve --record with an unusable directory fails at start, in bounded time, with exit 2',
  { timeout: 60_000 },
  async (t) => {
    const scratch = mkdtempSync(join(tmpdir(), 'ps-record-'));
    t.after(() => rmSync(scratch, { recursive: true, force: true }));
    const file = join(scratch, 'a-file');
    writeFileSync(file, '');
    // /proc/x: mkdir answers ENOENT under an existing parent (Node's recursive mkdir spun forever).
    for (const dir of ['/proc/x', '/proc/x/y', file, join(file, 'sub')]) {
      const result = await runCli(
        ['serve', '--host', '127.0.0.1', '--port', '0', '--record', dir],
        {},
        20_000,
      );
      assert.equal(result.code, 2, `${dir}: ${result.stderr}`);
      assert.match(
        result.stderr,
        new RegExp(`cannot record to ${JSON.stringify(dir).replace(/[/\\]/g, '\\$&')}`),
      );
      assert.doesNotMatch(result.stdout, /listening|signaling on/);
    }
  },
);
