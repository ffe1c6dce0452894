/**
 * The point file readers on the NumPy-written fixtures of test/fixtures/fields (make_fixtures.py):
 * every field of every file equals what the script wrote (its expected/<file>/<field>.npy), bit
 * for bit; malformed files get their stable code before anything is allocated.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCodes } from '../../src/errors.js';
import { NonFiniteFilter } from '../../src/sources/finite.js';
import { lzfDecompress } from '../../src/sources/lzf.js';
import { describeConversion, fieldNameFor, readPointFile } from '../../src/sources/point-files.js';
import { FIELD_TYPES, fieldTypeOf } from '../../src/wire/fields.js';
import type { FieldArray } from '../../src/wire/fields.js';
import {
  FIELD_FIXTURES,
  FIELD_FIXTURES_DIR,
  bytesOf,
  expectedBytes,
  fieldNamesOf,
} from '../support/field-fixtures.js';

const T = { timeout: 20_000 };
const DIR = FIELD_FIXTURES_DIR;
const manifest = { fixtures: FIELD_FIXTURES };
const expectedArray = expectedBytes;

void test('every fixture reads to exactly what make_fixtures.py wrote, field by field', T, () => {
  assert.ok(manifest.fixtures.length >= 12);
  for (const fixture of manifest.fixtures) {
    const file = readPointFile(fixture.file, readFileSync(join(DIR, fixture.file)), {
      fieldNames: fieldNamesOf(fixture),
    });
    const what = fixture.file;
    assert.equal(file.points.length, fixture.points * 3, what);
    assert.deepEqual(bytesOf(file.points), expectedArray(fixture.file, 'points').bytes, what);
    assert.deepEqual(
      Object.keys(file.fields),
      fixture.fields.map((f) => f.name),
      `${what}: field names in order`,
    );
    for (const { name, dtype } of fixture.fields) {
      const values = file.fields[name] as FieldArray;
      const expected = expectedArray(fixture.file, name);
      assert.equal(expected.descr, dtype, `${what}.${name}: the manifest's dtype`);
      const type = fieldTypeOf(values);
      assert.ok(type !== undefined, `${what}.${name}`);
      assert.equal(FIELD_TYPES[type].numpy, dtype, `${what}.${name}: type kept`);
      assert.deepEqual(bytesOf(values), expected.bytes, `${what}.${name}: every value`);
    }
    assert.deepEqual(file.conversion.renamed ?? [], fixture.renamed, `${what}: renamed`);
    assert.deepEqual(file.conversion.skipped ?? [], fixture.skipped, `${what}: skipped`);
  }
});

void test(
  'what a reader changed is reported: float64 axes, renamed fields, skipped columns',
  T,
  () => {
    const read = (name: string, fieldNames?: string[]) =>
      readPointFile(name, readFileSync(join(DIR, name)), { fieldNames }).conversion;
    assert.equal(read('structured_f8.npy').convertedFrom, 'float64');
    assert.equal(
      describeConversion(read('cloud_ascii.ply')),
      'fields renamed: normal-x -> normal_x; not sent: neighbours',
    );
    assert.equal(
      describeConversion(read('columns_f4.npy', ['x', 'y', 'z', '_', 'intensity'])),
      'not sent: _',
    );
    // Without names an (N, K) array sends x, y, z and says what it dropped, as before.
    const plain = readPointFile('columns_f4.npy', readFileSync(join(DIR, 'columns_f4.npy')));
    assert.deepEqual(plain.conversion, { droppedColumns: 2, convertedFrom: undefined });
    assert.deepEqual(Object.keys(plain.fields), []);
    assert.equal(fieldNameFor('normal-x'), 'normal_x');
    assert.equal(fieldNameFor('2nd return'), '_2nd_return');
    assert.equal(fieldNameFor('intensity'), 'intensity');
    assert.equal(fieldNameFor(''), undefined);
  },
);

void test('--drop-non-finite drops the same rows from the points and every field', T, () => {
  const file = readPointFile('organised_nan.pcd', readFileSync(join(DIR, 'organised_nan.pcd')));
  assert.equal(file.points.length, 36, 'an organised cloud keeps its NaN points');
  const kept = new NonFiniteFilter().apply(file.points, file.fields);
  assert.equal(kept.dropped, 3);
  const rows = [0, 2, 3, 4, 5, 7, 8, 9, 10];
  assert.deepEqual(
    Array.from(kept.points),
    rows.flatMap((r) => Array.from(file.points.subarray(r * 3, r * 3 + 3))),
  );
  for (const name of ['intensity', 'ring']) {
    const values = file.fields[name] as FieldArray;
    assert.deepEqual(
      Array.from(kept.fields[name] as FieldArray),
      rows.map((r) => values[r]),
      name,
    );
    assert.equal(fieldTypeOf(kept.fields[name]), fieldTypeOf(values), `${name}: type kept`);
  }
  const finite = new Float32Array([1, 2, 3]);
  const fields = { a: new Uint8Array([7]) };
  const same = new NonFiniteFilter().apply(finite, fields);
  assert.equal(same.points, finite, 'no copy when every point is finite');
  assert.equal(same.fields, fields);
});

const fixtureBytes = (name: string): Uint8Array => new Uint8Array(readFileSync(join(DIR, name)));
const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('latin1');
const fromLatin1 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'latin1'));

function refuses(
  name: string,
  bytes: Uint8Array,
  code: string,
  message: RegExp,
  fieldNames?: string[],
): void {
  assert.throws(
    () => readPointFile(name, bytes, { fieldNames }),
    (error: Error & { code?: string }) => {
      assert.equal(error.code, code, `${name}: ${error.message}`);
      assert.match(error.message, message, name);
      return true;
    },
  );
}

void test(
  'malformed .pcd files: each refused with its code, sizes checked before allocating',
  T,
  () => {
    const ascii = latin1(fixtureBytes('cloud_ascii.pcd'));
    const binary = fixtureBytes('cloud_binary.pcd');
    const compressed = fixtureBytes('cloud_compressed_lzf.pcd');
    const edit = (bytes: Uint8Array, from: string, to: string): Uint8Array =>
      fromLatin1(latin1(bytes).replace(from, to));
    const cases: [string, Uint8Array, string, RegExp][] = [
      [
        'truncated binary',
        binary.subarray(0, binary.length - 10),
        ErrorCodes.PCD_TRUNCATED,
        /need \d+ bytes/,
      ],
      // POINTS that lie: a billion points in a 1 KB file is refused before any allocation.
      [
        'lying POINTS',
        edit(
          binary,
          'WIDTH 12\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 12',
          'WIDTH 1000000000\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 1000000000',
        ),
        ErrorCodes.PCD_TRUNCATED,
        /1000000000 points/,
      ],
      [
        'lying ascii POINTS',
        fromLatin1(
          ascii.replace('WIDTH 12', 'WIDTH 999999999').replace('POINTS 12', 'POINTS 999999999'),
        ),
        ErrorCodes.PCD_TRUNCATED,
        /999999999 points/,
      ],
      [
        'WIDTH x HEIGHT',
        edit(binary, 'HEIGHT 1', 'HEIGHT 2'),
        ErrorCodes.PCD_BAD_HEADER,
        /WIDTH 12 x HEIGHT 2/,
      ],
      [
        'SIZE short',
        edit(binary, 'SIZE 4 4 4', 'SIZE 4 4'),
        ErrorCodes.PCD_BAD_HEADER,
        /SIZE has 13/,
      ],
      ['bad SIZE', edit(binary, 'SIZE 4', 'SIZE 3'), ErrorCodes.PCD_UNSUPPORTED, /TYPE F SIZE 3/],
      [
        '8-byte int',
        edit(edit(binary, 'SIZE 4 4 4 4 2', 'SIZE 4 4 4 4 8'), 'TYPE F F F F U', 'TYPE F F F F I'),
        ErrorCodes.PCD_UNSUPPORTED,
        /TYPE I SIZE 8/,
      ],
      ['bad TYPE', edit(binary, 'TYPE F', 'TYPE Q'), ErrorCodes.PCD_BAD_HEADER, /TYPE "Q"/],
      [
        'no DATA',
        fromLatin1(ascii.slice(0, ascii.indexOf('DATA'))),
        ErrorCodes.PCD_BAD_HEADER,
        /no DATA line/,
      ],
      [
        'DATA kind',
        edit(binary, 'DATA binary', 'DATA binary_lzma'),
        ErrorCodes.PCD_UNSUPPORTED,
        /binary_lzma/,
      ],
      [
        'VERSION',
        edit(binary, 'VERSION 0.7', 'VERSION 0.5'),
        ErrorCodes.PCD_UNSUPPORTED,
        /VERSION 0.5/,
      ],
      [
        'no x',
        edit(binary, 'FIELDS x', 'FIELDS u'),
        ErrorCodes.PCD_UNSUPPORTED,
        /lacks x, y or z: no x/,
      ],
      [
        'not a number',
        fromLatin1(ascii.replace('\n-2.25 ', '\n-2.x5 ')),
        ErrorCodes.PCD_BAD_DATA,
        /"-2.x5"/,
      ],
      [
        'int out of range',
        fromLatin1(ascii.replace(' -128 ', ' -129 ')),
        ErrorCodes.PCD_BAD_DATA,
        /"-129" is not a i8/,
      ],
      [
        'short ascii row',
        fromLatin1(ascii.replace(/\n[^\n]+\n$/, '\n1 2 3\n')),
        ErrorCodes.PCD_TRUNCATED,
        /point 11 of 12/,
      ],
      ['not a pcd', fromLatin1('hello world\n'), ErrorCodes.PCD_BAD_HEADER, /not a PCD file/],
    ];
    const dataAt =
      latin1(compressed).indexOf('DATA binary_compressed\n') + 'DATA binary_compressed\n'.length;
    const sizes = new DataView(compressed.buffer, compressed.byteOffset + dataAt, 8);
    const withSizes = (c: number, u: number): Uint8Array => {
      const copy = compressed.slice();
      const view = new DataView(copy.buffer, dataAt, 8);
      view.setUint32(0, c, true);
      view.setUint32(4, u, true);
      return copy;
    };
    const compressedSize = sizes.getUint32(0, true);
    const rawSize = sizes.getUint32(4, true);
    cases.push(
      [
        'compressed size past the end',
        withSizes(compressedSize + 100, rawSize),
        ErrorCodes.PCD_TRUNCATED,
        /declares \d+ compressed bytes/,
      ],
      [
        'uncompressed size lies',
        withSizes(compressedSize, rawSize + 4),
        ErrorCodes.PCD_BAD_DATA,
        /declares \d+ bytes/,
      ],
      [
        'compressed cut',
        compressed.subarray(0, compressed.length - 5),
        ErrorCodes.PCD_TRUNCATED,
        /compressed bytes/,
      ],
      [
        'sizes missing',
        compressed.subarray(0, dataAt + 4),
        ErrorCodes.PCD_TRUNCATED,
        /lacks its two sizes/,
      ],
    );
    // Corrupt LZF: a back-reference before the start of the output.
    const corrupt = compressed.slice();
    corrupt[dataAt + 8] = 0xe0;
    corrupt[dataAt + 9] = 0xff;
    cases.push(['bad LZF', corrupt, ErrorCodes.PCD_BAD_DATA, /LZF data corrupt/]);
    for (const [what, bytes, code, message] of cases) refuses(`${what}.pcd`, bytes, code, message);
  },
);

void test('LZF: literals, overlapping back-references, and every corruption refused', T, () => {
  // "abcabcabcX": 3 literals, a back-reference of length 6 at distance 3 (overlapping), 1 literal.
  const stream = Uint8Array.of(2, 97, 98, 99, (4 << 5) | 0, 2, 0, 88);
  assert.equal(Buffer.from(lzfDecompress(stream, 10)).toString(), 'abcabcabcX');
  // A back-reference that does not overlap what it writes: "abcdX" then "abcd" from 5 back.
  const apart = Uint8Array.of(4, 97, 98, 99, 100, 88, 2 << 5, 4);
  assert.equal(Buffer.from(lzfDecompress(apart, 9)).toString(), 'abcdXabcd');
  // A long back-reference (length 7 + ext + 2).
  const long = Uint8Array.of(0, 122, (7 << 5) | 0, 10, 0);
  assert.equal(Buffer.from(lzfDecompress(long, 20)).toString(), 'z'.repeat(20));
  const bad: [Uint8Array, number, RegExp][] = [
    [Uint8Array.of(5, 1, 2), 6, /literal run past the end/],
    [Uint8Array.of(0, 1, 0x20), 4, /back-reference cut/],
    [Uint8Array.of(0, 1, 0xe0), 12, /back-reference cut/],
    [Uint8Array.of(0, 1, 0x20, 5), 4, /before the start/],
    [Uint8Array.of(1, 1, 2), 1, /exceeds the declared 1 bytes/],
    [Uint8Array.of(0, 1, 0x20, 0), 3, /exceeds the declared 3 bytes/],
    [Uint8Array.of(1, 1, 2), 3, /decompressed to 2 bytes/],
    [Uint8Array.of(0, 1), 1000, /cannot decompress to 1000/],
  ];
  for (const [input, size, message] of bad)
    assert.throws(
      () => lzfDecompress(input, size),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, ErrorCodes.PCD_BAD_DATA);
        assert.match(error.message, message);
        return true;
      },
    );
});

void test('malformed .ply files and fields: each refused with its code', T, () => {
  const le = fixtureBytes('cloud_binary_le.ply');
  const ascii = latin1(fixtureBytes('cloud_ascii.ply'));
  const edit = (text: string, from: string | RegExp, to: string): Uint8Array =>
    fromLatin1(text.replace(from, to));
  const cases: [string, Uint8Array, string, RegExp][] = [
    ['truncated', le.subarray(0, le.length - 3), ErrorCodes.PLY_TRUNCATED, /need \d+ bytes/],
    [
      'lying count',
      edit(latin1(le), 'element vertex 12', 'element vertex 900000000'),
      ErrorCodes.PLY_TRUNCATED,
      /900000000 vertices/,
    ],
    [
      'lying ascii count',
      edit(ascii, 'element vertex 12', 'element vertex 900000000'),
      ErrorCodes.PLY_TRUNCATED,
      /900000000 vertices/,
    ],
    [
      'bad count',
      edit(ascii, 'element vertex 12', 'element vertex -1'),
      ErrorCodes.PLY_BAD_HEADER,
      /bad vertex count/,
    ],
    [
      'bad type',
      edit(ascii, 'property ushort ring', 'property half ring'),
      ErrorCodes.PLY_UNSUPPORTED,
      /"half"/,
    ],
    [
      'format',
      edit(latin1(le), 'binary_little_endian', 'binary_middle_endian'),
      ErrorCodes.PLY_UNSUPPORTED,
      /binary_middle_endian/,
    ],
    [
      'list x',
      edit(ascii, 'property float x', 'property list uchar float x'),
      ErrorCodes.PLY_UNSUPPORTED,
      /list property x/,
    ],
    [
      'int out of range',
      edit(ascii, ' -128 ', ' 300 '),
      ErrorCodes.PLY_BAD_DATA,
      /"300" is not a number of type char/,
    ],
    [
      'short list',
      edit(ascii, /\n[^\n]+\n$/, '\n1 2 3 4 5 6 7 8 9 10 11 12 9 1\n'),
      ErrorCodes.PLY_TRUNCATED,
      /vertex 11 of 12/,
    ],
    [
      'names collide',
      edit(
        ascii,
        'property float normal-x',
        'property float normal_x\nproperty float normal-x'.replace('normal_x\n', 'normal_x\n'),
      ),
      ErrorCodes.FIELDS_INVALID,
      /normal_x/,
    ],
    [
      'duplicate x',
      edit(ascii, 'property float intensity', 'property float x'),
      ErrorCodes.FIELDS_INVALID,
      /x appears twice/,
    ],
  ];
  for (const [what, bytes, code, message] of cases) refuses(`${what}.ply`, bytes, code, message);
  // 33 properties besides x, y, z: more than a frame carries.
  const many = `ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\n${Array.from({ length: 33 }, (_, i) => `property uchar f${i}\n`).join('')}end_header\n${'1 '.repeat(36)}\n`;
  refuses('many.ply', fromLatin1(many), ErrorCodes.FIELDS_INVALID, /at most 32 fields/);
});

void test(
  'malformed .npy inputs and --fields that do not fit: each refused with its code',
  T,
  () => {
    const columns = fixtureBytes('columns_f4.npy');
    const structured = fixtureBytes('structured.npy');
    refuses('c.npy', columns, ErrorCodes.SOURCE_UNREADABLE, /names 4 columns/, [
      'x',
      'y',
      'z',
      'a',
    ]);
    refuses('c.npy', columns, ErrorCodes.SOURCE_UNREADABLE, /lacks x, y or z: no z/, [
      'x',
      'y',
      'a',
      'b',
      'c',
    ]);
    refuses('s.npy', structured, ErrorCodes.SOURCE_UNREADABLE, /names its own fields/, [
      'x',
      'y',
      'z',
    ]);
    refuses(
      's.pcd',
      fixtureBytes('cloud_binary.pcd'),
      ErrorCodes.SOURCE_UNREADABLE,
      /names its own fields/,
      ['x', 'y', 'z'],
    );
    refuses(
      's.npy',
      structured.subarray(0, structured.length - 1),
      ErrorCodes.NPY_TRUNCATED,
      /needs \d+ bytes/,
    );
    const text = latin1(structured);
    refuses(
      's.npy',
      fromLatin1(text.replace("('count', '<u4')", "('count', '<u8')")),
      ErrorCodes.NPY_UNSUPPORTED_DTYPE,
      /"count" has dtype <u8/,
    );
    refuses(
      's.npy',
      fromLatin1(text.replace("('x', '<f4')", "('u', '<f4')")),
      ErrorCodes.NPY_UNSUPPORTED_DTYPE,
      /no x/,
    );
    refuses('s.las', structured, ErrorCodes.SOURCE_UNREADABLE, /unsupported file type/);
  },
);

void test('the fixtures directory holds what the manifest lists, and the script', T, () => {
  const files = new Set(readdirSync(DIR));
  assert.ok(files.has('make_fixtures.py'));
  for (const fixture of manifest.fixtures) assert.ok(files.has(fixture.file), fixture.file);
});

void test(
  'text files: columns by header or --fields, float32 or float64 by their digits, bad lines refused',
  T,
  () => {
    const csv = readPointFile('cloud.csv', fixtureBytes('cloud.csv'));
    assert.deepEqual(
      Object.entries(csv.fields).map(([name, values]) => [name, fieldTypeOf(values)]),
      [
        ['intensity', 'f32'],
        ['time', 'f64'],
        ['ring', 'f32'],
      ],
    );
    // Without names: x, y, z first, the rest dropped and said.
    const plain = readPointFile('p.txt', fromLatin1('1 2 3 4\n5 6 7 8\n'));
    assert.deepEqual(Array.from(plain.points), [1, 2, 3, 5, 6, 7]);
    assert.equal(plain.conversion.droppedColumns, 1);
    const semicolons = readPointFile('p.txt', fromLatin1('// c\nz;y;x;t\n1;2;3;1e-3\n'));
    assert.deepEqual(Array.from(semicolons.points), [3, 2, 1]);
    assert.deepEqual(Array.from(semicolons.fields.t as Float32Array), [Math.fround(1e-3)]);
    const cases: [string, string, string, RegExp, string[]?][] = [
      [
        'ragged.xyz',
        '1 2 3\n4 5\n',
        ErrorCodes.SOURCE_UNREADABLE,
        /line 2 has 2 values; the first line has 3/,
      ],
      [
        'word.xyz',
        '1 2 3\n4 five 6\n',
        ErrorCodes.SOURCE_UNREADABLE,
        /line 2: "five" is not a number/,
      ],
      [
        'named.csv',
        'x,y,z\n1,2,3\n',
        ErrorCodes.SOURCE_UNREADABLE,
        /names its own/,
        ['x', 'y', 'z'],
      ],
      ['two.xyz', '1 2\n', ErrorCodes.SOURCE_UNREADABLE, /2 columns; x, y, z need 3/],
      ['empty.xyz', '# nothing\n\n', ErrorCodes.SOURCE_EMPTY, /no points/],
      [
        'count.xyz',
        '1 2 3 4\n',
        ErrorCodes.SOURCE_UNREADABLE,
        /--fields names 3 columns/,
        ['x', 'y', 'z'],
      ],
      ['noz.csv', 'x,y,w\n1,2,3\n', ErrorCodes.SOURCE_UNREADABLE, /lacks x, y or z: no z/],
    ];
    for (const [name, text, code, message, names] of cases)
      refuses(name, fromLatin1(text), code, message, names);
  },
);

void test('a structured .npy of an organised cloud (H, W) and a bool field', T, () => {
  // Written as numpy.save writes it: (2, 3) records of x, y, z float32 and a bool `valid`.
  const header = latin1(
    Buffer.from(
      "\x93NUMPY\x01\x00v\x00{'descr': [('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('valid', '|b1')], 'fortran_order': False, 'shape': (2, 3), }",
      'latin1',
    ),
  );
  const padded = header.padEnd(127, ' ') + '\n';
  const body = Buffer.alloc(6 * 13);
  for (let r = 0; r < 6; r++) {
    body.writeFloatLE(r, r * 13);
    body.writeFloatLE(r === 4 ? NaN : -r, r * 13 + 4);
    body.writeFloatLE(0.5, r * 13 + 8);
    body.writeUInt8(r === 4 ? 0 : 1, r * 13 + 12);
  }
  const bytes = new Uint8Array(Buffer.concat([Buffer.from(padded, 'latin1'), body]));
  assert.equal(parseNpyHeaderLength(bytes), 128);
  const file = readPointFile('organised.npy', bytes);
  assert.equal(file.points.length, 18, 'H x W points, in row order');
  assert.ok(Number.isNaN(file.points[13]), 'the NaN point is kept');
  assert.deepEqual(Array.from(file.fields.valid as Uint8Array), [1, 1, 1, 1, 0, 1]);
  assert.equal(fieldTypeOf(file.fields.valid), 'u8');
});

function parseNpyHeaderLength(bytes: Uint8Array): number {
  return 10 + (bytes[8] as number) + ((bytes[9] as number) << 8);
}
