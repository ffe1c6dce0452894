import { ErrorCodes } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import { FrameSender } from '../../src/sender/frame-sender.js';
import type { FrameSenderOptions } from '../../src/sender/frame-sender.js';
import type { FrameReceipt, SenderEnd } from '../../src/sender/types.js';
import type { Channel, ChannelHandlers, ChannelMessage } from '../../src/transport/channel.js';
import { PROTOCOL_V1 } from '../../src/wire/chunk.js';
import { CLIENT_HEARTBEAT_TEXT, encodeServerMessage } from '../../src/wire/control.js';
import type { HelloMessage } from '../../src/wire/control.js';

/**
 * The frame sender core's behaviour, written once and run against every channel adapter: the
 * in-memory pair (test/unit/sender-core.test.ts), node-datachannel on loopback
 * (test/sender-channels.test.ts) and RTCDataChannel in Chromium (test/browser-sender-core.test.ts,
 * which bundles this file). The test plays the server end of the channel. Browser-safe: no Node
 * imports, its own tiny assert.
 */

/** Two open channels: what `sender` sends, `server` receives, and back. */
export interface ChannelEnds {
  readonly sender: Channel;
  readonly server: Channel;
  /** Releases both ends (and their connection). */
  dispose(): Promise<void>;
}

/** What a case needs from the adapter under test. */
export interface SenderEnv {
  /** A fresh pair of open channels. */
  connect(): Promise<ChannelEnds>;
}

export interface SenderCase {
  readonly name: string;
  run(env: SenderEnv): Promise<void>;
}

class AssertionFailed extends Error {
  override name = 'AssertionFailed';
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new AssertionFailed(message);
}

function equal<T>(actual: T, expected: T, what: string): void {
  check(
    Object.is(actual, expected),
    `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`,
  );
}

async function rejectsWith(
  promise: Promise<unknown>,
  code: ErrorCode,
  what: string,
): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    equal((error as { code?: string }).code, code, `${what} rejects with`);
    return error as Error;
  }
  throw new AssertionFailed(`${what} resolved; expected ${code}`);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new AssertionFailed(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

const HELLO: HelloMessage = {
  type: 'hello',
  session: 'test-session',
  stream: 'test-stream',
  protocol: PROTOCOL_V1,
  maxFrameBytes: 64 * 1024 * 1024,
  maxPointsPerFrame: 5_000_000,
  maxFramesInReassembly: 2,
  encodings: [1, 2, 3],
};

/** The server's end, as the tests play it: counts what arrives, answers as told. */
class FakeServer {
  readonly #channel: Channel;
  bytes = 0;
  chunks = 0;
  closed = false;
  /** Text messages from the sender (its request for heartbeats). */
  readonly texts: string[] = [];

  constructor(channel: Channel) {
    this.#channel = channel;
    channel.listen({
      message: (data: ChannelMessage) => {
        if (typeof data === 'string') {
          this.texts.push(data);
          return;
        }
        this.bytes += data.byteLength;
        this.chunks++;
      },
      closed: () => (this.closed = true),
    });
  }

  hello(overrides: Partial<HelloMessage> = {}): void {
    this.#channel.send(encodeServerMessage({ ...HELLO, ...overrides }));
  }

  ack(seq: number, points: number, receivedAt = 1_700_000_000_000): void {
    this.#channel.send(encodeServerMessage({ type: 'receipt', seq, ok: true, points, receivedAt }));
  }

  reject(seq: number, code: ErrorCode, message: string): void {
    this.#channel.send(
      encodeServerMessage({
        type: 'receipt',
        seq,
        ok: false,
        receivedAt: Date.now(),
        code,
        message,
      }),
    );
  }

  heartbeat(): void {
    this.#channel.send(encodeServerMessage({ type: 'heartbeat' }));
  }

  closing(code: ErrorCode, message: string): void {
    this.#channel.send(encodeServerMessage({ type: 'closing', code, message }));
  }

  close(): void {
    this.#channel.close();
  }
}

/**
 * A channel that records, at each send, the buffer level the sender last saw (its own
 * `bufferedAmount()` call, or the level when `drained` was reported) and whether it paused since
 * the send before. What the sender saw, not a fresh reading: libdatachannel accounts a send's
 * bytes on its own thread, so a reading taken just after the sender's check can already include
 * a chunk sent before it (one CI run under load read 80 KiB right after the sender saw 64 KiB).
 */
class SpyChannel implements Channel {
  readonly #inner: Channel;
  /** The buffer level the sender saw before each `send`, and whether it paused since the send before. */
  readonly sends: { buffered: number; afterPause: boolean }[] = [];
  #paused = false;
  #seen = 0;
  readonly #highWaterMark: number;

  constructor(inner: Channel, highWaterMark: number) {
    this.#inner = inner;
    this.#highWaterMark = highWaterMark;
  }

  get label(): string {
    return this.#inner.label;
  }
  get protocol(): string {
    return this.#inner.protocol;
  }
  isOpen(): boolean {
    return this.#inner.isOpen();
  }
  bufferedAmount(): number {
    const amount = this.#inner.bufferedAmount();
    this.#seen = amount;
    if (amount > this.#highWaterMark) this.#paused = true;
    return amount;
  }
  maxMessageSize(): number {
    return this.#inner.maxMessageSize();
  }
  setLowWaterMark(bytes: number): void {
    this.#inner.setLowWaterMark(bytes);
  }
  send(data: ChannelMessage): void {
    this.sends.push({ buffered: this.#seen, afterPause: this.#paused });
    this.#paused = false;
    this.#inner.send(data);
  }
  close(): void {
    this.#inner.close();
  }
  listen(handlers: Partial<ChannelHandlers>): void {
    const { drained } = handlers;
    this.#inner.listen({
      ...handlers,
      drained: () => {
        this.#seen = this.#inner.bufferedAmount();
        drained?.();
      },
    });
  }
}

interface Rig {
  readonly sender: FrameSender;
  readonly server: FakeServer;
  readonly receipts: FrameReceipt[];
  readonly ends: (SenderEnd & { serverCloses: boolean })[];
  readonly spy: SpyChannel;
}

/** A sender over a fresh pair, greeted and ready; disposed after `body`. */
async function withSender(
  env: SenderEnv,
  options: Omit<FrameSenderOptions, 'channel'>,
  body: (rig: Rig) => Promise<void>,
  hello: Partial<HelloMessage> = {},
): Promise<void> {
  const ends = await env.connect();
  try {
    const spy = new SpyChannel(ends.sender, options.highWaterMark ?? Infinity);
    const server = new FakeServer(ends.server);
    const receipts: FrameReceipt[] = [];
    const closed: (SenderEnd & { serverCloses: boolean })[] = [];
    const sender = new FrameSender({
      ...options,
      channel: spy,
      hooks: { receipt: (r) => receipts.push(r), closed: (end) => closed.push(end) },
    });
    server.hello(hello);
    await sender.ready();
    equal(sender.hello?.session, 'test-session', 'hello session');
    try {
      await body({ sender, server, receipts, ends: closed, spy });
    } finally {
      sender.end(ErrorCodes.SESSION_CLOSED, 'test over');
    }
  } finally {
    await ends.dispose();
  }
}

/** `n` points, x y z interleaved, all finite. */
const points = (n: number): Float32Array => new Float32Array(n * 3).map((_, i) => (i % 97) * 0.01);

export const senderCases: readonly SenderCase[] = [
  {
    name: 'a receipt resolves with the server verdict, latency and receivedAt',
    run: (env) =>
      withSender(env, {}, async ({ sender, server, receipts }) => {
        const sent = await sender.send(points(1000));
        equal(sent.seq, 0, 'first seq');
        equal(sent.encoding, 'raw', 'encoding');
        equal(sent.bytes, 128 + 12_000, 'payload bytes (.npy header + points)');
        await waitFor(() => server.bytes >= sent.bytes, 'the frame to arrive');
        server.ack(0, 1000, 1_700_000_000_123);
        const receipt = await sent.receipt;
        check(receipt.ok, 'receipt ok');
        equal(receipt.points, 1000, 'points');
        equal(receipt.receivedAt, 1_700_000_000_123, 'receivedAt');
        check(receipt.latencyMs >= 0, 'latency measured');
        equal(receipts.length, 1, 'receipt hook calls');
        equal(sender.framesInFlight, 0, 'in flight after the receipt');
      }),
  },
  {
    name: 'a rejection receipt resolves ok: false with the code and message',
    run: (env) =>
      withSender(env, {}, async ({ sender, server }) => {
        const sent = await sender.send(points(10));
        server.reject(sent.seq, ErrorCodes.FRAME_CHECKSUM, 'bad crc');
        const receipt = await sent.receipt;
        check(!receipt.ok, 'receipt not ok');
        equal(receipt.code, ErrorCodes.FRAME_CHECKSUM, 'code');
        equal(receipt.message, 'bad crc', 'message');
        equal(sender.stats.framesRejected, 1, 'rejected count');
      }),
  },
  {
    name: 'a frame without a receipt in time is lost (PS_ERR_FRAME_LOST) and frees its slot',
    run: (env) =>
      withSender(env, { receiptTimeoutMs: 50, maxFramesInFlight: 1 }, async ({ sender }) => {
        const first = await sender.send(points(10));
        const error = await rejectsWith(first.receipt, ErrorCodes.FRAME_LOST, 'the receipt');
        check(/within 50 ms/.test(error.message), `message names the timeout: ${error.message}`);
        // The slot is free again: the next frame goes out.
        const second = await sender.send(points(10));
        equal(second.seq, 1, 'next seq');
        equal(sender.stats.framesLost, 1, 'lost count');
        equal(sender.ended, undefined, 'the sender goes on');
      }),
  },
  {
    name: 'the in-flight bound holds: a send waits for a receipt',
    run: (env) =>
      withSender(env, { maxFramesInFlight: 2 }, async ({ sender, server }) => {
        await sender.send(points(10));
        await sender.send(points(10));
        equal(sender.framesInFlight, 2, 'in flight');
        let thirdSent = false;
        const third = sender.send(points(10)).then((frame) => {
          thirdSent = true;
          return frame;
        });
        await sleep(50);
        check(!thirdSent, 'the third frame waits for a slot');
        equal(server.chunks, 2, 'chunks on the wire while waiting');
        server.ack(0, 10);
        const frame = await third;
        equal(frame.seq, 2, 'third seq');
        check(sender.framesInFlight <= 2, 'never more than the bound in flight');
        server.ack(1, 10);
        server.ack(2, 10);
        await sender.flush();
        equal(sender.framesInFlight, 0, 'flushed');
      }),
  },
  {
    name: 'backpressure: sending pauses above the high-water mark and resumes at the low',
    run: (env) => {
      const highWaterMark = 64 * 1024;
      const lowWaterMark = 16 * 1024;
      return withSender(
        env,
        { highWaterMark, lowWaterMark, maxMessageBytes: 16 * 1024 },
        async ({ sender, server, spy }) => {
          // 2.4 MB in 16 KiB chunks: far more than the buffer may hold.
          const sent = await sender.send(points(200_000));
          check(sent.chunks > 100, `many chunks (${sent.chunks})`);
          const pauses = spy.sends.filter((send) => send.afterPause).length;
          check(pauses > 0, 'sending paused at least once');
          spy.sends.forEach(({ buffered, afterPause }, i) => {
            check(buffered <= highWaterMark, `chunk ${i} sent with ${buffered} bytes buffered`);
            // After a pause the next chunk leaves only once the buffer is down to the low mark.
            if (afterPause)
              check(buffered <= lowWaterMark, `chunk ${i} resumed at ${buffered} bytes buffered`);
          });
          await waitFor(() => server.bytes >= sent.bytes, 'the frame to arrive');
          equal(server.chunks, sent.chunks, 'every chunk arrived');
        },
      );
    },
  },
  {
    name: '`closing` from the server ends the sender with its code; pending frames are lost',
    run: (env) =>
      withSender(env, {}, async ({ sender, server, ends }) => {
        const sent = await sender.send(points(10));
        server.closing(ErrorCodes.SHUTTING_DOWN, 'bye');
        await rejectsWith(sent.receipt, ErrorCodes.FRAME_LOST, 'the pending receipt');
        equal(sender.ended?.code, ErrorCodes.SHUTTING_DOWN, 'end code');
        equal(ends.length, 1, 'closed hook calls');
        equal(ends[0]?.serverCloses, true, 'the server closes the channel');
        await rejectsWith(sender.send(points(10)), ErrorCodes.SHUTTING_DOWN, 'a later send');
      }),
  },
  {
    name: 'the channel closing fails pending frames and ends the sender (PS_ERR_CHANNEL_CLOSED)',
    run: (env) =>
      withSender(env, {}, async ({ sender, server, ends }) => {
        const sent = await sender.send(points(10));
        server.close();
        await rejectsWith(sent.receipt, ErrorCodes.FRAME_LOST, 'the pending receipt');
        await sender.channelClosed;
        equal(sender.ended?.code, ErrorCodes.CHANNEL_CLOSED, 'end code');
        equal(ends[0]?.serverCloses, false, 'nobody else closes it');
        equal(sender.framesInFlight, 0, 'nothing in flight');
        await rejectsWith(sender.send(points(10)), ErrorCodes.CHANNEL_CLOSED, 'a later send');
      }),
  },
  {
    name: 'stats add up: sent = acked + rejected + lost, bytes counted',
    run: (env) =>
      withSender(
        env,
        { receiptTimeoutMs: 100, maxFramesInFlight: 4 },
        async ({ sender, server }) => {
          const frames = [];
          for (let i = 0; i < 4; i++) frames.push(await sender.send(points(100 + i)));
          server.ack(0, 100);
          server.reject(1, ErrorCodes.FRAME_NON_FINITE, 'nan');
          server.ack(3, 103);
          // Frame 2 gets no receipt: lost after 100 ms.
          await Promise.allSettled(frames.map((frame) => frame.receipt));
          const stats = sender.stats;
          equal(stats.framesSent, 4, 'sent');
          equal(stats.framesAcked, 2, 'acked');
          equal(stats.framesRejected, 1, 'rejected');
          equal(stats.framesLost, 1, 'lost');
          equal(
            stats.bytesSent,
            frames.reduce((sum, frame) => sum + frame.bytes, 0),
            'bytes',
          );
          equal(
            stats.framesAcked + stats.framesRejected + stats.framesLost,
            stats.framesSent,
            'every frame has one outcome',
          );
        },
      ),
  },
  {
    name: 'frames beyond the server limits are refused before sending',
    run: (env) =>
      withSender(
        env,
        {},
        async ({ sender, server }) => {
          await rejectsWith(sender.send(points(101)), ErrorCodes.FRAME_TOO_MANY_POINTS, 'send');
          const nan = points(10);
          nan[4] = Number.NaN;
          await rejectsWith(sender.send(nan), ErrorCodes.FRAME_NON_FINITE, 'a NaN frame');
          await sleep(20);
          equal(server.chunks, 0, 'nothing sent');
        },
        { maxPointsPerFrame: 100 },
      ),
  },
  {
    name: 'liveness: heartbeats keep the sender alive; silence ends it with PS_ERR_PEER_SILENT',
    run: (env) =>
      withSender(
        env,
        { livenessTimeoutMs: 400 },
        async ({ sender, server, ends }) => {
          await waitFor(() => server.texts.length > 0, 'the request for heartbeats');
          equal(server.texts[0], CLIENT_HEARTBEAT_TEXT, 'the request');
          for (let i = 0; i < 12; i++) {
            await sleep(100);
            server.heartbeat();
          }
          equal(sender.ended, undefined, 'alive after 1.2 s of heartbeats (3 timeouts)');
          const sent = await sender.send(points(10));
          const silentFrom = Date.now();
          await rejectsWith(sent.receipt, ErrorCodes.FRAME_LOST, 'the frame in flight');
          const detectedMs = Date.now() - silentFrom;
          equal(sender.ended?.code, ErrorCodes.PEER_SILENT, 'end code');
          check(detectedMs >= 300, `not before the timeout (${detectedMs} ms)`);
          check(detectedMs <= 400 + 1000, `within the timeout + 1 s (${detectedMs} ms)`);
          equal(ends[0]?.serverCloses, false, 'the shell closes the connection');
          equal(sender.stats.framesLost, 1, 'the frame in flight is counted lost');
        },
        { heartbeatMs: 100 },
      ),
  },
  {
    name: 'liveness: no heartbeatMs in the hello, no request and no liveness check',
    run: (env) =>
      withSender(env, { livenessTimeoutMs: 100 }, async ({ sender, server }) => {
        await sleep(400);
        equal(sender.ended, undefined, 'still running after 4 timeouts of silence');
        equal(server.texts.length, 0, 'no text sent to an older server');
      }),
  },
  {
    name: 'moved: receipts in flight still resolve, a new send is refused unsent, then it ends',
    run: (env) =>
      withSender(env, { maxFramesInFlight: 2 }, async ({ sender, server, ends }) => {
        const first = await sender.send(points(10));
        const second = await sender.send(points(10));
        await waitFor(() => server.chunks >= 2, 'both frames to arrive');
        server.closing(ErrorCodes.SESSION_MOVED, 'draining');
        await sleep(20);
        await rejectsWith(sender.send(points(10)), ErrorCodes.SESSION_MOVED, 'a new send');
        await sleep(20);
        equal(server.chunks, 2, 'nothing more sent');
        equal(sender.ended, undefined, 'still waiting for receipts');
        server.ack(0, 10);
        server.ack(1, 10);
        check((await first.receipt).ok, 'first receipt ok after the closing');
        check((await second.receipt).ok, 'second receipt ok after the closing');
        await waitFor(() => sender.ended !== undefined, 'the end');
        equal(sender.ended?.code, ErrorCodes.SESSION_MOVED, 'end code');
        equal(ends[0]?.serverCloses, false, 'the client closes (the server waits for it)');
        equal(sender.stats.framesLost, 0, 'nothing lost');
        equal(sender.stats.framesSent, 2, 'the refused frame is not counted sent');
      }),
  },
  {
    name: 'moved: a send waiting for a slot is refused unsent; with nothing in flight it ends at once',
    run: (env) =>
      withSender(env, { maxFramesInFlight: 1 }, async ({ sender, server }) => {
        const first = await sender.send(points(10));
        const waiting = sender.send(points(10));
        await sleep(20);
        server.closing(ErrorCodes.SESSION_MOVED, 'draining');
        await rejectsWith(waiting, ErrorCodes.SESSION_MOVED, 'the waiting send');
        equal(server.chunks, 1, 'the waiting frame was not sent');
        server.ack(0, 10);
        check((await first.receipt).ok, 'the frame in flight is acknowledged');
        await waitFor(() => sender.ended !== undefined, 'the end');
        equal(sender.ended?.code, ErrorCodes.SESSION_MOVED, 'end code');
      }),
  },
];
