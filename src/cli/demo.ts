import { spawn } from 'node:child_process';
import type { ServerStats } from '../server/types.js';
import type { Logger } from '../util/logger.js';
import { runSend } from './send.js';
import type { SendCommandOptions, SendSummary } from './send.js';
import { round } from '../sender/run-stats.js';

export interface DemoSummary {
  readonly client: SendSummary;
  readonly server: {
    readonly framesVerified: number;
    readonly framesRejected: number;
    readonly cpuSeconds: number;
    readonly cpuPercentOfCore: number;
    readonly peakRssBytes: number;
  };
}

/**
 * The main job: starts `pointstream serve` as a child process on loopback (its own core), streams
 * to it from this process, and reports both sides.
 */
export async function runDemo(
  send: Omit<SendCommandOptions, 'signalingUrl' | 'bindAddress' | 'mtu'>,
  serverLogLevel: string,
  log: Logger,
): Promise<DemoSummary> {
  const cli = process.argv[1] as string;
  const child = spawn(
    process.execPath,
    [
      ...process.execArgv,
      cli,
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--log-level',
      serverLogLevel,
    ],
    { stdio: ['ignore', 2, 'inherit', 'ipc'] },
  );
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  // Server logs go to our stderr, so stdout holds only the summary; the URL comes over IPC.
  const url = await new Promise<string>((resolve, reject) => {
    child.on('message', (message: { type?: string; url?: string }) => {
      if (message.type === 'listening' && typeof message.url === 'string') resolve(message.url);
    });
    void exited.then((code) => reject(new Error(`server exited early with code ${code}`)));
  });
  log.info({ event: 'demo-server', url }, `server started on ${url}`);
  try {
    const client = await runSend({
      ...send,
      signalingUrl: `${url}/offer`,
      bindAddress: '127.0.0.1',
      mtu: undefined,
    });
    const stats = (await (await fetch(`${url}/stats`)).json()) as ServerStats;
    return {
      client,
      server: {
        framesVerified: stats.totals.framesReceived,
        framesRejected: stats.totals.framesRejected,
        cpuSeconds: round(stats.cpuSeconds, 2),
        // Guarded: a summary never prints NaN or Infinity.
        cpuPercentOfCore:
          Date.now() > stats.startedAt
            ? Math.round((stats.cpuSeconds / ((Date.now() - stats.startedAt) / 1000)) * 100)
            : 0,
        peakRssBytes: stats.memory.peakRssBytes,
      },
    };
  } finally {
    child.kill('SIGTERM');
    const code = await exited;
    if (code !== 0)
      log.warn({ event: 'demo-server-exit', code }, `server exited with code ${code}`);
  }
}

export function formatDemoServer(summary: DemoSummary): string {
  const s = summary.server;
  return `  server     ${s.framesVerified} frames verified, ${s.framesRejected} rejected, ${s.cpuSeconds} CPU s (${s.cpuPercentOfCore}% of a core over its lifetime), peak RSS ${Math.round(s.peakRssBytes / 1e6)} MB`;
}
