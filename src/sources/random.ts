import type { PointSource } from './source.js';

/** How far, in points, one frame's window may start from the pool's beginning. */
const WINDOW_SPREAD_POINTS = 65_536;

/**
 * Random points, a different set every frame, at no cost per frame: the CLI's default source runs
 * beside the server in tests, demos and the benchmark, so it must take neither the server's CPU
 * nor the sender's (generating 1M points costs 9-10 ms, 0.08 CPU s per 100 MB sent; a real sensor
 * hands over a buffer it already has). A pool of uniform points (xorshift32) is made once; each
 * frame is a view of it starting at a pseudo-random point within {@link WINDOW_SPREAD_POINTS}, so
 * consecutive frames differ in every position while nothing is generated or copied.
 */
export class RandomPointSource implements PointSource {
  readonly frameCount = undefined;
  readonly finite = true;
  readonly pointCount: number;
  readonly #pool: Float32Array;
  readonly #spread: number;
  #state: number;

  /** Points uniformly in a cube of side `extent` metres centred on the origin. */
  constructor(pointCount: number, options: { seed?: number; extent?: number } = {}) {
    if (!Number.isSafeInteger(pointCount) || pointCount < 0)
      throw new RangeError(`pointCount must be a non-negative integer; got ${pointCount}`);
    this.pointCount = pointCount;
    this.#spread = Math.min(WINDOW_SPREAD_POINTS, pointCount);
    const extent = options.extent ?? 100;
    let x = (options.seed ?? 0x9e3779b9) >>> 0 || 1;
    const pool = new Float32Array((pointCount + this.#spread) * 3);
    const scale = extent / 4294967296;
    const offset = -extent / 2;
    for (let i = 0; i < pool.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      pool[i] = (x >>> 0) * scale + offset;
    }
    this.#pool = pool;
    this.#state = x >>> 0 || 1;
  }

  describe(): string {
    return `${this.pointCount} random points per frame`;
  }

  /** The next frame's points: a view of the pool, valid until the source is dropped. */
  next(): Float32Array {
    let x = this.#state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x >>> 0 || 1;
    const start = this.#spread === 0 ? 0 : ((x >>> 0) % this.#spread) * 3;
    return this.#pool.subarray(start, start + this.pointCount * 3);
  }
}
