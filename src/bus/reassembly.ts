/**
 * Reassembly of frames from bus chunks (docs/bus.md), pure: no NATS, no timers, no clock of its
 * own. The consumer (src/bus/consumer.ts) feeds it chunks whose headers `readChunkHeaders` has
 * checked, each with a handle (the message, to acknowledge later), and acts on what it returns.
 *
 * Frames are assembled per (`Ps-Session`, `Ps-Index`). The node publishes a frame's parts before
 * the next frame's, so when a later frame of a session is complete, an earlier one still missing
 * parts has stopped (its node died mid-publish, or its publish failed): it is given up and
 * counted incomplete, never delivered; so is a frame with no new part for `frameStallMs`.
 * `Ps-Index` (the session's published-frame count) tells missed frames: a gap between two frames
 * of a session is the number missed, and a session first seen at index k missed k (unless the
 * consumer starts from "now", or resumes from a known index). A frame counted missed that arrives
 * later after all (JetStream redelivers unacknowledged messages after newer ones) is assembled,
 * delivered and no longer counted missed.
 *
 * Memory: a frame's buffer (`Ps-Bytes`, within the chunk limits) is allocated when its first part
 * arrives, and only within `maxFramesInAssembly` and `maxBytesInAssembly`; a new frame over them
 * gives up the least recently active ones first (so that a flood of first parts cannot keep a good
 * frame out for long). Sessions remembered for gap counting are capped too (least recent forgotten).
 */
import type { Checksum } from '../wire/crc32.js';
import { crc32Portable } from '../wire/crc32.js';
import type { FieldTable } from '../wire/fields.js';
import type { BusChunk, BusFrameMeta } from './layout.js';
import { partRange } from './layout.js';

/** Bounds of one {@link BusReassembly}. */
export interface BusReassemblyLimits {
  /** Frames being assembled at once (all sessions). Default 8. */
  readonly maxFramesInAssembly: number;
  /** Bytes those frames may hold (their declared sizes). Default 256 MiB. */
  readonly maxBytesInAssembly: number;
  /** A frame with no new part for this long is given up as incomplete ({@link BusReassembly.expire}). Default 10000 ms. */
  readonly frameStallMs: number;
  /** Sessions whose last index is remembered (for gap counting). Default 10000. */
  readonly maxSessions: number;
}

export const DEFAULT_BUS_REASSEMBLY_LIMITS: BusReassemblyLimits = Object.freeze({
  maxFramesInAssembly: 8,
  maxBytesInAssembly: 256 * 1024 * 1024,
  frameStallMs: 10_000,
  maxSessions: 10_000,
});

export interface BusReassemblyOptions {
  readonly limits?: Partial<BusReassemblyLimits>;
  /**
   * How a session first seen counts: `true` (default) counts the frames before its first index as
   * missed (the consumer reads the stream from its start); `false` takes the first frame seen as
   * the start (a consumer that begins at "now").
   */
  readonly countFromStart?: boolean;
  /** Next expected index per session, for a consumer that resumes (its last run's positions). */
  readonly resume?: ReadonlyMap<string, number>;
  /** CRC-32 (IEEE). Default the portable one; Node passes `zlib.crc32` (4-5 times faster). */
  readonly checksum?: Checksum;
}

/** A complete frame whose CRC matched. */
export interface CompletedBusFrame<T> {
  readonly meta: BusFrameMeta;
  /** The whole payload, a buffer of its own. */
  readonly payload: Uint8Array;
  /** Handles of its parts, in part order. */
  readonly handles: readonly T[];
  /** Clock (the caller's) when its first part arrived. */
  readonly firstPartAt: number;
}

/** What one chunk (or a sweep) resolved. */
export interface BusReassemblyResult<T> {
  /** A frame the chunk completed, if any. */
  readonly frame: CompletedBusFrame<T> | undefined;
  /** Handles the caller may acknowledge now: nothing will be delivered from them. */
  readonly release: readonly T[];
}

/** Counters of a {@link BusReassembly}. */
export interface BusReassemblyStats {
  readonly framesCompleted: number;
  /** Frames never seen (gaps in a session's `Ps-Index`). */
  readonly framesMissed: number;
  /** Frames given up with parts missing (a later frame began, they stalled, or memory caps). */
  readonly framesIncomplete: number;
  /** Frames complete but with a CRC that did not match. */
  readonly framesCorrupt: number;
  /** Parts already held, or of frames already delivered. */
  readonly duplicates: number;
  /** Parts of frames already given up, or that disagree with their frame's other parts. */
  readonly messagesDropped: number;
  readonly framesInAssembly: number;
  readonly bytesInAssembly: number;
}

interface Assembly<T> {
  readonly meta: BusFrameMeta;
  readonly parts: number;
  readonly chunkBytes: number;
  readonly payload: Uint8Array;
  readonly handles: (T | undefined)[];
  received: number;
  readonly firstPartAt: number;
  lastPartAt: number;
}

interface SessionState<T> {
  /** One past the highest index begun (the next index expected). */
  next: number;
  /** Frames of this session in assembly, by index. */
  readonly assemblies: Map<number, Assembly<T>>;
  /** Recently delivered indices, to tell a duplicate from a late part. */
  readonly delivered: number[];
  /** Recent gaps `[from, to)` counted missed: a frame from one arriving late is recovered. */
  readonly missed: [number, number][];
}

const DELIVERED_REMEMBERED = 16;
const GAPS_REMEMBERED = 32;

export class BusReassembly<T> {
  readonly #limits: BusReassemblyLimits;
  readonly #countFromStart: boolean;
  #resume: ReadonlyMap<string, number>;
  readonly #checksum: Checksum;
  /** Insertion order = least recently active first. */
  readonly #sessions = new Map<string, SessionState<T>>();
  /** Frames in assembly, least recently active first. */
  readonly #active = new Map<Assembly<T>, SessionState<T>>();
  #bytesInAssembly = 0;
  #framesCompleted = 0;
  #framesMissed = 0;
  #framesIncomplete = 0;
  #framesCorrupt = 0;
  #duplicates = 0;
  #messagesDropped = 0;

  constructor(options: BusReassemblyOptions = {}) {
    this.#limits = { ...DEFAULT_BUS_REASSEMBLY_LIMITS, ...options.limits };
    for (const [name, value] of Object.entries(this.#limits)) {
      if (!Number.isSafeInteger(value) || value < 1)
        throw new RangeError(`${name} must be a positive integer, not ${String(value)}`);
    }
    this.#countFromStart = options.countFromStart ?? true;
    this.#resume = options.resume ?? new Map();
    this.#checksum = options.checksum ?? crc32Portable;
  }

  stats(): BusReassemblyStats {
    return {
      framesCompleted: this.#framesCompleted,
      framesMissed: this.#framesMissed,
      framesIncomplete: this.#framesIncomplete,
      framesCorrupt: this.#framesCorrupt,
      duplicates: this.#duplicates,
      messagesDropped: this.#messagesDropped,
      framesInAssembly: this.#active.size,
      bytesInAssembly: this.#bytesInAssembly,
    };
  }

  /** Next expected index per session for sessions not seen yet (a consumer that resumes). */
  resume(positions: ReadonlyMap<string, number>): void {
    this.#resume = positions;
  }

  /** The next index expected of each session. */
  positions(): Map<string, number> {
    return new Map([...this.#sessions].map(([session, state]) => [session, state.next]));
  }

  /**
   * Takes one checked chunk and its body (copied: the caller may reuse it). `now` is the caller's
   * clock in ms.
   */
  push(chunk: BusChunk, body: Uint8Array, handle: T, now: number): BusReassemblyResult<T> {
    const release: T[] = [];
    const drop = (counter: 'duplicates' | 'messagesDropped'): BusReassemblyResult<T> => {
      if (counter === 'duplicates') this.#duplicates++;
      else this.#messagesDropped++;
      release.push(handle);
      return { frame: undefined, release };
    };
    const state = this.#session(chunk.session);
    const index = chunk.index;
    // A session first seen by a consumer that begins at "now" starts here.
    if (Number.isNaN(state.next)) state.next = index;
    let assembly = state.assemblies.get(index);
    if (assembly === undefined) {
      if (state.delivered.includes(index)) return drop('duplicates');
      // Below `next`: a frame given up (late part), or one counted missed that arrives after all
      // (JetStream redelivers unacknowledged messages after newer ones).
      const gap =
        index < state.next ? state.missed.findIndex(([a, b]) => index >= a && index < b) : -1;
      if (index < state.next && gap < 0) return drop('messagesDropped');
      if (chunk.bytes > this.#limits.maxBytesInAssembly) return drop('messagesDropped');
      this.#makeRoom(chunk.bytes, release);
      if (gap >= 0) this.#recover(state, gap, index);
      else {
        if (index > state.next) {
          state.missed.push([state.next, index]);
          if (state.missed.length > GAPS_REMEMBERED) state.missed.shift();
          this.#framesMissed += index - state.next;
        }
        state.next = index + 1;
      }
      assembly = {
        meta: metaOf(chunk),
        parts: chunk.parts,
        chunkBytes: chunk.chunkBytes,
        payload: new Uint8Array(chunk.bytes),
        handles: new Array<T | undefined>(chunk.parts).fill(undefined),
        received: 0,
        firstPartAt: now,
        lastPartAt: now,
      };
      state.assemblies.set(index, assembly);
      this.#bytesInAssembly += chunk.bytes;
    } else if (!sameFrame(assembly, chunk)) return drop('messagesDropped');
    else if (assembly.handles[chunk.part] !== undefined) return drop('duplicates');
    // Most recently active last.
    this.#active.delete(assembly);
    this.#active.set(assembly, state);
    const [start] = partRange(chunk.bytes, chunk.part, chunk.chunkBytes);
    assembly.payload.set(body, start);
    assembly.handles[chunk.part] = handle;
    assembly.received++;
    assembly.lastPartAt = now;
    if (assembly.received < assembly.parts) return { frame: undefined, release };

    this.#forget(state, assembly);
    // Earlier frames of this session still in assembly: their parts stopped (node died, or its
    // publish failed), as a later frame is complete.
    for (const [other, earlier] of state.assemblies)
      if (other < index) this.#giveUp(state, earlier, release);
    if (this.#checksum(assembly.payload) >>> 0 !== assembly.meta.crc32) {
      this.#framesCorrupt++;
      release.push(...(assembly.handles as T[]));
      return { frame: undefined, release };
    }
    state.delivered.push(index);
    if (state.delivered.length > DELIVERED_REMEMBERED) state.delivered.shift();
    this.#framesCompleted++;
    return {
      frame: {
        meta: assembly.meta,
        payload: assembly.payload,
        handles: assembly.handles as T[],
        firstPartAt: assembly.firstPartAt,
      },
      release,
    };
  }

  /** Gives up frames that received no part for `frameStallMs`; returns their handles. */
  expire(now: number): T[] {
    const release: T[] = [];
    for (const [assembly, state] of this.#active)
      if (now - assembly.lastPartAt >= this.#limits.frameStallMs)
        this.#giveUp(state, assembly, release);
    return release;
  }

  /**
   * Restarts every frame's stall clock: the caller knows why parts do not come (a durable consumer
   * whose reader is behind: the server holds parts back until frames are acknowledged).
   */
  refresh(now: number): void {
    for (const assembly of this.#active.keys()) assembly.lastPartAt = now;
  }

  /** Gives up every frame in assembly (the consumer is closing), uncounted; returns their handles. */
  clear(): T[] {
    const release: T[] = [];
    for (const [assembly, state] of this.#active) {
      this.#forget(state, assembly);
      for (const handle of assembly.handles) if (handle !== undefined) release.push(handle);
    }
    return release;
  }

  #session(session: string): SessionState<T> {
    let state = this.#sessions.get(session);
    if (state !== undefined) {
      this.#sessions.delete(session);
      this.#sessions.set(session, state);
      return state;
    }
    if (this.#sessions.size >= this.#limits.maxSessions) {
      for (const [name, old] of this.#sessions) {
        if (old.assemblies.size > 0) continue;
        this.#sessions.delete(name);
        break;
      }
    }
    state = {
      next: this.#resume.get(session) ?? (this.#countFromStart ? 0 : Number.NaN),
      assemblies: new Map(),
      delivered: [],
      missed: [],
    };
    this.#sessions.set(session, state);
    return state;
  }

  /** A frame counted missed arrived after all: no longer missed. */
  #recover(state: SessionState<T>, gap: number, index: number): void {
    const [from, to] = state.missed[gap] as [number, number];
    const rest: [number, number][] = [];
    if (from < index) rest.push([from, index]);
    if (index + 1 < to) rest.push([index + 1, to]);
    state.missed.splice(gap, 1, ...rest);
    this.#framesMissed--;
  }

  /** Gives up least recently active frames until a frame of `bytes` fits. */
  #makeRoom(bytes: number, release: T[]): void {
    for (const [assembly, state] of this.#active) {
      if (
        this.#active.size < this.#limits.maxFramesInAssembly &&
        this.#bytesInAssembly + bytes <= this.#limits.maxBytesInAssembly
      )
        return;
      this.#giveUp(state, assembly, release);
    }
  }

  #giveUp(state: SessionState<T>, assembly: Assembly<T>, release: T[]): void {
    this.#forget(state, assembly);
    this.#framesIncomplete++;
    for (const handle of assembly.handles) if (handle !== undefined) release.push(handle);
  }

  #forget(state: SessionState<T>, assembly: Assembly<T>): void {
    state.assemblies.delete(assembly.meta.index);
    this.#active.delete(assembly);
    this.#bytesInAssembly -= assembly.payload.byteLength;
  }
}

function metaOf(chunk: BusChunk): BusFrameMeta {
  const meta: BusFrameMeta = {
    stream: chunk.stream,
    session: chunk.session,
    sessionStart: chunk.sessionStart,
    node: chunk.node,
    seq: chunk.seq,
    index: chunk.index,
    bytes: chunk.bytes,
    crc32: chunk.crc32,
    encoding: chunk.encoding,
    points: chunk.points,
    captureTime: chunk.captureTime,
    receivedAt: chunk.receivedAt,
  };
  return chunk.fieldTable === undefined ? meta : { ...meta, fieldTable: chunk.fieldTable };
}

/** Whether a part agrees with the frame already begun under its (session, index). */
function sameFrame<T>(assembly: Assembly<T>, chunk: BusChunk): boolean {
  const meta = assembly.meta;
  return (
    meta.stream === chunk.stream &&
    meta.seq === chunk.seq &&
    meta.bytes === chunk.bytes &&
    meta.crc32 === chunk.crc32 &&
    meta.encoding === chunk.encoding &&
    meta.points === chunk.points &&
    assembly.parts === chunk.parts &&
    assembly.chunkBytes === chunk.chunkBytes &&
    sameTable(meta.fieldTable, chunk.fieldTable)
  );
}

function sameTable(a: FieldTable | undefined, b: FieldTable | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.pointsBytes === b.pointsBytes &&
    a.columns.length === b.columns.length &&
    a.columns.every((column, i) => {
      const other = b.columns[i];
      return (
        other !== undefined &&
        column.name === other.name &&
        column.type === other.type &&
        column.codec === other.codec &&
        Object.is(column.param, other.param) &&
        column.byteLength === other.byteLength
      );
    })
  );
}
