import { ErrorCodes, PointstreamError, invalidOption } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { PointEncodingId } from './encodings/index.js';
import { encodeQ16, readQ16Payload } from './encodings/q16.js';
import { QUANT_HEADER_BYTES } from './encodings/quantize.js';
import { indexOfNonFinite } from './points.js';
import { FIELD_TYPE_NAMES, isFieldName } from './fields.js';
import {
  HEIGHT,
  VIEWER_MAX_COLOURS,
  ViewerColourKind,
  colourChannelBytes,
  VIEWER_MAX_COLOUR_NAME,
} from './viewer-colour.js';
import type { ViewerColour, ViewerField } from './viewer-colour.js';

/*
 * Live viewer wire format, version 3 (channel protocol `pointstream-viewer/3`; docs/protocol.md,
 * "Live viewer"). Pure: no Node-only API, no DOM. The server encodes with it
 * (src/server/viewer.ts) and the page decodes with it (web/viewer, bundled), so the format is
 * written once.
 *
 * The page creates the channel. The server sends, all integers and floats little-endian:
 * - text `hello` once the channel opens, `closing` before it closes it (JSON);
 * - per frame, a START message (40 bytes, then one entry per colour channel), then DATA messages
 *   `'PSVD' | u32 seq | u32 offset | bytes` that carry the frame's payload in order. The payload is
 *   a `q16` payload exactly as src/wire/encodings writes it (56-byte quantization header, then u16
 *   x, y, z per point), so there is one q16 format in the project; the page hands the u16s to
 *   WebGL as they arrived. Then each colour channel (src/wire/viewer-colour.ts), at the next
 *   multiple of 4: what the page colours the points by, besides height.
 * The page answers each frame with text `{"type":"ack","seq":n}`; an ack covers earlier frames,
 * and picks a colour with `{"type":"colour","field":"intensity"}`.
 */

/** The viewer channel's protocol string. */
export const VIEWER_PROTOCOL = 'pointstream-viewer/3';
export const VIEWER_VERSION = 3;
export const VIEWER_START_MAGIC = 0x46565350; // 'PSVF' as little-endian bytes
export const VIEWER_DATA_MAGIC = 0x44565350; // 'PSVD'
export const VIEWER_START_BYTES = 40;
export const VIEWER_DATA_HEADER_BYTES = 12;
/** Fixed bytes of a colour channel's START entry: `kind u8 | name length u8 | u16 0 | f64 min | f64 max`. */
export const VIEWER_COLOUR_ENTRY_BYTES = 20;
/** Colour channels start at multiples of this in the payload (a u16 channel is then viewed in place). */
export const VIEWER_COLOUR_ALIGN = 4;
/** Most points a viewer frame may carry: 56 + 6 N bytes (+ channels) stay well within a u32. */
export const VIEWER_MAX_POINTS = 16_000_000;
/** Longest text message either side reads; longer ones are ignored (a list of 32 fields fits). */
export const VIEWER_MAX_CONTROL_CHARS = 4096;

/** A frame decimated and quantized once, shared by every viewer of its session. */
export interface EncodedViewerFrame {
  /** The ingest frame's sequence number. */
  readonly seq: number;
  readonly pointCount: number;
  /** Points in the ingest frame, before decimation. */
  readonly sourcePointCount: number;
  /** Sender's capture time (ms since the epoch, sender's clock), or undefined. */
  readonly captureTime: number | undefined;
  /** Point encoding id of `payload`: always q16 (2). */
  readonly encoding: typeof PointEncodingId.Q16;
  /** A q16 payload of `pointCount` points (docs/encodings.md). */
  readonly payload: Uint8Array;
  /** Colour channels of the same points, in this order on the wire (none: height only). */
  readonly colours?: readonly ViewerColour[];
}

/** The points a viewer frame keeps of an ingest frame. */
export interface ViewerPick {
  /** x, y, z of the points kept (the frame's own array when it keeps them all). */
  readonly positions: Float32Array;
  /** The source index of each point kept; undefined when they are points 0 to N - 1. */
  readonly indices: Uint32Array | undefined;
  readonly sourcePointCount: number;
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
  return viewerFrameOfPick(pickViewerPoints(points, maxPoints), seq, captureTime);
}

/** The q16 viewer frame (no colour) of the points `pick` kept. */
export function viewerFrameOfPick(
  pick: ViewerPick,
  seq: number,
  captureTime: number | undefined,
): EncodedViewerFrame {
  const count = pick.positions.length / 3;
  return {
    seq: seq >>> 0,
    pointCount: count,
    sourcePointCount: pick.sourcePointCount,
    captureTime,
    encoding: PointEncodingId.Q16,
    payload: encodeQ16(pick.positions, count).bytes,
  };
}

/**
 * The points a viewer frame of `points` keeps (see {@link encodeViewerFrame}) and where each came
 * from, so that a colour channel can pick the same ones of a field (src/wire/viewer-colour.ts).
 */
export function pickViewerPoints(points: Float32Array, maxPoints: number): ViewerPick {
  if (!Number.isSafeInteger(maxPoints) || maxPoints < 0 || maxPoints > VIEWER_MAX_POINTS)
    throw invalidOption('maxPoints', `an integer from 0 to ${VIEWER_MAX_POINTS}`, maxPoints);
  const sourcePointCount = Math.floor(points.length / 3);
  const count = Math.min(sourcePointCount, maxPoints);
  // The points to send, contiguous: the bounds and quantization loops then run over one dense
  // array (measured: twice as fast as indexing the frame through the stride in each loop).
  let picked = points.length === count * 3 ? points : points.subarray(0, count * 3);
  let indices: Uint32Array | undefined;
  if (count < sourcePointCount) {
    picked = new Float32Array(count * 3);
    indices = new Uint32Array(count);
    // Point floor(i x N / M), stepped in integers (no division per point).
    const whole = Math.floor(sourcePointCount / count);
    const rest = sourcePointCount % count;
    for (let i = 0, k = 0, j = 0, carry = 0; i < count; i++, k += 3, j += whole) {
      const from = j * 3;
      picked[k] = points[from] as number;
      picked[k + 1] = points[from + 1] as number;
      picked[k + 2] = points[from + 2] as number;
      indices[i] = j;
      carry += rest;
      if (carry >= count) {
        carry -= count;
        j++;
      }
    }
  }
  if (indexOfNonFinite(picked) >= 0) return finitePoints(picked, indices, sourcePointCount);
  return { positions: picked, indices, sourcePointCount };
}

/** The points of `points` whose three coordinates are finite, in order (new arrays). */
function finitePoints(
  points: Float32Array,
  indices: Uint32Array | undefined,
  sourcePointCount: number,
): ViewerPick {
  const out = new Float32Array(points.length);
  const kept = new Uint32Array(points.length / 3);
  let n = 0;
  for (let k = 0, i = 0; k < points.length; k += 3, i++) {
    const x = points[k] as number;
    const y = points[k + 1] as number;
    const z = points[k + 2] as number;
    // x - x is 0 for finite x, NaN for NaN and the infinities.
    if (x - x === 0 && y - y === 0 && z - z === 0) {
      out[n * 3] = x;
      out[n * 3 + 1] = y;
      out[n * 3 + 2] = z;
      kept[n++] = indices === undefined ? i : (indices[i] as number);
    }
  }
  return { positions: out.slice(0, n * 3), indices: kept.slice(0, n), sourcePointCount };
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

/** Where each colour channel of `frame` starts in its payload, and the payload's size. */
export function viewerPayloadLayout(
  pointCount: number,
  kinds: readonly ViewerColourKind[],
): { readonly offsets: number[]; readonly bytes: number } {
  let end = QUANT_HEADER_BYTES + pointCount * 6;
  const offsets: number[] = [];
  for (const kind of kinds) {
    const offset = Math.ceil(end / VIEWER_COLOUR_ALIGN) * VIEWER_COLOUR_ALIGN;
    offsets.push(offset);
    end = offset + colourChannelBytes(kind, pointCount);
  }
  return { offsets, bytes: end };
}

/** The frame's payload as its parts on the wire: the q16 payload, then padding and each channel. */
function payloadParts(frame: EncodedViewerFrame): Uint8Array[] {
  const colours = frame.colours ?? [];
  if (colours.length === 0) return [frame.payload];
  const { offsets } = viewerPayloadLayout(
    frame.pointCount,
    colours.map((c) => c.kind),
  );
  const parts = [frame.payload];
  let end = frame.payload.length;
  colours.forEach((colour, i) => {
    const offset = offsets[i] as number;
    if (offset > end) parts.push(new Uint8Array(offset - end));
    parts.push(colour.bytes);
    end = offset + colour.bytes.length;
  });
  return parts;
}

/** Bytes of the frame's payload on the wire (q16, then its colour channels). */
export function viewerPayloadBytes(frame: EncodedViewerFrame): number {
  const colours = frame.colours ?? [];
  return colours.length === 0
    ? frame.payload.length
    : viewerPayloadLayout(
        frame.pointCount,
        colours.map((c) => c.kind),
      ).bytes;
}

/** `frame` with the colour channels `colours` only (its positions shared, nothing copied). */
export function withColours(
  frame: EncodedViewerFrame,
  colours: readonly ViewerColour[],
): EncodedViewerFrame {
  return { ...frame, colours };
}

/**
 * The START message of `frame`, for a viewer that has dropped `dropped` frames so far:
 *
 * `'PSVF' | u8 version 3 | u8 encoding 2 | u16 header bytes | u32 seq | u32 points | u32 source
 * points | u32 dropped | u32 payload bytes | u8 channels | 3 x 0 | f64 capture time (NaN when
 * unknown)`, then per colour channel `u8 kind | u8 name length | u16 0 | f64 min | f64 max | name`.
 */
export function encodeViewerStart(frame: EncodedViewerFrame, dropped: number): Uint8Array {
  const colours = frame.colours ?? [];
  if (colours.length > VIEWER_MAX_COLOURS)
    throw invalidOption('colours', `at most ${VIEWER_MAX_COLOURS} channels`, colours.length);
  let headerBytes = VIEWER_START_BYTES;
  for (const colour of colours) headerBytes += VIEWER_COLOUR_ENTRY_BYTES + colour.name.length;
  const bytes = new Uint8Array(headerBytes);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, VIEWER_START_MAGIC, true);
  view.setUint8(4, VIEWER_VERSION);
  view.setUint8(5, frame.encoding);
  view.setUint16(6, headerBytes, true);
  view.setUint32(8, frame.seq >>> 0, true);
  view.setUint32(12, frame.pointCount, true);
  view.setUint32(16, frame.sourcePointCount, true);
  view.setUint32(20, Math.min(Math.max(dropped, 0), 0xffffffff), true);
  view.setUint32(24, viewerPayloadBytes(frame), true);
  view.setUint8(28, colours.length);
  view.setFloat64(32, frame.captureTime ?? NaN, true);
  let at = VIEWER_START_BYTES;
  for (const colour of colours) {
    view.setUint8(at, colour.kind);
    view.setUint8(at + 1, colour.name.length);
    view.setFloat64(at + 4, colour.min, true);
    view.setFloat64(at + 12, colour.max, true);
    for (let i = 0; i < colour.name.length; i++)
      bytes[at + VIEWER_COLOUR_ENTRY_BYTES + i] = colour.name.charCodeAt(i);
    at += VIEWER_COLOUR_ENTRY_BYTES + colour.name.length;
  }
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
  const total = viewerPayloadBytes(frame);
  // The parts are copied straight into the messages: the payload is never joined first.
  const parts = payloadParts(frame);
  let part = 0;
  let within = 0;
  for (let offset = 0; offset < total; offset += perMessage) {
    const length = Math.min(perMessage, total - offset);
    const message = new Uint8Array(VIEWER_DATA_HEADER_BYTES + length);
    const view = new DataView(message.buffer);
    view.setUint32(0, VIEWER_DATA_MAGIC, true);
    view.setUint32(4, frame.seq >>> 0, true);
    view.setUint32(8, offset, true);
    let filled = 0;
    while (filled < length) {
      const from = parts[part] as Uint8Array;
      const take = Math.min(from.length - within, length - filled);
      message.set(from.subarray(within, within + take), VIEWER_DATA_HEADER_BYTES + filled);
      filled += take;
      within += take;
      if (within === from.length) {
        part++;
        within = 0;
      }
    }
    messages.push(message);
  }
  return messages;
}

/** Bytes on the wire for one frame sent in messages of at most `maxMessageBytes`. */
export function viewerFrameWireBytes(frame: EncodedViewerFrame, maxMessageBytes: number): number {
  const perMessage = maxMessageBytes - VIEWER_DATA_HEADER_BYTES;
  const payload = viewerPayloadBytes(frame);
  const messages = Math.ceil(payload / perMessage);
  let header = VIEWER_START_BYTES;
  for (const colour of frame.colours ?? [])
    header += VIEWER_COLOUR_ENTRY_BYTES + colour.name.length;
  return header + payload + messages * VIEWER_DATA_HEADER_BYTES;
}

/** A colour channel as the page receives it. */
export interface ViewerFrameColour {
  readonly name: string;
  readonly kind: ViewerColourKind;
  readonly min: number;
  readonly max: number;
  /** Per point: a u8 or u16 (0 = min, top = max), or r, g, b u8: a view of the frame's payload. */
  readonly values: Uint8Array | Uint16Array;
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
  /**
   * The q16 part of the payload as received (decodePoints(payload, 2, pointCount) gives float32
   * back); the colour channels follow it in the same buffer.
   */
  readonly payload: Uint8Array;
  /** From the q16 header: coordinate = offset[a] + q x scale[a]. */
  readonly offset: readonly [number, number, number];
  readonly scale: readonly [number, number, number];
  /** N x 3 u16, x y z interleaved: a view of `payload` past its header. */
  readonly quantized: Uint16Array;
  /** The colour channels, in wire order (none: colour by height). */
  readonly colours: readonly ViewerFrameColour[];
}

function malformed(code: ErrorCode, message: string): PointstreamError {
  return new PointstreamError(code, `viewer stream: ${message}`);
}

interface ColourEntry {
  readonly name: string;
  readonly kind: ViewerColourKind;
  readonly min: number;
  readonly max: number;
}

interface Pending {
  readonly seq: number;
  readonly pointCount: number;
  readonly sourcePointCount: number;
  readonly dropped: number;
  readonly captureTime: number | undefined;
  readonly colours: readonly ColourEntry[];
  readonly offsets: readonly number[];
  readonly payload: Uint8Array;
  received: number;
}

/**
 * Reassembles viewer frames from the server's binary messages, in order. Every declared size is
 * checked before anything is allocated: at most `56 + 6 x maxPoints` bytes per frame, plus at most
 * 8 colour channels of at most 3 bytes per point. Any inconsistency throws a
 * {@link PointstreamError} with a stable code (docs/protocol.md) and drops the frame being
 * received; the channel is ordered and reliable, so it means a broken server and the page closes
 * the viewer.
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
      if (magic === VIEWER_START_MAGIC) return this.#start(view, bytes);
      if (magic === VIEWER_DATA_MAGIC) return this.#data(view, bytes);
      throw malformed(ErrorCodes.CHUNK_BAD_TYPE, `unknown message magic 0x${magic.toString(16)}`);
    } catch (error) {
      this.#pending = undefined;
      throw error;
    }
  }

  #start(view: DataView, bytes: Uint8Array): ViewerFrame | undefined {
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
    if (view.byteLength < VIEWER_START_BYTES)
      throw malformed(
        ErrorCodes.CHUNK_TRUNCATED,
        `START of ${view.byteLength} bytes, under ${VIEWER_START_BYTES}`,
      );
    const headerBytes = view.getUint16(6, true);
    if (headerBytes !== view.byteLength)
      throw malformed(
        headerBytes > view.byteLength ? ErrorCodes.CHUNK_TRUNCATED : ErrorCodes.CHUNK_BAD_HEADER,
        `START of ${view.byteLength} bytes declares ${headerBytes}`,
      );
    const channels = view.getUint8(28);
    if (view.getUint8(29) !== 0 || view.getUint16(30, true) !== 0)
      throw malformed(ErrorCodes.CHUNK_BAD_HEADER, 'START has non-zero reserved bytes');
    if (channels > VIEWER_MAX_COLOURS)
      throw malformed(
        ErrorCodes.CHUNK_BAD_HEADER,
        `${channels} colour channels, at most ${VIEWER_MAX_COLOURS}`,
      );
    const colours = readColourEntries(view, bytes, channels);
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
    const layout = viewerPayloadLayout(
      pointCount,
      colours.map((c) => c.kind),
    );
    if (payloadBytes !== layout.bytes)
      throw malformed(
        ErrorCodes.FRAME_LENGTH_MISMATCH,
        `${payloadBytes} payload bytes for ${pointCount} q16 points and ${colours.length} colour channels (${layout.bytes})`,
      );
    if (!Number.isNaN(captureTime) && !Number.isFinite(captureTime))
      throw malformed(ErrorCodes.CHUNK_BAD_HEADER, `capture time ${captureTime}`);
    this.#pending = {
      seq,
      pointCount,
      sourcePointCount,
      dropped,
      captureTime: Number.isNaN(captureTime) ? undefined : captureTime,
      colours,
      offsets: layout.offsets,
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
    const q16Bytes = QUANT_HEADER_BYTES + pending.pointCount * 6;
    const q16 = pending.payload.subarray(0, q16Bytes);
    // PS_ERR_ENCODING_CORRUPT when the q16 header disagrees or decodes outside float32.
    const { offset: o, scale: s, quantized } = readQ16Payload(q16, pending.pointCount);
    const buffer = pending.payload.buffer;
    const colours = pending.colours.map((entry, i): ViewerFrameColour => {
      const at = pending.offsets[i] as number;
      const length = colourChannelBytes(entry.kind, pending.pointCount);
      return {
        ...entry,
        // The payload is the frame's own buffer, from byte 0: every channel start is aligned.
        values:
          entry.kind === ViewerColourKind.SCALAR_U16
            ? new Uint16Array(buffer, at, pending.pointCount)
            : new Uint8Array(buffer, at, length),
      };
    });
    return {
      seq: pending.seq,
      pointCount: pending.pointCount,
      sourcePointCount: pending.sourcePointCount,
      dropped: pending.dropped,
      captureTime: pending.captureTime,
      encoding: PointEncodingId.Q16,
      payload: q16,
      offset: [o[0] as number, o[1] as number, o[2] as number],
      scale: [s[0] as number, s[1] as number, s[2] as number],
      quantized,
      colours,
    };
  }
}

/** Reads `count` colour entries after the fixed START bytes; they must fill it exactly. */
function readColourEntries(view: DataView, bytes: Uint8Array, count: number): ColourEntry[] {
  const entries: ColourEntry[] = [];
  let at = VIEWER_START_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + VIEWER_COLOUR_ENTRY_BYTES > bytes.length)
      throw malformed(ErrorCodes.CHUNK_BAD_HEADER, `START ends inside colour entry ${i}`);
    const kindByte = view.getUint8(at);
    const kind = kindByte as ViewerColourKind;
    const nameLength = view.getUint8(at + 1);
    const min = view.getFloat64(at + 4, true);
    const max = view.getFloat64(at + 12, true);
    if (
      kind !== ViewerColourKind.SCALAR_U8 &&
      kind !== ViewerColourKind.SCALAR_U16 &&
      kind !== ViewerColourKind.RGB8
    )
      throw malformed(ErrorCodes.CHUNK_BAD_HEADER, `colour entry ${i} of unknown kind ${kindByte}`);
    if (view.getUint16(at + 2, true) !== 0)
      throw malformed(ErrorCodes.CHUNK_BAD_HEADER, `colour entry ${i} has non-zero reserved bytes`);
    if (!Number.isFinite(min) || !Number.isFinite(max) || min > max)
      throw malformed(ErrorCodes.CHUNK_BAD_HEADER, `colour entry ${i} ranges ${min} to ${max}`);
    if (at + VIEWER_COLOUR_ENTRY_BYTES + nameLength > bytes.length)
      throw malformed(ErrorCodes.CHUNK_BAD_HEADER, `START ends inside the name of colour ${i}`);
    let name = '';
    for (let k = 0; k < nameLength; k++)
      name += String.fromCharCode(bytes[at + VIEWER_COLOUR_ENTRY_BYTES + k] as number);
    if (!isFieldName(name) || entries.some((e) => e.name === name))
      throw malformed(
        ErrorCodes.CHUNK_BAD_HEADER,
        `colour entry ${i} is named ${JSON.stringify(name)}: not a field name, or twice`,
      );
    entries.push({ name, kind, min, max });
    at += VIEWER_COLOUR_ENTRY_BYTES + nameLength;
  }
  if (at !== bytes.length)
    throw malformed(
      ErrorCodes.CHUNK_BAD_HEADER,
      `${bytes.length - at} bytes after the colour entries`,
    );
  return entries;
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
      /** The stream's per-point fields as of its last frame (none known yet: empty). */
      readonly fields?: readonly ViewerField[];
    }
  /** The stream's fields changed (a frame came with other fields than the one before). */
  | { readonly type: 'fields'; readonly fields: readonly ViewerField[] }
  /** A request of the page was refused; the viewer goes on. */
  | { readonly type: 'error'; readonly code: string; readonly message: string }
  | { readonly type: 'closing'; readonly code: string; readonly message: string };

export function encodeViewerControl(message: ViewerControl): string {
  return JSON.stringify(message);
}

/** A list of fields from the server: at most 32, each a field name and a known type. */
function fieldListOf(value: unknown): ViewerField[] | undefined {
  if (!Array.isArray(value) || value.length > 32) return undefined;
  const fields: ViewerField[] = [];
  for (const item of value as unknown[]) {
    if (typeof item !== 'object' || item === null) return undefined;
    const { name, type } = item as Record<string, unknown>;
    if (
      typeof name !== 'string' ||
      !isFieldName(name) ||
      !(FIELD_TYPE_NAMES as readonly unknown[]).includes(type)
    )
      return undefined;
    fields.push({ name, type: type as ViewerField['type'] });
  }
  return fields;
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
  ) {
    const fields = message.fields === undefined ? undefined : fieldListOf(message.fields);
    if (message.fields !== undefined && fields === undefined) return undefined;
    return {
      type: 'hello',
      viewer: message.viewer,
      ...(typeof message.stream === 'string' ? { stream: message.stream } : {}),
      session: message.session,
      ...(typeof message.node === 'string' ? { node: message.node } : {}),
      maxPoints: message.maxPoints as number,
      maxFps: message.maxFps,
      ...(fields === undefined ? {} : { fields }),
    };
  }
  if (message.type === 'fields') {
    const fields = fieldListOf(message.fields);
    return fields === undefined ? undefined : { type: 'fields', fields };
  }
  if (
    (message.type === 'closing' || message.type === 'error') &&
    typeof message.code === 'string' &&
    typeof message.message === 'string'
  )
    return { type: message.type, code: message.code, message: message.message };
  return undefined;
}

/** Page to server: the frame `seq` was drawn, or skipped for a newer one. */
export function encodeViewerAck(seq: number): string {
  return JSON.stringify({ type: 'ack', seq });
}

/** Page to server: colour the frames by `field` ({@link HEIGHT}, `rgb`, or a field's name). */
export function encodeViewerColour(field: string): string {
  return JSON.stringify({ type: 'colour', field });
}

/** What the page asks of the server. */
export type ViewerRequest =
  | { readonly type: 'ack'; readonly seq: number }
  | { readonly type: 'colour'; readonly field: string };

/** A request from the page; undefined for anything else (the server ignores it). */
export function decodeViewerRequest(text: string): ViewerRequest | undefined {
  const message = parseObject(text);
  // Any name of up to 64 characters: one that names no field is answered with an error.
  if (message?.type === 'colour')
    return typeof message.field === 'string' && message.field.length <= VIEWER_MAX_COLOUR_NAME
      ? { type: 'colour', field: message.field }
      : undefined;
  const seq = decodeViewerAck(text);
  return seq === undefined ? undefined : { type: 'ack', seq };
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

/** The colour a viewer gets when it asks for none: height, computed by the page from z. */
export const DEFAULT_COLOUR = HEIGHT;

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
