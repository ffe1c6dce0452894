import type { PointFields } from '../wire/fields.js';
import type { PointSource } from './source.js';

/**
 * A synthetic spinning LiDAR in a warehouse: 64 beams from -25 to +15 degrees, one revolution per
 * frame, points in scan order (column by column), ranges with 1 cm of (triangular) noise. The scene is a
 * closed box (floor, ceiling, four walls) holding racks and pillars, and the sensor drives slowly
 * along a path, so consecutive frames differ the way real scans do. Every ray hits something, so
 * a frame always has exactly `pointCount` points. Unlike random points, these compress.
 *
 * Each point also has the fields a LiDAR driver gives (unless `fields: false`): `intensity`
 * (float32, 0..255: the surface's reflectivity, times the cosine of the incidence, falling with
 * the square of the range, with 10 % noise), `ring` (uint16, the beam: 0 at -25 degrees, 63 at
 * +15) and `time` (float64, seconds since the frame's capture: the sensor turns once per frame
 * in {@link LIDAR_SWEEP_SECONDS}, firing its beams one after the other, so time rises along the
 * scan).
 */
export class LidarSceneSource implements PointSource {
  readonly frameCount = undefined;
  readonly finite = true;
  readonly pointCount: number;
  readonly #points: Float32Array;
  readonly #columns: number;
  readonly #sinElevation: Float64Array;
  readonly #cosElevation: Float64Array;
  readonly #intensity: Float32Array | undefined;
  readonly #fields: PointFields | undefined;
  #frame = 0;
  #noise: number;
  /** Intensity noise: its own generator, so the points stay what they were without fields. */
  #shimmer = 0x9e3779b9;

  constructor(pointCount: number, options: { seed?: number; fields?: boolean } = {}) {
    if (!Number.isSafeInteger(pointCount) || pointCount < 0) {
      throw new RangeError(`pointCount must be a non-negative integer; got ${pointCount}`);
    }
    this.pointCount = pointCount;
    this.#points = new Float32Array(pointCount * 3);
    this.#columns = Math.ceil(pointCount / BEAMS);
    this.#sinElevation = new Float64Array(BEAMS);
    this.#cosElevation = new Float64Array(BEAMS);
    for (let beam = 0; beam < BEAMS; beam++) {
      const elevation = ((-25 + (40 * beam) / (BEAMS - 1)) * Math.PI) / 180;
      this.#sinElevation[beam] = Math.sin(elevation);
      this.#cosElevation[beam] = Math.cos(elevation);
    }
    this.#noise = (options.seed ?? 0x2545f491) >>> 0 || 1;
    if (options.fields !== false) {
      // Ring and time are the same every revolution: written once.
      const ring = new Uint16Array(pointCount);
      const time = new Float64Array(pointCount);
      const perPoint = LIDAR_SWEEP_SECONDS / (this.#columns * BEAMS);
      for (let i = 0; i < pointCount; i++) {
        ring[i] = i % BEAMS;
        time[i] = i * perPoint;
      }
      this.#intensity = new Float32Array(pointCount);
      this.#fields = Object.freeze({ intensity: this.#intensity, ring, time });
    }
  }

  /** intensity, ring and time of the last frame (arrays reused: the next `next()` rewrites them). */
  get fields(): PointFields | undefined {
    return this.#fields;
  }

  describe(): string {
    return `${this.pointCount} points of a simulated 64-beam LiDAR in a warehouse`;
  }

  /** The next revolution. The returned array is reused: the next call overwrites it. */
  next(): Float32Array {
    const points = this.#points;
    const t = this.#frame++;
    // The sensor drives along the warehouse at 1 m/s (4 Hz: 0.25 m per frame), 1.8 m up.
    const sx = -15 + ((t * 0.25) % 30);
    const sy = 2 * Math.sin(t * 0.05);
    const sz = 1.8;
    // Boxes are vertical prisms and the room a box, so most of the work is done once per column
    // in the horizontal plane; each beam then only intersects height intervals.
    const boxNear = new Float64Array(BOXES.length);
    const boxFar = new Float64Array(BOXES.length);
    const intensity = this.#intensity;
    let n = 0;
    for (let column = 0; column < this.#columns && n < this.pointCount; column++) {
      const azimuth = (2 * Math.PI * column) / this.#columns;
      const ca = Math.cos(azimuth);
      const sa = Math.sin(azimuth);
      const wallX = exitDistance(sx, ca, ROOM.minX, ROOM.maxX);
      const wallY = exitDistance(sy, sa, ROOM.minY, ROOM.maxY);
      const wall = Math.min(wallX, wallY);
      for (const [index, box] of BOXES.entries()) {
        const [near, far] = slab2d(sx, sy, ca, sa, box);
        boxNear[index] = near;
        boxFar[index] = far;
      }
      for (let beam = 0; beam < BEAMS && n < this.pointCount; beam++) {
        const ce = this.#cosElevation[beam] as number;
        const dz = this.#sinElevation[beam] as number;
        // Ranges along the 3D ray: horizontal distance h is range * ce.
        let range = wall / ce;
        // What the ray hits (for the intensity): a wall, the ceiling or floor, or box b.
        let surface = wallX < wallY ? WALL_X : WALL_Y;
        let top = false;
        if (dz > 0 && (ROOM.maxZ - sz) / dz < range) {
          range = (ROOM.maxZ - sz) / dz;
          surface = CEILING;
        } else if (dz < 0 && (ROOM.minZ - sz) / dz < range) {
          range = (ROOM.minZ - sz) / dz;
          surface = FLOOR;
        }
        for (let b = 0; b < BOXES.length; b++) {
          const hNear = boxNear[b] as number;
          if (hNear === Infinity) continue;
          const box = BOXES[b] as Box;
          let near = hNear / ce;
          let far = (boxFar[b] as number) / ce;
          let lid = false;
          if (dz !== 0) {
            const z1 = (box[2] - sz) / dz;
            const z2 = (box[5] - sz) / dz;
            lid = Math.min(z1, z2) > near;
            near = Math.max(near, Math.min(z1, z2));
            far = Math.min(far, Math.max(z1, z2));
          } else if (sz < box[2] || sz > box[5]) continue;
          if (near <= far && near > 0 && near < range) {
            range = near;
            surface = FIRST_BOX + b;
            top = lid;
          }
        }
        range += this.#gaussian() * 0.01;
        if (intensity !== undefined) {
          // Lambertian: the cosine between the ray and the surface's normal.
          const cos =
            surface === FLOOR || surface === CEILING || top
              ? Math.abs(dz)
              : surface === WALL_X
                ? Math.abs(ce * ca)
                : surface === WALL_Y
                  ? Math.abs(ce * sa)
                  : 0.8 * ce;
          const falloff = 1 / (1 + (range / 12) ** 2);
          const value =
            255 * (REFLECTIVITY[surface] as number) * (0.2 + 0.8 * cos) * falloff * this.#jitter();
          intensity[n] = Math.min(255, value);
        }
        points[n * 3] = sx + ce * ca * range;
        points[n * 3 + 1] = sy + ce * sa * range;
        points[n * 3 + 2] = sz + dz * range;
        n++;
      }
    }
    return points;
  }

  /** A factor in [0.9, 1.1) from the intensity's own xorshift32. */
  #jitter(): number {
    let x = this.#shimmer;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#shimmer = x >>> 0 || 1;
    return 0.9 + (this.#shimmer / 2 ** 32) * 0.2;
  }

  /** Bell-shaped noise, standard deviation 1: the sum of two 16-bit uniforms from one xorshift32 step. */
  #gaussian(): number {
    let x = this.#noise;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#noise = x >>> 0 || 1;
    return (((x >>> 16) + (x & 0xffff)) / 65536 - 1) * 2.449;
  }
}

const BEAMS = 64;
/** One revolution per frame, frames at 4 Hz: the span of the `time` field. */
export const LIDAR_SWEEP_SECONDS = 0.25;
/** Surfaces for the intensity: the room's, then the boxes' in order. */
const FLOOR = 0;
const CEILING = 1;
const WALL_X = 2;
const WALL_Y = 3;
const FIRST_BOX = 4;
/** Reflectivity per surface: concrete floor, dark ceiling, painted walls, metal racks, pillars, crates. */
const REFLECTIVITY: readonly number[] = [0.35, 0.15, 0.55, 0.55, 0.8, 0.8, 0.3, 0.3, 0.65, 0.5];
/** The warehouse: x in [-30, 30], y in [-20, 20], z in [0, 8] metres. */
const ROOM = { minX: -30, maxX: 30, minY: -20, maxY: 20, minZ: 0, maxZ: 8 } as const;
/** Racks and pillars: axis-aligned boxes [minX, minY, minZ, maxX, maxY, maxZ]. */
const BOXES: readonly Box[] = [
  [-25, 8, 0, 20, 10, 5],
  [-25, -10, 0, 20, -8, 5],
  [-5, -1, 0, -4, 1, 8],
  [10, 4, 0, 11, 5, 8],
  [22, -3, 0, 26, 3, 1.5],
  [-12, 3, 0, -10.5, 4.5, 1.2],
];

type Box = readonly [number, number, number, number, number, number];

/** Distance along a direction component `d` from `o` to leave [min, max]. */
function exitDistance(o: number, d: number, min: number, max: number): number {
  if (d > 0) return (max - o) / d;
  if (d < 0) return (min - o) / d;
  return Infinity;
}

/** Horizontal entry and exit distances of the ray (ca, sa) through a box's footprint. */
function slab2d(ox: number, oy: number, ca: number, sa: number, box: Box): [number, number] {
  let near = -Infinity;
  let far = Infinity;
  for (const [o, d, min, max] of [
    [ox, ca, box[0], box[3]],
    [oy, sa, box[1], box[4]],
  ] as const) {
    if (d === 0) {
      if (o < min || o > max) return [Infinity, Infinity];
      continue;
    }
    const a = (min - o) / d;
    const b = (max - o) / d;
    near = Math.max(near, Math.min(a, b));
    far = Math.min(far, Math.max(a, b));
  }
  return near <= far && far > 0 ? [Math.max(near, 0), far] : [Infinity, Infinity];
}
