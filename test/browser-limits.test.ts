import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import nodeDataChannel from 'node-datachannel';
import type { ReceivedFrame } from '../src/index.js';
import { launchBrowser } from './browser-helpers.js';
import { startServer } from './helpers.js';

// What README "In the browser" and docs/protocol.md say about a browser's plain-form frames:
// Chromium caps a DataChannel message at 262,144 bytes whatever the server advertises (64 MiB),
// so one plain frame holds at most 21,845 raw points (262,140 bytes) or, as a .npy file with its
// 128-byte header, 21,834 points (262,136 bytes). Larger frames need the chunked form.

after(() => nodeDataChannel.cleanup());

interface PageResult {
  advertised: number;
  maxMessageSize: number;
  sends: Record<string, string>;
  receipts: { seq: number; ok: boolean; points?: number }[];
}

// Runs in the page (a string, because these tests type-check without the DOM library): a plain
// client as a web developer would write it, with an empty channel protocol.
const PAGE_SCRIPT = `(async (offerUrl) => {
  const pc = new RTCPeerConnection();
  const channel = pc.createDataChannel('points');
  const receipts = [];
  channel.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === 'receipt') receipts.push(message);
  };
  const opened = new Promise((resolve) => (channel.onopen = resolve));
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
  });
  const response = await fetch(offerUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ sdp: pc.localDescription.sdp, type: 'offer' }),
  });
  const answer = await response.json();
  await pc.setRemoteDescription(answer);
  await opened;
  const npy = (points) => {
    const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + points + ", 3), }";
    const padded = header.padEnd(128 - 10 - 1) + '\\n';
    const bytes = new Uint8Array(128 + points * 12);
    bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, padded.length & 0xff, padded.length >> 8]);
    for (let i = 0; i < padded.length; i++) bytes[10 + i] = padded.charCodeAt(i);
    return bytes;
  };
  const attempts = {
    'raw 21845': new Float32Array(21845 * 3),
    'raw 21846': new Float32Array(21846 * 3),
    'npy 21834': npy(21834),
    'npy 21835': npy(21835),
  };
  const sends = {};
  for (const [name, bytes] of Object.entries(attempts)) {
    try {
      channel.send(bytes);
      sends[name] = 'sent';
    } catch (error) {
      sends[name] = error.name;
    }
  }
  const deadline = Date.now() + 20000;
  while (receipts.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const result = {
    advertised: Number(/a=max-message-size:(\\d+)/.exec(answer.sdp)?.[1]),
    maxMessageSize: pc.sctp.maxMessageSize,
    sends,
    receipts,
  };
  pc.close();
  return result;
})`;

void test(
  'Chromium sends at most 262,144 bytes per message, whatever the server advertises',
  { timeout: 120_000 },
  async (t) => {
    // Advertise 64 MiB (the default is 256 KiB since issue 14) to show Chromium's own cap.
    const server = await startServer({ limits: { maxPlainMessageBytes: 64 * 1024 * 1024 } });
    t.after(() => server.close());
    const frames: { points: number; form: string }[] = [];
    server.on('frame', (frame: ReceivedFrame) =>
      frames.push({ points: frame.pointCount, form: frame.form }),
    );
    const browser = await launchBrowser();
    t.after(() => browser.close());
    const page = await browser.open(`${server.url}/healthz`);
    const result = await page.evaluate<PageResult>(
      `${PAGE_SCRIPT}(${JSON.stringify(`${server.url}/offer`)})`,
    );

    assert.equal(result.advertised, 64 * 1024 * 1024, 'the server advertises 64 MiB');
    assert.equal(result.maxMessageSize, 262_144, 'Chromium keeps its own cap');
    assert.deepEqual(result.sends, {
      'raw 21845': 'sent',
      'raw 21846': 'TypeError',
      'npy 21834': 'sent',
      'npy 21835': 'TypeError',
    });
    assert.deepEqual(
      result.receipts.map((receipt) => [receipt.ok, receipt.points]),
      [
        [true, 21_845],
        [true, 21_834],
      ],
    );
    assert.deepEqual(frames, [
      { points: 21_845, form: 'plain-raw' },
      { points: 21_834, form: 'plain-npy' },
    ]);
  },
);

void test('the docs give browsers the plain form limits and point them at the chunked form', () => {
  for (const file of ['../README.md', '../docs/protocol.md']) {
    const text = readFileSync(new URL(file, import.meta.url), 'utf8').replace(/\s+/g, ' ');
    assert.match(text, /at most 262,144 bytes per message/, file);
    assert.match(
      text,
      /21,845 points (per frame )?as raw float32 \(262,140 bytes\) or 21,834 as a `\.npy`/,
      file,
    );
    assert.match(text, /chunked/, file);
    assert.doesNotMatch(
      text,
      /\(aiortc, browsers\)/,
      `${file}: browsers cannot send big plain frames`,
    );
  }
});
