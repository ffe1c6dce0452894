/**
 * Point encodings (src/wire/encodings): round trips of every encoding on edge cases with the
 * error bound checked on every coordinate, NaN/Inf rejected before encoding, the exact bytes of
 * the q16 header, and corrupted, truncated and lying payloads rejected with stable codes
 * (including a fast-check property with fixed seeds). Pure: no sockets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { ErrorCodes, PointstreamError } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import { LidarSceneSource } from '../../src/sources/lidar.js';
import { RandomPointSource } from '../../src/sources/random.js';
import {
  POINT_ENCODING_NAMES,
  PointEncodingId,
  decodePoints,
  encodePoints,
  encodingsReady,
  pointEncodingIdOf,
} from '../../src/wire/encodings/index.js';
import type { EncodedPoints, PointEncodingName } from '../../src/wire/encodings/index.js';
import { QRICE_HEADER_BYTES, pickStride } from '../../src/wire/encodings/qrice.js';
import { QUANT_HEADER_BYTES } from '../../src/wire/encodings/quantize.js';

const TIMEOUT = { timeout: 60_000 };
const FUZZ_SEED = Number(process.env.PS_FUZZ_SEED ?? 0);
const FUZZ_RUNS = Number(process.env.PS_FUZZ_RUNS ?? 1);

function rejectsWith(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(
      error instanceof PointstreamError,
      `expected a PointstreamError, got ${String(error)}`,
    );
    assert.equal(error.code, code, error.message);
    return true;
  });
}

/** Asserts the decoded frame has the right length and every coordinate is within the bound. */
function assertWithinBound(original: Float32Array, encoded: EncodedPoints): Float32Array {
  const decoded = decodePoints(encoded.bytes, encoded.encoding, encoded.pointCount);
  assert.ok(decoded instanceof Float32Array);
  assert.equal(decoded.length, original.length);
  for (let i = 0; i < original.length; i++) {
    const error = Math.abs((decoded[i] as number) - (original[i] as number));
    if (!(error <= encoded.maxError)) {
      assert.fail(
        `coordinate ${i}: ${original[i]} decoded as ${decoded[i]}, error ${error} > bound ${encoded.maxError}`,
      );
    }
  }
  return decoded;
}

const edgeCases: Record<string, Float32Array> = {
  empty: new Float32Array(0),
  'one point': Float32Array.of(1.5, -2.25, 3),
  'all points equal (zero extent)': new Float32Array(300).fill(7.125),
  'zero extent on one axis': Float32Array.from({ length: 300 }, (_, i) => (i % 3 === 2 ? -4 : i)),
  'huge extents (±1e30)': Float32Array.of(
    -1e30,
    1e30,
    -1e30,
    1e30,
    -1e30,
    1e30,
    0,
    1,
    -1,
    5e29,
    -3e-30,
    1e-30,
  ),
  'float32 extremes': Float32Array.of(
    -3.4028234663852886e38,
    3.4028234663852886e38,
    0,
    3.4028234663852886e38,
    -3.4028234663852886e38,
    1e-45,
  ),
  'negative coordinates': Float32Array.from({ length: 3000 }, (_, i) => -1000 - i * 0.37),
  'tiny values': Float32Array.from({ length: 300 }, (_, i) => (i - 150) * 1e-9),
  'lidar scene (10k points)': new LidarSceneSource(10_000).next().slice(),
  'random points (10k)': new RandomPointSource(10_000).next().slice(),
};

void describe('point encodings: round trips', TIMEOUT, () => {
  void it('ids and names are stable', () => {
    assert.deepEqual(PointEncodingId, { RAW_NPY: 1, Q16: 2, QRICE: 3 });
    assert.deepEqual(POINT_ENCODING_NAMES, ['raw', 'q16', 'qrice']);
    assert.deepEqual(pointEncodingIdOf, { raw: 1, q16: 2, qrice: 3 });
  });

  for (const name of POINT_ENCODING_NAMES) {
    for (const [label, points] of Object.entries(edgeCases)) {
      void it(`${name}: ${label}`, TIMEOUT, async () => {
        await encodingsReady();
        const copy = points.slice();
        const encoded = encodePoints(points, name);
        assert.deepEqual(points, copy, 'input not modified');
        assert.equal(encoded.encoding, pointEncodingIdOf[name]);
        assert.equal(encoded.pointCount, points.length / 3);
        assert.ok(encoded.maxError >= 0 && Number.isFinite(encoded.maxError));
        const decoded = assertWithinBound(points, encoded);
        if (name === 'raw') assert.deepEqual(decoded, points);
        for (const v of decoded) assert.ok(Number.isFinite(v));
      });
    }
  }

  void it('all points equal decode exactly (the offset is the value)', () => {
    const points = new Float32Array(99).fill(-12.345);
    for (const name of POINT_ENCODING_NAMES) {
      const encoded = encodePoints(points, name);
      assert.deepEqual(decodePoints(encoded.bytes, encoded.encoding, 33), points, name);
    }
  });

  void it('q16 error bound is half a step of the widest axis (plus float32 rounding)', () => {
    const points = new LidarSceneSource(10_000).next().slice();
    const { maxError } = encodePoints(points, 'q16');
    // The warehouse is 60 m long: a step of 60/65535 m, so about 0.46 mm.
    assert.ok(maxError > 0.00045 && maxError < 0.00047, String(maxError));
  });

  for (const precision of [0.0001, 0.0005, 0.001, 0.002, 0.01, 0.5]) {
    void it(
      `qrice keeps every error within the requested precision (${precision} m)`,
      TIMEOUT,
      () => {
        const points = new LidarSceneSource(20_000).next().slice();
        const encoded = encodePoints(points, 'qrice', { precision });
        assert.ok(encoded.maxError <= precision, `${encoded.maxError} > ${precision}`);
        assert.ok(encoded.maxError > precision * 0.9, 'the step is not needlessly fine');
        assertWithinBound(points, encoded);
      },
    );
  }

  void it('qrice reports a larger bound when float32 cannot resolve the precision', () => {
    const points = Float32Array.of(1e30, 2e30, 3e30, 1.5e30, 2.5e30, 3.5e30);
    const encoded = encodePoints(points, 'qrice', { precision: 0.001 });
    assert.ok(encoded.maxError > 1e22, String(encoded.maxError));
    assertWithinBound(points, encoded);
  });

  void it('qrice finds the LiDAR column (64 beams) as its predictor stride, and compresses', () => {
    const points = new LidarSceneSource(100_000).next().slice();
    const encoded = encodePoints(points, 'qrice', { precision: 0.001 });
    const view = new DataView(encoded.bytes.buffer, encoded.bytes.byteOffset);
    assert.equal(view.getUint16(6, true), 64);
    assert.ok(
      encoded.bytes.length / 100_000 < 3,
      `${encoded.bytes.length / 100_000} bytes per point`,
    );
  });

  void it('pickStride: no prediction for a single point, the period of periodic data', () => {
    assert.equal(pickStride(new Int32Array(3), 1), 0);
    const n = 4096;
    const q = new Int32Array(n * 3);
    for (let i = 0; i < n; i++)
      for (let a = 0; a < 3; a++) q[a * n + i] = ((i % 37) * 1000 + a) | 0;
    assert.equal(pickStride(q, n), 37);
  });

  void it('decodes payloads at any byte offset (unaligned views)', () => {
    const points = new LidarSceneSource(1000).next().slice();
    for (const name of POINT_ENCODING_NAMES) {
      const encoded = encodePoints(points, name);
      const shifted = new Uint8Array(encoded.bytes.length + 1);
      shifted.set(encoded.bytes, 1);
      const decoded = decodePoints(shifted.subarray(1), encoded.encoding, 1000);
      assert.deepEqual(decoded, decodePoints(encoded.bytes, encoded.encoding, 1000), name);
    }
  });
});

void describe('point encodings: bad input', TIMEOUT, () => {
  for (const name of POINT_ENCODING_NAMES) {
    for (const bad of [NaN, Infinity, -Infinity]) {
      void it(`${name}: ${bad} rejected before encoding`, () => {
        const points = new Float32Array(30).fill(1);
        points[16] = bad;
        assert.throws(
          () => encodePoints(points, name),
          (error: unknown) =>
            error instanceof PointstreamError &&
            error.code === ErrorCodes.FRAME_NON_FINITE &&
            error.details?.point === 5,
        );
      });
    }
  }

  void it('bad arguments are TypeErrors with PS_ERR_INVALID_OPTION', () => {
    const points = new Float32Array(3);
    const invalid = (fn: () => unknown): void => {
      assert.throws(
        fn,
        (e: unknown) =>
          e instanceof TypeError && (e as { code?: string }).code === ErrorCodes.INVALID_OPTION,
      );
    };
    invalid(() => encodePoints(new Float32Array(4), 'q16'));
    invalid(() => encodePoints([1, 2, 3] as unknown as Float32Array, 'q16'));
    invalid(() => encodePoints(points, 'zstd' as PointEncodingName));
    for (const precision of [0, -1, NaN, Infinity])
      invalid(() => encodePoints(points, 'qrice', { precision }));
    invalid(() => decodePoints(new Uint8Array(0), 2, -1));
    invalid(() => decodePoints(new Uint8Array(0), 2, 1.5));
  });

  void it('unknown encoding ids: PS_ERR_ENCODING_UNSUPPORTED', () => {
    for (const id of [0, 4, 255])
      rejectsWith(() => decodePoints(new Uint8Array(100), id, 1), ErrorCodes.ENCODING_UNSUPPORTED);
  });

  void it('point counts above maxPoints are refused before anything is read', () => {
    rejectsWith(
      () => decodePoints(new Uint8Array(0), 3, 5_000_001),
      ErrorCodes.FRAME_TOO_MANY_POINTS,
    );
    rejectsWith(
      () => decodePoints(new Uint8Array(0), 2, 11, { maxPoints: 10 }),
      ErrorCodes.FRAME_TOO_MANY_POINTS,
    );
    rejectsWith(
      () => decodePoints(new Uint8Array(0), 2, 2 ** 40),
      ErrorCodes.FRAME_TOO_MANY_POINTS,
    );
  });

  void it('raw: a .npy payload whose size or shape disagrees is refused', () => {
    const encoded = encodePoints(new Float32Array(30), 'raw');
    rejectsWith(() => decodePoints(encoded.bytes, 1, 11), ErrorCodes.FRAME_LENGTH_MISMATCH);
    rejectsWith(
      () => decodePoints(encoded.bytes.subarray(0, encoded.bytes.length - 4), 1, 10),
      ErrorCodes.FRAME_LENGTH_MISMATCH,
    );
    rejectsWith(() => decodePoints(encoded.bytes.subarray(1), 1, 10), ErrorCodes.NPY_BAD_MAGIC);
  });
});

void describe('qrice layout', TIMEOUT, () => {
  /** 70 points: period 5 (stride 5), one far outlier in z (escape codes), a last block of 6. */
  function periodicFrame(): Float32Array {
    const n = 70;
    const p = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) {
      p[i * 3] = (i % 5) * 0.01 + i * 0.0001;
      p[i * 3 + 1] = -2 + (i % 5) * 0.5;
      p[i * 3 + 2] = i === 40 ? 90 : 1 + (i % 5) * 0.003;
    }
    return p;
  }

  void it('exact bytes: header, levels and bit stream (pinned before the encoder was optimised)', () => {
    const encoded = encodePoints(periodicFrame(), 'qrice', { precision: 0.001 });
    const expected =
      '46000000' + // pointCount 70
      '01' + // layout version
      '20' + // block size 32
      '0500' + // stride 5
      '0000000000000000' + // offset x = 0
      '00000000000000c0' + // offset y = -2
      '000000000000f03f' + // offset z = 1
      '3625c4b14a62603f367e2db2cd61603f4b7e43b2cd4b603f' + // steps x, y, z
      '18000000e9030000c5ae0000' + // levels 24, 1001, 44741
      '02f3e3cfff01002049020000000000126c03006cdb0000000188fed03fee3f68' +
      '00000000000000000000000000000000000000000000000000000000000000000000000000eff7bf' +
      'ff070000800600000000000000000000000000f03fc40e000000000000f0bfc30e' +
      '0000000000000000000000000000000000000000000000000000000000000000000000';
    assert.equal(Buffer.from(encoded.bytes).toString('hex'), expected);
    assertWithinBound(periodicFrame(), encoded);
  });

  void it('the same frame encodes to the same bytes whatever was encoded before', () => {
    // The encoder keeps its stream buffers between calls: a large frame that grows them, then
    // small and large frames again, must not leave anything behind.
    const small = periodicFrame();
    const lidar = new LidarSceneSource(20_000).next().slice();
    const random = new RandomPointSource(20_000).next().slice();
    const first = encodePoints(small, 'qrice').bytes;
    const lidarFirst = encodePoints(lidar, 'qrice').bytes;
    const randomFirst = encodePoints(random, 'qrice').bytes;
    assert.deepEqual(encodePoints(small, 'qrice').bytes, first);
    assert.deepEqual(encodePoints(lidar, 'qrice').bytes, lidarFirst);
    assert.deepEqual(encodePoints(random, 'qrice').bytes, randomFirst);
    assert.deepEqual(encodePoints(small, 'qrice').bytes, first);
    for (const [points, bytes] of [
      [lidar, lidarFirst],
      [random, randomFirst],
    ] as const) {
      const back = decodePoints(bytes, PointEncodingId.QRICE, points.length / 3);
      assert.equal(back.length, points.length);
    }
  });
});

void describe('q16 layout', TIMEOUT, () => {
  void it('exact bytes: header (count, layout, width, stride, offsets, scales) and u16 data', () => {
    // x spans 65535 (scale 1), y 131070 (scale 2), z nothing (scale 0, offset 5).
    const encoded = encodePoints(Float32Array.of(-1, 0, 5, 65534, 131070, 5), 'q16');
    const f64 = (hex: string): string => hex; // little-endian bytes of the f64, for reading
    const expected =
      '02000000' + // pointCount u32
      '01' + // layout version
      '10' + // integer width: 16 bits
      '0000' + // stride: none
      f64('000000000000f0bf') + // offset x = -1
      f64('0000000000000000') + // offset y = 0
      f64('0000000000001440') + // offset z = 5
      f64('000000000000f03f') + // scale x = 1
      f64('0000000000000040') + // scale y = 2
      f64('0000000000000000') + // scale z = 0
      '000000000000' + // point 0: 0, 0, 0
      'ffffffff0000'; // point 1: 65535, 65535, 0
    assert.equal(Buffer.from(encoded.bytes).toString('hex'), expected);
    assert.equal(encoded.bytes.length, QUANT_HEADER_BYTES + 12);
    assert.equal(encoded.maxError, 1 + (131070 + 2) * 2 ** -24 + 131070 * 2 ** -48);
    assert.deepEqual(
      decodePoints(encoded.bytes, PointEncodingId.Q16, 2),
      Float32Array.of(-1, 0, 5, 65534, 131070, 5),
    );
  });

  void it('rounds to the nearest step', () => {
    // Steps of 1 on x: 0.4 -> 0, 0.6 -> 1.
    const encoded = encodePoints(
      Float32Array.of(0, 0, 0, 0.4, 0, 0, 0.6, 0, 0, 65535, 0, 0),
      'q16',
    );
    const data = new DataView(encoded.bytes.buffer, encoded.bytes.byteOffset + QUANT_HEADER_BYTES);
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => data.getUint16(i * 6, true)),
      [0, 0, 1, 65535],
    );
  });
});

void describe('corrupted payloads', TIMEOUT, () => {
  const points = new LidarSceneSource(5000).next().slice();
  const q16 = encodePoints(points, 'q16');
  const qrice = encodePoints(points, 'qrice');
  const patched = (bytes: Uint8Array, patch: (view: DataView) => void): Uint8Array => {
    const copy = bytes.slice();
    patch(new DataView(copy.buffer));
    return copy;
  };

  for (const encoded of [q16, qrice]) {
    const label = encoded.encoding === PointEncodingId.Q16 ? 'q16' : 'qrice';
    const corrupt = (bytes: Uint8Array, count = 5000): void =>
      rejectsWith(() => decodePoints(bytes, encoded.encoding, count), ErrorCodes.ENCODING_CORRUPT);

    void it(`${label}: truncated anywhere, or longer than written`, () => {
      for (const keep of [
        0,
        1,
        10,
        QUANT_HEADER_BYTES - 1,
        QUANT_HEADER_BYTES,
        QUANT_HEADER_BYTES + 4,
        encoded.bytes.length - 4,
        encoded.bytes.length - 1,
      ]) {
        corrupt(encoded.bytes.subarray(0, keep));
      }
      const longer = new Uint8Array(encoded.bytes.length + 4);
      longer.set(encoded.bytes);
      corrupt(longer);
    });

    void it(`${label}: header lying about the point count, layout or axes`, () => {
      corrupt(encoded.bytes, 4999);
      corrupt(encoded.bytes, 5001);
      corrupt(patched(encoded.bytes, (v) => v.setUint32(0, 5001, true)));
      corrupt(patched(encoded.bytes, (v) => v.setUint8(4, 2)));
      corrupt(patched(encoded.bytes, (v) => v.setUint8(5, 8)));
      corrupt(patched(encoded.bytes, (v) => v.setFloat64(8, NaN, true)));
      corrupt(patched(encoded.bytes, (v) => v.setFloat64(16, Infinity, true)));
      corrupt(patched(encoded.bytes, (v) => v.setFloat64(32, -1, true)));
      // A scale that would decode beyond float32's range (infinite points).
      corrupt(patched(encoded.bytes, (v) => v.setFloat64(40, 1e36, true)));
    });

    void it(`${label}: a lying point count with a short payload is refused without allocating it`, () => {
      // 4M points declared in header and frame, a few kB of payload: rejected on size alone.
      const lying = patched(encoded.bytes, (v) => v.setUint32(0, 4_000_000, true));
      corrupt(lying, 4_000_000);
    });
  }

  void it('qrice: a block parameter, escape length, value above the levels or stray bits', () => {
    const corrupt = (bytes: Uint8Array): void =>
      rejectsWith(
        () => decodePoints(bytes, PointEncodingId.QRICE, 5000),
        ErrorCodes.ENCODING_CORRUPT,
      );
    // The first block's k is the low 5 bits of the first word: 31 is above the maximum of 24.
    corrupt(
      patched(qrice.bytes, (v) =>
        v.setUint8(QRICE_HEADER_BYTES, v.getUint8(QRICE_HEADER_BYTES) | 31),
      ),
    );
    // Levels of x lowered to 1: decoded integers exceed them.
    corrupt(patched(qrice.bytes, (v) => v.setUint32(QUANT_HEADER_BYTES, 1, true)));
    // A stray bit after the last code.
    const last = qrice.bytes.length - 1;
    corrupt(patched(qrice.bytes, (v) => v.setUint8(last, v.getUint8(last) | 0x80)));
    // An escape claiming 63 bits: the first value of a block of k = 0 made "16 ones, 111111".
    const escape = new Uint8Array(QRICE_HEADER_BYTES + 8);
    escape.set(
      encodePoints(Float32Array.of(0, 0, 0, 0, 0, 0), 'qrice').bytes.subarray(
        0,
        QRICE_HEADER_BYTES,
      ),
    );
    const words = new DataView(escape.buffer, QRICE_HEADER_BYTES);
    words.setUint32(0, (0xffff << 5) >>> 0, true); // k = 0, then 16 ones from bit 5
    words.setUint32(4, 0xffff_ffff, true); // bit length 63
    rejectsWith(() => decodePoints(escape, PointEncodingId.QRICE, 2), ErrorCodes.ENCODING_CORRUPT);
  });

  void it('errors serialise with their code', () => {
    try {
      decodePoints(q16.bytes.subarray(1), PointEncodingId.Q16, 5000);
      assert.fail('no error');
    } catch (error) {
      const json = JSON.parse(JSON.stringify(error)) as { code: string; name: string };
      assert.equal(json.code, 'PS_ERR_ENCODING_CORRUPT');
      assert.equal(json.name, 'PointstreamError');
    }
  });
});

void describe(
  'fuzz: decoders never crash, never return a wrong-length or non-finite frame',
  TIMEOUT,
  () => {
    const allowed = new Set<string>([
      ErrorCodes.ENCODING_CORRUPT,
      ErrorCodes.FRAME_TOO_MANY_POINTS,
    ]);
    const decodeOrCode = (bytes: Uint8Array, encoding: number, count: number): void => {
      let decoded: Float32Array;
      try {
        decoded = decodePoints(bytes, encoding, count, { maxPoints: 100_000 });
      } catch (error) {
        if (error instanceof PointstreamError && allowed.has(error.code)) return;
        throw error;
      }
      assert.equal(decoded.length, count * 3);
      for (const v of decoded) assert.ok(Number.isFinite(v), `non-finite ${v}`);
    };
    const sources = new Map<number, EncodedPoints[]>();
    for (const name of ['q16', 'qrice'] as const) {
      const list = [
        new LidarSceneSource(700).next().slice(),
        new RandomPointSource(300).next().slice(),
        Float32Array.of(1, 2, 3),
      ].map((p) => encodePoints(p, name));
      sources.set(pointEncodingIdOf[name], list);
    }

    void it(`mutated valid payloads (seed ${1001 + FUZZ_SEED})`, TIMEOUT, () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...[...sources.values()].flat()),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
            minLength: 1,
            maxLength: 8,
          }),
          fc.integer({ min: -8, max: 8 }),
          (encoded, flips, resize) => {
            const bytes = encoded.bytes.slice(
              0,
              Math.max(0, encoded.bytes.length + Math.min(resize, 0)),
            );
            const grown = new Uint8Array(bytes.length + Math.max(resize, 0));
            grown.set(bytes);
            for (const [at, value] of flips) if (grown.length > 0) grown[at % grown.length] = value;
            decodeOrCode(grown, encoded.encoding, encoded.pointCount);
          },
        ),
        { seed: 1001 + FUZZ_SEED, numRuns: 400 * FUZZ_RUNS },
      );
    });

    void it(`arbitrary bytes and counts (seed ${1002 + FUZZ_SEED})`, TIMEOUT, () => {
      fc.assert(
        fc.property(
          fc.constantFrom(PointEncodingId.Q16, PointEncodingId.QRICE),
          fc.uint8Array({ maxLength: 400 }),
          fc.integer({ min: 0, max: 200_000 }),
          fc.boolean(),
          (encoding, body, count, withHeader) => {
            // Half the time behind a plausible header, so the body reaches the stream decoder.
            const template = sources.get(encoding)?.[0];
            let bytes = body;
            if (withHeader && template !== undefined) {
              const headerBytes =
                encoding === PointEncodingId.Q16 ? QUANT_HEADER_BYTES : QRICE_HEADER_BYTES;
              bytes = new Uint8Array(headerBytes + body.length);
              bytes.set(template.bytes.subarray(0, headerBytes));
              bytes.set(body, headerBytes);
              new DataView(bytes.buffer).setUint32(0, count, true);
            }
            decodeOrCode(bytes, encoding, count);
          },
        ),
        { seed: 1002 + FUZZ_SEED, numRuns: 600 * FUZZ_RUNS },
      );
    });
  },
);
