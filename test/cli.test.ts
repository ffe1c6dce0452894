import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, connect } from '../src/index.js';
import { CLI, lastJsonLine, runCli as run, startServer } from './helpers.js';

const FIELD_FIXTURES = fileURLToPath(new URL('./fixtures/fields/', import.meta.url));

/** A `serve` child (from source) on 127.0.0.1, port 0, once it announced its URL. */
async function startServe(
  nodeFlags: string[],
  serveFlags: string[],
): Promise<{
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
  output: () => string;
}> {
  const child = spawn(
    process.execPath,
    [
      ...nodeFlags,
      '--import',
      'tsx',
      CLI,
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      ...serveFlags,
    ],
    { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
  );
  let stdout = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const url = await new Promise<string>((resolve) =>
    child.once('message', (m: { url: string }) => resolve(m.url)),
  );
  return { child, url, exited, output: () => stdout };
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
    // Given only the URL of a server on this machine, send takes the loopback route by itself.
    assert.deepEqual(summary.route, { bindAddress: '127.0.0.1', mtu: 4096 });
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
    [
      ['send', '--signaling', 'http://127.0.0.1:9/offer', '--encoding', 'zip'],
      /--encoding.*zip.*raw, q16, qrice/,
    ],
    [
      ['send', '--signaling', 'http://127.0.0.1:9/offer', '--precision', '0'],
      /--precision.*expected a number/,
    ],
    [['send'], /required option '--signaling <url>'/],
    [
      ['send', '--signaling', 'http://127.0.0.1:9/offer', '--fields', 'x,y,intensity'],
      /--fields.*z missing/,
    ],
    [
      ['send', '--signaling', 'http://127.0.0.1:9/offer', '--fields', 'x,y,z,x'],
      /--fields.*x is named twice/,
    ],
    [
      ['send', '--signaling', 'http://127.0.0.1:9/offer', '--fields', 'x,y,z,normal-x'],
      /--fields.*"normal-x" is not a field name/,
    ],
    [
      ['send', '--signaling', 'http://127.0.0.1:9/offer', '--fields', 'x,y,z,intensity'],
      /--fields names the columns of a --from file/,
    ],
    [
      ['send', '--signaling', 'http://127.0.0.1:9/offer', '--field-precision', 'intensity'],
      /--field-precision.*expected name=maxError/,
    ],
    [
      ['send', '--signaling', 'http://127.0.0.1:9/offer', '--field-precision', 'intensity=0'],
      /--field-precision.*intensity: expected a largest error above 0/,
    ],
    [
      ['send', '--signaling', 'http://127.0.0.1:9/offer', '--field-precision', 'intensity=0.01'],
      /--field-precision applies to --encoding q16 or qrice/,
    ],
    [
      [
        'send',
        '--signaling',
        'http://127.0.0.1:9/offer',
        '--encoding',
        'qrice',
        '--from',
        join(FIELD_FIXTURES, 'structured.npy'),
        '--field-precision',
        'ring=1',
      ],
      /--field-precision: field ring is u16, an integer type/,
    ],
    [
      [
        'send',
        '--signaling',
        'http://127.0.0.1:9/offer',
        '--encoding',
        'q16',
        '--from',
        join(FIELD_FIXTURES, 'cloud_binary.pcd'),
        '--field-precision',
        'reflectivity=1',
      ],
      /--field-precision: the input has no field reflectivity \(its fields: intensity, ring/,
    ],
    [
      [
        'send',
        '--signaling',
        'http://127.0.0.1:9/offer',
        '--from',
        join(FIELD_FIXTURES, 'columns_f4.npy'),
        '--fields',
        'x,y,z,intensity',
      ],
      /--from: .*columns_f4\.npy: --fields names 4 columns \(x,y,z,intensity\); the array has 5 \(PS_ERR_SOURCE_UNREADABLE\)/,
    ],
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

void test(
  'serve shuts down on SIGTERM: clients are told, the process exits 0',
  { timeout: 60_000 },
  async () => {
    const serve = await startServe([], ['--log-format', 'json']);
    const client = await connect({
      signalingUrl: `${serve.url}/offer`,
      rtc: { bindAddress: '127.0.0.1' },
    });
    assert.equal((await (await client.send(new Float32Array(300))).receipt).ok, true);
    const closed = client.next('closed', { timeoutMs: 15_000 });
    const started = performance.now();
    serve.child.kill('SIGTERM');
    const end = await closed;
    assert.equal(end.code, ErrorCodes.SESSION_CLOSED);
    assert.match(end.reason, /server shutting down/);
    assert.equal(await serve.exited, 0);
    assert.ok(performance.now() - started < 10_000, 'exits within the bounded shutdown time');
    assert.match(serve.output(), /"event":"shutdown"/);
    assert.match(serve.output(), /"event":"session-end"/);
  },
);

void test(
  'send on SIGINT stops, still prints its summary and exits 130',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        CLI,
        'send',
        '--signaling',
        `${server.url}/offer`,
        '--points',
        '1000',
        '--rate',
        '20',
        '--duration',
        '60',
        '--json',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await server.next('frame', { timeoutMs: 20_000 });
    child.kill('SIGINT');
    assert.equal(await exited, 130);
    const summary = lastJsonLine(stdout);
    assert.equal(summary.errorCode, ErrorCodes.ABORTED);
    assert.ok((summary.framesAcked as number) >= 1);
    assert.equal(summary.framesLost, 0);
    assert.equal(summary.framesPlanned, 1200);
    assert.ok((summary.framesNotSent as number) > 0);
    assertCountsAddUp(summary);
  },
);

void test(
  'a frame the server cannot take stops send with the reason, without reconnecting',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({ limits: { maxPointsPerFrame: 1000 } });
    t.after(() => server.close());
    const result = await run([
      'send',
      '--signaling',
      `${server.url}/offer`,
      '--points',
      '2000',
      '--frames',
      '3',
      '--json',
    ]);
    assert.equal(result.code, 1, result.stderr);
    const summary = lastJsonLine(result.stdout);
    assert.equal(summary.errorCode, ErrorCodes.FRAME_TOO_MANY_POINTS);
    assert.equal(summary.reconnects, 0);
    assert.equal(summary.framesSkipped, 0);
    assert.match(summary.reason as string, /2000 points exceed the server's limit of 1000/);
  },
);

void test(
  'chunks larger than 256 KiB are used when the server allows them',
  { timeout: 60_000 },
  async (t) => {
    // The server advertises 256 KiB messages unless told more (issue 14).
    const server = await startServer({ limits: { maxPlainMessageBytes: 1_048_576 } });
    t.after(() => server.close());
    const result = await run([
      'send',
      '--signaling',
      `${server.url}/offer`,
      '--points',
      '200000',
      '--frames',
      '2',
      '--rate',
      '10',
      '--chunk-bytes',
      '1048576',
      '--json',
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(lastJsonLine(result.stdout).chunkBytes, 1_048_576);
  },
);

/**
 * Starts `serve` with V8 tracing incremental marking, and stressed to start it at every chance,
 * streams three frames, and counts the marking cycles started after the server was listening.
 */
async function markingStartsWhileStreaming(serveFlags: string[]): Promise<number> {
  const serve = await startServe(
    ['--trace-incremental-marking', '--stress-incremental-marking'],
    ['--log-level', 'warn', ...serveFlags],
  );
  try {
    const before = serve.output().split('[IncrementalMarking] Start (').length;
    const client = await connect({
      signalingUrl: `${serve.url}/offer`,
      rtc: { bindAddress: '127.0.0.1' },
    });
    for (let i = 0; i < 3; i++) {
      const sent = await client.send(new Float32Array(300_000).fill(i));
      assert.equal((await sent.receipt).ok, true);
    }
    await client.close();
    return serve.output().split('[IncrementalMarking] Start (').length - before;
  } finally {
    serve.child.kill('SIGTERM');
    await serve.exited;
  }
}

void test(
  'serve turns off incremental marking; --incremental-gc keeps it',
  { timeout: 60_000 },
  async (t) => {
    // Why serve turns it off: node-datachannel's 256 KiB message Buffers made V8 start a full GC
    // every ~32 MB received (see runServe). --stress-incremental-marking starts marking whenever
    // it may, so only the flag serve sets can keep the count at 0.
    const atomic = await markingStartsWhileStreaming([]);
    const incremental = await markingStartsWhileStreaming(['--incremental-gc']);
    t.diagnostic(
      `marking cycles started: ${atomic} by default, ${incremental} with --incremental-gc`,
    );
    assert.equal(atomic, 0);
    assert.ok(incremental > 0, 'with --incremental-gc V8 marks incrementally');
  },
);

/** Every frame the run planned has exactly one outcome (README, send's JSON fields). */
function assertCountsAddUp(summary: Record<string, unknown>): void {
  const n = (key: string): number => summary[key] as number;
  assert.equal(
    n('framesAcked') +
      n('framesRejected') +
      n('framesLost') +
      n('framesSkipped') +
      n('framesNotSent'),
    n('framesPlanned'),
    JSON.stringify(summary),
  );
  assert.equal(n('framesSent'), n('framesAcked') + n('framesRejected') + n('framesLost'));
}

/** A summary never prints NaN or Infinity, as text or JSON (JSON.stringify turns them into null). */
function assertAllFinite(output: string, what: string): void {
  assert.doesNotMatch(output, /NaN|Infinity|null/, `${what}:\n${output}`);
}

void test(
  'send --rate 0 --duration S streams unpaced for S seconds; the summary holds no NaN or Infinity',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const flags = ['--signaling', `${server.url}/offer`];
    const json = await run([
      'send',
      ...flags,
      '--points',
      '20000',
      '--rate',
      '0',
      '--duration',
      '2',
      '--json',
    ]);
    assert.equal(json.code, 0, json.stderr);
    assertAllFinite(json.stdout, 'JSON summary');
    const summary = lastJsonLine(json.stdout);
    assert.equal(summary.ok, true);
    // 240 KB frames on loopback: unpaced, two seconds hold far more than the 8 of the default rate.
    assert.ok((summary.framesPlanned as number) > 8, JSON.stringify(summary));
    assert.equal(summary.framesAcked, summary.framesPlanned);
    assert.ok((summary.seconds as number) >= 2, JSON.stringify(summary));
    assertCountsAddUp(summary);

    const text = await run(['send', ...flags, '--points', '1000', '--rate', '0', '--frames', '5']);
    assert.equal(text.code, 0, text.stderr);
    assertAllFinite(text.stdout, 'text summary');
    assert.match(text.stdout, /^OK: all 5 frames acknowledged intact/);
    assert.match(text.stdout, /% of a core/);
  },
);

void test(
  'a run that would send nothing is a usage error, never OK',
  { timeout: 60_000 },
  async () => {
    const to = ['send', '--signaling', 'http://127.0.0.1:9/offer'];
    for (const args of [
      ['--frames', '0'],
      ['--duration', '0'],
      ['--rate', '0', '--duration', '0'],
      ['--rate', '0.1', '--duration', '1'],
    ]) {
      const result = await run([...to, ...args, '--json']);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, /nothing to send/, args.join(' '));
      assert.doesNotMatch(result.stdout, /"ok":true|OK:/, args.join(' '));
    }
  },
);

/** `send` at 20 Hz of 1,000 points to a server that shuts down after 3 frames: its exit and output. */
async function sendUntilServerGone(
  t: TestContext,
  flags: string[],
): Promise<{ exit: number | null; stdout: string }> {
  const server = await startServer();
  let closed = false;
  t.after(() => (closed ? undefined : server.close()));
  const args = ['--signaling', `${server.url}/offer`, '--points', '1000', '--rate', '20', ...flags];
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'send', ...args, '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  for (let i = 0; i < 3; i++) await server.next('frame', { timeoutMs: 20_000 });
  closed = true;
  await server.close();
  return { exit: await exited, stdout };
}

void test(
  'send --no-reconnect with the server gone: every planned frame is counted, none as OK',
  { timeout: 60_000 },
  async (t) => {
    const { exit, stdout } = await sendUntilServerGone(t, ['--frames', '80', '--no-reconnect']);
    assert.equal(exit, 1);
    assertAllFinite(stdout, 'JSON summary');
    const summary = lastJsonLine(stdout);
    assert.equal(summary.ok, false);
    assert.equal(summary.framesPlanned, 80);
    // The server verified 3 frames; their receipts may or may not have left before it closed, so
    // they count as acknowledged or lost, never as unsent.
    assert.ok((summary.framesSent as number) >= 3, JSON.stringify(summary));
    assert.ok((summary.framesNotSent as number) > 0, JSON.stringify(summary));
    assertCountsAddUp(summary);
  },
);

void test(
  'send gives up reconnecting to a server that is gone: every planned frame is counted',
  { timeout: 60_000 },
  async (t) => {
    const { exit, stdout } = await sendUntilServerGone(t, [
      '--frames',
      '200',
      '--max-reconnects',
      '1',
    ]);
    assert.equal(exit, 3);
    const summary = lastJsonLine(stdout);
    assert.equal(summary.reconnects, 1);
    assert.match(summary.reason as string, /gave up after 1 reconnect attempts/);
    assertCountsAddUp(summary);
    assertAllFinite(stdout, 'JSON summary');
  },
);

void test(
  'send takes the base URL that serve logs; another 404 says which URL to use',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    for (const base of [server.url, `${server.url}/`]) {
      const result = await run([
        'send',
        '--signaling',
        base,
        '--points',
        '1000',
        '--frames',
        '2',
        '--json',
      ]);
      assert.equal(result.code, 0, `${base}: ${result.stderr}`);
      assert.equal(lastJsonLine(result.stdout).framesAcked, 2);
    }
    const wrong = await run(['send', '--signaling', `${server.url}/signal`, '--frames', '1']);
    assert.equal(wrong.code, 5, wrong.stderr);
    assert.ok(
      wrong.stderr.includes(`pointstream serve takes offers at ${server.url}/offer`),
      wrong.stderr,
    );
  },
);

void test(
  'a usage error prints the error and one line pointing at --help, not the whole help',
  { timeout: 60_000 },
  async () => {
    const misspelt = await run(['send', '--signalling', 'http://127.0.0.1:9/offer']);
    assert.equal(misspelt.code, 2);
    assert.match(misspelt.stderr, /unknown option '--signalling'/);
    assert.match(misspelt.stderr, /Did you mean --signaling\?/);
    for (const result of [
      misspelt,
      await run(['send', '--signaling', 'http://127.0.0.1:9/offer', '--rate', 'fast']),
      await run(['send', '--signaling', 'http://127.0.0.1:9/offer', '--frames', '0']),
      await run(['send']),
    ]) {
      assert.equal(result.code, 2, result.stderr);
      const lines = result.stderr.trim().split('\n');
      assert.ok(lines.length <= 3, result.stderr);
      assert.equal(lines.at(-1), "Run 'pointstream send --help' for the options.");
    }
    const noCommand = await run(['frobnicate']);
    assert.equal(
      noCommand.stderr.trim().split('\n').at(-1),
      "Run 'pointstream --help' for the commands.",
    );
  },
);

void test(
  'send --from says on stderr and in the summary which input columns it dropped or converted',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const fixtures = fileURLToPath(new URL('./fixtures/npy/', import.meta.url));
    const send = (file: string, json: boolean): ReturnType<typeof run> =>
      run([
        'send',
        '--signaling',
        server.url,
        '--from',
        join(fixtures, file),
        '--frames',
        '1',
        ...(json ? ['--json'] : []),
      ]);
    const fourColumns = await send('xyzi_f4_4cols.npy', true);
    assert.equal(fourColumns.code, 0, fourColumns.stderr);
    assert.match(fourColumns.stderr, /xyzi_f4_4cols\.npy: only x, y, z are sent: 1 more value/);
    assert.equal(lastJsonLine(fourColumns.stdout).inputDroppedColumns, 1);
    assert.equal(lastJsonLine(fourColumns.stdout).inputConvertedFrom, undefined);
    const float64 = await send('xyz_f8.npy', false);
    assert.equal(float64.code, 0, float64.stderr);
    assert.match(float64.stderr, /float64 coordinates converted to float32/);
    assert.match(float64.stdout, /\n {2}input {6}float64 coordinates converted to float32/);
    const plain = await send('xyz_f4_3pts.npy', true);
    assert.doesNotMatch(plain.stderr, /input-converted/);
    assert.equal(lastJsonLine(plain.stdout).inputDroppedColumns, 0);
    assert.deepEqual(lastJsonLine(plain.stdout).fields, []);
    // A file with fields: the summary lists what was sent, names and types in wire order.
    const pcd = await run([
      'send',
      '--signaling',
      server.url,
      '--from',
      join(FIELD_FIXTURES, 'organised_nan.pcd'),
      '--drop-non-finite',
      '--frames',
      '1',
      '--json',
    ]);
    assert.equal(pcd.code, 0, pcd.stderr);
    assert.deepEqual(lastJsonLine(pcd.stdout).fields, [
      { name: 'intensity', type: 'f32', maxError: 0 },
      { name: 'ring', type: 'u16', maxError: 0 },
    ]);
    assert.equal(lastJsonLine(pcd.stdout).nonFinitePointsDropped, 3);
    const renamed = await run([
      'send',
      '--signaling',
      server.url,
      '--from',
      join(FIELD_FIXTURES, 'cloud_ascii.ply'),
      '--frames',
      '1',
    ]);
    assert.equal(renamed.code, 0, renamed.stderr);
    assert.match(renamed.stderr, /fields renamed: normal-x -> normal_x; not sent: neighbours/);
    assert.match(renamed.stdout, /\n {2}fields {5}intensity \(<f4\), ring \(<u2\), time \(<f8\)/);
  },
);
