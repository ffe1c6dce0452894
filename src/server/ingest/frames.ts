import { Encoding } from '../../wire/chunk.js';
import { POINT_ENCODING_NAMES, pointEncodingIdOf } from '../../wire/encodings/index.js';
import type { PointEncodingName } from '../../wire/encodings/index.js';
import type { PlainFrame } from '../../wire/plain.js';
import type { AssembledFrame } from '../../wire/reassembler.js';
import { NO_FIELDS } from '../../wire/fields.js';
import type { PointFields } from '../../wire/fields.js';
import type { FrameBufferPool } from '../buffer-pool.js';
import type { ReceivedFrame } from '../types.js';

/** The session and stream a channel's frames belong to. */
export interface FrameOrigin {
  readonly sessionId: string;
  readonly stream: string;
}

/** Takes a verified frame (counts, logs, receipts): the receiver's side of a delivery. */
export type AcceptFrame = (frame: ReceivedFrame) => void;

/** Options of {@link FrameDelivery}. */
export interface FrameDeliveryOptions extends FrameOrigin {
  /** Where payloads go back once nobody holds them (buffer reuse on); undefined: to the GC. */
  readonly pool: FrameBufferPool | undefined;
  readonly accept: AcceptFrame;
}

/** A plain-form message, verified (`decodePlainFrame`). */
export interface PlainDelivery {
  readonly seq: number;
  /** The message: with buffer reuse on, valid during the listeners unless retained. */
  readonly bytes: Uint8Array;
  readonly frame: PlainFrame;
  /** `performance.now()` when the message arrived. */
  readonly startedAt: number;
  readonly retain: () => () => void;
}

const ENCODING_NAMES: Partial<Record<number, PointEncodingName>> = Object.fromEntries(
  POINT_ENCODING_NAMES.map((name) => [pointEncodingIdOf[name], name]),
);
const keep = (): (() => void) => () => undefined;

/** Turns verified frames of one channel into {@link ReceivedFrame}s and hands them to `accept`. */
export class FrameDelivery {
  readonly #sessionId: string;
  readonly #stream: string;
  readonly #pool: FrameBufferPool | undefined;
  readonly #accept: AcceptFrame;

  constructor(options: FrameDeliveryOptions) {
    this.#sessionId = options.sessionId;
    this.#stream = options.stream;
    this.#pool = options.pool;
    this.#accept = options.accept;
  }

  /**
   * A reassembled (and decoded) frame. With buffer reuse its payload goes back to the pool once
   * `accept` has returned, unless a listener called `retain()`: then once every hold is released.
   */
  chunked(
    frame: Omit<AssembledFrame, 'fields'> & { readonly fields?: PointFields | undefined },
  ): void {
    const pool = this.#pool;
    // The receiver's own hold, dropped once the listeners have run; `retain()` adds more.
    let holds = 1;
    const drop = (): void => {
      if (--holds === 0) pool?.recycle(frame.payload);
    };
    const retain =
      pool === undefined
        ? keep
        : (): (() => void) => {
            if (holds === 0) throw new Error('frame.retain() after its buffers were reused');
            holds++;
            let held = true;
            return () => {
              if (held) {
                held = false;
                drop();
              }
            };
          };
    const table = frame.fieldTable;
    const pointsPart =
      table === undefined ? frame.payload : frame.payload.subarray(0, table.pointsBytes);
    this.#accept({
      sessionId: this.#sessionId,
      stream: this.#stream,
      seq: frame.seq,
      pointCount: frame.pointCount,
      points: frame.points,
      form: 'chunked',
      encoding: ENCODING_NAMES[frame.encoding] ?? 'raw',
      npy: frame.encoding === Encoding.NPY ? pointsPart : undefined,
      encoded: frame.encoding === Encoding.NPY ? undefined : pointsPart,
      fields: frame.fields ?? NO_FIELDS,
      fieldTable: table,
      payload: table === undefined ? undefined : frame.payload,
      byteLength: frame.payload.length,
      captureTime: frame.captureTime,
      receivedAt: Date.now(),
      crc32: frame.crc32,
      assemblyMs: frame.completedAt - frame.startedAt,
      retain,
    });
    drop();
  }

  /** A plain-form message; its memory is the caller's to free afterwards (unless retained). */
  plain({ seq, bytes, frame, startedAt, retain }: PlainDelivery): void {
    this.#accept({
      sessionId: this.#sessionId,
      stream: this.#stream,
      seq,
      pointCount: frame.pointCount,
      points: frame.points,
      form: frame.format === 'npy' ? 'plain-npy' : 'plain-raw',
      encoding: 'raw',
      // A structured .npy's x, y, z and fields were copied apart into the protocol's layout.
      npy: frame.format !== 'npy' ? undefined : frame.payload === undefined ? bytes : frame.npy,
      encoded: undefined,
      fields: frame.fields,
      fieldTable: frame.fieldTable,
      payload: frame.payload,
      byteLength: bytes.length,
      captureTime: undefined,
      receivedAt: Date.now(),
      crc32: undefined,
      assemblyMs: performance.now() - startedAt,
      retain,
    });
  }
}

/** The fields of a verified frame's `frame` log line. */
export function frameLogFields(frame: ReceivedFrame): Record<string, unknown> {
  const latencyMs =
    frame.captureTime === undefined
      ? undefined
      : Math.round((frame.receivedAt - frame.captureTime) * 10) / 10;
  return {
    event: 'frame',
    seq: frame.seq,
    points: frame.pointCount,
    bytes: frame.byteLength,
    form: frame.form,
    latencyMs,
    assemblyMs: Math.round(frame.assemblyMs * 10) / 10,
    checksum: frame.crc32 === undefined ? 'none' : 'ok',
    // Names only (cheap), and only for frames that have fields: other lines stay as they were.
    ...(frame.fieldTable === undefined
      ? {}
      : { fields: frame.fieldTable.columns.map((column) => column.name) }),
  };
}
