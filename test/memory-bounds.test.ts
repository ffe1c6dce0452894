// Issue 14, items 2-4: memory bounds that bound against a hostile client. Each test reproduces
// the attack at a size this machine can run and asserts the bound.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, ErrorCodes } from '../src/index.js';
import type { PointstreamServer } from '../src/index.js';
import {
  DType,
  Encoding,
  PROTOCOL_V1,
  START_HEADER_BYTES,
  writeDataHeader,
  writeStartHeader,
} from '../src/wire/chunk.js';
import { encodeNpyHeader } from '../src/wire/npy.js';
import { FrameReassembler } from '../src/wire/reassembler.js';
import { LOOPBACK, RawPeer, startServer, waitFor } from './helpers.js';

const rtc = { bindAddress: LOOPBACK };
const ATTACKER = 'attacker-token-0123456789';
const LEGIT = 'legitimate-token-0123456789';
const MiB = 1024 * 1024;

/** A START chunk of a frame that will never be finished (chunkCount 2, one chunk sent). */
function startChunk(
  seq: number,
  encoding: number,
  pointCount: number,
  payloadBytes: number,
  data: Uint8Array,
): Uint8Array {
  const message = new Uint8Array(START_HEADER_BYTES + data.length);
  writeStartHeader(message, {
    seq,
    payloadBytes,
    pointCount,
    crc32: 0,
    captureTime: Date.now(),
    chunkCount: 2,
    dtype: DType.FLOAT32,
    components: 3,
    encoding,
  });
  message.set(data, START_HEADER_BYTES);
  return message;
}

/** The START of an .npy frame of `points` points: its first chunk is the .npy header. */
function npyStart(seq: number, points: number): Uint8Array {
  const header = encodeNpyHeader([points, 3]);
  return startChunk(seq, Encoding.NPY, points, header.length + points * 12, header);
}

/** A connected hostile session with `channels` pointstream/1 channels open (as far as allowed). */
async function hostile(
  server: PointstreamServer,
  channels: number,
  token?: string,
): Promise<{ raw: RawPeer; extra: ReturnType<RawPeer['pc']['createDataChannel']>[] }> {
  const raw = new RawPeer(PROTOCOL_V1);
  await raw.connect(
    `${server.url}/offer`,
    'json',
    {},
    token === undefined ? {} : { authorization: `Bearer ${token}` },
  );
  const extra = [];
  for (let i = 1; i < channels; i++) {
    const dc = raw.pc.createDataChannel(`extra-${i}`, { protocol: PROTOCOL_V1 });
    const open = new Promise<void>((resolve) => {
      dc.onOpen(() => resolve());
      dc.onClosed(() => resolve());
    });
    dc.onMessage(() => undefined);
    extra.push(dc);
    await Promise.race([open, new Promise((resolve) => setTimeout(resolve, 2000))]);
  }
  return { raw, extra };
}

/** Sends `message` on every open channel of the attacker. */
function sendEverywhere(
  raw: RawPeer,
  extra: ReturnType<RawPeer['pc']['createDataChannel']>[],
  message: (index: number) => Uint8Array,
): number {
  let sent = 0;
  for (const [index, dc] of [raw.dc, ...extra].entries()) {
    try {
      if (dc.isOpen()) {
        dc.sendMessageBinary(message(index));
        sent++;
      }
    } catch {
      // closed by the server
    }
  }
  return sent;
}

/** Streams `frames` 100k-point frames and returns their receipt codes (undefined: ok). */
async function legitimate(
  server: PointstreamServer,
  frames: number,
): Promise<(string | undefined)[]> {
  const client = await connect({ signalingUrl: `${server.url}/offer`, rtc, token: LEGIT });
  try {
    const codes = [];
    const points = new Float32Array(300_000).fill(1);
    for (let i = 0; i < frames; i++) {
      const receipt = await (await client.send(points)).receipt;
      codes.push(receipt.ok ? undefined : receipt.code);
    }
    return codes;
  } finally {
    await client.close();
  }
}

void test(
  'item 2: encoded STARTs reserve their payload, not their declared points: a legitimate client streams on',
  { timeout: 90_000 },
  async (t) => {
    // The attack, scaled to a 256 MiB budget: qrice STARTs declaring millions of points
    // with a 64-byte payload, sized to fill the budget to the byte.
    const budget = 256 * MiB;
    const server = await startServer({
      tokens: [ATTACKER, LEGIT],
      limits: { maxTotalReassemblyBytes: budget },
    });
    t.after(() => server.close());
    const { raw, extra } = await hostile(server, 4, ATTACKER);
    t.after(() => raw.close());
    const payload = 64;
    const data = new Uint8Array(32);
    let left = budget;
    let seq = 0;
    const starts: Uint8Array[] = [];
    while (left > payload + 12) {
      const points = Math.min(5_000_000, Math.floor((left - payload) / 12));
      starts.push(startChunk(seq++, Encoding.QRICE, points, payload, data));
      left -= payload + points * 12;
    }
    // Two open frames per channel: spread the STARTs over the four channels.
    for (const [index, message] of starts.entries()) {
      const dc = [raw.dc, ...extra][Math.floor(index / 2)];
      assert.ok(dc, 'enough channels for the STARTs');
      dc.sendMessageBinary(message);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    const held = server.stats().reassemblyBytes;
    assert.ok(held <= starts.length * payload, `the STARTs hold ${held} bytes, not the budget`);
    const codes = await legitimate(server, 5);
    assert.deepEqual(codes, [undefined, undefined, undefined, undefined, undefined]);
  },
);

void test(
  'item 2: one client cannot hold the server budget: channels, per-session and per-client caps, stalled frames expire',
  { timeout: 90_000 },
  async (t) => {
    const server = await startServer({
      tokens: [ATTACKER, LEGIT],
      limits: { frameStallMs: 2000, maxSessionsPerClient: 16 },
    });
    t.after(() => server.close());
    const { limits } = server;
    assert.equal(limits.maxChannelsPerSession, 4);
    assert.equal(limits.maxSessionReassemblyBytes, 128 * MiB);
    assert.equal(limits.maxClientReassemblyBytes, 256 * MiB);
    // Three sessions of ten channels, two 60 MB .npy STARTs (5M points) each: 3.6 GB declared.
    const attackers: Awaited<ReturnType<typeof hostile>>[] = [];
    for (let i = 0; i < 3; i++) {
      const attacker = await hostile(server, 10, ATTACKER);
      t.after(() => attacker.raw.close());
      attackers.push(attacker);
    }
    // The refused channels close (the server's refusal reaches them asynchronously).
    await waitFor(
      () =>
        attackers.every(
          ({ raw, extra }) => [raw.dc, ...extra].filter((dc) => dc.isOpen()).length <= 4,
        ),
      5000,
      'extra channels to be refused',
    );
    const rejected: string[] = [];
    server.on('frameRejected', ({ error }) => rejected.push(error.code));
    let opened = 0;
    for (const { raw, extra } of attackers) {
      for (let seq = 0; seq < 2; seq++)
        opened += sendEverywhere(raw, extra, () => npyStart(seq, limits.maxPointsPerFrame));
    }
    assert.equal(opened, 3 * 4 * 2, 'four channels per session stay open, the rest are refused');
    const memoryRefusals = (): number =>
      rejected.filter((code) => code === ErrorCodes.SERVER_MEMORY).length;
    // 128 MiB per session (two STARTs), 256 MiB per client: 4 of the 24 STARTs fit.
    await waitFor(() => memoryRefusals() >= opened - 4, 10_000, 'refusals');
    const held = server.stats().reassemblyBytes;
    assert.ok(
      held <= limits.maxClientReassemblyBytes,
      `one client holds ${held} bytes, at most its share ${limits.maxClientReassemblyBytes}`,
    );
    assert.equal(memoryRefusals(), opened - 4);
    // Meanwhile another client streams normally.
    const codes = await legitimate(server, 5);
    assert.deepEqual(codes, [undefined, undefined, undefined, undefined, undefined]);
    // The attacker's open frames make no progress: within frameStallMs they are rejected and
    // their memory is back.
    await waitFor(() => server.stats().reassemblyBytes === 0, 5000, 'stalled frames to expire');
    assert.ok(rejected.includes(ErrorCodes.FRAME_INCOMPLETE));
    const refusal = attackers[0]?.raw.messages.find(
      (m) => m.type === 'closing' && m.code === ErrorCodes.TOO_MANY_CHANNELS,
    );
    assert.equal(refusal, undefined, 'the first channel is never the refused one');
  },
);

void test(
  'item 2: text messages do not keep a session alive; only frame bytes do',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({ limits: { idleTimeoutMs: 1500 } });
    t.after(() => server.close());
    const raw = new RawPeer(PROTOCOL_V1);
    t.after(() => raw.close());
    await raw.connect(`${server.url}/offer`, 'json');
    const started = performance.now();
    const chatter = setInterval(() => {
      try {
        raw.dc.sendMessage('still here');
      } catch {
        // closed
      }
    }, 200);
    t.after(() => clearInterval(chatter));
    const closing = await raw.waitForMessage((m) => m.type === 'closing', 10_000);
    clearInterval(chatter);
    assert.equal(closing.type === 'closing' && closing.code, ErrorCodes.SESSION_CLOSED);
    assert.match(closing.type === 'closing' ? closing.message : '', /idle/);
    assert.ok(performance.now() - started < 4000, 'closed by the idle timeout');
  },
);

void test(
  'item 2: a fifth channel (beyond maxChannelsPerSession, 4) is closed; the session goes on',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const { raw, extra } = await hostile(server, 5);
    t.after(() => raw.close());
    const fifth = extra[3];
    assert.ok(fifth);
    await waitFor(() => !fifth.isOpen(), 5000, 'the fifth channel to close');
    assert.ok(
      extra.slice(0, 3).every((dc) => dc.isOpen()),
      'the first four channels stay open',
    );
    assert.equal(raw.dc.isOpen(), true, 'the session goes on');
  },
);

void test(
  'item 4: sessions advertise max-message-size 256 KiB (maxPlainMessageBytes), viewers 256 KiB; plain messages are budgeted',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({ limits: { maxTotalReassemblyBytes: 200_000 } });
    t.after(() => server.close());
    const raw = new RawPeer('');
    t.after(() => raw.close());
    await raw.connect(`${server.url}/offer`, 'json');
    const answer = (raw.status.json as { sdp: string }).sdp;
    assert.match(answer, /a=max-message-size:262144\r?\n/);
    const viewerOffer = await fetch(`${server.url}/viewer/offer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        type: 'offer',
        sdp: (raw.pc.localDescription() as { sdp: string }).sdp,
        stream: (raw.status.json as { stream: string }).stream,
      }),
    });
    const viewerAnswer = await viewerOffer.text();
    assert.ok(viewerOffer.ok, viewerAnswer);
    assert.match(
      (JSON.parse(viewerAnswer) as { sdp: string }).sdp,
      /a=max-message-size:262144\r?\n/,
    );
    // A plain .npy frame of 20,000 points (240,128 bytes) fits the message size but not the
    // 200,000-byte budget: refused, not held.
    const points = 20_000;
    const header = encodeNpyHeader([points, 3]);
    const frame = new Uint8Array(header.length + points * 12);
    frame.set(header);
    raw.send(frame);
    const receipt = await raw.receipt(0);
    assert.equal(
      receipt.type === 'receipt' && !receipt.ok && receipt.code,
      ErrorCodes.SERVER_MEMORY,
    );
    assert.equal(server.stats().reassemblyBytes, 0);
    // A smaller one passes, and its reservation is released.
    const smallHeader = encodeNpyHeader([1000, 3]);
    const small = new Uint8Array(smallHeader.length + 1000 * 12);
    small.set(smallHeader);
    raw.send(small);
    const ok = await raw.receipt(1);
    assert.equal(ok.type === 'receipt' && ok.ok, true);
    assert.equal(server.stats().reassemblyBytes, 0);
  },
);

void test(
  'item 4: a larger plain form needs limits.maxPlainMessageBytes, which is what is advertised',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({ limits: { maxPlainMessageBytes: 13 * MiB } });
    t.after(() => server.close());
    const raw = new RawPeer('', { maxMessageSize: 16 * MiB });
    t.after(() => raw.close());
    await raw.connect(`${server.url}/offer`, 'json');
    assert.match((raw.status.json as { sdp: string }).sdp, /a=max-message-size:13631488\r?\n/);
    const points = 1_000_000;
    const header = encodeNpyHeader([points, 3]);
    const frame = new Uint8Array(header.length + points * 12);
    frame.set(header);
    raw.send(frame);
    const receipt = await raw.receipt(0, 20_000);
    assert.equal(receipt.type === 'receipt' && receipt.ok, true);
  },
);

void test('item 2: sweep() rejects a frame after two sweeps without a chunk, and releases it', () => {
  let held = 0;
  const budget = {
    reserve: (bytes: number): boolean => ((held += bytes), true),
    release: (bytes: number): void => void (held -= bytes),
  };
  const reassembler = new FrameReassembler({ budget });
  const header = encodeNpyHeader([1000, 3]);
  const start = (seq: number): Uint8Array => {
    const message = startChunk(seq, Encoding.NPY, 1000, header.length + 12_000, header);
    // Three chunks, so that one DATA chunk is progress without completing the frame.
    new DataView(message.buffer).setUint32(36, 3, true);
    return message;
  };
  assert.equal(reassembler.push(start(0)).kind, 'pending');
  assert.equal(reassembler.push(start(1)).kind, 'pending');
  assert.equal(held, 2 * (header.length + 12_000));
  assert.deepEqual(reassembler.sweep(1000), []); // first look
  const data = new Uint8Array(12 + 100);
  writeDataHeader(data, 1, 1);
  assert.equal(reassembler.push(data).kind, 'pending'); // frame 1 progresses
  assert.deepEqual(reassembler.sweep(1000), []); // frame 0: one stale sweep
  const rejected = reassembler.sweep(1000); // frame 0: two
  assert.deepEqual(
    rejected.map((r) => [r.seq, r.error.code]),
    [[0, ErrorCodes.FRAME_INCOMPLETE]],
  );
  assert.equal(reassembler.framesInReassembly, 1);
  assert.equal(held, header.length + 12_000);
  assert.equal(reassembler.sweep(1000)[0]?.seq, 1);
  assert.equal(held, 0);
});
