import type { ErrorCode } from '../errors.js';
import type { PointEncodingName } from '../wire/encodings/index.js';
import type { PointFields } from '../wire/fields.js';

/** The server's answer for one frame. */
export type FrameReceipt =
  | {
      readonly seq: number;
      readonly ok: true;
      readonly points: number;
      /** Milliseconds from the first chunk handed to the channel to the receipt's arrival. */
      readonly latencyMs: number;
      /** Server clock when the frame was verified. */
      readonly receivedAt: number;
    }
  | {
      readonly seq: number;
      readonly ok: false;
      readonly code: ErrorCode;
      readonly message: string;
      readonly latencyMs: number;
    };

/** A frame handed to the channel; `receipt` settles when the server answers for it. */
export interface SentFrame {
  readonly seq: number;
  /** Payload bytes on the wire (after encoding). */
  readonly bytes: number;
  readonly chunks: number;
  readonly encoding: PointEncodingName;
  /** Bound on the error of every coordinate, in metres (0 for `raw`). */
  readonly maxError: number;
  /** With fields: the bound on each field's error, by name (0: lossless); none without. */
  readonly fieldMaxErrors?: Readonly<Record<string, number>>;
  /**
   * Resolves with the server's receipt (which may say rejected). Rejects with
   * `PS_ERR_FRAME_LOST` when the connection ends or the receipt times out first.
   */
  readonly receipt: Promise<FrameReceipt>;
}

export interface SendOptions {
  /** Capture time in ms since the Unix epoch. (now) */
  readonly captureTime?: number;
  readonly signal?: AbortSignal;
  /**
   * `true`: every coordinate is known to be finite (a generator that cannot make NaN), so the
   * client skips its check of raw frames (one pass, about 3.5 ms per million points). A NaN sent
   * anyway is rejected by the server. (false)
   */
  readonly finite?: boolean;
  /**
   * Per-point fields sent with the points (docs/protocol.md, "Per-point fields"): typed arrays
   * of one value per point by name (`{ intensity: Float32Array, ring: Uint16Array }`), in the
   * order given. Raw frames carry them as they are (not copied: they must not change until
   * `send` resolves); q16/qrice frames code them (`fieldPrecision`). Refused with
   * `PS_ERR_FIELDS_UNSUPPORTED` by a server that does not read fields, `PS_ERR_FIELDS_INVALID`
   * for bad names, types or lengths: nothing is sent then. Ignored for points encoded already
   * that carry their own fields. (none)
   */
  readonly fields?: PointFields | undefined;
}

/** Why a sender ended. */
export interface SenderEnd {
  readonly code: ErrorCode;
  readonly reason: string;
}

/** What a sender has done so far; `framesSent = framesAcked + framesRejected + framesLost + framesInFlight`. */
export interface SenderStats {
  readonly framesSent: number;
  readonly framesAcked: number;
  readonly framesRejected: number;
  readonly framesLost: number;
  /** Payload bytes of the frames sent. */
  readonly bytesSent: number;
}
