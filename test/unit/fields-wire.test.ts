/**
 * Per-point fields on the wire (docs/protocol.md, "Per-point fields"): the START chunk's field
 * table and the payload layout byte for byte, reassembly with fields (views, padding, the points
 * part's checks), every malformed table rejected (`PS_ERR_FIELDS_INVALID`, not fatal) before
 * anything is allocated, the plain form's structured `.npy`, and the sender's refusals.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import type { PointstreamError } from '../../src/errors.js';
import { ErrorCodes } from '../../src/errors.js';
import { FrameSender } from '../../src/sender/frame-sender.js';
import { resolveSenderOptions } from '../../src/sender/options.js';
import { createChannelPair } from '../../src/transport/memory.js';
import type { ChannelMessage } from '../../src/transport/channel.js';
import { readChunkHeader } from '../../src/wire/chunk.js';
import { decodeServerMessage, encodeServerMessage } from '../../src/wire/control.js';
import type { HelloMessage } from '../../src/wire/control.js';
import { encodePoints } from '../../src/wire/encodings/index.js';
import {
  FieldCodec,
  NO_FIELDS,
  encodeFieldTable,
  payloadBytesOf,
  rawFields,
} from '../../src/wire/fields.js';
import type { FieldColumn, FieldTable, PointFields } from '../../src/wire/fields.js';
import { prepareEncodedFrame, prepareFrame, writeChunk } from '../../src/wire/frame.js';
import type { OutgoingFrame } from '../../src/wire/frame.js';
import { encodeNpyHeader, encodeStructuredNpyHeader } from '../../src/wire/npy.js';
import { decodePlainFrame } from '../../src/wire/plain.js';
import { FrameReassembler } from '../../src/wire/reassembler.js';
import type { AssembledFrame, PushResult } from '../../src/wire/reassembler.js';

const T = { timeout: 10_000 };
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

function chunksOf(frame: OutgoingFrame): Uint8Array[] {
  const scratch = new Uint8Array(frame.maxMessageBytes);
  const out: Uint8Array[] = [];
  for (let i = 0; i < frame.chunkCount; i++) out.push(writeChunk(frame, i, scratch).slice());
  return out;
}

function payloadOf(frame: OutgoingFrame): Uint8Array {
  return new Uint8Array(Buffer.concat(frame.parts.map((part) => Buffer.from(part))));
}

/** A reassembler whose allocations are counted. */
function counted(options: ConstructorParameters<typeof FrameReassembler>[0] = {}) {
  const allocations: number[] = [];
  const reassembler = new FrameReassembler({
    checksum: crc32,
    ...options,
    allocate: (bytes) => {
      allocations.push(bytes);
      return new Uint8Array(bytes);
    },
  });
  return { reassembler, allocations };
}

function assemble(chunks: Uint8Array[], reassembler = counted().reassembler): PushResult {
  let result: PushResult = { kind: 'pending' };
  for (const chunk of chunks) result = reassembler.push(chunk);
  return result;
}

function frameOf(result: PushResult): AssembledFrame {
  assert.equal(result.kind, 'frame', result.kind === 'rejected' ? result.error.message : '');
  return (result as { frame: AssembledFrame }).frame;
}

/** The docs' example: 2 points, intensity f32 and ring u16. */
const examplePoints = Float32Array.of(1, 2, 3, 4, 5, 6);
const exampleFields: PointFields = {
  intensity: Float32Array.of(0.5, 0.25),
  ring: Uint16Array.of(7, 9),
};

const DOC_TABLE_HEX = [
  '98000000 02000000',
  '01000900 08000000 0000000000000000',
  '696e74656e73697479',
  '03000400 04000000 0000000000000000',
  '72696e67',
]
  .join('')
  .replace(/ /g, '');

void describe('field tables on the wire', T, () => {
  void it('lays out the protocol.md example byte for byte', () => {
    const frame = prepareFrame(
      examplePoints,
      7,
      1_795_654_393_000,
      262_144,
      crc32,
      rawFields(exampleFields, 2),
    );
    assert.equal(frame.payloadBytes, 164);
    assert.equal(frame.chunkCount, 1);
    assert.equal(hex(frame.fieldTable as Uint8Array), DOC_TABLE_HEX);
    const [start] = chunksOf(frame) as [Uint8Array];
    const view = new DataView(start.buffer, start.byteOffset);
    assert.equal(view.getUint16(2, true), 93, 'headerLength 40 + 53');
    assert.equal(start[27], 0x01, 'flags');
    assert.equal(view.getUint32(12, true), 164, 'payloadBytes');
    assert.equal(hex(start.subarray(40, 93)), DOC_TABLE_HEX);
    const payload = start.subarray(93);
    assert.equal(payload.length, 164);
    assert.deepEqual(payload.subarray(0, 128), encodeNpyHeader([2, 3]));
    assert.deepEqual(payload.subarray(128, 152), new Uint8Array(examplePoints.buffer));
    assert.equal(hex(payload.subarray(152, 160)), '0000003f0000803e', '0.5, 0.25 as <f4');
    assert.equal(hex(payload.subarray(160, 164)), '07000900', '7, 9 as <u2');
    assert.equal(view.getUint32(20, true), crc32(payload), 'the CRC covers the whole payload');
    const header = readChunkHeader(start);
    assert.equal(header.headerBytes, 93);
    assert.equal(hex(header.meta?.fieldTable as Uint8Array), DOC_TABLE_HEX);
  });

  void it('keeps frames without fields byte for byte as before (no flag, no table)', () => {
    const without = prepareFrame(examplePoints, 7, 0, 262_144, crc32);
    const empty = prepareFrame(examplePoints, 7, 0, 262_144, crc32, rawFields({}, 2));
    for (const frame of [without, empty]) {
      assert.equal(frame.fieldTable, undefined);
      const [start] = chunksOf(frame) as [Uint8Array];
      assert.equal(start.length, 40 + 152);
      assert.equal(start[27], 0);
      assert.equal(readChunkHeader(start).meta?.fieldTable, undefined);
    }
  });

  void it('pads columns to multiples of 8 with zeros, slices START shorter, round-trips as views', () => {
    // 3 points: points part 128 + 36 = 164 bytes, so intensity starts at 168 (4 bytes padding),
    // ring at 184 (4), time at 192 (2), the payload ends at 216.
    const points = Float32Array.from({ length: 9 }, (_, i) => i / 3);
    const fields: PointFields = {
      intensity: Float32Array.of(Number.NaN, 1.5, -0),
      ring: Uint16Array.of(0, 65_535, 3),
      time: Float64Array.of(1.25e9, 1.25e9 + 1e-6, -1),
    };
    // 300-byte messages: START carries 300 - 40 - table, the DATA chunks 288 each.
    const frame = prepareFrame(points, 1, 0, 300, crc32, rawFields(fields, 3));
    const tableBytes = (frame.fieldTable as Uint8Array).length;
    assert.equal(tableBytes, 8 + 3 * 16 + 9 + 4 + 4);
    assert.equal(frame.payloadBytes, 216);
    const payload = payloadOf(frame);
    assert.equal(hex(payload.subarray(164, 168)), '00000000');
    assert.equal(hex(payload.subarray(180, 184)), '00000000');
    assert.equal(hex(payload.subarray(184, 190)), '0000ffff0300');
    assert.equal(hex(payload.subarray(190, 192)), '0000');
    const chunks = chunksOf(frame);
    assert.equal(chunks.length, frame.chunkCount);
    assert.equal(chunks.length, 2);
    assert.equal((chunks[0] as Uint8Array).length, 300, 'START full: 300 - 40 - table of payload');
    assert.equal(
      chunks.reduce((sum, c, i) => sum + c.length - (i === 0 ? 40 + tableBytes : 12), 0),
      216,
    );
    const { reassembler, allocations } = counted();
    const received = frameOf(assemble(chunks, reassembler));
    assert.deepEqual(allocations, [216]);
    assert.deepEqual(received.payload, payload);
    assert.deepEqual(received.points, points);
    assert.deepEqual(Object.keys(received.fields), ['intensity', 'ring', 'time']);
    for (const [name, values] of Object.entries(fields)) {
      const got = received.fields[name];
      assert.ok(got !== undefined && got.buffer === received.payload.buffer, `${name} is a view`);
      assert.equal(got.constructor, values.constructor);
      assert.deepEqual(
        new Uint8Array(got.buffer, got.byteOffset, got.byteLength),
        new Uint8Array(values.buffer),
      );
    }
    assert.deepEqual(
      received.fieldTable?.columns.map((c) => c.name),
      ['intensity', 'ring', 'time'],
    );
    assert.equal(received.fieldTable?.pointsBytes, 164);
  });

  void it('checks only the points part for NaN: a NaN field passes, a NaN point does not', () => {
    const fields = { intensity: Float32Array.of(Number.NaN, Number.POSITIVE_INFINITY) };
    const ok = prepareFrame(examplePoints, 1, 0, 262_144, crc32, rawFields(fields, 2));
    assert.ok(Number.isNaN(frameOf(assemble(chunksOf(ok))).fields.intensity?.[0]));
    const bad = Float32Array.of(1, 2, 3, 4, Number.NaN, 6);
    const result = assemble(
      chunksOf(prepareFrame(bad, 1, 0, 262_144, crc32, rawFields(exampleFields, 2))),
    );
    assert.equal(result.kind === 'rejected' && result.error.code, ErrorCodes.FRAME_NON_FINITE);
  });

  void it('carries raw fields after encoded points (q16, qrice), decoded inline', () => {
    const points = Float32Array.from({ length: 300 }, (_, i) => Math.sin(i));
    const fields = { ring: Uint16Array.from({ length: 100 }, (_, i) => i % 16) };
    for (const name of ['q16', 'qrice'] as const) {
      const encoded = { ...encodePoints(points, name), fields: rawFields(fields, 100) };
      const frame = prepareEncodedFrame(encoded, 3, 0, 1000, crc32);
      const received = frameOf(assemble(chunksOf(frame)));
      assert.deepEqual(received.fields.ring, fields.ring);
      assert.equal(received.fieldTable?.pointsBytes, encoded.bytes.length);
      assert.equal(received.points.length, 300);
    }
  });

  void it('hands deferred frames over with their table, reserving no more for raw fields', () => {
    const points = Float32Array.from({ length: 300 }, (_, i) => Math.cos(i));
    const encoded = {
      ...encodePoints(points, 'q16'),
      fields: rawFields({ ring: new Uint16Array(100) }, 100),
    };
    const frame = prepareEncodedFrame(encoded, 3, 0, 262_144, crc32);
    const reassembler = new FrameReassembler({ checksum: crc32, deferDecode: true });
    const result = assemble(chunksOf(frame), reassembler);
    assert.equal(result.kind, 'encoded');
    const handed = result.frame;
    assert.equal(handed.fieldTable?.columns[0]?.name, 'ring');
    assert.equal(handed.reserved, frame.payloadBytes + 100 * 12);
  });

  void it('reserves N x size per coded column at completion, and releases it', () => {
    const points = Float32Array.from({ length: 300 }, (_, i) => Math.cos(i));
    // A delta-rice column (its bytes are not decoded here: only the budget is looked at).
    const coded = {
      columns: [
        { name: 'ring', type: 'u16', codec: FieldCodec.DELTA_RICE, param: 0, byteLength: 10 },
      ] as FieldColumn[],
      bytes: [new Uint8Array(10)],
      maxErrors: { ring: 0 },
    };
    const encoded = { ...encodePoints(points, 'q16'), fields: coded };
    const frame = prepareEncodedFrame(encoded, 3, 0, 262_144, crc32);
    let held = 0;
    let most = 0;
    const budget = {
      reserve: (bytes: number) => {
        held += bytes;
        most = Math.max(most, held);
        return true;
      },
      release: (bytes: number) => (held -= bytes),
    };
    const deferred = new FrameReassembler({ checksum: crc32, deferDecode: true, budget });
    const handed = assemble(chunksOf(frame), deferred);
    assert.equal(handed.kind, 'encoded');
    const reserved = handed.frame.reserved;
    assert.equal(reserved, frame.payloadBytes + 100 * 12 + 100 * 2);
    assert.equal(held, reserved);
    deferred.releaseDecoded(reserved);
    assert.equal(held, 0);
    // Decoded inline: reserved while decoding (whether these 10 bytes decode or not), then
    // released.
    most = 0;
    const inline = assemble(chunksOf(frame), new FrameReassembler({ checksum: crc32, budget }));
    assert.ok(inline.kind === 'rejected' || inline.kind === 'frame');
    assert.equal(most, frame.payloadBytes + 100 * 12 + 100 * 2);
    assert.equal(held, 0);
  });
});

// ---------------------------------------------------------------------------------------------
// Malformed tables

/** The docs' example frame with its table replaced by `table` (START only: one chunk). */
function startWith(table: Uint8Array, payloadBytes = 164, encoding = 1): Uint8Array {
  const base = prepareFrame(examplePoints, 7, 0, 262_144, crc32, rawFields(exampleFields, 2));
  const [start] = chunksOf(base) as [Uint8Array];
  // The START may not carry more than the payload it declares.
  const payload = start.subarray(93, 93 + Math.min(164, payloadBytes));
  const out = new Uint8Array(40 + table.length + payload.length);
  out.set(start.subarray(0, 40));
  out.set(table, 40);
  out.set(payload, 40 + table.length);
  const view = new DataView(out.buffer);
  view.setUint16(2, 40 + table.length, true);
  view.setUint32(12, payloadBytes, true);
  out[26] = encoding;
  return out;
}

const docTable = (): Uint8Array => Uint8Array.from(Buffer.from(DOC_TABLE_HEX, 'hex'));
const edited = (change: (bytes: Uint8Array, view: DataView) => void): Uint8Array => {
  const bytes = docTable();
  change(bytes, new DataView(bytes.buffer));
  return bytes;
};
/** A table of these columns (written without the sender's checks). */
function rawTable(pointsBytes: number, columns: readonly FieldColumn[]): Uint8Array {
  const parts: Buffer[] = [Buffer.from([0, 0, 0, 0, columns.length, 0, 0, 0])];
  parts[0]?.writeUInt32LE(pointsBytes, 0);
  for (const c of columns) {
    const entry = Buffer.alloc(16);
    entry[0] = typeIds[c.type] ?? 99;
    entry[1] = c.codec;
    entry[2] = c.name.length;
    entry.writeUInt32LE(c.byteLength, 4);
    entry.writeDoubleLE(c.param, 8);
    parts.push(entry, Buffer.from(c.name, 'latin1'));
  }
  return new Uint8Array(Buffer.concat(parts));
}
const typeIds: Record<string, number> = { f32: 1, u8: 2, u16: 3, u32: 4, f64: 5 };
const col = (name: string, type: FieldColumn['type'], byteLength: number, codec = 0, param = 0) =>
  ({ name, type, codec, param, byteLength }) as FieldColumn;
const many = Array.from({ length: 33 }, (_, i) => col(`f${i}`, 'u8', 2));

const malformed: [string, Uint8Array, number?, number?][] = [
  ['an empty table (flag set, headerLength 40)', new Uint8Array(0)],
  ['a table shorter than its 8-byte prefix', docTable().subarray(0, 7)],
  ['a table truncated in an entry', docTable().subarray(0, 20)],
  ['a table truncated in a name', docTable().subarray(0, 30)],
  ['bytes after the last entry', Uint8Array.from([...docTable(), 0])],
  ['0 fields', edited((b) => (b[4] = 0))],
  ['33 fields', rawTable(152 + 33 * 8, many), 152 + 33 * 8],
  ['a table over the largest size', new Uint8Array(8 + 32 * 80 + 1)],
  ['non-zero reserved prefix bytes', edited((b) => (b[6] = 1))],
  ['a non-zero reserved entry byte', edited((b) => (b[8 + 3] = 1))],
  ['a name of 0 bytes', rawTable(152, [col('', 'f32', 8)]), 160],
  ['a name of 65 bytes', rawTable(152, [col('a'.repeat(65), 'u8', 2)]), 154],
  ['a name starting with a digit', rawTable(152, [col('1a', 'f32', 8)]), 160],
  ['a name with a dash', rawTable(152, [col('a-b', 'f32', 8)]), 160],
  ['a name with a non-ASCII byte', edited((b) => (b[24] = 0xe9))],
  ['the name x', rawTable(152, [col('x', 'f32', 8)]), 160],
  ['a duplicated name', rawTable(152, [col('ring', 'u16', 4), col('ring', 'u16', 4)]), 164],
  ['an unknown type (99)', edited((b) => (b[8] = 99))],
  ['type 0', edited((b) => (b[8] = 0))],
  ['an unknown codec (3)', edited((b) => (b[9] = 3))],
  ['a raw column of the wrong size', rawTable(152, [col('intensity', 'f32', 12)]), 164],
  ['a raw column with a parameter', edited((_, v) => v.setFloat64(16, 0.5, true))],
  ['delta-rice on a float field', edited((b) => (b[9] = FieldCodec.DELTA_RICE)), 164, 2],
  ['quant-rice on an integer field', edited((b) => (b[42 + 1] = FieldCodec.QUANT_RICE)), 164, 2],
  ['quant-rice with a step of 0', edited((b) => (b[9] = FieldCodec.QUANT_RICE)), 164, 2],
  ['columns ending before payloadBytes', docTable(), 172],
  ['columns ending after payloadBytes', docTable(), 160],
  ['pointsBytes beyond the payload', edited((_, v) => v.setUint32(0, 0xffff_fff0, true))],
  ['coded columns in a .npy frame', edited((b) => (b[42 + 1] = FieldCodec.DELTA_RICE))],
];

void describe(
  'malformed field tables: PS_ERR_FIELDS_INVALID, not fatal, nothing allocated',
  T,
  () => {
    for (const [name, table, payloadBytes, encoding] of malformed) {
      void it(name, () => {
        const { reassembler, allocations } = counted();
        const result = reassembler.push(startWith(table, payloadBytes, encoding));
        assert.equal(result.kind, 'rejected');
        if (result.kind !== 'rejected') return;
        assert.equal(result.error.code, ErrorCodes.FIELDS_INVALID, result.error.message);
        assert.equal(result.fatal, false);
        assert.equal(result.seq, 7);
        assert.deepEqual(allocations, []);
        assert.equal(reassembler.bytesBuffered, 0);
        // The session goes on: the next frame is received.
        const next = prepareFrame(examplePoints, 8, 0, 262_144, crc32, rawFields(exampleFields, 2));
        assert.equal(assemble(chunksOf(next), reassembler).kind, 'frame');
      });
    }

    void it('coded columns that would decode beyond maxFrameBytes: PS_ERR_FRAME_TOO_LARGE at START', () => {
      // 32 delta-rice u32 columns of 10 bytes each, for 5M points: 640 MB decoded from ~600 bytes.
      const columns = Array.from({ length: 32 }, (_, i) =>
        col(`f${i}`, 'u32', 10, FieldCodec.DELTA_RICE),
      );
      const payloadBytes = payloadBytesOf({ pointsBytes: 100, columns });
      const start = startWith(rawTable(100, columns), payloadBytes, 3);
      new DataView(start.buffer, start.byteOffset).setUint32(16, 5_000_000, true);
      const { reassembler, allocations } = counted();
      const result = reassembler.push(start);
      assert.equal(result.kind, 'rejected');
      if (result.kind !== 'rejected') return;
      assert.equal(result.error.code, ErrorCodes.FRAME_TOO_LARGE, result.error.message);
      assert.equal(result.fatal, false);
      assert.deepEqual(allocations, []);
    });

    void it('drops the rejected frame’s DATA chunks without more reports', () => {
      const frame = prepareFrame(
        new Float32Array(3000),
        7,
        0,
        1000,
        crc32,
        rawFields({ ring: new Uint16Array(1000) }, 1000),
      );
      const chunks = chunksOf(frame);
      const start = chunks[0] as Uint8Array;
      start[40 + 4] = 0; // 0 fields
      const { reassembler, allocations } = counted();
      const results = chunks.map((chunk) => reassembler.push(chunk));
      assert.equal(results[0]?.kind, 'rejected');
      assert.ok(results.slice(1).every((r) => r.kind === 'pending'));
      assert.deepEqual(allocations, []);
    });

    void it('checks the .npy header against pointsBytes, not payloadBytes', () => {
      // pointsBytes 160 with columns that still end at the payload: the .npy disagrees.
      const table = rawTable(160, [col('intensity', 'f32', 8), col('ring', 'u16', 4)]);
      const { reassembler, allocations } = counted();
      const result = reassembler.push(startWith(table, 172));
      assert.equal(
        result.kind === 'rejected' && result.error.code,
        ErrorCodes.FRAME_LENGTH_MISMATCH,
      );
      assert.deepEqual(allocations, []);
    });

    void it('refuses other flags fatally (PS_ERR_CHUNK_BAD_HEADER), and a START cut in its table as truncated', () => {
      const [start] = chunksOf(
        prepareFrame(examplePoints, 7, 0, 262_144, crc32, rawFields(exampleFields, 2)),
      ) as [Uint8Array];
      for (const flags of [0x02, 0x03, 0x80]) {
        const bad = start.slice();
        bad[27] = flags;
        const result = counted().reassembler.push(bad);
        assert.equal(result.kind === 'rejected' && result.error.code, ErrorCodes.CHUNK_BAD_HEADER);
        assert.equal(result.kind === 'rejected' && result.fatal, true);
      }
      const cut = counted().reassembler.push(start.subarray(0, 60));
      assert.equal(cut.kind === 'rejected' && cut.error.code, ErrorCodes.CHUNK_TRUNCATED);
    });
  },
);

// ---------------------------------------------------------------------------------------------
// The plain form: structured .npy

function structuredNpy(
  points: Float32Array,
  fields: readonly [string, string, ArrayLike<number>][],
): Uint8Array {
  const n = points.length / 3;
  const dtypes: [string, string][] = [
    ['x', '<f4'],
    ['y', '<f4'],
    ['z', '<f4'],
    ...fields.map(([name, dtype]) => [name, dtype] as [string, string]),
  ];
  const header = encodeStructuredNpyHeader(n, dtypes);
  const sizes = dtypes.map(([, d]) => Number(d.slice(2)));
  const item = sizes.reduce((a, b) => a + b, 0);
  const body = Buffer.alloc(n * item);
  for (let i = 0; i < n; i++) {
    let at = i * item;
    for (let k = 0; k < 3; k++, at += 4) body.writeFloatLE(points[i * 3 + k] as number, at);
    for (const [, dtype, values] of fields) {
      const v = values[i] as number;
      if (dtype === '<f4') body.writeFloatLE(v, at);
      else if (dtype === '<f8') body.writeDoubleLE(v, at);
      else if (dtype === '<u2') body.writeUInt16LE(v, at);
      else if (dtype === '|u1') body.writeUInt8(v, at);
      else throw new Error(dtype);
      at += Number(dtype.slice(2));
    }
  }
  return new Uint8Array(Buffer.concat([Buffer.from(header), body]));
}

const limits = { maxFrameBytes: 1 << 26, maxPointsPerFrame: 1 << 20, allowNonFinite: false };

void describe('plain form: structured .npy', T, () => {
  void it('reads x, y, z and fields into the chunked layout (copies)', () => {
    const points = Float32Array.from({ length: 15 }, (_, i) => i * 0.5);
    const intensity = Float32Array.of(0.1, 0.2, 0.3, 0.4, 0.5);
    const ring = Uint16Array.of(1, 2, 3, 4, 5);
    const time = Float64Array.of(1, 2, 3, 4, 5e9);
    const rgb = Uint8Array.of(10, 20, 30, 40, 250);
    const message = structuredNpy(points, [
      ['intensity', '<f4', intensity],
      ['ring', '<u2', ring],
      ['time', '<f8', time],
      ['rgb', '|u1', rgb],
    ]);
    const frame = decodePlainFrame(message, 0, limits);
    assert.equal(frame.pointCount, 5);
    assert.deepEqual(frame.points, points);
    assert.deepEqual(frame.fields, { intensity, ring, time, rgb });
    // The same bytes a client would send in the chunked form.
    const sent = prepareFrame(
      points,
      0,
      0,
      262_144,
      crc32,
      rawFields({ intensity, ring, time, rgb }, 5),
    );
    assert.deepEqual(frame.payload, payloadOf(sent));
    assert.deepEqual(
      encodeFieldTable(frame.fieldTable as FieldTable, 5),
      sent.fieldTable as Uint8Array,
    );
    assert.deepEqual(frame.npy, payloadOf(sent).subarray(0, 128 + 60));
    assert.ok(frame.fields.time?.buffer === frame.payload?.buffer);
  });

  void it('refuses other structured dtypes with PS_ERR_NPY_UNSUPPORTED_DTYPE', () => {
    const points = new Float32Array(6);
    const cases: [string, Uint8Array][] = [
      ['xyz only', structuredNpy(points, [])],
      [
        'y first',
        Uint8Array.from(
          Buffer.from(structuredNpy(points, [['intensity', '<f4', [0, 0]]])).map((b, i, all) =>
            // swap the 'x' and 'y' names in the header text
            i < 128 && all[i - 1] === 0x27 && all[i + 1] === 0x27 && (b === 0x78 || b === 0x79)
              ? b ^ 1
              : b,
          ),
        ),
      ],
    ];
    const f8 = Buffer.from(structuredNpy(points, [['intensity', '<f4', [0, 0]]]));
    cases.push(['x as <f8', patch(f8, "('x', '<f4')", "('x', '<f8')")]);
    cases.push(['a big-endian field', patch(f8, "('intensity', '<f4')", "('intensity', '>f4')")]);
    for (const [name, message] of cases) {
      assert.throws(
        () => decodePlainFrame(message, 3, limits),
        (error: PointstreamError) => error.code === ErrorCodes.NPY_UNSUPPORTED_DTYPE,
        name,
      );
    }
  });

  void it('checks the length and the points: truncated, NaN', () => {
    const message = structuredNpy(Float32Array.of(1, 2, 3), [['ring', '<u2', [4]]]);
    assert.throws(
      () => decodePlainFrame(message.subarray(0, message.length - 1), 0, limits),
      (error: PointstreamError) => error.code === ErrorCodes.NPY_TRUNCATED,
    );
    const nan = structuredNpy(Float32Array.of(1, Number.NaN, 3), [['ring', '<u2', [4]]]);
    assert.throws(
      () => decodePlainFrame(nan, 0, limits),
      (error: PointstreamError) => error.code === ErrorCodes.FRAME_NON_FINITE,
    );
  });
});

function patch(bytes: Uint8Array, from: string, to: string): Uint8Array {
  const text = Buffer.from(bytes).toString('latin1');
  assert.ok(text.includes(from) && from.length === to.length);
  return Uint8Array.from(Buffer.from(text.replace(from, to), 'latin1'));
}

// ---------------------------------------------------------------------------------------------
// Hello and the sender

void describe('hello fields and the sender', T, () => {
  const hello = (fields?: boolean): HelloMessage => ({
    type: 'hello',
    session: 's',
    protocol: 'pointstream/1',
    maxFrameBytes: 1 << 26,
    maxPointsPerFrame: 1 << 22,
    maxFramesInReassembly: 2,
    encodings: [1, 2, 3],
    ...(fields === undefined ? {} : { fields }),
  });

  void it('parses "fields" in a hello, refusing a non-boolean', () => {
    assert.equal(
      (decodeServerMessage(encodeServerMessage(hello(true))) as HelloMessage).fields,
      true,
    );
    assert.equal(
      (decodeServerMessage(encodeServerMessage(hello())) as HelloMessage).fields,
      undefined,
    );
    assert.throws(
      () => decodeServerMessage(JSON.stringify({ ...hello(), fields: 1 })),
      (error: PointstreamError) => error.code === ErrorCodes.CONTROL_INVALID,
    );
  });

  async function greeted(fields: boolean | undefined, encoding: 'raw' | 'q16' = 'raw') {
    const pair = createChannelPair({ protocol: 'pointstream/1' });
    while (!pair.a.isOpen()) await new Promise((resolve) => setTimeout(resolve, 0));
    const sender = new FrameSender({ channel: pair.a, encoding, crc32 });
    const received: ChannelMessage[] = [];
    pair.b.listen({ message: (data) => received.push(data) });
    pair.b.send(encodeServerMessage(hello(fields)));
    await sender.ready();
    return { sender, received, close: () => pair.a.close() };
  }

  void it('refuses fields to a server without "fields": true, sending nothing', async () => {
    for (const fields of [undefined, false]) {
      const { sender, received, close } = await greeted(fields);
      await assert.rejects(
        sender.send(examplePoints, { fields: exampleFields }),
        (error: PointstreamError) => error.code === ErrorCodes.FIELDS_UNSUPPORTED,
      );
      // Points encoded already (a browser's worker) that carry their fields: refused too.
      await assert.rejects(
        sender.send({ ...encodePoints(examplePoints, 'q16'), fields: rawFields(exampleFields, 2) }),
        (error: PointstreamError) => error.code === ErrorCodes.FIELDS_UNSUPPORTED,
      );
      // Without fields (or an empty object) it still sends.
      await sender.send(examplePoints, { fields: NO_FIELDS });
      await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(received.length, 1);
      assert.equal((received[0] as Uint8Array)[27], 0);
      close();
    }
  });

  void it('refuses bad fields with PS_ERR_FIELDS_INVALID, sending nothing', async () => {
    const { sender, received, close } = await greeted(true);
    const bad: PointFields[] = [
      { intensity: new Float32Array(3) },
      { x: new Float32Array(2) },
      { 'a b': new Float32Array(2) },
      { clamped: new Uint8ClampedArray(2) as unknown as Uint8Array },
      Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`f${i}`, new Uint8Array(2)])),
    ];
    for (const fields of bad) {
      await assert.rejects(
        sender.send(examplePoints, { fields }),
        (error: PointstreamError) => error.code === ErrorCodes.FIELDS_INVALID,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(received.length, 0);
    close();
  });

  void it('sends fields a reassembler reads back (raw and q16), reporting fieldMaxErrors', async () => {
    for (const encoding of ['raw', 'q16'] as const) {
      const { sender, received, close } = await greeted(true, encoding);
      const sent = await sender.send(examplePoints, { fields: exampleFields });
      assert.deepEqual(sent.fieldMaxErrors, { intensity: 0, ring: 0 });
      await new Promise((resolve) => setTimeout(resolve, 10));
      const frame = frameOf(assemble(received as Uint8Array[]));
      assert.deepEqual(frame.fields, exampleFields);
      close();
    }
  });

  void it('validates fieldPrecision by name', () => {
    for (const fieldPrecision of [
      { x: 0.1 },
      { intensity: 0 },
      { intensity: Number.NaN },
      { intensity: Number.POSITIVE_INFINITY },
      { 'bad name': 1 },
      [] as unknown as Record<string, number>,
    ]) {
      assert.throws(
        () => resolveSenderOptions({ fieldPrecision }),
        (error: PointstreamError) => error.code === ErrorCodes.INVALID_OPTION,
        JSON.stringify(fieldPrecision),
      );
    }
    assert.deepEqual(resolveSenderOptions({ fieldPrecision: { time: 1e-6 } }).fieldPrecision, {
      time: 1e-6,
    });
  });
});
