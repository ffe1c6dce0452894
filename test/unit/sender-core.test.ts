import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes } from '../../src/errors.js';
import type { PointstreamError } from '../../src/errors.js';
import { FrameSender } from '../../src/sender/frame-sender.js';
import type { FrameSenderOptions } from '../../src/sender/frame-sender.js';
import type { ChannelMessage } from '../../src/transport/channel.js';
import { encodeServerMessage } from '../../src/wire/control.js';
import { encodePoints } from '../../src/wire/encodings/index.js';
import { createChannelPair } from '../../src/transport/memory.js';
import { senderCases } from '../support/sender-behaviour.js';
import type { SenderEnv } from '../support/sender-behaviour.js';

/** The shared sender behaviour over the in-memory channel pair (src/transport/memory.ts). */
const memoryEnv: SenderEnv = {
  async connect() {
    const pair = createChannelPair({ protocol: 'pointstream/1' });
    while (!pair.a.isOpen()) await new Promise((resolve) => setTimeout(resolve, 0));
    return {
      sender: pair.a,
      server: pair.b,
      dispose: () => {
        pair.a.close();
        return Promise.resolve();
      },
    };
  },
};

void describe('frame sender core over the in-memory pair', { timeout: 10_000 }, () => {
  for (const testCase of senderCases) void it(testCase.name, () => testCase.run(memoryEnv));
});

/** A sender over a fresh in-memory pair, greeted by the test's server end. */
async function greeted(options: Partial<FrameSenderOptions> = {}) {
  const { sender: channel, server } = await memoryEnv.connect();
  const sender = new FrameSender({ ...options, channel });
  const received: ChannelMessage[] = [];
  server.listen({ message: (data) => received.push(data) });
  server.send(
    encodeServerMessage({
      type: 'hello',
      session: 's',
      protocol: 'pointstream/1',
      maxFrameBytes: 1 << 26,
      maxPointsPerFrame: 1 << 22,
      maxFramesInReassembly: 2,
      encodings: [1],
    }),
  );
  await sender.ready();
  return { sender, server, received };
}

void describe('frame sender core: options, cancellation, pre-encoded frames', () => {
  void it('refuses bad options by name, before anything is sent', () => {
    const { a } = createChannelPair();
    for (const [options, field] of [
      [{ maxFramesInFlight: 0 }, 'maxFramesInFlight'],
      [{ highWaterMark: 1.5 }, 'highWaterMark'],
      [{ lowWaterMark: 8, highWaterMark: 4 }, 'lowWaterMark'],
      [{ maxMessageBytes: 100 }, 'maxMessageBytes'],
      [{ firstSeq: -1 }, 'firstSeq'],
      [{ precision: 0 }, 'precision'],
    ] as const) {
      assert.throws(
        () => new FrameSender({ ...options, channel: a }),
        (error: PointstreamError) =>
          error.code === ErrorCodes.INVALID_OPTION && error.message.includes(`"${field}"`),
        field,
      );
    }
    // undefined leaves the default (withDefaults), as an unset CLI flag must.
    assert.doesNotThrow(() => new FrameSender({ channel: a, maxFramesInFlight: undefined }));
  });

  void it('ready() rejects with the reason when the sender ends before the hello', async () => {
    const { sender: channel } = await memoryEnv.connect();
    const sender = new FrameSender({ channel });
    const ready = sender.ready();
    sender.end(ErrorCodes.CONNECT_TIMEOUT, 'no hello within 5 ms');
    await assert.rejects(ready, { code: ErrorCodes.CONNECT_TIMEOUT });
  });

  void it('an aborted signal cancels the wait for a slot; nothing is sent for that frame', async () => {
    const { sender, server, received } = await greeted({ maxFramesInFlight: 1 });
    await sender.send(new Float32Array(3));
    const controller = new AbortController();
    const waiting = sender.send(new Float32Array(3), { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 5)); // it waits for a slot
    controller.abort(new Error('stop'));
    await assert.rejects(waiting, /stop/);
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(received.length, 1);
    assert.equal(sender.framesInFlight, 1);
    // The next send waits, and the one receipt wakes it (not the cancelled send's waiter).
    const next = sender.send(new Float32Array(3));
    await new Promise((resolve) => setTimeout(resolve, 5));
    server.send(
      encodeServerMessage({ type: 'receipt', seq: 0, ok: true, points: 1, receivedAt: 0 }),
    );
    assert.equal((await next).seq, 1);
    sender.end(ErrorCodes.SESSION_CLOSED, 'done');
  });

  void it('sends points encoded elsewhere (a worker) as they are, and refuses an encoding the server lacks', async () => {
    const { sender, received } = await greeted();
    const encoded = encodePoints(new Float32Array([1, 2, 3, 4, 5, 6]), 'raw');
    const sent = await sender.send(encoded, { captureTime: 1234 });
    assert.equal(sent.encoding, 'raw');
    assert.equal(sent.bytes, encoded.bytes.length);
    const q16 = encodePoints(new Float32Array([1, 2, 3, 4, 5, 6]), 'q16');
    await assert.rejects(sender.send(q16), { code: ErrorCodes.ENCODING_UNSUPPORTED });
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(received.length, 1);
    sender.end(ErrorCodes.SESSION_CLOSED, 'done');
  });
});
