import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { encodeStructuredNpyHeader, parseNpyHeader } from '../../src/wire/npy.js';

// Headers written by NumPy itself (python3-numpy), compared byte for byte.
function numpyHeader(dtype: string, rows: number): Buffer {
  const script = `import io, sys, numpy as np
b = io.BytesIO(); np.save(b, np.zeros(${rows}, dtype=${dtype}))
v = b.getvalue(); n = 10 + int.from_bytes(v[8:10], 'little'); sys.stdout.buffer.write(v[:n])`;
  return execFileSync('python3', ['-c', script]);
}

void describe('structured .npy headers', { timeout: 30_000 }, () => {
  const dtype =
    "[('x','<f4'),('y','<f4'),('z','<f4'),('intensity','<f4'),('ring','<u2'),('time','<f8'),('r','u1')]";
  const fields = [
    ['x', '<f4'],
    ['y', '<f4'],
    ['z', '<f4'],
    ['intensity', '<f4'],
    ['ring', '<u2'],
    ['time', '<f8'],
    ['r', '|u1'],
  ] as const;

  void it('writes what numpy.save writes, byte for byte', () => {
    for (const rows of [0, 7, 1_000_000]) {
      assert.deepEqual(
        Buffer.from(encodeStructuredNpyHeader(rows, fields)),
        numpyHeader(dtype, rows),
      );
    }
  });

  void it('reads the fields, their offsets and the record size', () => {
    const header = parseNpyHeader(numpyHeader(dtype, 5));
    assert.deepEqual(header.shape, [5]);
    assert.equal(header.itemSize, 27);
    assert.deepEqual(
      header.fields?.map((f) => [f.name, f.dtype, f.offset, f.size]),
      [
        ['x', '<f4', 0, 4],
        ['y', '<f4', 4, 4],
        ['z', '<f4', 8, 4],
        ['intensity', '<f4', 12, 4],
        ['ring', '<u2', 16, 2],
        ['time', '<f8', 18, 8],
        ['r', '|u1', 26, 1],
      ],
    );
  });

  void it('refuses sub-arrays, strings and duplicated names with stable codes', () => {
    const bad = (descr: string): Uint8Array => {
      const dict = `{'descr': ${descr}, 'fortran_order': False, 'shape': (2,), }`;
      const text = dict.padEnd(118, ' ') + '\n';
      const bytes = new Uint8Array(10 + text.length);
      bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, text.length, 0]);
      bytes.set(new TextEncoder().encode(text), 10);
      return bytes;
    };
    assert.throws(() => parseNpyHeader(bad("[('x', '<f4', (3,))]")), {
      code: 'PS_ERR_NPY_BAD_HEADER',
    });
    assert.throws(() => parseNpyHeader(bad("[('x', '<U4')]")), {
      code: 'PS_ERR_NPY_UNSUPPORTED_DTYPE',
    });
    assert.throws(() => parseNpyHeader(bad("[('x', '<f4'), ('x', '<f4')]")), {
      code: 'PS_ERR_NPY_BAD_HEADER',
    });
    assert.throws(() => parseNpyHeader(bad('[]')), { code: 'PS_ERR_NPY_BAD_HEADER' });
  });
});
