// Issue 14, items 3 and 4, measured where users run it: `pointstream serve` in its own process,
// its RSS read from /stats while a hostile client floods it. Bound: the RSS before the flood plus
// the configured budget plus a stated allowance for native buffers and allocator slack.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { connect } from '../src/index.js';
import { frameFileName } from '../src/server/recorder.js';
import { encodeNpyHeader } from '../src/wire/npy.js';
import { CLI, LOOPBACK, RawPeer } from './helpers.js';

const MiB = 1024 * 1024;
/**
 * Native buffers, allocator slack and garbage not yet collected, beyond the budgets. Growth
 * measured with the fixes: 25-29 MiB (plain flood), 113-131 MiB (recorder flood, 64 MiB queue);
 * before them: 181-246 MiB (plain) and 477 MiB (recorder). Encoded frames now decode on a worker
 * thread, which adds its own heap and up to `maxFramesInDecode` (4) decoded frames in the pipeline
 * (reserved in the reassembly budget, not in the recorder's queue): the recorder flood then grew
 * 192-209 MiB.
 */
const PLAIN_ALLOWANCE = 64 * MiB;
const RECORDER_ALLOWANCE = 128 * MiB + 4 * 12 * MiB;

async function serve(t: TestContext, args: string[]): Promise<string> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      CLI,
      'serve',
      '--host',
      LOOPBACK,
      '--port',
      '0',
      '--log-level',
      'warn',
      '--log-format',
      'json',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let output = '';
  child.stdout.on('data', (data: Buffer) => (output += data.toString()));
  child.stderr.on('data', (data: Buffer) => (output += data.toString()));
  const deadline = performance.now() + 20_000;
  for (;;) {
    const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
    if (url !== undefined) return url;
    assert.ok(performance.now() < deadline, `serve did not start: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface Stats {
  memory: { rssBytes: number };
  reassemblyBytes: number;
  recording?: { queuedBytes: number; framesNotRecorded: number };
}

async function stats(url: string): Promise<Stats> {
  return (await (await fetch(`${url}/stats`)).json()) as Stats;
}

/** Samples the server's RSS every 100 ms until `until` resolves; returns the peak. */
async function peakRss(url: string, until: Promise<unknown>): Promise<number> {
  let done = false;
  void until.finally(() => (done = true));
  let peak = 0;
  while (!done) {
    peak = Math.max(peak, (await stats(url)).memory.rssBytes);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return Math.max(peak, (await stats(url)).memory.rssBytes);
}

void test(
  'item 4: a plain-form flood from 8 sessions keeps serve under baseline + budget + allowance',
  { timeout: 120_000 },
  async (t) => {
    const budget = 64 * MiB;
    const url = await serve(t, ['--max-reassembly-bytes', String(budget)]);
    const baseline = (await stats(url)).memory.rssBytes;
    const peers: RawPeer[] = [];
    for (let i = 0; i < 8; i++) {
      // The attacker accepts big messages itself and sends the largest the server advertises.
      const raw = new RawPeer('', { maxMessageSize: 64 * MiB });
      t.after(() => raw.close());
      await raw.connect(`${url}/offer`, 'json');
      peers.push(raw);
    }
    const flood = (async () => {
      const end = performance.now() + 6000;
      const frames = new Map<number, Uint8Array>();
      while (performance.now() < end) {
        for (const raw of peers) {
          const size = Math.min(raw.dc.maxMessageSize() || 65_536, 16 * MiB);
          let frame = frames.get(size);
          if (frame === undefined) {
            const points = Math.floor((size - 128) / 12);
            frame = new Uint8Array(128 + points * 12);
            frame.set(encodeNpyHeader([points, 3]));
            frames.set(size, frame);
          }
          try {
            while (raw.dc.isOpen() && raw.dc.bufferedAmount() < 32 * MiB) raw.send(frame);
          } catch {
            // closed by the server
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const peak = await peakRss(url, flood);
    const bound = baseline + budget + PLAIN_ALLOWANCE;
    assert.ok(
      peak <= bound,
      `server RSS peaked at ${Math.round(peak / MiB)} MiB, over ${Math.round(bound / MiB)} MiB (baseline ${Math.round(baseline / MiB)} + budget ${budget / MiB} + allowance ${PLAIN_ALLOWANCE / MiB})`,
    );
    t.diagnostic(
      `plain flood: baseline ${Math.round(baseline / MiB)} MiB, peak ${Math.round(peak / MiB)} MiB`,
    );
  },
);

void test(
  'item 3: a recorder flood with a hung disk keeps serve under baseline + queue + allowance',
  { timeout: 120_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ps-rss-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const queue = 64 * MiB;
    const url = await serve(t, ['--record', dir, '--record-queue-bytes', String(queue)]);
    const baseline = (await stats(url)).memory.rssBytes;
    const client = await connect({
      signalingUrl: `${url}/offer`,
      rtc: { bindAddress: LOOPBACK },
      encoding: 'qrice',
    });
    t.after(() => client.close());
    const recording = client.recording;
    assert.ok(recording, 'the server records');
    mkdirSync(recording, { recursive: true });
    const fifo = join(recording, `.${frameFileName(0)}.partial`);
    execFileSync('mkfifo', [fifo]);
    t.after(() => {
      try {
        closeSync(openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK));
      } catch {
        // gone
      }
    });
    // 1M identical points: a few hundred bytes on the wire, 12 MB decoded, each.
    const points = new Float32Array(3_000_000).fill(1);
    const frames = 40;
    const flood = (async () => {
      const receipts = [];
      for (let i = 0; i < frames; i++) receipts.push((await client.send(points)).receipt);
      await Promise.all(receipts);
    })();
    const peak = await peakRss(url, flood);
    const bound = baseline + queue + RECORDER_ALLOWANCE;
    assert.ok(
      peak <= bound,
      `server RSS peaked at ${Math.round(peak / MiB)} MiB, over ${Math.round(bound / MiB)} MiB (baseline ${Math.round(baseline / MiB)} + queue ${queue / MiB} + allowance ${RECORDER_ALLOWANCE / MiB})`,
    );
    const after = await stats(url);
    assert.ok(after.recording, 'recording stats');
    assert.ok(after.recording.queuedBytes <= queue, `queued ${after.recording.queuedBytes}`);
    assert.ok(after.recording.framesNotRecorded >= frames - Math.ceil(queue / 12_000_000) - 1);
    t.diagnostic(
      `recorder flood: baseline ${Math.round(baseline / MiB)} MiB, peak ${Math.round(peak / MiB)} MiB`,
    );
  },
);
