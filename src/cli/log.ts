import { pino } from 'pino';
import pretty from 'pino-pretty';
import type { Logger } from '../util/logger.js';
import type { LogLevel } from './options.js';

export type LogFormat = 'json' | 'pretty';

/** The CLI's logger: JSON lines, or human-readable when the stream is a terminal. */
export function createCliLogger(
  level: LogLevel,
  format: LogFormat | undefined,
  fd: 1 | 2,
): Logger & { flush(): void } {
  const stream = fd === 1 ? process.stdout : process.stderr;
  const chosen = format ?? (stream.isTTY ? 'pretty' : 'json');
  const destination =
    chosen === 'pretty'
      ? pretty({
          destination: fd,
          sync: true,
          colorize: stream.isTTY,
          ignore: 'pid,hostname',
          translateTime: 'HH:MM:ss.l',
        })
      : pino.destination({ dest: fd, sync: true });
  return pino({ level, base: undefined }, destination);
}
