/**
 * The confirm step of the ingest path (`serve --bus`: a frame's receipt waits for the bus's acks)
 * over the in-memory channel pair: `ok` only after the confirmation, a failure answered with its
 * code (and not held against the client), receipts in order whatever order confirmations come in,
 * rejections behind waiting frames, buffers and budget held until the answer, and what a session
 * that ends meanwhile does. The bus itself is test/bus-publish.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, PointstreamError } from '../../src/errors.js';
import { MAX_CONFIRMING } from '../../src/server/ingest/confirms.js';
import type { ReceivedFrame } from '../../src/server/types.js';
import {
  ManualDecoder,
  frameOf,
  openIngest,
  outcomes,
  pointsOf,
  sendFrame,
  settle,
  until,
} from './ingest-harness.js';

/** A confirm step the test settles by hand, frame by frame. */
class ManualConfirm {
  readonly calls: {
    frame: ReceivedFrame;
    points: Float32Array;
    resolve: () => void;
    reject: (error: unknown) => void;
  }[] = [];

  readonly confirm = (frame: ReceivedFrame): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      // A copy taken now, to compare with the buffers when the answer comes.
      this.calls.push({ frame, points: frame.points.slice(), resolve, reject });
    });

  resolve(index: number): void {
    this.call(index).resolve();
  }

  reject(index: number, error: unknown): void {
    this.call(index).reject(error);
  }

  call(index: number): ManualConfirm['calls'][number] {
    const call = this.calls[index];
    if (call === undefined) throw new Error(`no confirmation ${index}`);
    return call;
  }
}

const busDown = (): PointstreamError =>
  new PointstreamError(ErrorCodes.BUS_UNAVAILABLE, 'connection to the bus lost');

void describe('ingest: the confirm step (the bus)', { timeout: 5_000 }, () => {
  void it('sends ok and hands the frame on only once it is confirmed', async () => {
    const bus = new ManualConfirm();
    const h = await openIngest({ confirm: bus.confirm });
    sendFrame(h.client, frameOf(0, pointsOf(300, 1)));
    await until(() => bus.calls.length === 1);
    await settle();
    assert.equal(h.receipts().length, 0, 'no receipt before the bus confirmed');
    assert.equal(h.frames.length, 0, 'no frame hook before the bus confirmed');
    assert.equal(bus.call(0).frame.seq, 0);
    bus.resolve(0);
    await until(() => h.receipts().length === 1);
    assert.deepEqual(outcomes(h.messages), [[0, true]]);
    assert.equal(h.frames.length, 1);
    assert.equal(h.ingest.stats().framesReceived, 1);
    assert.equal(h.budget.held, 0);
  });

  void it('answers a frame the bus did not confirm with the bus code, and the session stays up', async () => {
    const bus = new ManualConfirm();
    const h = await openIngest({ confirm: bus.confirm });
    // More failures than maxConsecutiveRejections (16): an outage is not the client's doing.
    const count = h.limits.maxConsecutiveRejections + 4;
    for (let seq = 0; seq < count; seq++) {
      sendFrame(h.client, frameOf(seq, pointsOf(50, seq)));
      await until(() => bus.calls.length === seq + 1);
      bus.reject(seq, busDown());
      await until(() => h.receipts().length === seq + 1);
    }
    const receipt = h.receipts()[0];
    assert.equal(receipt?.ok, false);
    assert.equal(receipt?.ok === false ? receipt.code : '', ErrorCodes.BUS_UNAVAILABLE);
    assert.match(
      receipt?.ok === false ? receipt.message : '',
      /^frame 0: connection to the bus lost/,
    );
    assert.equal(h.rejected.length, count);
    assert.ok(h.rejected.every((r) => r.code === ErrorCodes.BUS_UNAVAILABLE));
    assert.equal(h.frames.length, 0, 'an unconfirmed frame is not handed on');
    assert.equal(h.endings.length, 0, 'the session survives the outage');
    assert.equal(h.ingest.stats().framesRejected, count);
    // The bus is back: the next frame is acknowledged.
    sendFrame(h.client, frameOf(count, pointsOf(50, 1)));
    await until(() => bus.calls.length === count + 1);
    bus.resolve(count);
    await until(() => h.receipts().length === count + 1);
    assert.deepEqual(outcomes(h.messages).at(-1), [count, true]);
    assert.equal(h.budget.held, 0);
  });

  void it('a confirm step that fails with no code gives PS_ERR_BUS_UNAVAILABLE', async () => {
    const bus = new ManualConfirm();
    const h = await openIngest({ confirm: bus.confirm });
    sendFrame(h.client, frameOf(0, pointsOf(50, 1)));
    await until(() => bus.calls.length === 1);
    bus.reject(0, new Error('timeout'));
    await until(() => h.receipts().length === 1);
    assert.deepEqual(outcomes(h.messages), [[0, ErrorCodes.BUS_UNAVAILABLE]]);
  });

  void it('keeps receipts in order when a later frame is confirmed first', async () => {
    const bus = new ManualConfirm();
    const h = await openIngest({ confirm: bus.confirm });
    sendFrame(h.client, frameOf(0, pointsOf(200, 1)));
    sendFrame(h.client, frameOf(1, pointsOf(200, 2)));
    sendFrame(h.client, frameOf(2, pointsOf(200, 3)));
    // All three are on their way to the bus at once (pipelined), none waits for another.
    await until(() => bus.calls.length === 3);
    bus.resolve(2);
    bus.reject(1, busDown());
    await settle();
    assert.equal(h.receipts().length, 0, 'frames 1 and 2 are answered, still behind frame 0');
    bus.resolve(0);
    await until(() => h.receipts().length === 3);
    assert.deepEqual(outcomes(h.messages), [
      [0, true],
      [1, ErrorCodes.BUS_UNAVAILABLE],
      [2, true],
    ]);
    assert.deepEqual(
      h.frames.map((f) => f.seq),
      [0, 2],
    );
    assert.equal(h.budget.held, 0);
  });

  void it('answers a rejected frame behind the frames waiting for the bus', async () => {
    const bus = new ManualConfirm();
    const h = await openIngest({ confirm: bus.confirm });
    sendFrame(h.client, frameOf(0, pointsOf(100, 1)));
    await until(() => bus.calls.length === 1);
    const bad = pointsOf(100, 2);
    bad[7] = Number.NaN;
    sendFrame(h.client, frameOf(1, bad));
    await settle();
    assert.equal(h.receipts().length, 0, "frame 1's rejection waits for frame 0's receipt");
    bus.resolve(0);
    await until(() => h.receipts().length === 2);
    assert.deepEqual(outcomes(h.messages), [
      [0, true],
      [1, ErrorCodes.FRAME_NON_FINITE],
    ]);
    assert.equal(bus.calls.length, 1, 'a rejected frame never goes to the bus');
  });

  void it('holds the buffers and the budget until the answer, then releases them', async () => {
    const bus = new ManualConfirm();
    const h = await openIngest({ confirm: bus.confirm, reuseBuffers: true });
    sendFrame(h.client, frameOf(0, pointsOf(400, 1)));
    await until(() => bus.calls.length === 1);
    const held = bus.call(0).frame.byteLength;
    assert.equal(h.budget.held, held, 'the frame counts in the budget while the bus has it');
    // Frame 1 arrives meanwhile: frame 0's buffer is held, so it gets a new one.
    sendFrame(h.client, frameOf(1, pointsOf(400, 2)));
    await until(() => bus.calls.length === 2);
    assert.equal(h.pool?.reused, 0, "frame 0's buffer is held while the bus has it");
    assert.deepEqual(bus.call(0).frame.points, bus.call(0).points, 'frame 0 kept its points');
    bus.resolve(0);
    bus.reject(1, busDown());
    await until(() => h.receipts().length === 2);
    assert.equal(h.budget.held, 0);
    const idle = h.pool?.idleBytes ?? 0;
    assert.ok(idle >= 2 * held, `both buffers went back to the pool (idle ${idle})`);
    sendFrame(h.client, frameOf(2, pointsOf(400, 3)));
    await until(() => bus.calls.length === 3);
    assert.equal(h.pool?.reused, 1, 'frame 2 reused a released buffer');
    assert.throws(() => bus.call(0).frame.retain(), /after its buffers were reused/);
    bus.resolve(2);
    await until(() => h.receipts().length === 3);
  });

  void it('confirms decoded frames in order behind decoding', async () => {
    const bus = new ManualConfirm();
    const decoder = new ManualDecoder();
    const h = await openIngest({ confirm: bus.confirm, decoder });
    sendFrame(h.client, frameOf(0, pointsOf(300, 1), 'q16'));
    sendFrame(h.client, frameOf(1, pointsOf(300, 2)));
    await until(() => decoder.jobs.length === 1);
    await settle();
    assert.equal(bus.calls.length, 0, 'frame 1 waits for frame 0 to be decoded and published');
    decoder.finish(0);
    await until(() => bus.calls.length === 2);
    assert.deepEqual(
      bus.calls.map((c) => [c.frame.seq, c.frame.encoding]),
      [
        [0, 'q16'],
        [1, 'raw'],
      ],
    );
    const decoded = bus.call(0).frame;
    assert.equal(
      h.budget.held,
      decoded.byteLength + decoded.points.byteLength + bus.call(1).frame.byteLength,
    );
    bus.resolve(1);
    bus.resolve(0);
    await until(() => h.receipts().length === 2);
    assert.deepEqual(outcomes(h.messages), [
      [0, true],
      [1, true],
    ]);
    assert.equal(h.budget.held, 0);
  });

  void it('refuses a frame beyond the frames that may wait for the bus', async () => {
    const bus = new ManualConfirm();
    const h = await openIngest({ confirm: bus.confirm });
    for (let seq = 0; seq <= MAX_CONFIRMING; seq++)
      sendFrame(h.client, frameOf(seq, pointsOf(10, seq)));
    await until(() => bus.calls.length === MAX_CONFIRMING);
    await settle();
    assert.equal(bus.calls.length, MAX_CONFIRMING, 'the frame beyond them never went to the bus');
    for (let i = 0; i < MAX_CONFIRMING; i++) bus.resolve(i);
    await until(() => h.receipts().length === MAX_CONFIRMING + 1);
    assert.deepEqual(outcomes(h.messages).at(-1), [MAX_CONFIRMING, ErrorCodes.BUS_UNAVAILABLE]);
    assert.deepEqual(h.rejected, [{ seq: MAX_CONFIRMING, code: ErrorCodes.BUS_UNAVAILABLE }]);
  });

  void it('a session that ends answers the frames waiting for the bus, and drops their late answers', async () => {
    const bus = new ManualConfirm();
    const h = await openIngest({ confirm: bus.confirm, reuseBuffers: true });
    sendFrame(h.client, frameOf(0, pointsOf(200, 1)));
    sendFrame(h.client, frameOf(1, pointsOf(200, 2)));
    await until(() => bus.calls.length === 2);
    bus.resolve(1);
    await settle();
    const ended = h.ingest.close(ErrorCodes.SESSION_CLOSED, 'server shutting down');
    assert.equal(ended.framesLost, 2);
    await until(() => outcomes(h.messages).length === 3);
    assert.deepEqual(outcomes(h.messages), [
      [0, ErrorCodes.FRAME_INCOMPLETE],
      [1, ErrorCodes.FRAME_INCOMPLETE],
      ErrorCodes.SESSION_CLOSED,
    ]);
    assert.equal(h.budget.held, bus.call(0).frame.byteLength, "frame 0's answer is still due");
    bus.resolve(0);
    await settle();
    assert.equal(h.budget.held, 0, 'released once the bus answered');
    assert.equal(h.frames.length, 0);
    assert.equal(outcomes(h.messages).length, 3, 'nothing sent after the end');
  });
});
