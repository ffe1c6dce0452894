import { Session } from '../src/server/session.js';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import nodeDataChannel from 'node-datachannel';
import type { DataChannel, PeerConnection } from 'node-datachannel';
import { createServer } from '../src/index.js';
import type { PointstreamServer, ServerOptions } from '../src/index.js';
import { candidatesOf, toSdpFragment, withoutCandidates } from '../src/signaling/sdp.js';
import { decodeServerMessage } from '../src/wire/control.js';
import type { ServerMessage } from '../src/wire/control.js';

export const LOOPBACK = '127.0.0.1';

/** A server on 127.0.0.1, any free port, WebRTC bound to loopback. */
export async function startServer(options: ServerOptions = {}): Promise<PointstreamServer> {
  return createServer({
    host: LOOPBACK,
    port: 0,
    ...options,
    rtc: { bindAddress: LOOPBACK, ...options.rtc },
  });
}

/** Waits for `condition`; `what` names it in the timeout error (a function: read at the timeout). */
export async function waitFor(
  condition: () => boolean,
  ms: number,
  what: string | (() => string),
): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline)
      throw new Error(
        `timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A bare node-datachannel client, as a third-party program would write one: it can speak either
 * signaling form and any channel protocol, and sends whatever bytes a test gives it.
 */
export class RawPeer {
  readonly pc: PeerConnection;
  readonly dc: DataChannel;
  readonly messages: ServerMessage[] = [];
  readonly status: {
    http?: number;
    location?: string | null;
    contentType?: string | null;
    json?: unknown;
  } = {};
  closed = false;
  #closedAt: number | undefined;
  #waiters: (() => void)[] = [];

  constructor(protocol: string, options: { maxMessageSize?: number } = {}) {
    this.pc = new nodeDataChannel.PeerConnection('raw', {
      iceServers: [],
      bindAddress: LOOPBACK,
      ...(options.maxMessageSize ? { maxMessageSize: options.maxMessageSize } : {}),
    });
    // node-datachannel releases a peer's native callbacks when its state reaches 'closed', which it
    // only reports to a registered state handler; without one the process cannot exit.
    this.pc.onStateChange(() => undefined);
    this.dc = this.pc.createDataChannel('raw', { protocol });
    this.dc.onMessage((message) => {
      if (typeof message === 'string') this.messages.push(decodeServerMessage(message));
      for (const waiter of this.#waiters.splice(0)) waiter();
    });
    this.dc.onClosed(() => {
      this.closed = true;
      this.#closedAt = performance.now();
      for (const waiter of this.#waiters.splice(0)) waiter();
    });
  }

  /**
   * Signals with the server (`form`: JSON body, with `fields` added, or application/sdp) and
   * waits for the hello.
   */
  async connect(
    offerUrl: string,
    form: 'json' | 'sdp',
    fields: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ): Promise<void> {
    await new Promise<void>((resolve) => {
      if (this.pc.gatheringState() === 'complete') resolve();
      else this.pc.onGatheringStateChange((state) => state === 'complete' && resolve());
    });
    const offer = withoutCandidates((this.pc.localDescription() as { sdp: string }).sdp);
    const response =
      form === 'json'
        ? await fetch(offerUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...headers },
            body: JSON.stringify({ sdp: offer, type: 'offer', ...fields }),
          })
        : await fetch(offerUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/sdp', ...headers },
            body: offer,
          });
    this.status.http = response.status;
    this.status.location = response.headers.get('location');
    this.status.contentType = response.headers.get('content-type');
    let answer: string;
    if (form === 'json') {
      const json = (await response.json()) as { sdp: string; type: string };
      this.status.json = json;
      answer = json.sdp;
    } else answer = await response.text();
    if (!response.ok) throw new Error(`signaling failed: ${response.status} ${answer}`);
    this.pc.setRemoteDescription(answer, 'answer');
    const candidates = candidatesOf((this.pc.localDescription() as { sdp: string }).sdp);
    const patch = await fetch(new URL(this.status.location as string, offerUrl), {
      method: 'PATCH',
      headers: { 'content-type': 'application/trickle-ice-sdpfrag', ...headers },
      body: toSdpFragment(candidates),
    });
    if (patch.status !== 204) throw new Error(`PATCH answered ${patch.status}`);
    await this.waitForMessage((m) => m.type === 'hello', 10_000);
  }

  /** Waits until a message matching `match` has arrived (already or later). */
  async waitForMessage(
    match: (message: ServerMessage) => boolean,
    ms: number,
  ): Promise<ServerMessage> {
    const deadline = performance.now() + ms;
    for (;;) {
      const found = this.messages.find(match);
      if (found) return found;
      // node-datachannel delivers messages and the closed event through separate queues: a
      // message sent just before the close can come just after it. Give it a moment.
      if (this.closed && this.#closedAt !== undefined && performance.now() - this.#closedAt > 500)
        throw new Error('channel closed before the expected message');
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`expected message not received within ${ms} ms`);
      await Promise.race([
        new Promise<void>((resolve) => this.#waiters.push(resolve)),
        new Promise<void>((resolve) =>
          setTimeout(resolve, this.closed ? Math.min(left, 50) : left).unref(),
        ),
      ]);
    }
  }

  receipt(seq: number, ms = 10_000): Promise<ServerMessage> {
    return this.waitForMessage((m) => m.type === 'receipt' && m.seq === seq, ms);
  }

  send(bytes: Uint8Array): void {
    this.dc.sendMessageBinary(bytes);
  }

  close(): void {
    try {
      this.dc.close();
    } catch {
      // already closed
    }
    this.pc.close();
  }
}

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end, collecting its output; kills it and fails after `timeoutMs`. */
export function runProcess(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ProcessResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`${command} ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stderr}`),
      );
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

/** Runs the `pointstream` command (from source, through tsx). */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<ProcessResult> {
  return runProcess(process.execPath, ['--import', 'tsx', CLI, ...args], { env, timeoutMs });
}

/** The last line of a command's output, parsed as JSON (the `--json` summary). */
export function lastJsonLine(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1] as string) as Record<string, unknown>;
}

/** The first Python 3 that imports `modules`: Debian's (what .ci/run installs), then PATH's. */
export function findPython(modules: string): string {
  for (const candidate of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(candidate, ['-c', `import ${modules}`], { stdio: 'ignore' });
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error(`no python3 with ${modules}: apt-get install python3-numpy python3-aiortc`);
}

/**
 * The server's sessions as it makes them, in order (for tests that call `moveAway()`, what a
 * draining cluster node calls): wraps `Session.prototype.answer` until the test ends.
 */
export function captureSessions(t: { after(fn: () => void): void }): Session[] {
  const sessions: Session[] = [];
  const proto = Session.prototype;
  const descriptor = Object.getOwnPropertyDescriptor(proto, 'answer') as PropertyDescriptor;
  const answer = descriptor.value as (this: Session, sdp: string) => Promise<string>;
  Object.defineProperty(proto, 'answer', {
    ...descriptor,
    value(this: Session, sdp: string) {
      sessions.push(this);
      return answer.call(this, sdp);
    },
  });
  t.after(() => Object.defineProperty(proto, 'answer', descriptor));
  return sessions;
}
