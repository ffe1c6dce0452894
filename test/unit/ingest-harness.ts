/**
 * A session's ingest side over the in-memory channel pair, driven as a client drives a server:
 * the test holds the client end, sends chunks or plain messages and reads the hello, receipts and
 * `closing` that come back. `end` does what `Session.close` does with the ingest (close it, close
 * the channels it hands back) and records how the session ended.
 */
import { crc32 } from 'node:zlib';
import type { ErrorCode, PointstreamError } from '../../src/errors.js';
import { FrameBufferPool } from '../../src/server/buffer-pool.js';
import { CappedBudget } from '../../src/server/budget.js';
import { DEFAULT_SERVER_LIMITS } from '../../src/server/limits.js';
import { SessionIngest } from '../../src/server/ingest/ingest.js';
import type { ConfirmFrame, FrameDecoder, FrameMemory } from '../../src/server/ingest/types.js';
import type { ReceivedFrame, ServerLimits } from '../../src/server/types.js';
import { createChannelPair } from '../../src/transport/memory.js';
import type { MemoryChannel } from '../../src/transport/memory.js';
import { silentLogger } from '../../src/util/logger.js';
import type { Logger } from '../../src/util/logger.js';
import { withDefaults } from '../../src/util/options.js';
import { PROTOCOL_V1 } from '../../src/wire/chunk.js';
import { decodeServerMessage } from '../../src/wire/control.js';
import type { ServerMessage } from '../../src/wire/control.js';
import { decodePoints, encodePoints } from '../../src/wire/encodings/index.js';
import type { PointEncodingName } from '../../src/wire/encodings/index.js';
import { prepareEncodedFrame, prepareFrame, writeChunk } from '../../src/wire/frame.js';
import type { OutgoingFrame } from '../../src/wire/frame.js';

/** The server's default limits: the ingest side runs under what `serve` runs under. */
export const LIMITS: ServerLimits = DEFAULT_SERVER_LIMITS;

export type Receipt = Extract<ServerMessage, { type: 'receipt' }>;

/** How the session ended, as `Session.close` would report it. */
export interface Ending {
  readonly code: ErrorCode;
  readonly reason: string;
  readonly framesLost: number;
  readonly normal: boolean;
}

export interface HarnessOptions {
  readonly protocol?: string;
  readonly limits?: Partial<ServerLimits>;
  /** Reassembly budget of the session (bytes). Default: the limits' session share. */
  readonly budgetBytes?: number;
  readonly reuseBuffers?: boolean;
  readonly decoder?: FrameDecoder;
  readonly log?: Logger;
  /** Runs in the frame listener (where `frame.retain()` may be called). */
  readonly onFrame?: (frame: ReceivedFrame) => void;
  /** The step before each receipt (the bus), as `serve --bus` gives it. */
  readonly confirm?: ConfirmFrame;
}

export interface Harness {
  readonly ingest: SessionIngest<MemoryChannel>;
  /** The client's end of the first channel. */
  readonly client: MemoryChannel;
  /** What the server sent on the first channel, decoded. */
  readonly messages: ServerMessage[];
  readonly frames: ReceivedFrame[];
  readonly rejected: { seq: number | undefined; code: ErrorCode }[];
  readonly endings: Ending[];
  readonly budget: CappedBudget;
  readonly pool: FrameBufferPool | undefined;
  readonly limits: ServerLimits;
  /** Adds another channel; returns the client end and what arrives on it (undefined: refused). */
  addChannel(protocol: string): {
    client: MemoryChannel;
    messages: ServerMessage[];
    added: boolean;
  };
  receipts(): Receipt[];
  closing(): Extract<ServerMessage, { type: 'closing' }> | undefined;
}

/** What came back, after the hello: `[seq, true | code]` per receipt, the code of `closing`. */
export function outcomes(messages: readonly ServerMessage[]): unknown[] {
  return messages
    .filter((m) => m.type !== 'hello')
    .map((m) =>
      m.type === 'receipt' ? [m.seq, m.ok || m.code] : m.type === 'closing' ? m.code : m,
    );
}

/** Waits until `done()` holds (each check after a task), at most `ms`. */
export async function until(done: () => boolean, ms = 2000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!done()) {
    if (performance.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** Lets every queued delivery of the in-memory pair run. */
export const settle = async (): Promise<void> => {
  for (let i = 0; i < 4; i++) await new Promise((resolve) => setTimeout(resolve, 0));
};

function listenAll(client: MemoryChannel, into: ServerMessage[]): void {
  client.listen({
    message: (data) => {
      if (typeof data === 'string') into.push(decodeServerMessage(data));
    },
  });
}

/** A session's ingest side with one channel open (its hello received). */
export async function openIngest(options: HarnessOptions = {}): Promise<Harness> {
  const limits = withDefaults(LIMITS, options.limits);
  const total = { reserve: (): boolean => true, release: (): void => undefined };
  const budget = new CappedBudget(options.budgetBytes ?? limits.maxSessionReassemblyBytes, total);
  const pool = options.reuseBuffers ? new FrameBufferPool(64 * 1024 * 1024) : undefined;
  const memory: FrameMemory = { budget, pool, decoder: options.decoder };
  const frames: ReceivedFrame[] = [];
  const rejected: Harness['rejected'] = [];
  const endings: Ending[] = [];
  const ingest: SessionIngest<MemoryChannel> = new SessionIngest<MemoryChannel>({
    sessionId: 'session-1',
    stream: 'robot',
    recording: '/rec/robot/1',
    limits,
    memory,
    log: options.log ?? silentLogger,
    confirm: options.confirm,
    hooks: {
      connected: () => undefined,
      frame: (frame) => {
        frames.push(frame);
        options.onFrame?.(frame);
      },
      rejected: (seq, error) => rejected.push({ seq, code: error.code }),
      end: (code, reason, how = {}) => {
        if (endings.length > 0) return;
        const ended = ingest.close(code, reason);
        const framesLost = (how.framesLost ?? 0) + ended.framesLost;
        endings.push({
          code,
          reason,
          framesLost,
          normal: (how.normal ?? false) && framesLost === 0,
        });
        for (const { channel } of ended.channels) channel.close();
      },
    },
  });
  const addChannel: Harness['addChannel'] = (protocol) => {
    const pair = createChannelPair({ protocol, label: `channel-${protocol}`, open: false });
    const messages: ServerMessage[] = [];
    listenAll(pair.a, messages);
    pair.open();
    const added = ingest.add(pair.b);
    if (!added) pair.b.close();
    return { client: pair.a, messages, added };
  };
  const first = addChannel(options.protocol ?? PROTOCOL_V1);
  await until(() => first.messages.length > 0);
  const harness: Harness = {
    ingest,
    client: first.client,
    messages: first.messages,
    frames,
    rejected,
    endings,
    budget,
    pool,
    limits,
    addChannel,
    receipts: () => first.messages.filter((m): m is Receipt => m.type === 'receipt'),
    closing: () =>
      first.messages.find(
        (m): m is Extract<ServerMessage, { type: 'closing' }> => m.type === 'closing',
      ),
  };
  return harness;
}

/** `count` points with values that tell frames apart. */
export function pointsOf(count: number, seed = 1): Float32Array {
  const points = new Float32Array(count * 3);
  for (let i = 0; i < points.length; i++) points[i] = seed + (i % 101) / 8;
  return points;
}

/** Small chunks (1 KiB messages), so that small frames take several. */
export const MESSAGE_BYTES = 1024;

/** A frame ready to chunk: raw `.npy` or encoded. */
export function frameOf(
  seq: number,
  points: Float32Array,
  encoding: PointEncodingName = 'raw',
): OutgoingFrame {
  if (encoding === 'raw') return prepareFrame(points, seq, Date.now(), MESSAGE_BYTES, crc32);
  return prepareEncodedFrame(encodePoints(points, encoding), seq, Date.now(), MESSAGE_BYTES, crc32);
}

/** The chunks of `frame` as messages (copies). */
export function chunksOf(frame: OutgoingFrame): Uint8Array[] {
  const scratch = new Uint8Array(MESSAGE_BYTES);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < frame.chunkCount; i++) chunks.push(writeChunk(frame, i, scratch).slice());
  return chunks;
}

/** Sends every chunk of `frame` from the client end. */
export function sendFrame(client: MemoryChannel, frame: OutgoingFrame): void {
  for (const chunk of chunksOf(frame)) client.send(chunk);
}

/**
 * A decoder whose jobs finish when the test says: `finish(i)` ends job `i` by decoding inline
 * (or with `error`), so receipts' order behind decoding can be checked.
 */
export class ManualDecoder implements FrameDecoder {
  readonly jobs: {
    payload: Uint8Array;
    encoding: number;
    pointCount: number;
    maxPoints: number;
    done: Parameters<FrameDecoder['decode']>[5];
    finished: boolean;
  }[] = [];
  framesOverBudget = 0;
  sessionsClosedOverBudget = 0;

  decode(
    ...[, payload, encoding, pointCount, maxPoints, done]: Parameters<FrameDecoder['decode']>
  ): void {
    this.jobs.push({ payload, encoding, pointCount, maxPoints, done, finished: false });
  }

  /** Ends job `index`: decoded inline, or failed with `error`; it took `ms` of worker time. */
  finish(index: number, { error, ms = 1 }: { error?: PointstreamError; ms?: number } = {}): void {
    const job = this.jobs[index];
    if (job === undefined || job.finished) throw new Error(`no job ${index} to finish`);
    job.finished = true;
    if (error !== undefined) {
      job.done(error, undefined, job.payload, ms);
      return;
    }
    let points: Float32Array;
    try {
      points = decodePoints(job.payload, job.encoding, job.pointCount, {
        maxPoints: job.maxPoints,
      });
    } catch (cause) {
      job.done(cause as PointstreamError, undefined, job.payload, ms);
      return;
    }
    job.done(undefined, points, job.payload, ms);
  }

  countFrameOverBudget(): void {
    this.framesOverBudget++;
  }

  countSessionClosedOverBudget(): void {
    this.sessionsClosedOverBudget++;
  }
}
