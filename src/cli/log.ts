import { pino } from 'pino';
import pretty from 'pino-pretty';
import type { Logger } from '../util/logger.js';
import type { LogLevel } from './options.js';

export type LogFormat = 'json' | 'pretty';

/** The CLI's logger: the library's {@link Logger} plus what only a command needs. */
export interface CliLogger extends Logger {
  flush(): void;
  /**
   * A start-up or shutdown line: logged at info, or, when the level hides info (`--log-level
   * warn`), written to stderr as plain text, so that an operator always sees the server start
   * and stop. Nothing at `silent`.
   */
  status(fields: Record<string, unknown>, message: string): void;
}

/** Fields the terminal form leaves out: pino's own, and `event` (the message says it in words). */
const NOT_SHOWN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'event']);

function formatValue(value: unknown): string {
  if (typeof value === 'string')
    return /^[\w.,:/@+()-]+$/.test(value) ? value : JSON.stringify(value);
  if (value instanceof Object && 'message' in value && 'stack' in value)
    return JSON.stringify((value as Error).message);
  return JSON.stringify(value) ?? String(value);
}

/**
 * One line per log record, `message key=value ...` (logfmt): pino-pretty's own layout puts each
 * field on a line of its own, about 11 lines per frame at 4 frames/s. An error's stack follows
 * its line.
 */
export function formatPrettyLine(log: Record<string, unknown>): string {
  const fields = Object.entries(log)
    .filter(([key, value]) => !NOT_SHOWN.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${formatValue(value)}`);
  const line = [typeof log.msg === 'string' ? log.msg : '', ...fields].join(' ').trim();
  const err = log.err as { stack?: unknown } | undefined;
  return typeof log.level === 'number' && log.level >= 50 && typeof err?.stack === 'string'
    ? `${line}\n${err.stack}`
    : line;
}

/** The CLI's logger: JSON lines, or one readable line per record when the stream is a terminal. */
export function createCliLogger(
  level: LogLevel,
  format: LogFormat | undefined,
  fd: 1 | 2,
): CliLogger {
  const stream = fd === 1 ? process.stdout : process.stderr;
  const chosen = format ?? (stream.isTTY ? 'pretty' : 'json');
  const destination =
    chosen === 'pretty'
      ? pretty({
          destination: fd,
          sync: true,
          colorize: stream.isTTY,
          translateTime: 'HH:MM:ss.l',
          messageFormat: (log) => formatPrettyLine(log),
          hideObject: true,
        })
      : pino.destination({ dest: fd, sync: true });
  const logger = pino({ level, base: undefined }, destination);
  return Object.assign(logger, {
    status(fields: Record<string, unknown>, message: string): void {
      if (logger.isLevelEnabled('info')) logger.info(fields, message);
      else if (level !== 'silent') process.stderr.write(`pointstream: ${message}\n`);
    },
  });
}
