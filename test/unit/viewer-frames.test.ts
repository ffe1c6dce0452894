import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseColoursHeader, parseStreamFieldsHeader } from '../../src/cluster/previews.js';
import type { ReceivedFrame } from '../../src/server/types.js';
import {
  FeedFields,
  coloursOf,
  dataKey,
  frameFor,
  prepareLocalFrame,
  prepareRemoteFrame,
} from '../../src/server/viewer-frames.js';
import { encodePoints } from '../../src/wire/encodings/index.js';
import type { PointFields } from '../../src/wire/fields.js';
import { withColours } from '../../src/wire/viewer.js';

/** A ReceivedFrame as the ingest gives the hub (with fields, as after issue 18's wire change). */
function frameOf(points: Float32Array, fields: PointFields, q16 = false): ReceivedFrame {
  const n = points.length / 3;
  return {
    sessionId: 's',
    stream: 'lidar',
    seq: 4,
    pointCount: n,
    points,
    form: 'chunked',
    encoding: q16 ? 'q16' : 'npy',
    npy: undefined,
    encoded: q16 ? encodePoints(points, 'q16').bytes : undefined,
    byteLength: n * 12,
    captureTime: 5,
    receivedAt: 6,
    crc32: 0,
    assemblyMs: 0,
    retain: () => () => undefined,
    fields,
  } as ReceivedFrame;
}

void test('viewer frames: each colour made once per frame, whoever chose it; shared positions', () => {
  const n = 10;
  const points = new Float32Array(n * 3).map((_, i) => i);
  const fields = { intensity: new Float32Array(n).map((_, i) => i), ring: new Uint16Array(n) };
  const viewers = [
    { colour: 'intensity' },
    { colour: 'height' },
    { colour: 'intensity' },
    { colour: 'ring' },
  ];
  // Height needs no channel; a colour wanted by another node is made too, once.
  const colours = coloursOf(viewers, ['ring', 'rgb']);
  assert.deepEqual(colours, ['intensity', 'ring', 'rgb']);
  const prepared = prepareLocalFrame(frameOf(points, fields), 4, colours);
  // rgb: the frame has no colour fields, so no channel.
  assert.deepEqual([...prepared.colours.keys()], ['intensity', 'ring']);
  assert.equal(prepared.frame.pointCount, 4);
  assert.equal(prepared.frame.sourcePointCount, 10);
  // Decimated as the points: sources 0, 2, 5, 7 (floor(i x 10 / 4)).
  const intensity = prepared.colours.get('intensity');
  assert.deepEqual([intensity?.min, intensity?.max], [0, 7]);
  assert.deepEqual(
    [...new Uint16Array((intensity?.bytes ?? new Uint8Array()).slice().buffer)],
    [0, 18724, 46811, 65535],
  );
  const a = frameFor(prepared, 'intensity');
  const b = frameFor(prepared, 'intensity');
  assert.equal(a.payload, prepared.frame.payload, 'the positions are shared');
  assert.deepEqual(
    a.colours?.map((c) => c.name),
    ['intensity'],
  );
  assert.equal(a.colours?.[0], b.colours?.[0], 'the channel is shared');
  assert.equal(frameFor(prepared, 'height'), prepared.frame);
  assert.equal(frameFor(prepared, 'temperature'), prepared.frame, 'missing: height');
  assert.equal(dataKey(prepared, 'intensity', 1000), '1000:intensity');
  assert.equal(dataKey(prepared, 'temperature', 1000), '1000:height');

  // A q16 frame within the budget: forwarded as it arrived, channels of every point.
  const q16 = prepareLocalFrame(frameOf(points, fields, true), 100, ['intensity']);
  assert.deepEqual(q16.frame.payload, encodePoints(points, 'q16').bytes);
  assert.equal(q16.colours.get('intensity')?.bytes.length, 2 * n);
  // A frame without fields (a sender that sends none): no channels.
  const plain = prepareLocalFrame(frameOf(points, {}), 100, ['intensity']);
  assert.equal(plain.colours.size, 0);

  // A preview from another node: its channels by name, positions without them.
  const remote = prepareRemoteFrame(
    's',
    withColours(prepared.frame, [...prepared.colours.values()]),
  );
  assert.deepEqual([...remote.colours.keys()], ['intensity', 'ring']);
  assert.deepEqual(remote.frame.colours, []);
});

void test('viewer frames: a feed tells its fields when they change only', () => {
  const feeds = new FeedFields();
  assert.equal(feeds.get('a'), undefined);
  assert.deepEqual(feeds.update('a', { intensity: new Float32Array(1) }), [
    { name: 'intensity', type: 'f32' },
  ]);
  assert.equal(feeds.update('a', { intensity: new Float32Array(3) }), undefined, 'same fields');
  assert.deepEqual(feeds.update('a', { intensity: new Float64Array(1) }), [
    { name: 'intensity', type: 'f64' },
  ]);
  assert.deepEqual(feeds.update('a', {}), []);
  feeds.delete('a');
  assert.equal(feeds.get('a'), undefined);
});

void test('previews: want colours and stream fields headers are checked as client input', () => {
  assert.deepEqual(parseColoursHeader(''), []);
  assert.deepEqual(parseColoursHeader('intensity,rgb'), ['intensity', 'rgb']);
  for (const bad of ['height', 'x', 'a,,b', 'a b', Array(9).fill('a').join(','), 'é'])
    assert.equal(parseColoursHeader(bad), undefined, bad);
  assert.deepEqual(parseStreamFieldsHeader(''), []);
  assert.deepEqual(parseStreamFieldsHeader('intensity:f32,ring:u16'), [
    { name: 'intensity', type: 'f32' },
    { name: 'ring', type: 'u16' },
  ]);
  for (const bad of ['intensity', 'intensity:f16', 'a:f32,a:u8', 'x:f32', 'a:f32:1', ','])
    assert.equal(parseStreamFieldsHeader(bad), undefined, bad);
  const many = Array.from({ length: 33 }, (_, i) => `f${i}:u8`).join(',');
  assert.equal(parseStreamFieldsHeader(many), undefined);
});
