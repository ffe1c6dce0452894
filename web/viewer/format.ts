/**
 * Decoder of the viewer wire format, version 1 (src/server/viewer.ts documents it and encodes it).
 * Pure: no DOM, no Node, so the test runs it in Node against the server's encoder.
 */

export const VIEWER_PROTOCOL = 'pointstream-viewer/1';
const START_MAGIC = 0x46565350; // 'PSVF'
const DATA_MAGIC = 0x44565350; // 'PSVD'
const START_BYTES = 64;
const DATA_HEADER_BYTES = 12;
const ENCODING_Q16 = 1;

/** One frame as the server sent it: q16 points with the bounds that give them back as floats. */
export interface ViewerFrame {
  readonly seq: number;
  readonly pointCount: number;
  /** Points in the frame the server received (before decimation). */
  readonly sourcePointCount: number;
  /** Frames the server dropped for this viewer so far, because it was still busy. */
  readonly dropped: number;
  readonly min: readonly [number, number, number];
  readonly extent: readonly [number, number, number];
  /** Sender's capture time (ms since the epoch, sender's clock), or undefined. */
  readonly captureTime: number | undefined;
  /** N x 3 u16: coordinate = min + q / 65535 x extent. */
  readonly quantized: Uint16Array;
}

/** Control messages from the server (text). */
export type ViewerControl =
  | {
      type: 'hello';
      viewer: string;
      session: string;
      maxPoints: number;
      maxFps: number;
    }
  | { type: 'closing'; code: string; message: string };

export class ViewerFormatError extends Error {
  override readonly name = 'ViewerFormatError';
}

interface Pending {
  readonly header: Omit<ViewerFrame, 'quantized'>;
  readonly data: Uint8Array;
  received: number;
}

/**
 * Reassembles frames from binary messages, in order. Every declared size is checked against
 * `maxPoints` before anything is allocated; any inconsistency throws ViewerFormatError (the
 * channel is ordered and reliable, so it means a broken server: the page closes the viewer).
 */
export class ViewerReassembler {
  readonly #maxPoints: number;
  #pending: Pending | undefined;
  /** `performance.now()` when the last START arrived: the page reports transfer times with it. */
  startedAt = 0;

  constructor(maxPoints: number) {
    this.#maxPoints = maxPoints;
  }

  /** Feeds one binary message; returns the frame it completes, if any. */
  push(message: ArrayBuffer | Uint8Array): ViewerFrame | undefined {
    const bytes = message instanceof Uint8Array ? message : new Uint8Array(message);
    if (bytes.length < 4) throw new ViewerFormatError(`message of ${bytes.length} bytes`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const magic = view.getUint32(0, true);
    if (magic === START_MAGIC) return this.#start(view);
    if (magic === DATA_MAGIC) return this.#data(view, bytes);
    throw new ViewerFormatError(`unknown message magic 0x${magic.toString(16)}`);
  }

  #start(view: DataView): ViewerFrame | undefined {
    if (this.#pending !== undefined)
      throw new ViewerFormatError(`frame ${this.#pending.header.seq} was not complete`);
    if (view.byteLength !== START_BYTES)
      throw new ViewerFormatError(`START message of ${view.byteLength} bytes, not ${START_BYTES}`);
    const version = view.getUint8(4);
    const encoding = view.getUint8(5);
    if (version !== 1) throw new ViewerFormatError(`viewer format version ${version}`);
    if (encoding !== ENCODING_Q16) throw new ViewerFormatError(`encoding ${encoding}`);
    if (view.getUint16(6, true) !== START_BYTES)
      throw new ViewerFormatError('bad START header size');
    const pointCount = view.getUint32(12, true);
    const dataBytes = view.getUint32(24, true);
    if (pointCount > this.#maxPoints)
      throw new ViewerFormatError(`${pointCount} points, above the budget of ${this.#maxPoints}`);
    if (dataBytes !== pointCount * 6)
      throw new ViewerFormatError(`${dataBytes} data bytes for ${pointCount} points`);
    const captureTime = view.getFloat64(56, true);
    const header = {
      seq: view.getUint32(8, true),
      pointCount,
      sourcePointCount: view.getUint32(16, true),
      dropped: view.getUint32(20, true),
      min: [view.getFloat32(32, true), view.getFloat32(36, true), view.getFloat32(40, true)],
      extent: [view.getFloat32(44, true), view.getFloat32(48, true), view.getFloat32(52, true)],
      captureTime: Number.isNaN(captureTime) ? undefined : captureTime,
    } as const;
    for (const value of [...header.min, ...header.extent])
      if (!Number.isFinite(value)) throw new ViewerFormatError('non-finite bounds');
    const pending: Pending = { header, data: new Uint8Array(dataBytes), received: 0 };
    this.startedAt = performance.now();
    if (dataBytes === 0) return finish(pending);
    this.#pending = pending;
    return undefined;
  }

  #data(view: DataView, bytes: Uint8Array): ViewerFrame | undefined {
    const pending = this.#pending;
    if (pending === undefined) throw new ViewerFormatError('DATA message without a frame');
    if (bytes.length <= DATA_HEADER_BYTES) throw new ViewerFormatError('empty DATA message');
    const seq = view.getUint32(4, true);
    const offset = view.getUint32(8, true);
    if (seq !== pending.header.seq)
      throw new ViewerFormatError(`DATA for frame ${seq} inside frame ${pending.header.seq}`);
    if (offset !== pending.received)
      throw new ViewerFormatError(`DATA at offset ${offset}, expected ${pending.received}`);
    const part = bytes.subarray(DATA_HEADER_BYTES);
    if (offset + part.length > pending.data.length)
      throw new ViewerFormatError('DATA beyond the declared frame size');
    pending.data.set(part, offset);
    pending.received += part.length;
    if (pending.received < pending.data.length) return undefined;
    this.#pending = undefined;
    return finish(pending);
  }
}

function finish(pending: Pending): ViewerFrame {
  return {
    ...pending.header,
    quantized: new Uint16Array(pending.data.buffer, 0, pending.header.pointCount * 3),
  };
}

/** Parses a text message from the server; undefined for anything it does not know. */
export function parseViewerControl(text: string): ViewerControl | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const message = parsed as Record<string, unknown>;
  if (
    message.type === 'hello' &&
    typeof message.viewer === 'string' &&
    typeof message.session === 'string' &&
    typeof message.maxPoints === 'number' &&
    typeof message.maxFps === 'number'
  )
    return message as ViewerControl;
  if (
    message.type === 'closing' &&
    typeof message.code === 'string' &&
    typeof message.message === 'string'
  )
    return message as ViewerControl;
  return undefined;
}

/** The page's acknowledgement of a drawn frame. */
export function viewerAck(seq: number): string {
  return JSON.stringify({ type: 'ack', seq });
}

/** Decodes quantized points to float32 x, y, z (for tests and tools; the page draws q16 directly). */
export function dequantize(frame: ViewerFrame): Float32Array {
  const out = new Float32Array(frame.pointCount * 3);
  for (let i = 0; i < out.length; i++) {
    const axis = i % 3;
    out[i] =
      (frame.min[axis] as number) +
      ((frame.quantized[i] as number) / 65535) * (frame.extent[axis] as number);
  }
  return out;
}
