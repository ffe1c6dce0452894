import type { PointSource } from './source.js';

/**
 * Random points, fresh every frame, generated cheaply: the CLI's default source runs beside the
 * server in tests and demos, so it must not take the server's CPU. xorshift32 fills 3 M floats in
 * a few milliseconds, into one reused buffer (no allocation per frame).
 */
export class RandomPointSource implements PointSource {
  readonly frameCount = undefined;
  readonly pointCount: number;
  readonly #points: Float32Array;
  readonly #extent: number;
  #state: number;

  /** Points uniformly in a cube of side `extent` metres centred on the origin. */
  constructor(pointCount: number, options: { seed?: number; extent?: number } = {}) {
    if (!Number.isSafeInteger(pointCount) || pointCount < 0)
      throw new RangeError(`pointCount must be a non-negative integer; got ${pointCount}`);
    this.pointCount = pointCount;
    this.#points = new Float32Array(pointCount * 3);
    this.#extent = options.extent ?? 100;
    this.#state = (options.seed ?? 0x9e3779b9) >>> 0 || 1;
  }

  describe(): string {
    return `${this.pointCount} random points per frame`;
  }

  /** The next frame's points. The returned array is reused: the next call overwrites it. */
  next(): Float32Array {
    const points = this.#points;
    const scale = this.#extent / 4294967296;
    const offset = -this.#extent / 2;
    let x = this.#state;
    for (let i = 0; i < points.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      points[i] = (x >>> 0) * scale + offset;
    }
    this.#state = x >>> 0 || 1;
    return points;
  }
}
