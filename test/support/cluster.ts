/**
 * A cluster on 127.0.0.1 for tests and the benchmark: a nats-server (test/support/nats.ts), ingest
 * nodes (`pointstream serve --bus`, each with its own UDP port range), a front
 * (`pointstream front`), and `pointstream send` clients, all as child processes running the CLI as
 * users do, each ended by PID.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { CLI } from '../helpers.js';
import { NatsServer } from './nats.js';

/** A CLI child process and what it printed. */
export class CliProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  /** When it exited (performance.now()), or undefined. */
  exitedAt: number | undefined;
  #output = '';
  #url: string | undefined;

  constructor(name: string, args: readonly string[], env: Record<string, string> = {}) {
    this.name = name;
    this.child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, ...env },
    });
    this.child.stdout?.on('data', (data: Buffer) => (this.#output += data.toString()));
    this.child.stderr?.on('data', (data: Buffer) => (this.#output += data.toString()));
    this.child.on('message', (message: { type?: string; url?: string }) => {
      if (message.type === 'listening') this.#url = message.url;
    });
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        this.exitedAt = performance.now();
        resolve(code ?? (signal === null ? null : -1));
      }),
    );
  }

  get output(): string {
    return this.#output;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the URL it listens on (serve, front), or rejects if it exits first. */
  async listening(timeoutMs = 60_000): Promise<string> {
    const until = Date.now() + timeoutMs;
    while (this.#url === undefined) {
      if (!this.running) throw new Error(`${this.name} exited before listening:\n${this.#output}`);
      if (Date.now() > until) throw new Error(`${this.name} did not listen:\n${this.#output}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return this.#url;
  }

  get url(): string {
    if (this.#url === undefined) throw new Error(`${this.name} is not listening`);
    return this.#url;
  }

  /** JSON log lines printed so far (`--log-format json`). */
  events(): Record<string, unknown>[] {
    const events: Record<string, unknown>[] = [];
    for (const line of this.#output.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        events.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a line cut short by the process's end
      }
    }
    return events;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGKILL if still running, and wait for the exit. */
  async close(): Promise<void> {
    this.kill('SIGKILL');
    await this.exited;
  }
}

/** A node of a {@link TestCluster}. */
export interface NodeSpec {
  readonly id: string;
  readonly maxSessions?: number;
  /** More `serve` flags. */
  readonly args?: readonly string[];
}

/** Options of {@link TestCluster.start}. */
export interface TestClusterOptions {
  readonly nodes: readonly NodeSpec[];
  /** First UDP port of the nodes' ranges (each node gets the next 200). */
  readonly udpPortBase?: number;
  readonly frontArgs?: readonly string[];
  readonly env?: Record<string, string>;
}

const LOG = ['--log-format', 'json', '--log-level', 'info'];

/** nats-server + nodes + a front, every one on 127.0.0.1. */
export class TestCluster {
  readonly nats: NatsServer;
  readonly nodes = new Map<string, CliProcess>();
  /** Each node's UDP port range. */
  readonly portRanges = new Map<string, [number, number]>();
  front!: CliProcess;
  readonly #options: TestClusterOptions;
  readonly #clients: CliProcess[] = [];

  private constructor(nats: NatsServer, options: TestClusterOptions) {
    this.nats = nats;
    this.#options = options;
  }

  static async start(options: TestClusterOptions): Promise<TestCluster> {
    const cluster = new TestCluster(await NatsServer.start(), options);
    try {
      let base = options.udpPortBase ?? 42_000 + (process.pid % 50) * 300;
      for (const spec of options.nodes) {
        cluster.portRanges.set(spec.id, [base, base + 199]);
        cluster.startNode(spec, [base, base + 199]);
        base += 200;
      }
      cluster.front = new CliProcess('front', [
        'front',
        '--bus',
        cluster.nats.url,
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        ...LOG,
        ...(options.frontArgs ?? []),
      ]);
      await Promise.all([
        cluster.front.listening(),
        ...[...cluster.nodes.values()].map((node) => node.listening()),
      ]);
      await cluster.waitForNodes(options.nodes.length);
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  /** Starts (or restarts) a node. */
  startNode(spec: NodeSpec, range = this.portRanges.get(spec.id)): CliProcess {
    if (range === undefined) throw new Error(`no port range for ${spec.id}`);
    const node = new CliProcess(
      `node ${spec.id}`,
      [
        'serve',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--rtc-bind',
        '127.0.0.1',
        '--port-range',
        `${range[0]}-${range[1]}`,
        '--bus',
        this.nats.url,
        '--node-id',
        spec.id,
        ...(spec.maxSessions === undefined ? [] : ['--max-sessions', String(spec.maxSessions)]),
        ...LOG,
        ...(spec.args ?? []),
      ],
      this.#options.env,
    );
    this.nodes.set(spec.id, node);
    return node;
  }

  node(id: string): CliProcess {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** The front's `/stats`. */
  async frontStats(): Promise<FrontStats> {
    const response = await fetch(`${this.front.url}/stats`);
    return (await response.json()) as FrontStats;
  }

  /** Waits until the front sees `count` nodes. */
  async waitForNodes(count: number, timeoutMs = 20_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const stats = await this.frontStats();
      if (stats.nodes.length === count) return;
      if (Date.now() > until)
        throw new Error(`the front sees ${stats.nodes.length} nodes, not ${count}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Waits until the nodes' heartbeats (as the front sees them) count `count` sessions in all. */
  async waitForSessions(count: number, timeoutMs = 60_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const stats = await this.frontStats();
      const sessions = stats.nodes.reduce((sum, node) => sum + node.sessions, 0);
      if (sessions >= count) return;
      if (Date.now() > until) throw new Error(`${sessions} sessions placed, not ${count}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** `pointstream send` through the front (`--json`, JSON logs), as a user runs it. */
  send(name: string, args: readonly string[]): CliProcess {
    const client = new CliProcess(`send ${name}`, [
      'send',
      '--signaling',
      `${this.front.url}/offer`,
      '--rtc-bind',
      '127.0.0.1',
      '--json',
      '--no-progress',
      '--stream',
      name,
      ...LOG,
      ...args,
    ]);
    this.#clients.push(client);
    return client;
  }

  async close(): Promise<void> {
    await Promise.all(this.#clients.map((client) => client.close()));
    await this.front?.close();
    await Promise.all([...this.nodes.values()].map((node) => node.close()));
    await this.nats.close();
  }
}

/** What the tests read of the front's `/stats`. */
export interface FrontStats {
  readonly nodes: readonly {
    readonly id: string;
    readonly sessions: number;
    readonly maxSessions: number;
    readonly draining: boolean;
    readonly busHealthy: boolean;
  }[];
  readonly streams: readonly { readonly stream: string; readonly node: string }[];
}

/** The last JSON line a `send --json` printed (its summary). */
export function summaryOf(client: CliProcess): Record<string, unknown> {
  const lines = client.output.trim().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as string;
    if (line.startsWith('{') && line.includes('"framesPlanned"'))
      return JSON.parse(line) as Record<string, unknown>;
  }
  throw new Error(`${client.name} printed no summary:\n${client.output}`);
}

/** The node a cluster session id names (`<node>.<random>`). */
export function nodeOfSession(session: string): string {
  return session.slice(0, session.indexOf('.'));
}
