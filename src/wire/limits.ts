/** Caps that bound what one channel's reassembly may hold. */
export interface ReassemblyLimits {
  /** Largest payload (.npy bytes) of one frame. Default 64 MiB. */
  readonly maxFrameBytes: number;
  /** Most points in one frame. Default 5,000,000. */
  readonly maxPointsPerFrame: number;
  /** Most chunks in one frame. Default 65,536. */
  readonly maxChunksPerFrame: number;
  /**
   * Most frames being reassembled at once on one channel. Default 2. A new frame beyond it pushes
   * out the oldest unfinished one (`PS_ERR_FRAME_INCOMPLETE`): for live data the newest matters.
   */
  readonly maxFramesInReassembly: number;
  /** Accept NaN and infinite coordinates. Default false: they are rejected. */
  readonly allowNonFinite: boolean;
}

export const DEFAULT_REASSEMBLY_LIMITS: ReassemblyLimits = Object.freeze({
  maxFrameBytes: 64 * 1024 * 1024,
  maxPointsPerFrame: 5_000_000,
  maxChunksPerFrame: 65_536,
  maxFramesInReassembly: 2,
  allowNonFinite: false,
});
