import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  BUS_CHUNK_BYTES,
  BUS_ENCODINGS,
  BusHeader,
  DEFAULT_BUS_STREAM,
  FRAME_SUBJECT_PREFIX,
} from '../../src/bus/layout.js';

const doc = readFileSync(new URL('../../docs/bus.md', import.meta.url), 'utf8');

void test('docs/bus.md documents every bus header, in its table', () => {
  const rows = new Set(
    doc
      .split('\n')
      .filter((line) => line.startsWith('| `'))
      .map((line) => /^\| `([^`]+)`/.exec(line)?.[1]),
  );
  const missing = Object.values(BusHeader).filter((name) => !rows.has(name));
  assert.deepEqual(missing, []);
});

void test('docs/bus.md names the stream, subject prefix, part size and encodings the code uses', () => {
  for (const text of [DEFAULT_BUS_STREAM, `${FRAME_SUBJECT_PREFIX}.>`, String(BUS_CHUNK_BYTES)])
    assert.ok(doc.includes(text), text);
  for (const encoding of BUS_ENCODINGS) assert.ok(doc.includes(`\`${encoding}\``), encoding);
});
