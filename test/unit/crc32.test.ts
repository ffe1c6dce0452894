/**
 * CRC-32 (src/wire/crc32.ts): the portable checksum against zlib.crc32. Pure: no sockets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 as zlibCrc32 } from 'node:zlib';

import { crc32Portable } from '../../src/wire/index.js';
import { T, prng, randomInt, randomBytes } from './wire-helpers.js';

void describe('CRC-32', () => {
  const vector = new TextEncoder().encode('123456789');

  void it('crc32Portable and zlib.crc32 give the standard check value 0xCBF43926', T, () => {
    assert.equal(crc32Portable(vector), 0xcbf43926);
    assert.equal(zlibCrc32(vector), 0xcbf43926);
  });

  void it('both give 0 for empty input, and keep the initial value on empty input', T, () => {
    assert.equal(crc32Portable(new Uint8Array(0)), 0);
    assert.equal(zlibCrc32(new Uint8Array(0)), 0);
    assert.equal(crc32Portable(new Uint8Array(0), 0xcbf43926), 0xcbf43926);
    assert.equal(zlibCrc32(new Uint8Array(0), 0xcbf43926), 0xcbf43926);
  });

  void it('agree on random data of many lengths, whole and incrementally', T, () => {
    const rand = prng(42);
    for (const length of [1, 2, 3, 4, 7, 8, 15, 16, 63, 64, 255, 256, 1000, 4096, 65_537]) {
      const data = randomBytes(rand, length);
      const whole = zlibCrc32(data);
      assert.equal(crc32Portable(data), whole, `length ${length}`);
      assert.ok(whole >= 0 && whole <= 0xffffffff && Number.isInteger(whole));
      const cut = randomInt(rand, 0, length);
      const a = data.subarray(0, cut);
      const b = data.subarray(cut);
      assert.equal(crc32Portable(b, crc32Portable(a)), whole, `split at ${cut}`);
      assert.equal(zlibCrc32(b, crc32Portable(a)), whole, 'zlib continues a portable crc');
      assert.equal(crc32Portable(b, zlibCrc32(a)), whole, 'portable continues a zlib crc');
    }
  });

  void it('crc32Portable reads its view, not the whole buffer', T, () => {
    const backing = new Uint8Array(20).fill(0x55);
    backing.set(vector, 5);
    assert.equal(crc32Portable(backing.subarray(5, 14)), 0xcbf43926);
  });
});
