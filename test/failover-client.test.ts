/**
 * Failover as `pointstream send` lives it, over real WebRTC (node-datachannel on 127.0.0.1):
 * a session moved away by its server (`Session.moveAway()`, what a draining node does) reconnects
 * at once and loses nothing; a `serve` process killed mid-stream is noticed by the liveness check
 * (`PS_ERR_PEER_SILENT`) well before the 10 s receipt timeout.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { test } from 'node:test';
import type { ReceivedFrame } from '../src/index.js';
import { CLI, LOOPBACK, captureSessions, lastJsonLine, startServer, waitFor } from './helpers.js';

/** A CLI child process, its output collected as it comes, each line stamped with its arrival. */
interface Child {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly lines: { at: number; text: string }[];
  readonly exited: Promise<number | null>;
}

function runChild(args: string[]): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  const lines: Child['lines'] = [];
  const collect = (data: Buffer): void => {
    for (const text of data.toString().split('\n'))
      if (text.trim() !== '') lines.push({ at: performance.now(), text });
  };
  child.stdout?.on('data', (data: Buffer) => {
    stdout += data.toString();
    collect(data);
  });
  child.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, stdout: () => stdout, lines, exited };
}

/** The first JSON line whose `event` is `event` (and that `match` accepts), with its arrival time. */
function eventLine(
  from: Child,
  event: string,
  match: (line: Record<string, unknown>) => boolean = () => true,
): { at: number; line: Record<string, unknown> } | undefined {
  for (const { at, text } of from.lines) {
    if (!text.startsWith('{')) continue;
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (line.event === event && match(line)) return { at, line };
  }
  return undefined;
}

function kill(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

for (const { rate, points, label, moves } of [
  // Two moves with --max-reconnects 1: the limit counts one outage's attempts, not the run's.
  { rate: '4', points: '100000', label: 'paced at 4 Hz, moved twice', moves: 2 },
  { rate: '0', points: '200000', label: 'unpaced, frames always in flight', moves: 1 },
])
  void test(
    `a session moved away mid-stream (${label}): send reconnects at once, nothing lost or skipped, numbering goes on`,
    { timeout: 120_000 },
    async (t) => {
      // moveAway() on one of them is what a draining node does.
      const sessions = captureSessions(t);
      const server = await startServer();
      t.after(() => server.close());
      const frames: { seq: number; session: string; at: number }[] = [];
      server.on('frame', (frame: ReceivedFrame) =>
        frames.push({ seq: frame.seq, session: frame.sessionId, at: performance.now() }),
      );
      const total = 40;
      const send = runChild([
        'send',
        '--signaling',
        `${server.url}/offer`,
        '--rtc-bind',
        LOOPBACK,
        '--stream',
        'moving',
        '--frames',
        String(total),
        '--rate',
        rate,
        '--points',
        points,
        '--max-reconnects',
        '1',
        '--json',
      ]);
      t.after(() => kill(send.child));
      await waitFor(() => frames.length >= 8, 30_000, '8 frames before the move');
      const first = sessions[0];
      assert.ok(first !== undefined);
      const movedAt = performance.now();
      await first.moveAway();
      const movedInMs = performance.now() - movedAt;
      for (let move = 1; move < moves; move++) {
        const before = frames.length;
        await waitFor(
          () => frames.length >= before + 4,
          30_000,
          `4 frames before move ${move + 1}`,
        );
        await sessions[move]?.moveAway();
      }
      assert.equal(await send.exited, 0, send.lines.map((l) => l.text).join('\n'));
      const summary = lastJsonLine(send.stdout());
      assert.equal(summary.ok, true, JSON.stringify(summary));
      assert.equal(summary.moves, moves);
      assert.equal(summary.reconnects, moves);
      assert.equal(summary.framesAcked, total);
      assert.equal(summary.framesLost, 0);
      assert.equal(summary.framesSkipped, 0);
      assert.equal((summary.sessions as string[]).length, moves + 1);
      // Every frame once, numbered 0..total-1 across the two sessions.
      assert.deepEqual(
        frames.map((f) => f.seq).sort((a, b) => a - b),
        Array.from({ length: total }, (_, i) => i),
      );
      const switchAt = frames.findIndex((f) => f.session !== frames[0]?.session);
      assert.ok(switchAt > 0, 'frames came on a second session');
      const gapMs = (frames[switchAt]?.at ?? 0) - (frames[switchAt - 1]?.at ?? 0);
      const afterClosing = frames.filter((f) => f.session === frames[0]?.session && f.at > movedAt);
      t.diagnostic(
        `move (${label}): moveAway() resolved in ${movedInMs.toFixed(0)} ms; ${afterClosing.length} frames of the old session completed after the closing; gap between the last frame on the old session and the first on the new ${gapMs.toFixed(0)} ms`,
      );
      assert.ok(gapMs < 1000, `gap ${gapMs.toFixed(0)} ms`);
      assert.ok(movedInMs < 5000, `the client closed itself (${movedInMs.toFixed(0)} ms)`);
    },
  );

void test(
  'serve killed mid-stream: send notices through the liveness check (PS_ERR_PEER_SILENT) in seconds',
  { timeout: 120_000 },
  async (t) => {
    const serve = runChild([
      'serve',
      '--host',
      LOOPBACK,
      '--port',
      '0',
      '--rtc-bind',
      LOOPBACK,
      '--log-format',
      'json',
    ]);
    t.after(() => kill(serve.child));
    await waitFor(() => eventLine(serve, 'listening') !== undefined, 30_000, 'serve listening');
    const url = eventLine(serve, 'listening')?.line.url as string;
    const send = runChild([
      'send',
      '--signaling',
      `${url}/offer`,
      '--rtc-bind',
      LOOPBACK,
      '--frames',
      '400',
      '--rate',
      '4',
      '--points',
      '10000',
      '--max-reconnects',
      '1',
      '--log-format',
      'json',
      '--json',
    ]);
    t.after(() => kill(send.child));
    const verified = (): number =>
      serve.lines.filter((l) => l.text.includes('"frame verified"')).length;
    await waitFor(() => verified() >= 6, 30_000, 'frames before the kill');
    const killedAt = performance.now();
    serve.child.kill('SIGKILL');
    await waitFor(
      () => eventLine(send, 'reconnecting') !== undefined,
      15_000,
      () => `send to notice\n${send.lines.map((l) => l.text).join('\n')}`,
    );
    const noticed = eventLine(send, 'reconnecting');
    const detectionMs = (noticed?.at ?? 0) - killedAt;
    t.diagnostic(
      `kill -> send noticed (${String(noticed?.line.after)}): ${detectionMs.toFixed(0)} ms (liveness timeout 2500 ms; receipt timeout 10000 ms)`,
    );
    assert.equal(noticed?.line.after, 'PS_ERR_PEER_SILENT');
    assert.equal(noticed?.line.delayMs, 0, 'the first attempt goes at once');
    assert.ok(detectionMs < 5000, `noticed after ${detectionMs.toFixed(0)} ms`);
    // Nothing to reconnect to: send gives up after its one attempt and says why.
    await send.exited;
    const summary = lastJsonLine(send.stdout());
    assert.equal(summary.ok, false);
    assert.equal(summary.peerSilent, 1);
    assert.equal(
      (summary.framesAcked as number) +
        (summary.framesRejected as number) +
        (summary.framesLost as number) +
        (summary.framesSkipped as number) +
        (summary.framesNotSent as number),
      summary.framesPlanned,
    );
  },
);

void test(
  'an offer refused 503 (every node full) still ends send with exit code 5',
  { timeout: 60_000 },
  async (t) => {
    const { createServer } = await import('node:http');
    let offers = 0;
    const full = createServer((request, response) => {
      offers++;
      request.resume();
      response.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '1' });
      response.end(
        JSON.stringify({ status: 503, code: 'PS_ERR_SERVER_FULL', title: 'every node is full' }),
      );
    });
    await new Promise<void>((resolve) => full.listen(0, LOOPBACK, resolve));
    t.after(() => full.close());
    const { port } = full.address() as { port: number };
    const send = runChild([
      'send',
      '--signaling',
      `http://${LOOPBACK}:${port}/offer`,
      '--frames',
      '4',
      '--json',
    ]);
    t.after(() => kill(send.child));
    assert.equal(await send.exited, 5);
    assert.equal(offers, 1, 'the first connection is not retried');
    assert.equal(lastJsonLine(send.stdout()).errorCode, 'PS_ERR_SIGNALING_REJECTED');
  },
);
