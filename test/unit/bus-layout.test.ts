import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BUS_CHUNK_BYTES,
  chunkHeaders,
  frameSubject,
  partRange,
  partsOf,
  readChunkHeaders,
  tenantOf,
} from '../../src/bus/layout.js';
import type { BusFrameMeta } from '../../src/bus/layout.js';
import { ErrorCodes, PointstreamError } from '../../src/errors.js';

const META: BusFrameMeta = {
  stream: 'cam.front',
  session: 'AbC_1-2',
  sessionStart: 1_764_699_990_000,
  node: 'node-a',
  seq: 4711,
  index: 4700,
  bytes: 12_000_128,
  crc32: 0xfedc_ba98,
  encoding: 'npy',
  points: 1_000_000,
  captureTime: 1_764_700_000_123.5,
  receivedAt: 1_764_700_000_200,
};

const headerOf = (pairs: [string, string][]) => (name: string) =>
  pairs.find(([key]) => key === name)?.[1];

void describe('bus layout', () => {
  void it('names subjects per tenant and stream, a dot in a stream name as ~', () => {
    assert.equal(frameSubject(tenantOf(undefined), 'cam.front'), 'ps.frames.public.cam~front');
    assert.equal(frameSubject(tenantOf('0a1b2c3d'), 'lidar'), 'ps.frames.t0a1b2c3d.lidar');
  });

  void it('cuts a payload in 1 MiB parts, the last one shorter', () => {
    assert.equal(partsOf(12_000_128), 12);
    assert.deepEqual(partRange(12_000_128, 11), [11 * BUS_CHUNK_BYTES, 12_000_128]);
    assert.equal(partsOf(0), 1);
    assert.deepEqual(partRange(0, 0), [0, 0]);
  });

  void it('writes exactly these headers, and reads them back', () => {
    const pairs = chunkHeaders(META, 3);
    assert.deepEqual(pairs, [
      ['Nats-Msg-Id', 'AbC_1-2:4711:3'],
      ['Ps-V', '1'],
      ['Ps-Stream', 'cam.front'],
      ['Ps-Session', 'AbC_1-2'],
      ['Ps-Session-Start', '1764699990000'],
      ['Ps-Node', 'node-a'],
      ['Ps-Seq', '4711'],
      ['Ps-Index', '4700'],
      ['Ps-Part', '3'],
      ['Ps-Parts', '12'],
      ['Ps-Chunk', '1048576'],
      ['Ps-Bytes', '12000128'],
      ['Ps-Crc32', '4275878552'],
      ['Ps-Encoding', 'npy'],
      ['Ps-Points', '1000000'],
      ['Ps-Received-At', '1764700000200'],
      ['Ps-Capture-Time', '1764700000123.5'],
    ]);
    assert.deepEqual(readChunkHeaders(headerOf(pairs), BUS_CHUNK_BYTES), {
      ...META,
      part: 3,
      parts: 12,
      chunkBytes: BUS_CHUNK_BYTES,
    });
  });

  void it('reads a cluster node session id, <node>.<random>', () => {
    const meta = { ...META, session: 'node-a.K-LQUDwEO9iBVM8zWvglIg' };
    const pairs = chunkHeaders(meta, 0);
    assert.equal(readChunkHeaders(headerOf(pairs), BUS_CHUNK_BYTES).session, meta.session);
  });

  void it('refuses malformed or hostile headers before allocating, with one code', () => {
    const good = chunkHeaders(META, 11);
    const lastBytes = 12_000_128 - 11 * BUS_CHUNK_BYTES;
    const cases: [string, [string, string | undefined][], number, RegExp][] = [
      ['no version', [['Ps-V', undefined]], lastBytes, /missing header Ps-V/],
      ['future version', [['Ps-V', '2']], lastBytes, /version 2/],
      ['bad stream', [['Ps-Stream', '../etc']], lastBytes, /Ps-Stream/],
      ['huge frame', [['Ps-Bytes', '99999999999']], lastBytes, /exceeds/],
      ['negative seq', [['Ps-Seq', '-1']], lastBytes, /malformed header Ps-Seq/],
      ['seq over 2^32', [['Ps-Seq', '4294967296']], lastBytes, /exceeds/],
      ['parts disagree', [['Ps-Parts', '13']], lastBytes, /cannot carry/],
      ['part out of range', [['Ps-Part', '12']], lastBytes, /exceeds 11/],
      ['body too long', [], lastBytes + 1, /must carry/],
      ['zero chunk', [['Ps-Chunk', '0']], lastBytes, /is 0/],
      ['unknown encoding', [['Ps-Encoding', 'zip']], lastBytes, /unknown encoding/],
      ['too many points', [['Ps-Points', '99999999']], lastBytes, /exceeds/],
      ['bad time', [['Ps-Received-At', 'soon']], lastBytes, /Ps-Received-At/],
      ['msg id of another chunk', [['Nats-Msg-Id', 'x:1:2']], lastBytes, /Nats-Msg-Id/],
      ['leading zero', [['Ps-Seq', '04711']], lastBytes, /malformed/],
      ['session of two dots', [['Ps-Session', 'a.b.c']], lastBytes, /Ps-Session/],
      ['session after an empty node', [['Ps-Session', '.abc']], lastBytes, /Ps-Session/],
    ];
    for (const [name, changes, body, message] of cases) {
      const pairs = new Map<string, string | undefined>(good);
      for (const [key, value] of changes) pairs.set(key, value);
      assert.throws(
        () => readChunkHeaders((key) => pairs.get(key), body),
        (error: unknown) =>
          error instanceof PointstreamError &&
          error.code === ErrorCodes.BUS_MESSAGE_INVALID &&
          message.test(error.message),
        name,
      );
    }
  });
});
