/**
 * The cluster's node directory: the `ps_nodes` KV bucket (heartbeats, TTL {@link NODE_TTL_MS})
 * opened for writing ({@link openNodesBucket}) and watched for reading ({@link NodeDirectory}).
 * A reader also ages entries itself: NATS 2.9 removes an expired heartbeat without telling
 * watchers, so an entry not rewritten within the TTL is treated as gone.
 */
import { Kvm } from '@nats-io/kv';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { silentLogger } from '../util/logger.js';
import type { Logger } from '../util/logger.js';
import { NODE_TTL_MS, NODES_BUCKET, parseHeartbeat } from './protocol.js';
import type { NodeHeartbeat } from './protocol.js';

/** Opens (creating if needed) the heartbeat bucket: history 1, in memory, entries expire after the TTL. */
export async function openNodesBucket(nc: NatsConnection): Promise<KV> {
  return new Kvm(nc).create(NODES_BUCKET, {
    history: 1,
    ttl: NODE_TTL_MS,
    storage: 'memory',
  });
}

/** A node as the directory knows it: its last heartbeat and when this process received it. */
export interface NodeEntry {
  readonly heartbeat: NodeHeartbeat;
  /** `performance.now()` when the heartbeat arrived here (no clock shared between hosts). */
  readonly receivedAt: number;
}

/** Options of {@link NodeDirectory.open}. */
export interface NodeDirectoryOptions {
  /** An entry older than this is gone. ({@link NODE_TTL_MS}) */
  readonly ttlMs?: number;
  /** Called after each change (a heartbeat, a delete, {@link NodeDirectory.forget}). */
  readonly changed?: () => void;
  readonly log?: Logger;
}

/** Live nodes, from their heartbeats. Invalid heartbeats are counted and logged, never fatal. */
export class NodeDirectory {
  readonly #entries = new Map<string, NodeEntry>();
  readonly #ttlMs: number;
  readonly #options: NodeDirectoryOptions;
  readonly #log: Logger;
  #invalid = 0;
  #stop: (() => void) | undefined;

  private constructor(options: NodeDirectoryOptions) {
    this.#options = options;
    this.#ttlMs = options.ttlMs ?? NODE_TTL_MS;
    this.#log = options.log ?? silentLogger;
  }

  /** Opens the bucket and starts watching it; resolves once the current entries are read. */
  static async open(
    nc: NatsConnection,
    options: NodeDirectoryOptions = {},
  ): Promise<NodeDirectory> {
    const directory = new NodeDirectory(options);
    const kv = await openNodesBucket(nc);
    const watch = await kv.watch({ key: '>' });
    directory.#stop = () => watch.stop();
    let initialized!: () => void;
    const ready = new Promise<void>((resolve) => (initialized = resolve));
    // The watcher delivers what the bucket holds, then updates; an empty bucket delivers nothing,
    // so the current keys are counted first.
    let pending = 0;
    for await (const key of await kv.keys()) if (key.length > 0) pending++;
    if (pending === 0) initialized();
    void (async () => {
      for await (const entry of watch) {
        if (entry.operation === 'PUT') directory.#put(entry.key, entry.value);
        else directory.#delete(entry.key);
        if (pending > 0 && --pending === 0) initialized();
      }
      initialized();
    })();
    await Promise.race([ready, new Promise((resolve) => setTimeout(resolve, 2_000))]);
    return directory;
  }

  /** Fresh nodes (heartbeat within the TTL), in id order. */
  nodes(): NodeEntry[] {
    const now = performance.now();
    return [...this.#entries.values()]
      .filter((entry) => now - entry.receivedAt <= this.#ttlMs)
      .sort((a, b) => (a.heartbeat.id < b.heartbeat.id ? -1 : 1));
  }

  /** A fresh node by id. */
  node(id: string): NodeEntry | undefined {
    const entry = this.#entries.get(id);
    return entry !== undefined && performance.now() - entry.receivedAt <= this.#ttlMs
      ? entry
      : undefined;
  }

  /** The fresh node that ingests `stream` of `tenant`, if any. */
  nodeOfStream(tenant: string, stream: string): NodeEntry | undefined {
    return this.nodes().find((entry) =>
      entry.heartbeat.streams.some((s) => s.tenant === tenant && s.stream === stream),
    );
  }

  /** Drops a node until its next heartbeat (it did not answer a request). */
  forget(id: string): void {
    if (this.#entries.delete(id)) this.#options.changed?.();
  }

  /** Heartbeats that could not be read since start. */
  get invalidHeartbeats(): number {
    return this.#invalid;
  }

  close(): void {
    this.#stop?.();
    this.#stop = undefined;
  }

  #put(key: string, value: Uint8Array): void {
    let heartbeat: NodeHeartbeat;
    try {
      heartbeat = parseHeartbeat(value);
      if (heartbeat.id !== key) throw new Error(`heartbeat of ${heartbeat.id} under key ${key}`);
    } catch (error) {
      this.#invalid++;
      this.#log.warn(
        { event: 'heartbeat-invalid', key, err: error },
        `ignored an invalid heartbeat under ${key}`,
      );
      return;
    }
    this.#entries.set(key, { heartbeat, receivedAt: performance.now() });
    this.#options.changed?.();
  }

  #delete(key: string): void {
    if (this.#entries.delete(key)) this.#options.changed?.();
  }
}
