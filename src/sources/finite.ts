import { indexOfNonFinite } from '../wire/points.js';

/**
 * Drops points with a NaN or infinite coordinate, as organised clouds from LiDAR drivers and depth
 * cameras hold (no return: NaN). `send --drop-non-finite` and the browser sender's `dropNonFinite`
 * use it; no Node-only APIs.
 */
export class NonFiniteFilter {
  #scratch = new Float32Array(0);

  /**
   * `points` itself when every coordinate is finite (one branch-free pass, no copy); else the
   * finite points in order, in a buffer this filter reuses (the next call overwrites it). A point
   * is dropped whole when any of x, y, z is not finite.
   */
  apply(points: Float32Array): { points: Float32Array; dropped: number } {
    const first = indexOfNonFinite(points);
    if (first < 0) return { points, dropped: 0 };
    if (this.#scratch.length < points.length) this.#scratch = new Float32Array(points.length);
    const out = this.#scratch;
    const start = first - (first % 3);
    out.set(points.subarray(0, start));
    let n = start;
    for (let i = start; i < points.length; i += 3) {
      const x = points[i] as number;
      const y = points[i + 1] as number;
      const z = points[i + 2] as number;
      // v - v is 0 for every finite v, NaN for NaN and the infinities.
      if (x - x === 0 && y - y === 0 && z - z === 0) {
        out[n] = x;
        out[n + 1] = y;
        out[n + 2] = z;
        n += 3;
      }
    }
    return { points: out.subarray(0, n), dropped: (points.length - n) / 3 };
  }
}
