import { PointstreamError } from '../../src/errors.js';
import { encodePoints, encodingsReady } from '../../src/wire/index.js';
import type { PointEncodingName } from '../../src/wire/index.js';

/**
 * Encodes frames off the page's main thread (src/wire/encodings, the same code as the Node
 * client), so that pacing, chunking and the UI never wait for an encoder.
 */

export interface EncodeRequest {
  readonly id: number;
  readonly points: Float32Array;
  readonly encoding: Exclude<PointEncodingName, 'raw'>;
  readonly precision: number | undefined;
}

export type EncodeResponse =
  | {
      readonly id: number;
      readonly ok: true;
      readonly bytes: Uint8Array;
      readonly encoding: number;
      readonly pointCount: number;
      readonly maxError: number;
      readonly ms: number;
    }
  | { readonly id: number; readonly ok: false; readonly code: string; readonly message: string };

declare const self: {
  onmessage: ((event: MessageEvent<EncodeRequest>) => void) | null;
  postMessage(message: EncodeResponse, transfer?: Transferable[]): void;
};

const ready = encodingsReady();

self.onmessage = (event) => {
  const { id, points, encoding, precision } = event.data;
  void ready.then(() => {
    try {
      const started = performance.now();
      const encoded = encodePoints(points, encoding, precision === undefined ? {} : { precision });
      const ms = performance.now() - started;
      self.postMessage(
        {
          id,
          ok: true,
          bytes: encoded.bytes,
          encoding: encoded.encoding,
          pointCount: encoded.pointCount,
          maxError: encoded.maxError,
          ms,
        },
        [encoded.bytes.buffer as ArrayBuffer],
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
