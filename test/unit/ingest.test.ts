/**
 * The server's ingest logic (src/server/ingest) over the in-memory channel pair: hello, chunked
 * frames (raw, q16, qrice), plain frames, receipts in order behind decoding, budgets and in-flight
 * limits, the stall sweep, the idle timeout, channel admission and what is abandoned on close.
 * Every malformed input is in ingest-errors.test.ts. The real-WebRTC tests (test/e2e.test.ts and
 * others) are the integration layer above this.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, PointstreamError } from '../../src/errors.js';
import { PROTOCOL_V1 } from '../../src/wire/chunk.js';
import { encodeNpyHeader } from '../../src/wire/npy.js';
import {
  ManualDecoder,
  chunksOf,
  frameOf,
  openIngest,
  outcomes,
  pointsOf,
  sendFrame,
  settle,
  until,
} from './ingest-harness.js';

const bytesOf = (points: Float32Array): Uint8Array =>
  new Uint8Array(points.buffer, points.byteOffset, points.byteLength);

void describe('ingest: frames and receipts', { timeout: 5_000 }, () => {
  void it('greets each channel with a hello that carries the session and its limits', async () => {
    const h = await openIngest({ limits: { maxFrameBytes: 1 << 20, allowNonFinite: true } });
    assert.deepEqual(h.messages[0], {
      type: 'hello',
      session: 'session-1',
      stream: 'robot',
      recording: '/rec/robot/1',
      protocol: PROTOCOL_V1,
      maxFrameBytes: 1 << 20,
      maxPointsPerFrame: h.limits.maxPointsPerFrame,
      maxFramesInReassembly: h.limits.maxFramesInReassembly,
      encodings: [1, 2, 3],
      allowNonFinite: true,
      heartbeatMs: 500,
      fields: true,
    });
    const plain = h.addChannel('');
    await until(() => plain.messages.length > 0);
    assert.equal(plain.messages[0]?.type === 'hello' && plain.messages[0].protocol, '');
    assert.equal(h.ingest.channels, 2);
  });

  void it('reassembles chunked raw frames and answers each with a receipt, in order', async () => {
    const h = await openIngest();
    const sent = [pointsOf(300, 1), pointsOf(1, 2), pointsOf(0, 3), pointsOf(700, 4)];
    sent.forEach((points, seq) => sendFrame(h.client, frameOf(seq, points)));
    await until(() => h.receipts().length === sent.length);
    assert.deepEqual(
      h.receipts().map((r) => [r.seq, r.ok, r.ok && r.points]),
      sent.map((p, seq) => [seq, true, p.length / 3]),
    );
    for (const [seq, points] of sent.entries()) {
      const frame = h.frames[seq];
      assert.ok(frame);
      assert.equal(frame.form, 'chunked');
      assert.equal(frame.encoding, 'raw');
      assert.equal(frame.sessionId, 'session-1');
      assert.equal(frame.stream, 'robot');
      assert.deepEqual(frame.points, points);
      assert.ok(frame.npy && frame.encoded === undefined && frame.crc32 !== undefined);
    }
    const stats = h.ingest.stats();
    assert.equal(stats.framesReceived, 4);
    assert.equal(stats.pointsReceived, 1001);
    assert.equal(stats.protocol, PROTOCOL_V1);
    assert.equal(h.budget.held, 0, 'reassembly memory all released');
  });

  void it('decodes q16 and qrice frames inline when there is no decode pool', async () => {
    const h = await openIngest();
    const points = pointsOf(500, 7);
    sendFrame(h.client, frameOf(0, points, 'q16'));
    sendFrame(h.client, frameOf(1, points, 'qrice'));
    await until(() => h.receipts().length === 2);
    assert.deepEqual(
      h.receipts().map((r) => r.ok),
      [true, true],
    );
    for (const [i, name] of (['q16', 'qrice'] as const).entries()) {
      const frame = h.frames[i];
      assert.ok(frame);
      assert.equal(frame.encoding, name);
      assert.ok(frame.encoded && frame.npy === undefined);
      for (let j = 0; j < points.length; j++)
        assert.ok(Math.abs((frame.points[j] as number) - (points[j] as number)) < 0.01);
    }
    assert.equal(h.budget.held, 0);
  });

  void it('sends receipts in order while earlier frames are in decode, frames included', async () => {
    const decoder = new ManualDecoder();
    const h = await openIngest({ decoder });
    sendFrame(h.client, frameOf(0, pointsOf(200, 1), 'q16'));
    sendFrame(h.client, frameOf(1, pointsOf(100, 2)));
    sendFrame(h.client, frameOf(2, pointsOf(200, 3), 'qrice'));
    const unknown = chunksOf(frameOf(3, pointsOf(300, 4)))[1] as Uint8Array;
    h.client.send(unknown); // a DATA chunk of a frame never started: rejected, in order
    await until(() => decoder.jobs.length === 2);
    await settle();
    assert.equal(h.receipts().length, 0, 'everything waits behind frame 0');
    assert.equal(h.rejected.length, 0);
    decoder.finish(1);
    await settle();
    assert.equal(h.receipts().length, 0, 'frame 2 decoded, still behind frame 0');
    decoder.finish(0);
    await until(() => h.receipts().length === 4);
    assert.deepEqual(
      h.receipts().map((r) => [r.seq, r.ok ? 'ok' : r.code]),
      [
        [0, 'ok'],
        [1, 'ok'],
        [2, 'ok'],
        [3, ErrorCodes.CHUNK_UNKNOWN_FRAME],
      ],
    );
    assert.deepEqual(
      h.frames.map((f) => [f.seq, f.encoding]),
      [
        [0, 'q16'],
        [1, 'raw'],
        [2, 'qrice'],
      ],
    );
    assert.equal(h.budget.held, 0, 'decoded frames released their budget');
  });

  void it("reports a decoder's error as the frame's receipt", async () => {
    const decoder = new ManualDecoder();
    const h = await openIngest({ decoder });
    sendFrame(h.client, frameOf(0, pointsOf(50, 1), 'q16'));
    await until(() => decoder.jobs.length === 1);
    decoder.finish(0, {
      error: new PointstreamError(ErrorCodes.INTERNAL, 'decode worker exited (1)'),
    });
    await until(() => h.receipts().length === 1);
    const receipt = h.receipts()[0];
    assert.equal(receipt?.ok === false && receipt.code, ErrorCodes.INTERNAL);
    assert.match(receipt?.ok === false ? receipt.message : '', /^frame 0: decode worker exited/);
    assert.equal(h.ingest.stats().framesRejected, 1);
    assert.equal(h.endings.length, 0);
  });

  void it('takes plain frames (raw and .npy) as whole messages, numbered by the server', async () => {
    const h = await openIngest({ protocol: '' });
    const raw = pointsOf(100, 1);
    const npyPoints = pointsOf(50, 2);
    const header = encodeNpyHeader([50, 3]);
    const npy = new Uint8Array(header.length + npyPoints.byteLength);
    npy.set(header);
    npy.set(bytesOf(npyPoints), header.length);
    h.client.send(bytesOf(raw));
    h.client.send(npy);
    await until(() => h.receipts().length === 2);
    assert.deepEqual(
      h.receipts().map((r) => [r.seq, r.ok]),
      [
        [0, true],
        [1, true],
      ],
    );
    assert.deepEqual(
      h.frames.map((f) => [f.form, f.pointCount, f.crc32, f.captureTime]),
      [
        ['plain-raw', 100, undefined, undefined],
        ['plain-npy', 50, undefined, undefined],
      ],
    );
    assert.deepEqual(h.frames[1]?.points, npyPoints);
    assert.equal(h.budget.held, 0);
  });

  void it('with buffer reuse, recycles a payload after the listeners unless it was retained', async () => {
    let release: (() => void) | undefined;
    const h = await openIngest({
      reuseBuffers: true,
      onFrame: (frame) => {
        if (frame.seq === 0) release = frame.retain();
      },
    });
    sendFrame(h.client, frameOf(0, pointsOf(400, 1)));
    await until(() => h.frames.length === 1);
    sendFrame(h.client, frameOf(1, pointsOf(400, 2)));
    await until(() => h.frames.length === 2);
    assert.equal(h.pool?.reused, 0, 'frame 0 was retained: frame 1 got a new buffer');
    sendFrame(h.client, frameOf(2, pointsOf(400, 3)));
    await until(() => h.frames.length === 3);
    assert.equal(h.pool?.reused, 1, "frame 1's buffer came back");
    assert.deepEqual(h.frames[0]?.points, pointsOf(400, 1), 'the retained frame kept its points');
    release?.();
    sendFrame(h.client, frameOf(3, pointsOf(400, 4)));
    await until(() => h.frames.length === 4);
    assert.equal(h.pool?.reused, 2, "frame 0's buffer came back once released");
    assert.throws(() => h.frames[2]?.retain(), /after its buffers were reused/);
  });

  void it('ignores text messages from the client (they do not keep the session alive)', async () => {
    const h = await openIngest({ limits: { idleTimeoutMs: 60 } });
    const timer = setInterval(() => h.client.send('hello?'), 10);
    try {
      await until(() => h.endings.length === 1);
    } finally {
      clearInterval(timer);
    }
    assert.equal(h.endings[0]?.code, ErrorCodes.SESSION_CLOSED);
    assert.match(h.endings[0]?.reason ?? '', /^idle for \d+ ms \(limit 60 ms\)$/);
    assert.equal(h.endings[0]?.normal, false);
    await until(() => h.closing() !== undefined);
    assert.equal(h.closing()?.code, ErrorCodes.SESSION_CLOSED);
  });

  void it('frame bytes keep a session alive past the idle timeout', async () => {
    const h = await openIngest({ limits: { idleTimeoutMs: 80 } });
    for (let seq = 0; seq < 6; seq++) {
      sendFrame(h.client, frameOf(seq, pointsOf(10, seq)));
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    assert.equal(h.endings.length, 0, 'not idle while frames arrive');
    await until(() => h.endings.length === 1);
    assert.match(h.endings[0]?.reason ?? '', /^idle/);
  });
});

void describe('ingest: budgets and in-flight limits', { timeout: 5_000 }, () => {
  void it('evicts the oldest unfinished frame when a new one starts with every slot taken', async () => {
    const h = await openIngest({ limits: { maxFramesInReassembly: 2 } });
    const starts = [0, 1, 2].map((seq) => chunksOf(frameOf(seq, pointsOf(300, seq)))[0]);
    for (const start of starts) h.client.send(start as Uint8Array);
    await until(() => h.receipts().length === 1);
    const receipt = h.receipts()[0];
    assert.equal(receipt?.seq, 0);
    assert.equal(receipt?.ok === false && receipt.code, ErrorCodes.FRAME_INCOMPLETE);
    assert.match(receipt?.ok === false ? receipt.message : '', /abandoned unfinished/);
    assert.equal(h.budget.held, 2 * frameOf(0, pointsOf(300)).payloadBytes);
  });

  void it("refuses a frame beyond the session's reassembly budget (PS_ERR_SERVER_MEMORY)", async () => {
    const size = frameOf(0, pointsOf(300)).payloadBytes;
    const h = await openIngest({ budgetBytes: size + 10 });
    const first = chunksOf(frameOf(0, pointsOf(300, 1)));
    h.client.send(first[0] as Uint8Array);
    sendFrame(h.client, frameOf(1, pointsOf(300, 2)));
    await until(() => h.receipts().length === 1);
    const receipt = h.receipts()[0];
    assert.equal(receipt?.seq, 1);
    assert.equal(receipt?.ok === false && receipt.code, ErrorCodes.SERVER_MEMORY);
    for (const chunk of first.slice(1)) h.client.send(chunk);
    await until(() => h.receipts().length === 2);
    assert.equal(h.receipts()[1]?.ok, true, 'the frame within budget completes');
  });

  void it('refuses a plain frame beyond the budget (PS_ERR_SERVER_MEMORY)', async () => {
    const h = await openIngest({ protocol: '', budgetBytes: 1000 });
    h.client.send(bytesOf(pointsOf(100)));
    await until(() => h.receipts().length === 1);
    const receipt = h.receipts()[0];
    assert.equal(receipt?.ok === false && receipt.code, ErrorCodes.SERVER_MEMORY);
    assert.equal(h.budget.held, 0);
  });

  void it('refuses encoded frames beyond maxFramesInDecode, and ends a session that keeps on', async () => {
    const decoder = new ManualDecoder();
    const h = await openIngest({
      decoder,
      limits: { maxFramesInDecode: 1, maxConsecutiveRejections: 3 },
    });
    sendFrame(h.client, frameOf(0, pointsOf(100, 1), 'q16'));
    await until(() => decoder.jobs.length === 1);
    // 500 ms of worker time: the bucket is no longer full, refusals now count as strikes.
    decoder.finish(0, { ms: 500 });
    sendFrame(h.client, frameOf(1, pointsOf(100, 2), 'q16'));
    for (let seq = 2; seq <= 4; seq++) sendFrame(h.client, frameOf(seq, pointsOf(100, seq), 'q16'));
    await until(() => h.endings.length === 1);
    assert.equal(h.endings[0]?.code, ErrorCodes.DECODE_BUDGET);
    assert.match(h.endings[0]?.reason ?? '', /^3 frames over the decode budget/);
    assert.equal(h.endings[0]?.framesLost, 1);
    assert.equal(decoder.framesOverBudget, 3);
    assert.equal(decoder.sessionsClosedOverBudget, 1);
    assert.equal(h.ingest.stats().framesOverBudget, 3);
    assert.equal(h.ingest.stats().decodeMs, 500);
    // The refusals waited behind frame 1's decode; the session's end answers them all in order.
    await until(() => h.closing() !== undefined);
    assert.deepEqual(outcomes(h.messages), [
      [0, true],
      [1, ErrorCodes.FRAME_INCOMPLETE],
      [2, ErrorCodes.DECODE_BUDGET],
      [3, ErrorCodes.DECODE_BUDGET],
      [4, ErrorCodes.DECODE_BUDGET],
      ErrorCodes.DECODE_BUDGET,
    ]);
    decoder.finish(1); // a decode that ends after the session: dropped, its budget released
    assert.equal(h.budget.held, 0);
  });

  void it('refuses complete frames beyond maxFramesInReassembly waiting behind a decode', async () => {
    const decoder = new ManualDecoder();
    const h = await openIngest({ decoder, limits: { maxFramesInReassembly: 2 } });
    sendFrame(h.client, frameOf(0, pointsOf(100, 1), 'q16'));
    for (let seq = 1; seq <= 3; seq++) sendFrame(h.client, frameOf(seq, pointsOf(50, seq)));
    await until(() => decoder.framesOverBudget === 1);
    await settle();
    assert.equal(h.receipts().length, 0, "frame 3's refusal waits its turn");
    decoder.finish(0);
    await until(() => h.receipts().length === 4);
    assert.deepEqual(
      h.receipts().map((r) => [r.seq, r.ok || r.code]),
      [
        [0, true],
        [1, true],
        [2, true],
        [3, ErrorCodes.DECODE_BUDGET],
      ],
    );
  });

  void it('ends the session when more than 64 receipts wait behind one decode', async () => {
    const decoder = new ManualDecoder();
    const h = await openIngest({ decoder, limits: { maxConsecutiveRejections: 1000 } });
    sendFrame(h.client, frameOf(0, pointsOf(100, 1), 'q16'));
    const stray = chunksOf(frameOf(1, pointsOf(300, 1)))[1] as Uint8Array;
    for (let seq = 100; seq < 170; seq++) {
      const chunk = stray.slice();
      new DataView(chunk.buffer).setUint32(4, seq, true);
      h.client.send(chunk);
    }
    await until(() => h.endings.length === 1);
    assert.equal(h.endings[0]?.code, ErrorCodes.DECODE_BUDGET);
    assert.equal(h.endings[0]?.reason, '64 receipts wait behind decoding');
    await until(() => h.closing() !== undefined);
    assert.equal(h.receipts().length, 64, 'the frame in decode and the 63 rejections queued');
  });

  void it('ends the session after maxConsecutiveRejections frames in a row are rejected', async () => {
    const h = await openIngest({ protocol: '', limits: { maxConsecutiveRejections: 3 } });
    h.client.send(new Uint8Array(13));
    h.client.send(new Uint8Array(12)); // one good frame resets the count
    for (let i = 0; i < 3; i++) h.client.send(new Uint8Array(13));
    await until(() => h.endings.length === 1);
    assert.equal(h.endings[0]?.code, ErrorCodes.TOO_MANY_ERRORS);
    assert.equal(h.endings[0]?.reason, '3 frames in a row were rejected');
    await until(() => h.closing() !== undefined);
    assert.equal(h.receipts().length, 5);
    assert.equal(h.closing()?.code, ErrorCodes.TOO_MANY_ERRORS);
  });
});

void describe('ingest: stalls, channels and ending', { timeout: 5_000 }, () => {
  void it('rejects a frame that stalls (PS_ERR_FRAME_INCOMPLETE) and goes on', async () => {
    const h = await openIngest({ limits: { frameStallMs: 40 } });
    const chunks = chunksOf(frameOf(0, pointsOf(300, 1)));
    h.client.send(chunks[0] as Uint8Array);
    const started = performance.now();
    await until(() => h.receipts().length === 1);
    const waited = performance.now() - started;
    assert.ok(waited >= 35 && waited < 1000, `rejected after ${waited} ms`);
    const receipt = h.receipts()[0];
    assert.equal(receipt?.ok === false && receipt.code, ErrorCodes.FRAME_INCOMPLETE);
    assert.match(receipt?.ok === false ? receipt.message : '', /received no chunk for 40 ms/);
    assert.equal(h.budget.held, 0);
    for (const chunk of chunks.slice(1)) h.client.send(chunk); // its late chunks are dropped
    sendFrame(h.client, frameOf(1, pointsOf(10, 2)));
    await until(() => h.receipts().length === 2);
    assert.equal(h.receipts()[1]?.ok, true);
    assert.equal(h.endings.length, 0);
  });

  void it('refuses a channel of another protocol and channels beyond maxChannelsPerSession', async () => {
    const h = await openIngest({ limits: { maxChannelsPerSession: 2 } });
    const other = h.addChannel('pointstream/2');
    assert.equal(other.added, false);
    await until(() => other.messages.length === 1);
    assert.equal(
      other.messages[0]?.type === 'closing' && other.messages[0].code,
      ErrorCodes.PROTOCOL_UNSUPPORTED,
    );
    assert.equal(h.addChannel('').added, true);
    const third = h.addChannel(PROTOCOL_V1);
    assert.equal(third.added, false);
    await until(() => third.messages.length === 1);
    assert.equal(
      third.messages[0]?.type === 'closing' && third.messages[0].code,
      ErrorCodes.TOO_MANY_CHANNELS,
    );
    assert.equal(h.ingest.channels, 2);
    assert.equal(h.endings.length, 0, 'refusing a channel does not end the session');
  });

  void it('on session end, answers frames mid-way and in decode, then says closing', async () => {
    const decoder = new ManualDecoder();
    const h = await openIngest({ decoder });
    sendFrame(h.client, frameOf(0, pointsOf(100, 1), 'q16'));
    sendFrame(h.client, frameOf(1, pointsOf(100, 2)));
    h.client.send(chunksOf(frameOf(2, pointsOf(300, 3)))[0] as Uint8Array);
    await until(() => decoder.jobs.length === 1 && h.budget.held > 0);
    await settle();
    const ended = h.ingest.close(ErrorCodes.SESSION_CLOSED, 'server shutting down');
    assert.equal(ended.framesLost, 3);
    assert.equal(ended.channels.length, 1);
    assert.equal(ended.channels[0]?.opened(), true);
    for (const { channel } of ended.channels) channel.close();
    await until(() => h.closing() !== undefined);
    assert.deepEqual(outcomes(h.messages), [
      [0, ErrorCodes.FRAME_INCOMPLETE],
      [1, ErrorCodes.FRAME_INCOMPLETE],
      [2, ErrorCodes.FRAME_INCOMPLETE],
      ErrorCodes.SESSION_CLOSED,
    ]);
    assert.equal(h.closing()?.message, 'server shutting down');
    await ended.channels[0]?.closed;
    decoder.finish(0);
    assert.equal(h.budget.held, 0, 'everything released, the late decode too');
    assert.deepEqual(h.ingest.close(ErrorCodes.SESSION_CLOSED, 'again'), {
      framesLost: 0,
      channels: [],
    });
  });

  void it('ends normally when the client closes its last channel, unless frames were lost', async () => {
    const clean = await openIngest();
    sendFrame(clean.client, frameOf(0, pointsOf(10)));
    await until(() => clean.receipts().length === 1);
    clean.client.close();
    await until(() => clean.endings.length === 1);
    assert.deepEqual(clean.endings[0], {
      code: ErrorCodes.SESSION_CLOSED,
      reason: 'client closed',
      framesLost: 0,
      normal: true,
    });

    const cut = await openIngest();
    const second = cut.addChannel('');
    cut.client.send(chunksOf(frameOf(0, pointsOf(300)))[0] as Uint8Array);
    await settle();
    cut.client.close();
    await until(() => cut.ingest.channels === 1);
    assert.equal(cut.endings.length, 0, 'one channel left: the session goes on');
    assert.equal(cut.budget.held, 0, "the closed channel's frame was released");
    second.client.close();
    await until(() => cut.endings.length === 1);
    assert.equal(cut.endings[0]?.normal, true);
  });

  void it('counts a frame cut by the channel closing as lost (not a normal end)', async () => {
    const h = await openIngest();
    h.client.send(chunksOf(frameOf(0, pointsOf(300)))[0] as Uint8Array);
    await settle();
    h.client.close();
    await until(() => h.endings.length === 1);
    assert.deepEqual(h.endings[0], {
      code: ErrorCodes.SESSION_CLOSED,
      reason: 'client closed',
      framesLost: 1,
      normal: false,
    });
    assert.equal(h.budget.held, 0);
  });
});
