/**
 * A real nats-server (Debian's, 2.9.10) for tests: JetStream on, 127.0.0.1 only, a free port, a
 * temporary store, ended by PID. `stop()` then `start()` brings it back on the same port and store
 * (a bus that is lost and returns).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NATS_SERVER = '/usr/sbin/nats-server';

/** Why nats-server tests cannot run here, or undefined when they can. */
export function natsUnavailable(): string | undefined {
  return existsSync(NATS_SERVER)
    ? undefined
    : `${NATS_SERVER} is missing (apt-get install nats-server)`;
}

export interface NatsOptions {
  /** Largest message the server accepts. Default '8MB' (the bus publishes 1 MiB chunks). */
  readonly maxPayload?: string;
}

export class NatsServer {
  readonly dir: string;
  #process: ChildProcess | undefined;
  #port = -1;
  readonly #options: NatsOptions;
  #log = '';

  private constructor(options: NatsOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'ps-nats-'));
    this.#options = options;
  }

  static async start(options: NatsOptions = {}): Promise<NatsServer> {
    const server = new NatsServer(options);
    await server.start();
    return server;
  }

  /** `nats://127.0.0.1:<port>` */
  get url(): string {
    return `nats://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  get pid(): number | undefined {
    return this.#process?.pid;
  }

  get running(): boolean {
    return this.#process !== undefined;
  }

  /** What the server printed (for failure messages). */
  get log(): string {
    return this.#log;
  }

  /** Starts the server (again: same port, same store). */
  async start(): Promise<void> {
    if (this.#process !== undefined) throw new Error('nats-server is running already');
    const portsDir = join(this.dir, 'ports');
    rmSync(portsDir, { recursive: true, force: true });
    const config = join(this.dir, 'nats.conf');
    writeFileSync(
      config,
      [
        `listen: 127.0.0.1:${this.#port}`,
        `ports_file_dir: ${JSON.stringify(portsDir)}`,
        `max_payload: ${this.#options.maxPayload ?? '8MB'}`,
        `jetstream { store_dir: ${JSON.stringify(join(this.dir, 'js'))} }`,
        '',
      ].join('\n'),
    );
    mkdirSync(portsDir, { recursive: true });
    const child = spawn(NATS_SERVER, ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#process = child;
    const collect = (chunk: Buffer): void => {
      this.#log = (this.#log + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.on('exit', () => {
      if (this.#process === child) this.#process = undefined;
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const file = readdirSync(portsDir).find((name) => name.endsWith('.ports'));
      if (file !== undefined && this.#log.includes('Server is ready')) {
        const ports = JSON.parse(readFileSync(join(portsDir, file), 'utf8')) as { nats: string[] };
        this.#port = Number(new URL(ports.nats[0] ?? '').port);
        return;
      }
      if (this.#process === undefined) throw new Error(`nats-server exited:\n${this.#log}`);
      if (Date.now() > deadline) throw new Error(`nats-server did not start:\n${this.#log}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Ends the server (SIGTERM by default; SIGKILL for a crash) and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.#process;
    if (child === undefined) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }

  /** Stops the server and removes its store. */
  async close(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
