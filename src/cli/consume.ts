import { consume } from '../bus/consumer.js';
import type { ConsumerStats } from '../bus/consumer.js';
import { FrameRecorder, sessionFolder } from '../server/recorder.js';
import type { RecorderStats } from '../server/recorder.js';
import type { CliLogger } from './log.js';

export interface ConsumeCommandOptions {
  readonly bus: string;
  /** undefined: every stream. */
  readonly stream: string | undefined;
  readonly durable: string | undefined;
  readonly latest: boolean;
  readonly streamName: string | undefined;
  readonly record: string | undefined;
  readonly logger: CliLogger;
}

export interface ConsumeSummary extends ConsumerStats {
  readonly ok: boolean;
  readonly recording: RecorderStats | undefined;
}

/**
 * Reads frames from the bus until SIGINT/SIGTERM: logs each one as `serve` does, records it as
 * `serve --record` does (the same FrameRecorder and folders), acknowledges it once written, and
 * resolves with the counters. Rejects (before any frame) when the bus cannot be used at start.
 */
export async function runConsume(options: ConsumeCommandOptions): Promise<ConsumeSummary> {
  const { logger } = options;
  // Checked before connecting: an unusable directory is a usage error.
  const recorder =
    options.record === undefined ? undefined : new FrameRecorder({ dir: options.record }, logger);
  const consumer = consume({
    bus: options.bus,
    stream: options.stream,
    durable: options.durable,
    latest: options.latest,
    streamName: options.streamName,
  });
  const stop = (signal: NodeJS.Signals): void => {
    logger.status({ event: 'shutdown', signal }, `${signal}: stopping`);
    void consumer.close();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    await consumer.ready();
    logger.status(
      { event: 'ready', bus: options.bus, stream: options.stream ?? 'all' },
      `consuming ${options.stream ?? 'every stream'} from ${options.bus}${options.latest ? ' (latest frames only)' : ''}`,
    );
    let seen = consumer.stats();
    for await (const frame of consumer) {
      const latencyMs =
        frame.captureTime === undefined
          ? undefined
          : Math.round((frame.consumedAt - frame.captureTime) * 10) / 10;
      logger.info(
        {
          event: 'frame',
          stream: frame.stream,
          session: frame.session,
          seq: frame.seq,
          index: frame.index,
          points: frame.pointCount,
          bytes: frame.byteLength,
          encoding: frame.encoding,
          // Only frames with fields say so: lines of frames without are as before.
          ...(frame.fieldTable === undefined ? {} : { fields: Object.keys(frame.fields) }),
          latencyMs,
          busMs: Math.round((frame.consumedAt - frame.receivedAt) * 10) / 10,
          assemblyMs: Math.round(frame.assemblyMs * 10) / 10,
          checksum: 'ok',
        },
        'frame verified',
      );
      if (recorder !== undefined) {
        recorder.record(frame, sessionFolder(frame.stream, frame.session, frame.sessionStart));
        await recorder.flush();
      }
      frame.ack();
      seen = warnOfLosses(logger, seen, consumer.stats());
    }
    warnOfLosses(logger, seen, consumer.stats());
    await recorder?.flush();
    const stats = consumer.stats();
    return { ok: true, ...stats, recording: recorder?.stats() };
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await consumer.close();
  }
}

/** Logs what grew since `before` among the counters of loss, loudly; returns `after`. */
function warnOfLosses(
  logger: CliLogger,
  before: ConsumerStats,
  after: ConsumerStats,
): ConsumerStats {
  for (const key of [
    'framesMissed',
    'framesIncomplete',
    'framesSkipped',
    'messagesInvalid',
  ] as const) {
    if (after[key] > before[key]) {
      logger.warn(
        {
          event: key,
          count: after[key] - before[key],
          total: after[key],
          lastError: after.lastError,
        },
        `${after[key] - before[key]} more ${key} (total ${after[key]})`,
      );
    }
  }
  return after;
}

/** The summary as a few lines for a person. */
export function formatConsumeSummary(summary: ConsumeSummary): string {
  const lines = [
    `frames delivered: ${summary.framesDelivered} (${summary.bytesDelivered} bytes)`,
    `missed: ${summary.framesMissed}  incomplete: ${summary.framesIncomplete}  skipped: ${summary.framesSkipped}  invalid messages: ${summary.messagesInvalid}  duplicates: ${summary.duplicates}`,
  ];
  if (summary.recording !== undefined)
    lines.push(
      `recorded: ${summary.recording.framesRecorded} frames in ${summary.recording.dir} (not recorded: ${summary.recording.framesNotRecorded})`,
    );
  return lines.join('\n');
}
