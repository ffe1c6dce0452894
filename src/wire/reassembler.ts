import { ErrorCodes, PointstreamError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { ChunkType, DType, Encoding, readChunkHeader } from './chunk.js';
import type { FrameMeta } from './chunk.js';
import { crc32Portable } from './crc32.js';
import { decodePoints } from './encodings/index.js';
import { decodeFields } from './encodings/fields.js';
import { FIELD_TYPES, FieldCodec, NO_FIELDS, parseFieldTable, viewRawFields } from './fields.js';
import type { FieldTable, PointFields } from './fields.js';
import { QUANT_HEADER_BYTES } from './encodings/quantize.js';
import { DEFAULT_REASSEMBLY_LIMITS } from './limits.js';
import type { ReassemblyLimits } from './limits.js';
import type { Checksum } from './crc32.js';
import { parseNpyHeader, pointCountOfNpyHeader } from './npy.js';
import { float32View, indexOfNonFinite, nonFiniteError } from './points.js';

// The limits live in ./limits.ts (the codecs need them too); re-exported for existing importers.
export { DEFAULT_REASSEMBLY_LIMITS } from './limits.js';
export type { ReassemblyLimits } from './limits.js';

export interface ReassemblerOptions {
  readonly limits?: Partial<ReassemblyLimits>;
  /** CRC-32 implementation; Node passes `zlib.crc32`. */
  readonly checksum?: Checksum;
  /** Allocates a frame's payload buffer; Node passes `Buffer.allocUnsafeSlow` (no zero fill). */
  readonly allocate?: (bytes: number) => Uint8Array;
  /**
   * Takes back the buffer of a frame that leaves reassembly undelivered (rejected, evicted or
   * reset), for reuse. A delivered frame's buffer belongs to the caller.
   */
  readonly recycle?: (payload: Uint8Array) => void;
  /** Monotonic clock in milliseconds, for `startedAt`/`completedAt`. */
  readonly now?: () => number;
  /**
   * A memory budget shared with other reassemblers (a server's total): `reserve` is asked before
   * a frame's buffer is allocated and may refuse (`PS_ERR_SERVER_MEMORY`); `release` gives the
   * bytes back when the frame completes, fails or is reset.
   */
  readonly budget?: MemoryBudget;
  /**
   * Hand encoded frames back undecoded (`kind: 'encoded'`) so that the caller decodes them
   * elsewhere (the server: on a worker thread); their budget stays reserved until the caller
   * calls {@link FrameReassembler.releaseDecoded}. Default false: decoded here, synchronously.
   */
  readonly deferDecode?: boolean;
}

export interface MemoryBudget {
  reserve(bytes: number): boolean;
  release(bytes: number): void;
}

/** A frame whose chunks all arrived and whose checksum, layout and values were verified. */
export interface AssembledFrame {
  readonly seq: number;
  readonly captureTime: number;
  readonly pointCount: number;
  /** The payload's encoding ({@link Encoding}). */
  readonly encoding: number;
  /** x, y, z interleaved: a view into `payload` for `.npy` frames, decoded for the others. */
  readonly points: Float32Array;
  /**
   * The payload as received: a complete `.npy` file, or the encoded points; with fields, then
   * the columns (docs/protocol.md, "Per-point fields"): the points part is its first
   * `fieldTable.pointsBytes` bytes.
   */
  readonly payload: Uint8Array;
  /** The START chunk's field table, parsed and checked; undefined for a frame without fields. */
  readonly fieldTable: FieldTable | undefined;
  /** Per-point fields: raw columns are views into `payload`, coded ones decoded. */
  readonly fields: PointFields;
  readonly crc32: number;
  readonly chunkCount: number;
  /** `now()` when the START chunk arrived and when the frame was verified. */
  readonly startedAt: number;
  readonly completedAt: number;
}

/**
 * An encoded frame whose checksum was verified but which is not decoded yet (`deferDecode`):
 * `reserved` budget bytes stay held for it until `releaseDecoded(reserved)`.
 */
export interface EncodedFrame extends Omit<AssembledFrame, 'points' | 'fields'> {
  readonly reserved: number;
}

export interface Rejection {
  readonly kind: 'rejected';
  /** Sequence number of the rejected frame, when the chunk named one. */
  readonly seq: number | undefined;
  readonly error: PointstreamError;
  /** The byte stream cannot be trusted any more: the channel should be closed. */
  readonly fatal: boolean;
}

/**
 * What one message did. `evicted` is set when a new frame pushed out the oldest unfinished one
 * (`PS_ERR_FRAME_INCOMPLETE`): report it as well.
 */
export type PushResult = (
  | { readonly kind: 'pending' }
  | { readonly kind: 'frame'; readonly frame: AssembledFrame }
  | { readonly kind: 'encoded'; readonly frame: EncodedFrame }
  | Rejection
) & { readonly evicted?: Rejection };

const PENDING: PushResult = Object.freeze({ kind: 'pending' });
/** Rejected frames whose remaining chunks are being dropped, at most. */
const MAX_DISCARDING = 16;

function validateLimits(limits: ReassemblyLimits): ReassemblyLimits {
  for (const key of [
    'maxFrameBytes',
    'maxPointsPerFrame',
    'maxChunksPerFrame',
    'maxFramesInReassembly',
  ] as const) {
    const value = limits[key];
    if (!Number.isSafeInteger(value) || value < 1)
      throw new RangeError(`limits.${key} must be a positive integer; got ${value}`);
  }
  if (typeof limits.allowNonFinite !== 'boolean')
    throw new TypeError('limits.allowNonFinite must be a boolean');
  return Object.freeze(limits);
}

/**
 * Memory a frame holds while its chunks arrive: its payload buffer. The float32 points an encoded
 * frame decodes to (12 bytes per point, whatever its size on the wire) are reserved only once the
 * whole payload has arrived and passed its checksum: reserving them at START let 864 bytes of
 * START chunks claim a 1 GiB budget (issue 14).
 */
function memoryOf(meta: FrameMeta): number {
  return meta.payloadBytes;
}

/**
 * Bytes an encoded frame decodes to, reserved once its payload passed the checksum: the float32
 * points, and each coded field column (raw columns stay views into the payload).
 */
function decodedBytesOf(meta: FrameMeta, table: FieldTable | undefined): number {
  let bytes = meta.pointCount * 12;
  if (table !== undefined) {
    for (const column of table.columns)
      if (column.codec !== FieldCodec.RAW)
        bytes += meta.pointCount * FIELD_TYPES[column.type].bytes;
  }
  return bytes;
}

/** The points part of a payload: all of it without fields. */
function pointsPart(payload: Uint8Array, table: FieldTable | undefined): Uint8Array {
  return table === undefined ? payload : payload.subarray(0, table.pointsBytes);
}

/** Chunk count assumed for a frame whose START never arrived: its chunks are dropped until forgotten. */
const UNKNOWN_CHUNK_COUNT = 0x1_0000_0000;

/** A frame being reassembled. */
interface FrameState {
  /** The START's meta without its table bytes (a view into a message that is gone). */
  readonly meta: FrameMeta;
  readonly table: FieldTable | undefined;
  readonly payload: Uint8Array;
  nextIndex: number;
  received: number;
  crc: number;
  readonly startedAt: number;
  /** Where the float32 points start in `payload`, and where they end (the points part's end). */
  readonly dataOffset: number;
  readonly pointsEnd: number;
  /**
   * Points are checked for NaN/Inf chunk by chunk, while the bytes are still in the CPU cache
   * (measured: 5 ms less per 1M-point frame than one pass at the end), up to this offset; -1 when
   * the check is off or the points are not 4-byte aligned (then it runs once at the end).
   */
  checkedTo: number;
  /** `nextIndex` at the last {@link FrameReassembler.sweep}; -1 before the first. */
  sweptIndex: number;
  /** Sweeps in a row that found no new chunk. */
  staleSweeps: number;
}

/**
 * Turns the chunks of one channel back into frames. Pure: no sockets, no timers. Every length,
 * index and count is checked before anything is copied or allocated, and memory is bounded by
 * `maxFramesInReassembly x maxFrameBytes`.
 */
export class FrameReassembler {
  readonly limits: ReassemblyLimits;
  readonly #checksum: Checksum;
  readonly #allocate: (bytes: number) => Uint8Array;
  readonly #recycle: ((payload: Uint8Array) => void) | undefined;
  readonly #now: () => number;
  readonly #budget: MemoryBudget | undefined;
  readonly #deferDecode: boolean;
  /** Frames being reassembled, oldest first. */
  readonly #frames = new Map<number, FrameState>();
  /**
   * Rejected frames whose remaining chunks are dropped without a second report: seq -> chunk
   * count. Bounded (oldest forgotten first), so a sender inventing numbers cannot grow it.
   */
  readonly #discarding = new Map<number, number>();
  #lastStartedSeq = -1;
  #bytesBuffered = 0;

  constructor(options: ReassemblerOptions = {}) {
    this.limits = validateLimits({ ...DEFAULT_REASSEMBLY_LIMITS, ...options.limits });
    this.#checksum = options.checksum ?? crc32Portable;
    this.#allocate = options.allocate ?? ((bytes) => new Uint8Array(bytes));
    this.#recycle = options.recycle;
    this.#now = options.now ?? (() => performance.now());
    this.#budget = options.budget;
    this.#deferDecode = options.deferDecode ?? false;
  }

  /** Gives back the budget of a frame handed out as `encoded`, once it is decoded (or dropped). */
  releaseDecoded(reserved: number): void {
    this.#budget?.release(reserved);
  }

  /** Bytes held for frames still being reassembled (their payload buffers). */
  get bytesBuffered(): number {
    return this.#bytesBuffered;
  }

  /** Frames being reassembled (not counting rejected ones whose chunks are being dropped). */
  get framesInReassembly(): number {
    return this.#frames.size;
  }

  /**
   * Takes one DataChannel message. Never throws for bad bytes: every problem comes back as a
   * `rejected` result with a stable code.
   */
  push(message: Uint8Array): PushResult {
    let header;
    try {
      header = readChunkHeader(message);
    } catch (error) {
      if (!(error instanceof PointstreamError)) throw error;
      const seq = error.details?.seq;
      return {
        kind: 'rejected',
        seq: typeof seq === 'number' ? seq : undefined,
        error,
        fatal: true,
      };
    }
    const data = message.subarray(header.headerBytes);
    if (header.type === ChunkType.START) return this.#start(header.meta as FrameMeta, data);

    const state = this.#frames.get(header.seq);
    if (state === undefined) {
      const chunkCount = this.#discarding.get(header.seq);
      if (chunkCount !== undefined) {
        if (header.chunkIndex === chunkCount - 1) this.#discarding.delete(header.seq);
        return PENDING;
      }
      // Report it once, then drop the rest of that frame quietly.
      this.#discard(header.seq, UNKNOWN_CHUNK_COUNT);
      return this.#reject(
        header.seq,
        ErrorCodes.CHUNK_UNKNOWN_FRAME,
        `chunk ${header.chunkIndex} of frame ${header.seq}, which is not being reassembled`,
      );
    }
    if (header.chunkIndex !== state.nextIndex) {
      return this.#fail(
        state,
        ErrorCodes.CHUNK_OUT_OF_ORDER,
        `chunk ${header.chunkIndex} of frame ${header.seq} where chunk ${state.nextIndex} was due`,
      );
    }
    return this.#append(state, data);
  }

  /**
   * Rejects (`PS_ERR_FRAME_INCOMPLETE`) every frame that received no chunk during the last two
   * calls, releasing its memory. Called every `stalledMs / 2`, it rejects a frame between
   * `stalledMs` and 1.5 x `stalledMs` after its last chunk, without costing anything per chunk.
   */
  sweep(stalledMs: number): Rejection[] {
    let rejected: Rejection[] | undefined;
    for (const state of this.#frames.values()) {
      if (state.nextIndex !== state.sweptIndex) {
        state.sweptIndex = state.nextIndex;
        state.staleSweeps = 0;
        continue;
      }
      if (++state.staleSweeps < 2) continue;
      (rejected ??= []).push(
        this.#fail(
          state,
          ErrorCodes.FRAME_INCOMPLETE,
          `frame ${state.meta.seq} received no chunk for ${stalledMs} ms (${state.received} of ${state.meta.payloadBytes} bytes)`,
        ) as Rejection,
      );
    }
    return rejected ?? [];
  }

  /** Drops every frame in reassembly; returns their sequence numbers (they are lost). */
  reset(): number[] {
    const lost = [...this.#frames.keys()];
    for (const state of this.#frames.values()) {
      this.#release(state);
      this.#recycle?.(state.payload);
    }
    this.#frames.clear();
    this.#discarding.clear();
    return lost;
  }

  #start(meta: FrameMeta, data: Uint8Array): PushResult {
    const { seq } = meta;
    const existing = this.#frames.get(seq);
    if (existing !== undefined) {
      // Whatever was under way with this number can no longer be told apart from the newcomer.
      return this.#fail(
        existing,
        ErrorCodes.FRAME_DUPLICATE,
        `frame ${seq} started again while its chunks were arriving`,
      );
    }
    if (seq <= this.#lastStartedSeq || this.#discarding.has(seq)) {
      this.#discard(seq, meta.chunkCount);
      return this.#reject(
        seq,
        ErrorCodes.FRAME_DUPLICATE,
        `frame ${seq} started again: sequence numbers must increase (last was ${this.#lastStartedSeq})`,
      );
    }
    this.#lastStartedSeq = seq;

    const checked = this.#checkStart(meta, data);
    if (Array.isArray(checked)) {
      this.#discard(seq, meta.chunkCount);
      return this.#reject(seq, checked[0], checked[1]);
    }
    // Live data: when every slot is taken, the oldest unfinished frame is the stale one.
    let evicted: Rejection | undefined;
    if (this.framesInReassembly >= this.limits.maxFramesInReassembly) {
      const oldest = this.#frames.values().next().value as FrameState;
      const result = this.#fail(
        oldest,
        ErrorCodes.FRAME_INCOMPLETE,
        `frame ${oldest.meta.seq} abandoned unfinished (${oldest.received} of ${oldest.meta.payloadBytes} bytes) when frame ${seq} started with ${this.limits.maxFramesInReassembly} frames already open`,
      );
      evicted = result as Rejection;
    }
    if (this.#budget && !this.#budget.reserve(memoryOf(meta))) {
      this.#discard(seq, meta.chunkCount);
      const rejected = this.#reject(
        seq,
        ErrorCodes.SERVER_MEMORY,
        `no memory for a ${memoryOf(meta)}-byte frame: the server's reassembly budget is in use`,
      );
      return evicted === undefined ? rejected : { ...rejected, evicted };
    }
    const state = this.#newState(meta, checked, this.#allocate(meta.payloadBytes));
    this.#bytesBuffered += memoryOf(meta);
    this.#frames.set(seq, state);
    const result = this.#append(state, data);
    return evicted === undefined ? result : { ...result, evicted };
  }

  /**
   * Everything a START can be checked for before anything is allocated: a problem, or the
   * frame's field table (undefined without fields).
   */
  #checkStart(meta: FrameMeta, data: Uint8Array): [ErrorCode, string] | FieldTable | undefined {
    const limits = this.limits;
    if (
      meta.dtype !== DType.FLOAT32 ||
      meta.components !== 3 ||
      (meta.encoding !== Encoding.NPY &&
        meta.encoding !== Encoding.Q16 &&
        meta.encoding !== Encoding.QRICE)
    ) {
      return [
        ErrorCodes.FRAME_UNSUPPORTED_FORMAT,
        `unsupported frame format (dtype ${meta.dtype}, components ${meta.components}, encoding ${meta.encoding})`,
      ];
    }
    if (meta.pointCount > limits.maxPointsPerFrame) {
      return [
        ErrorCodes.FRAME_TOO_MANY_POINTS,
        `${meta.pointCount} points exceed the limit of ${limits.maxPointsPerFrame}`,
      ];
    }
    if (meta.payloadBytes > limits.maxFrameBytes) {
      return [
        ErrorCodes.FRAME_TOO_LARGE,
        `${meta.payloadBytes} bytes exceed the limit of ${limits.maxFrameBytes}`,
      ];
    }
    if (meta.chunkCount > limits.maxChunksPerFrame) {
      return [
        ErrorCodes.FRAME_TOO_MANY_CHUNKS,
        `${meta.chunkCount} chunks exceed the limit of ${limits.maxChunksPerFrame}`,
      ];
    }
    if (data.length > meta.payloadBytes) {
      return [
        ErrorCodes.CHUNK_OVERFLOW,
        `first chunk carries ${data.length} bytes of a ${meta.payloadBytes}-byte payload`,
      ];
    }
    let table: FieldTable | undefined;
    if (meta.fieldTable !== undefined) {
      try {
        table = parseFieldTable(meta.fieldTable, meta.pointCount, meta.payloadBytes);
      } catch (error) {
        if (!(error instanceof PointstreamError)) throw error;
        return [error.code, `frame ${meta.seq}: ${error.message}`];
      }
      if (meta.encoding === Encoding.NPY && table.columns.some((c) => c.codec !== FieldCodec.RAW))
        return [ErrorCodes.FIELDS_INVALID, `frame ${meta.seq}: .npy frames carry raw fields only`];
      // Coded columns are small on the wire; decoded they are held to what the same fields could
      // take raw in a frame (as on the bus), so a 64 MiB payload cannot claim gigabytes.
      const fieldBytes = table.columns.reduce(
        (sum, column) => sum + meta.pointCount * FIELD_TYPES[column.type].bytes,
        0,
      );
      if (fieldBytes > limits.maxFrameBytes) {
        return [
          ErrorCodes.FRAME_TOO_LARGE,
          `frame ${meta.seq}: its fields take ${fieldBytes} bytes decoded, over the limit of ${limits.maxFrameBytes}`,
        ];
      }
    }
    // The points part: the whole payload without fields.
    const pointsBytes = table?.pointsBytes ?? meta.payloadBytes;
    if (
      meta.encoding === Encoding.Q16 &&
      pointsBytes !== QUANT_HEADER_BYTES + meta.pointCount * 6
    ) {
      return [
        ErrorCodes.FRAME_LENGTH_MISMATCH,
        `a q16 frame of ${meta.pointCount} points is ${QUANT_HEADER_BYTES + meta.pointCount * 6} bytes, not ${pointsBytes}`,
      ];
    }
    // The decoder checks the rest of an encoded payload once it is complete.
    if (meta.encoding !== Encoding.NPY) return table;
    try {
      const npy = parseNpyHeader(data);
      const rows = pointCountOfNpyHeader(npy);
      if (rows !== meta.pointCount || pointsBytes !== npy.dataOffset + meta.pointCount * 12) {
        return [
          ErrorCodes.FRAME_LENGTH_MISMATCH,
          `header says ${meta.pointCount} points in ${pointsBytes} bytes, .npy says ${rows} points in ${npy.dataOffset + rows * 12} bytes`,
        ];
      }
    } catch (error) {
      if (!(error instanceof PointstreamError)) throw error;
      // The first chunk must hold the whole .npy header; a short one is a framing error.
      return [
        error.code === ErrorCodes.NPY_TRUNCATED ? ErrorCodes.FRAME_LENGTH_MISMATCH : error.code,
        error.message,
      ];
    }
    return table;
  }

  /** Remembers a rejected frame so that its remaining chunks are dropped without more reports. */
  #discard(seq: number, chunkCount: number): void {
    if (chunkCount <= 1) return;
    this.#discarding.delete(seq);
    this.#discarding.set(seq, chunkCount);
    if (this.#discarding.size > MAX_DISCARDING)
      this.#discarding.delete(this.#discarding.keys().next().value as number);
  }

  #newState(start: FrameMeta, table: FieldTable | undefined, payload: Uint8Array): FrameState {
    let meta = start;
    if (meta.fieldTable !== undefined) {
      const { fieldTable, ...rest } = meta;
      void fieldTable;
      meta = rest;
    }
    const pointsEnd = table?.pointsBytes ?? meta.payloadBytes;
    const dataOffset = pointsEnd - meta.pointCount * 12;
    const incremental =
      meta.encoding === Encoding.NPY &&
      !this.limits.allowNonFinite &&
      (payload.byteOffset + dataOffset) % 4 === 0;
    return {
      meta,
      table,
      payload,
      nextIndex: 0,
      received: 0,
      crc: 0,
      startedAt: this.#now(),
      dataOffset,
      pointsEnd,
      checkedTo: incremental ? dataOffset : -1,
      sweptIndex: -1,
      staleSweeps: 0,
    };
  }

  /**
   * Checks the whole floats received since the last check (of the points part: field values may
   * be NaN); a rejection if one is not finite.
   */
  #checkFinite(state: FrameState): PushResult | undefined {
    const { dataOffset, checkedTo } = state;
    const received = Math.min(state.received, state.pointsEnd);
    if (received <= checkedTo) return undefined;
    const end = received - ((received - dataOffset) % 4);
    if (end <= checkedTo) return undefined;
    const { payload } = state;
    const values = new Float32Array(
      payload.buffer,
      payload.byteOffset + checkedTo,
      (end - checkedTo) / 4,
    );
    const bad = indexOfNonFinite(values);
    if (bad >= 0) {
      const error = nonFiniteError(
        state.meta.seq,
        (checkedTo - dataOffset) / 4 + bad,
        values[bad] as number,
      );
      return this.#fail(state, error.code, error.message);
    }
    state.checkedTo = end;
    return undefined;
  }

  /** Appends the payload slice of chunk `state.nextIndex`; completes the frame after its last chunk. */
  #append(state: FrameState, data: Uint8Array): PushResult {
    const { meta } = state;
    const index = state.nextIndex;
    const received = state.received + data.length;
    if (received > meta.payloadBytes) {
      return this.#fail(
        state,
        ErrorCodes.CHUNK_OVERFLOW,
        `chunk ${index} overflows frame ${meta.seq}: ${received} of ${meta.payloadBytes} bytes`,
      );
    }
    if (data.length > 0) {
      state.payload.set(data, state.received);
      state.crc = this.#checksum(data, state.crc);
    }
    state.received = received;
    state.nextIndex = index + 1;
    if (state.checkedTo >= 0) {
      const rejected = this.#checkFinite(state);
      if (rejected !== undefined) return rejected;
    }
    if (state.nextIndex < meta.chunkCount) return PENDING;
    if (received !== meta.payloadBytes) {
      return this.#fail(
        state,
        ErrorCodes.FRAME_LENGTH_MISMATCH,
        `frame ${meta.seq} ended after ${received} of ${meta.payloadBytes} bytes`,
      );
    }
    return this.#complete(state);
  }

  /**
   * Rejects the frame of `state`. Once its last chunk has been consumed it is forgotten; before,
   * it stays as a discarding entry so that its remaining chunks are dropped quietly.
   */
  #fail(state: FrameState, code: ErrorCode, message: string): PushResult {
    this.#release(state);
    this.#recycle?.(state.payload);
    this.#frames.delete(state.meta.seq);
    if (state.nextIndex < state.meta.chunkCount)
      this.#discard(state.meta.seq, state.meta.chunkCount);
    return this.#reject(state.meta.seq, code, message);
  }

  /** Gives back the memory of a frame leaving reassembly (completed, rejected or reset). */
  #release(state: FrameState): void {
    this.#bytesBuffered -= memoryOf(state.meta);
    this.#budget?.release(memoryOf(state.meta));
  }

  #reject(seq: number, code: ErrorCode, message: string): PushResult {
    return {
      kind: 'rejected',
      seq,
      error: new PointstreamError(code, message, { details: { seq } }),
      fatal: false,
    };
  }

  #complete(state: FrameState): PushResult {
    const { meta } = state;
    const payload = state.payload;
    if (state.crc !== meta.crc32) {
      return this.#fail(
        state,
        ErrorCodes.FRAME_CHECKSUM,
        `frame ${meta.seq} checksum 0x${state.crc.toString(16)} does not match 0x${meta.crc32.toString(16)}`,
      );
    }
    if (meta.encoding !== Encoding.NPY)
      return this.#deferDecode ? this.#handOver(state) : this.#decode(state);
    const points = float32View(payload, state.dataOffset, meta.pointCount * 3);
    let fields = NO_FIELDS;
    if (state.table !== undefined) fields = viewRawFields(payload, state.table, meta.pointCount);
    if (!this.limits.allowNonFinite && state.checkedTo < 0) {
      const bad = indexOfNonFinite(points);
      if (bad >= 0) {
        const error = nonFiniteError(meta.seq, bad, points[bad] as number);
        return this.#fail(state, error.code, error.message);
      }
    }
    return this.#deliver(state, points, fields);
  }

  /** Reserves what an encoded frame decodes to; a refusal rejects the frame. */
  #reserveDecoded(state: FrameState, decodedBytes: number): PushResult | undefined {
    if (!this.#budget || this.#budget.reserve(decodedBytes)) return undefined;
    return this.#fail(
      state,
      ErrorCodes.SERVER_MEMORY,
      `no memory to decode frame ${state.meta.seq} into ${decodedBytes} bytes: the reassembly budget is in use`,
    );
  }

  /**
   * Decodes an encoded payload; every decoded value is finite (docs/encodings.md). The decoded
   * points are reserved first, now that the payload is known to be what its sender checksummed.
   */
  #decode(state: FrameState): PushResult {
    const { meta, table } = state;
    const decodedBytes = decodedBytesOf(meta, table);
    const refused = this.#reserveDecoded(state, decodedBytes);
    if (refused !== undefined) return refused;
    let points: Float32Array;
    let fields = NO_FIELDS;
    try {
      points = decodePoints(pointsPart(state.payload, table), meta.encoding, meta.pointCount, {
        maxPoints: this.limits.maxPointsPerFrame,
      });
      if (table !== undefined) fields = decodeFields(state.payload, table, meta.pointCount);
    } catch (error) {
      if (!(error instanceof PointstreamError)) throw error;
      return this.#fail(state, error.code, `frame ${meta.seq}: ${error.message}`);
    } finally {
      // Once delivered the points are the consumer's (the recorder counts what it keeps).
      this.#budget?.release(decodedBytes);
    }
    return this.#deliver(state, points, fields);
  }

  /**
   * An encoded frame leaves reassembly undecoded; its payload and the points it decodes to stay
   * reserved until `releaseDecoded` (the points are reserved now, as {@link #decode} does, once
   * the payload is known to be what its sender checksummed).
   */
  #handOver(state: FrameState): PushResult {
    const { meta } = state;
    const decodedBytes = decodedBytesOf(meta, state.table);
    const refused = this.#reserveDecoded(state, decodedBytes);
    if (refused !== undefined) return refused;
    const reserved = memoryOf(meta) + decodedBytes;
    this.#bytesBuffered -= reserved;
    this.#frames.delete(meta.seq);
    return {
      kind: 'encoded',
      frame: {
        seq: meta.seq,
        captureTime: meta.captureTime,
        pointCount: meta.pointCount,
        encoding: meta.encoding,
        payload: state.payload,
        fieldTable: state.table,
        crc32: meta.crc32,
        chunkCount: meta.chunkCount,
        startedAt: state.startedAt,
        completedAt: this.#now(),
        reserved,
      },
    };
  }

  #deliver(state: FrameState, points: Float32Array, fields: PointFields): PushResult {
    const { meta } = state;
    this.#release(state);
    this.#frames.delete(meta.seq);
    return {
      kind: 'frame',
      frame: {
        seq: meta.seq,
        captureTime: meta.captureTime,
        pointCount: meta.pointCount,
        encoding: meta.encoding,
        points,
        payload: state.payload,
        fieldTable: state.table,
        fields,
        crc32: meta.crc32,
        chunkCount: meta.chunkCount,
        startedAt: state.startedAt,
        completedAt: this.#now(),
      },
    };
  }
}
