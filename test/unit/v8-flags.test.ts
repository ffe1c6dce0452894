import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { v8FlagsFor } from '../../src/cli/v8-flags.js';

const argv = (...args: string[]): string[] => ['node', 'pointstream', ...args];

void describe('CLI V8 flags, set before anything loads', { timeout: 5_000 }, () => {
  void it('turns incremental marking off for serve and consume, unless --incremental-gc or its variable', () => {
    assert.equal(v8FlagsFor(argv('serve', '--port', '0'), {}), '--no-incremental-marking');
    assert.equal(v8FlagsFor(argv('consume', '--bus', 'nats://x'), {}), '--no-incremental-marking');
    assert.equal(v8FlagsFor(argv('serve', '--incremental-gc'), {}), '');
    for (const value of ['1', 'true', ' YES ', 'on'])
      assert.equal(v8FlagsFor(argv('serve'), { POINTSTREAM_INCREMENTAL_GC: value }), '');
    for (const value of ['0', 'false', 'off', ''])
      assert.equal(
        v8FlagsFor(argv('serve'), { POINTSTREAM_INCREMENTAL_GC: value }),
        '--no-incremental-marking',
      );
    for (const command of ['send', 'demo', '--help', 'front'])
      assert.equal(v8FlagsFor(argv(command), {}), '');
    assert.equal(v8FlagsFor(['node', 'pointstream'], {}), '');
  });
});
