import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCodes, connect, createServer } from '../src/index.js';
import { LOOPBACK, runCli, startServer } from './helpers.js';

const rtc = { bindAddress: LOOPBACK };
const TOKEN_A = 'token-a-0123456789abcdef';
const TOKEN_B = 'token-b-0123456789abcdef';

/** A throwaway self-signed certificate for 127.0.0.1, made with openssl. */
function makeCertificate(dir: string): {
  cert: Buffer;
  key: Buffer;
  certPath: string;
  keyPath: string;
} {
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  return { cert: readFileSync(certPath), key: readFileSync(keyPath), certPath, keyPath };
}

void test(
  'HTTPS signaling: a client trusting the CA streams; one that does not gets PS_ERR_SIGNALING_TLS',
  { timeout: 60_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pointstream-tls-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const { cert, key, certPath } = makeCertificate(dir);
    const server = await startServer({ tls: { cert, key } });
    t.after(() => server.close());
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);

    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc, ca: cert });
    t.after(() => client.close());
    assert.equal((await (await client.send(new Float32Array(3000))).receipt).ok, true);

    await assert.rejects(connect({ signalingUrl: `${server.url}/offer`, rtc }), {
      code: ErrorCodes.SIGNALING_TLS,
    });
    const untrusted = await runCli([
      'send',
      '--signaling',
      `${server.url}/offer`,
      '--frames',
      '1',
      '--points',
      '10',
    ]);
    assert.equal(untrusted.code, 6, untrusted.stderr);
    assert.match(untrusted.stderr, /PS_ERR_SIGNALING_TLS/);
    const trusted = await runCli([
      'send',
      '--signaling',
      `${server.url}/offer`,
      '--frames',
      '2',
      '--rate',
      '10',
      '--points',
      '1000',
      '--ca',
      certPath,
      '--json',
    ]);
    assert.equal(trusted.code, 0, trusted.stderr);
  },
);

void test(
  'bearer tokens: 401 with WWW-Authenticate, sessions bound to their token, /healthz open',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({ tokens: [TOKEN_A, TOKEN_B] });
    t.after(() => server.close());
    const offer = (headers: Record<string, string>): Promise<Response> =>
      fetch(`${server.url}/offer`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', ...headers },
        body: 'v=0\r\n',
      });

    const missing = await offer({});
    assert.equal(missing.status, 401);
    assert.equal(missing.headers.get('www-authenticate'), 'Bearer realm="pointstream"');
    assert.equal(
      ((await missing.json()) as { error: { code: string } }).error.code,
      ErrorCodes.UNAUTHORIZED,
    );
    const wrong = await offer({ authorization: 'Bearer not-the-token-0000000' });
    assert.equal(wrong.status, 401);
    assert.match(wrong.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    assert.equal((await offer({ authorization: `Basic ${TOKEN_A}` })).status, 401);
    assert.equal((await fetch(`${server.url}/stats`)).status, 401);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);

    await assert.rejects(connect({ signalingUrl: `${server.url}/offer`, rtc }), {
      code: ErrorCodes.UNAUTHORIZED,
    });
    const client = await connect({ signalingUrl: `${server.url}/offer`, rtc, token: TOKEN_A });
    t.after(() => client.close());
    assert.equal((await (await client.send(new Float32Array(300))).receipt).ok, true);
    const id = client.sessionId as string;

    const statsB = (await (
      await fetch(`${server.url}/stats`, { headers: { authorization: `Bearer ${TOKEN_B}` } })
    ).json()) as { sessions: unknown[] };
    assert.equal(statsB.sessions.length, 0, "token B does not see token A's session");
    const statsA = (await (
      await fetch(`${server.url}/stats`, { headers: { authorization: `Bearer ${TOKEN_A}` } })
    ).json()) as { sessions: { id: string }[] };
    assert.deepEqual(
      statsA.sessions.map((s) => s.id),
      [id],
    );
    const deleteB = await fetch(`${server.url}/sessions/${id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TOKEN_B}` },
    });
    assert.equal(deleteB.status, 404, "token B cannot end token A's session");
    assert.equal(server.stats().sessions.length, 1);
    const deleteA = await fetch(`${server.url}/sessions/${id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TOKEN_A}` },
    });
    assert.equal(deleteA.status, 200);

    const cli = await runCli([
      'send',
      '--signaling',
      `${server.url}/offer`,
      '--frames',
      '1',
      '--points',
      '10',
    ]);
    assert.equal(cli.code, 4, cli.stderr);
    assert.match(cli.stderr, /PS_ERR_UNAUTHORIZED/);
    assert.doesNotMatch(cli.stderr, new RegExp(TOKEN_A));
    const withEnv = await runCli(
      [
        'send',
        '--signaling',
        `${server.url}/offer`,
        '--frames',
        '2',
        '--rate',
        '10',
        '--points',
        '10',
      ],
      { POINTSTREAM_TOKEN: TOKEN_B },
    );
    assert.equal(withEnv.code, 0, withEnv.stderr);
  },
);

void test('serve --token-file and bad security flags', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pointstream-flags-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'short'), 'short\n');
  writeFileSync(join(dir, 'empty'), '# no tokens here\n\n');
  const cases: [string[], RegExp][] = [
    [
      [
        'serve',
        '--port',
        '0',
        '--tls-cert',
        join(dir, 'missing.pem'),
        '--tls-key',
        join(dir, 'missing.pem'),
      ],
      /--tls-cert: cannot read .*ENOENT/,
    ],
    [
      ['serve', '--port', '0', '--tls-cert', join(dir, 'short')],
      /--tls-cert and --tls-key go together/,
    ],
    [
      ['serve', '--port', '0', '--token-file', join(dir, 'nope')],
      /--token-file: cannot read .*ENOENT/,
    ],
    [['serve', '--port', '0', '--token-file', join(dir, 'empty')], /holds no token/],
    [
      ['serve', '--host', '127.0.0.1', '--port', '0', '--token-file', join(dir, 'short')],
      /at least 16 characters/,
    ],
  ];
  for (const [args, message] of cases) {
    const result = await runCli(args);
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
});

void test(
  'CORS: only allow-listed origins get CORS headers, and preflight is answered',
  { timeout: 30_000 },
  async (t) => {
    const open = await startServer({ corsOrigins: ['https://viewer.example'] });
    t.after(() => open.close());
    const preflight = await fetch(`${open.url}/offer`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://viewer.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://viewer.example');
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /Authorization/i);
    const evil = await fetch(`${open.url}/stats`, { headers: { origin: 'https://evil.example' } });
    assert.equal(evil.headers.get('access-control-allow-origin'), null);

    const closed = await startServer();
    t.after(() => closed.close());
    const none = await fetch(`${closed.url}/stats`, {
      headers: { origin: 'https://viewer.example' },
    });
    assert.equal(none.headers.get('access-control-allow-origin'), null);
  },
);

void test(
  'per-client limits answer 429 with Retry-After; the server-wide memory cap rejects frames it cannot hold',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({
      limits: { maxSessionsPerClient: 1, maxOffersPerMinute: 2, maxTotalReassemblyBytes: 200_000 },
    });
    t.after(() => server.close());
    const first = await connect({ signalingUrl: `${server.url}/offer`, rtc });
    t.after(() => first.close());
    await assert.rejects(
      connect({ signalingUrl: `${server.url}/offer`, rtc }),
      (error: Error & { code?: string; details?: Record<string, unknown> }) => {
        assert.equal(error.code, ErrorCodes.SIGNALING_REJECTED);
        assert.equal(error.details?.status, 429);
        assert.equal(error.details?.serverCode, ErrorCodes.TOO_MANY_REQUESTS);
        assert.ok(Number(error.details?.retryAfter) >= 1);
        return true;
      },
    );

    // 100,000 points = 1.2 MB does not fit in 200 kB of reassembly memory; 10,000 points do.
    const big = await (await first.send(new Float32Array(300_000))).receipt;
    assert.equal(big.ok ? 'ok' : big.code, ErrorCodes.SERVER_MEMORY);
    assert.equal((await (await first.send(new Float32Array(30_000))).receipt).ok, true);
    assert.equal(server.stats().reassemblyBytes, 0);

    await first.close();
    await assert.rejects(
      connect({ signalingUrl: `${server.url}/offer`, rtc }),
      (error: Error & { details?: Record<string, unknown> }) => {
        assert.equal(
          error.details?.status,
          429,
          'the third offer within a minute is over the rate',
        );
        return true;
      },
    );
  },
);

void test(
  'send reconnects after a server restart, continues numbering, and accounts for every frame',
  { timeout: 120_000 },
  async (t) => {
    let server = await startServer();
    const port = Number(new URL(server.url).port);
    t.after(() => server.close());
    const run = runCli([
      'send',
      '--signaling',
      `${server.url}/offer`,
      '--points',
      '2000',
      '--rate',
      '10',
      '--frames',
      '60',
      '--json',
      '--log-level',
      'warn',
    ]);
    await server.next('frame', { timeoutMs: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await server.close();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    server = await createServer({ host: LOOPBACK, port, rtc });
    const result = await run;
    const summary = JSON.parse(result.stdout.trim().split('\n').pop() as string) as {
      ok: boolean;
      reconnects: number;
      sessions: string[];
      framesPlanned: number;
      framesAcked: number;
      framesRejected: number;
      framesLost: number;
      framesSkipped: number;
    };
    assert.ok(summary.reconnects >= 1, result.stderr);
    assert.equal(summary.sessions.length, 2);
    assert.ok(server.stats().totals.framesReceived > 0, 'the restarted server received frames');
    assert.equal(summary.ok, false, 'frames were skipped during the outage');
    assert.equal(result.code, 1);
    assert.ok(summary.framesSkipped > 0);
    // Nothing disappears silently: every planned frame is acked, rejected, lost or skipped.
    assert.equal(
      summary.framesAcked + summary.framesRejected + summary.framesLost + summary.framesSkipped,
      summary.framesPlanned,
    );
  },
);
