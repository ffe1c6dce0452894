import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCodes } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import {
  HEIGHT,
  RGB,
  ViewerColourKind,
  colourChoices,
  colourRefusal,
  makeViewerColour,
  rgbSourceOf,
  viewerFieldsOf,
} from '../../src/wire/viewer-colour.js';
import type { ViewerColour } from '../../src/wire/viewer-colour.js';
import {
  ViewerReassembler,
  decodeViewerControl,
  decodeViewerRequest,
  encodeViewerColour,
  encodeViewerControl,
  encodeViewerData,
  encodeViewerFrame,
  encodeViewerStart,
  pickViewerPoints,
  viewerFrameOfPick,
  viewerFrameWireBytes,
  viewerPayloadLayout,
  withColours,
} from '../../src/wire/viewer.js';
import { TWO_POINTS, hex, rejectsWith, roundTrip } from '../support/viewer-wire.js';

void test('viewer colour: a two-point frame coloured by intensity, byte by byte', () => {
  const fields = { intensity: new Float32Array([0.5, 2.5]) };
  const colour = makeViewerColour('intensity', fields, undefined, 2);
  assert.deepEqual(colour, {
    name: 'intensity',
    kind: ViewerColourKind.SCALAR_U16,
    min: 0.5,
    max: 2.5,
    bytes: hex('0000 ffff'),
  });
  const frame = withColours(encodeViewerFrame(TWO_POINTS, 7, 1.5, 10), [colour]);
  const start = encodeViewerStart(frame, 3);
  assert.deepEqual(
    start,
    hex(
      // 'PSVF', version 3, encoding 2, 69 header bytes (40 + 20 + 9)
      '50535646 03 02 4500' +
        '07000000 02000000 02000000 03000000' +
        // 72 payload bytes (56 + 6 x 2, then 2 x u16 at 68), 1 colour channel, capture time 1.5
        '48000000 01 000000 000000000000f83f' +
        // kind 2 (u16), name of 9 bytes, min 0.5, max 2.5, 'intensity'
        '02 09 0000 000000000000e03f 0000000000000440 696e74656e73697479',
    ),
  );
  const data = encodeViewerData(frame, 1024);
  assert.equal(data.length, 1);
  assert.deepEqual((data[0] as Uint8Array).subarray(0, 12), hex('50535644 07000000 00000000'));
  assert.deepEqual((data[0] as Uint8Array).subarray(12 + 68), hex('0000 ffff'));
  assert.equal(viewerFrameWireBytes(frame, 1024), 69 + 72 + 12);

  const reassembler = new ViewerReassembler(2);
  reassembler.push(start);
  const decoded = reassembler.push(data[0] as Uint8Array);
  assert.ok(decoded);
  assert.equal(decoded.payload.length, 68, 'payload is the q16 part');
  assert.equal(decoded.colours.length, 1);
  const [channel] = decoded.colours;
  assert.ok(channel);
  assert.deepEqual(
    { ...channel, values: [...channel.values] },
    { name: 'intensity', kind: 2, min: 0.5, max: 2.5, values: [0, 65535] },
  );
  assert.ok(channel.values instanceof Uint16Array);
  // A view of the received payload, not a copy: what the page hands WebGL.
  assert.equal(channel.values.buffer, decoded.payload.buffer);
});

void test('viewer colour: channels are aligned to 4 and survive every message split', () => {
  const points = new Float32Array([0, 0, 0, 1, 2, 3, 4, 5, 6]);
  const fields = {
    ring: new Uint8Array([3, 1, 2]),
    intensity: new Float32Array([10, 20, 15]),
    rgb: new Uint32Array([0xff0000, 0x00ff00, 0x0000ff]),
  };
  const colours = ['ring', 'intensity', RGB].map((name) =>
    makeViewerColour(name, fields, undefined, 3),
  ) as ViewerColour[];
  assert.deepEqual(
    colours.map((c) => c.kind),
    [1, 2, 3],
  );
  // q16 ends at 74: ring at 76 (3 bytes), intensity at 80 (6), rgb at 88 (9): 97 bytes.
  assert.deepEqual(viewerPayloadLayout(3, [1, 2, 3]), { offsets: [76, 80, 88], bytes: 97 });
  const frame = withColours(encodeViewerFrame(points, 1, undefined, 10), colours);
  for (let size = 13; size <= 120; size++) {
    const decoded = roundTrip(frame, size);
    const byName = Object.fromEntries(decoded.colours.map((c) => [c.name, c]));
    assert.deepEqual([...(byName.ring?.values ?? [])], [255, 0, 128]);
    assert.deepEqual([...(byName.intensity?.values ?? [])], [0, 65535, 32768]);
    assert.deepEqual([...(byName.rgb?.values ?? [])], [255, 0, 0, 0, 255, 0, 0, 0, 255]);
    assert.deepEqual(
      [byName.ring?.min, byName.ring?.max, byName.rgb?.min, byName.rgb?.max],
      [1, 3, 0, 255],
    );
  }
  // The padding is zeros on the wire.
  const [whole] = encodeViewerData(frame, 1024);
  assert.deepEqual((whole as Uint8Array).subarray(12 + 74, 12 + 76), new Uint8Array(2));
  assert.deepEqual((whole as Uint8Array).subarray(12 + 79, 12 + 80), new Uint8Array(1));
});

void test('viewer colour: channels follow decimation and the finite filter point for point', () => {
  const n = 1000;
  const points = new Float32Array(n * 3);
  const intensity = new Float32Array(n);
  const ring = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    points.set([i, (i * 7) % 13, i % 3 === 0 ? NaN : i / 10], i * 3);
    intensity[i] = i;
    ring[i] = i % 64;
  }
  const pick = pickViewerPoints(points, 300);
  // The same points as encodeViewerFrame keeps (one implementation).
  assert.deepEqual(
    viewerFrameOfPick(pick, 1, undefined).payload,
    encodeViewerFrame(points, 1, undefined, 300).payload,
  );
  assert.ok(pick.indices);
  const count = pick.positions.length / 3;
  assert.equal(pick.indices.length, count);
  for (let i = 0; i < count; i++) {
    const j = pick.indices[i] as number;
    assert.equal(pick.positions[i * 3], j, 'x is the source index');
    assert.notEqual(j % 3, 0, 'points with a NaN are left out');
  }
  const colour = makeViewerColour('intensity', { intensity, ring }, pick.indices, count);
  assert.ok(colour);
  const values = new Uint16Array(colour.bytes.buffer, colour.bytes.byteOffset, count);
  for (let i = 0; i < count; i++) {
    const source = pick.indices[i] as number;
    const expected = ((source - colour.min) / (colour.max - colour.min)) * 65535;
    assert.ok(Math.abs((values[i] as number) - expected) <= 0.5, `point ${i}`);
  }
  // All points kept and finite: no indices at all (the positions are the frame's own array).
  const plain = pickViewerPoints(new Float32Array([1, 2, 3, 4, 5, 6]), 10);
  assert.equal(plain.indices, undefined);
});

void test('viewer colour: scalars, NaN, 8-bit fields, RGB sources, refusals', () => {
  const f = { a: new Float32Array([NaN, 1, 3, Infinity, -Infinity, 2]) };
  const scalar = makeViewerColour('a', f, undefined, 6);
  assert.equal(scalar?.kind, ViewerColourKind.SCALAR_U16);
  assert.deepEqual([scalar?.min, scalar?.max], [1, 3]);
  assert.deepEqual([...new Uint16Array(scalar.bytes.buffer)], [0, 0, 65535, 65535, 0, 32768]);
  // One value: min = max, every point 0.
  const flat = makeViewerColour('a', { a: new Int16Array([-4, -4]) }, undefined, 2);
  assert.deepEqual(
    [flat?.kind, flat?.min, flat?.max, ...(flat?.bytes ?? [])],
    [2, -4, -4, 0, 0, 0, 0],
  );
  const eight = makeViewerColour('s', { s: new Int8Array([-128, 127]) }, undefined, 2);
  assert.deepEqual([eight?.kind, ...(eight?.bytes ?? [])], [1, 0, 255]);
  // Only NaN: a range of 0 to 0.
  const none = makeViewerColour('a', { a: new Float64Array([NaN]) }, undefined, 1);
  assert.deepEqual([none?.min, none?.max], [0, 0]);

  // RGB: packed u32, packed f32 bits (PCL), red/green/blue, r/g/b.
  const bits = new Uint32Array([0x102030]);
  const packedF32 = new Float32Array(bits.buffer);
  for (const [fields, what] of [
    [{ rgb: bits }, 'u32'],
    [{ rgb: packedF32 }, 'f32 bits'],
    [
      { red: new Uint8Array([0x10]), green: new Uint8Array([0x20]), blue: new Uint8Array([0x30]) },
      'red/green/blue',
    ],
    [{ r: new Uint8Array([0x10]), g: new Uint8Array([0x20]), b: new Uint8Array([0x30]) }, 'r/g/b'],
  ] as const) {
    const rgb = makeViewerColour(RGB, fields, undefined, 1);
    assert.deepEqual(rgb, { name: RGB, kind: 3, min: 0, max: 255, bytes: hex('102030') }, what);
  }
  assert.equal(
    rgbSourceOf([
      { name: 'red', type: 'u16' },
      { name: 'green', type: 'u8' },
    ]),
    undefined,
  );
  assert.equal(makeViewerColour(RGB, { red: new Uint8Array(1) }, undefined, 1), undefined);
  assert.equal(makeViewerColour('missing', f, undefined, 6), undefined);
  assert.equal(makeViewerColour(HEIGHT, f, undefined, 6), undefined);

  const fields = viewerFieldsOf({
    intensity: new Float32Array(1),
    rgb: new Uint32Array(1),
    ring: new Uint16Array(1),
  });
  assert.deepEqual(fields, [
    { name: 'intensity', type: 'f32' },
    { name: 'rgb', type: 'u32' },
    { name: 'ring', type: 'u16' },
  ]);
  // The packed rgb is a colour, not a scalar to colour by.
  assert.deepEqual(colourChoices(fields), [HEIGHT, RGB, 'intensity', 'ring']);
  assert.deepEqual(colourChoices([]), [HEIGHT]);
  assert.equal(colourRefusal('ring', fields), undefined);
  assert.equal(colourRefusal(HEIGHT, []), undefined);
  assert.match(
    colourRefusal('temperature', fields) ?? '',
    /no field "temperature".*intensity \(f32\)/,
  );
  assert.match(colourRefusal(RGB, []) ?? '', /cannot colour by rgb.*no fields/);
});

/** A START of a one-channel frame with `edit` applied. */
function colourStart(edit: (view: DataView, bytes: Uint8Array) => void): Uint8Array {
  const colour = makeViewerColour('ring', { ring: new Uint8Array([1, 2]) }, undefined, 2);
  const frame = withColours(encodeViewerFrame(TWO_POINTS, 7, 1.5, 10), [colour as ViewerColour]);
  const bytes = encodeViewerStart(frame, 0).slice();
  edit(new DataView(bytes.buffer), bytes);
  return bytes;
}

void test('viewer colour: the decoder rejects every malformed colour entry', () => {
  const fresh = (): ViewerReassembler => new ViewerReassembler(2);
  // The unedited START is accepted: 40 + 20 + 4 bytes, payload 68 + 2.
  assert.equal(colourStart(() => undefined).length, 64);
  assert.equal(fresh().push(colourStart(() => undefined)), undefined);
  const bad: [string, (v: DataView, b: Uint8Array) => void, ErrorCode][] = [
    ['kind 0', (v) => v.setUint8(40, 0), ErrorCodes.CHUNK_BAD_HEADER],
    ['kind 4', (v) => v.setUint8(40, 4), ErrorCodes.CHUNK_BAD_HEADER],
    ['reserved', (v) => v.setUint16(42, 1, true), ErrorCodes.CHUNK_BAD_HEADER],
    ['min NaN', (v) => v.setFloat64(44, NaN, true), ErrorCodes.CHUNK_BAD_HEADER],
    ['max Infinity', (v) => v.setFloat64(52, Infinity, true), ErrorCodes.CHUNK_BAD_HEADER],
    ['min > max', (v) => v.setFloat64(44, 9, true), ErrorCodes.CHUNK_BAD_HEADER],
    ['name 0ing', (_, b) => (b[60] = 0x30), ErrorCodes.CHUNK_BAD_HEADER],
    ['name non-ASCII', (_, b) => (b[61] = 0xe9), ErrorCodes.CHUNK_BAD_HEADER],
    ['name longer than the START', (v) => v.setUint8(41, 5), ErrorCodes.CHUNK_BAD_HEADER],
    ['name of 0 bytes, 4 left over', (v) => v.setUint8(41, 0), ErrorCodes.CHUNK_BAD_HEADER],
    ['two channels, one entry', (v) => v.setUint8(28, 2), ErrorCodes.CHUNK_BAD_HEADER],
    ['nine channels', (v) => v.setUint8(28, 9), ErrorCodes.CHUNK_BAD_HEADER],
    ['no channel, an entry', (v) => v.setUint8(28, 0), ErrorCodes.CHUNK_BAD_HEADER],
    ['u16 kind, u8 bytes', (v) => v.setUint8(40, 2), ErrorCodes.FRAME_LENGTH_MISMATCH],
    ['payload bytes', (v) => v.setUint32(24, 70 + 1, true), ErrorCodes.FRAME_LENGTH_MISMATCH],
  ];
  for (const [what, edit, code] of bad)
    rejectsWith(() => fresh().push(colourStart(edit)), code, what);
  rejectsWith(
    () => fresh().push(colourStart(() => undefined).subarray(0, 63)),
    ErrorCodes.CHUNK_TRUNCATED,
    'header bytes above the message',
  );
  const one = makeViewerColour(
    'ring',
    { ring: new Uint8Array([1, 2]) },
    undefined,
    2,
  ) as ViewerColour;
  const startOf = (colours: ViewerColour[]): Uint8Array =>
    encodeViewerStart(withColours(encodeViewerFrame(TWO_POINTS, 7, 1.5, 10), colours), 0);
  rejectsWith(() => fresh().push(startOf([one, one])), ErrorCodes.CHUNK_BAD_HEADER, 'a name twice');
  // 'x' names a position, not a field; 'height' is a choice, but a valid field name.
  rejectsWith(
    () => fresh().push(startOf([{ ...one, name: 'x' }])),
    ErrorCodes.CHUNK_BAD_HEADER,
    'named x',
  );
  rejectsWith(
    () => fresh().push(startOf([{ ...one, name: 'a'.repeat(65) }])),
    ErrorCodes.CHUNK_BAD_HEADER,
    'a name of 65 bytes',
  );
  assert.throws(
    () =>
      encodeViewerStart(
        withColours(
          encodeViewerFrame(TWO_POINTS, 7, 1.5, 10),
          Array(9).fill(one) as ViewerColour[],
        ),
        0,
      ),
    { code: ErrorCodes.INVALID_OPTION },
  );
});

void test('viewer colour: text messages (fields, error, colour requests)', () => {
  const fields = [
    { name: 'intensity', type: 'f32' },
    { name: 'ring', type: 'u16' },
  ] as const;
  const hello = {
    type: 'hello',
    viewer: 'v',
    session: 's',
    maxPoints: 10,
    maxFps: 10,
    fields,
  } as const;
  assert.deepEqual(decodeViewerControl(encodeViewerControl(hello)), hello);
  assert.equal(
    encodeViewerControl({ type: 'fields', fields }),
    '{"type":"fields","fields":[{"name":"intensity","type":"f32"},{"name":"ring","type":"u16"}]}',
  );
  assert.deepEqual(decodeViewerControl(encodeViewerControl({ type: 'fields', fields })), {
    type: 'fields',
    fields,
  });
  const error = { type: 'error', code: 'PS_ERR_FIELDS_INVALID', message: 'no field' } as const;
  assert.deepEqual(decodeViewerControl(encodeViewerControl(error)), error);
  // 32 fields of 64-character names fit a message.
  const many = Array.from({ length: 32 }, (_, i) => ({
    name: `f${String(i).padStart(63, '0')}`,
    type: 'f64' as const,
  }));
  assert.equal(
    decodeViewerControl(encodeViewerControl({ type: 'fields', fields: many }))?.type,
    'fields',
  );
  for (const text of [
    '{"type":"fields","fields":[{"name":"x","type":"f32"}]}',
    '{"type":"fields","fields":[{"name":"a","type":"f16"}]}',
    '{"type":"fields","fields":{}}',
    `{"type":"fields","fields":${JSON.stringify([...many, { name: 'z1', type: 'u8' }])}}`,
    '{"type":"hello","viewer":"v","session":"s","maxPoints":1,"maxFps":1,"fields":[1]}',
  ])
    assert.equal(decodeViewerControl(text), undefined, text);

  assert.equal(encodeViewerColour('intensity'), '{"type":"colour","field":"intensity"}');
  assert.deepEqual(decodeViewerRequest(encodeViewerColour('intensity')), {
    type: 'colour',
    field: 'intensity',
  });
  assert.deepEqual(decodeViewerRequest(encodeViewerColour(HEIGHT)), {
    type: 'colour',
    field: HEIGHT,
  });
  assert.deepEqual(decodeViewerRequest('{"type":"ack","seq":3}'), { type: 'ack', seq: 3 });
  // Any name up to 64 characters reaches the server, which answers one that names no field.
  assert.deepEqual(decodeViewerRequest('{"type":"colour","field":"x"}'), {
    type: 'colour',
    field: 'x',
  });
  for (const text of [
    '{"type":"colour","field":3}',
    `{"type":"colour","field":"${'a'.repeat(65)}"}`,
    '{"type":"colour"}',
  ])
    assert.equal(decodeViewerRequest(text), undefined, text);
});
