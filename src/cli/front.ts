import { redactUrl } from '../bus/stream-config.js';
import { createFront } from '../front/front.js';
import type { PointstreamFront } from '../front/front.js';
import type { FrontLimits, FrontOptions } from '../front/types.js';
import { withDefaults } from '../util/options.js';
import type { CliLogger } from './log.js';
import { reachableOrigin } from './serve.js';

export interface FrontCommandOptions {
  readonly bus: string;
  readonly host: string;
  readonly port: number;
  readonly tls: { cert: Buffer; key: Buffer } | undefined;
  readonly tokens: string[] | undefined;
  readonly corsOrigins: string[];
  readonly limits: Partial<FrontLimits>;
  readonly forwardTimeoutMs: number | undefined;
  readonly logger: CliLogger;
}

/** How long a shutdown may take before the process exits regardless. */
const SHUTDOWN_DEADLINE_MS = 5_000;

/** Runs a front until SIGINT/SIGTERM, then closes it and resolves. */
export async function runFront(options: FrontCommandOptions): Promise<PointstreamFront> {
  const { logger } = options;
  let front: PointstreamFront | undefined;
  let requested: NodeJS.Signals | undefined;
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ event: 'forced-exit', signal }, 'second signal: exiting now');
      logger.flush();
      process.exit(130);
    }
    if (front === undefined) {
      requested ??= signal;
      return;
    }
    stopping = true;
    logger.status({ event: 'shutdown', signal }, `${signal}: shutting down`);
    // A front holds no session: closing is quick, but bounded all the same.
    const force = setTimeout(() => {
      logger.error({ event: 'shutdown-timeout' }, 'shutdown took more than 5 s; exiting');
      logger.flush();
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    force.unref();
    void front
      .close()
      .then(
        () => {
          logger.status({ event: 'stopped' }, 'stopped');
          process.exitCode = 0;
        },
        (error: unknown) => {
          logger.error({ event: 'shutdown-failed', err: error }, 'shutdown failed');
          process.exitCode = 1;
        },
      )
      .finally(() => logger.flush());
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    front = await createFront(
      withDefaults<FrontOptions>(
        {
          bus: options.bus,
          host: options.host,
          port: options.port,
          corsOrigins: options.corsOrigins,
          limits: options.limits,
          logger,
        },
        { tls: options.tls, tokens: options.tokens, forwardTimeoutMs: options.forwardTimeoutMs },
      ),
    );
  } catch (error) {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    throw error;
  }
  // A parent that started us with an IPC channel (tests, scripts) learns the URL here.
  process.send?.({ type: 'listening', url: front.url });
  const origin = reachableOrigin(front.url, options.host);
  logger.status(
    { event: 'ready', url: front.url, viewerUrl: `${origin}/` },
    `ready: front for the cluster on ${redactUrl(options.bus)}: viewer: ${origin}/ (signaling: ${origin}/offer)`,
  );
  if (requested !== undefined) stop(requested);
  return front;
}
