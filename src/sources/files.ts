import { readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { ErrorCodes, PointstreamError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { PointFields } from '../wire/fields.js';
import { POINT_FILE_EXTENSIONS, readPointFile } from './point-files.js';
import type { PointFile, PointFileConversion, PointFileOptions } from './point-files.js';
import type { PointSource } from './source.js';

/**
 * Point frames from files, with their per-point fields: a `.npy` (a structured array with x, y, z
 * fields; or (N, >= 3) float32/float64 whose columns `fieldNames` names, else whose first three
 * are x, y, z), a `.ply` (ASCII or binary) or `.pcd` point cloud, or a directory of `.npy` files
 * such as a server recording (sent in name order). Every problem is a `PointstreamError` whose
 * message names the file and what is wrong with it.
 */
export function openFileSource(path: string, options: PointFileOptions = {}): PointSource {
  let stats;
  try {
    stats = statSync(path);
  } catch (cause) {
    throw unreadable(path, cause);
  }
  if (stats.isDirectory()) return new DirectorySource(path, options);
  const { points, fields, conversion } = readPointFileAt(path, options);
  return { frameCount: undefined, next: () => points, fields, describe: () => path, conversion };
}

/** Reads one `.npy`, `.ply` or `.pcd` file into x, y, z float32 triples. */
export function loadPointFile(path: string): Float32Array {
  return readPointFileAt(path).points;
}

/** {@link loadPointFile}, with the file's fields and what reading it dropped or converted. */
export function readPointFileAt(path: string, options: PointFileOptions = {}): PointFile {
  const extension = extname(path).toLowerCase();
  if (!(POINT_FILE_EXTENSIONS as readonly string[]).includes(extension))
    throw sourceError(
      ErrorCodes.SOURCE_UNREADABLE,
      path,
      `unsupported file type ${JSON.stringify(extension)}: use ${POINT_FILE_EXTENSIONS.join(', ')}`,
    );
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (cause) {
    throw unreadable(path, cause);
  }
  try {
    return readPointFile(path, bytes, options);
  } catch (error) {
    if (error instanceof PointstreamError)
      throw sourceError(error.code, path, error.message, error);
    throw error;
  }
}

function unreadable(path: string, cause: unknown): PointstreamError {
  const reason = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
  return sourceError(ErrorCodes.SOURCE_UNREADABLE, path, reason, cause);
}

function sourceError(
  code: ErrorCode,
  path: string,
  problem: string,
  cause?: unknown,
): PointstreamError {
  return new PointstreamError(
    code,
    `${path}: ${problem}`,
    cause === undefined ? undefined : { cause },
  );
}

class DirectorySource implements PointSource {
  readonly frameCount: number;
  readonly #files: string[];
  readonly #options: PointFileOptions;
  #index = 0;
  conversion: PointFileConversion | undefined;
  fields: PointFields | undefined;

  constructor(dir: string, options: PointFileOptions) {
    this.#options = options;
    this.#files = listNpyFiles(dir);
    if (this.#files.length === 0)
      throw sourceError(
        ErrorCodes.SOURCE_EMPTY,
        dir,
        'no .npy files in this directory or its subdirectories',
      );
    this.frameCount = this.#files.length;
  }

  next(): Float32Array {
    const file = this.#files[this.#index % this.#files.length] as string;
    this.#index++;
    const { points, fields, conversion } = readPointFileAt(file, this.#options);
    this.conversion = conversion;
    this.fields = fields;
    return points;
  }

  describe(): string {
    return `${this.#files.length} .npy files`;
  }
}

/**
 * `.npy` files in `dir` and up to two levels below, sorted: a session's folder, a stream's
 * (`<stream>/<UTC time>_<session>/`, in time order) or a whole recording.
 */
function listNpyFiles(dir: string, depth = 2): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  )) {
    const full = join(dir, entry.name);
    if (entry.isFile() && entry.name.endsWith('.npy') && !entry.name.startsWith('.'))
      found.push(full);
    else if (entry.isDirectory() && depth > 0) found.push(...listNpyFiles(full, depth - 1));
  }
  return found;
}
