import { ErrorCodes, PointstreamError, isErrorCode } from '../../src/errors.js';
import type { EncodedPoints, PointEncodingName } from '../../src/wire/index.js';
import type { EncodedFields, PointFields } from '../../src/wire/fields.js';
import type { EncodeRequest, EncodeResponse } from './encode.worker.js';

/** Where scripts/build-web.mjs puts the worker bundle. */
const WORKER_URL = '/sender/encode.worker.js';

/** Encoded points (and fields, when the frame has some) plus how long the worker took. */
export type WorkerEncoded = EncodedPoints & {
  readonly fields?: EncodedFields;
  readonly encodeMs: number;
};

/** A Web Worker that encodes frames (web/sender/encode.worker.ts), one request at a time in order. */
export class FrameEncoder {
  readonly #worker = new Worker(WORKER_URL, { type: 'module' });
  readonly #waiting = new Map<
    number,
    { resolve(encoded: WorkerEncoded): void; reject(error: Error): void }
  >();
  #nextId = 0;

  constructor() {
    this.#worker.onmessage = (event: MessageEvent<EncodeResponse>) => {
      const reply = event.data;
      const waiter = this.#waiting.get(reply.id);
      if (waiter === undefined) return;
      this.#waiting.delete(reply.id);
      if (reply.ok) {
        const { fields } = reply;
        waiter.resolve({
          bytes: reply.bytes,
          encoding: reply.encoding as EncodedPoints['encoding'],
          pointCount: reply.pointCount,
          maxError: reply.maxError,
          ...(fields === undefined ? {} : { fields }),
          encodeMs: reply.ms,
        });
      } else {
        waiter.reject(
          new PointstreamError(
            isErrorCode(reply.code) ? reply.code : ErrorCodes.INTERNAL,
            reply.message,
          ),
        );
      }
    };
    this.#worker.onerror = (event) => this.#failAll(`encoder worker failed: ${event.message}`);
  }

  /**
   * Encodes a copy of `points` and of `fields` (the caller may reuse its arrays at once); float
   * fields to `fieldPrecision`, the rest losslessly.
   */
  encode(
    points: Float32Array,
    encoding: Exclude<PointEncodingName, 'raw'>,
    precision?: number,
    fields?: PointFields,
    fieldPrecision?: Readonly<Record<string, number>>,
  ): Promise<WorkerEncoded> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      const request: EncodeRequest = {
        id,
        points,
        encoding,
        precision,
        ...(fields === undefined ? {} : { fields }),
        ...(fieldPrecision === undefined ? {} : { fieldPrecision }),
      };
      this.#worker.postMessage(request); // structured clone: a copy
    });
  }

  close(): void {
    this.#worker.terminate();
    this.#failAll('encoder closed');
  }

  #failAll(message: string): void {
    for (const waiter of this.#waiting.values())
      waiter.reject(new PointstreamError(ErrorCodes.INTERNAL, message));
    this.#waiting.clear();
  }
}
