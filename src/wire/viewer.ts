import { ErrorCodes, PointstreamError, invalidOption } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { PointEncodingId } from './encodings/index.js';
import { encodeQ16, readQ16Payload } from './encodings/q16.js';
import { QUANT_HEADER_BYTES } from './encodings/quantize.js';
import { indexOfNonFinite } from './points.js';

/*
 * Live viewer wire format, version 2 (channel protocol `pointstream-viewer/2`; docs/protocol.md,
 * "Live viewer"). Pure: no Node-only API, no DOM. The server encodes with it
 * (src/server/viewer.ts) and the page decodes with it (web/viewer, bundled), so the format is
 * written once.
 *
 * The page creates the channel. The server sends, all integers and floats little-endian:
 * - text `hello` once the channel opens, `closing` before it closes it (JSON);
 * - per frame, a 40-byte START message, then DATA messages `'PSVD' | u32 seq | u32 offset | bytes`
 *   that carry the frame's point payload in order. The payload is a `q16` payload exactly as
 *   src/wire/encodings writes it (56-byte quantization header, then u16 x, y, z per point), so
 *   there is one q16 format in the project; the page hands the u16s to WebGL as they arrived.
 * The page answers each frame with text `{"type":"ack","seq":n}`; an ack covers earlier frames.
 */

/** The viewer channel's protocol string. */
export const VIEWER_PROTOCOL = 'pointstream-viewer/2';
export const VIEWER_VERSION = 2;
export const VIEWER_START_MAGIC = 0x46565350; // 'PSVF' as little-endian bytes
export const VIEWER_DATA_MAGIC = 0x44565350; // 'PSVD'
export const VIEWER_START_BYTES = 40;
export const VIEWER_DATA_HEADER_BYTES = 12;
/** Most points a viewer frame may carry: 56 + 6 N bytes stay well within a u32 and in memory. */
export const VIEWER_MAX_POINTS = 16_000_000;
/** Longest text message either side reads; longer ones are ignored. */
export const VIEWER_MAX_CONTROL_CHARS = 1024;

/** A frame decimated and quantized once, shared by every viewer of its session. */
export interface EncodedViewerFrame {
  /** The ingest frame's sequence number. */
  readonly seq: number;
  readonly pointCount: number;
  /** Points in the ingest frame, before decimation. */
  readonly sourcePointCount: number;
  /** Sender's capture time (ms since the epoch, sender's clock), or undefined. */
  readonly captureTime: number | undefined;
  /** Point encoding id of `payload`: always q16 (2) in version 2. */
  readonly encoding: typeof PointEncodingId.Q16;
  /** A q16 payload of `pointCount` points (docs/encodings.md). */
  readonly payload: Uint8Array;
}

/**
 * Decimates `points` (x, y, z float32 triples) to at most `maxPoints` with an even stride (point
 * floor(i x N / M) for i < M: deterministic, spread over the whole frame) and encodes them as q16
 * within their own bounds. Points with a NaN or infinite coordinate (only possible when the server
 * allows them) are left out. Reads `points` only during the call: its buffer may be reused after.
 */
export function encodeViewerFrame(
  points: Float32Array,
  seq: number,
  captureTime: number | undefined,
  maxPoints: number,
): EncodedViewerFrame {
  if (!Number.isSafeInteger(maxPoints) || maxPoints < 0 || maxPoints > VIEWER_MAX_POINTS)
    throw invalidOption('maxPoints', `an integer from 0 to ${VIEWER_MAX_POINTS}`, maxPoints);
  const sourcePointCount = Math.floor(points.length / 3);
  let count = Math.min(sourcePointCount, maxPoints);
  // The points to send, contiguous: the bounds and quantization loops then run over one dense
  // array (measured: twice as fast as indexing the frame through the stride in each loop).
  let picked = points.length === count * 3 ? points : points.subarray(0, count * 3);
  if (count < sourcePointCount) {
    picked = new Float32Array(count * 3);
    // Point floor(i x N / M), stepped in integers (no division per point).
    const whole = Math.floor(sourcePointCount / count);
    const rest = sourcePointCount % count;
    for (let i = 0, k = 0, j = 0, carry = 0; i < count; i++, k += 3, j += whole) {
      const from = j * 3;
      picked[k] = points[from] as number;
      picked[k + 1] = points[from + 1] as number;
      picked[k + 2] = points[from + 2] as number;
      carry += rest;
      if (carry >= count) {
        carry -= count;
        j++;
      }
    }
  }
  if (indexOfNonFinite(picked) >= 0) {
    picked = finitePoints(picked);
    count = picked.length / 3;
  }
  return {
    seq: seq >>> 0,
    pointCount: count,
    sourcePointCount,
    captureTime,
    encoding: PointEncodingId.Q16,
    payload: encodeQ16(picked, count).bytes,
  };
}

/** The points of `points` whose three coordinates are finite, in order (a new array). */
function finitePoints(points: Float32Array): Float32Array {
  const out = new Float32Array(points.length);
  let n = 0;
  for (let k = 0; k < points.length; k += 3) {
    const x = points[k] as number;
    const y = points[k + 1] as number;
    const z = points[k + 2] as number;
    // x - x is 0 for finite x, NaN for NaN and the infinities.
    if (x - x === 0 && y - y === 0 && z - z === 0) {
      out[n++] = x;
      out[n++] = y;
      out[n++] = z;
    }
  }
  return out.slice(0, n);
}

/**
 * A viewer frame made of a q16 payload the server already holds (an ingest frame sent as q16,
 * already checked by its decoder): forwarded as it is, never re-encoded. The caller copies the
 * payload if its buffer is reused.
 */
export function viewerFrameOfQ16(
  payload: Uint8Array,
  pointCount: number,
  sourcePointCount: number,
  seq: number,
  captureTime: number | undefined,
): EncodedViewerFrame {
  readQ16Payload(payload, pointCount);
  return {
    seq: seq >>> 0,
    pointCount,
    sourcePointCount,
    captureTime,
    encoding: PointEncodingId.Q16,
    payload,
  };
}

/**
 * The START message of `frame`, for a viewer that has dropped `dropped` frames so far:
 *
 * `'PSVF' | u8 version 2 | u8 encoding 2 | u16 40 | u32 seq | u32 points | u32 source points |
 * u32 dropped | u32 payload bytes | u32 0 | f64 capture time (NaN when unknown)`
 */
export function encodeViewerStart(frame: EncodedViewerFrame, dropped: number): Uint8Array {
  const bytes = new Uint8Array(VIEWER_START_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, VIEWER_START_MAGIC, true);
  view.setUint8(4, VIEWER_VERSION);
  view.setUint8(5, frame.encoding);
  view.setUint16(6, VIEWER_START_BYTES, true);
  view.setUint32(8, frame.seq >>> 0, true);
  view.setUint32(12, frame.pointCount, true);
  view.setUint32(16, frame.sourcePointCount, true);
  view.setUint32(20, Math.min(Math.max(dropped, 0), 0xffffffff), true);
  view.setUint32(24, frame.payload.length, true);
  view.setUint32(28, 0, true);
  view.setFloat64(32, frame.captureTime ?? NaN, true);
  return bytes;
}

/** The DATA messages of `frame`, each at most `maxMessageBytes` long (header included). */
export function encodeViewerData(frame: EncodedViewerFrame, maxMessageBytes: number): Uint8Array[] {
  const perMessage = maxMessageBytes - VIEWER_DATA_HEADER_BYTES;
  if (!Number.isSafeInteger(maxMessageBytes) || perMessage < 1)
    throw invalidOption(
      'maxMessageBytes',
      `an integer above ${VIEWER_DATA_HEADER_BYTES}`,
      maxMessageBytes,
    );
  const messages: Uint8Array[] = [];
  const payload = frame.payload;
  for (let offset = 0; offset < payload.length; offset += perMessage) {
    const part = payload.subarray(offset, offset + perMessage);
    const message = new Uint8Array(VIEWER_DATA_HEADER_BYTES + part.length);
    const view = new DataView(message.buffer);
    view.setUint32(0, VIEWER_DATA_MAGIC, true);
    view.setUint32(4, frame.seq >>> 0, true);
    view.setUint32(8, offset, true);
    message.set(part, VIEWER_DATA_HEADER_BYTES);
    messages.push(message);
  }
  return messages;
}

/** Bytes on the wire for one frame sent in messages of at most `maxMessageBytes`. */
export function viewerFrameWireBytes(frame: EncodedViewerFrame, maxMessageBytes: number): number {
  const perMessage = maxMessageBytes - VIEWER_DATA_HEADER_BYTES;
  const messages = Math.ceil(frame.payload.length / perMessage);
  return VIEWER_START_BYTES + frame.payload.length + messages * VIEWER_DATA_HEADER_BYTES;
}

/** One frame as the page receives it: q16 integers and the offset and scale that give them back. */
export interface ViewerFrame {
  readonly seq: number;
  readonly pointCount: number;
  /** Points in the frame the server received (before decimation). */
  readonly sourcePointCount: number;
  /** Frames the server dropped for this viewer so far, because it was still busy. */
  readonly dropped: number;
  /** Sender's capture time (ms since the epoch, sender's clock), or undefined. */
  readonly captureTime: number | undefined;
  readonly encoding: typeof PointEncodingId.Q16;
  /** The q16 payload as received (decodePoints(payload, 2, pointCount) gives float32 back). */
  readonly payload: Uint8Array;
  /** From the q16 header: coordinate = offset[a] + q x scale[a]. */
  readonly offset: readonly [number, number, number];
  readonly scale: readonly [number, number, number];
  /** N x 3 u16, x y z interleaved: a view of `payload` past its header. */
  readonly quantized: Uint16Array;
}

function malformed(code: ErrorCode, message: string): PointstreamError {
  return new PointstreamError(code, `viewer stream: ${message}`);
}

interface Pending {
  readonly seq: number;
  readonly pointCount: number;
  readonly sourcePointCount: number;
  readonly dropped: number;
  readonly captureTime: number | undefined;
  readonly payload: Uint8Array;
  received: number;
}

/**
 * Reassembles viewer frames from the server's binary messages, in order. Every declared size is
 * checked before anything is allocated: at most `56 + 6 x maxPoints` bytes per frame. Any
 * inconsistency throws a {@link PointstreamError} with a stable code (docs/protocol.md) and drops
 * the frame being received; the channel is ordered and reliable, so it means a broken server and
 * the page closes the viewer.
 */
export class ViewerReassembler {
  readonly #maxPoints: number;
  #pending: Pending | undefined;

  constructor(maxPoints: number) {
    if (!Number.isSafeInteger(maxPoints) || maxPoints < 0 || maxPoints > VIEWER_MAX_POINTS)
      throw invalidOption('maxPoints', `an integer from 0 to ${VIEWER_MAX_POINTS}`, maxPoints);
    this.#maxPoints = maxPoints;
  }

  /** Whether a frame has started and not yet completed. */
  get receiving(): boolean {
    return this.#pending !== undefined;
  }

  /** Feeds one binary message; returns the frame it completes, if any. */
  push(message: ArrayBuffer | Uint8Array): ViewerFrame | undefined {
    const bytes = message instanceof Uint8Array ? message : new Uint8Array(message);
    try {
      if (bytes.length < 4)
        throw malformed(ErrorCodes.CHUNK_TRUNCATED, `message of ${bytes.length} bytes`);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      const magic = view.getUint32(0, true);
      if (magic === VIEWER_START_MAGIC) return this.#start(view);
      if (magic === VIEWER_DATA_MAGIC) return this.#data(view, bytes);
      throw malformed(ErrorCodes.CHUNK_BAD_TYPE, `unknown message magic 0x${magic.toString(16)}`);
    } catch (error) {
      this.#pending = undefined;
      throw error;
    }
  }

  #start(view: DataView): ViewerFrame | undefined {
    if (this.#pending !== undefined)
      throw malformed(
        ErrorCodes.FRAME_INCOMPLETE,
        `START before frame ${this.#pending.seq} was complete`,
      );
    // Version and encoding first: a START of another version may have another size.
    if (view.byteLength < 8)
      throw malformed(ErrorCodes.CHUNK_TRUNCATED, `START of ${view.byteLength} bytes`);
    const version = view.getUint8(4);
    if (version !== VIEWER_VERSION)
      throw malformed(ErrorCodes.CHUNK_BAD_VERSION, `version ${version}, not ${VIEWER_VERSION}`);
    const encoding = view.getUint8(5);
    if (encoding !== PointEncodingId.Q16)
      throw malformed(ErrorCodes.ENCODING_UNSUPPORTED, `point encoding ${encoding}, not q16 (2)`);
    if (view.byteLength !== VIEWER_START_BYTES)
      throw malformed(
        view.byteLength < VIEWER_START_BYTES
          ? ErrorCodes.CHUNK_TRUNCATED
          : ErrorCodes.CHUNK_BAD_HEADER,
        `START of ${view.byteLength} bytes, not ${VIEWER_START_BYTES}`,
      );
    const headerBytes = view.getUint16(6, true);
    const reserved = view.getUint32(28, true);
    if (headerBytes !== VIEWER_START_BYTES || reserved !== 0)
      throw malformed(
        ErrorCodes.CHUNK_BAD_HEADER,
        `START declares ${headerBytes} header bytes, reserved ${reserved}`,
      );
    const seq = view.getUint32(8, true);
    const pointCount = view.getUint32(12, true);
    const sourcePointCount = view.getUint32(16, true);
    const dropped = view.getUint32(20, true);
    const payloadBytes = view.getUint32(24, true);
    const captureTime = view.getFloat64(32, true);
    if (pointCount > this.#maxPoints)
      throw malformed(
        ErrorCodes.FRAME_TOO_MANY_POINTS,
        `${pointCount} points, above the budget of ${this.#maxPoints}`,
      );
    if (sourcePointCount < pointCount)
      throw malformed(
        ErrorCodes.CHUNK_BAD_HEADER,
        `${pointCount} points sent of a frame of ${sourcePointCount}`,
      );
    if (payloadBytes !== QUANT_HEADER_BYTES + pointCount * 6)
      throw malformed(
        ErrorCodes.FRAME_LENGTH_MISMATCH,
        `${payloadBytes} payload bytes for ${pointCount} q16 points (${QUANT_HEADER_BYTES + pointCount * 6})`,
      );
    if (!Number.isNaN(captureTime) && !Number.isFinite(captureTime))
      throw malformed(ErrorCodes.CHUNK_BAD_HEADER, `capture time ${captureTime}`);
    this.#pending = {
      seq,
      pointCount,
      sourcePointCount,
      dropped,
      captureTime: Number.isNaN(captureTime) ? undefined : captureTime,
      payload: new Uint8Array(payloadBytes),
      received: 0,
    };
    return undefined;
  }

  #data(view: DataView, bytes: Uint8Array): ViewerFrame | undefined {
    if (bytes.length <= VIEWER_DATA_HEADER_BYTES)
      throw malformed(
        ErrorCodes.CHUNK_TRUNCATED,
        `DATA of ${bytes.length} bytes carries no payload`,
      );
    const pending = this.#pending;
    const seq = view.getUint32(4, true);
    if (pending === undefined)
      throw malformed(ErrorCodes.CHUNK_UNKNOWN_FRAME, `DATA of frame ${seq} without a START`);
    if (seq !== pending.seq)
      throw malformed(
        ErrorCodes.CHUNK_UNKNOWN_FRAME,
        `DATA of frame ${seq} inside frame ${pending.seq}`,
      );
    const offset = view.getUint32(8, true);
    if (offset !== pending.received)
      throw malformed(
        ErrorCodes.CHUNK_OUT_OF_ORDER,
        `DATA at offset ${offset}, expected ${pending.received}`,
      );
    const part = bytes.subarray(VIEWER_DATA_HEADER_BYTES);
    if (offset + part.length > pending.payload.length)
      throw malformed(
        ErrorCodes.CHUNK_OVERFLOW,
        `DATA up to byte ${offset + part.length} of a ${pending.payload.length}-byte payload`,
      );
    pending.payload.set(part, offset);
    pending.received += part.length;
    if (pending.received < pending.payload.length) return undefined;
    this.#pending = undefined;
    // PS_ERR_ENCODING_CORRUPT when the q16 header disagrees or decodes outside float32.
    const { offset: o, scale: s, quantized } = readQ16Payload(pending.payload, pending.pointCount);
    return {
      seq: pending.seq,
      pointCount: pending.pointCount,
      sourcePointCount: pending.sourcePointCount,
      dropped: pending.dropped,
      captureTime: pending.captureTime,
      encoding: PointEncodingId.Q16,
      payload: pending.payload,
      offset: [o[0] as number, o[1] as number, o[2] as number],
      scale: [s[0] as number, s[1] as number, s[2] as number],
      quantized,
    };
  }
}

// ---- text messages ----

/** Server to page. */
export type ViewerControl =
  | {
      readonly type: 'hello';
      readonly viewer: string;
      /** The stream watched; its frames come from whichever session feeds it. */
      readonly stream?: string;
      /** The stream's live session when the viewer opened ('' between sessions). */
      readonly session: string;
      /** The node that ingests the stream, when it is not the viewer's (a cluster). */
      readonly node?: string;
      readonly maxPoints: number;
      readonly maxFps: number;
    }
  | { readonly type: 'closing'; readonly code: string; readonly message: string };

export function encodeViewerControl(message: ViewerControl): string {
  return JSON.stringify(message);
}

/** Parses a text message from the server; undefined for anything it does not know. */
export function decodeViewerControl(text: string): ViewerControl | undefined {
  const message = parseObject(text);
  if (message === undefined) return undefined;
  if (
    message.type === 'hello' &&
    typeof message.viewer === 'string' &&
    typeof message.session === 'string' &&
    Number.isSafeInteger(message.maxPoints) &&
    typeof message.maxFps === 'number'
  )
    return {
      type: 'hello',
      viewer: message.viewer,
      ...(typeof message.stream === 'string' ? { stream: message.stream } : {}),
      session: message.session,
      ...(typeof message.node === 'string' ? { node: message.node } : {}),
      maxPoints: message.maxPoints as number,
      maxFps: message.maxFps,
    };
  if (
    message.type === 'closing' &&
    typeof message.code === 'string' &&
    typeof message.message === 'string'
  )
    return { type: 'closing', code: message.code, message: message.message };
  return undefined;
}

/** Page to server: the frame `seq` was drawn, or skipped for a newer one. */
export function encodeViewerAck(seq: number): string {
  return JSON.stringify({ type: 'ack', seq });
}

/** The seq of an ack from the page; undefined for anything else. */
export function decodeViewerAck(text: string): number | undefined {
  const message = parseObject(text);
  return message?.type === 'ack' &&
    Number.isSafeInteger(message.seq) &&
    (message.seq as number) >= 0 &&
    (message.seq as number) <= 0xffffffff
    ? (message.seq as number)
    : undefined;
}

function parseObject(text: string): Record<string, unknown> | undefined {
  if (text.length > VIEWER_MAX_CONTROL_CHARS) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
    ? (parsed as Record<string, unknown>)
    : undefined;
}
