import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI, runCli } from './helpers.js';

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
  child.stdout.on('data', (data: Buffer) => {
    stdout += data.toString();
    for (const wake of waiters) wake();
  });
  child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  void exited.then(() => {
    for (const wake of waiters) wake();
  });
  const find = (event: string): Record<string, unknown> | undefined =>
    stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.event === event);
  return {
    output: () => stdout,
    stderr: () => stderr,
    async line(event) {
      for (;;) {
        const found = find(event);
        if (found) return found;
        if (child.exitCode !== null)
          throw new Error(`serve exited (${child.exitCode}) before '${event}':\n${stderr}`);
        await new Promise<void>((resolve) => {
          waiters.add(resolve);
          setTimeout(resolve, 200).unref();
        }).finally(() => waiters.clear());
      }
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
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
