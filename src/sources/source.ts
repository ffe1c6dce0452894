import type { PointFields } from '../wire/fields.js';
import type { PointFileConversion } from './point-files.js';

/** Where `send` gets its frames. */
export interface PointSource {
  /** Frames the source holds (a directory), or undefined when it can repeat forever. */
  readonly frameCount: number | undefined;
  /** The next frame's x, y, z triples. May reuse its array: the previous frame is then gone. */
  next(): Float32Array;
  /**
   * The per-point fields of the frame `next()` returned last (intensity, ring, colour...), in
   * wire order; absent or empty when the source has none. Valid until the next `next()`.
   */
  readonly fields?: PointFields;
  describe(): string;
  /** Generators whose coordinates are finite by construction (the client need not check them). */
  readonly finite?: boolean;
  /**
   * Files only: what reading the last frame dropped or converted (extra columns, float64), so
   * that it is reported rather than silent.
   */
  readonly conversion?: PointFileConversion | undefined;
}
