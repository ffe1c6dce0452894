/**
 * The .npy codec against files written by real NumPy (test/fixtures/npy, see its README), and
 * against hand-made malformed headers.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { ErrorCodes, PointstreamError } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import {
  DEFAULT_REASSEMBLY_LIMITS,
  NPY_MAGIC,
  decodePlainFrame,
  encodeNpyHeader,
  hasNpyMagic,
  parseNpyHeader,
  pointCountOfNpyHeader,
} from '../../src/wire/index.js';

const T = { timeout: 10_000 } as const;

// ---------------------------------------------------------------------------------------------
// Fixtures

interface FixtureEntry {
  readonly name: string;
  readonly dtype: string;
  readonly shape: number[];
  readonly fortran_order: boolean;
  readonly version: [number, number];
  readonly header_len: number;
  readonly header: string;
  readonly data_len: number;
  readonly file_len: number;
  readonly sha256: string;
  readonly values?: (number | string)[];
  readonly values_in_file_order?: (number | string)[];
}

const FIXTURES = new URL('../fixtures/npy/', import.meta.url);
const manifest = JSON.parse(readFileSync(new URL('manifest.json', FIXTURES), 'utf8')) as {
  numpy_version: string;
  files: FixtureEntry[];
};

function fixture(name: string): Uint8Array {
  const buffer = readFileSync(new URL(name, FIXTURES));
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

function entry(name: string): FixtureEntry {
  const found = manifest.files.find((file) => file.name === name);
  assert.ok(found, `manifest has no ${name}`);
  return found;
}

/** The manifest's values ("nan", "inf", "-inf" as strings) as float32. */
function manifestFloats(values: readonly (number | string)[]): Float32Array {
  return Float32Array.from(values, (value) => {
    if (value === 'nan') return NaN;
    if (value === 'inf') return Infinity;
    if (value === '-inf') return -Infinity;
    assert.equal(typeof value, 'number');
    return value as number;
  });
}

function bytesOf(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

function assertSameFloats(actual: Float32Array, expected: Float32Array): void {
  assert.equal(actual.length, expected.length, 'float count');
  assert.ok(bytesOf(actual).equals(bytesOf(expected)), 'float32 values differ bit for bit');
}

/** Asserts that `fn` throws a PointstreamError with `code`, and returns it. */
function throwsCode(fn: () => unknown, code: ErrorCode): PointstreamError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(
    caught instanceof PointstreamError,
    `expected a PointstreamError ${code}, got ${String(caught)}`,
  );
  assert.equal(caught.code, code, caught.message);
  return caught;
}

const LIMITS = {
  maxFrameBytes: DEFAULT_REASSEMBLY_LIMITS.maxFrameBytes,
  maxPointsPerFrame: DEFAULT_REASSEMBLY_LIMITS.maxPointsPerFrame,
  allowNonFinite: false,
};

// ---------------------------------------------------------------------------------------------
// Hand-made files

/** A .npy file with this header text, as written (no padding added), then `data`. */
function npyFile(
  text: string,
  options: { major?: number; minor?: number; headerLength?: number; data?: Uint8Array } = {},
): Uint8Array {
  const major = options.major ?? 1;
  const minor = options.minor ?? 0;
  const textBytes = Buffer.from(text, major === 3 ? 'utf8' : 'latin1');
  const preamble = major === 1 ? 10 : 12;
  const data = options.data ?? new Uint8Array(0);
  const out = new Uint8Array(preamble + textBytes.length + data.length);
  out.set(NPY_MAGIC, 0);
  out[6] = major;
  out[7] = minor;
  const view = new DataView(out.buffer);
  const headerLength = options.headerLength ?? textBytes.length;
  if (preamble === 10) view.setUint16(8, headerLength, true);
  else view.setUint32(8, headerLength, true);
  out.set(textBytes, preamble);
  out.set(data, preamble + textBytes.length);
  return out;
}

const GOOD_DICT = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";

/** numpy's _wrap_header rule: pad with spaces and a final newline to a multiple of 64. */
function numpyPadded(dict: string, preamble = 10): string {
  const unpadded = preamble + dict.length + 1;
  const pad = 64 - (unpadded % 64);
  return `${dict}${' '.repeat(pad)}\n`;
}

// ---------------------------------------------------------------------------------------------

void describe('npy fixtures', () => {
  void it('the fixture files match the manifest (length, sha256, header text)', T, () => {
    assert.equal(manifest.files.length, 10);
    for (const file of manifest.files) {
      const bytes = fixture(file.name);
      assert.equal(bytes.length, file.file_len, file.name);
      assert.equal(createHash('sha256').update(bytes).digest('hex'), file.sha256, file.name);
      assert.equal(file.header_len + file.data_len, file.file_len, file.name);
      assert.equal(
        Buffer.from(bytes.subarray(10, file.header_len)).toString('latin1'),
        file.header,
        file.name,
      );
    }
  });

  void it('parseNpyHeader reads every fixture header as NumPy wrote it', T, () => {
    for (const file of manifest.files) {
      const bytes = fixture(file.name);
      assert.ok(hasNpyMagic(bytes), file.name);
      const header = parseNpyHeader(bytes);
      assert.deepEqual(header.version, file.version, file.name);
      assert.equal(header.dataOffset, file.header_len, file.name);
      assert.equal(header.descr, file.dtype, file.name);
      assert.equal(header.fortranOrder, file.fortran_order, file.name);
      assert.deepEqual(header.shape, file.shape, file.name);
      // The header alone is enough: parsing does not need the data.
      assert.deepEqual(parseNpyHeader(bytes.subarray(0, file.header_len)), header, file.name);
    }
  });

  for (const name of ['xyz_f4_3pts.npy', 'xyz_f4_empty.npy', 'xyz_f4_1000.npy']) {
    void it(`${name} decodes to the manifest values`, T, () => {
      const file = entry(name);
      const bytes = fixture(name);
      const header = parseNpyHeader(bytes);
      assert.equal(pointCountOfNpyHeader(header), file.shape[0]);
      const frame = decodePlainFrame(bytes, 1, LIMITS);
      assert.equal(frame.format, 'npy');
      assert.equal(frame.pointCount, file.shape[0]);
      assertSameFloats(frame.points, manifestFloats(file.values ?? []));
    });
  }

  void it('xyz_f4_3pts keeps 1e30 as the float32 NumPy stored', T, () => {
    const frame = decodePlainFrame(fixture('xyz_f4_3pts.npy'), 0, LIMITS);
    assert.equal(frame.points[8], 1.0000000150474662e30);
    assert.equal(frame.points[8], Math.fround(1e30));
  });

  void it(
    'xyz_f4_nan: rejected with PS_ERR_FRAME_NON_FINITE, accepted with allowNonFinite',
    T,
    () => {
      const bytes = fixture('xyz_f4_nan.npy');
      const error = throwsCode(
        () => decodePlainFrame(bytes, 9, LIMITS),
        ErrorCodes.FRAME_NON_FINITE,
      );
      assert.equal(error.details?.seq, 9);
      assert.equal(error.details?.point, 0, 'NaN is the second coordinate of point 0');
      const frame = decodePlainFrame(bytes, 9, { ...LIMITS, allowNonFinite: true });
      assert.equal(frame.pointCount, 2);
      assertSameFloats(frame.points, manifestFloats(entry('xyz_f4_nan.npy').values ?? []));
      // NaN bits exactly as NumPy wrote them (0x7fc00000), +inf as 0x7f800000.
      const bits = new Uint32Array(Float32Array.from(frame.points).buffer);
      assert.equal(bits[1], 0x7fc00000);
      assert.equal(bits[5], 0x7f800000);
    },
  );

  const rejected: [string, ErrorCode][] = [
    ['xyz_f8.npy', ErrorCodes.NPY_UNSUPPORTED_DTYPE],
    ['xyz_f4_big_endian.npy', ErrorCodes.NPY_UNSUPPORTED_DTYPE],
    ['xyz_i4.npy', ErrorCodes.NPY_UNSUPPORTED_DTYPE],
    ['xyz_f4_fortran.npy', ErrorCodes.NPY_FORTRAN_ORDER],
    ['xyz_f4_1d.npy', ErrorCodes.NPY_BAD_SHAPE],
    ['xyzi_f4_4cols.npy', ErrorCodes.NPY_BAD_SHAPE],
  ];
  for (const [name, code] of rejected) {
    void it(`${name} is rejected with ${code}`, T, () => {
      const bytes = fixture(name);
      throwsCode(() => pointCountOfNpyHeader(parseNpyHeader(bytes)), code);
      throwsCode(() => decodePlainFrame(bytes, 3, LIMITS), code);
      throwsCode(() => decodePlainFrame(bytes, 3, { ...LIMITS, allowNonFinite: true }), code);
    });
  }

  void it('a fixture cut inside its data is PS_ERR_NPY_TRUNCATED', T, () => {
    for (const name of ['xyz_f4_3pts.npy', 'xyz_f4_1000.npy']) {
      const bytes = fixture(name);
      for (const cut of [1, 4, 11, 12, bytes.length - 128]) {
        const error = throwsCode(
          () => decodePlainFrame(bytes.subarray(0, bytes.length - cut), 4, LIMITS),
          ErrorCodes.NPY_TRUNCATED,
        );
        assert.equal(error.details?.seq, 4);
      }
    }
  });

  void it('a fixture cut inside its header is PS_ERR_NPY_TRUNCATED', T, () => {
    const bytes = fixture('xyz_f4_3pts.npy');
    for (const length of [6, 7, 9, 10, 11, 64, 127]) {
      throwsCode(() => parseNpyHeader(bytes.subarray(0, length)), ErrorCodes.NPY_TRUNCATED);
    }
    // Shorter than the magic string: not a .npy at all.
    for (const length of [0, 1, 5]) {
      throwsCode(() => parseNpyHeader(bytes.subarray(0, length)), ErrorCodes.NPY_BAD_MAGIC);
    }
    // Through the plain form, a cut header whose length is not a multiple of 12 is still .npy.
    throwsCode(() => decodePlainFrame(bytes.subarray(0, 127), 0, LIMITS), ErrorCodes.NPY_TRUNCATED);
  });

  void it('parses a fixture held at an odd byteOffset (copy path)', T, () => {
    const bytes = fixture('xyz_f4_1000.npy');
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const frame = decodePlainFrame(shifted.subarray(1), 0, LIMITS);
    assertSameFloats(frame.points, manifestFloats(entry('xyz_f4_1000.npy').values ?? []));
  });
});

void describe('encodeNpyHeader', () => {
  for (const name of [
    'xyz_f4_3pts.npy',
    'xyz_f4_empty.npy',
    'xyz_f4_1000.npy',
    'xyzi_f4_4cols.npy',
  ]) {
    void it(`is byte-identical to numpy.save for ${name}`, T, () => {
      const file = entry(name);
      const expected = fixture(name).subarray(0, file.header_len);
      const actual = encodeNpyHeader(file.shape);
      assert.deepEqual(Buffer.from(actual), Buffer.from(expected));
    });
  }

  void it('is byte-identical for other dtypes and 1-D shapes (descr argument)', T, () => {
    for (const [name, descr] of [
      ['xyz_f8.npy', '<f8'],
      ['xyz_i4.npy', '<i4'],
      ['xyz_f4_big_endian.npy', '>f4'],
      ['xyz_f4_1d.npy', '<f4'],
      ['xyz_f4_nan.npy', '<f4'],
    ] as const) {
      const file = entry(name);
      const expected = fixture(name).subarray(0, file.header_len);
      assert.deepEqual(
        Buffer.from(encodeNpyHeader(file.shape, descr)),
        Buffer.from(expected),
        name,
      );
    }
  });

  // Written by numpy 2.4.6: np.lib.format.write_array_header_1_0(f, {'descr': '<f4',
  // 'fortran_order': False, 'shape': shape}); the header text after the 10-byte preamble.
  const numpyHeaders: [number[], string][] = [
    [[1, 3], `{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }${' '.repeat(58)}\n`],
    [
      [10 ** 9, 3],
      `{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 3), }${' '.repeat(49)}\n`,
    ],
    [
      [123456789012, 3],
      `{'descr': '<f4', 'fortran_order': False, 'shape': (123456789012, 3), }${' '.repeat(47)}\n`,
    ],
  ];
  for (const [shape, text] of numpyHeaders) {
    void it(`follows numpy's rule for shape (${shape.join(', ')})`, T, () => {
      const bytes = encodeNpyHeader(shape);
      // numpy: the whole header is a multiple of 64 bytes and ends with '\n'.
      assert.equal(bytes.length % 64, 0);
      assert.equal(bytes.length, 128);
      assert.equal(bytes[bytes.length - 1], 0x0a);
      assert.deepEqual(Buffer.from(bytes.subarray(0, 6)), Buffer.from(NPY_MAGIC));
      assert.deepEqual([bytes[6], bytes[7]], [1, 0]);
      assert.equal(
        new DataView(bytes.buffer, bytes.byteOffset).getUint16(8, true),
        bytes.length - 10,
      );
      assert.equal(Buffer.from(bytes.subarray(10)).toString('latin1'), text);
      // And an independent implementation of numpy's _write_array_header + _wrap_header.
      const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}), }`;
      const grown = dict + ' '.repeat(21 - String(shape[0]).length);
      assert.equal(Buffer.from(bytes.subarray(10)).toString('latin1'), numpyPadded(grown));
      // It reads back.
      const header = parseNpyHeader(bytes);
      assert.deepEqual(header.shape, shape);
      assert.equal(header.dataOffset, bytes.length);
      assert.equal(pointCountOfNpyHeader(header), shape[0]);
    });
  }

  void it('is 128 bytes for every (N, 3) up to the largest safe integer', T, () => {
    for (const n of [
      0,
      1,
      9,
      10,
      99,
      100,
      65535,
      65536,
      2 ** 32,
      10 ** 15,
      Number.MAX_SAFE_INTEGER,
    ]) {
      const bytes = encodeNpyHeader([n, 3]);
      assert.equal(bytes.length, 128, String(n));
      assert.equal(parseNpyHeader(bytes).shape[0], n);
    }
  });

  void it('rejects invalid dimensions with a RangeError', T, () => {
    for (const dim of [-1, 1.5, NaN, Infinity, 2 ** 53]) {
      assert.throws(() => encodeNpyHeader([dim, 3]), RangeError, String(dim));
    }
  });
});

void describe('parseNpyHeader on malformed headers', () => {
  const badHeaders: [string, string][] = [
    ['missing shape', "{'descr': '<f4', 'fortran_order': False, }"],
    ['missing descr', "{'fortran_order': False, 'shape': (2, 3), }"],
    ['missing fortran_order', "{'descr': '<f4', 'shape': (2, 3), }"],
    ['empty dict', '{}'],
    ['empty text', ''],
    ['only spaces', '      \n'],
    ['not a dict', "['descr', '<f4']"],
    ['extra key', "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': True, }"],
    [
      'duplicate key',
      "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
    ],
    ['unterminated dict', "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), "],
    ['unterminated dict, no comma', "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)"],
    ['unterminated string', "{'descr: '<f4', 'fortran_order': False, 'shape': (2, 3), }"],
    ['unterminated tuple', "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3"],
    ['trailing characters', `${GOOD_DICT} x`],
    ['two dicts', `${GOOD_DICT}{}`],
    ['descr not a string', "{'descr': 5, 'fortran_order': False, 'shape': (2, 3), }"],
    ['fortran_order a string', "{'descr': '<f4', 'fortran_order': 'False', 'shape': (2, 3), }"],
    ['fortran_order lower case', "{'descr': '<f4', 'fortran_order': false, 'shape': (2, 3), }"],
    ['fortran_order Truex', "{'descr': '<f4', 'fortran_order': Truex, 'shape': (2, 3), }"],
    ['shape a list', "{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }"],
    ['shape a string', "{'descr': '<f4', 'fortran_order': False, 'shape': '(2, 3)', }"],
    ['negative dimension', "{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3), }"],
    ['float dimension', "{'descr': '<f4', 'fortran_order': False, 'shape': (2.0, 3), }"],
    [
      '17-digit dimension',
      "{'descr': '<f4', 'fortran_order': False, 'shape': (12345678901234567, 3), }",
    ],
    [
      'unsafe 16-digit dimension',
      "{'descr': '<f4', 'fortran_order': False, 'shape': (9999999999999999, 3), }",
    ],
    [
      '33 dimensions',
      `{'descr': '<f4', 'fortran_order': False, 'shape': (${Array(33).fill(1).join(', ')}), }`,
    ],
    ['empty tuple element', "{'descr': '<f4', 'fortran_order': False, 'shape': (, 3), }"],
    ['escape in string', "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2, 3), }"],
    ['key not a string', "{descr: '<f4', 'fortran_order': False, 'shape': (2, 3), }"],
    ['missing colon', "{'descr' '<f4', 'fortran_order': False, 'shape': (2, 3), }"],
    [
      'non-ASCII byte (latin-1 e-acute)',
      "{'descr': '<f4\u00e9', 'fortran_order': False, 'shape': (2, 3), }",
    ],
    ['control byte', "{'descr': '<f4', 'fortran_order': False,\u0001 'shape': (2, 3), }"],
    ['NUL byte', `${GOOD_DICT}\u0000`],
    ['DEL byte', `${GOOD_DICT}\u007f`],
  ];
  for (const [what, text] of badHeaders) {
    void it(`${what} -> PS_ERR_NPY_BAD_HEADER`, T, () => {
      const bytes = npyFile(numpyPadded(text));
      throwsCode(() => parseNpyHeader(bytes), ErrorCodes.NPY_BAD_HEADER);
      // The plain form reports the same code.
      throwsCode(() => decodePlainFrame(bytes, 0, LIMITS), ErrorCodes.NPY_BAD_HEADER);
    });
  }

  void it(
    'huge header lengths are refused before anything is read -> PS_ERR_NPY_BAD_HEADER',
    T,
    () => {
      throwsCode(
        () => parseNpyHeader(npyFile(GOOD_DICT, { headerLength: 0xffff })),
        ErrorCodes.NPY_BAD_HEADER,
      );
      throwsCode(
        () => parseNpyHeader(npyFile(GOOD_DICT, { headerLength: 10_001 })),
        ErrorCodes.NPY_BAD_HEADER,
      );
      for (const major of [2, 3]) {
        for (const headerLength of [0xffff_ffff, 0x8000_0000, 10_001]) {
          throwsCode(
            () => parseNpyHeader(npyFile(GOOD_DICT, { major, headerLength })),
            ErrorCodes.NPY_BAD_HEADER,
          );
        }
      }
    },
  );

  void it('a header length of exactly 10,000 bytes is accepted', T, () => {
    const text = `${GOOD_DICT}${' '.repeat(10_000 - GOOD_DICT.length - 1)}\n`;
    const header = parseNpyHeader(npyFile(text));
    assert.equal(header.dataOffset, 10_010);
    assert.deepEqual(header.shape, [2, 3]);
  });

  void it('a header length beyond the bytes given is PS_ERR_NPY_TRUNCATED', T, () => {
    throwsCode(
      () => parseNpyHeader(npyFile(GOOD_DICT, { headerLength: GOOD_DICT.length + 1 })),
      ErrorCodes.NPY_TRUNCATED,
    );
    throwsCode(
      () => parseNpyHeader(npyFile(GOOD_DICT, { headerLength: 9_999 })),
      ErrorCodes.NPY_TRUNCATED,
    );
    // Version 2 needs a 12-byte preamble.
    throwsCode(
      () => parseNpyHeader(npyFile(GOOD_DICT, { major: 2 }).subarray(0, 11)),
      ErrorCodes.NPY_TRUNCATED,
    );
  });

  void it('a header length shorter than the dict cuts the dict -> PS_ERR_NPY_BAD_HEADER', T, () => {
    throwsCode(
      () => parseNpyHeader(npyFile(GOOD_DICT, { headerLength: 20 })),
      ErrorCodes.NPY_BAD_HEADER,
    );
    throwsCode(
      () => parseNpyHeader(npyFile(GOOD_DICT, { headerLength: 0 })),
      ErrorCodes.NPY_BAD_HEADER,
    );
  });

  void it('unknown versions -> PS_ERR_NPY_BAD_VERSION', T, () => {
    for (const [major, minor] of [
      [9, 0],
      [0, 0],
      [4, 0],
      [1, 1],
      [2, 1],
      [255, 255],
    ] as const) {
      throwsCode(
        () => parseNpyHeader(npyFile(numpyPadded(GOOD_DICT), { major, minor })),
        ErrorCodes.NPY_BAD_VERSION,
      );
    }
  });

  void it('bad magic -> PS_ERR_NPY_BAD_MAGIC', T, () => {
    const good = npyFile(numpyPadded(GOOD_DICT));
    for (let i = 0; i < 6; i++) {
      const bad = good.slice();
      bad[i] = (bad[i] as number) ^ 0x20;
      assert.equal(hasNpyMagic(bad), false);
      throwsCode(() => parseNpyHeader(bad), ErrorCodes.NPY_BAD_MAGIC);
    }
    throwsCode(() => parseNpyHeader(new Uint8Array(0)), ErrorCodes.NPY_BAD_MAGIC);
    throwsCode(
      () => parseNpyHeader(Buffer.from('PK\u0003\u0004 not npy at all', 'latin1')),
      ErrorCodes.NPY_BAD_MAGIC,
    );
  });

  void it('versions 2.0 and 3.0 are read (u32 header length, 12-byte preamble)', T, () => {
    const v2 = parseNpyHeader(npyFile(numpyPadded(GOOD_DICT, 12), { major: 2 }));
    assert.deepEqual(v2.version, [2, 0]);
    assert.equal(v2.dataOffset, 128);
    assert.deepEqual(v2.shape, [2, 3]);
    const v3 = parseNpyHeader(npyFile(numpyPadded(GOOD_DICT, 12), { major: 3 }));
    assert.deepEqual(v3.version, [3, 0]);
    assert.equal(pointCountOfNpyHeader(v3), 2);
  });

  void it('version 3.0: UTF-8 text decodes; invalid UTF-8 -> PS_ERR_NPY_BAD_HEADER', T, () => {
    const header = parseNpyHeader(
      npyFile("{'descr': '<f4\u00e9', 'fortran_order': False, 'shape': (2, 3), }\n", { major: 3 }),
    );
    assert.equal(header.descr, '<f4\u00e9');
    throwsCode(() => pointCountOfNpyHeader(header), ErrorCodes.NPY_UNSUPPORTED_DTYPE);
    const invalid = npyFile(numpyPadded(GOOD_DICT, 12), { major: 3 });
    invalid[14] = 0xff; // inside 'descr'
    throwsCode(() => parseNpyHeader(invalid), ErrorCodes.NPY_BAD_HEADER);
  });

  void it('accepts what Python literal syntax allows and numpy could write', T, () => {
    const variants = [
      '{"descr": "<f4", "fortran_order": False, "shape": (2, 3)}',
      "{'shape': (2, 3,), 'fortran_order': False, 'descr': '<f4'}",
      "{ 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 2 , 3 ) , }\n",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
    ];
    for (const text of variants) {
      const header = parseNpyHeader(npyFile(text));
      assert.deepEqual(header.shape, [2, 3], text);
      assert.equal(pointCountOfNpyHeader(header), 2, text);
    }
  });

  void it('tabs (0x09) are whitespace in versions 1.0, 2.0 and 3.0', T, () => {
    const tabbed = "{\t'descr':\t'<f4',\t'fortran_order'\t:\tFalse,\n\t'shape':\t(\t2,\t3\t),\t}";
    assert.ok(tabbed.includes('\t'));
    for (const major of [1, 2, 3]) {
      const preamble = major === 1 ? 10 : 12;
      for (const text of [
        tabbed,
        numpyPadded(tabbed, preamble),
        `${GOOD_DICT}\t\t\n`,
        `\t${GOOD_DICT}\t`,
        // Padding of tabs instead of spaces, as long as the spaces numpy writes.
        numpyPadded(GOOD_DICT, preamble).replace(
          / +\n$/,
          (pad) => `${'\t'.repeat(pad.length - 1)}\n`,
        ),
      ]) {
        const bytes = npyFile(text, { major });
        assert.ok(bytes.includes(0x09), `v${major}: has a tab`);
        const header = parseNpyHeader(bytes);
        assert.deepEqual(header.version, [major, 0]);
        assert.equal(header.dataOffset, preamble + text.length, JSON.stringify(text));
        assert.equal(header.descr, '<f4');
        assert.equal(header.fortranOrder, false);
        assert.deepEqual(header.shape, [2, 3], `v${major}: ${JSON.stringify(text)}`);
        assert.equal(pointCountOfNpyHeader(header), 2);
      }
    }
    // Through the plain form, with its points.
    const points = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const file = npyFile(numpyPadded(tabbed), { data: bytesOf(points) });
    const frame = decodePlainFrame(file, 0, LIMITS);
    assert.equal(frame.format, 'npy');
    assertSameFloats(frame.points, points);
    // A tab inside a string is part of the string, not whitespace to skip.
    const inString = npyFile("{'descr': '<f4\t', 'fortran_order': False, 'shape': (2, 3), }");
    assert.equal(parseNpyHeader(inString).descr, '<f4\t');
    throwsCode(
      () => pointCountOfNpyHeader(parseNpyHeader(inString)),
      ErrorCodes.NPY_UNSUPPORTED_DTYPE,
    );
  });

  void it('other control characters are still refused as whitespace (CR, VT, FF, ESC)', T, () => {
    for (const char of ['\r', '\u000b', '\u000c', '\u001b']) {
      for (const major of [1, 2, 3]) {
        const text = `{'descr': '<f4',${char}'fortran_order': False, 'shape': (2, 3), }\n`;
        throwsCode(() => parseNpyHeader(npyFile(text, { major })), ErrorCodes.NPY_BAD_HEADER);
      }
    }
  });

  void it('pointCountOfNpyHeader wants (N, 3) C-order <f4', T, () => {
    const header = (descr: string, fortranOrder: boolean, shape: number[]) => ({
      version: [1, 0] as const,
      dataOffset: 128,
      descr,
      fortranOrder,
      shape,
    });
    assert.equal(pointCountOfNpyHeader(header('<f4', false, [7, 3])), 7);
    assert.equal(pointCountOfNpyHeader(header('<f4', false, [0, 3])), 0);
    throwsCode(() => pointCountOfNpyHeader(header('<f4', false, [])), ErrorCodes.NPY_BAD_SHAPE);
    throwsCode(() => pointCountOfNpyHeader(header('<f4', false, [3])), ErrorCodes.NPY_BAD_SHAPE);
    throwsCode(
      () => pointCountOfNpyHeader(header('<f4', false, [3, 3, 1])),
      ErrorCodes.NPY_BAD_SHAPE,
    );
    throwsCode(() => pointCountOfNpyHeader(header('<f4', false, [3, 2])), ErrorCodes.NPY_BAD_SHAPE);
    throwsCode(
      () => pointCountOfNpyHeader(header('<f4', true, [3, 3])),
      ErrorCodes.NPY_FORTRAN_ORDER,
    );
    for (const descr of ['>f4', '|f4', '=f4', 'f4', '<f2', '<f8', '<i4', '<u4', '<f4 ']) {
      throwsCode(
        () => pointCountOfNpyHeader(header(descr, false, [3, 3])),
        ErrorCodes.NPY_UNSUPPORTED_DTYPE,
      );
    }
  });
});
