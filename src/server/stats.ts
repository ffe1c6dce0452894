import type { BusPublisher } from '../bus/publisher.js';
import type { ReassemblyBudgets } from './budget.js';
import type { FrameBufferPool } from './buffer-pool.js';
import type { DecodePool } from './decode-pool.js';
import type { FrameRecorder } from './recorder.js';
import type { SessionEntry } from './http/session-resource.js';
import type { StreamRegistry } from './streams.js';
import type { TrafficTotals } from './totals.js';
import type { ServerStats } from './types.js';
import type { ViewerHub } from './viewer.js';

/** The server's parts that `/stats` reports on. */
export interface StatsParts {
  readonly startedAt: number;
  readonly cpuAtStart: NodeJS.CpuUsage;
  /** Live sessions, with the token that created each. */
  readonly sessions: ReadonlyMap<string, SessionEntry>;
  readonly streams: StreamRegistry;
  readonly budgets: ReassemblyBudgets;
  readonly decoder: DecodePool;
  readonly pool: FrameBufferPool | undefined;
  readonly recorder: FrameRecorder | undefined;
  readonly viewers: ViewerHub;
  readonly totals: TrafficTotals;
  readonly bus: BusPublisher | undefined;
  /** The node's cluster membership (with a bus). */
  readonly cluster: () => ServerStats['cluster'];
}

/**
 * Live sessions and totals since start: all of them, or with `token` (auth on, `GET /stats`)
 * only what that token's sessions and streams did.
 */
export function serverStats(parts: StatsParts, token: string | undefined): ServerStats {
  const visible = (owner: string | undefined): boolean => token === undefined || owner === token;
  return {
    startedAt: parts.startedAt,
    sessions: [...parts.sessions.values()]
      .filter((entry) => visible(entry.token))
      .map((entry) => entry.session.stats()),
    streams: parts.streams.stats(visible),
    reassemblyBytes: parts.budgets.held,
    decode: decodeStats(parts.decoder),
    frameBuffers: frameBufferStats(parts.pool),
    recording: recordingStats(parts.recorder, token),
    bus: parts.bus?.stats(),
    cluster: parts.cluster(),
    // With auth on, a token's viewers: of its streams here, or of its tenant's on other nodes.
    viewers: parts.viewers.stats(token),
    // Previews across nodes (with a bus): node-wide counters, no stream named.
    viewerPreviews: parts.viewers.previewStats(),
    // A token sees its own totals: the others' traffic is theirs.
    totals: parts.totals.of(token),
    ...processStats(parts.cpuAtStart),
  };
}

/** The figures of `/stats` that come from the process itself. */
function processStats(cpuAtStart: NodeJS.CpuUsage): Pick<ServerStats, 'cpuSeconds' | 'memory'> {
  const cpu = process.cpuUsage(cpuAtStart);
  const memory = process.memoryUsage();
  return {
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    memory: {
      rssBytes: memory.rss,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      heapUsedBytes: memory.heapUsed,
    },
  };
}

function decodeStats(decoder: DecodePool): ServerStats['decode'] {
  return {
    workers: decoder.size,
    queued: decoder.queued,
    framesDecoded: decoder.framesDecoded,
    decodeMs: Math.round(decoder.decodeMs),
    framesOverBudget: decoder.framesOverBudget,
    sessionsClosedOverBudget: decoder.sessionsClosedOverBudget,
  };
}

function frameBufferStats(pool: FrameBufferPool | undefined): ServerStats['frameBuffers'] {
  return pool && { allocated: pool.allocated, reused: pool.reused, idleBytes: pool.idleBytes };
}

/** The recorder's figures; a token's view leaves out the last error (another stream's path). */
function recordingStats(
  recorder: FrameRecorder | undefined,
  token: string | undefined,
): ServerStats['recording'] {
  const stats = recorder?.stats();
  return stats === undefined || token === undefined ? stats : { ...stats, lastError: undefined };
}
