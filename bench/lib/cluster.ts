/**
 * The cluster scenario (issue 17): a nats-server, `pointstream serve --bus` nodes and a
 * `pointstream front`, every one on 127.0.0.1 and started as the README starts them (the built
 * CLI), with `pointstream send` clients through the front.
 *
 * - ingest: 1, 2 and 3 nodes, one `send --rate 0` per node at once: aggregate acknowledged MB/s
 *   and the CPU of every role (nodes, nats-server, front, clients) over the clients' run.
 * - failover: 3 nodes and one client at 4 Hz; the node that carries it is SIGKILLed, N times
 *   (restarted after each kill): time from the kill to the first frame of the client's new
 *   session, and what each kill cost in frames.
 */
import { randomBytes } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { consume } from '../../src/bus/consumer.js';
import { BusHeader, frameSubjectFilter } from '../../src/bus/layout.js';
import type { ConsumerStats } from '../../src/bus/consumer.js';
import type { SendSummary } from '../../src/cli/send.js';
import { nodeOfPeerId } from '../../src/cluster/protocol.js';
import { NatsServer } from '../../test/support/nats.js';
import { describeExit, failure, runNode, startDaemon, startProcess } from './proc.js';
import type { Daemon } from './proc.js';
import { CLI, getJson, npyBytes, parseSummary } from './scenarios.js';
import {
  countersSince,
  kernelThreadsCpu,
  kernelThreadsCpuSince,
  processCpuSeconds,
  readCounters,
} from './system.js';

const HOST = '127.0.0.1';
/** First UDP port of the nodes' ranges (node i gets the i-th block), above the tests' ranges. */
const UDP_PORT_BASE = 58_000;
const UDP_PORTS_PER_NODE = 200;
/** The failover client's stream name. */
export const FAILOVER_STREAM = 'bench-failover';
/** A kill whose client has not streamed again on another node after this long is a failure. */
const RECOVERY_TIMEOUT_MS = 30_000;
/** The failover client runs `--duration 600`: it is stopped well before; this is its hard limit. */
const FAILOVER_CLIENT_TIMEOUT_MS = 660_000;
/** Frames of a session at the consumer before its node is killed: the client streams. */
const FRAMES_BEFORE_KILL = 4;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// nats-server is not a child of proc.ts: take it down with the bench all the same.
const natsServers = new Set<NatsServer>();
process.on('exit', () => {
  for (const nats of natsServers) {
    try {
      if (nats.pid !== undefined) process.kill(nats.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Commands (also printed in the report, with <nats-url>, <front-url> for the addresses)

export const nodeId = (i: number): string => `N${i + 1}`;

/** Node i's UDP range, `begin-end`: distinct per node, the same when it is restarted. */
export function portRange(i: number): string {
  const begin = UDP_PORT_BASE + i * UDP_PORTS_PER_NODE;
  return `${begin}-${begin + UDP_PORTS_PER_NODE - 1}`;
}

export const clusterNodeArgs = (bus: string, i: number): string[] => [
  CLI,
  'serve',
  '--bus',
  bus,
  '--node-id',
  nodeId(i),
  '--host',
  HOST,
  '--port',
  '0',
  '--rtc-bind',
  HOST,
  '--port-range',
  portRange(i),
  '--log-level',
  'warn',
];

export const frontArgs = (bus: string): string[] => [
  CLI,
  'front',
  '--bus',
  bus,
  '--host',
  HOST,
  '--port',
  '0',
  '--log-level',
  'warn',
];

export const ingestSendArgs = (front: string, points: number, seconds: number): string[] => [
  CLI,
  'send',
  '--signaling',
  `${front}/offer`,
  '--rtc-bind',
  HOST,
  '--points',
  String(points),
  '--rate',
  '0',
  '--duration',
  String(seconds),
  '--json',
];

export const failoverSendArgs = (front: string, points: number, hz: number): string[] => [
  CLI,
  'send',
  '--signaling',
  `${front}/offer`,
  '--rtc-bind',
  HOST,
  '--points',
  String(points),
  '--rate',
  String(hz),
  '--duration',
  '600',
  '--json',
  '--log-format',
  'json',
  '--stream',
  FAILOVER_STREAM,
];

// ---------------------------------------------------------------------------------------------
// The cluster's processes

/** What the bench reads of a front's `/stats`. */
interface FrontStats {
  readonly nodes: readonly { readonly id: string; readonly uptimeMs: number }[];
}

function isListening(message: unknown): boolean {
  const m = message as { type?: unknown; url?: unknown } | null;
  return m?.type === 'listening' && typeof m.url === 'string';
}

/** nats-server, nodes and a front, up and seeing each other. */
class BenchCluster {
  readonly nats: NatsServer;
  readonly nodes = new Map<string, Daemon>();
  front: Daemon | undefined;
  frontUrl = '';
  readonly #label: string;
  readonly #timeoutMs: number;

  private constructor(label: string, nats: NatsServer, timeoutMs: number) {
    this.#label = label;
    this.nats = nats;
    this.#timeoutMs = timeoutMs;
  }

  /** Starts everything; on failure, stops what it started and throws. */
  static async start(label: string, nodes: number, timeoutMs: number): Promise<BenchCluster> {
    const nats = await NatsServer.start({ maxPayload: '8MB' });
    natsServers.add(nats);
    const cluster = new BenchCluster(label, nats, timeoutMs);
    try {
      const starting = Array.from({ length: nodes }, (_, i) => cluster.startNode(i));
      cluster.front = startDaemon(`${label} front`, frontArgs(nats.url), timeoutMs, isListening);
      const [front] = await Promise.all([cluster.front.ready, ...starting]);
      cluster.frontUrl = (front as { url: string }).url;
      await cluster.waitForNodes(nodes);
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  /** Starts (or restarts) node i; resolves once it listens. */
  async startNode(i: number): Promise<Daemon> {
    const id = nodeId(i);
    const node = startDaemon(
      `${this.#label} node ${id}`,
      clusterNodeArgs(this.nats.url, i),
      this.#timeoutMs,
      isListening,
    );
    this.nodes.set(id, node);
    await node.ready;
    return node;
  }

  async stats(): Promise<FrontStats> {
    return (await getJson(`${this.frontUrl}/stats`)) as FrontStats;
  }

  /**
   * Waits until the front sees `count` nodes; `restarted` (id, when) also until that node's
   * heartbeat comes from the process started then, not from its killed predecessor's last one.
   */
  async waitForNodes(count: number, restarted?: { id: string; at: number }): Promise<void> {
    const until = Date.now() + 30_000;
    for (;;) {
      const { nodes } = await this.stats();
      const fresh =
        restarted === undefined ||
        nodes.some((n) => n.id === restarted.id && n.uptimeMs <= Date.now() - restarted.at + 500);
      if (nodes.length === count && fresh) return;
      if (Date.now() > until)
        throw new Error(
          `${this.#label}: the front sees ${nodes.map((n) => n.id).join(', ') || 'no node'}, ` +
            `not ${count} nodes${restarted ? ` with ${restarted.id} restarted` : ''}, after 30 s`,
        );
      await sleep(100);
    }
  }

  /** CPU seconds so far of each process: `node:<id>`, `nats-server`, `front`. */
  cpu(): Map<string, number | undefined> {
    const cpu = new Map<string, number | undefined>();
    for (const [id, node] of this.nodes) cpu.set(`node:${id}`, processCpuSeconds(node.pid));
    cpu.set('nats-server', processCpuSeconds(this.nats.pid));
    cpu.set('front', processCpuSeconds(this.front?.pid));
    return cpu;
  }

  async close(): Promise<void> {
    await this.front?.stop(5_000);
    // SIGTERM: a node drains (no sessions left here) and exits.
    await Promise.all([...this.nodes.values()].map((node) => node.stop(15_000)));
    await this.nats.close();
    natsServers.delete(this.nats);
  }
}

/** CPU used between two readings, per process; throws if a process was gone at either. */
function cpuBetween(
  label: string,
  before: Map<string, number | undefined>,
  after: Map<string, number | undefined>,
): Map<string, number> {
  const used = new Map<string, number>();
  for (const [name, start] of before) {
    const end = after.get(name);
    if (start === undefined || end === undefined)
      throw new Error(`${label}: cannot read the CPU time of ${name} (exited?)`);
    used.set(name, end - start);
  }
  return used;
}

// ---------------------------------------------------------------------------------------------
// Ingest: 1, 2, 3 nodes

export interface ClusterIngestOptions {
  readonly nodes: number;
  readonly points: number;
  readonly seconds: number;
}

export interface ClusterIngestResult {
  readonly nodes: number;
  readonly points: number;
  readonly seconds: number;
  /** Summaries of the sends that printed one, in start order. */
  readonly summaries: readonly SendSummary[];
  /** Sends that printed no summary (timeout, crash). */
  readonly errors: readonly string[];
  /** The node each client's last session ran on (from its session id), in start order. */
  readonly placement: readonly string[];
  readonly framesAcked: number;
  readonly framesPlanned: number;
  /** Acknowledged frames x their .npy size. */
  readonly ackedBytes: number;
  /** Sum over clients of acknowledged bytes / that client's streaming time. */
  readonly aggregateMbPerSec: number;
  /** CPU seconds over the clients' run, per node id. */
  readonly nodeCpuSec: Readonly<Record<string, number>>;
  readonly natsCpuSec: number;
  readonly frontCpuSec: number;
  /** Sum of the clients' own `cpuSeconds`. */
  readonly clientCpuSec: number;
  /** The whole machine's busy CPU over the clients' run (all cores, softirq included). */
  readonly busySec: number;
  /** From the clients' start to the last one's exit. */
  readonly wallSeconds: number;
  readonly udpDrops: number | undefined;
  /** Kernel threads over the run (writeback of nats-server's store, softirq...; some of it not ours). */
  readonly kernelCpuSec: number;
  /** Time the hypervisor gave other guests (in busySec). */
  readonly stealSec: number;
  /** busySec minus every role's CPU and the kernel threads': other processes, steal, the clients' start-up. */
  readonly otherCpuSec: number;
}

export async function runClusterIngest(o: ClusterIngestOptions): Promise<ClusterIngestResult> {
  const label = `cluster ${o.nodes} node${o.nodes === 1 ? '' : 's'}`;
  const timeoutMs = o.seconds * 1000 + 90_000;
  const cluster = await BenchCluster.start(label, o.nodes, timeoutMs + 60_000);
  try {
    const cpuBefore = cluster.cpu();
    const kernelBefore = kernelThreadsCpu();
    const counters = readCounters();
    const started = performance.now();
    const settled = await Promise.allSettled(
      Array.from({ length: o.nodes }, (_, i) =>
        runNode(
          `${label} send ${i + 1}`,
          ingestSendArgs(cluster.frontUrl, o.points, o.seconds),
          timeoutMs,
        ).then((result) => parseSummary(`${label} send ${i + 1}`, result)),
      ),
    );
    const wallSeconds = (performance.now() - started) / 1000;
    const system = countersSince(counters);
    const kernelCpuSec = kernelThreadsCpuSince(kernelBefore);
    const used = cpuBetween(label, cpuBefore, cluster.cpu());
    const summaries = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const errors = settled.flatMap((s) =>
      s.status === 'rejected'
        ? [s.reason instanceof Error ? s.reason.message : String(s.reason)]
        : [],
    );
    const sum = (f: (s: SendSummary) => number): number =>
      summaries.reduce((total, s) => total + f(s), 0);
    const frameBytes = npyBytes(o.points);
    const nodeCpuSec: Record<string, number> = {};
    for (const [name, sec] of used) if (name.startsWith('node:')) nodeCpuSec[name.slice(5)] = sec;
    const natsCpuSec = used.get('nats-server') ?? 0;
    const frontCpuSec = used.get('front') ?? 0;
    const clientCpuSec = sum((s) => s.cpuSeconds);
    const roles =
      Object.values(nodeCpuSec).reduce((a, b) => a + b, 0) +
      natsCpuSec +
      frontCpuSec +
      clientCpuSec;
    return {
      nodes: o.nodes,
      points: o.points,
      seconds: o.seconds,
      summaries,
      errors,
      placement: summaries.map((s) => nodeOfPeerId(s.session ?? '') ?? '?'),
      framesAcked: sum((s) => s.framesAcked),
      framesPlanned: sum((s) => s.framesPlanned),
      ackedBytes: sum((s) => s.framesAcked) * frameBytes,
      aggregateMbPerSec: sum((s) =>
        s.seconds > 0 ? (s.framesAcked * frameBytes) / 1e6 / s.seconds : 0,
      ),
      nodeCpuSec,
      natsCpuSec,
      frontCpuSec,
      clientCpuSec,
      busySec: system.busySec,
      wallSeconds,
      udpDrops: system.udpDrops,
      kernelCpuSec,
      stealSec: system.stealSec,
      otherCpuSec: system.busySec - roles - kernelCpuSec,
    };
  } finally {
    await cluster.close();
  }
}

/** Problems of an ingest run worth listing as failures: failed sends, clients not one per node. */
export function ingestProblems(r: ClusterIngestResult): string[] {
  const problems = r.errors.map((e) => e.split('\n')[0] ?? e);
  for (const s of r.summaries) if (!s.ok) problems.push(`a send did not succeed: ${s.reason}`);
  const distinct = new Set(r.placement).size;
  if (r.placement.length === r.nodes && distinct !== r.nodes)
    problems.push(`clients not one per node: ${r.placement.join(', ')}`);
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Failover: N kills

export interface FailoverOptions {
  readonly kills: number;
  readonly points: number;
  readonly hz: number;
}

/** One SIGKILL of the node that carried the client. */
export interface FailoverKill {
  readonly kill: number;
  /** The node killed, and the one the client streamed on next. */
  readonly node: string;
  readonly newNode: string | undefined;
  /** Kill -> the new session's first frame verified by its node (`receivedAt`, the node's clock). */
  readonly recoveryMs: number | undefined;
  /** Kill -> that frame's last chunk at the bench's subscription to the stream's subject. */
  readonly busMs: number | undefined;
  /** The client's `frame-lost` log lines after this kill (frames sent, receipt never came). */
  readonly lost: number;
  /** Frames the client skipped while reconnecting after this kill (their time had passed). */
  readonly skipped: number;
  /** Frame numbers between the old session's last frame and the new one's first that the bus never got. */
  readonly busGap: number | undefined;
  /** Connection attempts after this kill (`reconnecting` log lines). */
  readonly attempts: number;
  /** Restart of the killed node -> the front sees it again. */
  readonly rejoinMs: number | undefined;
}

export interface FailoverResult {
  readonly kills: readonly FailoverKill[];
  readonly points: number;
  readonly hz: number;
  /** The client's summary (it is stopped with SIGINT after the last kill). */
  readonly summary: SendSummary | undefined;
  /** Undefined if the consumer never ran. */
  readonly consumer: ConsumerStats | undefined;
  readonly wallSeconds: number;
}

interface SeenFrame {
  readonly seq: number;
  readonly session: string;
  readonly node: string;
  readonly receivedAt: number;
  readonly onBusAt: number;
}

interface ClientEvent {
  readonly event: string;
  readonly time: number;
  readonly count: number;
}

/** A `send --log-format json` line: event, time (ms since the epoch), `count` for skips. */
function parseClientEvent(line: string): ClientEvent | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const entry = JSON.parse(line) as { event?: unknown; time?: unknown; count?: unknown };
    if (typeof entry.event !== 'string' || typeof entry.time !== 'number') return undefined;
    return {
      event: entry.event,
      time: entry.time,
      count: typeof entry.count === 'number' ? entry.count : 1,
    };
  } catch {
    return undefined;
  }
}

/** Polls `found` every 20 ms until it returns something, or throws after `timeoutMs`. */
async function waitFor<T>(what: string, timeoutMs: number, found: () => T | undefined): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = found();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(20);
  }
}

/** What the failover run collects as it goes. */
interface FailoverLog {
  readonly frames: SeenFrame[];
  readonly events: ClientEvent[];
  readonly kills: FailoverKill[];
  readonly killedAt: number[];
}

/**
 * Starts the client, kills the node that carries it `o.kills` times (restarting it after each),
 * then stops the client with SIGINT. Returns its summary, and why the loop stopped early if it did.
 */
async function killLoop(
  label: string,
  cluster: BenchCluster,
  o: FailoverOptions,
  log: FailoverLog,
): Promise<{ summary: SendSummary | undefined; error: string | undefined }> {
  const { frames, events, kills, killedAt } = log;
  const client = startProcess(
    `${label} send`,
    failoverSendArgs(cluster.frontUrl, o.points, o.hz),
    FAILOVER_CLIENT_TIMEOUT_MS,
    {
      keepStdout: true,
      onErrorLine: (line) => {
        const event = parseClientEvent(line);
        if (event) events.push(event);
      },
    },
  );
  let clientExit: string | undefined;
  void client.exited.then(
    (r) => (clientExit = `${describeExit(r)}: ${r.stderr.trim().slice(-300)}`),
  );
  const alive = (): void => {
    if (clientExit !== undefined) throw new Error(`${label}: send ended (${clientExit})`);
  };
  let error: string | undefined;
  try {
    for (let kill = 1; kill <= o.kills; kill++) {
      // It streams: a few frames of its current session are on the bus.
      const session = await waitFor(`${label} kill ${kill}: the client streams`, 30_000, () => {
        alive();
        const last = frames.at(-1);
        if (last === undefined) return undefined;
        const count = frames.filter((f) => f.session === last.session).length;
        return count >= FRAMES_BEFORE_KILL ? last.session : undefined;
      });
      const id = nodeOfPeerId(session);
      const node = id === undefined ? undefined : cluster.nodes.get(id);
      if (id === undefined || node === undefined)
        throw new Error(`${label}: session ${session} names no node of the cluster`);
      const seen = new Set(frames.map((f) => f.session));
      const at = Date.now();
      killedAt.push(at);
      node.kill('SIGKILL');
      await node.exited;
      const first = await waitFor(
        `${label} kill ${kill}: frames of a new session`,
        RECOVERY_TIMEOUT_MS,
        () => {
          alive();
          return frames.find((f) => !seen.has(f.session));
        },
      );
      const lastOld = frames
        .filter((f) => f.session === session)
        .reduce((max, f) => Math.max(max, f.seq), -1);
      const restartAt = Date.now();
      await cluster.startNode(Number(id.slice(1)) - 1);
      await cluster.waitForNodes(3, { id, at: restartAt });
      kills.push({
        kill,
        node: id,
        newNode: nodeOfPeerId(first.session),
        recoveryMs: first.receivedAt - at,
        busMs: first.onBusAt - at,
        lost: 0,
        skipped: 0,
        busGap: lastOld >= 0 ? first.seq - lastOld - 1 : undefined,
        attempts: 0,
        rejoinMs: Date.now() - restartAt,
      });
    }
    // Let the last recovery settle into streaming before the client stops.
    await sleep(2_000);
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  }
  client.kill('SIGINT');
  const exit = await client.exited;
  try {
    // SIGINT: send prints its summary (ok false, interrupted) and exits.
    return { summary: parseSummary(`${label} send`, exit), error };
  } catch {
    error ??= failure(`${label} send: ${describeExit(exit)}, no summary`, exit.stderr).message;
    return { summary: undefined, error };
  }
}

/**
 * Kills the node that carries the client `o.kills` times. A kill the client does not recover from
 * within 30 s ends the run: the kills so far are returned, with the error.
 */
export async function runClusterFailover(
  o: FailoverOptions,
): Promise<{ result: FailoverResult; error?: string }> {
  const label = 'cluster failover';
  const cluster = await BenchCluster.start(label, 3, FAILOVER_CLIENT_TIMEOUT_MS + 60_000);
  const frames: SeenFrame[] = [];
  const events: ClientEvent[] = [];
  const kills: FailoverKill[] = [];
  const killedAt: number[] = [];
  const started = performance.now();
  let summary: SendSummary | undefined;
  let consumerStats: ConsumerStats | undefined;
  let error: string | undefined;
  try {
    // Timing from the chunks' own headers (a core subscription: every chunk as published,
    // nothing checked); integrity from a real consumer (parts, CRC, gaps): its counters.
    const watch = await connect({ servers: cluster.nats.url });
    const watching = (async () => {
      for await (const m of watch.subscribe(frameSubjectFilter(FAILOVER_STREAM))) {
        const h = (name: string): string => m.headers?.get(name) ?? '';
        // A frame is on the bus once its last part is.
        if (Number(h(BusHeader.PART)) !== Number(h(BusHeader.PARTS)) - 1) continue;
        frames.push({
          seq: Number(h(BusHeader.SEQ)),
          session: h(BusHeader.SESSION),
          node: h(BusHeader.NODE),
          receivedAt: Number(h(BusHeader.RECEIVED_AT)),
          onBusAt: Date.now(),
        });
      }
    })();
    const consumer = consume({
      bus: cluster.nats.url,
      stream: FAILOVER_STREAM,
      durable: `bench-failover-${randomBytes(4).toString('hex')}`,
    });
    const reading = (async () => {
      // Read (and acknowledged) only for the consumer's counters.
      for await (const frame of consumer) void frame;
    })();
    try {
      await watch.flush();
      await consumer.ready();
      ({ summary, error } = await killLoop(label, cluster, o, { frames, events, kills, killedAt }));
      // Frames published last reach the consumer.
      await sleep(1_000);
    } finally {
      await consumer.close();
      await reading.catch(() => undefined);
      consumerStats = consumer.stats();
      await watch.close();
      await watching.catch(() => undefined);
    }
  } catch (e) {
    error ??= e instanceof Error ? e.message : String(e);
  } finally {
    await cluster.close();
  }
  // Client log lines are attributed to the kill before them.
  const counted = kills.map((k, i) => {
    const from = killedAt[i] ?? Infinity;
    const to = killedAt[i + 1] ?? Infinity;
    const mine = events.filter((e) => e.time >= from && e.time < to);
    const total = (name: string): number =>
      mine.filter((e) => e.event === name).reduce((n, e) => n + e.count, 0);
    return {
      ...k,
      lost: total('frame-lost'),
      skipped: total('frames-skipped'),
      attempts: total('reconnecting'),
    };
  });
  const result: FailoverResult = {
    kills: counted,
    points: o.points,
    hz: o.hz,
    summary,
    consumer: consumerStats,
    wallSeconds: (performance.now() - started) / 1000,
  };
  return error === undefined ? { result } : { result, error };
}
