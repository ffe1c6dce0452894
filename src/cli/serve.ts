import { createServer } from '../server/server.js';
import type { PointstreamServer } from '../server/server.js';
import type { RecordOptions } from '../server/recorder.js';
import type { ViewerOptions } from '../server/viewer.js';
import type { ServerLimits } from '../server/types.js';
import type { Logger } from '../util/logger.js';

export interface ServeCommandOptions {
  readonly record: RecordOptions | undefined;
  readonly tls: { cert: Buffer; key: Buffer } | undefined;
  readonly tokens: string[] | undefined;
  readonly corsOrigins: string[];
  readonly viewer: ViewerOptions;
  readonly host: string;
  readonly port: number;
  readonly rtcBind: string | undefined;
  readonly mtu: number | undefined;
  readonly portRange: [number, number] | undefined;
  readonly iceServers: string[];
  readonly limits: Partial<ServerLimits>;
  readonly logger: Logger & { flush(): void };
}

/** Runs the server until SIGINT/SIGTERM, then shuts it down in order and resolves. */
export async function runServe(options: ServeCommandOptions): Promise<PointstreamServer> {
  const server = await createServer({
    host: options.host,
    port: options.port,
    rtc: {
      ...(options.rtcBind === undefined ? {} : { bindAddress: options.rtcBind }),
      ...(options.portRange === undefined ? {} : { portRange: options.portRange }),
      ...(options.mtu === undefined ? {} : { mtu: options.mtu }),
      iceServers: options.iceServers,
    },
    limits: options.limits,
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    ...(options.tokens === undefined ? {} : { tokens: options.tokens }),
    corsOrigins: options.corsOrigins,
    viewer: options.viewer,
    ...(options.record === undefined ? {} : { record: options.record }),
    // Every consumer here (log, recorder, viewers) is done with a frame when its listener returns
    // or retains it, so buffers can be reused.
    reuseFrameBuffers: true,
    logger: options.logger,
  });
  // A parent that started us with an IPC channel (pointstream demo, tests) learns the URL here,
  // whatever the log level.
  process.send?.({ type: 'listening', url: server.url });
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      options.logger.warn({ event: 'forced-exit', signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    options.logger.info({ event: 'shutdown', signal }, `${signal}: shutting down`);
    // Bounded: a stuck native close must not keep the process alive forever.
    const force = setTimeout(() => {
      options.logger.error({ event: 'shutdown-timeout' }, 'shutdown took more than 10 s; exiting');
      process.exit(1);
    }, 10_000);
    force.unref();
    server.close().then(
      () => {
        options.logger.flush();
        process.exitCode = 0;
      },
      (error: unknown) => {
        options.logger.error({ event: 'shutdown-failed', err: error }, 'shutdown failed');
        process.exitCode = 1;
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return server;
}
