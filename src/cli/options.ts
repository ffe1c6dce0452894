import { InvalidArgumentError } from 'commander';

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

export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Like {@link collect}, several values in one separated by spaces (as an environment variable holds them). */
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
