import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startServer } from './helpers.js';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`pointstream ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stderr}`),
      );
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function lastJsonLine(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1] as string) as Record<string, unknown>;
}

void test(
  'send --json streams, exits 0 and ends with a JSON summary',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const result = await run([
      'send',
      '--signaling',
      `${server.url}/offer`,
      '--rtc-bind',
      '127.0.0.1',
      '--points',
      '20000',
      '--rate',
      '20',
      '--frames',
      '10',
      '--json',
    ]);
    assert.equal(result.code, 0, result.stderr);
    const summary = lastJsonLine(result.stdout);
    assert.equal(summary.ok, true);
    assert.equal(summary.framesSent, 10);
    assert.equal(summary.framesAcked, 10);
    assert.equal(summary.framesLost, 0);
    assert.equal(summary.bytesSent, 10 * (128 + 20000 * 12));
    assert.equal(typeof (summary.latencyMs as { p50: number }).p50, 'number');
    assert.ok((summary.achievedHz as number) > 0);
    assert.equal(server.stats().totals.framesReceived, 10);
  },
);

void test(
  'demo runs a server process and a client and reports both',
  { timeout: 60_000 },
  async () => {
    const result = await run([
      'demo',
      '--points',
      '20000',
      '--rate',
      '10',
      '--frames',
      '8',
      '--json',
    ]);
    assert.equal(result.code, 0, result.stderr);
    const summary = lastJsonLine(result.stdout) as {
      framesAcked: number;
      server: { framesVerified: number; cpuSeconds: number };
    };
    assert.equal(summary.framesAcked, 8);
    assert.equal(summary.server.framesVerified, 8);
    assert.ok(summary.server.cpuSeconds > 0);
  },
);

void test('bad flags exit 2 with a message naming the flag', { timeout: 60_000 }, async () => {
  const cases: [string[], RegExp][] = [
    [
      ['send', '--signaling', 'http://127.0.0.1:9/offer', '--points', 'lots'],
      /--points.*expected an integer/,
    ],
    [
      ['send', '--signaling', 'http://127.0.0.1:9/offer', '--rate', '-1'],
      /--rate.*expected a number/,
    ],
    [['send', '--signaling', 'ftp://example/offer'], /--signaling.*http/],
    [['send'], /required option '--signaling <url>'/],
    [['serve', '--port', '70000'], /--port.*expected an integer from 0 to 65535/],
    [['serve', '--port-range', '9-3'], /--port-range.*BEGIN-END/],
    [['serve', '--log-level', 'loud'], /--log-level/],
    [['frobnicate'], /unknown command/],
  ];
  for (const [args, message] of cases) {
    const result = await run(args);
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message, args.join(' '));
  }
});

void test(
  'send to a server that is not there exits 3 with the reason',
  { timeout: 60_000 },
  async () => {
    const result = await run([
      'send',
      '--signaling',
      'http://127.0.0.1:9/offer',
      '--frames',
      '1',
      '--json',
    ]);
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, /PS_ERR_SIGNALING_FAILED/);
    assert.equal(lastJsonLine(result.stdout).errorCode, 'PS_ERR_SIGNALING_FAILED');
  },
);
