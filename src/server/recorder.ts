import { mkdirSync, accessSync, constants, statSync } from 'node:fs';
import { appendFile, mkdir, open, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ErrorCodes, PointstreamError } from '../errors.js';
import type { Logger } from '../util/logger.js';
import { QUANT_HEADER_BYTES } from '../wire/encodings/quantize.js';
import { FIELD_TYPES, FieldCodec, fieldTypeOf } from '../wire/fields.js';
import type { FieldTable, PointFields } from '../wire/fields.js';
import { encodeNpyHeader } from '../wire/npy.js';
import { StructuredNpyWriter } from './record-npy.js';
import type { ReceivedFrame, RecordOptions, RecorderStats } from './types.js';

/** Bytes of frames that may wait for the disk by default (`RecordOptions.maxQueuedBytes`). */
export const DEFAULT_RECORD_QUEUE_BYTES = 256 * 1024 * 1024;

// Public types live in types.ts (which imports nothing of the server's): re-exported for callers.
export type { RecordOptions, RecorderStats } from './types.js';

/**
 * What the recorder reads of a frame: a server's `ReceivedFrame`, or a `ConsumedFrame` from the
 * bus (`consume --record` writes through the same recorder).
 */
export interface RecordableFrame extends Pick<
  ReceivedFrame,
  | 'stream'
  | 'sessionId'
  | 'seq'
  | 'pointCount'
  | 'points'
  | 'form'
  | 'encoding'
  | 'npy'
  | 'encoded'
  | 'captureTime'
  | 'receivedAt'
  | 'crc32'
  | 'retain'
> {
  /** Per-point fields (none: a frame recorded exactly as before fields existed). */
  readonly fields?: PointFields;
  /** The field table: which columns travelled lossy (for the manifest). */
  readonly fieldTable?: FieldTable | undefined;
  /** With fields, the whole payload (what the frame holds in memory). */
  readonly payload?: Uint8Array | undefined;
}

/** A field of a recorded frame, as its manifest line lists it. */
export interface ManifestField {
  readonly name: string;
  /** NumPy's dtype of the column in the structured `.npy` (`<f4`, `<u2`, `|u1`, `<f8`...). */
  readonly dtype: string;
  /** Only for a field that travelled lossy: its codec (`quant-rice`). */
  readonly codec?: 'quant-rice';
  /** Only for a field that travelled lossy: largest |recorded - sent| (half its step). */
  readonly maxError?: number;
}

/** One manifest line per recorded frame. */
export interface ManifestEntry {
  readonly stream: string;
  readonly session: string;
  readonly seq: number;
  readonly file: string;
  readonly points: number;
  readonly bytes: number;
  readonly captureTime: number | null;
  readonly receivedAt: number;
  readonly crc32: number | null;
  readonly form: ReceivedFrame['form'];
  /** How the frame travelled; the file holds float32 points whatever it was. */
  readonly encoding: ReceivedFrame['encoding'];
  /**
   * Largest quantization error per coordinate in metres (half the largest step of the frame's
   * header, float32 rounding aside); 0 for `raw` (lossless).
   */
  readonly precision: number;
  /**
   * The frame's fields, in the order of the structured `.npy`'s columns after x, y, z; absent
   * for a frame without fields (whose file is an (N, 3) float32 array, as before).
   */
  readonly fields?: readonly ManifestField[];
}

/** `20261203T084512.123Z`: UTC, sorts as text in time order, and a valid file name everywhere. */
export function utcStamp(time: number): string {
  return new Date(time).toISOString().replace(/[-:]/g, '');
}

/** The session's folder under `dir`: `<stream>/<UTC time>_<session>`. */
export function sessionFolder(stream: string, session: string, startedAt: number): string {
  return join(stream, `${utcStamp(startedAt)}_${session}`);
}

/** Half the largest step of a q16/qrice header (scale f64 x3 at byte 32): the error bound. */
function precisionOf(frame: RecordableFrame): number {
  const bytes = frame.encoded;
  if (frame.encoding === 'raw' || bytes === undefined || bytes.length < QUANT_HEADER_BYTES)
    return 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, QUANT_HEADER_BYTES);
  let step = 0;
  for (let a = 0; a < 3; a++) step = Math.max(step, view.getFloat64(32 + a * 8, true));
  return step / 2;
}

/** Whether a frame has fields to record (a structured `.npy`). */
function hasFields(frame: RecordableFrame): frame is RecordableFrame & { fields: PointFields } {
  return frame.fields !== undefined && Object.keys(frame.fields).length > 0;
}

/**
 * Memory a queued frame keeps alive: its `.npy` (points are a view into it), or its encoded
 * payload plus the decoded points. Counting only the payload let a 256 MiB queue of qrice frames
 * hold 6.2 GB (issue 14). With fields: the whole payload (raw columns are views into it), plus
 * the decoded points of an encoded frame and its decoded (coded) columns.
 */
export function heldBytesOf(frame: RecordableFrame): number {
  if (frame.payload !== undefined && hasFields(frame)) {
    let held = frame.payload.byteLength;
    if (frame.encoding !== 'raw') held += frame.points.byteLength;
    for (const column of frame.fieldTable?.columns ?? [])
      if (column.codec !== FieldCodec.RAW) held += frame.fields[column.name]?.byteLength ?? 0;
    return held;
  }
  if (frame.npy !== undefined) return frame.npy.byteLength;
  return (frame.encoded?.byteLength ?? 0) + frame.points.byteLength;
}

/** The manifest's list of a frame's fields: name, dtype, and codec and bound when lossy. */
export function manifestFieldsOf(
  fields: PointFields,
  table: FieldTable | undefined,
): ManifestField[] {
  return Object.entries(fields).map(([name, values]) => {
    const type = fieldTypeOf(values);
    if (type === undefined) throw new TypeError(`field ${name} is not a field array`);
    const column = table?.columns.find((c) => c.name === name);
    const dtype = FIELD_TYPES[type].numpy;
    return column?.codec === FieldCodec.QUANT_RICE
      ? { name, dtype, codec: 'quant-rice', maxError: column.param / 2 }
      : { name, dtype };
  });
}

/** `000000000042.npy`: zero-padded so that names sort in frame order. */
export function frameFileName(seq: number): string {
  return `${String(seq).padStart(12, '0')}.npy`;
}

/**
 * Writes verified frames as `.npy` files without ever holding up ingest: `record()` only queues;
 * one writer drains the queue in order. A file appears under its final name only when complete
 * (written to a temporary name, then renamed), so a crash or kill never leaves half a frame.
 * When the disk cannot keep up or fails, frames are counted as not recorded and logged, loudly.
 */
export class FrameRecorder {
  readonly dir: string;
  readonly #maxQueuedBytes: number;
  readonly #log: Logger;
  readonly #queue: {
    frame: RecordableFrame;
    folder: string;
    precision: number;
    held: number;
    release: () => void;
  }[] = [];
  readonly #sessionDirs = new Set<string>();
  /** Interleaves frames with fields through one reused buffer. */
  readonly #structured = new StructuredNpyWriter();
  #queuedBytes = 0;
  #writing: Promise<void> | undefined;
  #framesRecorded = 0;
  #framesNotRecorded = 0;
  #bytesWritten = 0;
  #lastError: string | undefined;

  /**
   * Checks at once that `options.dir` exists (or can be made) and is writable; throws a clear
   * `PS_ERR_INVALID_OPTION` error if not.
   */
  constructor(options: RecordOptions, log: Logger) {
    this.dir = options.dir;
    this.#maxQueuedBytes = options.maxQueuedBytes ?? DEFAULT_RECORD_QUEUE_BYTES;
    this.#log = log;
    try {
      makeDirectorySync(this.dir);
      accessSync(this.dir, constants.W_OK);
    } catch (cause) {
      throw new PointstreamError(
        ErrorCodes.INVALID_OPTION,
        `cannot record to ${JSON.stringify(this.dir)}: ${describeFsError(cause)}`,
        { cause },
      );
    }
  }

  stats(): RecorderStats {
    return {
      dir: this.dir,
      framesRecorded: this.#framesRecorded,
      framesNotRecorded: this.#framesNotRecorded,
      bytesWritten: this.#bytesWritten,
      queuedBytes: this.#queuedBytes,
      lastError: this.#lastError,
    };
  }

  /** Absolute path of a session's folder ({@link sessionFolder}). */
  pathOf(folder: string): string {
    return resolve(this.dir, folder);
  }

  /**
   * Queues a frame for writing into `folder` (from {@link sessionFolder}); returns false (and
   * counts it) when the queue is full.
   */
  record(frame: RecordableFrame, folder: string): boolean {
    const held = heldBytesOf(frame);
    if (this.#queuedBytes + held > this.#maxQueuedBytes) {
      this.#notRecorded(
        frame,
        `the disk is behind: ${this.#queuedBytes} bytes already wait (limit ${this.#maxQueuedBytes})`,
      );
      return false;
    }
    // Read now: the encoded payload may be reused once the listeners have run.
    this.#queue.push({
      frame,
      folder,
      precision: precisionOf(frame),
      held,
      release: frame.retain(),
    });
    this.#queuedBytes += held;
    this.#writing ??= this.#drain().finally(() => (this.#writing = undefined));
    return true;
  }

  /** Resolves once every queued frame is written (or failed). */
  async flush(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  async #drain(): Promise<void> {
    for (let queued = this.#queue.shift(); queued !== undefined; queued = this.#queue.shift()) {
      const { frame, folder, precision, held, release } = queued;
      try {
        await this.#write(frame, folder, precision);
      } catch (error) {
        this.#notRecorded(frame, describeFsError(error));
      } finally {
        release();
        this.#queuedBytes -= held;
      }
    }
  }

  async #write(frame: RecordableFrame, folder: string, precision: number): Promise<void> {
    const sessionDir = join(this.dir, folder);
    if (!this.#sessionDirs.has(sessionDir)) {
      await mkdir(sessionDir, { recursive: true });
      this.#sessionDirs.add(sessionDir);
    }
    const name = frameFileName(frame.seq);
    const temporary = join(sessionDir, `.${name}.partial`);
    const handle = await open(temporary, 'w');
    let written = 0;
    try {
      written = await this.#writeNpy(handle, frame);
    } catch (error) {
      await handle.close().catch(() => undefined);
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
    await handle.close();
    await rename(temporary, join(sessionDir, name));
    const entry: ManifestEntry = {
      stream: frame.stream,
      session: frame.sessionId,
      seq: frame.seq,
      file: name,
      points: frame.pointCount,
      bytes: written,
      captureTime: frame.captureTime ?? null,
      receivedAt: frame.receivedAt,
      crc32: frame.crc32 ?? null,
      form: frame.form,
      encoding: frame.encoding,
      precision,
      ...(hasFields(frame) ? { fields: manifestFieldsOf(frame.fields, frame.fieldTable) } : {}),
    };
    await appendFile(join(sessionDir, 'manifest.jsonl'), `${JSON.stringify(entry)}\n`);
    this.#framesRecorded++;
    this.#bytesWritten += written;
  }

  /** The frame's `.npy`: structured with fields, else (N, 3) float32 as received. */
  async #writeNpy(handle: FileHandle, frame: RecordableFrame): Promise<number> {
    // Coded frames' points and fields are decoded already: the file holds the values.
    if (hasFields(frame))
      return this.#structured.write(handle, frame.points, frame.fields, frame.pointCount);
    const points = frame.points;
    const parts = frame.npy
      ? [frame.npy]
      : [
          encodeNpyHeader([frame.pointCount, 3]),
          new Uint8Array(points.buffer, points.byteOffset, points.byteLength),
        ];
    let written = 0;
    for (const part of parts) {
      await handle.write(part);
      written += part.length;
    }
    return written;
  }

  #notRecorded(frame: RecordableFrame, reason: string): void {
    this.#framesNotRecorded++;
    this.#lastError = reason;
    this.#log.error(
      {
        event: 'frame-not-recorded',
        sessionId: frame.sessionId,
        seq: frame.seq,
        reason,
        framesNotRecorded: this.#framesNotRecorded,
      },
      `frame ${frame.seq} of session ${frame.sessionId} NOT recorded: ${reason}`,
    );
  }
}

/**
 * `mkdir -p` that always ends. Node 20's `mkdirSync(dir, { recursive: true })` (and the promise
 * form) retries forever at 100% CPU when mkdir answers ENOENT for a path whose parent exists, as
 * /proc and /sys do (`serve --record /proc/x` never listened). Here each missing level is made
 * once, parent first, and any error but EEXIST is thrown.
 */
export function makeDirectorySync(dir: string): void {
  const missing: string[] = [];
  for (let path = resolve(dir); ; path = dirname(path)) {
    try {
      statSync(path);
      break; // exists: mkdir below, or accessSync, says whether it is a usable directory
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      missing.push(path);
      if (dirname(path) === path) break;
    }
  }
  for (const path of missing.reverse()) {
    try {
      mkdirSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  if (!statSync(dir).isDirectory())
    throw Object.assign(new Error(`not a directory: ${dir}`), { code: 'ENOTDIR' });
}

function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const hints: Record<string, string> = {
    ENOSPC: 'disk full',
    EDQUOT: 'disk quota exceeded',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOTDIR: 'a path component is not a directory',
  };
  const hint = code === undefined ? undefined : hints[code];
  return hint ? `${hint} (${code}): ${(error as Error).message}` : (error as Error).message;
}
