// Issue 14, items 3 and 9: the recorder's queue counts what it holds, and shutdown ends by its
// deadline whatever the disk does. A FIFO with no reader stands in for a hung disk: opening it for
// writing blocks a libuv worker thread forever, as a write to a dead NFS server does.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FrameRecorder, frameFileName, sessionFolder } from '../src/server/recorder.js';
import type { ReceivedFrame } from '../src/server/types.js';
import { silentLogger } from '../src/util/logger.js';
import { encodeNpyHeader } from '../src/wire/npy.js';
import { CLI, RawPeer } from './helpers.js';
import { NO_FIELDS } from '../src/wire/fields.js';

const MiB = 1024 * 1024;

/** Makes `<dir>/.<seq>.npy.partial` a FIFO nobody reads: writing frame `seq` there hangs. */
function hangWritesOf(sessionDir: string, seq: number): string {
  mkdirSync(sessionDir, { recursive: true });
  const fifo = join(sessionDir, `.${frameFileName(seq)}.partial`);
  execFileSync('mkfifo', [fifo]);
  return fifo;
}

/** Unblocks a writer stuck opening `fifo`: it gets a reader, which leaves at once (EPIPE). */
function unblock(fifo: string): void {
  try {
    closeSync(openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK));
  } catch {
    // gone already
  }
}

/** A decoded qrice frame as the server hands it over: 1 MB on the wire, 12 MB of points. */
function encodedFrame(seq: number): ReceivedFrame {
  const pointCount = 1_000_000;
  return {
    sessionId: 'session',
    stream: 'stream',
    seq,
    pointCount,
    points: new Float32Array(pointCount * 3),
    form: 'chunked',
    encoding: 'qrice',
    npy: undefined,
    encoded: new Uint8Array(MiB),
    fields: NO_FIELDS,
    fieldTable: undefined,
    payload: undefined,
    byteLength: MiB,
    captureTime: undefined,
    receivedAt: Date.now(),
    crc32: 0,
    assemblyMs: 0,
    retain: () => () => undefined,
  };
}

void test(
  'item 3: with a hung disk the recorder queue holds at most maxQueuedBytes of memory, decoded points included',
  { timeout: 60_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ps-rec-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const maxQueuedBytes = 64 * MiB;
    const recorder = new FrameRecorder({ dir, maxQueuedBytes }, silentLogger);
    const folder = sessionFolder('stream', 'session', Date.now());
    const fifo = hangWritesOf(join(dir, folder), 0);
    t.after(() => unblock(fifo));
    const frames = 40;
    let queued = 0;
    for (let seq = 0; seq < frames; seq++) if (recorder.record(encodedFrame(seq), folder)) queued++;
    const stats = recorder.stats();
    // Each frame holds 13 MB (payload + points): five fit in 64 MiB, the rest are dropped and counted.
    const held = MiB + 12_000_000;
    assert.equal(queued, Math.floor(maxQueuedBytes / held));
    assert.equal(stats.queuedBytes, queued * held);
    assert.ok(stats.queuedBytes <= maxQueuedBytes);
    assert.equal(stats.framesNotRecorded, frames - queued);
    assert.match(stats.lastError ?? '', /the disk is behind/);
    // The writer may not have reached the FIFO yet: keep offering a reader until it has.
    const unblocking = setInterval(() => unblock(fifo), 100);
    await recorder.flush().finally(() => clearInterval(unblocking));
    assert.equal(recorder.stats().queuedBytes, 0);
  },
);

void test(
  'item 9: SIGTERM while a recorder write hangs: serve ends by its 10 s deadline',
  { timeout: 60_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ps-hang-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        CLI,
        'serve',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--record',
        dir,
        '--log-format',
        'json',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr.resume();
    const deadline = performance.now() + 20_000;
    let url: string | undefined;
    while (url === undefined) {
      assert.ok(performance.now() < deadline, 'serve did not start');
      url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(stdout)?.[1];
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const raw = new RawPeer('');
    t.after(() => raw.close());
    await raw.connect(`${url}/offer`, 'json');
    const recording = (raw.status.json as { recording: string }).recording;
    const fifo = hangWritesOf(recording, 0);
    t.after(() => unblock(fifo));
    const header = encodeNpyHeader([100, 3]);
    const frame = new Uint8Array(header.length + 1200);
    frame.set(header);
    raw.send(frame);
    const receipt = await raw.receipt(0);
    assert.equal(receipt.type === 'receipt' && receipt.ok, true);
    // Let the write reach the FIFO (it blocks in a worker thread).
    await new Promise((resolve) => setTimeout(resolve, 500));
    const stopped = performance.now();
    child.kill('SIGTERM');
    const result = await Promise.race([
      exited,
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 15_000)),
    ]);
    const took = performance.now() - stopped;
    assert.ok(result !== undefined, `serve still alive ${Math.round(took)} ms after SIGTERM`);
    assert.ok(took < 12_000, `serve exited ${Math.round(took)} ms after SIGTERM`);
    assert.match(stdout, /"event":"shutdown-timeout"/);
    t.diagnostic(
      `serve ended ${Math.round(took)} ms after SIGTERM (${result.signal ?? result.code})`,
    );
    // process.exit cannot join the stuck worker: the watchdog's SIGKILL ends it.
    assert.equal(result.signal, 'SIGKILL');
  },
);
