/**
 * Per-point fields on the bus (issue 18): the `Ps-Fields` header (base64 of the START chunk's
 * field table), its caps and checks before anything is allocated, the payload a frame with fields
 * is published as, and reassembly refusing a part whose table disagrees with its frame's.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import {
  BUS_CHUNK_BYTES,
  BusHeader,
  MAX_FIELDS_HEADER_CHARS,
  chunkHeaders,
  fieldsHeaderOf,
  headerBlockBytes,
  partRange,
  partsOf,
  readChunkHeaders,
  readFieldsHeader,
} from '../../src/bus/layout.js';
import type { BusFrameMeta } from '../../src/bus/layout.js';
import { busPayloadOf, chunkBytesOf } from '../../src/bus/publisher.js';
import type { BusFrame } from '../../src/bus/publisher.js';
import { BusReassembly } from '../../src/bus/reassembly.js';
import { BUS_HEADER_ALLOWANCE, BUS_MAX_MESSAGE_BYTES } from '../../src/bus/stream-config.js';
import { ErrorCodes, PointstreamError } from '../../src/errors.js';
import {
  FIELD_LIMITS,
  FieldCodec,
  MAX_FIELD_TABLE_BYTES,
  encodeFieldTable,
} from '../../src/wire/fields.js';
import type { FieldTable } from '../../src/wire/fields.js';

/** docs/protocol.md's example: 2 points, `.npy`, intensity f32 and ring u16; 164 payload bytes. */
const TABLE: FieldTable = {
  pointsBytes: 152,
  columns: [
    { name: 'intensity', type: 'f32', codec: FieldCodec.RAW, param: 0, byteLength: 8 },
    { name: 'ring', type: 'u16', codec: FieldCodec.RAW, param: 0, byteLength: 4 },
  ],
};
const TABLE_HEX =
  '98000000020000000100090008000000000000000000000069' +
  '6e74656e73697479030004000400000000000000000000007269' +
  '6e67';

const META: BusFrameMeta = {
  stream: 'cam.front',
  session: 'Qm3vV2x7T1aK9pLd0sEw8g',
  sessionStart: 1_796_284_800_000,
  node: 'node-a',
  seq: 42,
  index: 40,
  bytes: 164,
  crc32: 1,
  encoding: 'npy',
  points: 2,
  captureTime: 1_796_284_810_250.5,
  receivedAt: 1_796_284_810_301,
  fieldTable: TABLE,
};

const headerOf = (pairs: readonly (readonly [string, string | undefined])[]) => (name: string) =>
  pairs.find(([key]) => key === name)?.[1];

function busInvalid(message: RegExp, causeCode?: string) {
  return (error: unknown): boolean =>
    error instanceof PointstreamError &&
    error.code === ErrorCodes.BUS_MESSAGE_INVALID &&
    message.test(error.message) &&
    (causeCode === undefined || (error.cause as PointstreamError | undefined)?.code === causeCode);
}

void describe('bus: Ps-Fields', { timeout: 10_000 }, () => {
  void it('carries the field table, byte for byte the START chunk’s, in base64', () => {
    assert.equal(Buffer.from(encodeFieldTable(TABLE, 2)).toString('hex'), TABLE_HEX);
    const value = fieldsHeaderOf(TABLE, 2);
    assert.equal(value, Buffer.from(TABLE_HEX, 'hex').toString('base64'));
    assert.equal(value, 'mAAAAAIAAAABAAkACAAAAAAAAAAAAAAAaW50ZW5zaXR5AwAEAAQAAAAAAAAAAAAAAHJpbmc=');
    const pairs = chunkHeaders(META, 0);
    assert.deepEqual(pairs.at(-1), [BusHeader.FIELDS, value]);
    const chunk = readChunkHeaders(headerOf(pairs), 164);
    assert.deepEqual(chunk.fieldTable, TABLE);
    assert.deepEqual(chunk, { ...META, part: 0, parts: 1, chunkBytes: BUS_CHUNK_BYTES });
  });

  void it('writes no Ps-Fields for a frame without fields, and reads none', () => {
    const { fieldTable: _table, ...plain } = META;
    void _table;
    const pairs = chunkHeaders({ ...plain, bytes: 152 }, 0);
    assert.equal(headerOf(pairs)(BusHeader.FIELDS), undefined);
    assert.equal('fieldTable' in readChunkHeaders(headerOf(pairs), 152), false);
  });

  void it('refuses a malformed, oversized or inconsistent Ps-Fields before decoding, with stable codes', () => {
    const good = fieldsHeaderOf(TABLE, 2);
    // A duplicated name, spelled by hand (encodeFieldTable refuses to write one): ring, ring.
    const ring = TABLE.columns[1] as FieldTable['columns'][number];
    const twice = Buffer.from(
      encodeFieldTable({ pointsBytes: 152, columns: [ring, { ...ring, name: 'rin2' }] }, 2),
    );
    twice.set(Buffer.from('ring'), twice.length - 4);
    const cases: [string, string, number, number, RegExp, string?][] = [
      ['too long', 'A'.repeat(MAX_FIELDS_HEADER_CHARS + 4), 2, 164, /exceeds 3424/],
      ['not base64', '@@@@', 2, 164, /not base64/],
      ['base64 with a space', `${good.slice(0, 8)} ${good.slice(9)}`, 2, 164, /not base64/],
      ['unpadded', good.replace(/=+$/, ''), 2, 164, /not base64/],
      ['url-safe alphabet', `-_-_${good}`, 2, 164, /not base64/],
      ['non-canonical bits', good.slice(0, -2) + 'Z=', 2, 164, /canonical/],
      [
        'table too short',
        Buffer.from([1, 2, 3]).toString('base64'),
        2,
        164,
        /Ps-Fields.*shorter/,
        ErrorCodes.FIELDS_INVALID,
      ],
      ['payload of another size', good, 2, 165, /Ps-Fields.*165/, ErrorCodes.FIELDS_INVALID],
      ['raw sizes of another point count', good, 3, 164, /Ps-Fields/, ErrorCodes.FIELDS_INVALID],
      [
        'duplicated field',
        twice.toString('base64'),
        2,
        164,
        /Ps-Fields.*twice/,
        ErrorCodes.FIELDS_INVALID,
      ],
    ];
    for (const [name, value, points, bytes, message, cause] of cases)
      assert.throws(() => readFieldsHeader(value, points, bytes), busInvalid(message, cause), name);
  });

  void it('refuses a chunk whose Ps-Fields is bad, through readChunkHeaders', () => {
    const pairs = chunkHeaders(META, 0).map(([k, v]): [string, string] =>
      k === BusHeader.FIELDS ? [k, '!!!!'] : [k, v],
    );
    assert.throws(() => readChunkHeaders(headerOf(pairs), 164), busInvalid(/Ps-Fields/));
    // Coded columns of 1 byte each that would decode to 16M x (8 + 8 + 8 + 8 + 4) bytes.
    const points = 16 * 1024 * 1024;
    const column = (name: string, type: 'f64' | 'u32') => ({
      name,
      type,
      codec: type === 'f64' ? FieldCodec.QUANT_RICE : FieldCodec.DELTA_RICE,
      param: type === 'f64' ? 0.5 : 0,
      byteLength: 1,
    });
    const bomb: BusFrameMeta = {
      ...META,
      encoding: 'qrice',
      points,
      bytes: 1000 + 8 * 4 + 1,
      fieldTable: {
        pointsBytes: 1000,
        columns: [
          column('a', 'f64'),
          column('b', 'f64'),
          column('c', 'f64'),
          column('d', 'f64'),
          column('e', 'u32'),
        ],
      },
    };
    assert.throws(
      () => readChunkHeaders(headerOf(chunkHeaders(bomb, 0)), bomb.bytes),
      busInvalid(/take 603979776 bytes decoded, over 67108864/),
    );
    // Within the cap: 4 f64 fields of 2M points (64 MiB).
    const fits: BusFrameMeta = {
      ...bomb,
      points: 2 * 1024 * 1024,
      fieldTable: {
        pointsBytes: 1000,
        columns: [column('a', 'f64'), column('b', 'f64'), column('c', 'f64'), column('d', 'f64')],
      },
    };
    const fitsBytes = 1000 + 8 * 3 + 1;
    assert.doesNotThrow(() =>
      readChunkHeaders(headerOf(chunkHeaders({ ...fits, bytes: fitsBytes }, 0)), fitsBytes),
    );
  });

  void it('keeps every message within max_msg_size, even with the largest table and names', () => {
    const name = (i: number): string => `f${String(i).padStart(2, '0')}${'_'.repeat(61)}`;
    const points = 16 * 1024 * 1024;
    const columns = Array.from({ length: FIELD_LIMITS.maxFields }, (_, i) => ({
      name: name(i),
      type: 'f64' as const,
      codec: FieldCodec.QUANT_RICE,
      param: 0.001,
      byteLength: 1,
    }));
    const table: FieldTable = { pointsBytes: 0xffff_fff0, columns };
    assert.equal(encodeFieldTable(table, points).length, MAX_FIELD_TABLE_BYTES);
    const value = fieldsHeaderOf(table, points);
    assert.equal(value.length, MAX_FIELDS_HEADER_CHARS);
    const time = 1_796_284_810_250 + 0.123456;
    const meta: BusFrameMeta = {
      ...META,
      stream: 's'.repeat(64),
      session: `${'n'.repeat(64)}.${'r'.repeat(64)}`,
      node: 'n'.repeat(64),
      seq: 0xffff_ffff,
      index: Number.MAX_SAFE_INTEGER,
      bytes: 64 * 1024 * 1024,
      crc32: 0xffff_ffff,
      encoding: 'qrice',
      points,
      captureTime: -time,
      receivedAt: time,
      sessionStart: time,
      fieldTable: table,
    };
    const chunk = chunkBytesOf(meta);
    assert.equal(chunk, BUS_CHUNK_BYTES - BUS_HEADER_ALLOWANCE, 'smaller parts');
    const parts = partsOf(meta.bytes, chunk);
    for (const part of [0, parts - 1]) {
      const message = headerBlockBytes(chunkHeaders(meta, part, chunk)) + chunk;
      assert.ok(message <= BUS_MAX_MESSAGE_BYTES, `${message} bytes`);
    }
    // A LiDAR's fields on the same long names keep 1 MiB parts.
    const lidar = {
      ...meta,
      fieldTable: {
        pointsBytes: 0xffff_fff0,
        columns: [
          {
            name: 'intensity',
            type: 'f32',
            codec: FieldCodec.QUANT_RICE,
            param: 0.01,
            byteLength: 1,
          },
          { name: 'ring', type: 'u16', codec: FieldCodec.DELTA_RICE, param: 0, byteLength: 1 },
          { name: 'time', type: 'f64', codec: FieldCodec.QUANT_RICE, param: 1e-6, byteLength: 1 },
        ],
      } satisfies FieldTable,
    };
    assert.equal(chunkBytesOf(lidar), BUS_CHUNK_BYTES);
    assert.ok(headerBlockBytes(chunkHeaders(lidar, parts - 1)) <= BUS_HEADER_ALLOWANCE);
  });

  void it('publishes the whole payload of a frame with fields, its table beside it', () => {
    const payload = new Uint8Array(164).map((_, i) => i);
    const frame: BusFrame = {
      seq: 42,
      pointCount: 2,
      points: new Float32Array(6),
      encoding: 'raw',
      npy: payload.subarray(0, 152),
      encoded: undefined,
      crc32: 77,
      captureTime: undefined,
      receivedAt: 1,
      fieldTable: TABLE,
      payload,
    };
    const bus = busPayloadOf(frame);
    assert.equal(bus.bytes, payload, 'the payload itself, not a copy');
    assert.deepEqual([bus.crc32, bus.encoding, bus.fieldTable], [77, 'npy', TABLE]);
    const q16 = busPayloadOf({ ...frame, encoding: 'q16', npy: undefined, crc32: undefined });
    assert.deepEqual([q16.crc32, q16.encoding], [crc32(payload), 'q16']);
    assert.throws(() => busPayloadOf({ ...frame, payload: undefined }), /no payload/);
  });

  void it('drops a part whose table disagrees with its frame’s first part', () => {
    const CHUNK = 100;
    const payload = new Uint8Array(164).map((_, i) => i * 3);
    const meta = { ...META, crc32: crc32(payload) };
    const other: FieldTable = {
      ...TABLE,
      columns: [
        { name: 'reflectivity', type: 'f32', codec: FieldCodec.RAW, param: 0, byteLength: 8 },
        { name: 'ring', type: 'u16', codec: FieldCodec.RAW, param: 0, byteLength: 4 },
      ],
    };
    const partOf = (part: number, table: FieldTable) => {
      const pairs = chunkHeaders({ ...meta, fieldTable: table }, part, CHUNK);
      const [start, end] = partRange(164, part, CHUNK);
      const body = payload.subarray(start, end);
      return { chunk: readChunkHeaders(headerOf(pairs), body.length), body };
    };
    assert.equal(partsOf(164, CHUNK), 2);
    const r = new BusReassembly<number>({ checksum: crc32 });
    const a = partOf(0, TABLE);
    assert.equal(r.push(a.chunk, a.body, 0, 0).frame, undefined);
    const wrong = partOf(1, other);
    assert.deepEqual(r.push(wrong.chunk, wrong.body, 1, 1).release, [1]);
    assert.equal(r.stats().messagesDropped, 1);
    const right = partOf(1, TABLE);
    const done = r.push(right.chunk, right.body, 2, 2).frame;
    assert.ok(done);
    assert.deepEqual(done.meta.fieldTable, TABLE);
    assert.deepEqual(done.payload, payload);
  });
});
