import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { ErrorCodes, connect } from '../src/index.js';
import type { ServerMessage } from '../src/wire/control.js';
import type { ManifestEntry } from '../src/server/recorder.js';
import {
  LOOPBACK,
  RawPeer,
  findPython,
  lastJsonLine,
  runCli,
  startServer,
  waitFor,
} from './helpers.js';

const rtc = { bindAddress: LOOPBACK };
const TOKEN_A = 'token-a-0123456789abcdef';
const TOKEN_B = 'token-b-0123456789abcdef';

function tempDir(t: TestContext, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `pointstream-${name}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function postJson(
  url: string,
  body: unknown,
  token?: string,
): Promise<{ status: number; code: string | undefined }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as { error?: { code?: string } };
  return { status: response.status, code: json.error?.code };
}

const OFFER = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';

void test(
  'a reconnecting sender keeps its stream: the new session replaces the old one, /stats groups them',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const first = await connect({ signalingUrl: `${server.url}/offer`, rtc, stream: 'robot-1' });
    t.after(() => first.close());
    assert.equal(first.stream, 'robot-1');
    assert.equal((await (await first.send(new Float32Array(300))).receipt).ok, true);
    const firstEnded = new Promise<{ code: string }>((resolve) => first.on('closed', resolve));

    // The same name again while the first session is still live (a sender whose old connection
    // has not timed out yet): accepted, and the old session is closed with its own code.
    const second = await connect({ signalingUrl: `${server.url}/offer`, rtc, stream: 'robot-1' });
    t.after(() => second.close());
    assert.equal((await firstEnded).code, ErrorCodes.STREAM_REPLACED);
    assert.notEqual(second.sessionId, first.sessionId);
    assert.equal(second.stream, 'robot-1');
    assert.equal((await (await second.send(new Float32Array(300))).receipt).ok, true);

    await waitFor(() => server.stats().sessions.length === 1, 10_000, 'the old session gone');
    const stats = server.stats();
    assert.deepEqual(
      stats.sessions.map((s) => [s.id, s.stream]),
      [[second.sessionId, 'robot-1']],
    );
    const stream = stats.streams.find((s) => s.name === 'robot-1');
    assert.ok(stream, JSON.stringify(stats.streams));
    assert.equal(stream.state, 'live');
    assert.equal(stream.session, second.sessionId);
    assert.equal(stream.sessionsOpened, 2);
    assert.equal(stream.framesReceived, 2);

    // A client that names no stream gets one of its own, named after its session.
    const unnamed = await connect({ signalingUrl: `${server.url}/offer`, rtc });
    t.after(() => unnamed.close());
    assert.equal(unnamed.stream, unnamed.sessionId);

    // After the last session ends the stream waits for its sender (streamHoldMs), then goes.
    await second.close();
    await waitFor(
      () => server.stats().streams.find((s) => s.name === 'robot-1')?.state === 'waiting',
      10_000,
      'the stream waiting',
    );
  },
);

void test(
  'plain-form clients name a stream with ?stream= (application/sdp) or the JSON body field',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const sdp = new RawPeer('');
    t.after(() => sdp.close());
    await sdp.connect(`${server.url}/offer?stream=aiortc.cam_0`, 'sdp');
    const hello = sdp.messages.find(
      (m): m is Extract<ServerMessage, { type: 'hello' }> => m.type === 'hello',
    );
    assert.equal(hello?.stream, 'aiortc.cam_0');

    const json = new RawPeer('');
    t.after(() => json.close());
    await json.connect(`${server.url}/offer`, 'json', { stream: 'browser-7' });
    assert.equal((json.status.json as { stream: string }).stream, 'browser-7');
    assert.ok(server.stats().streams.some((s) => s.name === 'browser-7' && s.state === 'live'));
  },
);

void test(
  'invalid stream names are refused with 400 PS_ERR_STREAM_INVALID, in every form',
  { timeout: 30_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const bad = ['', 'has space', 'a/b', '..', 'x'.repeat(65), 'ünï', 7];
    for (const stream of bad) {
      assert.deepEqual(
        await postJson(`${server.url}/offer`, { sdp: OFFER, type: 'offer', stream }),
        { status: 400, code: ErrorCodes.STREAM_INVALID },
        JSON.stringify(stream),
      );
    }
    for (const query of ['stream=a%2Fb', 'stream=', 'stream=a&stream=b']) {
      const response = await fetch(`${server.url}/offer?${query}`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp' },
        body: OFFER,
      });
      assert.equal(response.status, 400, query);
      assert.equal(
        ((await response.json()) as { error: { code: string } }).error.code,
        ErrorCodes.STREAM_INVALID,
      );
    }
    // The query and the body disagree.
    assert.deepEqual(
      await postJson(`${server.url}/offer?stream=a`, { sdp: OFFER, type: 'offer', stream: 'b' }),
      { status: 400, code: ErrorCodes.STREAM_INVALID },
    );
    // The library refuses it before any request.
    await assert.rejects(
      connect({ signalingUrl: `${server.url}/offer`, rtc, stream: 'has space' }),
      { name: 'TypeError', code: ErrorCodes.INVALID_OPTION },
    );
    assert.equal(server.stats().totals.sessionsOpened, 0);
  },
);

void test(
  'with auth on a stream belongs to its token: another token gets 403 PS_ERR_STREAM_FORBIDDEN and never sees it',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({ tokens: [TOKEN_A, TOKEN_B] });
    t.after(() => server.close());
    const a = await connect({
      signalingUrl: `${server.url}/offer`,
      rtc,
      token: TOKEN_A,
      stream: 'lidar-front',
    });
    t.after(() => a.close());
    await assert.rejects(
      connect({ signalingUrl: `${server.url}/offer`, rtc, token: TOKEN_B, stream: 'lidar-front' }),
      (error: { code: string; details: { status: number; serverCode: string } }) =>
        error.code === ErrorCodes.SIGNALING_REJECTED &&
        error.details.status === 403 &&
        error.details.serverCode === ErrorCodes.STREAM_FORBIDDEN,
    );
    assert.deepEqual(
      await postJson(
        `${server.url}/offer`,
        { sdp: OFFER, type: 'offer', stream: 'lidar-front' },
        TOKEN_B,
      ),
      { status: 403, code: ErrorCodes.STREAM_FORBIDDEN },
    );
    // a's session was not touched, and b's /stats does not list a's stream.
    assert.equal(a.closed, false);
    const statsOf = async (token: string): Promise<{ streams: { name: string }[] }> =>
      (await (
        await fetch(`${server.url}/stats`, { headers: { authorization: `Bearer ${token}` } })
      ).json()) as { streams: { name: string }[] };
    assert.deepEqual(
      (await statsOf(TOKEN_A)).streams.map((s) => s.name),
      ['lidar-front'],
    );
    assert.deepEqual((await statsOf(TOKEN_B)).streams, []);
    // The same token reconnecting keeps the name.
    const again = await connect({
      signalingUrl: `${server.url}/offer`,
      rtc,
      token: TOKEN_A,
      stream: 'lidar-front',
    });
    t.after(() => again.close());
    assert.equal(again.stream, 'lidar-front');
    // /healthz says, without a token, that auth is on (the viewer page shows its token field).
    assert.deepEqual(
      ((await (await fetch(`${server.url}/healthz`)).json()) as { auth: boolean }).auth,
      true,
    );
  },
);

void test(
  'recordings land under the stream, one time-sortable folder per session; the manifest says stream, session, encoding and precision',
  { timeout: 60_000 },
  async (t) => {
    const recordings = tempDir(t, 'rec');
    const server = await startServer({ record: { dir: recordings } });
    t.after(() => server.close());
    const sessions: string[] = [];
    const paths: string[] = [];
    for (const encoding of ['raw', 'q16'] as const) {
      const client = await connect({
        signalingUrl: `${server.url}/offer`,
        rtc,
        stream: 'lidar',
        encoding,
      });
      sessions.push(client.sessionId as string);
      paths.push(client.recording as string);
      const points = Float32Array.from({ length: 3000 }, (_, i) => i * 0.01);
      assert.equal((await (await client.send(points)).receipt).ok, true);
      await client.close();
      // Folders are named to the millisecond: keep the two sessions' times apart.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await waitFor(
      () => server.stats().recording?.framesRecorded === 2,
      10_000,
      'two recorded frames',
    );
    assert.deepEqual(readdirSync(recordings), ['lidar']);
    const folders = readdirSync(join(recordings, 'lidar')).sort();
    assert.equal(folders.length, 2);
    // Sorted by name is sorted by time: the first session first.
    folders.forEach((folder, i) => {
      assert.match(folder, /^\d{8}T\d{6}\.\d{3}Z_/);
      assert.ok(folder.endsWith(`_${sessions[i]}`), `${folder} ${sessions[i]}`);
      assert.equal(paths[i], join(recordings, 'lidar', folder));
    });
    const manifests = folders.map(
      (folder) =>
        JSON.parse(
          readFileSync(join(recordings, 'lidar', folder, 'manifest.jsonl'), 'utf8').trim(),
        ) as ManifestEntry,
    );
    assert.deepEqual(
      manifests.map((m) => [m.stream, m.session, m.encoding]),
      [
        ['lidar', sessions[0], 'raw'],
        ['lidar', sessions[1], 'q16'],
      ],
    );
    assert.equal(manifests[0]?.precision, 0);
    // q16 over an extent of 29.99 m: half a step of 29.99 / 65535.
    assert.ok(Math.abs((manifests[1]?.precision ?? 0) - 29.99 / 65535 / 2) < 1e-6);
    const py = findPython('numpy');
    const shapes = execFileSync(
      py,
      [
        '-c',
        'import sys, numpy as np\nfor f in sys.argv[1:]: a = np.load(f); print(a.dtype.str, a.shape)',
        ...folders.map((f) => join(recordings, 'lidar', f, '000000000000.npy')),
      ],
      { encoding: 'utf8' },
    );
    assert.deepEqual(shapes.trim().split('\n'), ['<f4 (1000, 3)', '<f4 (1000, 3)']);
  },
);

void test(
  'send --stream: the summary names stream, session and where the server recorded; a bad name exits 2',
  { timeout: 60_000 },
  async (t) => {
    const recordings = tempDir(t, 'rec');
    const server = await startServer({ record: { dir: recordings } });
    t.after(() => server.close());
    const args = ['send', '--signaling', `${server.url}/offer`, '--rtc-bind', LOOPBACK];
    const json = await runCli([
      ...args,
      '--stream',
      'dock-3',
      '--frames',
      '2',
      '--points',
      '100',
      '--rate',
      '20',
      '--json',
    ]);
    assert.equal(json.code, 0, json.stderr);
    const summary = lastJsonLine(json.stdout);
    assert.equal(summary.stream, 'dock-3');
    assert.equal(typeof summary.session, 'string');
    assert.equal(
      summary.recording,
      join(recordings, 'dock-3', readdirSync(join(recordings, 'dock-3'))[0] as string),
    );
    assert.ok(String(summary.recording).endsWith(`_${String(summary.session)}`));

    // Text summary; the default name is <host>-<pid>, the same for the whole process.
    const text = await runCli([...args, '--frames', '1', '--points', '100']);
    assert.equal(text.code, 0, text.stderr);
    const line = /^ {2}stream {5}(\S+), session (\S+), recorded by the server in (.+)$/m.exec(
      text.stdout,
    );
    assert.ok(line, text.stdout);
    assert.match(line[1] as string, /^[A-Za-z0-9._-]+-\d+$/);
    assert.equal(
      line[3],
      join(
        recordings,
        line[1] as string,
        readdirSync(join(recordings, line[1] as string))[0] as string,
      ),
    );

    const bad = await runCli([...args, '--stream', 'no/slashes', '--frames', '1']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--stream/);
    assert.equal(server.stats().totals.sessionsOpened, 2);
  },
);

void test(
  'send reconnects into the same stream: one stream, two sessions, every frame counted under it',
  { timeout: 90_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const run = runCli([
      'send',
      '--signaling',
      `${server.url}/offer`,
      '--rtc-bind',
      LOOPBACK,
      '--stream',
      'cli-robot',
      '--frames',
      '30',
      '--rate',
      '10',
      '--points',
      '1000',
      '--json',
    ]);
    await waitFor(
      () => server.stats().streams.some((s) => s.name === 'cli-robot' && s.framesReceived >= 3),
      30_000,
      'frames of the stream',
    );
    // End the session under the sender, as a server-side timeout or restart of it would.
    const first = server.stats().streams.find((s) => s.name === 'cli-robot')?.session as string;
    assert.equal(
      (await fetch(`${server.url}/sessions/${first}`, { method: 'DELETE' })).status,
      200,
    );
    const result = await run;
    const summary = lastJsonLine(result.stdout);
    assert.ok((summary.reconnects as number) >= 1, result.stderr);
    assert.equal(summary.stream, 'cli-robot');
    const sessions = summary.sessions as string[];
    assert.equal(sessions[0], first);
    assert.ok(sessions.length >= 2);
    const stream = server.stats().streams.find((s) => s.name === 'cli-robot');
    assert.equal(stream?.sessionsOpened, sessions.length);
    assert.equal(stream?.framesReceived, summary.framesAcked);
    assert.equal(server.stats().streams.length, 1);
  },
);
