import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect } from '../src/index.js';
import { reachableOrigin } from '../src/cli/serve.js';
import { CLI, LOOPBACK, runCli } from './helpers.js';

void test(
  'serve --record with an unusable directory fails at start, in bounded time, with exit 2',
  { timeout: 60_000 },
  async (t) => {
    const scratch = mkdtempSync(join(tmpdir(), 'ps-record-'));
    t.after(() => rmSync(scratch, { recursive: true, force: true }));
    const file = join(scratch, 'a-file');
    writeFileSync(file, '');
    // /proc/x: mkdir answers ENOENT under an existing parent (Node's recursive mkdir spun forever).
    for (const dir of ['/proc/x', '/proc/x/y', file, join(file, 'sub')]) {
      const result = await runCli(
        ['serve', '--host', '127.0.0.1', '--port', '0', '--record', dir],
        {},
        20_000,
      );
      assert.equal(result.code, 2, `${dir}: ${result.stderr}`);
      assert.match(
        result.stderr,
        new RegExp(`cannot record to ${JSON.stringify(dir).replace(/[/\\]/g, '\\$&')}`),
      );
      assert.doesNotMatch(result.stdout, /listening|signaling on/);
    }
  },
);

interface ServeRun {
  /** stdout so far. */
  output(): string;
  stderr(): string;
  /** Waits until `match` finds something in stdout (or stderr) and returns what it found. */
  until<T>(match: () => T | undefined): Promise<T>;
  /** The first JSON log line with this event, once it appears. */
  line(event: string): Promise<Record<string, unknown>>;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `pointstream serve` as a child process (from source), stdout and stderr collected. */
function runServe(args: string[], env: Record<string, string> = {}): ServeRun {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const waiter of waiters) waiter();
  };
  child.stdout.on('data', (data: Buffer) => {
    stdout += data.toString();
    wake();
  });
  child.stderr.on('data', (data: Buffer) => {
    stderr += data.toString();
    wake();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  void exited.then(wake);
  const until = async <T>(match: () => T | undefined): Promise<T> => {
    for (;;) {
      const found = match();
      if (found !== undefined) return found;
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`serve exited (${child.exitCode ?? child.signalCode}):\n${stderr}`);
      await new Promise<void>((resolve) => {
        waiters.add(resolve);
        setTimeout(resolve, 200).unref();
      }).finally(() => waiters.clear());
    }
  };
  return {
    output: () => stdout,
    stderr: () => stderr,
    until,
    line: (event) =>
      until(() =>
        stdout
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as Record<string, unknown>)
          .find((line) => line.event === event),
      ),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

void test(
  'serve takes every option from POINTSTREAM_* environment variables; a flag wins',
  { timeout: 60_000 },
  async (t) => {
    const env = {
      POINTSTREAM_HOST: '127.0.0.1',
      POINTSTREAM_PORT: '0',
      POINTSTREAM_MAX_SESSIONS: '3',
      POINTSTREAM_IDLE_TIMEOUT: '4321',
      POINTSTREAM_ALLOW_NON_FINITE: 'true',
      POINTSTREAM_LOG_FORMAT: 'json',
    };
    const fromEnv = runServe([], env);
    t.after(() => fromEnv.stop('SIGKILL'));
    const listening = await fromEnv.line('listening');
    assert.match(listening.url as string, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(
      (({ maxSessions, idleTimeoutMs, allowNonFinite }) => ({
        maxSessions,
        idleTimeoutMs,
        allowNonFinite,
      }))(listening.limits as Record<string, unknown>),
      { maxSessions: 3, idleTimeoutMs: 4321, allowNonFinite: true },
    );
    assert.equal(await fromEnv.stop(), 0);

    const flagWins = runServe(['--max-sessions', '5'], {
      ...env,
      POINTSTREAM_ALLOW_NON_FINITE: '0',
    });
    t.after(() => flagWins.stop('SIGKILL'));
    const limits = (await flagWins.line('listening')).limits as Record<string, unknown>;
    assert.equal(limits.maxSessions, 5);
    assert.equal(limits.idleTimeoutMs, 4321);
    assert.equal(limits.allowNonFinite, false);
    assert.equal(await flagWins.stop(), 0);

    // A bad value from the environment is a usage error naming the variable.
    const bad = await runCli(['serve'], { ...env, POINTSTREAM_PORT: 'eighty' }, 20_000);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /POINTSTREAM_PORT/);
    const badFlag = await runCli(
      ['serve'],
      { ...env, POINTSTREAM_INCREMENTAL_GC: 'maybe' },
      20_000,
    );
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /POINTSTREAM_INCREMENTAL_GC/);
  },
);

/** Streams `count` small frames to `url` with the library client and closes. */
async function streamFrames(url: string, count: number): Promise<void> {
  const client = await connect({ signalingUrl: `${url}/offer`, rtc: { bindAddress: LOOPBACK } });
  try {
    for (let i = 0; i < count; i++)
      assert.equal((await (await client.send(new Float32Array(3000))).receipt).ok, true);
  } finally {
    await client.close();
  }
}

const PRETTY_LINE = /^\[\d\d:\d\d:\d\d\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): \S/;

void test(
  'serve on a terminal (pretty) logs one line per record: one per frame; JSON keeps its fields',
  { timeout: 60_000 },
  async (t) => {
    const serve = runServe(['--host', '127.0.0.1', '--port', '0', '--log-format', 'pretty']);
    t.after(() => serve.stop('SIGKILL'));
    const url = await serve.until(
      () => /ready: viewer: (http:\/\/\S+)\//.exec(serve.output())?.[1],
    );
    await streamFrames(url, 3);
    await serve.until(() => (/session ended/.test(serve.output()) ? true : undefined));
    assert.equal(await serve.stop(), 0);
    const lines = serve.output().trimEnd().split('\n');
    for (const line of lines) assert.match(line, PRETTY_LINE);
    const frames = lines.filter((line) => line.includes('frame verified'));
    assert.equal(frames.length, 3, serve.output());
    frames.forEach((line, seq) => assert.match(line, new RegExp(` seq=${seq} points=1000 `)));
    // Start-up and shutdown are there, one line each.
    assert.equal(lines.filter((line) => / ready: viewer: /.test(line)).length, 1);
    assert.equal(lines.filter((line) => /SIGTERM: shutting down/.test(line)).length, 1);

    // The JSON form (what machines read) is unchanged: one object per frame with its fields.
    const json = runServe(['--host', '127.0.0.1', '--port', '0', '--log-format', 'json']);
    t.after(() => json.stop('SIGKILL'));
    const ready = await json.line('ready');
    await streamFrames(ready.url as string, 1);
    const frame = await json.line('frame');
    assert.deepEqual(Object.keys(frame).sort(), [
      'assemblyMs',
      'bytes',
      'channel',
      'checksum',
      'event',
      'form',
      'latencyMs',
      'level',
      'msg',
      'points',
      'seq',
      'session',
      'stream',
      'time',
    ]);
    assert.equal(await json.stop(), 0);
  },
);

void test(
  'serve --log-level warn still shows start-up (with the viewer URL) and shutdown, on stderr',
  { timeout: 60_000 },
  async (t) => {
    const serve = runServe(['--host', '127.0.0.1', '--port', '0', '--log-level', 'warn']);
    t.after(() => serve.stop('SIGKILL'));
    const url = await serve.until(
      () =>
        /^pointstream: ready: viewer: (http:\/\/127\.0\.0\.1:\d+)\/ /m.exec(serve.stderr())?.[1],
    );
    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.equal(await serve.stop('SIGINT'), 0);
    assert.match(serve.stderr(), /^pointstream: SIGINT: shutting down$/m);
    assert.match(serve.stderr(), /^pointstream: stopped$/m);
    // Nothing at info reached the log itself.
    assert.equal(serve.output(), '');

    const silent = runServe(['--host', '127.0.0.1', '--port', '0', '--log-level', 'silent']);
    t.after(() => silent.stop('SIGKILL'));
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal(await silent.stop(), 0);
    assert.equal(silent.stderr() + silent.output(), '');
  },
);

void test('the start-up line names the viewer URL; on 0.0.0.0 a reachable address', () => {
  assert.equal(reachableOrigin('http://127.0.0.1:8080', '127.0.0.1'), 'http://127.0.0.1:8080');
  assert.equal(reachableOrigin('https://[::1]:8443', '::1'), 'https://[::1]:8443');
  const addresses = Object.values(networkInterfaces())
    .flat()
    .filter((address) => address?.family === 'IPv4')
    .map((address) => address?.address);
  for (const [url, host] of [
    ['http://0.0.0.0:8080', '0.0.0.0'],
    ['http://[::]:8080', '::'],
  ] as const) {
    const origin = new URL(reachableOrigin(url, host));
    assert.equal(origin.port, '8080');
    assert.ok(addresses.includes(origin.hostname), `${origin.hostname} is not an address here`);
    assert.notEqual(origin.hostname, '0.0.0.0');
  }
});

void test(
  'docs/operations.md documents the environment variable of every serve flag',
  {
    timeout: 30_000,
  },
  async () => {
    const help = await runCli(['serve', '--help'], {}, 20_000);
    assert.equal(help.code, 0);
    const variables = [
      ...help.stdout.replace(/\s+/g, ' ').matchAll(/env: (POINTSTREAM_[A-Z_]+)/g),
    ].map((match) => match[1] as string);
    const flags = [...help.stdout.matchAll(/^ {2}(--[a-z-]+)/gm)].map(
      (match) => match[1] as string,
    );
    // One variable per flag.
    assert.equal(variables.length, flags.length);
    assert.ok(variables.includes('POINTSTREAM_RECORD'));
    const doc = readFileSync(new URL('../docs/operations.md', import.meta.url), 'utf8');
    assert.deepEqual(
      variables.filter((name) => !doc.includes(`\`${name}\``)),
      [],
    );
  },
);
