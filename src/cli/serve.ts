import { spawn } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import type { BusOptions } from '../bus/publisher.js';
import { releaseNativeResources } from '../rtc/peer.js';
import type { RtcOptions } from '../rtc/peer.js';
import { DEFAULT_DRAIN_TIMEOUT_MS } from '../server/cluster.js';
import { createServer } from '../server/server.js';
import type { PointstreamServer } from '../server/server.js';
import type { RecordOptions } from '../server/recorder.js';
import type { ViewerOptions } from '../server/viewer.js';
import type { ServerLimits, ServerOptions } from '../server/types.js';
import { withDefaults } from '../util/options.js';
import type { CliLogger } from './log.js';

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
  /** Publish verified frames to this bus (`--bus`); receipts wait for it. */
  readonly bus?: BusOptions | undefined;
  /** With a bus, SIGTERM drains first, for at most this long (`--drain-timeout`). (10 s) */
  readonly drainTimeoutMs?: number | undefined;
  readonly logger: CliLogger;
}

/**
 * Runs the server until SIGINT/SIGTERM, then shuts it down in order and resolves. With a bus,
 * SIGTERM drains first (a cluster node: its clients move to other nodes); a second signal exits.
 */
export async function runServe(options: ServeCommandOptions): Promise<PointstreamServer> {
  let server: PointstreamServer | undefined;
  let requested: NodeJS.Signals | undefined;
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      options.logger.warn({ event: 'forced-exit', signal }, 'second signal: exiting now');
      exitNow(options.logger, 130);
    }
    // A signal during start-up (the server logs 'listening' before this function returns) is
    // handled as soon as the server exists.
    if (server === undefined) {
      requested ??= signal;
      return;
    }
    stopping = true;
    const drain = signal === 'SIGTERM' && options.bus !== undefined;
    const drainMs = drain ? (options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS) : 0;
    options.logger.status(
      { event: 'shutdown', signal, drain },
      drain ? `${signal}: draining, then shutting down` : `${signal}: shutting down`,
    );
    // Bounded: a stuck native close must not keep the process alive forever.
    const deadline = drainMs + SHUTDOWN_DEADLINE_MS;
    const force = setTimeout(() => {
      options.logger.error(
        { event: 'shutdown-timeout' },
        `shutdown took more than ${deadline / 1000} s; exiting`,
      );
      exitNow(options.logger, 1);
    }, deadline);
    force.unref();
    void (drain ? server.drain({ timeoutMs: drainMs }) : server.close())
      .then(
        () => {
          options.logger.status({ event: 'stopped' }, 'stopped');
          process.exitCode = 0;
        },
        (error: unknown) => {
          options.logger.error({ event: 'shutdown-failed', err: error }, 'shutdown failed');
          process.exitCode = 1;
        },
      )
      .finally(() => {
        releaseNativeResources();
        options.logger.flush();
      });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    // withDefaults leaves unset flags out, so that the library's defaults apply to them.
    const rtc = withDefaults<RtcOptions>(
      { iceServers: options.iceServers },
      { bindAddress: options.rtcBind, portRange: options.portRange, mtu: options.mtu },
    );
    server = await createServer(
      withDefaults<ServerOptions>(
        {
          host: options.host,
          port: options.port,
          rtc,
          limits: options.limits,
          corsOrigins: options.corsOrigins,
          viewer: options.viewer,
          // Every consumer here (log, recorder, viewers) is done with a frame when its listener
          // returns or retains it, so buffers can be reused.
          reuseFrameBuffers: true,
          logger: options.logger,
        },
        { tls: options.tls, tokens: options.tokens, record: options.record, bus: options.bus },
      ),
    );
  } catch (error) {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    throw error;
  }
  // A parent that started us with an IPC channel (pointstream demo, tests) learns the URL here,
  // whatever the log level.
  process.send?.({ type: 'listening', url: server.url });
  const origin = reachableOrigin(server.url, options.host);
  options.logger.status(
    { event: 'ready', url: server.url, viewerUrl: `${origin}/` },
    `ready: viewer: ${origin}/ (signaling: ${origin}/offer)`,
  );
  if (requested !== undefined) stop(requested);
  return server;
}

/** How long a shutdown may take before the process is ended regardless. */
const SHUTDOWN_DEADLINE_MS = 10_000;
/** How long `process.exit` may take before the process kills itself. */
const EXIT_GRACE_MS = 500;

/**
 * Exits whatever the disk does. `process.exit` joins libuv's worker threads, so one write blocked
 * on a hung disk (or a FIFO with no reader) keeps the process alive forever (issue 14: 50 minutes,
 * 1.9 GB). A helper thread cannot be joined either, so the process kills itself with SIGKILL once
 * the log is flushed and `process.exit` has had its chance: a watchdog child does it, since no
 * JavaScript of this process runs after `process.exit` starts.
 */
function exitNow(logger: CliLogger, code: number): never {
  logger.flush();
  // The watchdog is a plain shell, so it needs no Node start-up; it is detached and unref'd so
  // that a process exiting normally neither waits for it nor takes it down first.
  try {
    const watchdog = spawn(
      '/bin/sh',
      ['-c', `sleep ${EXIT_GRACE_MS / 1000}; kill -KILL ${process.pid} 2>/dev/null`],
      { detached: true, stdio: 'ignore' },
    );
    watchdog.unref();
  } catch {
    // No shell: exit() below is all there is.
  }
  process.exit(code);
}

/**
 * The server's URL as a person can open it: its own, except that a server on every interface
 * (0.0.0.0, ::) is reached at one of this machine's addresses (the first external IPv4 one; else
 * loopback).
 */
export function reachableOrigin(serverUrl: string, host: string): string {
  const url = new URL(serverUrl);
  if (host === '0.0.0.0' || host === '::') {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((address) => address?.family === 'IPv4' && !address.internal);
    url.hostname = external?.address ?? '127.0.0.1';
  }
  return url.origin;
}
