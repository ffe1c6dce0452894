import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

// The shape issue 15 gave the code, kept by a test so it does not drift back: files small enough
// to read (import-cycles.test.ts keeps the layers one-way).
const root = fileURLToPath(new URL('../../', import.meta.url));

const sourceFiles = (dir: string): string[] =>
  readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.ts$/.test(entry.name))
    .map((entry) => relative(root, join(entry.parentPath, entry.name)));

const lineCount = (file: string): number =>
  readFileSync(join(root, file), 'utf8').split('\n').length - 1;

void describe('layout', () => {
  void it('keeps src/server/server.ts under 300 lines and every server and client file at most 450', () => {
    assert.ok(
      lineCount('src/server/server.ts') < 300,
      `server.ts: ${lineCount('src/server/server.ts')}`,
    );
    const tooLong = [
      ...sourceFiles('src/server'),
      ...sourceFiles('src/client'),
      ...sourceFiles('src/front'),
    ]
      .map((file) => ({ file, lines: lineCount(file) }))
      .filter(({ lines }) => lines > 450);
    assert.deepEqual(tooLong, []);
  });
});
