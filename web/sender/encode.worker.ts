import { PointstreamError } from '../../src/errors.js';
import { encodePoints, encodingsReady } from '../../src/wire/index.js';
import type { PointEncodingName } from '../../src/wire/index.js';
import type { EncodedFields, PointFields } from '../../src/wire/fields.js';

/**
 * Encodes frames off the page's main thread (src/wire/encodings, the same code as the Node
 * client), so that pacing, chunking and the UI never wait for an encoder. Fields, when the
 * request has them, are encoded too (coded columns: docs/encodings.md, "Field columns").
 */

export interface EncodeRequest {
  readonly id: number;
  readonly points: Float32Array;
  readonly encoding: Exclude<PointEncodingName, 'raw'>;
  readonly precision: number | undefined;
  /** The frame's per-point fields (absent or empty: none). */
  readonly fields?: PointFields;
  /** Largest error per float field, by name; fields it does not name are lossless. */
  readonly fieldPrecision?: Readonly<Record<string, number>>;
}

export type EncodeResponse =
  | {
      readonly id: number;
      readonly ok: true;
      readonly bytes: Uint8Array;
      readonly encoding: number;
      readonly pointCount: number;
      readonly maxError: number;
      /** The fields' columns, when the request had fields. */
      readonly fields?: EncodedFields;
      readonly ms: number;
    }
  | { readonly id: number; readonly ok: false; readonly code: string; readonly message: string };

declare const self: {
  onmessage: ((event: MessageEvent<EncodeRequest>) => void) | null;
  postMessage(message: EncodeResponse, transfer?: Transferable[]): void;
};

const ready = encodingsReady();

self.onmessage = (event) => {
  const { id, points, encoding, precision, fields, fieldPrecision } = event.data;
  void ready.then(() => {
    try {
      const started = performance.now();
      const encoded = encodePoints(points, encoding, {
        ...(precision === undefined ? {} : { precision }),
        ...(fields === undefined ? {} : { fields }),
        ...(fieldPrecision === undefined ? {} : { fieldPrecision }),
      });
      const ms = performance.now() - started;
      // Every buffer once: raw columns are views of the request's arrays, which may share one.
      const transfer = new Set<ArrayBuffer>([encoded.bytes.buffer as ArrayBuffer]);
      for (const column of encoded.fields?.bytes ?? []) transfer.add(column.buffer as ArrayBuffer);
      self.postMessage(
        {
          id,
          ok: true,
          bytes: encoded.bytes,
          encoding: encoded.encoding,
          pointCount: encoded.pointCount,
          maxError: encoded.maxError,
          ...(encoded.fields === undefined ? {} : { fields: encoded.fields }),
          ms,
        },
        [...transfer],
      );
    } catch (error) {
      self.postMessage({
        id,
        ok: false,
        code: error instanceof PointstreamError ? error.code : 'PS_ERR_INTERNAL',
        message: (error as Error).message,
      });
    }
  });
};
