import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect } from '../src/index.js';
import type { ReceivedFrame } from '../src/index.js';
import { LOOPBACK, findPython, startServer } from './helpers.js';

void test(
  'a frame received over WebRTC loads in real NumPy with exactly the values sent',
  { timeout: 60_000 },
  async (t) => {
    const python = findPython('numpy');
    const server = await startServer();
    t.after(() => server.close());
    const client = await connect({
      signalingUrl: `${server.url}/offer`,
      rtc: { bindAddress: LOOPBACK },
    });
    t.after(() => client.close());
    const received = server.next('frame', { timeoutMs: 30_000 });
    const points = new Float32Array(30_000);
    for (let i = 0; i < points.length; i++) points[i] = Math.fround((i - 15_000) * 0.37);
    points[5] = -0; // signed zero must survive too
    await client.send(points);
    const frame: ReceivedFrame = await received;
    assert.ok(frame.npy, 'a pointstream/1 frame carries its .npy bytes');

    const dir = mkdtempSync(join(tmpdir(), 'pointstream-npy-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'frame.npy'), frame.npy);
    writeFileSync(join(dir, 'expected.f32'), points);
    const script = [
      'import sys, numpy as np',
      'a = np.load(sys.argv[1], allow_pickle=False)',
      "e = np.fromfile(sys.argv[2], dtype='<f4').reshape(-1, 3)",
      "print(a.dtype.str, a.shape[0], a.shape[1], a.flags['C_CONTIGUOUS'], a.tobytes() == e.tobytes())",
    ].join('\n');
    const out = execFileSync(
      python,
      ['-c', script, join(dir, 'frame.npy'), join(dir, 'expected.f32')],
      { encoding: 'utf8' },
    ).trim();
    assert.equal(out, '<f4 10000 3 True True');
  },
);
