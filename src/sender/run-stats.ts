import type { ErrorCode } from '../errors.js';
import type { FrameReceipt, SentFrame } from './types.js';

/**
 * What a run of frames did and how fast: the one set of counts, rates and percentiles behind
 * `pointstream send`'s summary (src/cli/send.ts) and the browser sender page's result
 * (web/sender/run.ts), plus the pacing both loops use. Browser-safe.
 */

/** Nearest-rank percentile of `values` (0-100); NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export function round(value: number, digits = 1): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** One rejected frame, as the server explained it. */
export interface Rejection {
  readonly seq: number;
  readonly code: ErrorCode;
  readonly message: string;
}

/** The figures of a run so far (or in the end); the summary fields the CLI and the page share. */
export interface RunFigures {
  /** Frames handed to the channel: acked + rejected + lost + still awaiting a receipt. */
  readonly framesSent: number;
  readonly framesAcked: number;
  readonly framesRejected: number;
  /** Frames sent whose receipt never came (connection lost, receipt timeout). */
  readonly framesLost: number;
  readonly bytesSent: number;
  /** From {@link RunStats.start} to {@link RunStats.finish} (or now). */
  readonly seconds: number;
  /** Acknowledged frames per second between the first and the last acknowledgement. */
  readonly achievedHz: number;
  readonly mbPerSec: number;
  /** Of acknowledged frames; all 0 when none was. */
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  /** Payload bytes per point sent (12 plus the .npy header for raw). */
  readonly bytesPerPoint: number;
  /** Largest error of any coordinate sent, metres (0 for raw). */
  readonly maxError: number;
  /** Paced frames that started more than half a period after their time. */
  readonly lateFrames: number;
}

/** Counts of one run, fed by its loop; `figures()` at any time gives the summary fields. */
export class RunStats {
  readonly #latencies: number[] = [];
  readonly #rejections: Rejection[] = [];
  readonly #counts = { sent: 0, acked: 0, rejected: 0, lost: 0, late: 0 };
  #bytesSent = 0;
  #pointsSent = 0;
  #maxError = 0;
  #start = performance.now();
  #end: number | undefined;
  #firstAckAt = 0;
  #lastAckAt = 0;

  /** Marks the start of streaming (connecting is not streaming time). */
  start(): void {
    this.#start = performance.now();
    this.#end = undefined;
  }

  /** When streaming started (`performance.now()` clock). */
  get startedAt(): number {
    return this.#start;
  }

  /** Marks the end of streaming: the last receipt is in; closing is not streaming time. */
  finish(): void {
    this.#end ??= performance.now();
  }

  /**
   * Counts a frame handed to the channel and, when its receipt settles, its outcome. The promise
   * returned never rejects. `onSettled` sees the receipt or the loss (the CLI logs them).
   */
  track(
    frame: SentFrame,
    points: number,
    onSettled?: (outcome: FrameReceipt | Error) => void,
  ): Promise<void> {
    this.#counts.sent++;
    this.#bytesSent += frame.bytes;
    this.#pointsSent += points;
    this.#maxError = Math.max(this.#maxError, frame.maxError);
    return frame.receipt.then(
      (receipt) => {
        this.#receipt(receipt);
        onSettled?.(receipt);
      },
      (error: unknown) => {
        this.#counts.lost++;
        onSettled?.(error as Error);
      },
    );
  }

  /** Counts a paced frame that started late. */
  late(): void {
    this.#counts.late++;
  }

  /** Latencies of acknowledged frames, in the order they came. */
  get latencies(): readonly number[] {
    return this.#latencies;
  }

  get rejections(): readonly Rejection[] {
    return this.#rejections;
  }

  figures(): RunFigures {
    const c = this.#counts;
    const seconds = ((this.#end ?? performance.now()) - this.#start) / 1000;
    const ackSpan = (this.#lastAckAt - this.#firstAckAt) / 1000;
    const latencies = this.#latencies;
    const latency = (value: number): number => (latencies.length > 0 ? round(value) : 0);
    return {
      framesSent: c.sent,
      framesAcked: c.acked,
      framesRejected: c.rejected,
      framesLost: c.lost,
      bytesSent: this.#bytesSent,
      seconds: round(seconds, 2),
      achievedHz: c.acked >= 2 && ackSpan > 0 ? round((c.acked - 1) / ackSpan, 3) : 0,
      mbPerSec: seconds > 0 ? round(this.#bytesSent / 1e6 / seconds, 1) : 0,
      latencyMs: {
        p50: latency(percentile(latencies, 50)),
        p99: latency(percentile(latencies, 99)),
        max: latency(Math.max(0, ...latencies)),
      },
      bytesPerPoint: this.#pointsSent > 0 ? round(this.#bytesSent / this.#pointsSent, 3) : 0,
      maxError: this.#maxError,
      lateFrames: c.late,
    };
  }

  #receipt(receipt: FrameReceipt): void {
    if (receipt.ok) {
      this.#counts.acked++;
      this.#latencies.push(receipt.latencyMs);
      this.#lastAckAt = performance.now();
      if (this.#counts.acked === 1) this.#firstAckAt = this.#lastAckAt;
    } else {
      this.#counts.rejected++;
      this.#rejections.push({ seq: receipt.seq, code: receipt.code, message: receipt.message });
    }
  }
}

/**
 * Drift-free pacing: frame k is due at `startedAt + k / rate`, whatever the frames before took.
 * Resolves when frame `k` is due (at once when `rate` is 0 or it is overdue, or when `signal`
 * aborts); counts it late in `stats` when it starts more than half a period after its time.
 */
export async function pace(
  stats: RunStats,
  options: { readonly rate: number; readonly k: number; readonly signal?: AbortSignal },
): Promise<void> {
  const { rate, k, signal } = options;
  if (rate <= 0) return;
  const period = 1000 / rate;
  const wait = stats.startedAt + k * period - performance.now();
  if (wait < -period / 2) stats.late();
  if (wait <= 0 || signal?.aborted === true) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, wait);
    signal?.addEventListener('abort', done, { once: true });
  });
}
