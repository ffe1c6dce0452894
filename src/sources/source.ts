/** Where `send` gets its frames. */
export interface PointSource {
  /** Frames the source holds (a directory), or undefined when it can repeat forever. */
  readonly frameCount: number | undefined;
  /** The next frame's x, y, z triples. May reuse its array: the previous frame is then gone. */
  next(): Float32Array;
  describe(): string;
}
