import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openFileSource } from '../../src/sources/files.js';
import { describeConversion } from '../../src/sources/point-files.js';
import type { PointFileConversion } from '../../src/sources/point-files.js';
import { LidarSceneSource } from '../../src/sources/lidar.js';
import { RandomPointSource } from '../../src/sources/random.js';

void test(
  'the LiDAR scene: exact point count, inside the warehouse, scan order, moving, deterministic',
  { timeout: 30_000 },
  () => {
    const source = new LidarSceneSource(64 * 500);
    const first = source.next().slice();
    const second = source.next().slice();
    assert.equal(first.length, 64 * 500 * 3);
    for (let i = 0; i < first.length; i += 3) {
      const [x, y, z] = [first[i] as number, first[i + 1] as number, first[i + 2] as number];
      assert.ok(
        x >= -30.1 && x <= 30.1 && y >= -20.1 && y <= 20.1 && z >= -0.1 && z <= 8.1,
        `point ${i / 3} (${x}, ${y}, ${z}) is outside the room`,
      );
    }
    // Scan order: the 64 beams of one column go upwards, so z rises within a column on a flat floor or wall.
    let rising = 0;
    for (let beam = 1; beam < 64; beam++)
      if ((first[beam * 3 + 2] as number) > (first[(beam - 1) * 3 + 2] as number)) rising++;
    assert.ok(rising > 50, `z rises along a column (${rising} of 63)`);
    assert.notDeepEqual(first, second, 'the sensor moves between frames');
    assert.deepEqual(
      new LidarSceneSource(64 * 500).next(),
      first,
      'the same seed gives the same scan',
    );
    assert.equal(
      new LidarSceneSource(1000).next().length,
      3000,
      'point counts that are not a multiple of 64 are exact',
    );
  },
);

void test(
  'random points: fresh every frame, in a cube of the given extent',
  { timeout: 30_000 },
  () => {
    const source = new RandomPointSource(10_000, { extent: 10 });
    const a = source.next().slice();
    const b = source.next();
    assert.notDeepEqual(a, b);
    assert.ok(a.every((v) => v >= -5 && v < 5));
  },
);

void test(
  'point files say what reading them dropped or converted: extra columns, float64; PLY properties become fields',
  { timeout: 30_000 },
  (t) => {
    const fixtures = fileURLToPath(new URL('../fixtures/npy/', import.meta.url));
    const conversionOf = (path: string): PointFileConversion | undefined => {
      const source = openFileSource(path);
      source.next();
      return source.conversion;
    };
    assert.deepEqual(conversionOf(join(fixtures, 'xyz_f4_3pts.npy')), {
      droppedColumns: 0,
      convertedFrom: undefined,
    });
    assert.deepEqual(conversionOf(join(fixtures, 'xyzi_f4_4cols.npy')), {
      droppedColumns: 1,
      convertedFrom: undefined,
    });
    assert.deepEqual(conversionOf(join(fixtures, 'xyz_f8.npy')), {
      droppedColumns: 0,
      convertedFrom: 'float64',
    });
    const dir = mkdtempSync(join(tmpdir(), 'pointstream-sources-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const ply = join(dir, 'scan.ply');
    writeFileSync(
      ply,
      'ply\nformat ascii 1.0\nelement vertex 1\nproperty double x\nproperty double y\nproperty double z\nproperty uchar red\nproperty float intensity\nend_header\n1 2 3 255 0.5\n',
    );
    // Every other PLY property is sent as a field of its type: nothing dropped.
    assert.deepEqual(conversionOf(ply), { droppedColumns: 0, convertedFrom: 'double' });
    const withFields = openFileSource(ply);
    withFields.next();
    assert.deepEqual(withFields.fields, {
      red: Uint8Array.of(255),
      intensity: Float32Array.of(0.5),
    });
    assert.equal(
      describeConversion({ droppedColumns: 1, convertedFrom: 'float64' }),
      'only x, y, z are sent: 1 more value per point dropped; float64 coordinates converted to float32',
    );
    assert.equal(describeConversion({ droppedColumns: 0, convertedFrom: undefined }), undefined);
  },
);

void test(
  'random points: a different set every frame, inside the cube, without generating or copying per frame',
  { timeout: 30_000 },
  () => {
    const source = new RandomPointSource(10_000, { seed: 7, extent: 10 });
    assert.equal(source.finite, true);
    const frames = [source.next(), source.next(), source.next()];
    for (const frame of frames) {
      assert.equal(frame.length, 30_000);
      assert.ok(frame.every((v) => v >= -5 && v < 5));
      // A view of one pool made at construction: nothing is allocated per frame.
      assert.equal(frame.buffer, frames[0]?.buffer);
    }
    const [a, b] = frames as [Float32Array, Float32Array];
    let same = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
    assert.ok(same < a.length / 100, `${same} of ${a.length} values in the same place`);
    // Seeded: the same seed gives the same frames (the browser-sender test relies on it).
    const again = new RandomPointSource(10_000, { seed: 7, extent: 10 });
    assert.deepEqual(again.next(), a);
  },
);
