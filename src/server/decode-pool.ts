import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ErrorCodes, PointstreamError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { FieldTable, PointFields } from '../wire/fields.js';

/**
 * Decodes q16/qrice payloads on worker threads. Decoding is CPU-bound and its cost is set by the
 * point count, not the wire size (a 2.17 MB qrice frame of 5M identical points took 170-260 ms):
 * done inside the DataChannel callback it stalled signaling, `/healthz` and every other session.
 * Here the main thread only posts the payload (transferred, not copied) and gets the points back
 * (transferred too). Jobs wait in one FIFO; how many each session may queue and how much decode
 * time it may use is bounded by its {@link DecodeBudget}.
 */

/** @internal posted to a worker */
export interface DecodeJob {
  readonly id: number;
  readonly payload: Uint8Array;
  readonly encoding: number;
  readonly pointCount: number;
  readonly maxPoints: number;
  /** The frame's field table: its fields are decoded too, the points from the points part. */
  readonly fieldTable?: FieldTable | undefined;
}

/** @internal posted back by a worker */
export interface DecodeReply {
  readonly id: number;
  readonly payload: Uint8Array;
  readonly points?: Float32Array;
  /** With a field table: raw columns as views into `payload`, coded ones decoded (transferred). */
  readonly fields?: PointFields;
  /** Time the decode took on the worker. */
  readonly ms: number;
  readonly error?: { readonly code: string; readonly message: string };
}

/**
 * What a decode ends with: the points (and fields: undefined without a table), or the error;
 * `payload` is the (transferred back) input.
 */
export type DecodeDone = (
  error: PointstreamError | undefined,
  points: Float32Array | undefined,
  payload: Uint8Array,
  ms: number,
  fields?: PointFields,
) => void;

interface Pending {
  readonly job: DecodeJob;
  readonly done: DecodeDone;
}

interface Slot {
  worker: Worker;
  job: Pending | undefined;
}

/** Workers by default: the cores less one for the main thread (1 on 2 cores), at most 4. */
export function defaultDecodeWorkers(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

/** Under tsx (tests) this module is the .ts source: so is the worker, which needs tsx's loader. */
function startWorker(): Worker {
  const url = new URL('./decode-worker.js', import.meta.url);
  if (!import.meta.url.endsWith('.ts')) return new Worker(url);
  // Node 20 neither passes a main thread's loader hooks nor `--import` on to workers.
  const source = new URL('./decode-worker.ts', import.meta.url).href;
  const api = new URL(
    'dist/esm/api/index.mjs',
    pathToFileURL(createRequire(import.meta.url).resolve('tsx/package.json')),
  ).href;
  return new Worker(
    `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(source)}); });`,
    { eval: true },
  );
}

export class DecodePool {
  readonly size: number;
  readonly #slots: Slot[] = [];
  /**
   * Waiting jobs by owner (a session), served round-robin: one client's queue never makes
   * another's frame wait more than one decode per busy owner.
   */
  readonly #queues = new Map<object, Pending[]>();
  #waiting = 0;
  #nextId = 0;
  #closed = false;
  #framesDecoded = 0;
  #decodeMs = 0;
  #framesOverBudget = 0;
  #sessionsClosedOverBudget = 0;

  /** Frames decoded (successfully or not). */
  get framesDecoded(): number {
    return this.#framesDecoded;
  }

  /** Worker time the decoded frames took, in ms. */
  get decodeMs(): number {
    return this.#decodeMs;
  }

  constructor(size = defaultDecodeWorkers()) {
    if (!Number.isSafeInteger(size) || size < 1)
      throw new RangeError(`decode workers must be a positive integer; got ${size}`);
    this.size = size;
  }

  /** Abuse: frames refused for a spent budget (sessions count them: see {@link DecodeBudget}). */
  get framesOverBudget(): number {
    return this.#framesOverBudget;
  }

  /** Abuse: sessions closed for repeatedly spending their budget. */
  get sessionsClosedOverBudget(): number {
    return this.#sessionsClosedOverBudget;
  }

  countFrameOverBudget(): void {
    this.#framesOverBudget++;
  }

  countSessionClosedOverBudget(): void {
    this.#sessionsClosedOverBudget++;
  }

  /** Jobs waiting for a worker or being decoded. */
  get queued(): number {
    let running = 0;
    for (const slot of this.#slots) if (slot.job !== undefined) running++;
    return this.#waiting + running;
  }

  /**
   * Decodes `payload` (with `fieldTable`: its points part and its fields) on a worker; `payload`
   * is detached here until `done` gives it back.
   */
  decode(
    owner: object,
    payload: Uint8Array,
    encoding: number,
    pointCount: number,
    maxPoints: number,
    done: DecodeDone,
    fieldTable?: FieldTable,
  ): void {
    if (this.#closed) {
      done(closedError(), undefined, payload, 0);
      return;
    }
    const job: DecodeJob = {
      id: this.#nextId++,
      payload,
      encoding,
      pointCount,
      maxPoints,
      fieldTable,
    };
    const queue = this.#queues.get(owner);
    if (queue === undefined) this.#queues.set(owner, [{ job, done }]);
    else queue.push({ job, done });
    this.#waiting++;
    this.#dispatch();
  }

  /** Ends the workers; queued and running jobs end with `PS_ERR_SESSION_CLOSED`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const queues = [...this.#queues.values()];
    this.#queues.clear();
    this.#waiting = 0;
    for (const queue of queues)
      for (const pending of queue) pending.done(closedError(), undefined, pending.job.payload, 0);
    const slots = this.#slots.splice(0);
    for (const slot of slots) {
      const running = slot.job;
      slot.job = undefined;
      // The payload went to the worker: the caller gets an empty view back.
      running?.done(closedError(), undefined, new Uint8Array(0), 0);
    }
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
  }

  #dispatch(): void {
    while (this.#waiting > 0) {
      let slot = this.#slots.find((s) => s.job === undefined);
      if (slot === undefined) {
        if (this.#slots.length >= this.size) return;
        slot = this.#spawn();
      }
      // The owner served longest ago; it goes to the back of the line if it has more.
      const [owner, queue] = this.#queues.entries().next().value as [object, Pending[]];
      const pending = queue.shift() as Pending;
      this.#queues.delete(owner);
      if (queue.length > 0) this.#queues.set(owner, queue);
      this.#waiting--;
      slot.job = pending;
      const buffer = pending.job.payload.buffer as ArrayBuffer;
      slot.worker.postMessage(pending.job, [buffer]);
    }
  }

  /** Workers start on first use: a server that never sees an encoded frame runs none. */
  #spawn(): Slot {
    const worker = startWorker();
    // Sessions and sockets keep the process alive, not an idle decoder.
    worker.unref();
    const slot: Slot = { worker, job: undefined };
    worker.on('message', (reply: DecodeReply) => {
      const pending = slot.job;
      if (pending === undefined || pending.job.id !== reply.id) return;
      slot.job = undefined;
      this.#framesDecoded++;
      this.#decodeMs += reply.ms;
      const error =
        reply.error === undefined
          ? undefined
          : new PointstreamError(reply.error.code as ErrorCode, reply.error.message);
      pending.done(error, reply.points, reply.payload, reply.ms, reply.fields);
      this.#dispatch();
    });
    // A worker that dies (out of memory, a bug) fails its job and is replaced on next use.
    const lost = (reason: string): void => {
      const index = this.#slots.indexOf(slot);
      if (index < 0) return;
      this.#slots.splice(index, 1);
      const pending = slot.job;
      slot.job = undefined;
      pending?.done(
        new PointstreamError(ErrorCodes.INTERNAL, `decode worker ${reason}`),
        undefined,
        new Uint8Array(0),
        0,
      );
      if (!this.#closed) this.#dispatch();
    };
    worker.on('error', (error) => lost(`failed: ${error.message}`));
    worker.on('exit', (code) => lost(`exited (${code})`));
    this.#slots.push(slot);
    return slot;
  }
}

function closedError(): PointstreamError {
  return new PointstreamError(ErrorCodes.SESSION_CLOSED, 'server shutting down');
}

/**
 * One session's decode allowance: a bucket of `msPerSecond` worker milliseconds that refills at
 * that rate, and at most `maxQueued` frames waiting for or in decode. A frame is admitted while
 * the bucket is not empty and charged in advance what the session's last decode suggests (its
 * ms per point x the frame's points), then corrected to what its decode really took: the cost of
 * a payload is only known once decoded, and without the advance every queued frame would pass.
 * `strikes` counts refusals since the bucket was last full: repeated abuse, not one burst.
 */
export class DecodeBudget {
  readonly msPerSecond: number;
  readonly maxQueued: number;
  queued = 0;
  strikes = 0;
  /** Worker time this session's frames took, and frames refused over budget. */
  decodeMs = 0;
  overBudget = 0;
  #tokens: number;
  #at: number;
  /** Cost of the session's last decode per point; 0 until one was measured. */
  #msPerPoint = 0;

  constructor(msPerSecond: number, maxQueued: number, now = performance.now()) {
    this.msPerSecond = msPerSecond;
    this.maxQueued = maxQueued;
    this.#tokens = msPerSecond;
    this.#at = now;
  }

  /**
   * Asks to decode a frame of `pointCount` points: a string saying why not, or the ms charged in
   * advance (then `queued` counts it; pass the number to `charge`).
   */
  admit(pointCount: number, now = performance.now()): string | number {
    this.#tokens = Math.min(
      this.msPerSecond,
      this.#tokens + ((now - this.#at) * this.msPerSecond) / 1000,
    );
    this.#at = now;
    if (this.#tokens >= this.msPerSecond) this.strikes = 0;
    let refusal: string | undefined;
    if (this.queued >= this.maxQueued)
      refusal = `${this.queued} frames already wait for decoding (limit ${this.maxQueued})`;
    else if (this.#tokens <= 0)
      refusal = `decode budget spent: ${Math.round(this.msPerSecond - this.#tokens)} ms used of ${this.msPerSecond} ms per second`;
    if (refusal !== undefined) {
      this.strikes++;
      this.overBudget++;
      return refusal;
    }
    this.queued++;
    const advance = pointCount * this.#msPerPoint;
    this.#tokens -= advance;
    return advance;
  }

  /** A frame admitted with `advance` left decoding after `ms` of worker time. */
  charge(ms: number, advance: number, pointCount: number): void {
    this.queued--;
    this.decodeMs += ms;
    this.#tokens -= ms - advance;
    if (pointCount > 0) this.#msPerPoint = ms / pointCount;
  }
}
