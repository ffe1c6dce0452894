import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LidarSceneSource } from '../src/sources/lidar.js';
import { RandomPointSource } from '../src/sources/random.js';

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
