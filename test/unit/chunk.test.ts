/**
 * The pointstream/1 chunk headers (src/wire/chunk.ts) byte for byte: writers, reader, field limits.
 * Pure: no sockets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  ChunkType,
  DATA_HEADER_BYTES,
  DType,
  Encoding,
  PROTOCOL_V1,
  START_HEADER_BYTES,
  WIRE_VERSION,
  readChunkHeader,
  writeDataHeader,
  writeStartHeader,
} from '../../src/wire/index.js';
import type { FrameMeta } from '../../src/wire/index.js';
import { T, hex, hexLines } from './wire-helpers.js';

void describe('chunk headers', () => {
  const META: FrameMeta = {
    seq: 0x11223344,
    payloadBytes: 0x00012345,
    pointCount: 0x0000abcd,
    crc32: 0xcbf43926,
    captureTime: 1_732_579_200_123.25,
    chunkCount: 0x00000102,
    dtype: DType.FLOAT32,
    components: 3,
    encoding: Encoding.NPY,
  };
  const START_BYTES = hexLines(`
    01 01 28 00              version 1, type START, header length 40
    44 33 22 11              seq 0x11223344
    00 00 00 00              chunk index 0
    45 23 01 00              payloadBytes 0x12345
    cd ab 00 00              pointCount 0xabcd
    26 39 f4 cb              crc32 0xcbf43926
    01 03 01 00              dtype float32, 3 components, encoding npy, flags 0
    00 b4 c7 48 5c 36 79 42  captureTime 1732579200123.25 (f64, struct.pack('<d'))
    02 01 00 00              chunkCount 0x102
  `);
  const DATA_BYTES = hex('01 02 0c 00  44 33 22 11  0d 0c 0b 0a');

  void it('the literal expectations are what they claim to be', T, () => {
    assert.equal(START_BYTES.length, 40);
    assert.equal(START_BYTES.toString('hex', 0, 8), '0101280044332211');
    assert.equal(START_BYTES.readDoubleLE(28), 1_732_579_200_123.25);
    assert.equal(START_HEADER_BYTES, 40);
    assert.equal(DATA_HEADER_BYTES, 12);
    assert.equal(WIRE_VERSION, 1);
    assert.equal(PROTOCOL_V1, 'pointstream/1');
    assert.deepEqual(ChunkType, { START: 1, DATA: 2 });
  });

  void it('writeStartHeader writes the documented little-endian layout', T, () => {
    const target = new Uint8Array(64).fill(0xee);
    assert.equal(writeStartHeader(target, META), 40);
    assert.deepEqual(Buffer.from(target.subarray(0, 40)), START_BYTES);
    assert.ok(
      target.subarray(40).every((byte) => byte === 0xee),
      'nothing written past the header',
    );
  });

  void it('writeDataHeader writes the documented little-endian layout', T, () => {
    const target = new Uint8Array(20).fill(0xee);
    assert.equal(writeDataHeader(target, 0x11223344, 0x0a0b0c0d), 12);
    assert.deepEqual(Buffer.from(target.subarray(0, 12)), DATA_BYTES);
    assert.ok(
      target.subarray(12).every((byte) => byte === 0xee),
      'nothing written past the header',
    );
  });

  void it('writes at the target view, not at the start of its buffer', T, () => {
    const backing = new Uint8Array(100).fill(0xee);
    writeStartHeader(backing.subarray(7, 47), META);
    assert.deepEqual(Buffer.from(backing.subarray(7, 47)), START_BYTES);
    assert.ok(backing.subarray(0, 7).every((byte) => byte === 0xee));
    writeDataHeader(backing.subarray(51), 0x11223344, 0x0a0b0c0d);
    assert.deepEqual(Buffer.from(backing.subarray(51, 63)), DATA_BYTES);
  });

  void it('readChunkHeader reads both layouts back', T, () => {
    const start = readChunkHeader(new Uint8Array(START_BYTES));
    assert.deepEqual(start, {
      type: ChunkType.START,
      seq: 0x11223344,
      chunkIndex: 0,
      headerBytes: 40,
      meta: META,
    });
    const data = readChunkHeader(new Uint8Array(DATA_BYTES));
    assert.deepEqual(data, {
      type: ChunkType.DATA,
      seq: 0x11223344,
      chunkIndex: 0x0a0b0c0d,
      headerBytes: 12,
      meta: undefined,
    });
    // At an odd byteOffset, with payload after the header.
    const backing = new Uint8Array(1 + 40 + 5);
    backing.set(START_BYTES, 1);
    assert.deepEqual(readChunkHeader(backing.subarray(1)).meta, META);
  });

  void it('extreme field values round-trip', T, () => {
    const meta: FrameMeta = {
      seq: 0xffffffff,
      payloadBytes: 0xffffffff,
      pointCount: 0xffffffff,
      crc32: 0xffffffff,
      captureTime: -0,
      chunkCount: 0xffffffff,
      dtype: 255,
      components: 255,
      encoding: 255,
    };
    const target = new Uint8Array(40);
    writeStartHeader(target, meta);
    assert.deepEqual(readChunkHeader(target).meta, meta);
    assert.ok(Object.is(readChunkHeader(target).meta?.captureTime, -0));
    writeDataHeader(target, 0xffffffff, 0xffffffff);
    assert.deepEqual(readChunkHeader(target.subarray(0, 12)), {
      type: ChunkType.DATA,
      seq: 0xffffffff,
      chunkIndex: 0xffffffff,
      headerBytes: 12,
      meta: undefined,
    });
  });

  void it('the writers refuse values that do not fit', T, () => {
    const target = new Uint8Array(64);
    for (const field of ['seq', 'payloadBytes', 'pointCount', 'crc32', 'chunkCount'] as const) {
      for (const bad of [-1, 2 ** 32, 1.5, NaN]) {
        assert.throws(
          () => writeStartHeader(target, { ...META, [field]: bad }),
          RangeError,
          `${field}=${bad}`,
        );
      }
    }
    assert.throws(() => writeStartHeader(target, { ...META, chunkCount: 0 }), RangeError);
    assert.throws(() => writeStartHeader(new Uint8Array(39), META), RangeError);
    assert.throws(() => writeDataHeader(target, 1, 0), RangeError);
    assert.throws(() => writeDataHeader(target, -1, 1), RangeError);
    assert.throws(() => writeDataHeader(target, 1, 2 ** 32), RangeError);
    assert.throws(() => writeDataHeader(new Uint8Array(11), 1, 1), RangeError);
  });
});
