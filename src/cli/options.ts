import { InvalidArgumentError } from 'commander';
import { isStreamName } from '../wire/control.js';
import { parseFieldNames, parseFieldPrecision } from '../sources/field-flags.js';

/** Commander argument parsers that reject bad values with a message naming the flag's rule. */

export function integer(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const parsed = Number(value.replace(/_/g, ''));
    if (
      !/^\s*[0-9_]+(e[0-9]+)?\s*$/i.test(value) ||
      !Number.isSafeInteger(parsed) ||
      parsed < min ||
      parsed > max
    ) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return parsed;
  };
}

export function number(min: number, max = Number.MAX_VALUE): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (value.trim() === '' || !Number.isFinite(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`expected a number from ${min} to ${max}`);
    }
    return parsed;
  };
}

export function portRange(value: string): [number, number] {
  const match = /^(\d{1,5})-(\d{1,5})$/.exec(value);
  const begin = Number(match?.[1]);
  const end = Number(match?.[2]);
  if (!match || begin < 1 || end > 65535 || begin > end) {
    throw new InvalidArgumentError('expected BEGIN-END, e.g. 40000-40100');
  }
  return [begin, end];
}

export function url(value: string): string {
  try {
    const parsed = new URL(value);
    if (parsed.protocol === 'http:' || parsed.protocol === 'https:') return value;
  } catch {
    // fall through
  }
  throw new InvalidArgumentError('expected an http:// or https:// URL');
}

/**
 * The server's offer endpoint. The base URL that `serve` logs (no path, or `/`) means its `/offer`:
 * users copy what the server printed.
 */
export function offerUrl(value: string): string {
  const checked = url(value);
  const parsed = new URL(checked);
  if (parsed.pathname !== '/' || parsed.search !== '' || parsed.hash !== '') return checked;
  parsed.pathname = '/offer';
  return parsed.toString();
}

/** A stream name (docs/protocol.md, "Streams"): 1-64 of A-Z a-z 0-9 . _ - */
export function streamName(value: string): string {
  if (!isStreamName(value))
    throw new InvalidArgumentError('expected 1-64 of A-Z a-z 0-9 . _ - (e.g. lidar-front)');
  return value;
}

/** A repeatable option's values; one value may hold several separated by spaces (as an environment variable holds them). */
export function collectWords(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(/\s+/).filter((word) => word !== '')];
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function choice<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(choices as readonly string[]).includes(value))
      throw new InvalidArgumentError(`expected one of ${choices.join(', ')}`);
    return value as T;
  };
}

/** `--fields x,y,z,intensity`: src/sources/field-flags.ts, as a commander parser. */
export function fieldList(value: string): string[] {
  return commanderError(() => parseFieldNames(value));
}

/** `--field-precision intensity=0.01,time=1e-6`: src/sources/field-flags.ts, as a commander parser. */
export function fieldPrecisionList(value: string): Record<string, number> {
  return commanderError(() => parseFieldPrecision(value));
}

function commanderError<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}
