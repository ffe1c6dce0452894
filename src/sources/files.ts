import { readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { ErrorCodes, PointstreamError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { npyPointFile, plyPointFile } from './point-files.js';
import type { PointFile, PointFileConversion } from './point-files.js';
import type { PointSource } from './source.js';

/**
 * Point frames from files: a `.npy` of shape (N, 3) or (N, >= 3) (float32 or float64; the first
 * three columns are x, y, z), a `.ply` point cloud (ASCII or binary little-endian), or a directory
 * of `.npy` files such as a server recording (sent in name order). Every problem is a
 * `PointstreamError` whose message names the file and what is wrong with it.
 */
export function openFileSource(path: string): PointSource {
  let stats;
  try {
    stats = statSync(path);
  } catch (cause) {
    throw unreadable(path, cause);
  }
  if (stats.isDirectory()) return new DirectorySource(path);
  const { points, conversion } = readPointFileAt(path);
  return { frameCount: undefined, next: () => points, describe: () => path, conversion };
}

/** Reads one `.npy` or `.ply` file into x, y, z float32 triples. */
export function loadPointFile(path: string): Float32Array {
  return readPointFileAt(path).points;
}

/** {@link loadPointFile}, with what reading it dropped or converted. */
export function readPointFileAt(path: string): PointFile {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (cause) {
    throw unreadable(path, cause);
  }
  const extension = extname(path).toLowerCase();
  try {
    if (extension === '.npy') return npyPointFile(bytes);
    if (extension === '.ply') return plyPointFile(bytes);
  } catch (error) {
    if (error instanceof PointstreamError)
      throw sourceError(error.code, path, error.message, error);
    throw error;
  }
  throw sourceError(
    ErrorCodes.SOURCE_UNREADABLE,
    path,
    `unsupported file type ${JSON.stringify(extension)}: use .npy or .ply`,
  );
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
  #index = 0;
  conversion: PointFileConversion | undefined;

  constructor(dir: string) {
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
    const { points, conversion } = readPointFileAt(file);
    this.conversion = conversion;
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
