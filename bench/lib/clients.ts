/**
 * Concurrent clients: N `send` processes at once against ONE `serve`. The senders compete with
 * the server for the machine's cores; that is part of what this measures.
 */
import type { SendSummary } from '../../src/cli/send.js';
import { runNode } from './proc.js';
import {
  atRate,
  npyBytes,
  parseSummary,
  per100MB,
  sendArgs,
  serveArgs,
  withServer,
} from './scenarios.js';
import { countersSince, readCounters } from './system.js';

export interface ClientsOptions {
  readonly clients: number;
  readonly points: number;
  readonly seconds: number;
  readonly hz: number;
}

export interface ClientsResult {
  readonly clients: number;
  readonly points: number;
  readonly seconds: number;
  /** Summaries of the sends that printed one, in start order. */
  readonly summaries: readonly SendSummary[];
  /** Sends that failed to produce a summary (timeout, crash). */
  readonly errors: readonly string[];
  readonly framesPlanned: number;
  readonly framesAcked: number;
  /** Sum over clients of bytes sent / that client's streaming time. */
  readonly aggregateMbPerSec: number;
  readonly offeredMbPerSec: number;
  readonly serverBytes: number;
  readonly serverCpuSec: number;
  readonly serverCpuPer100MB: number;
  readonly serverPeakRssBytes: number;
  readonly senderCpuSec: number;
  readonly wallSeconds: number;
  readonly udpDrops: number | undefined;
  readonly otherCpuSec: number;
}

/** Serve options: sessions per address well above the largest client count. */
export const clientsServeArgs = (): string[] =>
  serveArgs({ extra: ['--max-sessions-per-client', '64'] });

export const clientSendArgs = (url: string, o: ClientsOptions): string[] =>
  sendArgs(url, atRate(o.hz, o.seconds), { points: o.points });

export async function runClients(o: ClientsOptions): Promise<ClientsResult> {
  const label = `clients ${o.clients}`;
  const planned = Math.round(o.hz * o.seconds);
  const timeoutMs =
    o.seconds * 1000 + 60_000 + Math.ceil((o.clients * planned * npyBytes(o.points)) / 10e6) * 1000;
  return withServer(label, clientsServeArgs(), timeoutMs, async (server) => {
    const before = await server.stats();
    const counters = readCounters();
    const started = performance.now();
    const settled = await Promise.allSettled(
      Array.from({ length: o.clients }, (_, i) =>
        runNode(`${label} send ${i + 1}`, clientSendArgs(server.url, o), timeoutMs).then((result) =>
          parseSummary(`${label} send ${i + 1}`, result),
        ),
      ),
    );
    const wallSeconds = (performance.now() - started) / 1000;
    const system = countersSince(counters);
    const after = await server.stats();
    const summaries = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const errors = settled.flatMap((s) =>
      s.status === 'rejected'
        ? [s.reason instanceof Error ? s.reason.message : String(s.reason)]
        : [],
    );
    const sum = (f: (s: SendSummary) => number): number =>
      summaries.reduce((total, s) => total + f(s), 0);
    const serverBytes = after.totals.bytesReceived - before.totals.bytesReceived;
    const serverCpuSec = after.cpuSeconds - before.cpuSeconds;
    const senderCpuSec = sum((s) => s.cpuSeconds);
    return {
      clients: o.clients,
      points: o.points,
      seconds: o.seconds,
      summaries,
      errors,
      framesPlanned: o.clients * planned,
      framesAcked: sum((s) => s.framesAcked),
      aggregateMbPerSec: sum((s) => (s.seconds > 0 ? s.bytesSent / 1e6 / s.seconds : 0)),
      offeredMbPerSec: (o.clients * o.hz * npyBytes(o.points)) / 1e6,
      serverBytes,
      serverCpuSec,
      serverCpuPer100MB: per100MB(serverCpuSec, serverBytes),
      serverPeakRssBytes: after.memory.peakRssBytes,
      senderCpuSec,
      wallSeconds,
      udpDrops: system.udpDrops,
      otherCpuSec: system.busySec - serverCpuSec - senderCpuSec,
    };
  });
}
