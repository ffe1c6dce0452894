import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, PointstreamError } from '../../src/errors.js';
import { RunStats, pace, percentile, round } from '../../src/sender/run-stats.js';
import type { FrameReceipt, SentFrame } from '../../src/sender/types.js';

const frame = (seq: number, receipt: Promise<FrameReceipt>, maxError = 0): SentFrame => ({
  seq,
  bytes: 1000,
  chunks: 1,
  encoding: 'raw',
  maxError,
  receipt,
});

void describe('run statistics', () => {
  void it('percentile is nearest-rank; NaN when empty; round to digits', () => {
    assert.equal(percentile([5, 1, 3, 2, 4], 50), 3);
    assert.equal(percentile([5, 1, 3, 2, 4], 99), 5);
    assert.equal(percentile([5, 1, 3, 2, 4], 0), 1);
    assert.ok(Number.isNaN(percentile([], 50)));
    assert.equal(round(1.25, 1), 1.3);
    assert.equal(round(2.3456, 3), 2.346);
  });

  void it('counts every outcome once and computes the summary figures', async () => {
    const stats = new RunStats();
    stats.start();
    const settled: string[] = [];
    const onSettled = (outcome: FrameReceipt | Error): void =>
      void settled.push(outcome instanceof Error ? 'lost' : outcome.ok ? 'ok' : 'rejected');
    const ack = (seq: number, latencyMs: number): Promise<FrameReceipt> =>
      Promise.resolve({ seq, ok: true, points: 100, latencyMs, receivedAt: 0 });
    await Promise.all([
      stats.track(frame(0, ack(0, 10)), 100, onSettled),
      stats.track(frame(1, ack(1, 30), 0.002), 100, onSettled),
      stats.track(
        frame(
          2,
          Promise.resolve({
            seq: 2,
            ok: false,
            code: ErrorCodes.FRAME_CHECKSUM,
            message: 'bad',
            latencyMs: 5,
          }),
        ),
        100,
        onSettled,
      ),
      stats.track(
        frame(3, Promise.reject(new PointstreamError(ErrorCodes.FRAME_LOST, 'lost'))),
        100,
        onSettled,
      ),
    ]);
    stats.late();
    stats.finish();
    const f = stats.figures();
    assert.deepEqual([f.framesSent, f.framesAcked, f.framesRejected, f.framesLost], [4, 2, 1, 1]);
    assert.equal(f.bytesSent, 4000);
    assert.equal(f.bytesPerPoint, 10);
    assert.equal(f.maxError, 0.002);
    assert.equal(f.lateFrames, 1);
    // Latencies of acknowledged frames only.
    assert.deepEqual(f.latencyMs, { p50: 10, p99: 30, max: 30 });
    assert.deepEqual(stats.rejections, [
      { seq: 2, code: ErrorCodes.FRAME_CHECKSUM, message: 'bad' },
    ]);
    assert.deepEqual(settled.sort(), ['lost', 'ok', 'ok', 'rejected']);
    assert.deepEqual(stats.figures(), f, 'finished: the figures no longer change');
  });

  void it('with nothing acknowledged the latencies and rate are 0, never NaN', () => {
    const f = new RunStats().figures();
    assert.deepEqual(f.latencyMs, { p50: 0, p99: 0, max: 0 });
    assert.equal(f.achievedHz, 0);
    assert.equal(f.bytesPerPoint, 0);
  });

  void it('pace: frame k is due at start + k / rate; a frame over half a period late counts late', async () => {
    const stats = new RunStats();
    stats.start();
    const t0 = performance.now();
    await pace(stats, { rate: 50, k: 1 }); // due 20 ms after the start
    assert.ok(performance.now() - t0 >= 15);
    assert.equal(stats.figures().lateFrames, 0);
    await new Promise((resolve) => setTimeout(resolve, 60));
    await pace(stats, { rate: 50, k: 2 }); // due at 40 ms, now about 80 ms: late
    assert.equal(stats.figures().lateFrames, 1);
    await pace(stats, { rate: 0, k: 1000 }); // unpaced: never waits, never late
    const controller = new AbortController();
    const waiting = pace(stats, { rate: 1, k: 100, signal: controller.signal });
    controller.abort();
    await waiting; // an abort ends the wait at once
    assert.equal(stats.figures().lateFrames, 1);
  });
});
